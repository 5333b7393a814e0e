//! What every Trellis HTTP API shares: who is asking, how errors read, how
//! bodies and paths are parsed, how requests are observed, and how the APIs
//! are put together into one router with one OpenAPI document.
//!
//! The write API (`trellis-commands`), the read API (`trellis-queries`), the
//! webhook admin API (`trellis-webhooks`) and the dashboard
//! (`trellis-dashboard`) are siblings standing on this crate; none of them
//! imports another, except the dashboard calling the read side's functions.
//! Each gives an [`Api`]: its routes with its own state applied, and its
//! OpenAPI document. [`app`] mounts them beside the operational routes
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`) under one set of
//! layers; [`metrics_app`] serves `/metrics` alone, for a listener of its own.
//!
//! It must not hold business rules (the domain's), SQL (the store's), or
//! anything one API alone needs.
//!
//! # Layout
//! - [`HttpState`]: the small state every API shares (the log, the token key,
//!   the clock, metrics and who may read them, the body limit). [`Clock`],
//!   [`SystemClock`].
//! - [`app()`], [`Api`]: the application and what each API brings to it;
//!   [`metrics_app()`]: `/metrics` on a listener of its own.
//! - [`auth`]: HS256 bearer tokens and roles.
//! - [`extract`]: [`extract::Principal`], [`extract::JsonBody`],
//!   [`extract::PathIds`].
//! - [`problem`]: [`problem::ApiError`] → RFC 9457 problem details.
//! - [`metrics`]: the Prometheus registry (the `metrics` facade), the
//!   request duration histogram, and [`MetricsSource`] for numbers read at
//!   each scrape.
//! - [`openapi`]: the shared document (`info`, the bearer scheme, the
//!   operational routes) and the merge of every API's.
//! - [`ops`]: the operational routes.
//! - [`trace`]: the W3C trace context a request continues, and
//!   [`trace::RequestTrace`], the context its events are recorded with.

mod app;
pub mod auth;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod problem;
mod state;
pub mod trace;

pub use app::{Api, BulkRequest, DEFAULT_CSP, app, metrics_app};
pub use state::{Clock, DEFAULT_BODY_LIMIT, HttpState, MetricsAccess, MetricsSource, SystemClock};
