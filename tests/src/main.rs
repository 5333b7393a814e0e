//! The workspace-level test binary: one binary, one module per area.

mod commands;
mod commands_auth;
mod domain_store;
mod eventstore;
mod eventstore_postgres;
mod http;
mod projections;
