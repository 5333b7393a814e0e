//! The one error type of the read side.

/// What went wrong running a projection or reading a read model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be read.
    #[error("the event log: {0}")]
    Store(#[from] trellis_eventstore::Error),
    /// The read-model database failed or is unreachable.
    #[error("the read-model database: {0}")]
    Database(String),
    /// An event in the log cannot be decoded by this build. The projection
    /// stops rather than skip it.
    #[error("the event at global position {position} cannot be read: {reason}")]
    Decode { position: u64, reason: String },
    /// A stored document does not have the shape this build expects.
    #[error("a stored {kind} document ({key}) is malformed: {reason}")]
    Malformed {
        kind: String,
        key: String,
        reason: String,
    },
    /// The request makes no sense (an unknown projection name, a bad range).
    #[error("{0}")]
    InvalidInput(String),
    /// Another rebuild of the same projection is running.
    #[error("a rebuild of {0} is already running elsewhere")]
    RebuildRunning(String),
}

trellis_eventstore::from_database_errors!(Error, Error::Database);
