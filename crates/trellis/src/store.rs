//! Opens the configured event store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use trellis_eventstore::EventStore;
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::sqlite::SqliteStore;
use trellis_projections::store::ReadStore;
use trellis_projections::store::postgres::PostgresReadStore;
use trellis_projections::store::sqlite::SqliteReadStore;

/// Where the log lives. Without a database URL, Trellis uses the embedded
/// single-file store in the data directory.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// PostgreSQL URL, e.g. postgres://trellis@127.0.0.1:5432/trellis.
    /// Absent: the embedded store in --data-dir.
    #[arg(
        long,
        env = "TRELLIS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Directory of the embedded store (used when no database URL is given).
    #[arg(
        long,
        env = "TRELLIS_DATA_DIR",
        default_value = "./trellis-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// The log and the read models beside it, in the same database or file.
#[derive(Debug, Clone)]
pub struct Stores {
    pub log: Arc<dyn EventStore>,
    pub read: Arc<dyn ReadStore>,
    /// The same log, by backend, for components that keep tables beside it.
    pub backend: Backend,
}

#[derive(Debug, Clone)]
pub enum Backend {
    Postgres { store: PostgresStore, url: String },
    Sqlite(SqliteStore),
}

impl StoreArgs {
    /// Opens the log and its read-model store.
    pub async fn open_all(&self) -> anyhow::Result<Stores> {
        Ok(match &self.database_url {
            Some(url) => {
                let log = PostgresStore::connect(&PostgresConfig::new(url))
                    .await
                    .context("failed to open the PostgreSQL event store")?;
                let read = PostgresReadStore::new(log.pool().clone())
                    .await
                    .context("failed to open the read models in PostgreSQL")?;
                Stores {
                    log: Arc::new(log.clone()),
                    read: Arc::new(read),
                    backend: Backend::Postgres {
                        store: log,
                        url: url.clone(),
                    },
                }
            }
            None => {
                let log = SqliteStore::open(&self.data_dir).await.with_context(|| {
                    format!(
                        "failed to open the embedded event store in {}",
                        self.data_dir.display()
                    )
                })?;
                let read = SqliteReadStore::open(log.path())
                    .await
                    .context("failed to open the embedded read models")?;
                Stores {
                    log: Arc::new(log.clone()),
                    read: Arc::new(read),
                    backend: Backend::Sqlite(log),
                }
            }
        })
    }

    pub async fn open(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        Ok(match &self.database_url {
            Some(url) => Arc::new(
                PostgresStore::connect(&PostgresConfig::new(url))
                    .await
                    .context("failed to open the PostgreSQL event store")?,
            ),
            None => Arc::new(SqliteStore::open(&self.data_dir).await.with_context(|| {
                format!(
                    "failed to open the embedded event store in {}",
                    self.data_dir.display()
                )
            })?),
        })
    }

    /// Names the store without revealing credentials.
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(_) => "the PostgreSQL event store".to_owned(),
            None => format!("the embedded event store in {}", self.data_dir.display()),
        }
    }
}
