//! The workspace-level test binary: one binary, one module per area.

mod eventstore;
mod eventstore_postgres;
