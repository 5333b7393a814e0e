//! The write side of Trellis over HTTP: every domain command under `/v1`.
//!
//! A request is authenticated (bearer JWT), parsed at the edge into its
//! domain command by one conversion (each bad field named), authorized
//! against the loaded aggregate, decided by the pure domain, and appended
//! with the expected version. The edge adds the clock, the actor and the
//! ids; the domain stays pure.
//! Errors are `application/problem+json`; a client can never cause a 500.
//!
//! It owns the writes only: no SQL, no business rules (those live in
//! `trellis-domain`), no reads. What every API shares (tokens, problem
//! details, extractors, request observation) is `trellis-http`'s.
//!
//! # Layout
//! - [`CommandState`], [`CommandsConfig`], [`api`]: the service and its routes.
//! - [`policy`]: who may do what.
//! - [`extract`]: `If-Match` / `Idempotency-Key`.
//! - [`edge`]: the request as a handler receives it, what its conversion into
//!   a domain command may use, and the steps every write takes from there.
//! - [`write`]: load → authorize → decide → append, with retries and
//!   idempotency; [`cache`]: the aggregate states it keeps between commands.
//! - [`routes`]: one module per resource, each handler beside the
//!   conversion of its body; [`wire`]: request and response bodies;
//!   [`respond`]: what a write answers with.
//! - [`personal`]: which strings of a payload are personal data, for the
//!   log's vault.
//! - [`metrics`]: the write path's Prometheus metrics; [`openapi`]: this
//!   API's OpenAPI document.

pub mod cache;
pub mod edge;
pub mod extract;
pub mod measured;
pub mod metrics;
pub mod openapi;
pub mod personal;
pub mod policy;
pub mod respond;
pub mod routes;
pub mod scan;
mod state;
pub mod wire;
pub mod write;

pub use state::{CommandState, CommandsConfig, Erasure, Leaders, STATE_CACHE_EVENTS};

/// The write API, for [`trellis_http::app`]: every write route with `state`
/// applied, and its OpenAPI document.
pub fn api(state: CommandState) -> trellis_http::Api {
    trellis_http::Api {
        routes: routes::router().with_state(state),
        doc: Some(openapi::document()),
    }
}
