//! A typed test client for the command service: the real router driven with
//! `tower::ServiceExt::oneshot` (no network), over a store of the test's own
//! (PostgreSQL or embedded), with tokens minted per role and fixtures that
//! build what a write needs (a team, a competency, a standard, a rep, …).
//! [`TestApp::spawn_serving`] swaps in the router `trellis serve` builds,
//! every service mounted; [`declared_routes`] and its siblings read the
//! routes each service declares from its source.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use trellis_access::{Access, AccessConfig};
use trellis_commands::{CommandState, CommandsConfig};
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{EventStore, RecordedEvent, StreamId};
use trellis_http::auth::{Claims, Role, TokenKey};
use trellis_http::{DEFAULT_BODY_LIMIT, HttpState, SystemClock};
use trellis_projections::query::ReadModels;
use trellis_projections::store::ReadStore;
use trellis_projections::store::postgres::PostgresReadStore;
use trellis_projections::store::sqlite::SqliteReadStore;
use trellis_tests::{Backend, Kind};
use trellis_webhooks::{Webhooks, WebhooksConfig};
use uuid::Uuid;

/// The secret every test app signs its tokens with (32 bytes).
pub const SECRET: &[u8; 32] = b"trellis-http-tests-secret-32byte";

/// The start date of every fixture rep; request dates are on or after it.
pub const START_DATE: &str = "2026-01-05";

/// Generates one `#[tokio::test]` per backend for each test, each given a
/// fresh [`TestApp`] that is cleaned up afterwards.
///
/// `both_backends!(serving: …)` gives each a [`TestApp::spawn_serving`]
/// instead (tests under `serving::postgres` and `serving::sqlite`).
macro_rules! both_backends {
    (serving: $($name:ident),* $(,)?) => {
        mod serving {
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let app = crate::http::TestApp::spawn_serving(trellis_tests::Kind::Postgres).await;
                        super::super::$name(&app).await;
                        app.cleanup().await;
                    }
                )*
            }
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let app = crate::http::TestApp::spawn_serving(trellis_tests::Kind::Sqlite).await;
                        super::super::$name(&app).await;
                        app.cleanup().await;
                    }
                )*
            }
        }
    };
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = crate::http::TestApp::spawn(trellis_tests::Kind::Postgres).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = crate::http::TestApp::spawn(trellis_tests::Kind::Sqlite).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
    };
}
pub(crate) use both_backends;

/// For tests written as `async fn name(kind: Kind)`: `on_each_backend!(a, b)`
/// runs each on PostgreSQL and on the embedded store, as `a::postgres` and
/// `a::sqlite` (a module may share its name with the function it runs).
/// `on_each_backend!(multi_thread: …)` runs them on two worker threads.
macro_rules! on_each_backend {
    (multi_thread: $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(trellis_tests::Kind::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(trellis_tests::Kind::Sqlite).await;
            }
        }
    )+};
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres() {
                super::$name(trellis_tests::Kind::Postgres).await;
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name(trellis_tests::Kind::Sqlite).await;
            }
        }
    )+};
}
pub(crate) use on_each_backend;

/// What the service answered.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `id` of what a create returned.
    pub fn id(&self) -> Uuid {
        self.json["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(|| panic!("no id in the response {}: {}", self.status, self.text()))
    }

    pub fn stream_version(&self) -> u64 {
        self.json["stream_version"]
            .as_u64()
            .unwrap_or_else(|| panic!("no stream_version in {}: {}", self.status, self.text()))
    }

    /// Panics with the body unless the status is `status`.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text()
        );
        self
    }

    /// Checks an RFC 9457 problem: the status, the content type, and `type`,
    /// `title`, `status`, `detail`; `kind` is the last segment of `type`.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, kind: &str) -> &Self {
        self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "a {status} must be application/problem+json: {}",
            self.text()
        );
        let p = &self.json;
        assert_eq!(
            p["type"].as_str(),
            Some(format!("https://trellis.dev/problems/{kind}").as_str()),
            "problem type: {}",
            self.text()
        );
        assert!(
            p["title"].as_str().is_some_and(|t| !t.is_empty()),
            "a problem has a title: {}",
            self.text()
        );
        assert_eq!(p["status"].as_u64(), Some(u64::from(status)));
        assert!(
            p["detail"].as_str().is_some_and(|d| d.len() > 10),
            "a problem has a detail sentence: {}",
            self.text()
        );
        self
    }

    /// The `errors` of a validation problem, as (field, reason).
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or_default().to_owned(),
                            e["reason"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A 422 validation problem whose `errors` name `field`; returns that reason.
    #[track_caller]
    pub fn expect_invalid_field(&self, field: &str) -> String {
        self.expect_problem(422, "validation");
        self.field_errors()
            .into_iter()
            .find(|(f, _)| f == field)
            .map(|(_, reason)| reason)
            .unwrap_or_else(|| panic!("no error names the field {field:?}: {}", self.text()))
    }
}

/// The command service over a backend of the test's own.
#[derive(Debug)]
pub struct TestApp {
    pub backend: Backend,
    pub state: CommandState,
    pub router: Router,
    /// The log as `trellis serve` has it: personal data encrypted with each
    /// person's key in `keys` (the backend's raw log is `backend.store`).
    pub store: Arc<dyn EventStore>,
    keys: Arc<dyn trellis_eventstore::vault::KeyStore>,
    key: TokenKey,
    access: Option<Access>,
    /// A browser's session cookie per token signed in with (`name=value`).
    sessions: std::sync::Mutex<BTreeMap<String, String>>,
    /// How long the pages' forms wait for the read models to show what
    /// they recorded (None: they do not, and tests project by hand).
    page_wait: Option<std::time::Duration>,
}

impl TestApp {
    /// How many events the log holds, committed, whatever the global
    /// readers' horizon (on PostgreSQL `head()` lags behind transactions
    /// still running elsewhere on the server; this does not).
    pub async fn events_in_log(&self) -> usize {
        let mut count = 0;
        trellis_eventstore::scan_streams_after(&*self.store, None, 1000, |_| {
            count += 1;
            Ok::<_, trellis_eventstore::Error>(std::ops::ControlFlow::Continue(()))
        })
        .await
        .expect("scan");
        count
    }

    pub async fn spawn(kind: Kind) -> Self {
        Self::with_config(kind, DEFAULT_BODY_LIMIT, CommandsConfig::default()).await
    }

    /// The write API accepting bodies of at most `body_limit` bytes, with `config`.
    pub async fn with_config(kind: Kind, body_limit: usize, mut config: CommandsConfig) -> Self {
        let backend = Backend::new(kind).await;
        let key = TokenKey::new(SECRET.to_vec()).expect("a 32-byte secret");
        // Erasing goes through the vault, which drops the key it kept.
        let vault = backend.vaulted(backend.key_store().await);
        let keys: Arc<dyn trellis_eventstore::vault::KeyStore> = vault.clone();
        let store: Arc<dyn EventStore> = vault;
        let http = HttpState::new(store.clone(), key.clone(), Arc::new(SystemClock))
            .with_body_limit(body_limit);
        config
            .erasure
            .get_or_insert_with(|| trellis_commands::Erasure {
                keys: keys.clone(),
                holders: Vec::new(),
                leaders: None,
            });
        let state = CommandState::new(http.clone(), config);
        let router = trellis_http::app(http, [trellis_commands::api(state.clone())]);
        TestApp {
            backend,
            state,
            router,
            store,
            keys,
            key,
            access: None,
            sessions: Default::default(),
            page_wait: None,
        }
    }

    /// The same app (its database, its signing key) over `store`: the
    /// command service rebuilt on it, with the default configuration.
    pub fn with_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.state = self.state_over(store.clone());
        self.router = writes(self.state.clone());
        self.store = store;
        self
    }

    /// The app with the router `trellis serve` builds
    /// (`crates/trellis/src/serve.rs`): the write API, the read API, the
    /// webhook admin API and the dashboard, and `/openapi.json` merging the
    /// documents of the three APIs.
    /// `trellis_serve_mounts_the_apis_the_serving_test_app_mounts` checks
    /// that serve.rs mounts the same.
    pub async fn spawn_serving(kind: Kind) -> Self {
        Self::spawn_serving_with(kind, AccessConfig::default()).await
    }

    /// The same, with sessions and links lasting as `config` says.
    pub async fn spawn_serving_with(kind: Kind, config: AccessConfig) -> Self {
        let mut app = Self::spawn(kind).await;
        app.serve(config, false).await;
        app
    }

    /// The same, with forms that wait, at most `max`, for the read models
    /// to show what they recorded, as `trellis serve`'s do.
    pub async fn spawn_serving_showing_writes(kind: Kind, max: std::time::Duration) -> Self {
        let mut app = Self::spawn(kind).await;
        app.page_wait = Some(max);
        app.serve(AccessConfig::default(), false).await;
        app
    }

    /// The same, with a public URL that is https: every cookie is Secure.
    pub async fn spawn_serving_https(kind: Kind) -> Self {
        let mut app = Self::spawn(kind).await;
        app.serve(AccessConfig::default(), true).await;
        app
    }

    /// As if the server restarted: the store opened again, every API and
    /// the access tables built anew over the same database or file.
    pub async fn restart_serving(&mut self, config: AccessConfig) {
        let vault = Arc::new(trellis_eventstore::vault::Vault::new(
            self.backend.reopen().await,
            self.backend.key_store().await,
            Arc::new(trellis_commands::personal::DomainPersonalData),
        ));
        self.keys = vault.clone();
        self.store = vault;
        self.serve(config, false).await;
    }

    /// Builds the serving router over the app's store.
    async fn serve(&mut self, config: AccessConfig, https: bool) {
        let app = self;
        let read = read_store(&app.backend).await;
        let access = access(&app.backend, ReadModels::new(read.clone()), config).await;
        let http = HttpState::new(app.store.clone(), app.key.clone(), Arc::new(SystemClock))
            .with_authenticator(Arc::new(access.clone()));
        let state = CommandState::new(
            http.clone(),
            CommandsConfig {
                erasure: Some(trellis_commands::Erasure {
                    keys: app.keys.clone(),
                    holders: vec![Arc::new(access.clone())],
                    leaders: Some(Arc::new(TeamLeaders(ReadModels::new(read.clone())))),
                }),
                ..CommandsConfig::default()
            },
        );
        let hooks = webhooks(&app.backend, crate::http::local_receivers()).await;
        let reads = trellis_queries::QueryState::new(http.clone(), ReadModels::new(read));
        let hooks = trellis_webhooks::WebhooksState::new(http.clone(), hooks);
        // As `trellis serve` wires it: the pages write through the write
        // and webhook APIs, and sign people in with the access tables.
        let page_writes = trellis_http::app(
            http.clone(),
            [
                trellis_commands::api(state.clone()),
                trellis_webhooks::api(hooks.clone()),
            ],
        );
        app.router = trellis_http::app(
            http.clone(),
            [
                trellis_commands::api(state.clone()),
                trellis_queries::api_with_access(reads.clone(), access.clone()),
                trellis_webhooks::api(hooks),
                trellis_dashboard::api({
                    let pages = trellis_dashboard::DashboardState::new(reads)
                        .with_writes(page_writes)
                        .with_access(access.clone(), https);
                    match app.page_wait {
                        Some(max) => pages.showing_writes_within(max),
                        None => pages,
                    }
                }),
            ],
        );
        app.state = state;
        app.access = Some(access);
    }

    /// The cookie (`trellis_session=…`) of a browser signed in with `token`
    /// (`GET /login?token=…`): one session per token, so the CSRF token a
    /// page shows fits the forms posted after it.
    pub async fn session_cookie(&self, token: &str) -> String {
        if let Some(cookie) = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
        {
            return cookie.clone();
        }
        let login = self.get(&format!("/login?token={token}")).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text());
        let cookie = login
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("the session cookie")
            .to_owned();
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_owned(), cookie.clone());
        cookie
    }

    /// The access tables of an app built by [`Self::spawn_serving`].
    pub fn access(&self) -> &Access {
        self.access
            .as_ref()
            .expect("spawn_serving wires the access tables")
    }

    pub fn kind(&self) -> Kind {
        self.backend.kind
    }

    pub async fn cleanup(self) {
        drop(self.router);
        drop(self.state);
        drop(self.store);
        self.backend.cleanup().await;
    }

    // ---- tokens -------------------------------------------------------------

    /// A token for `claims` as given (expiry included).
    pub fn mint(&self, claims: &Claims) -> String {
        self.key.mint(claims)
    }

    /// A token valid for an hour.
    pub fn token(&self, sub: &str, role: Role, teams: &[Uuid], grants: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        self.mint(&Claims {
            sub: sub.to_owned(),
            role,
            teams: teams.to_vec(),
            grants: grants.iter().map(|g| (*g).to_owned()).collect(),
            exp: now + 3600,
            iat: Some(now),
        })
    }

    pub fn admin(&self) -> String {
        self.token(ADMIN_SUB, Role::Admin, &[], &[])
    }

    /// A leader (a new leader id) of `team_ids`.
    pub fn leader(&self, team_ids: &[Uuid]) -> String {
        self.leader_as(Uuid::now_v7(), team_ids)
    }

    pub fn leader_as(&self, leader_id: Uuid, team_ids: &[Uuid]) -> String {
        self.token(&leader_id.to_string(), Role::Leader, team_ids, &[])
    }

    pub fn rep(&self, rep_id: Uuid) -> String {
        self.token(&rep_id.to_string(), Role::Rep, &[], &[])
    }

    pub fn auditor(&self) -> String {
        self.token("auditor:ada", Role::Auditor, &[], &[])
    }

    pub fn service(&self, grants: &[&str]) -> String {
        self.token(SERVICE_SUB, Role::Service, &[], grants)
    }

    // ---- requests -----------------------------------------------------------

    /// Sends `request` through the router.
    pub async fn send(&self, request: Request<Body>) -> Resp {
        Self::send_via(&self.router, request).await
    }

    /// Sends `request` through `router` (another router than the app's, e.g.
    /// the command service over a wrapped store: [`Self::router_over`]).
    pub async fn send_via(router: &Router, request: Request<Body>) -> Resp {
        let response = router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a readable body");
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            json,
        }
    }

    /// A request with any method, content type, body and extra headers; an
    /// empty `token` sends no `Authorization` header.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
        extra: &[(&str, &str)],
    ) -> Resp {
        self.send(build_request(
            method,
            path,
            token,
            content_type,
            body,
            extra,
        ))
        .await
    }

    /// The command service, with the default configuration and this app's
    /// signing key, over `store` instead of the app's.
    pub fn router_over(&self, store: Arc<dyn EventStore>) -> Router {
        writes(self.state_over(store))
    }

    /// The write API as a second process over the same log would serve it:
    /// the store opened again (its own pool, or its own handle on the file)
    /// under its own vault, the command service built anew on it.
    pub async fn second_process(&self) -> Router {
        let vault = Arc::new(trellis_eventstore::vault::Vault::new(
            self.backend.reopen().await,
            self.backend.key_store().await,
            Arc::new(trellis_commands::personal::DomainPersonalData),
        ));
        writes(self.state_over(vault))
    }

    /// The command service's state over `store`: the default configuration
    /// and this app's signing key.
    fn state_over(&self, store: Arc<dyn EventStore>) -> CommandState {
        let http = HttpState::new(store, self.key.clone(), Arc::new(SystemClock));
        CommandState::new(
            http,
            CommandsConfig {
                erasure: Some(trellis_commands::Erasure {
                    keys: self.keys.clone(),
                    holders: Vec::new(),
                    leaders: None,
                }),
                ..CommandsConfig::default()
            },
        )
    }

    pub async fn post_json(&self, path: &str, token: &str, json: &Value) -> Resp {
        self.post_json_with(path, token, json, &[]).await
    }

    pub async fn post_json_with(
        &self,
        path: &str,
        token: &str,
        json: &Value,
        extra: &[(&str, &str)],
    ) -> Resp {
        self.request(
            Method::POST,
            path,
            token,
            Some("application/json"),
            serde_json::to_vec(json).expect("JSON serializes"),
            extra,
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        bytes: impl Into<Bytes>,
        extra: &[(&str, &str)],
    ) -> Resp {
        self.request(Method::POST, path, token, Some(content_type), bytes, extra)
            .await
    }

    pub async fn put_json(&self, path: &str, token: &str, json: &Value) -> Resp {
        self.request(
            Method::PUT,
            path,
            token,
            Some("application/json"),
            serde_json::to_vec(json).expect("JSON serializes"),
            &[],
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, "", None, Bytes::new(), &[])
            .await
    }

    // ---- the store ------------------------------------------------------------

    /// Every event of the stream `<category>-<id>`.
    pub async fn events(&self, category: &str, id: Uuid) -> Vec<RecordedEvent> {
        self.stream_events(&stream_of(category, id)).await
    }

    pub async fn stream_events(&self, stream: &StreamId) -> Vec<RecordedEvent> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &RecordedEvent| e.stream_version);
            let batch = self
                .store
                .read_stream(stream, after, 5_000)
                .await
                .expect("the stream reads");
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// The event types of a stream, in order.
    pub async fn event_types(&self, category: &str, id: Uuid) -> Vec<String> {
        self.events(category, id)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    // ---- fixtures (as admin) ----------------------------------------------------

    pub async fn form_team(&self, name: &str) -> Uuid {
        self.post_json("/v1/teams", &self.admin(), &json!({ "name": name }))
            .await
            .expect(201)
            .id()
    }

    pub async fn assign_leader(&self, team_id: Uuid, leader_id: Uuid) {
        self.post_json(
            &format!("/v1/teams/{team_id}/leaders"),
            &self.admin(),
            &json!({ "leader_id": leader_id, "leader_name": "Lena Leader" }),
        )
        .await
        .expect(200);
    }

    pub async fn define_competency(&self, name: &str) -> Uuid {
        self.post_json("/v1/competencies", &self.admin(), &competency_body(name))
            .await
            .expect(201)
            .id()
    }

    pub async fn set_standard(&self, metric: &str) -> Uuid {
        self.post_json("/v1/standards", &self.admin(), &standard_body(metric))
            .await
            .expect(201)
            .id()
    }

    /// A rep who joined `team_id` on [`START_DATE`].
    pub async fn join_rep(&self, team_id: Uuid) -> Uuid {
        self.post_json(
            "/v1/reps",
            &self.admin(),
            &json!({ "name": "Riley Rep", "role": "SDR", "team_id": team_id, "start_date": START_DATE }),
        )
        .await
        .expect(201)
        .id()
    }

    /// Feedback from `leader_id` to `rep_id`, given by an admin.
    pub async fn give_feedback(&self, world: &World, rep_id: Uuid) -> Uuid {
        self.post_json(
            &format!("/v1/reps/{rep_id}/feedback"),
            &self.admin(),
            &feedback_body(world, "2026-02-02"),
        )
        .await
        .expect(201)
        .id()
    }

    /// A coaching session with one rep-owned action item; returns its id.
    pub async fn action_item(&self, world: &World, rep_id: Uuid) -> Uuid {
        let r = self
            .post_json(
                &format!("/v1/reps/{rep_id}/coaching-sessions"),
                &self.admin(),
                &session_body(world),
            )
            .await;
        r.expect(201);
        Uuid::parse_str(r.json["action_item_ids"][0].as_str().expect("an item id")).expect("a UUID")
    }

    pub async fn support_request(&self, rep_id: Uuid) -> Uuid {
        self.post_json(
            &format!("/v1/reps/{rep_id}/support-requests"),
            &self.admin(),
            &support_body(),
        )
        .await
        .expect(201)
        .id()
    }

    pub async fn improvement_plan(&self, world: &World, rep_id: Uuid) -> Uuid {
        self.post_json(
            &format!("/v1/reps/{rep_id}/improvement-plans"),
            &self.admin(),
            &plan_body(world),
        )
        .await
        .expect(201)
        .id()
    }

    pub async fn skill_assessment(&self, world: &World, rep_id: Uuid) -> Uuid {
        self.post_json(
            &format!("/v1/reps/{rep_id}/skill-assessments"),
            &self.admin(),
            &assessment_body(world, 3),
        )
        .await
        .expect(201)
        .id()
    }

    /// A team with a leader, another team with its own leader, a competency
    /// and a standard.
    pub async fn world(&self) -> World {
        let team = self.form_team("EMEA Mid-Market").await;
        let other_team = self.form_team("North America SMB").await;
        let (leader, other_leader) = (Uuid::now_v7(), Uuid::now_v7());
        self.assign_leader(team, leader).await;
        self.assign_leader(other_team, other_leader).await;
        let competency = self.define_competency("Discovery").await;
        let standard = self.set_standard("calls_made").await;
        World {
            team,
            other_team,
            leader,
            other_leader,
            competency,
            standard,
        }
    }

    /// Builds a fresh, valid request for `route`, with everything it needs
    /// recorded first (as an admin): a new rep in `world.team` for rep routes,
    /// a new team, competency or standard for the routes that change one.
    pub async fn prepare(&self, world: &World, route: Route) -> Prepared {
        use Route::*;
        let new_rep = matches!(
            route,
            MoveTeam
                | ChangeRole
                | RenameRep
                | Depart
                | AcknowledgeExpectations
                | GiveFeedback
                | AcknowledgeFeedback
                | AssessSkill
                | HoldCoachingSession
                | CompleteActionItem
                | DropActionItem
                | RecordTraining
                | RecordMeasurement
                | ImportMeasurements
                | RaiseSupportRequest
                | AcknowledgeSupportRequest
                | ResolveSupportRequest
                | StartImprovementPlan
                | RecordPlanCheckpoint
                | CloseImprovementPlan
                | CorrectFact
                | HoldReview
                | ErasePerson
        );
        let rep = if new_rep {
            Some(self.join_rep(world.team).await)
        } else {
            None
        };
        let r = rep.unwrap_or_default();
        let rep_stream = || Some(stream_of("rep", r));
        let (path, body, stream) = match route {
            // Teams' names are their own: a name no other team has.
            FormTeam => (
                "/v1/teams".to_owned(),
                json!({ "name": unique("Inside Sales") }),
                None,
            ),
            AssignLeader => {
                let team = self.form_team(&unique("Channel")).await;
                (
                    format!("/v1/teams/{team}/leaders"),
                    json!({ "leader_id": Uuid::now_v7(), "leader_name": "Noor Leader" }),
                    Some(stream_of("team", team)),
                )
            }
            RenameTeam => {
                let team = self.form_team(&unique("Channel")).await;
                (
                    format!("/v1/teams/{team}/name"),
                    json!({ "name": unique("Channel Partners") }),
                    Some(stream_of("team", team)),
                )
            }
            DefineCompetency => (
                "/v1/competencies".to_owned(),
                competency_body(&unique("Objection handling")),
                None,
            ),
            ReviseCompetency => {
                let c = self.define_competency(&unique("Product knowledge")).await;
                (
                    format!("/v1/competencies/{c}"),
                    competency_body(&unique("Product and market knowledge")),
                    Some(stream_of("competency", c)),
                )
            }
            RetireCompetency => {
                let c = self.define_competency(&unique("Cold calling")).await;
                (
                    format!("/v1/competencies/{c}/retirement"),
                    json!({ "reason": "Folded into prospecting" }),
                    Some(stream_of("competency", c)),
                )
            }
            SetStandard => (
                "/v1/standards".to_owned(),
                standard_body(&unique_metric("meetings_booked")),
                None,
            ),
            ReviseStandard => {
                let s = self.set_standard(&unique_metric("meetings_booked")).await;
                (
                    format!("/v1/standards/{s}/revisions"),
                    json!({ "target": 60, "effective_from": "2026-04-01" }),
                    Some(stream_of("standard", s)),
                )
            }
            RetireStandard => {
                let s = self.set_standard(&unique_metric("meetings_booked")).await;
                (
                    format!("/v1/standards/{s}/retirement"),
                    json!({ "effective_from": "2026-06-01", "reason": "Replaced by pipeline" }),
                    Some(stream_of("standard", s)),
                )
            }
            JoinRep => (
                "/v1/reps".to_owned(),
                json!({ "name": "Jo New", "role": "AE", "team_id": world.team, "start_date": START_DATE }),
                None,
            ),
            MoveTeam => (
                format!("/v1/reps/{r}/team-moves"),
                json!({ "team_id": world.other_team, "on": "2026-03-02" }),
                rep_stream(),
            ),
            ChangeRole => (
                format!("/v1/reps/{r}/role-changes"),
                json!({ "role": "AE", "on": "2026-03-02" }),
                rep_stream(),
            ),
            RenameRep => (
                format!("/v1/reps/{r}/name"),
                json!({ "name": "Riley Rep-Okafor" }),
                rep_stream(),
            ),
            Depart => (
                format!("/v1/reps/{r}/departure"),
                json!({ "on": "2026-03-02", "reason": "Moved to another company" }),
                rep_stream(),
            ),
            AcknowledgeExpectations => (
                format!("/v1/reps/{r}/expectations-acknowledgements"),
                json!({ "standard_id": world.standard, "on": "2026-01-06" }),
                rep_stream(),
            ),
            GiveFeedback => (
                format!("/v1/reps/{r}/feedback"),
                feedback_body(world, "2026-02-02"),
                rep_stream(),
            ),
            AcknowledgeFeedback => {
                let f = self.give_feedback(world, r).await;
                (
                    format!("/v1/reps/{r}/feedback/{f}/acknowledgement"),
                    json!({ "on": "2026-02-03" }),
                    rep_stream(),
                )
            }
            AssessSkill => (
                format!("/v1/reps/{r}/skill-assessments"),
                assessment_body(world, 3),
                rep_stream(),
            ),
            HoldCoachingSession => (
                format!("/v1/reps/{r}/coaching-sessions"),
                session_body(world),
                rep_stream(),
            ),
            CompleteActionItem => {
                let item = self.action_item(world, r).await;
                (
                    format!("/v1/reps/{r}/action-items/{item}/completion"),
                    json!({ "on": "2026-02-10" }),
                    rep_stream(),
                )
            }
            DropActionItem => {
                let item = self.action_item(world, r).await;
                (
                    format!("/v1/reps/{r}/action-items/{item}/drop"),
                    json!({ "on": "2026-02-10", "reason": "No longer relevant" }),
                    rep_stream(),
                )
            }
            RecordTraining => (
                format!("/v1/reps/{r}/trainings"),
                json!({ "title": "Negotiation basics", "competency_id": world.competency, "completed_on": "2026-02-20" }),
                rep_stream(),
            ),
            RecordMeasurement => (
                format!("/v1/reps/{r}/measurements"),
                json!({ "metric": "calls_made", "period": "2026-W10", "value": 42 }),
                rep_stream(),
            ),
            ImportMeasurements => (
                "/v1/measurements".to_owned(),
                json!([
                    { "rep_id": r, "metric": "calls_made", "period": "2026-W10", "value": 42 },
                    { "rep_id": r, "metric": "calls_made", "period": "2026-W11", "value": 47.5 },
                ]),
                rep_stream(),
            ),
            RaiseSupportRequest => (
                format!("/v1/reps/{r}/support-requests"),
                support_body(),
                rep_stream(),
            ),
            AcknowledgeSupportRequest => {
                let s = self.support_request(r).await;
                (
                    format!("/v1/reps/{r}/support-requests/{s}/acknowledgement"),
                    json!({ "leader_id": world.leader, "on": "2026-02-16" }),
                    rep_stream(),
                )
            }
            ResolveSupportRequest => {
                let s = self.support_request(r).await;
                (
                    format!("/v1/reps/{r}/support-requests/{s}/resolution"),
                    json!({ "leader_id": world.leader, "resolution": "Seat assigned in the dialer", "on": "2026-02-17" }),
                    rep_stream(),
                )
            }
            StartImprovementPlan => (
                format!("/v1/reps/{r}/improvement-plans"),
                plan_body(world),
                rep_stream(),
            ),
            RecordPlanCheckpoint => {
                let p = self.improvement_plan(world, r).await;
                (
                    format!("/v1/reps/{r}/improvement-plans/{p}/checkpoints"),
                    json!({ "note": "Call volume up 20% week on week", "on": "2026-03-16" }),
                    rep_stream(),
                )
            }
            CloseImprovementPlan => {
                let p = self.improvement_plan(world, r).await;
                (
                    format!("/v1/reps/{r}/improvement-plans/{p}/closure"),
                    json!({ "outcome": "met", "note": "Targets met three weeks running", "on": "2026-04-27" }),
                    rep_stream(),
                )
            }
            CorrectFact => {
                let a = self.skill_assessment(world, r).await;
                (
                    format!("/v1/reps/{r}/corrections"),
                    json!({ "fact_id": a, "reason": "Entered for the wrong rep", "correction": { "kind": "retracted" } }),
                    rep_stream(),
                )
            }
            HoldReview => (
                format!("/v1/reps/{r}/reviews"),
                json!({ "period_from": START_DATE, "period_to": "2026-03-31", "packet_sha256": "ab".repeat(32), "on": "2026-04-02" }),
                rep_stream(),
            ),
            ErasePerson => (
                format!("/v1/people/{r}/erasure"),
                json!({ "reason": "Asked to be forgotten (ticket 4411)" }),
                rep_stream(),
            ),
        };
        Prepared {
            route,
            path,
            body,
            rep,
            stream,
        }
    }

    /// Sends a prepared request with `token`.
    pub async fn send_prepared(&self, prepared: &Prepared, token: &str) -> Resp {
        match prepared.route.method() {
            "PUT" => self.put_json(&prepared.path, token, &prepared.body).await,
            _ => self.post_json(&prepared.path, token, &prepared.body).await,
        }
    }
}

/// The subject of [`TestApp::admin`] tokens.
pub const ADMIN_SUB: &str = "admin:alex";
/// The subject of [`TestApp::service`] tokens.
pub const SERVICE_SUB: &str = "service:crm-sync";

/// What most tests share.
#[derive(Debug, Clone, Copy)]
pub struct World {
    /// The team of every fixture rep, led by `leader`.
    pub team: Uuid,
    pub other_team: Uuid,
    pub leader: Uuid,
    pub other_leader: Uuid,
    pub competency: Uuid,
    pub standard: Uuid,
}

pub fn stream_of(category: &str, id: Uuid) -> StreamId {
    StreamId::for_entity(category, id).expect("a valid stream id")
}

pub fn competency_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Uncovering the customer's situation, pain and goals",
        "rubric": [
            "Asks no questions",
            "Asks scripted questions",
            "Asks follow-up questions",
            "Uncovers pain and impact",
            "Shapes the buying vision",
        ],
    })
}

pub fn standard_body(metric: &str) -> Value {
    json!({
        "name": "Weekly calls",
        "metric": metric,
        "kind": "quantity",
        "direction": "at_least",
        "unit": "calls",
        "period": "week",
        "target": 50,
        "roles": ["SDR"],
        "effective_from": "2026-01-01",
        "ramp": [
            { "period_index": 1, "percent_of_target": 25 },
            { "period_index": 2, "percent_of_target": 50 },
        ],
    })
}

pub fn feedback_body(world: &World, given_on: &str) -> Value {
    json!({
        "leader_id": world.leader,
        "competency_id": world.competency,
        "kind": "praise",
        "note": "You asked about the budget cycle before pitching: keep doing that.",
        "given_on": given_on,
    })
}

pub fn assessment_body(world: &World, level: i64) -> Value {
    json!({
        "leader_id": world.leader,
        "competency_id": world.competency,
        "level": level,
        "evidence": "Three discovery calls reviewed; consistent follow-up questions.",
        "assessed_on": "2026-02-05",
    })
}

/// `metric` and a random suffix: a metric no other standard measures.
pub fn unique_metric(metric: &str) -> String {
    let random = Uuid::new_v4().simple().to_string();
    format!("{metric}_{}", &random[..6])
}

/// `name` and a random suffix: a team's or competency's name no other has.
pub fn unique(name: &str) -> String {
    let random = Uuid::new_v4().simple().to_string();
    format!("{name} {}", &random[..6])
}

pub fn session_body(world: &World) -> Value {
    json!({
        "leader_id": world.leader,
        "held_on": "2026-02-09",
        "duration_minutes": 45,
        "focus": [world.competency],
        "notes": "Role-played the pricing objection.",
        "action_items": [
            { "description": "Rewrite the discovery script", "owner": "rep", "due_on": "2026-02-20" },
        ],
    })
}

pub fn support_body() -> Value {
    json!({
        "category": "tools",
        "description": "The dialer licence expired",
        "raised_on": "2026-02-15",
    })
}

pub fn plan_body(world: &World) -> Value {
    json!({
        "leader_id": world.leader,
        "targets": [ { "description": "50 calls a week", "standard_id": world.standard } ],
        "started_on": "2026-03-02",
        "review_on": "2026-05-04",
    })
}

/// A ready request for one route.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub route: Route,
    pub path: String,
    pub body: Value,
    /// The rep the request is about, when it is about one.
    pub rep: Option<Uuid>,
    /// The stream it writes to; `None` for a create, whose stream is named by
    /// the id in the response.
    pub stream: Option<StreamId>,
}

/// Every write route of the command service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    FormTeam,
    AssignLeader,
    RenameTeam,
    DefineCompetency,
    ReviseCompetency,
    RetireCompetency,
    SetStandard,
    ReviseStandard,
    RetireStandard,
    JoinRep,
    MoveTeam,
    ChangeRole,
    RenameRep,
    Depart,
    AcknowledgeExpectations,
    GiveFeedback,
    AcknowledgeFeedback,
    AssessSkill,
    HoldCoachingSession,
    CompleteActionItem,
    DropActionItem,
    RecordTraining,
    RecordMeasurement,
    ImportMeasurements,
    RaiseSupportRequest,
    AcknowledgeSupportRequest,
    ResolveSupportRequest,
    StartImprovementPlan,
    RecordPlanCheckpoint,
    CloseImprovementPlan,
    CorrectFact,
    HoldReview,
    ErasePerson,
}

impl Route {
    pub const ALL: [Route; 33] = [
        Route::FormTeam,
        Route::AssignLeader,
        Route::RenameTeam,
        Route::DefineCompetency,
        Route::ReviseCompetency,
        Route::RetireCompetency,
        Route::SetStandard,
        Route::ReviseStandard,
        Route::RetireStandard,
        Route::JoinRep,
        Route::MoveTeam,
        Route::ChangeRole,
        Route::RenameRep,
        Route::Depart,
        Route::AcknowledgeExpectations,
        Route::GiveFeedback,
        Route::AcknowledgeFeedback,
        Route::AssessSkill,
        Route::HoldCoachingSession,
        Route::CompleteActionItem,
        Route::DropActionItem,
        Route::RecordTraining,
        Route::RecordMeasurement,
        Route::ImportMeasurements,
        Route::RaiseSupportRequest,
        Route::AcknowledgeSupportRequest,
        Route::ResolveSupportRequest,
        Route::StartImprovementPlan,
        Route::RecordPlanCheckpoint,
        Route::CloseImprovementPlan,
        Route::CorrectFact,
        Route::HoldReview,
        Route::ErasePerson,
    ];

    /// The route as the router declares it.
    pub fn template(self) -> &'static str {
        use Route::*;
        match self {
            FormTeam => "/v1/teams",
            AssignLeader => "/v1/teams/{team_id}/leaders",
            RenameTeam => "/v1/teams/{team_id}/name",
            DefineCompetency => "/v1/competencies",
            ReviseCompetency => "/v1/competencies/{competency_id}",
            RetireCompetency => "/v1/competencies/{competency_id}/retirement",
            SetStandard => "/v1/standards",
            ReviseStandard => "/v1/standards/{standard_id}/revisions",
            RetireStandard => "/v1/standards/{standard_id}/retirement",
            JoinRep => "/v1/reps",
            MoveTeam => "/v1/reps/{rep_id}/team-moves",
            ChangeRole => "/v1/reps/{rep_id}/role-changes",
            RenameRep => "/v1/reps/{rep_id}/name",
            Depart => "/v1/reps/{rep_id}/departure",
            AcknowledgeExpectations => "/v1/reps/{rep_id}/expectations-acknowledgements",
            GiveFeedback => "/v1/reps/{rep_id}/feedback",
            AcknowledgeFeedback => "/v1/reps/{rep_id}/feedback/{feedback_id}/acknowledgement",
            AssessSkill => "/v1/reps/{rep_id}/skill-assessments",
            HoldCoachingSession => "/v1/reps/{rep_id}/coaching-sessions",
            CompleteActionItem => "/v1/reps/{rep_id}/action-items/{action_item_id}/completion",
            DropActionItem => "/v1/reps/{rep_id}/action-items/{action_item_id}/drop",
            RecordTraining => "/v1/reps/{rep_id}/trainings",
            RecordMeasurement => "/v1/reps/{rep_id}/measurements",
            ImportMeasurements => "/v1/measurements",
            RaiseSupportRequest => "/v1/reps/{rep_id}/support-requests",
            AcknowledgeSupportRequest => {
                "/v1/reps/{rep_id}/support-requests/{request_id}/acknowledgement"
            }
            ResolveSupportRequest => "/v1/reps/{rep_id}/support-requests/{request_id}/resolution",
            StartImprovementPlan => "/v1/reps/{rep_id}/improvement-plans",
            RecordPlanCheckpoint => "/v1/reps/{rep_id}/improvement-plans/{plan_id}/checkpoints",
            CloseImprovementPlan => "/v1/reps/{rep_id}/improvement-plans/{plan_id}/closure",
            CorrectFact => "/v1/reps/{rep_id}/corrections",
            HoldReview => "/v1/reps/{rep_id}/reviews",
            ErasePerson => "/v1/people/{person_id}/erasure",
        }
    }

    pub fn method(self) -> &'static str {
        match self {
            Route::RenameTeam | Route::ReviseCompetency | Route::RenameRep => "PUT",
            _ => "POST",
        }
    }

    /// Whether a success is a 201 (a create) rather than a 200.
    pub fn creates(self) -> bool {
        use Route::*;
        matches!(
            self,
            FormTeam
                | DefineCompetency
                | SetStandard
                | JoinRep
                | GiveFeedback
                | AssessSkill
                | HoldCoachingSession
                | RecordTraining
                | RecordMeasurement
                | RaiseSupportRequest
                | StartImprovementPlan
                | HoldReview
        )
    }

    /// The type of the event a success records (the last one in the stream).
    pub fn event_type(self) -> &'static str {
        use Route::*;
        match self {
            FormTeam => "TeamFormed",
            AssignLeader => "LeaderAssigned",
            RenameTeam => "TeamRenamed",
            DefineCompetency => "CompetencyDefined",
            ReviseCompetency => "CompetencyRevised",
            RetireCompetency => "CompetencyRetired",
            SetStandard => "StandardSet",
            ReviseStandard => "StandardRevised",
            RetireStandard => "StandardRetired",
            JoinRep => "RepJoined",
            MoveTeam => "RepMovedTeam",
            ChangeRole => "RepRoleChanged",
            RenameRep => "RepRenamed",
            Depart => "RepDeparted",
            AcknowledgeExpectations => "ExpectationsAcknowledged",
            GiveFeedback => "FeedbackGiven",
            AcknowledgeFeedback => "FeedbackAcknowledged",
            AssessSkill => "SkillAssessed",
            HoldCoachingSession => "CoachingSessionHeld",
            CompleteActionItem => "ActionItemCompleted",
            DropActionItem => "ActionItemDropped",
            RecordTraining => "TrainingCompleted",
            RecordMeasurement | ImportMeasurements => "PerformanceMeasured",
            RaiseSupportRequest => "SupportRequested",
            AcknowledgeSupportRequest => "SupportAcknowledged",
            ResolveSupportRequest => "SupportResolved",
            StartImprovementPlan => "ImprovementPlanStarted",
            RecordPlanCheckpoint => "PlanCheckpointRecorded",
            CloseImprovementPlan => "ImprovementPlanClosed",
            CorrectFact => "FactCorrected",
            HoldReview => "ReviewHeld",
            ErasePerson => "PersonalDataErased",
        }
    }

    /// The stream category of a create's new id.
    pub fn created_category(self) -> &'static str {
        match self {
            Route::FormTeam => "team",
            Route::DefineCompetency => "competency",
            Route::SetStandard => "standard",
            _ => "rep",
        }
    }
}

/// The application with the write API alone, over `state`.
pub fn writes(state: CommandState) -> Router {
    trellis_http::app(state.http().clone(), [trellis_commands::api(state)])
}

/// The routes the router declares, as (method, path), read from the source of
/// `crates/commands/src/routes/mod.rs` so a new route cannot be forgotten here.
pub fn declared_routes() -> Vec<(String, String)> {
    let mut routes = routes_declared_in(include_str!("../../crates/http/src/app.rs"));
    routes.extend(routes_declared_in(include_str!(
        "../../crates/commands/src/routes/mod.rs"
    )));
    // `/metrics` is declared twice: on the main router and on the separate
    // metrics listener (`--metrics-listen`); it is one operation.
    let mut seen = std::collections::HashSet::new();
    routes.retain(|route| seen.insert(route.clone()));
    routes
}

/// Every route of the read API (`trellis_queries::routes`), from its source.
pub fn declared_query_routes() -> Vec<(String, String)> {
    routes_declared_in(include_str!("../../crates/queries/src/lib.rs"))
}

/// Every route of the webhook admin API (`trellis_webhooks::routes`), from its source.
pub fn declared_webhook_routes() -> Vec<(String, String)> {
    routes_declared_in(include_str!("../../crates/webhooks/src/api.rs"))
}

/// Every page of the dashboard (`trellis_dashboard::routes`), from its source.
pub fn declared_dashboard_routes() -> Vec<(String, String)> {
    routes_declared_in(include_str!("../../crates/dashboard/src/lib.rs"))
}

/// The (METHOD, path) of every `.route("path", get(a).post(b))` call in
/// `source`, in order, a route with several method routers once per method
/// (the dashboard's `quick::<Form>()` is a GET and a POST).
pub fn routes_declared_in(source: &str) -> Vec<(String, String)> {
    const METHODS: [&str; 5] = ["get(", "post(", "put(", "delete(", "patch("];
    let mut routes = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.find('"').expect("a path literal");
        let close = open + 1 + rest[open + 1..].find('"').expect("a closing quote");
        let path = rest[open + 1..close].to_owned();
        // The method routers: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest[close..]
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(close + i)
            })
            .expect("the end of the .route( call");
        let call = &rest[close + 1..end];
        let mut found: Vec<(usize, &str)> = METHODS
            .iter()
            .flat_map(|m| {
                call.match_indices(m).filter_map(move |(i, _)| {
                    let before = call[..i].chars().next_back();
                    (!before.is_some_and(|c| c.is_alphanumeric() || c == '_'))
                        .then_some((i, m.trim_end_matches('(')))
                })
            })
            .collect();
        // The dashboard's small forms: `quick::<Form>()` is a GET and a POST.
        if call
            .trim_start_matches([',', ' ', '\n'])
            .starts_with("quick::<")
        {
            found.extend([(0, "get"), (1, "post")]);
        }
        found.sort_unstable();
        assert!(!found.is_empty(), "{path}: no method router");
        routes.extend(
            found
                .into_iter()
                .map(|(_, m)| (m.to_uppercase(), path.clone())),
        );
        rest = &rest[end..];
    }
    routes
}

/// The read models of `backend`, a second connection to its database (or file).
pub async fn read_store(backend: &Backend) -> Arc<dyn ReadStore> {
    match backend.kind {
        Kind::Postgres => {
            let store = PostgresStore::connect(&PostgresConfig::new(&backend.database().url))
                .await
                .expect("connect");
            Arc::new(
                PostgresReadStore::new(store.pool().clone())
                    .await
                    .expect("read store"),
            )
        }
        Kind::Sqlite => Arc::new(
            SqliteReadStore::open(
                backend
                    .data_dir()
                    .join(trellis_eventstore::sqlite::FILE_NAME),
            )
            .await
            .expect("read store"),
        ),
    }
}

/// The webhook tables beside `backend`'s log, as `trellis serve` opens them.
/// The access tables (accounts, sessions, links, service accounts) of the
/// backend, as `trellis serve` opens them.
/// The read models tell a leader's id from a made-up one, as in `serve`.
#[derive(Debug)]
struct TeamLeaders(ReadModels);

#[async_trait::async_trait]
impl trellis_commands::Leaders for TeamLeaders {
    async fn leader_names(&self, person: Uuid) -> Result<Vec<String>, String> {
        self.0.leader_names(person).await.map_err(|e| e.to_string())
    }
}

pub async fn access(backend: &Backend, read: ReadModels, config: AccessConfig) -> Access {
    match backend.kind {
        Kind::Postgres => {
            let pg = PostgresStore::connect(&PostgresConfig::new(&backend.database().url))
                .await
                .expect("a second PostgreSQL store");
            Access::postgres(pg.pool().clone(), read, config)
                .await
                .expect("the access tables")
        }
        Kind::Sqlite => Access::sqlite(
            backend
                .data_dir()
                .join(trellis_eventstore::sqlite::FILE_NAME),
            read,
            config,
        )
        .await
        .expect("the access tables"),
    }
}

/// The webhook settings of a test whose receivers listen on 127.0.0.1.
pub fn local_receivers() -> WebhooksConfig {
    WebhooksConfig {
        allow_private_targets: true,
        ..WebhooksConfig::default()
    }
}

pub async fn webhooks(backend: &Backend, config: WebhooksConfig) -> Webhooks {
    match backend.kind {
        Kind::Postgres => {
            let pg = PostgresStore::connect(&PostgresConfig::new(&backend.database().url))
                .await
                .expect("a second PostgreSQL store");
            Webhooks::postgres(pg.pool().clone(), config)
                .await
                .expect("the webhook tables")
        }
        Kind::Sqlite => Webhooks::sqlite(
            backend
                .data_dir()
                .join(trellis_eventstore::sqlite::FILE_NAME),
            config,
        )
        .await
        .expect("the webhook tables"),
    }
}

// ---- answers against the OpenAPI document ---------------------------------------

/// Checks that `doc` documents `status` for `method path` (a template, as in
/// the document) and, when the answer is JSON, that `body` is what the
/// documented schema describes: see [`check_schema`].
#[track_caller]
pub fn assert_documented(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let operation = &doc["paths"][path][method.to_lowercase()];
    assert!(operation.is_object(), "the document has no {method} {path}");
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which it does not document: {body}"
    );
    let content = &response["content"];
    let schema = ["application/json", "application/problem+json"]
        .iter()
        .find_map(|t| content[*t]["schema"].as_object())
        .map(|schema| Value::Object(schema.clone()));
    if let Some(schema) = schema
        && let Err(problem) = check_schema(doc, &schema, body, "$")
    {
        panic!("{method} {path} {status}: {problem}\nbody: {body}");
    }
}

/// Whether `value` is what `schema` (of `doc`, whose `$ref`s it resolves)
/// describes: the JSON types (nullable ones included), enums, formats
/// `uuid`, `date` and `date-time`, minimums, required fields, and no field
/// the schema does not name when it names its fields (an object described
/// only in words may hold anything). A small structural check, enough to
/// catch a body that drifted from its documented type.
pub fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema["$ref"].as_str() {
        let resolved = target
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer))
            .ok_or_else(|| format!("{at}: {target} does not resolve"))?;
        return check_schema(doc, resolved, value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let errors: Vec<String> = options
            .iter()
            .filter_map(|option| check_schema(doc, option, value, at).err())
            .collect();
        return if errors.len() < options.len() {
            Ok(())
        } else {
            Err(format!("{at}: matches none of oneOf: {errors:?}"))
        };
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: a bad type {types}")),
        };
        let is = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if value.is_null() {
        return Ok(());
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Some(minimum) = schema["minimum"].as_f64()
        && value.as_f64().is_some_and(|v| v < minimum)
    {
        return Err(format!("{at}: {value} is below the minimum {minimum}"));
    }
    if let (Some(format), Some(text)) = (schema["format"].as_str(), value.as_str()) {
        let ok = match format {
            "uuid" => Uuid::parse_str(text).is_ok(),
            "date" => text.parse::<chrono::NaiveDate>().is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: {text:?} is not a {format}"));
        }
    }
    if let Some(items) = value.as_array()
        && let Some(item_schema) = schema.get("items")
    {
        for (i, item) in items.iter().enumerate() {
            check_schema(doc, item_schema, item, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        let mut named = BTreeMap::new();
        let mut required = Vec::new();
        let mut parts = vec![schema.clone()];
        while let Some(part) = parts.pop() {
            let part = match part["$ref"].as_str() {
                Some(target) => doc
                    .pointer(target.trim_start_matches('#'))
                    .cloned()
                    .ok_or_else(|| format!("{at}: {target} does not resolve"))?,
                None => part,
            };
            parts.extend(part["allOf"].as_array().into_iter().flatten().cloned());
            for (key, property) in part["properties"].as_object().into_iter().flatten() {
                named.insert(key.clone(), property.clone());
            }
            required.extend(part["required"].as_array().into_iter().flatten().cloned());
        }
        for field in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(field) {
                return Err(format!("{at}: the required field {field} is missing"));
            }
        }
        if !named.is_empty() {
            for (key, field) in object {
                let property = named
                    .get(key)
                    .ok_or_else(|| format!("{at}: the field {key} is not documented"))?;
                check_schema(doc, property, field, &format!("{at}.{key}"))?;
            }
        }
    }
    Ok(())
}

/// A request with any method, content type, body and extra headers; an empty
/// `token` sends no `Authorization` header.
pub fn build_request(
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
    extra: &[(&str, &str)],
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if !token.is_empty() {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(body.into()))
        .expect("a valid request")
}

/// A JSON `POST` with a bearer token and `extra` headers.
pub fn post_request(
    path: &str,
    token: &str,
    json: &Value,
    extra: &[(&str, &str)],
) -> Request<Body> {
    build_request(
        Method::POST,
        path,
        token,
        Some("application/json"),
        serde_json::to_vec(json).expect("JSON serializes"),
        extra,
    )
}
