//! Single active publisher (the relay, the alerts publisher): who may
//! publish a stream right now.
//!
//! On PostgreSQL the lease is a session advisory lock,
//! `pg_try_advisory_lock(hashtext('trellis.relay:' || stream))`, held on a
//! connection of its own: when the holder dies its session ends, the lock is
//! released, and a standby takes it at its next try. Without a database URL
//! (the embedded store) the lease is held in this process only.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the relays of one stream agree on who is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseConfig {
    /// Within this process only (the embedded store, or a single process).
    InProcess,
    /// A PostgreSQL advisory lock, taken on a connection of its own to this URL.
    Postgres { url: String },
}

/// The key both kinds of lease are taken under.
pub fn lease_key(stream: &str) -> String {
    format!("trellis.relay:{stream}")
}

/// The right to publish, until it is dropped or [`Lease::lost`] completes.
#[derive(Debug)]
pub struct Lease {
    kind: Held,
}

#[derive(Debug)]
enum Held {
    InProcess {
        key: String,
    },
    Postgres {
        lost: watch::Receiver<bool>,
        // Dropping the guard ends the session, which releases the lock.
        _guard: AbortOnDrop<()>,
    },
}

impl Lease {
    /// Waits until this relay may publish, trying every `retry`.
    pub async fn acquire(config: &LeaseConfig, stream: &str, retry: Duration) -> Lease {
        let key = lease_key(stream);
        match config {
            LeaseConfig::InProcess => loop {
                if in_process()
                    .lock()
                    .expect("lease registry")
                    .insert(key.clone())
                {
                    return Lease {
                        kind: Held::InProcess { key },
                    };
                }
                tokio::time::sleep(retry).await;
            },
            LeaseConfig::Postgres { url } => loop {
                match try_postgres(url, &key).await {
                    Ok(Some(lease)) => return lease,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach PostgreSQL for the publishing lease; retrying")
                    }
                }
                tokio::time::sleep(retry).await;
            },
        }
    }

    /// Completes when the lease is gone (the lock's session ended or stopped
    /// answering); never, for an in-process lease.
    pub async fn lost(&mut self) {
        match &mut self.kind {
            Held::InProcess { .. } => std::future::pending().await,
            Held::Postgres { lost, .. } => {
                let _ = lost.wait_for(|lost| *lost).await;
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Held::InProcess { key } = &self.kind {
            in_process().lock().expect("lease registry").remove(key);
        }
    }
}

fn in_process() -> &'static Mutex<HashSet<String>> {
    static HELD: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    HELD.get_or_init(Mutex::default)
}

/// How often the holder checks that its session still answers.
const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

async fn try_postgres(
    url: &str,
    key: &str,
) -> Result<Option<Lease>, Box<dyn std::error::Error + Send + Sync>> {
    // The URL's sslmode and sslrootcert, as for the event store's pool.
    let (config, tls) = trellis_eventstore::postgres::tls::connect_config(url)?;
    let (client, connection) = config.connect(tls).await?;
    let (lost_tx, lost) = watch::channel(false);
    let session = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "lease connection failed");
        }
    });
    let session = AbortOnDrop(session);
    let row = client
        .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    tracing::info!(key, "took the publishing lease");
    // The holder: keeps the client (and so the session) and reports when it
    // stops answering or the connection ends.
    let holder = tokio::spawn(async move {
        let _session = session;
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let alive = tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("SELECT 1"))
                .await
                .is_ok_and(|r| r.is_ok());
            if !alive || client.is_closed() {
                tracing::warn!("lost the publishing lease: the lock's session ended");
                let _ = lost_tx.send(true);
                return;
            }
        }
    });
    Ok(Some(Lease {
        kind: Held::Postgres {
            lost,
            _guard: AbortOnDrop(holder),
        },
    }))
}

/// A task that ends when its owner is dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
