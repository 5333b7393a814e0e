//! The wire contract of Trellis: what subscribers (JetStream consumers, webhook
//! receivers, other services) receive for every event of the log.
//!
//! # What it owns
//!
//! - The protobuf definitions in `proto/trellis/events/v1/*.proto` (package
//!   `trellis.events.v1`, one concept per file), which are the contract; the
//!   Rust types in [`proto`] are generated from them at build time by
//!   prost-build, compiled by protox (pure Rust: no `protoc` needed).
//! - [`FILE_DESCRIPTOR_SET`]: the compiled definitions (imports and comments
//!   included), for subscribers that decode dynamically and for the wire
//!   compatibility test.
//! - The hand-written conversion between domain events and wire messages:
//!   [`to_wire`], [`from_wire`], [`envelope`], [`event_of`], [`decode_envelope`],
//!   with [`ContractError`] naming the offending field when a message is not a
//!   valid event.
//! - The subject and header conventions shared by publishers and subscribers:
//!   [`subject`], [`ce_type`], [`CONTENT_TYPE`].
//!
//! # What it must not do
//!
//! No I/O, no async, no NATS or HTTP client: publishing belongs to the relay and
//! webhooks. Nothing here leaks into `trellis-domain`, which knows nothing of
//! protobuf; a change of wire format is a change in this crate and `proto/`
//! only. Field numbers, once published, are never changed or reused: the test
//! `wire_snapshot` compares the descriptor with the checked-in
//! `tests/wire_snapshot.txt` (see `proto/README.md`).
//!
//! # Layout
//!
//! - `build.rs` — compiles `proto/` and writes the generated code and the
//!   descriptor set into `OUT_DIR`.
//! - [`proto`] — the generated types (`Envelope`, `envelope::Payload`, one
//!   message per event, shared `Date` and enums).
//! - `convert` — [`to_wire`]/[`from_wire`] and the envelope; one file per
//!   aggregate under `convert/` (`team`, `competency`, `standard`, `rep`,
//!   `alert`).
//! - `error` — [`ContractError`].
//! - `subject` — [`subject`], [`ce_type`] and header constants.
//! - `tests/` — one test binary: a round trip per event type, the wire snapshot,
//!   and the error messages.

mod convert;
mod error;
mod subject;

/// The Rust types generated from `proto/trellis/events/v1/*.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/trellis.events.v1.rs"));
}

/// The encoded `google.protobuf.FileDescriptorSet` of `proto/trellis/events/v1`,
/// with its imports (`google/protobuf/timestamp.proto`) and source comments.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/trellis_events_v1.bin"));

/// The protobuf package of the contract.
pub const PACKAGE: &str = "trellis.events.v1";

pub use convert::{
    decode_envelope, envelope, envelope_from_stored, event_of, from_timestamp, from_wire,
    payload_type, timestamp, to_wire, uuid_text,
};
pub use error::ContractError;
pub use proto::Envelope;
pub use subject::{
    CONTENT_TYPE, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, ce_type, subject, subject_under,
};
