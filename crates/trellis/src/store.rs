//! Opens the configured event store, and names every component's
//! migrations: what `trellis migrate` applies, and what a database may hold
//! for this binary to run on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use trellis_eventstore::drivers::tokio_postgres;
use trellis_eventstore::postgres::{self, Migrations, PostgresConfig, PostgresStore};
use trellis_eventstore::sqlite::SqliteStore;
use trellis_eventstore::vault::{KeyStore, Vault};
use trellis_eventstore::{EventStore, GroupCommit, GroupCommitConfig, ReadAhead};
use trellis_projections::engine::EngineConfig;
use trellis_projections::store::ReadStore;
use trellis_projections::store::postgres::PostgresReadStore;
use trellis_projections::store::sqlite::SqliteReadStore;

/// Every component's migrations on PostgreSQL, in the order they apply: the
/// log's first (they make the schema and the runtime role).
pub const POSTGRES: [Migrations; 4] = [
    postgres::LOG_MIGRATIONS,
    trellis_projections::store::postgres::MIGRATIONS,
    trellis_access::store::postgres::MIGRATIONS,
    trellis_webhooks::store::postgres::MIGRATIONS,
];

/// Every component's migrations in the embedded file, after the log's own.
pub const SQLITE: [Migrations; 3] = [
    trellis_projections::store::sqlite::MIGRATIONS,
    trellis_access::store::sqlite::MIGRATIONS,
    trellis_webhooks::store::sqlite::MIGRATIONS,
];

/// Refuses a database that records the migrations of a component this
/// binary does not have (migrated by a newer release).
pub async fn refuse_unknown_components(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    let known: Vec<&Migrations> = POSTGRES.iter().collect();
    let unknown = postgres::unknown_components(client, &known)
        .await
        .context("failed to read which components the database has")?;
    if !unknown.is_empty() {
        anyhow::bail!(
            "the database's schema is newer than this trellis: it records the migrations of \
             components this binary does not have (trellis.{}); upgrade trellis to the release \
             that migrated it",
            unknown.join(", trellis.")
        );
    }
    Ok(())
}

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

    /// A PEM file of CA certificates that PostgreSQL's server certificate
    /// must chain to (the URL's `sslrootcert`); with it and no `sslmode` in
    /// the URL, the connection is `verify-full`: encrypted, the chain and the
    /// host name checked.
    #[arg(
        long,
        env = "TRELLIS_DATABASE_CA_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub database_ca_file: Option<PathBuf>,

    /// Directory of the embedded store (used when no database URL is given).
    #[arg(
        long,
        env = "TRELLIS_DATA_DIR",
        default_value = DEFAULT_DATA_DIR,
        global = true
    )]
    pub data_dir: PathBuf,
}

/// Where the embedded store is when `--data-dir` is not given.
const DEFAULT_DATA_DIR: &str = "./trellis-data";

/// The log and the read models beside it, in the same database or file.
#[derive(Debug, Clone)]
pub struct Stores {
    pub log: Arc<dyn EventStore>,
    pub read: Arc<dyn ReadStore>,
    /// The same log, by backend, for components that keep tables beside it.
    pub backend: Backend,
    /// The personal data keys, through the log's vault (erasing a person
    /// also drops the key it kept for writing).
    pub keys: Arc<dyn KeyStore>,
}

/// `store` as the service writes and reads it: each person's personal data
/// encrypted with their key in `keys` (crypto-shredding, see
/// `trellis_eventstore::vault`), and scans of the log reading their next
/// page while the vault decrypts the last ([`ReadAhead`]).
pub fn vault(store: Arc<dyn EventStore>, keys: Arc<dyn KeyStore>) -> Arc<Vault> {
    Arc::new(Vault::new(
        Arc::new(ReadAhead::new(store)),
        keys,
        Arc::new(trellis_commands::personal::DomainPersonalData),
    ))
}

impl Backend {
    /// The log as stored: personal data encrypted, read without the vault
    /// (for what needs hashes, never payloads: the Merkle tree).
    pub fn stored(&self) -> Arc<dyn EventStore> {
        match self {
            Backend::Postgres { store, .. } => Arc::new(store.clone()),
            Backend::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// The log's guards that are missing, disabled or not as the
    /// migrations made them ([`trellis_eventstore::guards`]).
    pub async fn guard_findings(
        &self,
    ) -> Result<Vec<trellis_eventstore::guards::GuardFinding>, trellis_eventstore::Error> {
        match self {
            Backend::Postgres { store, .. } => store.guard_findings().await,
            Backend::Sqlite(store) => store.guard_findings().await,
        }
    }

    /// The personal data keys, in a table beside the log.
    pub fn key_store(&self) -> Arc<dyn KeyStore> {
        match self {
            Backend::Postgres { store, .. } => Arc::new(store.clone()),
            Backend::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// How the live projector runs on this backend. The embedded file has
    /// one writer for the log and the read models alike, so an append waits
    /// for the projector's commit: there each commit carries fewer reps'
    /// documents ([`EngineConfig::beside_the_log_s_writer`]).
    pub fn projector_config(&self) -> EngineConfig {
        match self {
            Backend::Postgres { .. } => EngineConfig::default(),
            Backend::Sqlite(_) => EngineConfig::beside_the_log_s_writer(),
        }
    }

    /// The log as the service writes and reads it: through the [`vault`].
    fn vault(&self) -> Arc<Vault> {
        vault(self.stored(), self.key_store())
    }
}

#[derive(Debug, Clone)]
pub enum Backend {
    Postgres { store: PostgresStore, url: String },
    Sqlite(SqliteStore),
}

impl StoreArgs {
    /// The database URL with `--database-ca-file` as its `sslrootcert`.
    pub fn url(&self) -> Option<String> {
        let url = self.database_url.as_deref()?;
        Some(match &self.database_ca_file {
            Some(path) => trellis_eventstore::postgres::tls::with_root_cert(url, path),
            None => url.to_owned(),
        })
    }

    /// Opens the log and its read-model store. On PostgreSQL each component
    /// checks its migrations as it opens (applying what is pending only
    /// when the role may; `trellis migrate` does it as the schema's owner),
    /// and a schema newer than this binary is refused.
    pub async fn open_all(&self) -> anyhow::Result<Stores> {
        Ok(match &self.url() {
            Some(url) => {
                let log = PostgresStore::connect(&PostgresConfig::new(url))
                    .await
                    .context("failed to open the PostgreSQL event store")?;
                let client = log
                    .pool()
                    .get()
                    .await
                    .context("failed to connect to PostgreSQL")?;
                refuse_unknown_components(&client).await?;
                drop(client);
                let read = PostgresReadStore::new(log.pool().clone())
                    .await
                    .context("failed to open the read models in PostgreSQL")?;
                Stores::over(
                    Backend::Postgres {
                        store: log,
                        url: url.clone(),
                    },
                    Arc::new(read),
                )
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
                Stores::over(Backend::Sqlite(log), Arc::new(read))
            }
        })
    }

    /// Opens the log, reading personal data as its keys allow.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        Ok(self.open_backend().await?.vault())
    }

    /// Opens the log as stored, personal data left encrypted: what checks
    /// hashes, seals and the tree reads (`audit verify`), since every one of
    /// them is over the stored form.
    pub async fn open_stored(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        Ok(self.open_backend().await?.stored())
    }

    /// Discards the stored Merkle tree, for a builder to make again from the
    /// log (`trellis audit rebuild-tree`).
    pub async fn discard_stored_tree(&self) -> anyhow::Result<()> {
        match self.open_backend().await? {
            Backend::Postgres { store, .. } => store.discard_stored_tree().await,
            Backend::Sqlite(store) => store.discard_stored_tree().await,
        }
        .context("failed to discard the stored tree")
    }

    /// The log's guards that are missing, disabled or not as the
    /// migrations made them ([`trellis_eventstore::guards`]).
    pub async fn guard_findings(
        &self,
    ) -> anyhow::Result<Vec<trellis_eventstore::guards::GuardFinding>> {
        self.open_backend()
            .await?
            .guard_findings()
            .await
            .context("failed to read the log's guards")
    }

    async fn open_backend(&self) -> anyhow::Result<Backend> {
        Ok(match &self.url() {
            Some(url) => Backend::Postgres {
                store: PostgresStore::connect(&PostgresConfig::new(url))
                    .await
                    .context("failed to open the PostgreSQL event store")?,
                url: url.clone(),
            },
            None => {
                self.embedded_log_exists()?;
                Backend::Sqlite(SqliteStore::open(&self.data_dir).await.with_context(|| {
                    format!(
                        "failed to open the embedded event store in {}",
                        self.data_dir.display()
                    )
                })?)
            }
        })
    }

    /// The tools that read a log (`audit`, `log`) open one that exists: a
    /// mistyped `--data-dir` would otherwise make an empty log there, and
    /// `audit verify` would call it intact.
    fn embedded_log_exists(&self) -> anyhow::Result<()> {
        let file = self.data_dir.join(trellis_eventstore::sqlite::FILE_NAME);
        if file.is_file() {
            return Ok(());
        }
        anyhow::bail!(
            "there is no Trellis log in {}: it has no {}. Check --data-dir (or \
             TRELLIS_DATA_DIR), or give --database-url for a log on PostgreSQL",
            self.data_dir.display(),
            trellis_eventstore::sqlite::FILE_NAME
        )
    }

    /// The flags another command needs to open this store, without
    /// credentials: ` --data-dir DIR` for the embedded store (nothing for
    /// the default), and a reminder of the URL for PostgreSQL.
    pub fn flags(&self) -> String {
        match &self.url() {
            Some(_) => " --database-url <the same URL>".to_owned(),
            None if self.data_dir == Path::new(DEFAULT_DATA_DIR) => String::new(),
            None => {
                let dir = self.data_dir.display().to_string();
                if dir.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!(" --data-dir '{}'", dir.replace('\'', r"'\''"))
                } else {
                    format!(" --data-dir {dir}")
                }
            }
        }
    }

    /// Names the store without revealing credentials.
    pub fn describe(&self) -> String {
        match &self.url() {
            Some(_) => "the PostgreSQL event store".to_owned(),
            None => format!("the embedded event store in {}", self.data_dir.display()),
        }
    }
}

impl Stores {
    /// The log of `backend` through its vault, and `read` beside it.
    fn over(backend: Backend, read: Arc<dyn ReadStore>) -> Stores {
        let vault = backend.vault();
        Stores {
            log: vault.clone(),
            keys: vault,
            read,
            backend,
        }
    }

    /// The same stores, sealing every event appended through them with
    /// `key` (the checkpoint signing key).
    pub fn sealing_with(self, key: trellis_eventstore::note::SignerKey) -> Stores {
        let backend = match self.backend {
            Backend::Postgres { store, url } => Backend::Postgres {
                store: store.sealing_with(key),
                url,
            },
            Backend::Sqlite(store) => Backend::Sqlite(store.sealing_with(key)),
        };
        Stores::over(backend, self.read)
    }

    /// The same stores with appends grouped into shared commits of at most
    /// `max_batch` commands ([`GroupCommit`]) under the vault; 1 leaves
    /// every append to commit alone.
    pub fn grouping_appends(self, max_batch: usize) -> Stores {
        if max_batch <= 1 {
            return self;
        }
        // One batch at a time, so what queues while it writes goes
        // together in the next: the embedded file has one writer, and on
        // PostgreSQL one large batch costs less than several small ones
        // (ADR 9).
        let base = match self.backend {
            Backend::Sqlite(_) => GroupCommitConfig::single_writer(),
            Backend::Postgres { .. } => GroupCommitConfig::default(),
        };
        let config = GroupCommitConfig { max_batch, ..base };
        // The vault encrypts on each caller's task before its command is
        // queued, so a batch of commands does not encrypt on the writer's
        // time; the store signs each batch once (ADR 8).
        let grouped = Arc::new(GroupCommit::new(self.backend.stored(), config));
        let vault = vault(grouped, self.backend.key_store());
        Stores {
            log: vault.clone(),
            keys: vault,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_file_s_projector_is_set_to_8_reps_a_commit_below_the_default() {
        let dir = std::env::temp_dir().join(format!("trellis-store-{}", uuid::Uuid::new_v4()));
        let backend = Backend::Sqlite(SqliteStore::open(&dir).await.expect("the store opens"));
        let config = backend.projector_config();
        assert_eq!(config.max_pending, 8);
        assert!(config.max_pending < EngineConfig::default().max_pending);
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
