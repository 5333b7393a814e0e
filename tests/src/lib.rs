//! Shared helpers for the workspace-level tests: every test gets its own
//! PostgreSQL database (named by a UUID) or its own embedded data directory,
//! so tests run in parallel and never see each other's data.

use std::path::PathBuf;
use std::sync::Arc;

use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::sqlite::SqliteStore;
use trellis_eventstore::{EventStore, GroupCommit, GroupCommitConfig, ReadAhead, StreamId};

mod counting;
mod logs;
pub use counting::CountingStore;
pub use logs::LogCapture;

/// The server the tests use; `tests/run` exports it.
pub fn admin_url() -> String {
    std::env::var("TRELLIS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether slow tests run (CI sets `TRELLIS_SLOW_TESTS=1`).
pub fn slow_tests_enabled() -> bool {
    std::env::var("TRELLIS_SLOW_TESTS").is_ok_and(|v| v == "1")
}

/// A database of the test's own, dropped by [`TestDatabase::drop_now`].
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test PostgreSQL at TRELLIS_TEST_DATABASE_URL ({e}); \
                 run the suite through tests/run, which starts it"
            )
        });
    tokio::spawn(connection);
    client
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("trellis_test_{}", uuid::Uuid::now_v7().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("failed to create the test database");
        let mut config: tokio_postgres::Config = admin_url().parse().expect("a valid URL");
        config.dbname(&name);
        let url = config_to_url(&config);
        TestDatabase { name, url }
    }

    /// A superuser connection to this database, for what the service itself
    /// must not be able to do (tampering, inspecting).
    pub async fn superuser(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("failed to connect to the test database");
        tokio::spawn(connection);
        client
    }

    pub async fn drop_now(self) {
        let _ = admin_client()
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

fn config_to_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}{password}@{host}:{port}/{db}")
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trellis-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("failed to create a temp dir");
    dir
}

/// Which backend a conformance test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Sqlite,
}

/// One backend with a store of its own and a back door for tampering.
#[derive(Debug)]
pub struct Backend {
    pub store: Arc<dyn EventStore>,
    pub kind: Kind,
    db: Option<TestDatabase>,
    dir: Option<PathBuf>,
    /// Appends go through [`GroupCommit`] (also after [`Backend::reopen`]).
    grouped: bool,
}

impl Backend {
    pub async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Postgres => Self::postgres().await,
            Kind::Sqlite => Self::sqlite().await,
        }
    }

    pub async fn postgres() -> Self {
        let db = TestDatabase::create().await;
        let store = PostgresStore::connect(&PostgresConfig::new(&db.url))
            .await
            .expect("failed to open the PostgreSQL store");
        Backend {
            store: Arc::new(store),
            kind: Kind::Postgres,
            db: Some(db),
            dir: None,
            grouped: false,
        }
    }

    pub async fn sqlite() -> Self {
        let dir = temp_dir();
        let store = SqliteStore::open(&dir)
            .await
            .expect("failed to open the embedded store");
        Backend {
            store: Arc::new(store),
            kind: Kind::Sqlite,
            db: None,
            dir: Some(dir),
            grouped: false,
        }
    }

    /// The same backend with its appends grouped into shared commits and
    /// its scans reading the next page ahead: the layers `trellis serve`
    /// runs the store through (there, read-ahead sits above group commit).
    /// Small batches, two in flight, so a test's few concurrent writers
    /// make several batches that overlap.
    pub fn grouped(mut self) -> Self {
        self.store = Self::group(self.store);
        self.grouped = true;
        self
    }

    fn group(store: Arc<dyn EventStore>) -> Arc<dyn EventStore> {
        Arc::new(GroupCommit::new(
            Arc::new(ReadAhead::new(store)),
            GroupCommitConfig {
                max_batch: 4,
                max_in_flight: 2,
            },
        ))
    }

    /// A second, independent store over the same data, as after a restart.
    pub async fn reopen(&self) -> Arc<dyn EventStore> {
        let store: Arc<dyn EventStore> = match self.kind {
            Kind::Postgres => Arc::new(
                PostgresStore::connect(&PostgresConfig::new(&self.database().url))
                    .await
                    .expect("failed to reopen"),
            ),
            Kind::Sqlite => Arc::new(
                SqliteStore::open(self.dir.as_ref().expect("a dir"))
                    .await
                    .expect("failed to reopen"),
            ),
        };
        if self.grouped {
            Self::group(store)
        } else {
            store
        }
    }

    /// The embedded store's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("an embedded backend")
    }

    pub fn database(&self) -> &TestDatabase {
        self.db.as_ref().expect("a PostgreSQL backend")
    }

    /// Runs `sql` with the append-only guards lifted, as a superuser or the
    /// owner of the file could. The table is `events` on both backends (in
    /// schema `trellis` on PostgreSQL, which is put on the search path).
    pub async fn tamper(&self, sql: &str) {
        match self.kind {
            Kind::Postgres => {
                let client = self.database().superuser().await;
                client
                    .batch_execute(&format!(
                        "SET search_path = trellis; SET session_replication_role = replica; {sql}"
                    ))
                    .await
                    .expect("tampering failed");
            }
            Kind::Sqlite => {
                let path = self
                    .dir
                    .as_ref()
                    .expect("a dir")
                    .join(trellis_eventstore::sqlite::FILE_NAME);
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).expect("open");
                    conn.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
                    conn.execute_batch(&format!(
                        "BEGIN; DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; {sql}; \
                         COMMIT;"
                    ))
                    .expect("tampering failed");
                })
                .await
                .expect("tampering panicked");
            }
        }
    }

    /// Runs `sql` as the log's owner with every guard in place; returns the error text.
    pub async fn try_modify(&self, sql: &str) -> Result<(), String> {
        match self.kind {
            Kind::Postgres => {
                let client = self.database().superuser().await;
                client
                    .batch_execute(&format!("SET search_path = trellis; {sql}"))
                    .await
                    .map_err(|e| {
                        e.as_db_error()
                            .map_or(e.to_string(), |d| d.message().to_owned())
                    })
            }
            Kind::Sqlite => {
                let path = self
                    .dir
                    .as_ref()
                    .expect("a dir")
                    .join(trellis_eventstore::sqlite::FILE_NAME);
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).expect("open");
                    conn.busy_timeout(std::time::Duration::from_secs(10))
                        .expect("busy timeout");
                    conn.execute_batch(&sql).map_err(|e| e.to_string())
                })
                .await
                .expect("modify panicked")
            }
        }
    }

    /// The personal data keys beside this backend's log (a store of its own
    /// on the same database or file).
    pub async fn key_store(&self) -> Arc<dyn trellis_eventstore::vault::KeyStore> {
        match self.kind {
            Kind::Postgres => Arc::new(
                trellis_eventstore::postgres::PostgresStore::connect(
                    &trellis_eventstore::postgres::PostgresConfig::new(&self.database().url),
                )
                .await
                .expect("the key store"),
            ),
            Kind::Sqlite => Arc::new(
                trellis_eventstore::sqlite::SqliteStore::open(self.data_dir())
                    .await
                    .expect("the key store"),
            ),
        }
    }

    /// This backend's log as `trellis serve` writes and reads it: personal
    /// data encrypted with each person's key in `keys`.
    pub fn vaulted(
        &self,
        keys: Arc<dyn trellis_eventstore::vault::KeyStore>,
    ) -> Arc<trellis_eventstore::vault::Vault> {
        Arc::new(trellis_eventstore::vault::Vault::new(
            self.store.clone(),
            keys,
            Arc::new(trellis_commands::personal::DomainPersonalData),
        ))
    }

    pub async fn cleanup(self) {
        drop(self.store);
        if let Some(db) = self.db {
            db.drop_now().await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A stream id of a category with a fresh UUID.
pub fn stream(category: &str) -> StreamId {
    StreamId::for_entity(category, uuid::Uuid::now_v7()).expect("a valid stream id")
}

/// Waits until a read of the log in global order sees every committed event.
/// On PostgreSQL an event reads in global order only once every transaction
/// older than its own has ended (ADR 1), so another test's open
/// transaction can hold a fresh append back a moment; a scan of the
/// streams is not held back, and says how many there are.
pub async fn settle(store: &dyn EventStore) {
    let mut committed = 0;
    trellis_eventstore::scan_streams_after(store, None, 1000, |_| {
        committed += 1;
        Ok::<_, trellis_eventstore::Error>(std::ops::ControlFlow::Continue(()))
    })
    .await
    .expect("scan the streams");
    let mut readable = 0;
    for _ in 0..1200 {
        readable = 0;
        let mut from = trellis_eventstore::Checkpoint::START;
        loop {
            let page = store.read_all(from, 1000).await.expect("read the log");
            let Some(last) = page.last() else { break };
            from = last.checkpoint;
            readable += page.len();
        }
        if readable >= committed {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("after 30 s, {readable} of the {committed} committed events read in global order");
}
