//! The one error type of the read side.

/// What went wrong running a projection or reading a read model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be read.
    #[error("the event log: {0}")]
    Store(#[from] trellis_eventstore::Error),
    /// The read-model database failed.
    #[error("the read-model database: {0}")]
    Database(String),
    /// The read-model database cannot be reached just now (refusing
    /// connections, down, a connection lost): worth retrying.
    #[error("the read-model database is unavailable: {0}")]
    Unavailable(String),
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

/// A driver's error, told apart as the event store tells its own: what is
/// worth retrying (the database unreachable) from what is not.
fn classified(e: trellis_eventstore::Error) -> Error {
    match e {
        trellis_eventstore::Error::Unavailable(why) => Error::Unavailable(why),
        other => Error::Database(other.to_string()),
    }
}

impl From<trellis_eventstore::drivers::tokio_postgres::Error> for Error {
    fn from(e: trellis_eventstore::drivers::tokio_postgres::Error) -> Self {
        classified(e.into())
    }
}

impl From<trellis_eventstore::drivers::deadpool_postgres::PoolError> for Error {
    fn from(e: trellis_eventstore::drivers::deadpool_postgres::PoolError) -> Self {
        classified(e.into())
    }
}

impl From<trellis_eventstore::drivers::rusqlite::Error> for Error {
    fn from(e: trellis_eventstore::drivers::rusqlite::Error) -> Self {
        classified(e.into())
    }
}
