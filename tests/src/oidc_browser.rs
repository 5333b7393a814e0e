//! Sign-in at the company's identity provider, end to end: a real OpenID
//! provider (`tests/browser/oidc-provider.mjs`, the `oidc-provider` package
//! pinned in `tests/browser`) on loopback, Trellis served on a real port with
//! the router `trellis serve` builds, and headless Chromium
//! (`tests/browser/oidc.mjs`) going through Trellis's sign-in page, the
//! provider's login and consent pages, and back. A leader linked by email
//! lands on their home page; an identity linked to nobody is told whom to
//! ask. Without a browser, the callback is checked against forgery: a wrong
//! `state`, or a callback in a browser that did not start the sign-in
//! (login CSRF), signs nobody in. Screenshots go to
//! `tests/artifacts/oidc-*.png`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use trellis_access::oidc::{Oidc, OidcConfig};
use trellis_access::store::{Account, Via};
use trellis_access::{Access, AccessConfig, NewAccount};
use trellis_commands::{CommandState, CommandsConfig};
use trellis_http::auth::{Role, TokenKey};
use trellis_http::{HttpState, SystemClock};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::query::ReadModels;
use trellis_tests::{Kind, slow_tests_enabled};

use crate::browser::{CHROMIUM, missing, workspace};
use crate::http::{ADMIN_SUB, Resp, SECRET, TestApp, read_store};

const CLIENT_ID: &str = "trellis";
const CLIENT_SECRET: &str = "trellis-tests-client-secret";
/// The leader's login at the provider, and the email Trellis knows them by.
const LEADER_LOGIN: &str = "maya@acme.example";
/// A real identity at the provider whom nobody linked to Trellis.
const STRANGER_LOGIN: &str = "sam@acme.example";
const ADMIN_NAME: &str = "Alex Admin";

fn browser_dir() -> PathBuf {
    workspace().join("tests/browser")
}

/// A child process killed (and reaped) when dropped, so a failing test
/// leaves no provider running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Starts `oidc-provider.mjs` for a client whose callback is `redirect_url`
/// and waits for the issuer it prints once listening.
async fn start_provider(dir: &Path, redirect_url: &str) -> (Killed, String) {
    let config = dir.join("provider.json");
    let body = json!({
        "port": 0,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "redirectUri": redirect_url,
    });
    std::fs::write(&config, body.to_string()).expect("the provider's config");
    let (out, err) = (dir.join("provider.stdout"), dir.join("provider.stderr"));
    let child = Command::new("node")
        .arg(browser_dir().join("oidc-provider.mjs"))
        .arg(&config)
        .current_dir(browser_dir())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("node starts");
    let mut provider = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let printed = read_lossy(&out);
        if let Some(line) = printed.lines().next().filter(|_| printed.contains('\n')) {
            let said: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("the provider's first line is not JSON ({e}): {line}"));
            let issuer = said["issuer"].as_str().expect("an issuer").to_owned();
            return (provider, issuer);
        }
        if let Some(status) = provider.0.try_wait().expect("wait") {
            panic!("the provider exited ({status}):\n{}", read_lossy(&err));
        }
        assert!(
            Instant::now() < deadline,
            "the provider did not start within a minute:\n{}",
            read_lossy(&err)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The router `trellis serve` builds (as `TestApp::spawn_serving` does),
/// signing people in with `access`.
async fn serving_router(app: &TestApp, access: Access) -> Router {
    let read = read_store(&app.backend).await;
    let key = TokenKey::new(SECRET.to_vec()).expect("a 32-byte secret");
    let http = HttpState::new(app.store.clone(), key, Arc::new(SystemClock))
        .with_authenticator(Arc::new(access.clone()));
    let state = CommandState::new(http.clone(), CommandsConfig::default());
    let hooks = crate::http::webhooks(&app.backend, crate::http::local_receivers()).await;
    let reads = trellis_queries::QueryState::new(http.clone(), ReadModels::new(read));
    let hooks = trellis_webhooks::WebhooksState::new(http.clone(), hooks);
    let page_writes = trellis_http::app(
        http.clone(),
        [
            trellis_commands::api(state.clone()),
            trellis_webhooks::api(hooks.clone()),
        ],
    );
    trellis_http::app(
        http,
        [
            trellis_commands::api(state),
            trellis_queries::api(reads.clone()),
            trellis_webhooks::api(hooks),
            trellis_dashboard::api(
                trellis_dashboard::DashboardState::new(reads)
                    .with_writes(page_writes)
                    .with_access(access, false),
            ),
        ],
    )
}

/// `GET path` through `router`, with `cookie` (`name=value`) if given.
async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Resp {
    let mut request = Request::builder().method(Method::GET).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Body::from(Bytes::new())).expect("a request");
    TestApp::send_via(router, request).await
}

/// The value a response's `Set-Cookie` gives `name`, if it sets it.
fn set_cookie<'r>(response: &'r Resp, name: &str) -> Option<&'r str> {
    response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('='))
}

/// Whether `response` gives the browser a session.
fn signs_in(response: &Resp) -> bool {
    set_cookie(response, "trellis_session")
        .is_some_and(|c| !c.split(';').next().unwrap_or_default().is_empty())
}

/// A query parameter of `url` (the values here are base64url: no escapes).
fn query_param<'u>(url: &'u str, name: &str) -> Option<&'u str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// `GET /auth/oidc/start`: the flow cookie (`trellis_signin=…`) and the
/// `state` the provider was sent.
async fn start_flow(router: &Router, issuer: &str) -> (String, String) {
    let started = get(router, "/auth/oidc/start", None).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text());
    let location = started.header("location").expect("to the provider");
    assert!(
        location.starts_with(&format!("{issuer}/auth?")),
        "{location}"
    );
    assert_eq!(query_param(location, "code_challenge_method"), Some("S256"));
    assert!(
        query_param(location, "code_challenge").is_some(),
        "{location}"
    );
    let state = query_param(location, "state").expect("a state").to_owned();
    let cookie = set_cookie(&started, "trellis_signin").expect("the flow cookie");
    assert!(cookie.contains("Path=/auth/"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let value = cookie.split(';').next().expect("a value");
    (format!("trellis_signin={value}"), state)
}

async fn running_sessions(access: &Access, account: &Account) -> usize {
    access
        .running_sessions_of(account.id, chrono::Utc::now())
        .await
        .expect("the sessions")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_at_the_company_identity_provider_in_chromium() {
    if let Some(what) = missing(&["playwright-core", "oidc-provider"]) {
        assert!(
            !slow_tests_enabled(),
            "TRELLIS_SLOW_TESTS=1 but {what} is missing (tests/run installs it)"
        );
        eprintln!("skipped: {what} is missing (set TRELLIS_SLOW_TESTS=1 to require it)");
        return;
    }
    let app = TestApp::spawn(Kind::Sqlite).await;
    let world = app.world().await;
    // The read models know the leader (an account for one needs that).
    let (engine, growth) = (
        Engine::new(app.store.clone(), read_store(&app.backend).await),
        Growth::new(GrowthSettings::default()),
    );
    while engine.catch_up(&growth).await.expect("catch up").is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The redirect URL names Trellis's port, and the provider must know it
    // before it starts: bind first, then start the provider, then discover.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let redirect_url = format!("{base}/auth/oidc/callback");
    let dir = trellis_tests::temp_dir();
    let (provider, issuer) = start_provider(&dir, &redirect_url).await;
    let oidc = Oidc::discover(OidcConfig {
        issuer: issuer.clone(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        redirect_url,
    })
    .await
    .unwrap_or_else(|e| panic!("discovery of {issuer}: {e}"));
    let read = ReadModels::new(read_store(&app.backend).await);
    let access = crate::http::access(&app.backend, read, AccessConfig::default())
        .await
        .with_oidc(oidc);

    let now = chrono::Utc::now();
    access
        .add_account(
            NewAccount {
                role: Role::Admin,
                person: None,
                name: Some(ADMIN_NAME.to_owned()),
                email: Some("alex@acme.example".to_owned()),
                oidc_subject: None,
            },
            ADMIN_SUB,
            now,
        )
        .await
        .expect("the admin's account");
    // Linked by email only: the provider's subject is not known yet.
    let leader = access
        .add_account(
            NewAccount {
                role: Role::Leader,
                person: Some(world.leader),
                name: None,
                email: Some(LEADER_LOGIN.to_owned()),
                oidc_subject: None,
            },
            ADMIN_SUB,
            now,
        )
        .await
        .expect("the leader's account");

    let router = serving_router(&app, access.clone()).await;
    let served = router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, served).await });

    // A callback whose `state` is not the one the flow started with is
    // refused before any code is exchanged, and the flow is used up: the
    // right state does not work after a wrong one.
    let (flow, state) = start_flow(&router, &issuer).await;
    let forged = get(
        &router,
        "/auth/oidc/callback?code=x&state=wrong",
        Some(&flow),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text());
    assert!(
        forged.text().contains("state does not match"),
        "{}",
        forged.text()
    );
    assert!(!signs_in(&forged), "{:?}", forged.headers);
    let again = get(
        &router,
        &format!("/auth/oidc/callback?code=x&state={state}"),
        Some(&flow),
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text());
    assert!(again.text().contains("used already"), "{}", again.text());
    assert!(!signs_in(&again));

    // A callback in a browser that did not start the sign-in (another
    // site's, carrying the attacker's code and state): refused, since the
    // flow is bound to the browser by its cookie.
    let (flow, state) = start_flow(&router, &issuer).await;
    let callback = format!("/auth/oidc/callback?code=x&state={state}");
    let elsewhere = get(&router, &callback, None).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        elsewhere.text()
    );
    assert!(
        elsewhere.text().contains("not started in this browser"),
        "{}",
        elsewhere.text()
    );
    assert!(!signs_in(&elsewhere));
    // The same callback in the browser that started it reaches the
    // provider, which refuses the made-up code.
    let made_up = get(&router, &callback, Some(&flow)).await;
    assert_eq!(
        made_up.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        made_up.text()
    );
    assert!(
        made_up
            .text()
            .contains("refused the authorization code exchange"),
        "{}",
        made_up.text()
    );
    assert!(!signs_in(&made_up));
    assert_eq!(running_sessions(&access, &leader).await, 0);

    // The browser: the leader signs in; a stranger is told whom to ask.
    let artifacts = workspace().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("tests/artifacts");
    let session_file = dir.join("session");
    let config = json!({
        "base": base,
        "issuer": issuer,
        "artifacts": artifacts,
        "chromium": CHROMIUM,
        "leader": {
            "login": LEADER_LOGIN,
            "team": "EMEA Mid-Market",
            "otherTeam": "North America SMB",
        },
        "stranger": { "login": STRANGER_LOGIN },
        "adminName": ADMIN_NAME,
        "sessionFile": session_file,
    });
    let config_file = dir.join("oidc.json");
    std::fs::write(&config_file, config.to_string()).expect("the config");
    let node_dir = dir.clone();
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let (out, err) = (node_dir.join("oidc.stdout"), node_dir.join("oidc.stderr"));
        let child = Command::new("node")
            .arg(browser_dir().join("oidc.mjs"))
            .arg(&config_file)
            .current_dir(browser_dir())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("node starts");
        let mut child = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(240);
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (status, read_lossy(&out), read_lossy(&err))
    })
    .await
    .expect("the sign-ins ran");
    let provider_log = read_lossy(&dir.join("provider.stderr"));
    assert!(
        status.is_some_and(|s| s.success()),
        "the sign-ins failed ({status:?}):\n{stdout}\n{stderr}\nthe provider said:\n{provider_log}"
    );
    assert!(stdout.contains("ok: oidc"), "{stdout}\n{stderr}");

    // The session the browser got is the leader's, started at the provider,
    // and opens their home page without a browser too.
    let session = std::fs::read_to_string(&session_file).expect("the session cookie");
    let signed_in = access
        .session(session.trim(), chrono::Utc::now())
        .await
        .expect("a running session");
    assert_eq!(signed_in.session.via, Via::Oidc);
    assert_eq!(signed_in.account.map(|a| a.id), Some(leader.id));
    assert_eq!(signed_in.claims.role, Role::Leader);
    assert_eq!(signed_in.claims.teams, vec![world.team]);
    let home = get(
        &router,
        "/home",
        Some(&format!("trellis_session={}", session.trim())),
    )
    .await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    assert!(home.text().contains("EMEA Mid-Market"), "{}", home.text());
    assert!(
        !home.text().contains("North America SMB"),
        "{}",
        home.text()
    );
    // One session: the leader's; the stranger and the forged callbacks
    // started none.
    assert_eq!(running_sessions(&access, &leader).await, 1);

    drop(provider);
    server.abort();
    app.cleanup().await;
    // Kept when the test fails, to read what node and the provider said.
    let _ = std::fs::remove_dir_all(&dir);
}
