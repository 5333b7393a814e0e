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

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;

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

/// The writers of one store waiting for a scope, in the order they came:
/// each takes the store's own turn first ([`Queue::enter`]) and only then
/// tries the backend's lock, so a process's writers are served in order and
/// only one of them at a time asks the backend.
#[derive(Default)]
pub(crate) struct Queue {
    scopes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Queue {
    /// This store's turn at `scope`, held until dropped; at most
    /// [`MAX_WAIT`] in line.
    pub(crate) async fn enter(&self, scope: &str) -> Result<OwnedMutexGuard<()>, Error> {
        let line = self
            .scopes
            .lock()
            .map_err(|_| Error::Internal("the scopes' queue was poisoned".into()))?
            .entry(scope.to_owned())
            .or_default()
            .clone();
        tokio::time::timeout(MAX_WAIT, line.lock_owned())
            .await
            .map_err(|_| held_too_long(scope))
    }
}

fn held_too_long(scope: &str) -> Error {
    Error::Unavailable(format!(
        "another request has held the {scope} records for over {} s; try again in a moment",
        MAX_WAIT.as_secs()
    ))
}

/// Calls `try_take` until it takes the scope (`Some`), pausing a little
/// longer each time (1 ms, doubling up to 50 ms), for at most [`MAX_WAIT`].
/// Each try is whole: a writer waiting its turn holds nothing between
/// tries (on PostgreSQL, no pooled connection the holder may need).
pub(crate) async fn take<T, F, Fut>(scope: &str, mut try_take: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let deadline = Instant::now() + MAX_WAIT;
    let mut pause = Pause::up_to(Duration::from_millis(50));
    loop {
        if let Some(taken) = try_take().await? {
            return Ok(taken);
        }
        if Instant::now() >= deadline {
            return Err(held_too_long(scope));
        }
        pause.wait().await;
    }
}

/// Pauses between the tries of a wait: 1 ms, doubling each time up to
/// `max`, so a short wait is noticed at once and a long one costs few tries.
pub(crate) struct Pause {
    next: Duration,
    max: Duration,
}

impl Pause {
    pub(crate) fn up_to(max: Duration) -> Self {
        Pause {
            next: Duration::from_millis(1),
            max,
        }
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}
