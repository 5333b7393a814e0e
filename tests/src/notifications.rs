//! The relay against real nats-server processes: every event of the log
//! reaches JetStream exactly once per event id, in log order, through relay
//! crashes, broker outages and the loss of a cluster node; a subscriber
//! written as another service would write it receives what was written; one
//! relay is active at a time.
//!
//! Tests that only publish use the shared server (`TRELLIS_TEST_NATS_URL`),
//! each with a stream and subject prefix of its own (deleted at the end).
//! Tests that stop brokers start their own nats-server processes on spare
//! loopback ports with their own data directories, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use chrono::{NaiveDate, Utc};
use futures_util::StreamExt as _;
use trellis_domain::rep::{FeedbackGiven, FeedbackKind, Visibility};
use trellis_domain::team::TeamFormed;
use trellis_domain::{Event, Name, Note};
use trellis_eventstore::{
    Checkpoint, CommandMeta, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId,
};
use trellis_notifications::{RelayConfig, RelayHandle, message};
use trellis_tests::{Backend, Kind, temp_dir};
use uuid::Uuid;

/// The shared test broker; `tests/run` exports it.
fn nats_url() -> String {
    std::env::var("TRELLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A stream, subject prefix and checkpoint of the test's own.
fn config(kind: Kind, backend: &Backend) -> RelayConfig {
    let tag = Uuid::now_v7().simple().to_string();
    let tag = &tag[tag.len() - 12..];
    let mut config =
        RelayConfig::for_stream(format!("TEST_RELAY_{tag}"), format!("test.{tag}.events"));
    config.batch = 200;
    config.max_in_flight = 400;
    config.standby_retry = Duration::from_millis(200);
    config.source = "urn:trellis:test".into();
    if kind == Kind::Postgres {
        config = config.with_postgres_lease(&backend.database().url);
    }
    config
}

async fn jetstream(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach nats-server at {url} ({e}); run tests/run"));
    // Generous: a cluster that just lost a node answers slowly.
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(15))
        .build(client)
}

fn start(store: &Arc<dyn EventStore>, url: &str, config: &RelayConfig) -> RelayHandle {
    trellis_notifications::spawn(store.clone(), url, config.clone()).expect("a valid NATS URL")
}

// ---------------------------------------------------------------- events

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).expect("a date")
}

fn new_event(event: Event) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.schema_version(),
        event.to_payload(),
        Utc::now(),
    )
}

fn feedback() -> NewEvent {
    new_event(
        FeedbackGiven {
            feedback_id: Uuid::now_v7().into(),
            leader_id: Uuid::now_v7().into(),
            competency_id: Uuid::now_v7().into(),
            kind: FeedbackKind::Praise,
            note: Note::try_from("Asked two sharp follow-ups about budget timing.")
                .expect("a note"),
            visibility: Visibility::Shared,
            given_on: day(),
        }
        .into(),
    )
}

fn team_formed(team: Uuid) -> NewEvent {
    new_event(
        TeamFormed {
            team_id: team.into(),
            name: Name::try_from("Enterprise East").expect("a name"),
        }
        .into(),
    )
}

/// Appends `total` feedback events over `streams` rep streams, `per_append` at a time.
async fn write(store: &Arc<dyn EventStore>, streams: &[StreamId], total: usize, per_append: usize) {
    let mut written = 0;
    let mut i = 0;
    while written < total {
        let n = per_append.min(total - written);
        let events: Vec<NewEvent> = (0..n).map(|_| feedback()).collect();
        store
            .append(
                &streams[i % streams.len()],
                ExpectedVersion::Any,
                &CommandMeta::new("leader-test", Utc::now()),
                &events,
            )
            .await
            .expect("append");
        written += n;
        i += 1;
    }
}

fn rep_streams(n: usize) -> Vec<StreamId> {
    (0..n).map(|_| trellis_tests::stream("rep")).collect()
}

/// Appends at about `per_second` events a second until `stop`; returns how
/// many appends succeeded and failed.
fn steady_writer(
    store: Arc<dyn EventStore>,
    per_second: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let streams = rep_streams(10);
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let outcome = store
                .append(
                    &streams[i % streams.len()],
                    ExpectedVersion::Any,
                    &CommandMeta::new("leader-test", Utc::now()),
                    &[feedback()],
                )
                .await;
            if outcome.is_ok() {
                ok += 1;
            } else {
                failed += 1;
            }
            i += 1;
        }
        (ok, failed)
    })
}

// ---------------------------------------------------------------- checks

async fn whole_log(store: &Arc<dyn EventStore>) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let page = store.read_all(after, 5000).await.expect("read_all");
        let Some(last) = page.last() else { break };
        after = last.checkpoint;
        all.extend(page);
    }
    all
}

async fn stream_count(js: &jetstream::Context, stream: &str) -> u64 {
    match js.get_stream(stream).await {
        Ok(mut stream) => stream.info().await.map_or(0, |info| info.state.messages),
        Err(_) => 0,
    }
}

/// Waits until the stream holds at least `n` messages.
async fn wait_for_count(js: &jetstream::Context, stream: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let count = stream_count(js, stream).await;
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream {stream} holds {count} of {n} events after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Every message of the stream, in stream order, each read by its sequence
/// from the stream's leader. No consumer: right after a cluster node died,
/// placing a new consumer's replicas can stall for longer than a test
/// waits, while the stream itself answers. A read that times out while the
/// stream elects a leader is tried again for a while.
async fn stream_messages(
    js: &jetstream::Context,
    stream: &str,
) -> Vec<jetstream::message::StreamMessage> {
    read_messages(js, stream, false).await
}

/// [`stream_messages`] of a stream some messages were deleted from (an
/// erasure's doing): their sequence numbers are skipped.
async fn messages_left(
    js: &jetstream::Context,
    stream: &str,
) -> Vec<jetstream::message::StreamMessage> {
    read_messages(js, stream, true).await
}

async fn read_messages(
    js: &jetstream::Context,
    stream: &str,
    skip_deleted: bool,
) -> Vec<jetstream::message::StreamMessage> {
    let stream = js.get_stream(stream).await.expect("the stream");
    let state = &stream.cached_info().state;
    let (first, last) = (state.first_sequence, state.last_sequence);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut out = Vec::with_capacity(usize::try_from(state.messages).expect("a count"));
    for sequence in first..=last {
        if state.messages == 0 {
            break;
        }
        let message = loop {
            match stream.get_raw_message(sequence).await {
                Ok(message) => break Some(message),
                Err(e)
                    if skip_deleted
                        && e.kind()
                            == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound =>
                {
                    break None;
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("reading message {sequence} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("message {sequence} unreadable for 60 s: {e}"),
            }
        };
        out.extend(message);
    }
    out
}

/// The stream holds exactly the log: one message per event, in log order,
/// each with the event's id, subject and envelope.
async fn assert_stream_is_the_log(
    store: &Arc<dyn EventStore>,
    js: &jetstream::Context,
    config: &RelayConfig,
) -> usize {
    // Let any straggler (a duplicate) land before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = whole_log(store).await;
    let messages = stream_messages(js, &config.stream).await;
    let published: Vec<Uuid> = messages
        .iter()
        .map(|m| {
            let id = m
                .headers
                .get(message::MSG_ID)
                .expect("Nats-Msg-Id")
                .as_str();
            Uuid::parse_str(id).expect("an event id")
        })
        .collect();
    let unique: std::collections::HashSet<Uuid> = published.iter().copied().collect();
    assert_eq!(
        unique.len(),
        published.len(),
        "an event id appears twice in the stream"
    );
    assert_eq!(
        messages.len(),
        log.len(),
        "the stream holds {} messages for {} events",
        messages.len(),
        log.len()
    );
    for (i, (message, event)) in messages.iter().zip(&log).enumerate() {
        let (envelope, _) = trellis_contracts::decode_envelope(&message.payload)
            .unwrap_or_else(|e| panic!("message {i} does not decode: {e}"));
        let expected = trellis_contracts::envelope_from_stored(event).expect("an envelope");
        assert_eq!(envelope, expected, "message {i} is not the log's event {i}");
        assert_eq!(
            message.subject.as_str(),
            message::subject(&config.subject_prefix, event)
        );
    }
    log.len()
}

async fn delete_stream(js: &jetstream::Context, stream: &str) {
    let _ = js.delete_stream(stream).await;
}

// ---------------------------------------------------------------- nats-server processes

fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a spare port")
        .port()
}

fn nats_server_binary() -> String {
    std::env::var("TRELLIS_TEST_NATS_SERVER").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".to_owned()
        } else {
            "nats-server".to_owned()
        }
    })
}

/// A nats-server of the test's own, with JetStream in its own directory.
/// Killed (and its directory removed) on drop.
#[derive(Debug)]
struct NatsProcess {
    name: String,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl NatsProcess {
    fn start(name: &str, port: u16, extra: Vec<String>) -> Self {
        let mut process = NatsProcess {
            name: name.to_owned(),
            port,
            dir: temp_dir(),
            extra,
            child: None,
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js"])
            .arg("-sd")
            .arg(self.dir.join("js"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-n", &self.name])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start nats-server (set TRELLIS_TEST_NATS_SERVER)");
        self.child = Some(child);
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        // Generous: on a busy two-core machine a server can take a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn restart(&mut self) {
        self.spawn();
        self.wait_ready().await;
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- tests

/// A backlog, then concurrent writers while the relay runs, then a graceful
/// stop and a restart: the stream is the log, one message per event.
async fn every_event_reaches_the_stream_once_in_log_order(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = backend.store.clone();
    let config = config(kind, &backend);
    let url = nats_url();
    let js = jetstream(&url).await;

    let streams = rep_streams(20);
    write(&store, &streams, 1500, 3).await;
    let team = Uuid::now_v7();
    let team_stream = StreamId::for_entity("team", team).expect("a stream id");
    store
        .append(
            &team_stream,
            ExpectedVersion::Exact(0),
            &CommandMeta::new("admin", Utc::now()),
            &[team_formed(team)],
        )
        .await
        .expect("append");

    let relay = start(&store, &url, &config);
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            let streams = rep_streams(5);
            tokio::spawn(async move { write(&store, &streams, 500, 2).await })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    wait_for_count(&js, &config.stream, 3001, Duration::from_secs(60)).await;
    // Stored is not yet acknowledged: let the last acks reach the relay.
    tokio::time::timeout(Duration::from_secs(10), relay.wait_acked(3001))
        .await
        .expect("every event acknowledged");
    relay.stop().await.expect("a clean stop");
    let head = whole_log(&store).await.last().expect("events").checkpoint;
    assert_eq!(
        store
            .load_checkpoint(&config.checkpoint_name)
            .await
            .unwrap(),
        Some(head),
        "a stopped relay saved the checkpoint of the last event"
    );

    // A restarted relay publishes only what is new.
    write(&store, &streams, 200, 1).await;
    let relay = start(&store, &url, &config);
    wait_for_count(&js, &config.stream, 3201, Duration::from_secs(30)).await;
    let total = assert_stream_is_the_log(&store, &js, &config).await;
    assert_eq!(total, 3201);
    assert_eq!(relay.duplicates(), 0, "nothing was published twice");
    relay.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    backend.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: every_event_reaches_the_stream_once_in_log_order);

/// A write sent with a W3C `traceparent` is recorded with it (no span is
/// exported in this process, so the caller's context passes through
/// unchanged) and relayed with it as the CloudEvents `traceparent` header,
/// so a subscriber continues the caller's trace; an untraced write's
/// message has no such header.
async fn a_traced_write_is_relayed_with_its_traceparent_header(kind: Kind) {
    let app = crate::http::TestApp::spawn(kind).await;
    let config = config(kind, &app.backend);
    let url = nats_url();
    let js = jetstream(&url).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let admin = app.admin();
    let traced = app
        .post_json_with(
            "/v1/teams",
            &admin,
            &serde_json::json!({ "name": "Traced" }),
            &[
                ("traceparent", traceparent),
                ("tracestate", "vendor=opaque"),
            ],
        )
        .await;
    traced.expect(201);
    let plain = app
        .post_json("/v1/teams", &admin, &serde_json::json!({ "name": "Plain" }))
        .await;
    plain.expect(201);

    let relay = start(&app.store, &url, &config);
    wait_for_count(&js, &config.stream, 2, Duration::from_secs(30)).await;
    let messages = stream_messages(&js, &config.stream).await;
    let header_of = |team: Uuid| {
        let message = messages
            .iter()
            .find(|m| m.subject.as_str().contains(&team.to_string()))
            .unwrap_or_else(|| panic!("a message of team {team}"));
        message
            .headers
            .get("traceparent")
            .map(|v| v.as_str().to_owned())
    };
    assert_eq!(header_of(traced.id()).as_deref(), Some(traceparent));
    assert_eq!(header_of(plain.id()), None);
    relay.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    app.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: a_traced_write_is_relayed_with_its_traceparent_header);

/// The relay is killed three times in the middle of its work (after some
/// acks, with publishes in flight, before any checkpoint is saved), the
/// last time restarted only after the broker's duplicate window has passed:
/// still one message per event.
///
/// Nothing here hangs on timing. Checkpoint saves are held (a save never
/// finishes, as if the process died first), so a kill can never land after
/// one; and the log grows by 1000 events a round, so a relay killed late
/// has published at most what the log holds and the next one has 1000 new
/// events to make progress on.
async fn a_relay_killed_mid_batch_publishes_each_event_once(kind: Kind) {
    let backend = Backend::new(kind).await;
    let counting = trellis_tests::CountingStore::new(backend.store.clone());
    let store: Arc<dyn EventStore> = counting.clone();
    let mut config = config(kind, &backend);
    config.batch = 1000;
    config.max_in_flight = 300;
    config.duplicate_window = Duration::from_secs(2);
    let url = nats_url();
    let js = jetstream(&url).await;

    let streams = rep_streams(30);
    counting.hold_saves();
    let mut published = 0;
    for round in 0..3u64 {
        write(&store, &streams, 1000, 4).await;
        // On PostgreSQL a transaction of another test can hold the readers'
        // horizon back for a moment: start once the whole log reads.
        wait_for_whole_log(&store, 1000 * (round as usize + 1)).await;
        let relay = start(&store, &url, &config);
        tokio::time::timeout(Duration::from_secs(30), relay.wait_acked(350))
            .await
            .expect("some acks");
        relay.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let count = stream_count(&js, &config.stream).await;
        assert!(
            count >= published + 350,
            "round {round}: the relay published 350 events more ({published} before, {count} now)"
        );
        assert!(
            count <= 1000 * (round + 1),
            "round {round}: {count} messages of a log of {}",
            1000 * (round + 1)
        );
        published = count;
        let saved = store
            .load_checkpoint(&config.checkpoint_name)
            .await
            .unwrap();
        assert_eq!(
            saved, None,
            "round {round}: a checkpoint was saved while saves were held"
        );
        if round == 1 {
            // Past the duplicate window, only the resume point keeps the
            // published-but-not-checkpointed events from a second copy.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    write(&store, &streams, 1000, 4).await;
    wait_for_whole_log(&store, 4000).await;
    counting.release_saves();
    let relay = start(&store, &url, &config);
    wait_for_count(&js, &config.stream, 4000, Duration::from_secs(60)).await;
    assert_eq!(assert_stream_is_the_log(&store, &js, &config).await, 4000);
    relay.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    backend.cleanup().await;
}

/// Waits until `n` events of the log read.
async fn wait_for_whole_log(store: &Arc<dyn EventStore>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while whole_log(store).await.len() < n {
        assert!(Instant::now() < deadline, "the log never read {n} events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

crate::http::on_each_backend!(multi_thread: a_relay_killed_mid_batch_publishes_each_event_once);

/// nats-server is killed under a steady write load and started again
/// seconds later: appends never fail, the relay backs off, catches up, and
/// the stream is the log.
async fn the_relay_rides_out_a_broker_outage(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = backend.store.clone();
    let config = config(kind, &backend);
    let mut server = NatsProcess::start("outage", spare_port(), Vec::new());
    server.wait_ready().await;
    let url = server.url();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = steady_writer(store.clone(), 400, stop.clone());
    let relay = start(&store, &url, &config);
    wait_until("the relay publishes", Duration::from_secs(30), || {
        relay.acked() >= 200
    })
    .await;
    server.kill();
    // Acks already on the wire may still land; after that, none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = relay.acked();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        relay.acked(),
        settled,
        "nothing is acknowledged while the broker is down"
    );
    server.restart().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = writer.await.expect("writer");
    assert_eq!(failed, 0, "appends kept working while the broker was down");
    assert!(ok > 1000, "the writer kept writing ({ok} appends)");

    let js = jetstream(&url).await;
    wait_for_count(&js, &config.stream, ok, Duration::from_secs(60)).await;
    assert_eq!(
        assert_stream_is_the_log(&store, &js, &config).await as u64,
        ok
    );
    relay.stop().await.expect("a clean stop");
    backend.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: the_relay_rides_out_a_broker_outage);

/// The relay's log in the test's output (shown on failure), filtered by
/// `RUST_LOG` (default: relay warnings).
fn log_to_test_output() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "trellis_notifications=info".into()),
        )
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// A three-node JetStream cluster, the stream replicated three ways; the
/// stream's leader is killed under load: nothing is lost or duplicated.
/// (About 15 s, so not gated behind `slow_tests_enabled`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_loses_nothing_when_a_node_dies() {
    log_to_test_output();
    let backend = Backend::new(Kind::Postgres).await;
    let store = backend.store.clone();
    let mut config = config(Kind::Postgres, &backend);
    config.replicas = 3;
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (spare_port(), spare_port())).collect();
    let cluster_name = format!(
        "trellis-test-{}",
        &Uuid::now_v7().simple().to_string()[20..]
    );
    let mut nodes: Vec<NatsProcess> = ports
        .iter()
        .enumerate()
        .map(|(i, (client, cluster))| {
            let routes = ports
                .iter()
                .filter(|(_, other)| other != cluster)
                .map(|(_, other)| format!("nats://127.0.0.1:{other}"))
                .collect::<Vec<_>>()
                .join(",");
            NatsProcess::start(
                &format!("{cluster_name}-n{i}"),
                *client,
                vec![
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cluster}"),
                    "--routes".into(),
                    routes,
                    "--cluster_name".into(),
                    cluster_name.clone(),
                ],
            )
        })
        .collect();
    for node in &nodes {
        node.wait_ready().await;
    }
    let url = nodes
        .iter()
        .map(NatsProcess::url)
        .collect::<Vec<_>>()
        .join(",");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = steady_writer(store.clone(), 300, stop.clone());
    let relay = start(&store, &url, &config);
    wait_until(
        "the relay publishes to the cluster",
        Duration::from_secs(60),
        || relay.acked() >= 300,
    )
    .await;

    // Kill the node that leads the stream.
    let js = jetstream(&nodes[0].url()).await;
    let mut stream = js.get_stream(&config.stream).await.expect("the stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3);
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("a stream leader");
    let victim = nodes
        .iter()
        .position(|n| n.name == leader)
        .expect("the leader is one of ours");
    nodes[victim].kill();
    let acked_at_kill = relay.acked();
    let recovered = wait_until("the relay publishes again", Duration::from_secs(90), || {
        relay.acked() >= acked_at_kill + 300
    })
    .await;
    eprintln!("cluster: the relay published 300 more events {recovered:?} after the leader died");
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = writer.await.expect("writer");
    assert_eq!(failed, 0);

    let survivor = (victim + 1) % 3;
    let js = jetstream(&nodes[survivor].url()).await;
    wait_for_count(&js, &config.stream, ok, Duration::from_secs(60)).await;
    assert_eq!(
        assert_stream_is_the_log(&store, &js, &config).await as u64,
        ok
    );
    relay.stop().await.expect("a clean stop");
    drop(nodes);
    backend.cleanup().await;
}

/// A billing-like service: a durable pull consumer on `<prefix>.rep.>` that
/// decodes each envelope, checks the CloudEvents headers and acks; it gets
/// every rep event once, no team event, and after a restart only what is new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_subscriber_receives_what_was_written() {
    let backend = Backend::new(Kind::Sqlite).await;
    let store = backend.store.clone();
    let config = config(Kind::Sqlite, &backend);
    let url = nats_url();
    let js = jetstream(&url).await;

    let streams = rep_streams(5);
    write(&store, &streams, 120, 2).await;
    let team = Uuid::now_v7();
    store
        .append(
            &StreamId::for_entity("team", team).expect("a stream id"),
            ExpectedVersion::Exact(0),
            &CommandMeta::new("admin", Utc::now()),
            &[team_formed(team)],
        )
        .await
        .expect("append");
    let relay = start(&store, &url, &config);
    wait_for_count(&js, &config.stream, 121, Duration::from_secs(30)).await;

    let filter = format!("{}.rep.>", config.subject_prefix);
    let subscribe = || async {
        let stream = js.get_stream(&config.stream).await.expect("the stream");
        stream
            .get_or_create_consumer(
                "billing",
                pull::Config {
                    durable_name: Some("billing".into()),
                    filter_subject: filter.clone(),
                    ack_policy: AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .expect("a durable consumer")
    };
    let receive = |consumer: jetstream::consumer::Consumer<pull::Config>, n: usize| async move {
        let mut got = Vec::new();
        let mut messages = consumer.messages().await.expect("messages");
        while got.len() < n {
            let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .expect("a message in time")
                .expect("a message")
                .expect("a message");
            message.ack().await.expect("ack");
            got.push(message);
        }
        // Nothing more is waiting.
        let more = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
        assert!(
            more.is_err(),
            "the subscriber received more than was written"
        );
        got
    };
    let expected_rep = |log: &[RecordedEvent]| -> Vec<RecordedEvent> {
        log.iter()
            .filter(|e| e.stream_id.category() == "rep")
            .cloned()
            .collect()
    };

    let got = receive(subscribe().await, 120).await;
    let log = whole_log(&store).await;
    let reps = expected_rep(&log);
    assert_eq!(got.len(), reps.len());
    for (message, event) in got.iter().zip(&reps) {
        check_message(message, event, &config);
    }

    // The service restarts: its durable consumer resumes after what it acked.
    write(&store, &streams, 30, 1).await;
    wait_for_count(&js, &config.stream, 151, Duration::from_secs(30)).await;
    let got = receive(subscribe().await, 30).await;
    let log = whole_log(&store).await;
    let reps = expected_rep(&log);
    for (message, event) in got.iter().zip(&reps[120..]) {
        check_message(message, event, &config);
    }
    relay.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    backend.cleanup().await;
}

/// What a subscriber checks: the body decodes to the log's event, the
/// CloudEvents binary-mode headers describe it.
fn check_message(message: &jetstream::Message, event: &RecordedEvent, config: &RelayConfig) {
    let (envelope, decoded) =
        trellis_contracts::decode_envelope(&message.payload).expect("an envelope");
    assert_eq!(envelope.event_id, event.event_id.to_string());
    assert_eq!(envelope.stream_id, event.stream_id.as_str());
    assert_eq!(envelope.stream_version, event.stream_version);
    let stored = Event::from_stored(
        &event.event_type,
        event.schema_version,
        event.payload.clone(),
    )
    .expect("a domain event");
    assert_eq!(
        decoded, stored,
        "the subscriber decodes the event that was written"
    );
    let headers = message.headers.as_ref().expect("headers");
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing"))
            .as_str()
            .to_owned()
    };
    let id = event.event_id.to_string();
    assert_eq!(header("Nats-Msg-Id"), id);
    assert_eq!(header("ce-specversion"), "1.0");
    assert_eq!(header("ce-id"), id);
    assert_eq!(header("ce-source"), config.source);
    assert_eq!(header("ce-type"), "trellis.events.v1.FeedbackGiven");
    assert_eq!(header("ce-subject"), event.stream_id.as_str());
    let time = chrono::DateTime::parse_from_rfc3339(&header("ce-time")).expect("an RFC 3339 time");
    assert_eq!(time.with_timezone(&Utc), event.metadata.recorded_at);
    assert_eq!(header("Content-Type"), "application/protobuf");
    let entity = event
        .stream_id
        .as_str()
        .strip_prefix("rep-")
        .expect("a rep stream");
    assert_eq!(
        message.subject.as_str(),
        format!("{}.rep.{entity}.FeedbackGiven", config.subject_prefix)
    );
}

/// Two relays over one log: exactly one publishes; when it dies the other
/// takes over within seconds and the stream is still the log.
async fn one_relay_is_active_and_a_standby_takes_over(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = backend.store.clone();
    let config = config(kind, &backend);
    let url = nats_url();
    let js = jetstream(&url).await;

    let streams = rep_streams(10);
    write(&store, &streams, 500, 2).await;
    let first = start(&store, &url, &config);
    wait_until("a relay becomes active", Duration::from_secs(10), || {
        first.is_active()
    })
    .await;
    // A second process's relay, over its own store connection.
    let other_store = backend.reopen().await;
    let second = start(&other_store, &url, &config);
    wait_for_count(&js, &config.stream, 500, Duration::from_secs(30)).await;
    write(&store, &streams, 300, 1).await;
    wait_for_count(&js, &config.stream, 800, Duration::from_secs(30)).await;
    assert!(first.is_active());
    assert!(!second.is_active(), "two relays are active");
    assert_eq!(second.acked(), 0, "the standby published");

    first.abort();
    let took = wait_until("the standby takes over", Duration::from_secs(15), || {
        second.is_active()
    })
    .await;
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    write(&store, &streams, 300, 1).await;
    wait_for_count(&js, &config.stream, 1100, Duration::from_secs(30)).await;
    assert_eq!(assert_stream_is_the_log(&store, &js, &config).await, 1100);
    second.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    drop(other_store);
    backend.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: one_relay_is_active_and_a_standby_takes_over);

/// Setting the stream up twice changes nothing; a changed setting is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_stream_is_idempotent() {
    let backend = Backend::new(Kind::Sqlite).await;
    let mut config = config(Kind::Sqlite, &backend);
    let js = jetstream(&nats_url()).await;
    trellis_notifications::ensure_stream(&js, &config)
        .await
        .expect("created");
    let created = js
        .get_stream(&config.stream)
        .await
        .expect("the stream")
        .cached_info()
        .created;
    trellis_notifications::ensure_stream(&js, &config)
        .await
        .expect("again");
    let mut stream = js.get_stream(&config.stream).await.expect("the stream");
    let info = stream.info().await.expect("info").clone();
    assert_eq!(info.created, created, "the stream was not recreated");
    assert_eq!(
        info.config.subjects,
        vec![format!("{}.>", config.subject_prefix)]
    );
    assert_eq!(info.config.duplicate_window, config.duplicate_window);
    assert_eq!(info.config.num_replicas, 1);

    config.duplicate_window = Duration::from_secs(600);
    trellis_notifications::ensure_stream(&js, &config)
        .await
        .expect("updated");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.duplicate_window, Duration::from_secs(600));
    delete_stream(&js, &config.stream).await;
    backend.cleanup().await;
}

/// When the relay has published a rep's `PersonalDataErased`, it purges the
/// rep's earlier messages from the stream, keeping the erasure itself (which
/// subscribers must see) and every other rep's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_reps_earlier_messages_are_purged_from_the_stream() {
    let backend = Backend::new(Kind::Sqlite).await;
    let config = config(Kind::Sqlite, &backend);
    let url = nats_url();
    let js = jetstream(&url).await;
    let [erased, kept]: [StreamId; 2] = rep_streams(2).try_into().expect("two streams");
    write(&backend.store, std::slice::from_ref(&erased), 3, 1).await;
    write(&backend.store, std::slice::from_ref(&kept), 2, 1).await;
    backend
        .store
        .append(
            &erased,
            ExpectedVersion::Any,
            &CommandMeta::new("admin-test", Utc::now()),
            &[new_event(
                trellis_domain::rep::PersonalDataErased {
                    reason: trellis_domain::NonEmptyText::try_from("Asked to be forgotten")
                        .expect("a reason"),
                    on: day(),
                }
                .into(),
            )],
        )
        .await
        .expect("append");

    let relay = start(&backend.store, &url, &config);
    let entity = erased.entity_uuid().expect("an entity").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let subjects = loop {
        let subjects: Vec<String> = if stream_count(&js, &config.stream).await == 3 {
            stream_messages(&js, &config.stream)
                .await
                .iter()
                .map(|m| m.subject.to_string())
                .collect()
        } else {
            Vec::new()
        };
        if subjects.len() == 3 {
            break subjects;
        }
        assert!(
            Instant::now() < deadline,
            "the stream was never purged to 3 messages"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let of_erased: Vec<&String> = subjects.iter().filter(|s| s.contains(&entity)).collect();
    assert_eq!(of_erased.len(), 1, "{subjects:?}");
    assert!(
        of_erased[0].ends_with(".PersonalDataErased"),
        "{subjects:?}"
    );
    relay.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    backend.cleanup().await;
}

/// When the relay has published a leader's `LeaderErased`, it deletes every
/// team's `LeaderAssigned` message that names them (their name is in it),
/// and keeps the teams' other messages, the other leaders' assignments and
/// the erasure itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_leaders_assignments_are_deleted_from_the_stream() {
    use trellis_domain::leader::LeaderErased;
    use trellis_domain::team::LeaderAssigned;
    use trellis_domain::{LeaderId, PersonName, TeamId};

    let backend = Backend::new(Kind::Sqlite).await;
    let config = config(Kind::Sqlite, &backend);
    let url = nats_url();
    let js = jetstream(&url).await;
    let (erased, kept) = (
        LeaderId::from_uuid(Uuid::now_v7()),
        LeaderId::from_uuid(Uuid::now_v7()),
    );
    // A command each (one command id is one command: a second append with
    // it would answer the first's outcome).
    let meta = || CommandMeta::new("admin-test", Utc::now());
    let assigned = |team_id, leader_id, name: &str| {
        new_event(
            LeaderAssigned {
                team_id,
                leader_id,
                leader_name: PersonName::try_from(name).expect("a name"),
            }
            .into(),
        )
    };
    for (name, leaders) in [("North", vec![erased, kept]), ("South", vec![erased])] {
        let team_id = TeamId::from_uuid(Uuid::now_v7());
        let mut events = vec![new_event(
            TeamFormed {
                team_id,
                name: Name::try_from(name).expect("a name"),
            }
            .into(),
        )];
        events.extend(leaders.iter().map(|&l| assigned(team_id, l, "Some Leader")));
        let stream = StreamId::new(team_id.stream_id()).expect("a stream id");
        backend
            .store
            .append(&stream, ExpectedVersion::Any, &meta(), &events)
            .await
            .expect("append");
    }
    let leader_stream = StreamId::new(erased.stream_id()).expect("a stream id");
    let erasure = LeaderErased {
        leader_id: erased,
        reason: trellis_domain::NonEmptyText::try_from("Left").expect("a reason"),
        on: day(),
    };
    backend
        .store
        .append(
            &leader_stream,
            ExpectedVersion::Any,
            &meta(),
            &[new_event(erasure.into())],
        )
        .await
        .expect("append");

    let relay = start(&backend.store, &url, &config);
    // 6 published (2 formed, 3 assigned, the erasure), then 2 deleted: wait
    // for the erasure, then for the deletions.
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages = loop {
        // The relay makes the stream: until then there is none to read.
        let messages = if stream_count(&js, &config.stream).await > 0 {
            messages_left(&js, &config.stream).await
        } else {
            Vec::new()
        };
        let erased = messages
            .iter()
            .any(|m| m.subject.as_str().ends_with(".LeaderErased"));
        if erased && messages.len() == 4 {
            break messages;
        }
        assert!(
            Instant::now() < deadline,
            "the erased leader's assignments were never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let types: Vec<&str> = messages
        .iter()
        .map(|m| m.subject.as_str().rsplit('.').next().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["TeamFormed", "LeaderAssigned", "TeamFormed", "LeaderErased"],
        "in stream order"
    );
    let remaining = &messages[1];
    let (_, event) = trellis_contracts::decode_envelope(&remaining.payload).expect("an envelope");
    assert!(
        matches!(
            event,
            Event::Team(trellis_domain::TeamEvent::LeaderAssigned(a)) if a.leader_id == kept
        ),
        "the other leader's assignment stays"
    );
    relay.stop().await.expect("a clean stop");
    delete_stream(&js, &config.stream).await;
    backend.cleanup().await;
}
