//! Webhooks end to end, on both backends: subscriptions over the API, the
//! dispatcher and sender running against a receiver in the test (an axum
//! server on a loopback port) that checks every signature with its own
//! implementation of the Standard Webhooks specification. The same receiver
//! also runs behind TLS (tokio-rustls) with certificates made at test time
//! (rcgen), to prove `https://` deliveries and their certificate checks.
//! The receiver counts the connections it accepts (to prove they are
//! reused) and can be told what to answer (a `503` with `Retry-After`, a
//! `410 Gone`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use trellis_eventstore::{Checkpoint, EventStore};
use trellis_tests::Kind;
use trellis_webhooks::{Secret, Subscription, Webhooks, WebhooksConfig, WebhooksState};
use uuid::Uuid;

use crate::http::{TestApp, assert_documented, on_each_backend};

/// The webhook admin API's OpenAPI document, which every answer below is
/// checked against: its status is documented, its body is what the
/// documented schema describes.
fn document() -> Value {
    serde_json::to_value(trellis_webhooks::openapi::document()).expect("JSON")
}

on_each_backend!(
    multi_thread:
    a_receiver_on_a_private_address_is_refused_when_registered,
    every_matching_event_reaches_each_subscription_once_signed,
    a_delivery_carries_the_traceparent_its_event_was_recorded_with,
    failed_deliveries_are_retried_with_growing_delays,
    a_receiver_that_always_fails_ends_dead_and_can_be_replayed,
    a_paused_webhook_queues_its_deliveries_and_sends_them_when_resumed,
    deliveries_about_an_erased_rep_are_sent_with_their_personal_data_erased,
    deliveries_naming_an_erased_leader_are_sent_with_their_name_erased,
    only_an_admin_manages_webhooks,
    bad_input_is_a_422_naming_the_field,
    an_https_receiver_with_a_certificate_from_the_configured_ca_gets_signed_deliveries,
    an_untrusted_receiver_certificate_fails_each_attempt_with_the_tls_reason_until_dead,
    a_receiver_certificate_for_another_host_fails_with_the_tls_reason,
    deliveries_to_one_receiver_reuse_one_connection,
    a_503_with_retry_after_is_retried_no_earlier_than_it_asks,
    a_410_gone_disables_the_webhook_and_nothing_more_is_sent_until_it_is_resumed,
    a_url_whose_host_header_cannot_be_sent_is_refused_and_a_stored_one_is_dead_at_once,
    after_a_410_nothing_of_the_webhook_is_pending_queued_or_claimed_until_it_is_resumed,
    a_signed_checkpoint_reaches_the_subscriptions_that_want_it_once,
);

// ---- the service under test ---------------------------------------------------

/// The command service with the webhook routes merged in, and the
/// dispatcher and sender running.
struct Hooked {
    app: TestApp,
    hooks: Webhooks,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hooked {
    async fn start(kind: Kind, config: WebhooksConfig) -> Hooked {
        let mut app = TestApp::spawn(kind).await;
        let hooks = crate::http::webhooks(&app.backend, config).await;
        let http = app.state.http().clone();
        app.router = trellis_http::app(
            http.clone(),
            [
                trellis_commands::api(app.state.clone()),
                trellis_webhooks::api(WebhooksState::new(http, hooks.clone())),
            ],
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(trellis_webhooks::run(
            app.store.clone(),
            hooks.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Hooked {
            app,
            hooks,
            stop: Some(stop),
            task,
        }
    }

    async fn cleanup(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        drop(self.hooks);
        self.app.cleanup().await;
    }

    /// Registers a webhook as admin; returns (id, secret).
    async fn register(&self, body: Value) -> (Uuid, String) {
        let r = self
            .app
            .post_json("/v1/webhooks", &self.app.admin(), &body)
            .await;
        r.expect(201);
        assert_documented(&document(), "POST", "/v1/webhooks", 201, &r.json);
        assert_eq!(
            r.header("location"),
            Some(format!("/v1/webhooks/{}", r.id()).as_str())
        );
        let secret = r.json["secret"].as_str().expect("a secret").to_owned();
        (r.id(), secret)
    }

    async fn deliveries(&self, webhook: Uuid, status: Option<&str>) -> Vec<Value> {
        let query = status.map_or(String::new(), |s| format!("?status={s}"));
        let r = self
            .app
            .request(
                Method::GET,
                &format!("/v1/webhooks/{webhook}/deliveries{query}"),
                &self.app.admin(),
                None,
                Bytes::new(),
                &[],
            )
            .await;
        r.expect(200);
        let path = "/v1/webhooks/{webhook_id}/deliveries";
        assert_documented(&document(), "GET", path, 200, &r.json);
        r.json["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Fast retries for tests.
fn quick(base_ms: u64, max_attempts: u32) -> WebhooksConfig {
    WebhooksConfig {
        retry_base: Duration::from_millis(base_ms),
        max_attempts,
        poll: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        // The receivers here listen on 127.0.0.1.
        allow_private_targets: true,
        ..WebhooksConfig::default()
    }
}

// ---- a receiver written as another service would write it -----------------------

#[derive(Debug, Clone)]
struct Received {
    msg_id: String,
    body: Value,
    signed: bool,
    /// The `traceparent` header, if it came with one.
    traceparent: Option<String>,
    at: Instant,
}

#[derive(Debug, Default)]
struct ReceiverState {
    /// Secrets by receiver path name.
    secrets: Mutex<HashMap<String, String>>,
    received: Mutex<Vec<(String, Received)>>,
    /// Attempts per (path, message id).
    attempts: Mutex<HashMap<(String, String), usize>>,
    /// Each message fails this many times before it succeeds.
    fail_times: AtomicUsize,
    /// TLS handshakes that failed (behind TLS only): each is an attempt the
    /// sender refused before sending anything.
    failed_handshakes: AtomicUsize,
    /// TCP connections accepted (plain HTTP only).
    connections: AtomicUsize,
    /// Answers a path gives, in order, before anything else.
    once: Mutex<HashMap<String, VecDeque<Scripted>>>,
    /// The answer a path gives, once the answers above are used up.
    always: Mutex<HashMap<String, Scripted>>,
}

/// An answer the test tells a receiver path to give: a status, and maybe a
/// `Retry-After`.
#[derive(Debug, Clone)]
struct Scripted {
    status: StatusCode,
    retry_after: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Receiver {
    /// `http` or `https`.
    scheme: &'static str,
    addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(fail_times: usize) -> Receiver {
        let (listener, addr, state, router) = Self::parts(fail_times).await;
        let counted = state.clone();
        let listener = listener.tap_io(move |_| {
            counted.connections.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            scheme: "http",
            addr,
            state,
        }
    }

    /// The same receiver behind TLS, presenting the certificate of `tls`.
    async fn start_tls(fail_times: usize, tls: Arc<rustls::ServerConfig>) -> Receiver {
        let (listener, addr, state, router) = Self::parts(fail_times).await;
        let listener = TlsListener::spawn(listener, tls, state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            scheme: "https",
            addr,
            state,
        }
    }

    async fn parts(
        fail_times: usize,
    ) -> (TcpListener, SocketAddr, Arc<ReceiverState>, axum::Router) {
        let state = Arc::new(ReceiverState::default());
        state.fail_times.store(fail_times, Ordering::SeqCst);
        let router = axum::Router::new()
            .route("/hooks/{name}", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        (listener, addr, state, router)
    }

    /// The URL of a receiver path, addressed by the loopback IP.
    fn url(&self, name: &str) -> String {
        format!("{}://{}/hooks/{name}", self.scheme, self.addr)
    }

    /// The URL of a receiver path, addressed by another host name that
    /// reaches it (`localhost`).
    fn url_at(&self, host: &str, name: &str) -> String {
        format!("{}://{host}:{}/hooks/{name}", self.scheme, self.addr.port())
    }

    fn failed_handshakes(&self) -> usize {
        self.state.failed_handshakes.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far (plain HTTP only).
    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The next request to the path `name` is answered `status`, with
    /// `retry_after` if given (after those told before).
    fn answer_once(&self, name: &str, status: StatusCode, retry_after: Option<&'static str>) {
        self.state
            .once
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .push_back(Scripted {
                status,
                retry_after,
            });
    }

    /// Every request to the path `name` is answered `status` from now on.
    fn answer_always(&self, name: &str, status: StatusCode) {
        self.state.always.lock().unwrap().insert(
            name.to_owned(),
            Scripted {
                status,
                retry_after: None,
            },
        );
    }

    fn expect_secret(&self, name: &str, secret: &str) {
        self.state
            .secrets
            .lock()
            .unwrap()
            .insert(name.to_owned(), secret.to_owned());
    }

    fn received(&self, name: &str) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let msg_id = header("webhook-id");
    let secret = state.secrets.lock().unwrap().get(&name).cloned();
    let signed = secret.is_some_and(|s| {
        verify(
            &s,
            &msg_id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
        )
    });
    state.received.lock().unwrap().push((
        name.clone(),
        Received {
            msg_id: msg_id.clone(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            signed,
            traceparent: headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        },
    ));
    let scripted = state
        .once
        .lock()
        .unwrap()
        .get_mut(&name)
        .and_then(VecDeque::pop_front)
        .or_else(|| state.always.lock().unwrap().get(&name).cloned());
    if let Some(Scripted {
        status,
        retry_after,
    }) = scripted
    {
        let mut response = status.into_response();
        if let Some(value) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static(value));
        }
        return response;
    }
    let mut attempts = state.attempts.lock().unwrap();
    let n = attempts.entry((name, msg_id)).or_insert(0);
    *n += 1;
    if *n <= state.fail_times.load(Ordering::SeqCst) {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// The receiver's own reading of the specification: the key is the base64
/// after `whsec_`; the signed content is `{id}.{timestamp}.{body}`; the header
/// holds space-separated `v1,<base64>` signatures; the timestamp must be
/// within five minutes.
fn verify(secret: &str, msg_id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 || msg_id.is_empty() {
        return false;
    }
    let mut content = format!("{msg_id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    signatures.split(' ').any(|sig| {
        let Some(encoded) = sig.strip_prefix("v1,") else {
            return false;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(&content);
        mac.verify_slice(&expected).is_ok()
    })
}

// ---- TLS for the receiver ---------------------------------------------------------

/// TLS connections for `axum::serve`. Handshakes run in tasks of their own,
/// off the accept loop, so a sender that refuses the certificate (and drops
/// the connection mid-handshake) holds up no other connection; each failure
/// is counted in the receiver's state.
#[derive(Debug)]
struct TlsListener {
    addr: SocketAddr,
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    fn spawn(
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        state: Arc<ReceiverState>,
    ) -> TlsListener {
        let addr = listener.local_addr().expect("an address");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let (tx, accepted) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (acceptor, tx, state) = (acceptor.clone(), tx.clone(), state.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        _ => {
                            state.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        TlsListener { addr, accepted }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// A certificate authority made for one test: its certificate in PEM (for
/// the sender to trust, or not), and the key that signs server certificates.
struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let certificate = params.self_signed(&key).expect("a CA certificate");
        TestCa {
            pem: certificate.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Writes the CA certificate to a file of its own, as an operator
    /// would for `--webhook-ca-file`.
    fn pem_file(&self) -> PathBuf {
        let path = trellis_tests::temp_dir().join("webhook-ca.pem");
        std::fs::write(&path, &self.pem).expect("the CA file is written");
        path
    }

    /// A server's TLS configuration presenting a certificate this CA issued
    /// for `names` (DNS names or IP addresses).
    fn server_tls(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).expect("valid names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].as_str());
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("a server key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring's protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone()], key)
            .expect("a server certificate and key that match");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// The test settings, trusting `ca_file` besides the system's roots.
fn trusting(ca_file: &std::path::Path, config: WebhooksConfig) -> WebhooksConfig {
    WebhooksConfig {
        ca_file: Some(ca_file.to_owned()),
        ..config
    }
}

/// Removes the temp dir holding a CA file.
fn remove_ca_file(path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Waits until `check` holds, or panics with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event in the log after `after`, as (event id, type, category).
async fn log_after(store: &dyn EventStore, after: Checkpoint) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut at = after;
    loop {
        let batch = store.read_all(at, 1000).await.expect("the log reads");
        let Some(last) = batch.last() else {
            return out;
        };
        at = last.checkpoint;
        out.extend(batch.iter().map(|e| {
            (
                e.event_id.to_string(),
                e.event_type.clone(),
                e.stream_id.category().to_owned(),
            )
        }));
    }
}

// ---- the tests -------------------------------------------------------------------

async fn every_matching_event_reaches_each_subscription_once_signed(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 5)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;

    // Before any subscription: never delivered.
    let early_team = app.form_team("Before webhooks").await;
    // Readable by the log's readers (on PostgreSQL, once older transactions
    // of the cluster end), so the subscriptions start after it.
    let early_stream = format!("team-{early_team}");
    eventually(
        Duration::from_secs(30),
        "the early event is readable",
        || {
            let store = app.store.clone();
            async move { log_after(&*store, Checkpoint::START).await.len() == 1 }
        },
    )
    .await;
    let start = app.store.head().await.expect("head");

    let subscriptions = [
        ("all", json!({ "url": receiver.url("all") })),
        (
            "teams-formed",
            json!({ "url": receiver.url("teams-formed"), "event_types": ["TeamFormed"] }),
        ),
        (
            "reps",
            json!({ "url": receiver.url("reps"), "categories": ["rep"] }),
        ),
        (
            "rep-joined-or-leaders",
            json!({
                "url": receiver.url("rep-joined-or-leaders"),
                "event_types": ["RepJoined", "LeaderAssigned"],
                "categories": ["rep", "team"],
            }),
        ),
    ];
    for (name, body) in &subscriptions {
        let (_, secret) = hooked.register(body.clone()).await;
        assert!(secret.starts_with("whsec_"), "a generated secret: {secret}");
        receiver.expect_secret(name, &secret);
    }
    let listed = app
        .request(
            Method::GET,
            "/v1/webhooks",
            &app.admin(),
            None,
            Bytes::new(),
            &[],
        )
        .await;
    listed.expect(200);
    let items = listed.json["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    assert!(
        items.iter().all(|i| i.get("secret").is_none()),
        "secrets are shown only once: {}",
        listed.text()
    );
    // The same subscription again (a form sent twice, a page reloaded)
    // would deliver every event twice: refused, naming the URL.
    let again = app
        .post_json("/v1/webhooks", &app.admin(), &subscriptions[0].1)
        .await;
    again.expect(422);
    // Named by when it was added, as the admin's list shows it, and by id.
    let added = chrono::Utc::now().format("the subscription added on %-d %B %Y");
    let why = again.expect_invalid_field("url");
    assert!(
        why.starts_with(&added.to_string()) && why.contains("already sends these events"),
        "{why}"
    );

    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    app.give_feedback(&world, rep).await;
    app.put_json(
        &format!("/v1/teams/{early_team}/name"),
        &app.admin(),
        &json!({ "name": "Renamed after webhooks" }),
    )
    .await
    .expect(200);

    // Everything written is readable (on PostgreSQL readers wait for older
    // transactions of the cluster to end).
    let written = app.events_in_log().await - 1;
    eventually(Duration::from_secs(30), "every event is readable", || {
        let store = app.store.clone();
        async move { log_after(&*store, start).await.len() == written }
    })
    .await;
    let log = log_after(&*app.store, start).await;
    assert!(log.len() >= 8, "the scenario wrote events: {log:?}");
    let expected = |name: &str| -> BTreeMap<String, String> {
        log.iter()
            .filter(|(_, t, c)| match name {
                "all" => true,
                "teams-formed" => t == "TeamFormed",
                "reps" => c == "rep",
                _ => (t == "RepJoined" || t == "LeaderAssigned") && (c == "rep" || c == "team"),
            })
            .map(|(id, t, _)| (id.clone(), t.clone()))
            .collect()
    };
    for (name, _) in &subscriptions {
        let want = expected(name);
        assert!(!want.is_empty(), "{name} expects something");
        let n = want.len();
        eventually(
            Duration::from_secs(30),
            &format!("{name} got {n} events"),
            || {
                let got = receiver.received(name).len();
                async move { got >= n }
            },
        )
        .await;
    }
    // Anything extra or repeated would have arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, _) in &subscriptions {
        let want = expected(name);
        let got = receiver.received(name);
        assert_eq!(got.len(), want.len(), "{name}: each event once: {got:#?}");
        let mut seen = BTreeMap::new();
        for r in &got {
            assert!(r.signed, "{name}: a valid signature on {}", r.msg_id);
            assert_eq!(
                r.body["id"].as_str(),
                Some(r.msg_id.as_str()),
                "webhook-id is the event id"
            );
            assert!(
                r.body["payload"].is_object(),
                "{name}: a payload: {}",
                r.body
            );
            for field in [
                "type",
                "stream",
                "stream_version",
                "occurred_at",
                "recorded_at",
            ] {
                assert!(!r.body[field].is_null(), "{name}: {field} in {}", r.body);
            }
            seen.insert(
                r.msg_id.clone(),
                r.body["type"].as_str().unwrap_or_default().to_owned(),
            );
        }
        assert_eq!(seen, want, "{name}: exactly the matching events");
    }
    assert!(
        receiver
            .received("all")
            .iter()
            .all(|r| r.body["type"] != "TeamFormed" || r.body["stream"] != early_stream.as_str()),
        "an event from before the subscription is not delivered"
    );

    hooked.cleanup().await;
}

/// The event of a write sent with a W3C `traceparent` is delivered with it
/// as a header (signed as every delivery is), so the receiver continues the
/// trace; an untraced event's delivery has none.
async fn a_delivery_carries_the_traceparent_its_event_was_recorded_with(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 5)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let (_, secret) = hooked
        .register(json!({ "url": receiver.url("teams"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("teams", &secret);

    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = app
        .post_json_with(
            "/v1/teams",
            &app.admin(),
            &json!({ "name": "Traced" }),
            &[("traceparent", traceparent)],
        )
        .await;
    traced.expect(201);
    let plain = app
        .post_json("/v1/teams", &app.admin(), &json!({ "name": "Plain" }))
        .await;
    plain.expect(201);
    eventually(Duration::from_secs(30), "both teams delivered", || {
        let got = receiver.received("teams").len();
        async move { got >= 2 }
    })
    .await;

    let got = receiver.received("teams");
    let delivered = |team: Uuid| {
        got.iter()
            .find(|r| r.body["stream"] == format!("team-{team}").as_str())
            .unwrap_or_else(|| panic!("team {team} delivered: {got:#?}"))
    };
    let (traced, plain) = (delivered(traced.id()), delivered(plain.id()));
    assert_eq!(traced.traceparent.as_deref(), Some(traceparent));
    assert_eq!(plain.traceparent, None);
    assert!(traced.signed && plain.signed, "{got:#?}");
    hooked.cleanup().await;
}

async fn failed_deliveries_are_retried_with_growing_delays(kind: Kind) {
    let hooked = Hooked::start(kind, quick(200, 8)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(2).await;
    let (webhook, secret) = hooked
        .register(json!({ "url": receiver.url("flaky"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("flaky", &secret);

    app.form_team("Flaky receivers").await;
    eventually(Duration::from_secs(30), "three attempts arrived", || {
        let n = receiver.received("flaky").len();
        async move { n >= 3 }
    })
    .await;
    let got = receiver.received("flaky");
    assert!(
        got.iter().all(|r| r.signed && r.msg_id == got[0].msg_id),
        "{got:#?}"
    );
    let first_gap = got[1].at - got[0].at;
    let second_gap = got[2].at - got[1].at;
    assert!(
        first_gap >= Duration::from_millis(140),
        "the first retry waits about the base delay (200 ms less jitter): {first_gap:?}"
    );
    assert!(
        second_gap > first_gap,
        "delays grow: {first_gap:?} then {second_gap:?}"
    );

    eventually(Duration::from_secs(10), "the delivery is delivered", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("delivered")).await.len() == 1 }
    })
    .await;
    let delivery = &hooked.deliveries(webhook, None).await[0];
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    let codes: Vec<u64> = delivery["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(codes, [500, 500, 200], "{delivery}");
    assert!(delivery["delivered_at"].is_string(), "{delivery}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received("flaky").len(), 3, "nothing after success");

    hooked.cleanup().await;
}

async fn a_paused_webhook_queues_its_deliveries_and_sends_them_when_resumed(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let (webhook, secret) = hooked
        .register(json!({ "url": receiver.url("paused"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("paused", &secret);
    let admin = app.admin();
    let paused = app
        .post_json(&format!("/v1/webhooks/{webhook}/pause"), &admin, &json!({}))
        .await;
    paused.expect(200);
    assert!(paused.json["paused_at"].is_string(), "{}", paused.text());
    assert_documented(
        &document(),
        "POST",
        "/v1/webhooks/{webhook_id}/pause",
        200,
        &paused.json,
    );

    app.form_team("Queued while paused").await;
    app.form_team("Also queued").await;
    eventually(Duration::from_secs(20), "two deliveries queued", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("pending")).await.len() == 2 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.received("paused").is_empty(),
        "nothing is sent while paused"
    );

    let resumed = app
        .post_json(
            &format!("/v1/webhooks/{webhook}/resume"),
            &admin,
            &json!({}),
        )
        .await;
    resumed.expect(200);
    assert!(
        resumed.json.get("paused_at").is_none(),
        "{}",
        resumed.text()
    );
    eventually(
        Duration::from_secs(20),
        "both delivered once resumed",
        || {
            let n = receiver.received("paused").len();
            async move { n == 2 }
        },
    )
    .await;
    assert!(receiver.received("paused").iter().all(|r| r.signed));
    app.post_json(
        &format!("/v1/webhooks/{}/pause", Uuid::now_v7()),
        &admin,
        &json!({}),
    )
    .await
    .expect_problem(404, "not-found");
    hooked.cleanup().await;
}

/// A webhook to `receiver`'s `name` for `categories`, paused: what happens
/// meanwhile queues until [`resume_and_receive`].
async fn paused_webhook(
    hooked: &Hooked,
    receiver: &Receiver,
    name: &str,
    categories: Value,
) -> Uuid {
    let (webhook, secret) = hooked
        .register(json!({ "url": receiver.url(name), "categories": categories }))
        .await;
    receiver.expect_secret(name, &secret);
    hooked
        .app
        .post_json(
            &format!("/v1/webhooks/{webhook}/pause"),
            &hooked.app.admin(),
            &json!({}),
        )
        .await
        .expect(200);
    webhook
}

/// Appends an erasure to `category`'s stream of `id` as the write API
/// records it (after the person's key is gone).
async fn append_erasure(app: &TestApp, category: &str, id: Uuid, erasure: trellis_domain::Event) {
    app.store
        .append(
            &trellis_eventstore::StreamId::for_entity(category, id).unwrap(),
            trellis_eventstore::ExpectedVersion::Any,
            &trellis_eventstore::CommandMeta::new("admin", chrono::Utc::now()),
            &[trellis_commands::write::to_new_event(
                &erasure,
                chrono::Utc::now(),
            )],
        )
        .await
        .unwrap();
}

/// Once `n` deliveries are queued, resumes the paused `webhook` and returns
/// the `n` bodies `receiver`'s `name` gets.
async fn resume_and_receive(
    hooked: &Hooked,
    receiver: &Receiver,
    webhook: Uuid,
    name: &str,
    n: usize,
) -> Vec<Value> {
    eventually(
        Duration::from_secs(20),
        "the deliveries queued",
        || async move { hooked.deliveries(webhook, Some("pending")).await.len() == n },
    )
    .await;
    hooked
        .app
        .post_json(
            &format!("/v1/webhooks/{webhook}/resume"),
            &hooked.app.admin(),
            &json!({}),
        )
        .await
        .expect(200);
    eventually(Duration::from_secs(20), "all of them delivered", || {
        let got = receiver.received(name).len();
        async move { got == n }
    })
    .await;
    receiver
        .received(name)
        .into_iter()
        .map(|r| r.body)
        .collect()
}

/// Deliveries queued about a rep before their erasure (here while the
/// webhook is paused) are sent as the log now reads them: erased.
async fn deliveries_about_an_erased_rep_are_sent_with_their_personal_data_erased(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let webhook = paused_webhook(&hooked, &receiver, "erased", json!(["rep"])).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    app.give_feedback(&world, rep).await;
    let erasure = trellis_domain::rep::PersonalDataErased {
        reason: trellis_domain::NonEmptyText::try_from("Asked to be forgotten").unwrap(),
        on: chrono::Utc::now().date_naive(),
    };
    append_erasure(app, "rep", rep, erasure.into()).await;
    let bodies = resume_and_receive(&hooked, &receiver, webhook, "erased", 3).await;
    let text = serde_json::to_string(&bodies).unwrap();
    assert!(!text.contains("Riley Rep"), "{text}");
    assert!(!text.contains("budget cycle"), "{text}");
    let payload_of = |event_type: &str| {
        bodies
            .iter()
            .find(|b| b["type"] == event_type)
            .unwrap_or_else(|| panic!("a {event_type} in {text}"))["payload"]
            .clone()
    };
    assert_eq!(payload_of("RepJoined")["name"], "Erased person");
    assert_eq!(payload_of("FeedbackGiven")["note"], "(erased)");
    hooked.cleanup().await;
}

/// Deliveries of a team's `LeaderAssigned` queued before the leader's
/// erasure are sent with the leader's name erased; the other leader's
/// assignment is sent as it was, and the erasure itself is delivered.
async fn deliveries_naming_an_erased_leader_are_sent_with_their_name_erased(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let webhook = paused_webhook(&hooked, &receiver, "leader", json!(["team", "leader"])).await;
    let team = app.form_team("Erasure North").await;
    let erased = Uuid::now_v7();
    app.post_json(
        &format!("/v1/teams/{team}/leaders"),
        &app.admin(),
        &json!({ "leader_id": erased, "leader_name": "Ottoline Vantwerp" }),
    )
    .await
    .expect(200);
    let kept = Uuid::now_v7();
    app.assign_leader(team, kept).await;
    let erasure = trellis_domain::leader::LeaderErased {
        leader_id: trellis_domain::LeaderId::from_uuid(erased),
        reason: trellis_domain::NonEmptyText::try_from("Left").unwrap(),
        on: chrono::Utc::now().date_naive(),
    };
    append_erasure(app, "leader", erased, erasure.into()).await;
    // Formed, two assignments, the erasure.
    let bodies = resume_and_receive(&hooked, &receiver, webhook, "leader", 4).await;
    let text = serde_json::to_string(&bodies).unwrap();
    assert!(!text.contains("Ottoline Vantwerp"), "{text}");
    let name_of = |leader: Uuid| {
        bodies
            .iter()
            .find(|b| {
                b["type"] == "LeaderAssigned" && b["payload"]["leader_id"] == leader.to_string()
            })
            .unwrap_or_else(|| panic!("{leader}'s assignment in {text}"))["payload"]["leader_name"]
            .clone()
    };
    assert_eq!(name_of(erased), "Erased person");
    assert_eq!(name_of(kept), "Lena Leader");
    assert!(bodies.iter().any(|b| b["type"] == "LeaderErased"), "{text}");
    hooked.cleanup().await;
}

async fn a_receiver_that_always_fails_ends_dead_and_can_be_replayed(kind: Kind) {
    let hooked = Hooked::start(kind, quick(20, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(usize::MAX).await;
    let (webhook, secret) = hooked
        .register(json!({
            "url": receiver.url("down"),
            "categories": ["team"],
            "event_types": ["TeamFormed"],
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }))
        .await;
    assert_eq!(
        secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "a given secret is kept"
    );
    receiver.expect_secret("down", &secret);
    app.form_team("Down receivers").await;

    eventually(Duration::from_secs(30), "the delivery is dead", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("dead")).await.len() == 1 }
    })
    .await;
    let dead = hooked.deliveries(webhook, Some("dead")).await.remove(0);
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert_eq!(dead["history"].as_array().map(Vec::len), Some(3), "{dead}");
    assert_eq!(dead["last_status_code"], 500, "{dead}");
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{dead}"
    );
    assert!(hooked.deliveries(webhook, Some("pending")).await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received("down").len(),
        3,
        "no attempt after the last"
    );

    // The receiver is back: replay.
    receiver.state.fail_times.store(0, Ordering::SeqCst);
    let id = dead["id"].as_str().expect("an id");
    let replayed = app
        .post_json(
            &format!("/v1/webhooks/deliveries/{id}/replay"),
            &app.admin(),
            &json!({}),
        )
        .await;
    replayed.expect(200);
    let replay = "/v1/webhooks/deliveries/{delivery_id}/replay";
    assert_documented(&document(), "POST", replay, 200, &replayed.json);
    assert_eq!(replayed.json["attempts"], 0, "{}", replayed.text());
    assert_eq!(replayed.json["replays"], 1, "{}", replayed.text());
    eventually(Duration::from_secs(10), "the replay is delivered", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("delivered")).await.len() == 1 }
    })
    .await;
    let delivered = hooked.deliveries(webhook, None).await.remove(0);
    assert_eq!(
        delivered["history"].as_array().map(Vec::len),
        Some(4),
        "{delivered}"
    );
    let got = receiver.received("down");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.signed && r.msg_id == got[0].msg_id));

    // Replaying a delivered one sends it again; an unknown one is a 404.
    let again = app
        .post_json(
            &format!("/v1/webhooks/deliveries/{id}/replay"),
            &app.admin(),
            &json!({}),
        )
        .await;
    again.expect(200);
    let unknown = app
        .post_json(
            &format!("/v1/webhooks/deliveries/{}/replay", Uuid::now_v7()),
            &app.admin(),
            &json!({}),
        )
        .await;
    unknown.expect_problem(404, "not-found");
    assert_documented(&document(), "POST", replay, 404, &unknown.json);
    eventually(Duration::from_secs(10), "the second replay arrived", || {
        let n = receiver.received("down").len();
        async move { n == 5 }
    })
    .await;

    // Deleting the webhook stops everything and hides its log.
    let token = app.admin();
    app.request(
        Method::DELETE,
        &format!("/v1/webhooks/{webhook}"),
        &token,
        None,
        Bytes::new(),
        &[],
    )
    .await
    .expect(204);
    app.request(
        Method::GET,
        &format!("/v1/webhooks/{webhook}/deliveries"),
        &token,
        None,
        Bytes::new(),
        &[],
    )
    .await
    .expect_problem(404, "not-found");
    app.request(
        Method::DELETE,
        &format!("/v1/webhooks/{webhook}"),
        &token,
        None,
        Bytes::new(),
        &[],
    )
    .await
    .expect_problem(404, "not-found");
    // A delivery of a deleted webhook cannot be replayed: a documented 409.
    let orphan = app
        .post_json(
            &format!("/v1/webhooks/deliveries/{id}/replay"),
            &token,
            &json!({}),
        )
        .await;
    orphan.expect_problem(409, "webhook-deleted");
    assert_documented(&document(), "POST", replay, 409, &orphan.json);
    app.form_team("After deletion").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("down").len(), 5, "nothing after deletion");

    hooked.cleanup().await;
}

async fn only_an_admin_manages_webhooks(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let (webhook, _) = hooked.register(json!({ "url": receiver.url("x") })).await;
    let delivery = Uuid::now_v7();
    let team = Uuid::now_v7();
    let tokens = [
        app.leader(&[team]),
        app.rep(Uuid::now_v7()),
        app.auditor(),
        app.service(&["measurements:write"]),
    ];
    let body = serde_json::to_vec(&json!({ "url": receiver.url("y") })).expect("JSON");
    let doc = document();
    let calls = [
        (Method::POST, "/v1/webhooks", "/v1/webhooks".to_owned()),
        (Method::GET, "/v1/webhooks", "/v1/webhooks".to_owned()),
        (
            Method::GET,
            "/v1/webhooks/{webhook_id}",
            format!("/v1/webhooks/{webhook}"),
        ),
        (
            Method::DELETE,
            "/v1/webhooks/{webhook_id}",
            format!("/v1/webhooks/{webhook}"),
        ),
        (
            Method::POST,
            "/v1/webhooks/{webhook_id}/pause",
            format!("/v1/webhooks/{webhook}/pause"),
        ),
        (
            Method::POST,
            "/v1/webhooks/{webhook_id}/resume",
            format!("/v1/webhooks/{webhook}/resume"),
        ),
        (
            Method::GET,
            "/v1/webhooks/{webhook_id}/deliveries",
            format!("/v1/webhooks/{webhook}/deliveries"),
        ),
        (
            Method::POST,
            "/v1/webhooks/deliveries/{delivery_id}/replay",
            format!("/v1/webhooks/deliveries/{delivery}/replay"),
        ),
    ];
    assert_eq!(
        calls.len(),
        crate::http::declared_webhook_routes().len(),
        "every webhook route"
    );
    for (method, template, path) in &calls {
        for token in &tokens {
            let r = app
                .request(
                    method.clone(),
                    path,
                    token,
                    Some("application/json"),
                    body.clone(),
                    &[],
                )
                .await;
            r.expect_problem(403, "forbidden");
            assert_documented(&doc, method.as_str(), template, 403, &r.json);
        }
        let r = app
            .request(
                method.clone(),
                path,
                "",
                Some("application/json"),
                body.clone(),
                &[],
            )
            .await;
        r.expect_problem(401, "unauthorized");
        assert_documented(&doc, method.as_str(), template, 401, &r.json);
    }
    // Still there, and still the only one.
    let listed = app
        .request(
            Method::GET,
            "/v1/webhooks",
            &app.admin(),
            None,
            Bytes::new(),
            &[],
        )
        .await;
    listed.expect(200);
    assert_documented(&doc, "GET", "/v1/webhooks", 200, &listed.json);
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));
    let shown = app
        .request(
            Method::GET,
            &format!("/v1/webhooks/{webhook}"),
            &app.admin(),
            None,
            Bytes::new(),
            &[],
        )
        .await;
    shown.expect(200);
    assert_documented(&doc, "GET", "/v1/webhooks/{webhook_id}", 200, &shown.json);
    assert!(
        shown.json.get("secret").is_none(),
        "the secret is never shown again"
    );

    // An admin deletes it; then it is gone.
    for expected in [204, 404] {
        let r = app
            .request(
                Method::DELETE,
                &format!("/v1/webhooks/{webhook}"),
                &app.admin(),
                None,
                Bytes::new(),
                &[],
            )
            .await;
        r.expect(expected);
        assert_documented(
            &doc,
            "DELETE",
            "/v1/webhooks/{webhook_id}",
            expected,
            &r.json,
        );
    }

    hooked.cleanup().await;
}

async fn bad_input_is_a_422_naming_the_field(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let admin = app.admin();
    let ok = "http://127.0.0.1:9/hook";
    let cases = [
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "ftp://example.com/hook" }), "url"),
        (json!({ "url": "http://user:pw@example.com/hook" }), "url"),
        (
            json!({ "url": ok, "categories": ["rep", "widgets"] }),
            "categories[1]",
        ),
        (
            json!({ "url": ok, "event_types": ["TeamFormed", "TeamExploded"] }),
            "event_types[1]",
        ),
        (json!({ "url": ok, "secret": "hunter2" }), "secret"),
        (json!({ "url": ok, "secret": "whsec_c2hvcnQ=" }), "secret"),
        (json!({ "event_types": [] }), "url"),
        (json!({ "url": ok, "categories": "rep" }), "categories"),
    ];
    let doc = document();
    for (body, field) in &cases {
        let r = app.post_json("/v1/webhooks", &admin, body).await;
        let reason = r.expect_invalid_field(field);
        assert!(!reason.is_empty(), "{body}: a reason for {field}");
        assert_documented(&doc, "POST", "/v1/webhooks", 422, &r.json);
    }
    // No URL at all: said as such, not as a parse error.
    let reason = app
        .post_json("/v1/webhooks", &admin, &json!({ "url": "  " }))
        .await
        .expect_invalid_field("url");
    assert!(
        reason.starts_with("enter the address"),
        "an empty URL is asked for: {reason}"
    );
    // A space inside: refused, not recorded as %20.
    let reason = app
        .post_json(
            "/v1/webhooks",
            &admin,
            &json!({ "url": "https://hooks.example.com/trel lis" }),
        )
        .await
        .expect_invalid_field("url");
    assert!(reason.contains("has a space in it"), "{reason}");
    // Another scheme: the reason asks for https (plain http, which a
    // public receiver is then refused, is named for private ones only).
    let reason = app
        .post_json(
            "/v1/webhooks",
            &admin,
            &json!({ "url": "ftp://example.com/hook" }),
        )
        .await
        .expect_invalid_field("url");
    assert!(
        reason.starts_with("the address must start with https://")
            && reason.contains("not ftp://")
            && reason.contains("private network only"),
        "{reason}"
    );
    // Several bad fields are all named at once.
    let r = app
        .post_json(
            "/v1/webhooks",
            &admin,
            &json!({ "url": "nope", "categories": ["planet"] }),
        )
        .await;
    r.expect_invalid_field("url");
    r.expect_invalid_field("categories[0]");
    // Not JSON, or not even JSON text.
    let r = app
        .post_raw("/v1/webhooks", &admin, "text/plain", "url=x", &[])
        .await;
    r.expect_problem(415, "unsupported-media-type");
    assert_documented(&doc, "POST", "/v1/webhooks", 415, &r.json);
    let r = app
        .post_raw(
            "/v1/webhooks",
            &admin,
            "application/json",
            "{\"url\": ",
            &[],
        )
        .await;
    r.expect_problem(400, "malformed-body");
    assert_documented(&doc, "POST", "/v1/webhooks", 400, &r.json);
    // Nothing was registered.
    let listed = app
        .request(Method::GET, "/v1/webhooks", &admin, None, Bytes::new(), &[])
        .await;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(0));

    // The delivery log's query string.
    let (webhook, _) = hooked.register(json!({ "url": ok })).await;
    for (query, field) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
    ] {
        let r = app
            .request(
                Method::GET,
                &format!("/v1/webhooks/{webhook}/deliveries?{query}"),
                &admin,
                None,
                Bytes::new(),
                &[],
            )
            .await;
        r.expect_invalid_field(field);
        let path = "/v1/webhooks/{webhook_id}/deliveries";
        assert_documented(&doc, "GET", path, 422, &r.json);
    }
    // Unknown and malformed ids.
    for (template, path) in [
        (
            "/v1/webhooks/{webhook_id}",
            format!("/v1/webhooks/{}", Uuid::now_v7()),
        ),
        (
            "/v1/webhooks/{webhook_id}",
            "/v1/webhooks/not-an-id".to_owned(),
        ),
        (
            "/v1/webhooks/{webhook_id}/deliveries",
            format!("/v1/webhooks/{}/deliveries", Uuid::now_v7()),
        ),
    ] {
        let r = app
            .request(Method::GET, &path, &admin, None, Bytes::new(), &[])
            .await;
        r.expect_problem(404, "not-found");
        assert_documented(&doc, "GET", template, 404, &r.json);
    }

    hooked.cleanup().await;
}

async fn an_https_receiver_with_a_certificate_from_the_configured_ca_gets_signed_deliveries(
    kind: Kind,
) {
    let ca = TestCa::new("Trellis test private CA");
    let ca_file = ca.pem_file();
    let hooked = Hooked::start(kind, trusting(&ca_file, quick(50, 3))).await;
    let app = &hooked.app;
    let receiver = Receiver::start_tls(0, ca.server_tls(&["localhost", "127.0.0.1"])).await;
    // The certificate is checked for the URL's host: a DNS name, and an IP address.
    let urls = [
        ("by-name", receiver.url_at("localhost", "by-name")),
        ("by-ip", receiver.url("by-ip")),
    ];
    let mut webhooks = Vec::new();
    for (name, url) in &urls {
        assert!(url.starts_with("https://"), "{url}");
        let (webhook, secret) = hooked
            .register(json!({ "url": url, "event_types": ["TeamFormed"] }))
            .await;
        receiver.expect_secret(name, &secret);
        webhooks.push(webhook);
    }

    let team = app.form_team("Behind TLS").await;
    for (name, _) in &urls {
        eventually(
            Duration::from_secs(30),
            &format!("{name} got the event over TLS"),
            || {
                let n = receiver.received(name).len();
                async move { n >= 1 }
            },
        )
        .await;
    }
    for webhook in &webhooks {
        eventually(Duration::from_secs(10), "the delivery is recorded", || {
            let h = &hooked;
            async move { h.deliveries(*webhook, Some("delivered")).await.len() == 1 }
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, _) in &urls {
        let got = receiver.received(name);
        assert_eq!(got.len(), 1, "{name}: once: {got:#?}");
        let r = &got[0];
        assert!(r.signed, "{name}: a valid signature on {}", r.msg_id);
        assert_eq!(r.body["id"].as_str(), Some(r.msg_id.as_str()), "{name}");
        assert_eq!(r.body["type"], "TeamFormed", "{name}: {}", r.body);
        assert_eq!(
            r.body["stream"],
            format!("team-{team}").as_str(),
            "{name}: {}",
            r.body
        );
    }
    for webhook in &webhooks {
        let delivery = &hooked.deliveries(*webhook, None).await[0];
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        assert_eq!(delivery["last_status_code"], 200, "{delivery}");
        assert!(delivery["last_error"].is_null(), "{delivery}");
    }
    assert_eq!(receiver.failed_handshakes(), 0, "every handshake succeeded");

    hooked.cleanup().await;
    remove_ca_file(&ca_file);
}

async fn an_untrusted_receiver_certificate_fails_each_attempt_with_the_tls_reason_until_dead(
    kind: Kind,
) {
    // The sender trusts one private CA; the receiver's certificate comes
    // from another it has never heard of.
    let trusted = TestCa::new("Trellis test private CA");
    let stranger = TestCa::new("Someone else's CA");
    let ca_file = trusted.pem_file();
    let hooked = Hooked::start(kind, trusting(&ca_file, quick(20, 3))).await;
    let app = &hooked.app;
    let receiver = Receiver::start_tls(0, stranger.server_tls(&["localhost", "127.0.0.1"])).await;
    let (webhook, secret) = hooked
        .register(json!({ "url": receiver.url("untrusted"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("untrusted", &secret);
    app.form_team("Untrusted receivers").await;

    eventually(Duration::from_secs(30), "the delivery is dead", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("dead")).await.len() == 1 }
    })
    .await;
    let dead = hooked.deliveries(webhook, Some("dead")).await.remove(0);
    assert_eq!(dead["attempts"], 3, "retried like any failure: {dead}");
    let history = dead["history"].as_array().expect("a history");
    assert_eq!(history.len(), 3, "{dead}");
    for attempt in history {
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("TLS handshake with 127.0.0.1 failed")
                && error.contains("invalid peer certificate: UnknownIssuer"),
            "each attempt records the TLS reason: {attempt}"
        );
        assert!(attempt["status_code"].is_null(), "no answer: {attempt}");
    }
    assert!(dead["last_status_code"].is_null(), "{dead}");
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("UnknownIssuer")),
        "{dead}"
    );
    assert!(hooked.deliveries(webhook, Some("pending")).await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received("untrusted").is_empty(),
        "nothing is sent to a receiver whose certificate does not verify"
    );
    assert_eq!(
        receiver.failed_handshakes(),
        3,
        "one refused handshake per attempt, none after the last"
    );

    hooked.cleanup().await;
    remove_ca_file(&ca_file);
}

async fn a_receiver_certificate_for_another_host_fails_with_the_tls_reason(kind: Kind) {
    // Issued by the trusted CA, but for a name the URL does not use.
    let ca = TestCa::new("Trellis test private CA");
    let ca_file = ca.pem_file();
    let hooked = Hooked::start(kind, trusting(&ca_file, quick(20, 1))).await;
    let app = &hooked.app;
    let receiver = Receiver::start_tls(0, ca.server_tls(&["hooks.example.com"])).await;
    let (webhook, _) = hooked
        .register(json!({ "url": receiver.url("elsewhere"), "event_types": ["TeamFormed"] }))
        .await;
    app.form_team("Misnamed receivers").await;

    eventually(Duration::from_secs(30), "the delivery is dead", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("dead")).await.len() == 1 }
    })
    .await;
    let dead = hooked.deliveries(webhook, Some("dead")).await.remove(0);
    assert_eq!(dead["attempts"], 1, "{dead}");
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("TLS handshake with 127.0.0.1 failed")
            && error.contains("not valid for name \"127.0.0.1\"")
            && error.contains("hooks.example.com"),
        "the reason names the host and the certificate's names: {dead}"
    );
    assert!(receiver.received("elsewhere").is_empty());

    hooked.cleanup().await;
    remove_ca_file(&ca_file);
}

/// Without `allow_private_targets` (the default, and `trellis serve`'s
/// without --webhook-allow-private-targets), a receiver on a loopback,
/// private or link-local address — the cloud's metadata address included —
/// is refused when registered, with the reason beside the URL; so is a
/// public name over plain http; a public name over https is accepted.
async fn a_receiver_on_a_private_address_is_refused_when_registered(kind: Kind) {
    let strict = WebhooksConfig {
        allow_private_targets: false,
        ..quick(50, 3)
    };
    let hooked = Hooked::start(kind, strict).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ] {
        let r = hooked
            .app
            .post_json("/v1/webhooks", &hooked.app.admin(), &json!({ "url": url }))
            .await;
        let reason = r.expect_invalid_field("url");
        assert!(reason.contains("private address"), "{url}: {reason}");
    }
    // A public receiver is reached over TLS only: plain http is refused,
    // with the address to use instead.
    let r = hooked
        .app
        .post_json(
            "/v1/webhooks",
            &hooked.app.admin(),
            &json!({ "url": "http://hooks.example.com/trellis" }),
        )
        .await;
    let reason = r.expect_invalid_field("url");
    assert!(
        reason.contains("\"https://hooks.example.com/trellis\""),
        "the reason names the https address: {reason}"
    );
    hooked
        .register(json!({ "url": "https://hooks.example.com/trellis" }))
        .await;
    hooked.cleanup().await;
}

/// Two deliveries to one receiver, one after the other, go over the
/// connection the first one opened.
async fn deliveries_to_one_receiver_reuse_one_connection(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let (webhook, secret) = hooked
        .register(json!({ "url": receiver.url("kept"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("kept", &secret);

    for n in 1..=2 {
        app.form_team(&format!("Kept connection {n}")).await;
        eventually(
            Duration::from_secs(30),
            &format!("delivery {n} is delivered"),
            || {
                let h = &hooked;
                async move { h.deliveries(webhook, Some("delivered")).await.len() == n }
            },
        )
        .await;
    }
    let got = receiver.received("kept");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got.iter().all(|r| r.signed), "{got:#?}");
    assert_ne!(got[0].msg_id, got[1].msg_id, "two events");
    assert_eq!(
        receiver.connections(),
        1,
        "the second delivery went over the first one's connection"
    );

    hooked.cleanup().await;
}

/// A receiver that answers `503` with `Retry-After: 2` gets the next
/// attempt two seconds later at the earliest, though the backoff alone
/// would retry after 50 ms.
async fn a_503_with_retry_after_is_retried_no_earlier_than_it_asks(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 5)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    receiver.answer_once("busy", StatusCode::SERVICE_UNAVAILABLE, Some("2"));
    let (webhook, secret) = hooked
        .register(json!({ "url": receiver.url("busy"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("busy", &secret);

    app.form_team("Busy receivers").await;
    eventually(Duration::from_secs(30), "the delivery is delivered", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("delivered")).await.len() == 1 }
    })
    .await;
    let got = receiver.received("busy");
    assert_eq!(got.len(), 2, "a 503, then the retry: {got:#?}");
    assert!(got.iter().all(|r| r.signed && r.msg_id == got[0].msg_id));
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_secs(2),
        "the retry came {gap:?} after the 503 asking for 2 s"
    );
    let delivery = &hooked.deliveries(webhook, None).await[0];
    let history = delivery["history"].as_array().expect("a history");
    let codes: Vec<u64> = history
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(codes, [503, 200], "{delivery}");
    assert_eq!(
        history[0]["error"], "the receiver answered 503 and asked for no retry within 2 s",
        "{delivery}"
    );

    hooked.cleanup().await;
}

/// `410 Gone`: the delivery is dead at once, the webhook disabled with the
/// reason where webhooks are listed and shown, and nothing more is queued
/// or sent to it, while another webhook goes on receiving. Resumed, it
/// receives the next events again.
async fn a_410_gone_disables_the_webhook_and_nothing_more_is_sent_until_it_is_resumed(kind: Kind) {
    let hooked = Hooked::start(kind, quick(50, 5)).await;
    let app = &hooked.app;
    let admin = app.admin();
    let doc = document();
    let receiver = Receiver::start(0).await;
    receiver.answer_always("gone", StatusCode::GONE);
    let (gone, secret) = hooked
        .register(json!({ "url": receiver.url("gone"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("gone", &secret);
    // A witness: it shows when the dispatcher has seen an event.
    let (witness, secret) = hooked
        .register(json!({ "url": receiver.url("witness"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("witness", &secret);

    app.form_team("Gone receivers").await;
    eventually(Duration::from_secs(30), "the delivery is dead", || {
        let h = &hooked;
        async move { h.deliveries(gone, Some("dead")).await.len() == 1 }
    })
    .await;
    let dead = hooked.deliveries(gone, Some("dead")).await.remove(0);
    assert_eq!(dead["attempts"], 1, "no retry after a 410: {dead}");
    assert_eq!(dead["last_status_code"], 410, "{dead}");
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("410 Gone") && e.contains("disabled")),
        "{dead}"
    );

    // Disabled, with the reason, in the list and on its own.
    let listed = app
        .request(Method::GET, "/v1/webhooks", &admin, None, Bytes::new(), &[])
        .await;
    listed.expect(200);
    assert_documented(&doc, "GET", "/v1/webhooks", 200, &listed.json);
    let items = listed.json["items"].as_array().cloned().unwrap_or_default();
    let item = |id: Uuid| {
        items
            .iter()
            .find(|i| i["id"] == id.to_string().as_str())
            .cloned()
            .unwrap_or_default()
    };
    let gone_item = item(gone);
    assert!(gone_item["disabled_at"].is_string(), "{gone_item}");
    assert_eq!(
        gone_item["disabled_reason"], "the receiver answered 410 Gone: it wants no more deliveries",
        "{gone_item}"
    );
    assert!(
        item(witness).get("disabled_at").is_none(),
        "the other webhook is not disabled: {}",
        item(witness)
    );
    let shown = app
        .request(
            Method::GET,
            &format!("/v1/webhooks/{gone}"),
            &admin,
            None,
            Bytes::new(),
            &[],
        )
        .await;
    shown.expect(200);
    assert_documented(&doc, "GET", "/v1/webhooks/{webhook_id}", 200, &shown.json);
    assert_eq!(shown.json["disabled_reason"], gone_item["disabled_reason"]);

    // The next event reaches the witness, and nothing reaches the gone one.
    app.form_team("After the 410").await;
    eventually(Duration::from_secs(30), "the witness got both", || {
        let n = receiver.received("witness").len();
        async move { n == 2 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("gone").len(), 1, "nothing after the 410");
    assert_eq!(
        hooked.deliveries(gone, None).await.len(),
        1,
        "nothing queued for a disabled webhook"
    );

    // Resumed, it is enabled and receives what comes next.
    receiver.answer_always("gone", StatusCode::OK);
    let resumed = app
        .post_json(&format!("/v1/webhooks/{gone}/resume"), &admin, &json!({}))
        .await;
    resumed.expect(200);
    assert_documented(
        &doc,
        "POST",
        "/v1/webhooks/{webhook_id}/resume",
        200,
        &resumed.json,
    );
    assert!(
        resumed.json.get("disabled_at").is_none() && resumed.json.get("disabled_reason").is_none(),
        "{}",
        resumed.text()
    );
    app.form_team("After resuming").await;
    eventually(
        Duration::from_secs(30),
        "the resumed webhook got one",
        || {
            let h = &hooked;
            async move { h.deliveries(gone, Some("delivered")).await.len() == 1 }
        },
    )
    .await;
    assert_eq!(receiver.received("gone").len(), 2);

    hooked.cleanup().await;
}

/// The URL parser takes `hooks{x}.example.com` for a host name; the `Host`
/// header of a request cannot carry it. Registering such a URL is a 422
/// saying why; one already stored (registered before the check) makes each
/// of its deliveries dead at the first attempt with the same reason,
/// nothing sent and no retry.
async fn a_url_whose_host_header_cannot_be_sent_is_refused_and_a_stored_one_is_dead_at_once(
    kind: Kind,
) {
    let hooked = Hooked::start(kind, quick(50, 5)).await;
    let app = &hooked.app;
    let url = "http://hooks{x}.example.com/hook";
    let reason = app
        .post_json("/v1/webhooks", &app.admin(), &json!({ "url": url }))
        .await
        .expect_invalid_field("url");
    let why = "the host \"hooks{x}.example.com\" holds '{', which no host name has and an HTTP \
               request cannot carry";
    assert_eq!(reason, why);

    let webhook = Uuid::now_v7();
    hooked
        .hooks
        .store()
        .create_subscription(&Subscription {
            id: webhook,
            url: url.to_owned(),
            event_types: vec!["TeamFormed".to_owned()],
            categories: Vec::new(),
            secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            start: app.store.head().await.expect("head"),
            created_at: chrono::Utc::now(),
            created_by: "an older release".to_owned(),
            paused_at: None,
            disabled: None,
        })
        .await
        .expect("stored");
    app.form_team("Unsendable receivers").await;
    eventually(Duration::from_secs(30), "the delivery is dead", || {
        let h = &hooked;
        async move { h.deliveries(webhook, Some("dead")).await.len() == 1 }
    })
    .await;
    let dead = hooked.deliveries(webhook, Some("dead")).await.remove(0);
    assert_eq!(dead["attempts"], 1, "no retry can send it: {dead}");
    assert!(
        dead["last_status_code"].is_null(),
        "nothing answered: {dead}"
    );
    assert_eq!(dead["last_error"], why, "{dead}");

    hooked.cleanup().await;
}

/// The store's side of a 410, on each backend, without a sender running:
/// the attempt that got it disables the webhook and moves its other pending
/// deliveries to the dead-letter list with it; one in flight meanwhile is
/// dead too when its own attempt fails; nothing more is queued, claimed or
/// due for it; resuming enables it again.
async fn after_a_410_nothing_of_the_webhook_is_pending_queued_or_claimed_until_it_is_resumed(
    kind: Kind,
) {
    use trellis_webhooks::store::{AttemptOutcome, NewDelivery};
    use trellis_webhooks::{Attempt, DeliveryStatus};

    let app = TestApp::spawn(kind).await;
    let hooks = crate::http::webhooks(&app.backend, quick(50, 5)).await;
    let store = hooks.store();
    let webhook = Uuid::now_v7();
    store
        .create_subscription(&Subscription {
            id: webhook,
            url: "http://127.0.0.1:9/hook".to_owned(),
            event_types: Vec::new(),
            categories: Vec::new(),
            secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            start: Checkpoint::START,
            created_at: chrono::Utc::now(),
            created_by: "admin".to_owned(),
            paused_at: None,
            disabled: None,
        })
        .await
        .expect("stored");
    let delivery = |n: u64| NewDelivery {
        id: Uuid::now_v7(),
        subscription_id: webhook,
        event_id: Uuid::now_v7(),
        event_type: "TeamFormed".to_owned(),
        stream_id: format!("team-{}", Uuid::now_v7()),
        global_position: n,
        body: "{}".to_owned(),
        traceparent: None,
        created_at: chrono::Utc::now(),
    };
    let queued: Vec<NewDelivery> = (1..=3).map(delivery).collect();
    assert_eq!(store.enqueue(&queued).await.expect("queued"), 3);
    let now = chrono::Utc::now();
    let claimed = store
        .claim_due(now, now + chrono::Duration::seconds(60), 2)
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|c| c.subscription_id == webhook));
    let (gone, in_flight, waiting) = (claimed[0].id, claimed[1].id, queued[2].id);
    let outcome = |status, code, disable: Option<&str>| AttemptOutcome {
        attempt: Attempt {
            attempted_at: chrono::Utc::now(),
            status_code: Some(code),
            error: Some(format!("the receiver answered {code}")),
            duration_ms: 1,
        },
        status,
        next_attempt_at: chrono::Utc::now(),
        disable: disable.map(str::to_owned),
    };

    let reason = "the receiver answered 410 Gone: it wants no more deliveries";
    store
        .record_attempt(gone, &outcome(DeliveryStatus::Dead, 410, Some(reason)))
        .await
        .expect("recorded");
    let disabled = store
        .subscription(webhook)
        .await
        .expect("read")
        .and_then(|s| s.disabled)
        .expect("disabled");
    assert_eq!(disabled.reason, reason);
    let read = |id: Uuid| async move { store.delivery(id).await.expect("read").expect("there") };
    let waited = read(waiting).await;
    assert_eq!(waited.status, DeliveryStatus::Dead, "{waited:?}");
    assert_eq!(
        waited.last_error.as_deref(),
        Some(format!("not sent: the webhook was disabled ({reason})").as_str())
    );
    assert_eq!(waited.attempts, 0, "never attempted: {waited:?}");
    // The attempt in flight fails meanwhile: it is not left pending.
    store
        .record_attempt(in_flight, &outcome(DeliveryStatus::Pending, 500, None))
        .await
        .expect("recorded");
    let flown = read(in_flight).await;
    assert_eq!(flown.status, DeliveryStatus::Dead, "{flown:?}");
    assert_eq!(flown.attempts, 1, "{flown:?}");
    assert_eq!(read(gone).await.last_status_code, Some(410));

    // Nothing more is queued, claimed or due.
    assert_eq!(store.enqueue(&[delivery(4)]).await.expect("queued"), 0);
    let later = chrono::Utc::now() + chrono::Duration::seconds(120);
    let none = store.claim_due(later, later, 10).await.expect("claimed");
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(store.next_due().await.expect("read"), None);

    // Resumed: enabled, and queued for again.
    assert!(store.set_paused(webhook, None).await.expect("resumed"));
    let resumed = store
        .subscription(webhook)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(resumed.disabled, None);
    assert_eq!(store.enqueue(&[delivery(5)]).await.expect("queued"), 1);

    drop(hooks);
    app.cleanup().await;
}

/// A signed checkpoint of the log goes to every subscription to all events
/// or to `CheckpointSigned`, signed like any delivery and once however often
/// it is handed over; a subscription to other types does not get it.
async fn a_signed_checkpoint_reaches_the_subscriptions_that_want_it_once(kind: Kind) {
    use trellis_eventstore::note::SignerKey;
    use trellis_eventstore::tree::TreeBuilder;
    let hooked = Hooked::start(kind, quick(50, 3)).await;
    let app = &hooked.app;
    let receiver = Receiver::start(0).await;
    let (all, secret_all) = hooked.register(json!({ "url": receiver.url("all") })).await;
    receiver.expect_secret("all", &secret_all);
    let (only, secret_only) = hooked
        .register(json!({ "url": receiver.url("only"), "event_types": ["CheckpointSigned"] }))
        .await;
    receiver.expect_secret("only", &secret_only);
    let (_, secret_other) = hooked
        .register(json!({ "url": receiver.url("other"), "event_types": ["TeamFormed"] }))
        .await;
    receiver.expect_secret("other", &secret_other);
    app.form_team("Checkpointed").await;

    let key = SignerKey::generate("trellis.test/log").unwrap();
    let mut builder = TreeBuilder::load(&*app.store).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while builder.catch_up(&*app.store).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the log never became readable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let checkpoint = builder
        .sign(&*app.store, &key, "trellis.test/log", chrono::Utc::now())
        .await
        .unwrap();
    for _ in 0..2 {
        trellis_webhooks::deliver_checkpoint(
            &hooked.hooks,
            &checkpoint,
            builder.read(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    }
    for (webhook, path) in [(all, "all"), (only, "only")] {
        eventually(
            Duration::from_secs(30),
            &format!("{path} gets the checkpoint"),
            || {
                let h = &hooked;
                async move {
                    h.deliveries(webhook, Some("delivered"))
                        .await
                        .iter()
                        .any(|d| d["event_type"] == "CheckpointSigned")
                }
            },
        )
        .await;
        let got: Vec<_> = receiver
            .received(path)
            .into_iter()
            .filter(|r| r.body["type"] == "CheckpointSigned")
            .collect();
        assert_eq!(got.len(), 1, "{path}: once: {got:#?}");
        assert!(got[0].signed, "{path}");
        assert_eq!(got[0].body["checkpoint"], checkpoint.text());
        assert_eq!(got[0].body["tree_size"], builder.size());
        let kept = trellis_eventstore::note::SignedCheckpoint::parse(
            got[0].body["checkpoint"].as_str().unwrap(),
        )
        .unwrap();
        assert!(kept.verify(&[key.verifier()]).is_ok());
    }
    assert!(
        receiver
            .received("other")
            .iter()
            .all(|r| r.body["type"] != "CheckpointSigned"),
        "a subscription to other types does not get it"
    );
    hooked.cleanup().await;
}
