//! Notifications: the log is the outbox.
//!
//! The [`Relay`] reads the global log from its own checkpoint and publishes
//! every event to the JetStream stream `TRELLIS_EVENTS`, subject
//! `trellis.events.<category>.<entity id>.<event type>` (both from
//! `trellis-contracts`), body the protobuf envelope, with CloudEvents
//! binary-mode headers. `Nats-Msg-Id` is the event id, so the broker drops
//! duplicates; each pipelined message also names the previous one
//! (`Nats-Expected-Last-Msg-Id`), so a publish that failed in the middle of a
//! batch is never overtaken: the stream holds the log's order. See
//! [`relay`] for the whole argument.
//!
//! With several processes, one relay per stream is active: the others stand
//! by on a lease ([`lease`]; a PostgreSQL advisory lock, or in-process for the
//! embedded store) and take over within seconds when it goes.
//!
//! It must not decide anything about the domain, nor write to the log (it
//! writes only its own checkpoint).
//!
//! # Layout
//! - [`relay`]: the relay loop, [`spawn`] and [`RelayHandle`] for `trellis
//!   serve`, the configuration and the stream set-up.
//! - [`message`]: how one recorded event becomes one NATS message.
//! - [`lease`]: who is the single active relay.
//! - [`checkpoints`]: the log's signed checkpoints, kept in a stream that
//!   refuses delete and purge.

pub mod checkpoints;
pub mod lease;
pub mod message;
pub mod relay;

pub use lease::LeaseConfig;
pub use relay::{Relay, RelayConfig, RelayError, RelayHandle, ensure_stream, spawn};
