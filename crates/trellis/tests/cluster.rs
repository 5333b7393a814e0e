//! Trellis as a platform team runs it, on loopback: a PostgreSQL primary
//! and a streaming replica, a three-node NATS cluster, three API processes
//! reading from the replica and two worker processes (one active, one
//! standing by). Under a steady write load the active worker and then one
//! API process are killed (SIGKILL); afterwards the log, JetStream and the
//! read models hold every acknowledged write exactly once, and a write made
//! in a caller's trace reaches JetStream carrying it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::nats::NatsCluster;
use common::pg::LocalPostgres;
use common::{ACTIVE, RELAY_ACTIVE, Says, Serving, printed, serve, try_request, wait_for};

const JWT_SECRET: &str = "cluster-test-secret-0123456789abcdef0123456789";
/// How long a standby may take to take over.
const TAKEOVER: Duration = Duration::from_secs(10);
/// Writers sending requests at once.
const WRITERS: usize = 3;

fn trellis() -> Command {
    let mut command = common::trellis();
    command.env("RUST_LOG", "info");
    command
}

struct Cluster {
    primary: LocalPostgres,
    replica: LocalPostgres,
    nats: NatsCluster,
    dir: std::path::PathBuf,
}

impl Cluster {
    /// `trellis serve --roles <roles>` on the primary, reading from the
    /// replica, publishing to the NATS cluster (three copies of each stream).
    fn process(&self, roles: &str) -> (Serving, String) {
        serve(
            trellis()
                .args(["--database-url", &self.primary.url()])
                .arg("--data-dir")
                .arg(&self.dir)
                .args(["serve", "--listen", "127.0.0.1:0", "--roles", roles])
                .args(["--jwt-secret", JWT_SECRET])
                .args(["--read-database-url", &self.replica.url()])
                .args(["--nats-url", &self.nats.urls(), "--nats-replicas", "3"]),
        )
    }
}

/// Every worker's "now active" line, the relay's included.
fn workers() -> Vec<(&'static str, Says)> {
    let mut all = ACTIVE.to_vec();
    all.push(RELAY_ACTIVE);
    all
}

/// Forms teams through any API process that answers, one request after
/// another, until `stop`: each request carries an Idempotency-Key and is
/// sent again, with the same key, to the next process when one does not
/// answer (or answers 5xx). The id of every team a process acknowledged.
fn writer(
    n: usize,
    apis: Vec<String>,
    token: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let bearer = format!("Bearer {token}");
    let mut next = n;
    let mut written = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = uuid::Uuid::now_v7().to_string();
        let body = serde_json::json!({ "name": format!("Team {n}-{written}") }).to_string();
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries < 200, "no API process answered writer {n}");
            let api = &apis[next % apis.len()];
            next += 1;
            let answer = try_request(
                api,
                "POST",
                "/v1/teams",
                &[
                    ("Authorization", &bearer),
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", &key),
                ],
                &body,
            );
            match answer {
                Ok((201, body)) => {
                    let team: Value = serde_json::from_str(&body).expect("JSON");
                    let id = team["id"].as_str().expect("an id").to_owned();
                    acked.lock().expect("acked").push(id);
                    break;
                }
                Ok((status, body)) if status >= 500 => {
                    eprintln!("writer {n}: {status} from {api}: {body}; again elsewhere");
                }
                Ok((status, body)) => panic!("writer {n}: {status}: {body}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        written += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every event of the log, by `trellis log` on the primary.
fn the_log(cluster: &Cluster) -> Vec<Value> {
    let out = printed(
        trellis()
            .args(["--database-url", &cluster.primary.url()])
            .arg("--data-dir")
            .arg(&cluster.dir)
            .arg("log"),
    );
    out.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The stream `TRELLIS_EVENTS` of the cluster at `urls`.
async fn events_stream(urls: &str) -> async_nats::jetstream::stream::Stream {
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| u.parse().expect("a NATS URL"))
        .collect();
    let client = async_nats::connect(servers).await.expect("NATS");
    async_nats::jetstream::new(client)
        .get_stream("TRELLIS_EVENTS")
        .await
        .expect("the stream")
}

/// The id of every message of the JetStream stream `TRELLIS_EVENTS`, with
/// how many times each is there.
async fn published(urls: &str) -> BTreeMap<String, usize> {
    let mut stream = events_stream(urls).await;
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut ids = BTreeMap::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.expect("a message");
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .expect("Nats-Msg-Id")
            .to_string();
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// The teams the read models list, by one API process (read from the replica).
fn projected(api: &str, token: &str) -> Vec<String> {
    let bearer = format!("Bearer {token}");
    let (status, body) = try_request(
        api,
        "GET",
        "/v1/teams?limit=1000",
        &[("Authorization", &bearer)],
        "",
    )
    .expect("an API process answers");
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(page["next"], Value::Null, "one page holds every team");
    page["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|t| t["team_id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_keeps_every_acknowledged_write_once_through_the_loss_of_a_worker_and_an_api_process()
 {
    let primary = LocalPostgres::primary(&[]);
    let replica = LocalPostgres::replica_of(&primary, &[]);
    let cluster = Cluster {
        primary,
        replica,
        nats: NatsCluster::start(),
        dir: trellis_tests::temp_dir(),
    };
    let (code, out) = common::run(
        trellis()
            .args(["--database-url", &cluster.primary.url()])
            .arg("--data-dir")
            .arg(&cluster.dir)
            .arg("migrate"),
    );
    assert_eq!(code, 0, "{out}");
    cluster
        .replica
        .caught_up_with(&cluster.primary, Duration::from_secs(60));

    let mut apis: Vec<(Serving, String)> = (0..3).map(|_| cluster.process("api")).collect();
    let addresses: Vec<String> = apis.iter().map(|(_, a)| a.clone()).collect();
    let (mut first, _) = cluster.process("projector,relay,alerts,webhooks");
    wait_for(
        "worker 1 runs every worker",
        Duration::from_secs(60),
        || workers().iter().all(|(_, says)| first.logged(says)),
    );
    let (second, _) = cluster.process("projector,relay,alerts,webhooks");
    // The standby tries every second or two: give it a few tries.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        workers().iter().all(|(_, says)| !second.logged(says)),
        "the standby stands by:\n{}",
        second.log()
    );

    let token = printed(trellis().args(["token", "--role", "admin", "--jwt-secret", JWT_SECRET]));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (apis, token, stop, acked) = (
                addresses.clone(),
                token.clone(),
                stop.clone(),
                acked.clone(),
            );
            std::thread::spawn(move || writer(n, apis, token, stop, acked))
        })
        .collect();
    let count = || acked.lock().expect("acked").len();
    wait_for("writes are acknowledged", Duration::from_secs(30), || {
        count() >= 30
    });

    // The active worker dies; the standby takes every worker over.
    first.kill();
    let killed = Instant::now();
    let mut takeovers = Vec::new();
    for (worker, says) in workers() {
        wait_for(&format!("worker 2 runs the {worker}"), TAKEOVER, || {
            second.logged(says)
        });
        let at = second.logged_at(says).expect("logged");
        takeovers.push((worker, at.duration_since(killed)));
    }
    for (worker, took) in &takeovers {
        eprintln!("cluster: takeover after SIGKILL of the active worker: {worker}: {took:?}");
        assert!(*took < TAKEOVER, "{worker}: {took:?}");
    }

    // One API process dies; the writers carry on against the others.
    let before = count();
    apis[2].0.kill();
    let api_killed = Instant::now();
    wait_for(
        "writes go on after an API process died",
        Duration::from_secs(30),
        || count() >= before + 30,
    );
    eprintln!(
        "cluster: 30 more writes acknowledged {:?} after SIGKILL of an API process",
        api_killed.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("a writer");
    }
    let acked: Vec<String> = acked.lock().expect("acked").clone();
    let expected: BTreeSet<&String> = acked.iter().collect();
    assert_eq!(expected.len(), acked.len(), "each write acknowledged once");

    // The log: one TeamFormed per acknowledged write, and no other.
    let log = the_log(&cluster);
    let mut formed: Vec<String> = log
        .iter()
        .filter(|e| e["event_type"] == "TeamFormed")
        .map(|e| {
            e["payload"]["team_id"]
                .as_str()
                .expect("team_id")
                .to_owned()
        })
        .collect();
    formed.sort();
    let mut sorted = acked.clone();
    sorted.sort();
    assert_eq!(
        formed, sorted,
        "the log holds every acknowledged write exactly once"
    );

    // JetStream: every event of the log, each once.
    let events: BTreeSet<String> = log
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect();
    let started = Instant::now();
    let mut copies = published(&cluster.nats.urls()).await;
    while copies.len() < events.len() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        copies = published(&cluster.nats.urls()).await;
    }
    let ids: BTreeSet<String> = copies.keys().cloned().collect();
    assert_eq!(ids, events, "JetStream holds every event of the log");
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");

    // The read models, as the surviving API processes read them from the
    // replica: every team once.
    let settled = wait_for(
        "the read models hold every team",
        Duration::from_secs(60),
        || {
            let mut teams = projected(&addresses[0], &token);
            teams.sort();
            teams == sorted
        },
    );
    let mut teams = projected(&addresses[1], &token);
    teams.sort();
    assert_eq!(teams, sorted, "each team once in the read models");
    eprintln!(
        "cluster: {} writes acknowledged; {} events in the log, each once in JetStream; \
         the read models complete {settled:?} after the load stopped",
        acked.len(),
        log.len()
    );

    // A write that is part of a caller's trace: its event carries the W3C
    // traceparent, and so does its message in JetStream (CloudEvents'
    // `traceparent` header), for a subscriber to continue the trace.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let bearer = format!("Bearer {token}");
    let (status, body) = try_request(
        &addresses[1],
        "POST",
        "/v1/teams",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("traceparent", traceparent),
        ],
        r#"{"name":"Traced"}"#,
    )
    .expect("an API process answers");
    assert_eq!(status, 201, "{body}");
    let team: Value = serde_json::from_str(&body).expect("JSON");
    let team = team["id"].as_str().expect("an id");
    let event = the_log(&cluster)
        .into_iter()
        .find(|e| e["payload"]["team_id"] == team)
        .expect("the traced write's event");
    assert_eq!(event["traceparent"], traceparent, "{event}");
    let id = event["event_id"].as_str().expect("event_id").to_owned();
    let started = Instant::now();
    let header = loop {
        if let Some(header) = published_header(&cluster.nats.urls(), &id, "traceparent").await {
            break header;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the traced event was not published"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(header.as_deref(), Some(traceparent));
    drop((apis, second));
    let _ = std::fs::remove_dir_all(&cluster.dir);
}

/// The header `name` of the message of event `id` in `TRELLIS_EVENTS`,
/// looking from the newest back (`None` while it is not published).
async fn published_header(urls: &str, id: &str, name: &str) -> Option<Option<String>> {
    let mut stream = events_stream(urls).await;
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    for sequence in (1..=last).rev() {
        let message = stream.get_raw_message(sequence).await.expect("a message");
        if message
            .headers
            .get("Nats-Msg-Id")
            .is_some_and(|v| v.as_str() == id)
        {
            return Some(message.headers.get(name).map(|v| v.to_string()));
        }
    }
    None
}
