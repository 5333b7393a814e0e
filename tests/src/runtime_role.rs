//! The schema and the roles, as production runs them: every component's
//! migrations applied by the schema's owner (what `trellis migrate` runs),
//! the service connected as a login role that is only a member of
//! `trellis_writer`. Writes, reads, projections (catching up and
//! rebuilding), sign-in, the relay to JetStream and webhook deliveries all
//! work with that role's grants alone, and it never changes the log. Each
//! migration is recorded with its checksum: a schema newer than the binary,
//! and a migration changed after it was applied, are refused on both
//! backends; records made before checksums were kept get theirs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};
use trellis_access::{Access, AccessConfig, NewAccount};
use trellis_commands::{CommandState, CommandsConfig};
use trellis_eventstore::EventStore;
use trellis_eventstore::postgres::{
    self, Migrations, Outcome, PostgresConfig, PostgresStore, RUNTIME_ROLE,
};
use trellis_http::auth::Role;
use trellis_http::{HttpState, SystemClock};
use trellis_notifications::RelayConfig;
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::query::ReadModels;
use trellis_projections::store::ReadStore;
use trellis_projections::store::postgres::PostgresReadStore;
use trellis_tests::{Backend, Kind, TestDatabase};
use trellis_webhooks::{Webhooks, WebhooksConfig, WebhooksState};
use uuid::Uuid;

use crate::http::{Resp, TestApp};

/// Every component's migrations on PostgreSQL, in the order `trellis
/// migrate` applies them (`crates/trellis/src/store.rs`; see
/// [`trellis_migrate_runs_every_component_s_migrations_and_each_is_its_file`]).
const POSTGRES: [Migrations; 4] = [
    postgres::LOG_MIGRATIONS,
    trellis_projections::store::postgres::MIGRATIONS,
    trellis_access::store::postgres::MIGRATIONS,
    trellis_webhooks::store::postgres::MIGRATIONS,
];

/// The same in the embedded file, the log's first.
const SQLITE: [Migrations; 4] = [
    trellis_eventstore::sqlite::LOG_MIGRATIONS,
    trellis_projections::store::sqlite::MIGRATIONS,
    trellis_access::store::sqlite::MIGRATIONS,
    trellis_webhooks::store::sqlite::MIGRATIONS,
];

/// The binary's lists of what `trellis migrate` runs, as its source names them.
const TRELLIS_STORE: &str = include_str!("../../crates/trellis/src/store.rs");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn nats_url() -> String {
    std::env::var("TRELLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The message of a refusal, whatever the error type.
fn refusal<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> String {
    match result {
        Ok(_) => panic!("{what} was not refused"),
        Err(e) => e.to_string(),
    }
}

/// A URL of the test's database for another role (trust authentication, as
/// the test server has it).
fn url_as(db: &TestDatabase, user: &str) -> String {
    use trellis_eventstore::drivers::tokio_postgres::config::{Config, Host};
    let config: Config = db.url.parse().expect("a valid URL");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{user}@{host}:{port}/{}", db.name)
}

async fn connect(url: &str) -> trellis_eventstore::drivers::tokio_postgres::Client {
    use trellis_eventstore::drivers::tokio_postgres;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {e}"));
    tokio::spawn(connection);
    client
}

/// A cluster-wide role of the test's own, dropped at the end.
struct TestRole {
    name: String,
    url: String,
}

impl TestRole {
    /// A login role that is a member of `trellis_writer` and nothing else,
    /// as the README has the operator make it.
    async fn runtime(db: &TestDatabase) -> TestRole {
        Self::create(db, "app", &format!("LOGIN IN ROLE {RUNTIME_ROLE}")).await
    }

    /// A login role that may make roles (the first migration makes
    /// `trellis_writer`), made the owner of the test's database.
    async fn owner(db: &TestDatabase) -> TestRole {
        let role = Self::create(db, "owner", "LOGIN CREATEROLE").await;
        db.superuser()
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {} OWNER TO {}",
                db.name, role.name
            ))
            .await
            .expect("the owner owns the database");
        role
    }

    async fn create(db: &TestDatabase, what: &str, options: &str) -> TestRole {
        let name = format!("trellis_test_{what}_{}", Uuid::now_v7().simple());
        db.superuser()
            .await
            .batch_execute(&format!("CREATE ROLE {name} {options}"))
            .await
            .expect("create the role");
        TestRole {
            url: url_as(db, &name),
            name,
        }
    }

    /// Drops the role (after the database, which it may own).
    async fn drop_now(self) {
        let admin = connect(&trellis_tests::admin_url()).await;
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name))
            .await
            .expect("drop the role");
    }
}

/// Every component's migrations applied as `client`'s role, as `trellis
/// migrate` does.
async fn migrate_all(
    client: &mut trellis_eventstore::drivers::tokio_postgres::Client,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for migrations in &POSTGRES {
        outcomes.push(
            postgres::migrate(client, migrations)
                .await
                .unwrap_or_else(|e| panic!("the {} migrations: {e}", migrations.component)),
        );
    }
    outcomes
}

fn files(migrations: &Migrations) -> Vec<String> {
    migrations
        .steps
        .iter()
        .map(|&(version, name, _)| migrations.file(version, name))
        .collect()
}

// ---- the whole service as the runtime role ------------------------------------

/// The router `trellis serve` builds (as `TestApp::spawn_serving` does),
/// over components opened by the runtime role.
fn serving(
    app: &mut TestApp,
    read: Arc<dyn ReadStore>,
    access: &Access,
    hooks: &Webhooks,
) -> Router {
    let http = HttpState::new(
        app.store.clone(),
        app.state.http().token_key().clone(),
        Arc::new(SystemClock),
    )
    .with_authenticator(Arc::new(access.clone()));
    let state = CommandState::new(http.clone(), CommandsConfig::default());
    let reads = trellis_queries::QueryState::new(http.clone(), ReadModels::new(read));
    let hooks = WebhooksState::new(http.clone(), hooks.clone());
    let page_writes = trellis_http::app(
        http.clone(),
        [
            trellis_commands::api(state.clone()),
            trellis_webhooks::api(hooks.clone()),
        ],
    );
    app.state = state.clone();
    trellis_http::app(
        http,
        [
            trellis_commands::api(state),
            trellis_queries::api(reads.clone()),
            trellis_webhooks::api(hooks),
            trellis_dashboard::api(
                trellis_dashboard::DashboardState::new(reads)
                    .with_writes(page_writes)
                    .with_access(access.clone(), false),
            ),
        ],
    )
}

/// A webhook receiver on a loopback port: the bodies it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let router = Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(body);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{address}/hook"), received)
}

async fn eventually(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Resp {
    let r = app
        .request(Method::GET, path, token, None, Bytes::new(), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_as_a_login_role_with_only_the_runtime_grants() {
    let app = TestApp::spawn(Kind::Postgres).await;
    let db = app.backend.database();
    // The schema's owner (the superuser that made the database) migrates
    // every component; the log's were applied as the app opened it.
    let outcomes = migrate_all(&mut db.superuser().await).await;
    assert!(outcomes[0].applied.is_empty(), "{outcomes:?}");
    for (outcome, migrations) in outcomes.iter().zip(&POSTGRES).skip(1) {
        assert_eq!(outcome.applied, files(migrations));
    }
    let role = TestRole::runtime(db).await;

    // Each component checks its migrations as the runtime role, which may
    // not create anything in the schema: opening applies nothing.
    let log = PostgresStore::connect(&PostgresConfig::new(&role.url))
        .await
        .expect("the runtime role opens the log");
    let pool = log.pool().clone();
    let read: Arc<dyn ReadStore> = Arc::new(
        PostgresReadStore::new(pool.clone())
            .await
            .expect("the runtime role opens the read models"),
    );
    let access = Access::postgres(
        pool.clone(),
        ReadModels::new(read.clone()),
        AccessConfig::default(),
    )
    .await
    .expect("the runtime role opens the sign-in tables");
    let webhooks = WebhooksConfig {
        retry_base: Duration::from_millis(100),
        poll: Duration::from_millis(100),
        allow_private_targets: true,
        ..WebhooksConfig::default()
    };
    let hooks = Webhooks::postgres(pool.clone(), webhooks)
        .await
        .expect("the runtime role opens the webhook tables");
    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let mut app = app.with_store(store.clone());
    app.router = serving(&mut app, read.clone(), &access, &hooks);
    let admin = app.admin();

    // Webhooks: a subscription, its dispatcher and sender running.
    let (hook_url, received) = receiver().await;
    let registered = app
        .post_json(
            "/v1/webhooks",
            &admin,
            &json!({ "url": hook_url, "event_types": ["RepJoined"] }),
        )
        .await;
    registered.expect(201);
    let webhook = registered.id();
    let (stop_hooks, hooks_stopped) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(trellis_webhooks::run(store.clone(), hooks.clone(), async {
        let _ = hooks_stopped.await;
    }));

    // Writes through the API: each an append through the append functions.
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    app.give_feedback(&world, rep).await;
    app.action_item(&world, rep).await;
    app.support_request(rep).await;
    app.skill_assessment(&world, rep).await;

    // Projections: caught up, then read through the API.
    crate::forms::settle(&app).await;
    let engine = Engine::new(store.clone(), read.clone());
    let growth = Growth::new(GrowthSettings::default());
    engine
        .catch_up(&growth)
        .await
        .expect("the projection catches up as the runtime role")
        .expect("the runner's lease");
    let profile = get(&app, &format!("/v1/reps/{rep}/profile"), &admin).await;
    assert_eq!(
        profile.json["profile"]["name"],
        "Riley Rep",
        "{}",
        profile.text()
    );
    get(&app, &format!("/v1/reps/{rep}/timeline"), &admin).await;
    get(&app, &format!("/v1/teams/{}/view", world.team), &admin).await;
    get(&app, "/v1/events", &admin).await;
    // A rebuild writes a new generation and deletes the retired one; what it
    // serves is what the live projection served.
    engine
        .rebuild(&growth, &mut |_| {})
        .await
        .expect("a rebuild as the runtime role");
    let rebuilt = get(&app, &format!("/v1/reps/{rep}/profile"), &admin).await;
    assert_eq!(rebuilt.json, profile.json);

    // Sign-in: a session from a developer token, an account with a one-time
    // link, a service account's token.
    let home = crate::forms::browser(&app, Method::GET, "/admin", &admin, None, &[]).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    let now = Utc::now();
    let account = access
        .add_account(
            NewAccount {
                role: Role::Rep,
                person: Some(rep),
                name: None,
                email: Some("riley@example.com".to_owned()),
                oidc_subject: None,
            },
            "admin:alex",
            now,
        )
        .await
        .expect("an account for the rep");
    let (link, _) = access
        .create_link(account.id, None, "admin:alex", now)
        .await
        .expect("a sign-in link");
    assert_eq!(
        access.use_link(&link, now).await.expect("the link").id,
        account.id
    );
    let service = access
        .create_service_account("CRM sync", &["reads:read".to_owned()], "admin:alex", now)
        .await
        .expect("a service account");
    get(&app, "/v1/reps", &service.token).await;
    assert!(
        access
            .revoke_service_account(service.account.id, "admin:alex", now)
            .await
            .expect("revoked")
    );

    // The relay publishes the whole log to a stream of the test's own,
    // keeping its checkpoint as the runtime role.
    let tag = Uuid::now_v7().simple().to_string();
    let tag = &tag[tag.len() - 12..];
    let stream = format!("TEST_RUNTIME_ROLE_{tag}");
    let config = RelayConfig::for_stream(stream.clone(), format!("test.{tag}.events"))
        .with_postgres_lease(&role.url);
    let relay =
        trellis_notifications::spawn(store.clone(), &nats_url(), config).expect("a valid NATS URL");
    let events = u64::try_from(app.events_in_log().await).expect("a count");
    tokio::time::timeout(Duration::from_secs(30), relay.wait_acked(events))
        .await
        .expect("the relay publishes every event");
    relay.stop().await.expect("a clean stop");
    let js = jetstream::new(
        async_nats::connect(nats_url())
            .await
            .expect("the test broker"),
    );
    let published = js
        .get_stream(&stream)
        .await
        .expect("the stream")
        .info()
        .await
        .expect("its state")
        .state
        .messages;
    assert_eq!(published, events);
    let _ = js.delete_stream(&stream).await;

    // The webhook's delivery, signed and recorded as delivered.
    eventually(
        "the receiver gets RepJoined",
        Duration::from_secs(30),
        async || {
            received
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|body| body["type"] == "RepJoined")
        },
    )
    .await;
    eventually(
        "the delivery is recorded as delivered",
        Duration::from_secs(30),
        async || {
            let path = format!("/v1/webhooks/{webhook}/deliveries?status=delivered");
            let r = get(&app, &path, &admin).await;
            r.json["items"].as_array().is_some_and(|d| !d.is_empty())
        },
    )
    .await;
    let _ = stop_hooks.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), sender).await;

    // And the role still may not change the log itself.
    let service_role = connect(&role.url).await;
    for sql in [
        "UPDATE trellis.events SET actor = 'x'",
        "DELETE FROM trellis.events",
        "TRUNCATE trellis.events",
        "CREATE TABLE trellis.mine (x int)",
    ] {
        let e = service_role.batch_execute(sql).await.expect_err(sql);
        let message = e.as_db_error().map(|db| db.message().to_owned());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.starts_with("permission denied")),
            "{sql}: {message:?}"
        );
    }
    drop(service_role);

    drop((engine, access, hooks, read, store, log, pool));
    app.cleanup().await;
    role.drop_now().await;
}

// ---- trellis migrate, as a schema owner that is not a superuser ---------------

#[tokio::test]
async fn trellis_migrate_runs_as_the_schema_owner_and_grants_the_runtime_role_what_each_component_uses()
 {
    let db = TestDatabase::create().await;
    let owner = TestRole::owner(&db).await;
    let mut client = connect(&owner.url).await;

    let first = migrate_all(&mut client).await;
    for (outcome, migrations) in first.iter().zip(&POSTGRES) {
        assert_eq!(
            outcome.applied,
            files(migrations),
            "{}",
            migrations.component
        );
        assert_eq!(outcome.version, migrations.latest());
    }
    let again = migrate_all(&mut client).await;
    assert!(
        again
            .iter()
            .all(|o| o.applied.is_empty() && o.checksummed.is_empty()),
        "a second run applies nothing: {again:?}"
    );
    // Each applied migration is recorded with the SHA-256 of its text.
    for migrations in &POSTGRES {
        let recorded: BTreeMap<i32, String> = client
            .query(
                &format!(
                    "SELECT version, checksum FROM trellis.{}_migrations",
                    migrations.component
                ),
                &[],
            )
            .await
            .expect("the records")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let expected: BTreeMap<i32, String> = migrations
            .steps
            .iter()
            .map(|&(version, _, text)| (version, Migrations::checksum(text)))
            .collect();
        assert_eq!(recorded, expected, "{}", migrations.component);
    }
    let known: Vec<&Migrations> = POSTGRES.iter().collect();
    assert!(
        postgres::unknown_components(&client, &known)
            .await
            .expect("components")
            .is_empty()
    );

    // What the runtime role may do: what each component's code does, no more.
    let grants: BTreeMap<String, Vec<String>> = postgres::runtime_grants(&client)
        .await
        .expect("the grants")
        .into_iter()
        .map(|g| (format!("{} {}", g.kind, g.name), g.privileges))
        .collect();
    let expected: &[(&str, &[&str])] = &[
        ("table events", &["SELECT"]),
        (
            "table subscriber_checkpoints",
            &["SELECT", "INSERT", "UPDATE"],
        ),
        ("function append_one", &["EXECUTE"]),
        ("function append_events", &["EXECUTE"]),
        ("function append_batch", &["EXECUTE"]),
        // Keys are added and erased (through the function), never changed
        // back or deleted.
        ("table personal_data_keys", &["SELECT", "INSERT"]),
        ("function erase_data_key", &["EXECUTE"]),
        ("sequence events_global_position_seq", &[]),
        ("table schema_migrations", &["SELECT"]),
        ("table projection_migrations", &["SELECT"]),
        ("table access_migrations", &["SELECT"]),
        ("table webhook_migrations", &["SELECT"]),
        (
            "table projection_checkpoints",
            &["SELECT", "INSERT", "UPDATE", "DELETE"],
        ),
        (
            "table read_models",
            &["SELECT", "INSERT", "UPDATE", "DELETE"],
        ),
        ("view active_read_models", &[]),
        ("view rep_profiles", &[]),
        // Deleted when the person is erased.
        ("table accounts", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
        ("table sessions", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
        (
            "table sign_in_links",
            &["SELECT", "INSERT", "UPDATE", "DELETE"],
        ),
        ("table service_accounts", &["SELECT", "INSERT", "UPDATE"]),
        ("table sign_in_flows", &["SELECT", "INSERT", "DELETE"]),
        (
            "table webhook_subscriptions",
            &["SELECT", "INSERT", "UPDATE"],
        ),
        ("table webhook_deliveries", &["SELECT", "INSERT", "UPDATE"]),
        ("table webhook_attempts", &["SELECT", "INSERT", "UPDATE"]),
        ("sequence webhook_attempts_id_seq", &["USAGE"]),
    ];
    for (what, privileges) in expected {
        assert_eq!(
            grants.get(*what).map(Vec::as_slice),
            Some(
                &privileges
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect::<Vec<_>>()[..]
            ),
            "{what}: {grants:#?}"
        );
    }
    // Every table any component keeps is one the role may at least read, and
    // nothing is the role's to empty, reference or trigger on.
    for (what, privileges) in &grants {
        if what.starts_with("table ") {
            assert!(
                privileges.iter().any(|p| p == "SELECT"),
                "{what}: {privileges:?}"
            );
        }
        for never in ["TRUNCATE", "REFERENCES", "TRIGGER"] {
            assert!(
                !privileges.iter().any(|p| p == never),
                "{what}: {privileges:?}"
            );
        }
    }

    // The runtime role opens every component, applying nothing.
    let role = TestRole::runtime(&db).await;
    let log = PostgresStore::connect(&PostgresConfig::new(&role.url))
        .await
        .expect("the log");
    let read = PostgresReadStore::new(log.pool().clone())
        .await
        .expect("the read models");
    Webhooks::postgres(log.pool().clone(), WebhooksConfig::default())
        .await
        .expect("the webhook tables");
    Access::postgres(
        log.pool().clone(),
        ReadModels::new(Arc::new(read)),
        AccessConfig::default(),
    )
    .await
    .expect("the sign-in tables");
    // A migration it cannot apply: it says who must.
    const LATER: Migrations = Migrations {
        component: "later",
        dir: "crates/later/migrations/postgres",
        steps: &[(1, "later", "CREATE TABLE trellis.later (x integer)")],
    };
    let mut service = log.pool().get().await.expect("a connection");
    let message = refusal(
        postgres::prepare(&mut service, &LATER).await,
        "a pending migration the role may not apply",
    );
    assert!(
        message.contains("0001_later.sql is not applied yet")
            && message.contains("run `trellis migrate` as the owner of schema trellis"),
        "{message}"
    );
    drop(service);
    drop(log);

    drop(client);
    db.drop_now().await;
    role.drop_now().await;
    owner.drop_now().await;
}

// ---- the binary's list, and the files -----------------------------------------

/// The entries of `const NAME: [Migrations; N] = [ … ];` in `source`.
fn listed(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub const {name}: [Migrations;"))
        .unwrap_or_else(|| panic!("no const {name} in crates/trellis/src/store.rs"));
    let body = &source[start..];
    let body = &body[body.find("= [").expect("a list") + 3..];
    let body = &body[..body.find("];").expect("the list's end")];
    body.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| entry.trim_start_matches("postgres::").to_owned())
        .collect()
}

#[test]
fn trellis_migrate_runs_every_component_s_migrations_and_each_is_its_file() {
    let postgres = [
        "LOG_MIGRATIONS",
        "trellis_projections::store::postgres::MIGRATIONS",
        "trellis_access::store::postgres::MIGRATIONS",
        "trellis_webhooks::store::postgres::MIGRATIONS",
    ];
    assert_eq!(
        listed(TRELLIS_STORE, "POSTGRES"),
        postgres,
        "trellis migrate runs another list: run the same here (POSTGRES)"
    );
    assert_eq!(
        listed(TRELLIS_STORE, "SQLITE"),
        [
            "trellis_projections::store::sqlite::MIGRATIONS",
            "trellis_access::store::sqlite::MIGRATIONS",
            "trellis_webhooks::store::sqlite::MIGRATIONS",
        ],
        "trellis migrate runs another list: run the same here (SQLITE)"
    );
    // Each step is its file, word for word.
    let mut steps = BTreeSet::new();
    for migrations in POSTGRES.iter().chain(&SQLITE) {
        for &(version, name, text) in migrations.steps {
            let file = migrations.file(version, name);
            let on_disk = std::fs::read_to_string(workspace().join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(on_disk, text, "{file}");
            steps.insert(file);
        }
    }
    // Each migration file of each crate is a step that `trellis migrate` runs.
    for krate in std::fs::read_dir(workspace().join("crates")).expect("crates") {
        let krate = krate.expect("a crate").path();
        for backend in ["postgres", "sqlite"] {
            let Ok(files) = std::fs::read_dir(krate.join("migrations").join(backend)) else {
                continue;
            };
            for file in files {
                let path = file.expect("a file").path();
                let relative = path
                    .strip_prefix(workspace())
                    .expect("in the workspace")
                    .to_string_lossy()
                    .into_owned();
                assert!(
                    steps.contains(&relative),
                    "{relative} is not a step of any component's migrations, so `trellis \
                     migrate` never applies it"
                );
            }
        }
    }
}

// ---- refusals, on both backends --------------------------------------------------

/// Writes `sql` into the embedded file of `backend`, past the store.
fn sqlite_exec(backend: &Backend, sql: &str) {
    let conn = rusqlite::Connection::open(
        backend
            .data_dir()
            .join(trellis_eventstore::sqlite::FILE_NAME),
    )
    .expect("open the file");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn.execute_batch(sql).expect("write the file");
}

async fn a_schema_newer_than_this_binary_is_refused(kind: Kind) {
    let backend = Backend::new(kind).await;
    let newer = "INSERT INTO {table} (version, name, checksum) \
                 VALUES (99, 'from_a_newer_release', '00')";
    let message = match kind {
        Kind::Postgres => {
            let mut owner = backend.database().superuser().await;
            owner
                .batch_execute(&newer.replace("{table}", "trellis.schema_migrations"))
                .await
                .expect("a record of a newer release");
            let owner_run = refusal(
                postgres::migrate(&mut owner, &postgres::LOG_MIGRATIONS).await,
                "trellis migrate on a newer schema",
            );
            assert!(owner_run.contains("newer than this trellis"), "{owner_run}");
            // A component this binary does not have at all.
            owner
                .batch_execute("CREATE TABLE trellis.reports_migrations (version integer)")
                .await
                .expect("a newer component");
            let known: Vec<&Migrations> = POSTGRES.iter().collect();
            assert_eq!(
                postgres::unknown_components(&owner, &known)
                    .await
                    .expect("components"),
                ["reports_migrations"]
            );
            refusal(
                PostgresStore::connect(&PostgresConfig::new(&backend.database().url)).await,
                "opening a newer schema",
            )
        }
        Kind::Sqlite => {
            sqlite_exec(&backend, &newer.replace("{table}", "schema_migrations"));
            refusal(
                trellis_eventstore::sqlite::SqliteStore::open(backend.data_dir()).await,
                "opening a newer file",
            )
        }
    };
    assert!(
        message.contains(
            "the database's schema is newer than this trellis: it holds schema migration 99 \
             (0099_from_a_newer_release.sql)"
        ) && message.contains("upgrade trellis"),
        "{message}"
    );
    backend.cleanup().await;
}

/// `migrations` with the first file edited after its release.
fn edited(migrations: Migrations, edit: impl Fn(&str) -> String) -> Migrations {
    let mut steps = migrations.steps.to_vec();
    let text: &'static str = Box::leak(edit(steps[0].2).into_boxed_str());
    steps[0].2 = text;
    Migrations {
        steps: Box::leak(steps.into_boxed_slice()),
        ..migrations
    }
}

async fn a_migration_changed_after_it_was_applied_is_refused_naming_its_file(kind: Kind) {
    let backend = Backend::new(kind).await;
    let appended = |text: &str| format!("{text}\n-- an edit after the release\n");
    let crlf = |text: &str| text.replace('\n', "\r\n");
    let (message, file) = match kind {
        Kind::Postgres => {
            let migrations = trellis_webhooks::store::postgres::MIGRATIONS;
            let store = PostgresStore::connect(&PostgresConfig::new(&backend.database().url))
                .await
                .expect("the log");
            let pool = store.pool().clone();
            Webhooks::postgres(pool.clone(), WebhooksConfig::default())
                .await
                .expect("the webhook tables");
            let mut client = pool.get().await.expect("a connection");
            // The same text with Windows line endings is the same migration.
            postgres::prepare(&mut client, &edited(migrations, crlf))
                .await
                .expect("a checkout with CRLF line endings");
            let changed = edited(migrations, appended);
            let owner_run = refusal(
                postgres::migrate(&mut client, &changed).await,
                "trellis migrate with a changed file",
            );
            (
                format!(
                    "{owner_run} / {}",
                    refusal(
                        postgres::prepare(&mut client, &changed).await,
                        "a changed file"
                    )
                ),
                migrations.file(1, "webhooks"),
            )
        }
        Kind::Sqlite => {
            use trellis_eventstore::sqlite::ComponentConnection;
            let migrations = trellis_webhooks::store::sqlite::MIGRATIONS;
            let file = backend
                .data_dir()
                .join(trellis_eventstore::sqlite::FILE_NAME);
            Webhooks::sqlite(&file, WebhooksConfig::default())
                .await
                .expect("the webhook tables");
            ComponentConnection::open(&file, edited(migrations, crlf))
                .await
                .expect("a checkout with CRLF line endings");
            (
                refusal(
                    ComponentConnection::open(&file, edited(migrations, appended)).await,
                    "a changed file",
                ),
                migrations.file(1, "webhooks"),
            )
        }
    };
    assert!(
        message.contains(&format!(
            "{file} was changed after it was applied to this database"
        )) && message.contains("put the change in a new migration"),
        "{message}"
    );
    backend.cleanup().await;
}

async fn migrations_applied_before_checksums_were_kept_get_theirs(kind: Kind) {
    let backend = Backend::new(kind).await;
    match kind {
        Kind::Postgres => {
            let db = backend.database();
            let mut owner = db.superuser().await;
            // As the runner before checksums left its records.
            owner
                .batch_execute(&format!(
                    "ALTER TABLE trellis.schema_migrations DROP COLUMN checksum; \
                     REVOKE SELECT ON trellis.schema_migrations FROM {RUNTIME_ROLE}"
                ))
                .await
                .expect("records without checksums");
            let role = TestRole::runtime(db).await;
            let message = refusal(
                PostgresStore::connect(&PostgresConfig::new(&role.url)).await,
                "the runtime role on records without checksums",
            );
            assert!(message.contains("run `trellis migrate`"), "{message}");
            let outcome = postgres::migrate(&mut owner, &postgres::LOG_MIGRATIONS)
                .await
                .expect("trellis migrate");
            assert_eq!(outcome.checksummed, files(&postgres::LOG_MIGRATIONS));
            assert!(outcome.applied.is_empty());
            PostgresStore::connect(&PostgresConfig::new(&role.url))
                .await
                .expect("the runtime role opens the log once the records have checksums");
            backend.cleanup().await;
            role.drop_now().await;
        }
        Kind::Sqlite => {
            let dir = backend.data_dir().to_path_buf();
            let file = dir.join(trellis_eventstore::sqlite::FILE_NAME);
            Webhooks::sqlite(&file, WebhooksConfig::default())
                .await
                .expect("the webhook tables");
            // As files were before: the log's migrations counted in
            // user_version only, a component's records without name or
            // checksum.
            sqlite_exec(
                &backend,
                "DROP TABLE schema_migrations; \
                 ALTER TABLE webhook_migrations DROP COLUMN checksum; \
                 ALTER TABLE webhook_migrations DROP COLUMN name;",
            );
            let outcomes = trellis_eventstore::sqlite::migrate_dir(&dir, &SQLITE[1..])
                .await
                .expect("trellis migrate on the embedded store");
            assert_eq!(
                outcomes[0].checksummed,
                files(&trellis_eventstore::sqlite::LOG_MIGRATIONS)
            );
            assert_eq!(outcomes[3].checksummed, files(&SQLITE[3]));
            // The projection and sign-in tables were never opened: applied now.
            assert_eq!(outcomes[1].applied, files(&SQLITE[1]));
            assert_eq!(outcomes[2].applied, files(&SQLITE[2]));
            let again = trellis_eventstore::sqlite::migrate_dir(&dir, &SQLITE[1..])
                .await
                .expect("again");
            assert!(
                again
                    .iter()
                    .all(|o| o.applied.is_empty() && o.checksummed.is_empty()),
                "{again:?}"
            );
            backend.reopen().await;
            backend.cleanup().await;
        }
    }
}

crate::http::on_each_backend!(
    a_schema_newer_than_this_binary_is_refused,
    a_migration_changed_after_it_was_applied_is_refused_naming_its_file,
    migrations_applied_before_checksums_were_kept_get_theirs,
);
