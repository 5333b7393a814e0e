//! Why a stored event could not be read back.

/// Why a stored event could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "unknown event type “{event_type}”; this build of Trellis does not know it (is it older than the data?)"
    )]
    UnknownType { event_type: String },
    #[error(
        "{event_type} schema version {version} is not supported; this build reads versions 1 to {latest} (is it older than the data?)"
    )]
    UnsupportedVersion {
        event_type: String,
        version: u16,
        latest: u16,
    },
    #[error("{event_type} schema version {version} has no upcaster to version {} — a bug in Trellis", version + 1)]
    MissingUpcaster { event_type: String, version: u16 },
    #[error("{event_type} schema version {version} payload is malformed: {reason}")]
    Malformed {
        event_type: String,
        version: u16,
        reason: String,
    },
}
