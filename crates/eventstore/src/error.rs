use crate::{ExpectedVersion, StreamId};

/// Everything that can go wrong talking to the log.
///
/// The variants are what a caller must tell apart: a conflict is retried or
/// shown as 409; bad input is the caller's fault (4xx); unavailable is
/// transient (503 with `Retry-After`); internal is a bug or a damaged store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream moved on since the writer read it. Nothing was written.
    #[error(
        "stream {stream} is at version {current}, but the write expected version {expected}: \
         reload the stream and decide again"
    )]
    Conflict {
        stream: StreamId,
        expected: ExpectedVersion,
        current: u64,
    },

    /// The request itself is wrong; the message says what and how to fix it.
    #[error("{0}")]
    InvalidInput(String),

    /// The store cannot be reached or is overloaded right now. Nothing that
    /// was acknowledged before is lost; the same call may succeed later.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),

    /// A bug, or a store that holds something it should not.
    #[error("event store failure: {0}")]
    Internal(String),
}

/// The error and its causes, "error connecting to server: Connection refused".
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            return Error::Unavailable(with_causes(&e));
        }
        match e.as_db_error() {
            Some(db) => {
                use tokio_postgres::error::SqlState;
                let code = db.code();
                // Connection-class and resource errors are transient.
                if code.code().starts_with("08")
                    || code.code().starts_with("53")
                    || code.code().starts_with("57P")
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                {
                    Error::Unavailable(db.message().to_owned())
                } else {
                    Error::Internal(format!("{} ({})", db.message(), code.code()))
                }
            }
            // No server answer at all: I/O, timeouts, TLS.
            None => Error::Unavailable(with_causes(&e)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            // The pool could not open a connection. Whatever the server's
            // reason (down, refusing connections, a password changed under
            // the service), the store cannot be reached right now: never a
            // 500, and the reason is in the message and the log.
            deadpool_postgres::PoolError::Backend(e) => Error::Unavailable(format!(
                "cannot connect to the database: {}",
                e.as_db_error()
                    .map_or_else(|| with_causes(&e), |db| db.message().to_owned())
            )),
            other => Error::Unavailable(with_causes(&other)),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull) => {
                Error::Unavailable(e.to_string())
            }
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
                Error::Unavailable(e.to_string())
            }
            _ => Error::Internal(e.to_string()),
        }
    }
}
