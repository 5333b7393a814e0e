//! How the databases' own errors become the log's [`Error`]: what is
//! transient (unavailable) and what is not.

use crate::types::Error;

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
                if *code == SqlState::UNIQUE_VIOLATION
                    && db.constraint() == Some("events_event_id_key")
                {
                    return Error::InvalidInput(format!(
                        "an event id is already in the log ({}); every event needs a new id",
                        db.detail().unwrap_or("a repeated event id")
                    ));
                }
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

/// A PostgreSQL error as a component's error carries it: the server's code
/// and message, or what the driver says.
pub fn postgres_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Implements `From` the PostgreSQL, pool and SQLite errors for the error
/// type of a crate that keeps its own tables beside the log (the read
/// models, the webhooks), as its variant that holds the database's words:
/// `trellis_eventstore::from_database_errors!(Error, Error::Database);`.
#[macro_export]
macro_rules! from_database_errors {
    ($error:ty, $variant:path) => {
        impl From<$crate::drivers::tokio_postgres::Error> for $error {
            fn from(e: $crate::drivers::tokio_postgres::Error) -> Self {
                $variant($crate::postgres_error_text(&e))
            }
        }

        impl From<$crate::drivers::deadpool_postgres::PoolError> for $error {
            fn from(e: $crate::drivers::deadpool_postgres::PoolError) -> Self {
                $variant(format!("no connection: {e}"))
            }
        }

        impl From<$crate::drivers::rusqlite::Error> for $error {
            fn from(e: $crate::drivers::rusqlite::Error) -> Self {
                $variant(e.to_string())
            }
        }
    };
}
