//! The contract's tests, one binary: every event type round-trips through
//! protobuf bytes, the wire stays compatible with `wire_snapshot.txt`, and bad
//! messages are refused with an error that names the field.

mod errors;
mod round_trip;
mod samples;
mod subject;
mod wire_snapshot;
