//! Why a wire message could not be turned into a domain event.

use trellis_domain::ValueError;

/// Why an [`Envelope`](crate::proto::Envelope) or its payload is not a valid
/// Trellis event. Field paths read `Message.field`, e.g. `FeedbackGiven.given_on`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContractError {
    /// The bytes are not a protobuf `Envelope`.
    #[error("the message is not a trellis.events.v1.Envelope: {reason}")]
    Decode { reason: String },
    /// No payload is set: the event type is newer than this copy of the
    /// contract, or the sender set none.
    #[error(
        "the envelope of a “{event_type}” event has no payload this build knows (is the contract older than the sender's?)"
    )]
    MissingPayload { event_type: String },
    /// The envelope's `event_type` names another event than its payload.
    #[error("the envelope says event type “{envelope}” but carries a {payload} payload")]
    TypeMismatch {
        envelope: String,
        payload: &'static str,
    },
    /// A required field is absent: an unset message, an empty string, or an
    /// enum left at its `*_UNSPECIFIED` value.
    #[error("{message}.{field} is missing")]
    MissingField {
        message: &'static str,
        field: &'static str,
    },
    /// A field is set but its value is not acceptable (a bad id, an empty or
    /// overlong text, a level outside 1–5, a malformed period, …).
    #[error("{message}.{field} is invalid: {source}")]
    InvalidValue {
        message: &'static str,
        field: &'static str,
        #[source]
        source: ValueError,
    },
    /// A `Date` that is not a day of the calendar.
    #[error("{message}.{field} is not a calendar date: year {year}, month {month}, day {day}")]
    InvalidDate {
        message: &'static str,
        field: &'static str,
        year: i32,
        month: i32,
        day: i32,
    },
    /// A `Timestamp` outside the range Trellis can represent.
    #[error("{message}.{field} is not a valid timestamp: {seconds} s, {nanos} ns")]
    InvalidTimestamp {
        message: &'static str,
        field: &'static str,
        seconds: i64,
        nanos: i32,
    },
    /// An enum value this build does not know.
    #[error(
        "{message}.{field} has enum value {value}, which this build does not know (is the contract older than the sender's?)"
    )]
    UnknownEnumValue {
        message: &'static str,
        field: &'static str,
        value: i32,
    },
    /// A number outside the range the domain accepts.
    #[error("{message}.{field} is {value}, outside the accepted range {range}")]
    OutOfRange {
        message: &'static str,
        field: &'static str,
        value: u64,
        range: &'static str,
    },
}
