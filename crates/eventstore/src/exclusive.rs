//! Holding a scope against every other writer of the log, for a command
//! that checks its entity against others of its kind before it appends
//! (a team's name against the other teams'; a standard against the
//! standards of its metric). Each stream's expected version keeps one
//! stream consistent; nothing keeps two new streams apart, so two such
//! commands sent at once would each find the other absent and both be
//! recorded. Holding the scope from the check to the append makes the
//! second wait, then see the first.
//!
//! [`crate::EventStore::exclusive`] gives the guard; each backend holds it
//! its own way (an advisory lock on PostgreSQL, a file lock beside the
//! embedded file), across processes.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Error;

/// How long a writer waits for a scope another holds before it gives up
/// with [`Error::Unavailable`]. A holder keeps it for one check and one
/// append: milliseconds.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// A scope held until this is dropped.
#[must_use = "the scope is let go as soon as the guard is dropped"]
pub struct Exclusive {
    _held: Box<dyn Send + Sync>,
}

impl Exclusive {
    /// A guard that holds the scope as long as `held` lives: dropping
    /// `held` lets it go.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Exclusive {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for Exclusive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exclusive").finish_non_exhaustive()
    }
}

/// Calls `try_take` until it takes the scope (`Some`), pausing a little
/// longer each time (1 ms, doubling up to 50 ms), for at most [`MAX_WAIT`].
/// Each try is whole: a writer waiting its turn holds nothing between
/// tries (on PostgreSQL, no pooled connection the holder may need), and one
/// that stops waiting leaves nothing to cancel.
pub(crate) async fn take<T, F, Fut>(scope: &str, mut try_take: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let deadline = Instant::now() + MAX_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(taken) = try_take().await? {
            return Ok(taken);
        }
        if Instant::now() >= deadline {
            return Err(Error::Unavailable(format!(
                "another request has held the {scope} records for over {} s; try again in a moment",
                MAX_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
