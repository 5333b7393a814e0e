//! The workspace-level test binary: one binary, one module per area.

mod domain_store;
mod eventstore;
mod eventstore_postgres;
mod projections;
