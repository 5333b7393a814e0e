//! The workspace-level test binary: one binary, one module per area.

mod access;
mod access_admin;
mod alerts;
mod architecture;
mod browser;
mod commands;
mod commands_auth;
mod dashboard;
mod domain_store;
mod eventstore;
mod eventstore_postgres;
mod export;
mod forms;
mod group_commit;
mod http;
mod metrics;
mod notifications;
mod oidc_browser;
mod projections;
mod queries;
mod runtime_role;
mod setup;
mod vault;
mod webhooks;
mod week;
