//! `trellis audit verify` against signed checkpoints kept outside the
//! database: every way of rewriting history that a per-stream chain cannot
//! see is caught by a kept checkpoint and named, on both backends.

use std::path::PathBuf;
use std::process::Command;

use chrono::Utc;
use serde_json::json;
use trellis_eventstore::chain::{DigestInput, link};
use trellis_eventstore::note::{SignedCheckpoint, SignerKey};
use trellis_eventstore::tree::TreeBuilder;
use trellis_eventstore::{CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId};
use trellis_tests::{Backend, Kind, stream};

const ORIGIN: &str = "trellis.test/log";

fn trellis(backend: &Backend, args: &[&str]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    match backend.kind {
        Kind::Postgres => command
            .args(["--database-url", &backend.database().url])
            .arg("--data-dir")
            .arg(trellis_tests::temp_dir()),
        Kind::Sqlite => command.args(["--data-dir", backend.data_dir().to_str().expect("utf-8")]),
    };
    command.env_remove("TRELLIS_DATABASE_URL");
    let output = command.args(args).output().expect("failed to run trellis");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

async fn append(store: &dyn EventStore, s: &StreamId, n: u32) {
    for i in 0..n {
        store
            .append(
                s,
                ExpectedVersion::Any,
                &CommandMeta::new("leader-1", Utc::now()),
                &[NewEvent::new(
                    "Noted",
                    1,
                    json!({ "n": i, "note": "kept" }),
                    Utc::now(),
                )],
            )
            .await
            .unwrap();
    }
}

/// The test's store as `trellis serve` opens it: sealing with `key`.
async fn sealed_store(backend: &Backend, key: &SignerKey) -> std::sync::Arc<dyn EventStore> {
    use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
    use trellis_eventstore::sqlite::SqliteStore;
    match backend.kind {
        Kind::Postgres => std::sync::Arc::new(
            PostgresStore::connect(&PostgresConfig::new(&backend.database().url))
                .await
                .unwrap()
                .sealing_with(key.clone()),
        ),
        Kind::Sqlite => std::sync::Arc::new(
            SqliteStore::open(backend.data_dir())
                .await
                .unwrap()
                .sealing_with(key.clone()),
        ),
    }
}

/// Integrates until the tree has `size` leaves: on PostgreSQL an event is
/// readable in global order only once every older transaction of the
/// cluster (other tests' too) has ended.
async fn catch_up_to(builder: &mut TreeBuilder, store: &dyn EventStore, size: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while builder.catch_up(store).await.unwrap() < size {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never became readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(builder.size(), size);
}

/// A log of three reps' streams, with two checkpoints signed and kept in a
/// file as an outsider would keep them (one after the first two reps, one
/// after the third).
struct Kept {
    backend: Backend,
    reps: [StreamId; 3],
    file: PathBuf,
    public_key: String,
    signer: SignerKey,
}

impl Kept {
    async fn new(kind: Kind) -> Kept {
        let backend = Backend::new(kind).await;
        let reps = [stream("rep"), stream("rep"), stream("rep")];
        let signer = SignerKey::generate(ORIGIN).unwrap();
        // The service's store seals what it appends with its key.
        let sealed = sealed_store(&backend, &signer).await;
        let store = &*sealed;
        let mut builder = TreeBuilder::load(store).await.unwrap();
        let mut notes = String::new();
        append(store, &reps[0], 3).await;
        append(store, &reps[1], 3).await;
        catch_up_to(&mut builder, store, 6).await;
        notes.push_str(
            builder
                .sign(store, &signer, ORIGIN, Utc::now())
                .await
                .unwrap()
                .text(),
        );
        append(store, &reps[2], 2).await;
        append(store, &reps[0], 1).await;
        catch_up_to(&mut builder, store, 9).await;
        notes.push('\n');
        notes.push_str(
            builder
                .sign(store, &signer, ORIGIN, Utc::now())
                .await
                .unwrap()
                .text(),
        );
        let file = trellis_tests::temp_dir().join("kept-checkpoints.txt");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, notes).unwrap();
        Kept {
            backend,
            reps,
            file,
            public_key: signer.verifier().to_string(),
            signer,
        }
    }

    fn verify(&self) -> (i32, String) {
        trellis(
            &self.backend,
            &[
                "audit",
                "verify",
                "--checkpoints",
                self.file.to_str().unwrap(),
                "--public-key",
                &self.public_key,
            ],
        )
    }

    async fn position(&self, s: &StreamId, version: u64) -> u64 {
        self.backend
            .store
            .read_stream(s, version - 1, 1)
            .await
            .unwrap()
            .remove(0)
            .global_position
    }
}

/// The intact log verifies against both kept checkpoints; the chains alone
/// pass after each tampering below, the checkpoints do not.
async fn an_untampered_log_extends_every_kept_checkpoint(kind: Kind) {
    let kept = Kept::new(kind).await;
    let (code, out) = kept.verify();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "the log extends all 2 kept checkpoints (the largest covers 9 of its 9 events)"
        ),
        "{out}"
    );
    assert!(
        out.contains("9 of its 9 events carry the service's seal"),
        "{out}"
    );
    // And `audit checkpoint` prints the newest, which verifies too.
    let (code, printed) = trellis(&kept.backend, &["audit", "checkpoint"]);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.starts_with(&format!("{ORIGIN}\n9\n")), "{printed}");
    kept.backend.cleanup().await;
}

async fn deleting_the_last_event_of_a_stream_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let gone = kept.position(&kept.reps[1], 3).await;
    kept.backend
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 3",
            kept.reps[1]
        ))
        .await;
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("0 of 3 streams are broken, 2 kept checkpoints no longer hold"),
        "{out}"
    );
    assert!(out.contains("the checkpoint of 6 events signed"), "{out}");
    assert!(out.contains("no longer holds"), "{out}");
    assert!(
        out.contains("the first difference is event 6 of the log"),
        "{out}"
    );
    assert!(
        out.contains(&format!("where it had the event at position {gone}")),
        "{out}"
    );
    kept.backend.cleanup().await;
}

async fn deleting_a_whole_stream_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let first = kept.position(&kept.reps[2], 1).await;
    kept.backend
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}'",
            kept.reps[2]
        ))
        .await;
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    // The first checkpoint predates the stream and still holds.
    assert!(out.contains("1 kept checkpoints no longer hold"), "{out}");
    assert!(out.contains("the checkpoint of 9 events signed"), "{out}");
    assert!(
        out.contains(&format!("where it had the event at position {first}")),
        "{out}"
    );
    kept.backend.cleanup().await;
}

async fn rewriting_an_event_and_rehashing_its_stream_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let s = &kept.reps[0];
    let events = kept.backend.store.read_stream(s, 0, 100).await.unwrap();
    let mut prev = events[1].prev_hash;
    let mut updates = String::new();
    for (i, event) in events.iter().enumerate().skip(1) {
        let mut forged = event.clone();
        if i == 1 {
            forged.payload = json!({ "n": 1, "note": "rewritten" });
        }
        let mut scratch = Vec::new();
        let digest = DigestInput::of_recorded(&forged).digest(&mut scratch);
        let hash = link(&prev, forged.stream_version, &digest);
        let bytes = |b: &[u8]| match kind {
            Kind::Postgres => format!("'\\x{}'::bytea", hex::encode(b)),
            Kind::Sqlite => format!("X'{}'", hex::encode(b)),
        };
        let payload = match kind {
            Kind::Postgres => format!("'{}'::jsonb", forged.payload),
            Kind::Sqlite => {
                let mut canonical = Vec::new();
                trellis_eventstore::chain::canonical_json(&forged.payload, &mut canonical);
                format!("'{}'", String::from_utf8(canonical).unwrap())
            }
        };
        updates.push_str(&format!(
            "UPDATE events SET payload = {payload}, prev_hash = {}, hash = {} \
             WHERE stream_id = '{s}' AND stream_version = {};",
            bytes(&prev.0),
            bytes(&hash.0),
            forged.stream_version
        ));
        prev = hash;
    }
    kept.backend.tamper(&updates).await;
    // The chain alone no longer sees it.
    let (code, out) = trellis(&kept.backend, &["audit", "verify"]);
    assert_eq!(code, 0, "the rehashed chain passes on its own: {out}");
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 kept checkpoints no longer hold"), "{out}");
    assert!(
        out.contains(&format!(
            "the first difference is event 2 of the log: stream {s} version 2 (position {}) was rewritten",
            events[1].global_position
        )),
        "{out}"
    );
    kept.backend.cleanup().await;
}

async fn a_kept_checkpoint_replaced_by_one_signed_with_another_key_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let store = &*kept.backend.store;
    let other = SignerKey::generate(ORIGIN).unwrap();
    let builder = TreeBuilder::load(store).await.unwrap();
    let forged = builder
        .sign(store, &other, ORIGIN, Utc::now())
        .await
        .unwrap();
    std::fs::write(&kept.file, forged.text()).unwrap();
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the checkpoint of 9 events"), "{out}");
    assert!(
        out.contains("is not trusted: no signature by a known key"),
        "{out}"
    );
    assert!(
        out.contains(&kept.signer.verifier().to_string()[..ORIGIN.len() + 9]),
        "{out}"
    );
    // A checkpoint whose size was edited fails its signature.
    let edited = builder
        .sign(store, &kept.signer, ORIGIN, Utc::now())
        .await
        .unwrap()
        .text()
        .replacen("\n9\n", "\n8\n", 1);
    std::fs::write(&kept.file, edited).unwrap();
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not match the checkpoint"), "{out}");
    kept.backend.cleanup().await;
}

/// An event appended by someone who can write to the database, its hash
/// computed with the documented formula: the chain takes it, the checkpoint
/// (which predates it) still holds, and it lacks the service's seal.
async fn a_forged_event_appended_with_a_correct_hash_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let s = &kept.reps[0];
    let last = kept
        .backend
        .store
        .read_stream(s, 3, 1)
        .await
        .unwrap()
        .remove(0);
    let mut forged = last.clone();
    forged.event_id = uuid::Uuid::now_v7();
    forged.stream_version = 5;
    forged.payload = json!({ "n": 99, "note": "a warning that was never given" });
    forged.metadata.command_id = uuid::Uuid::now_v7();
    let mut scratch = Vec::new();
    let digest = DigestInput::of_recorded(&forged).digest(&mut scratch);
    let hash = link(&last.hash, 5, &digest);
    let time = |t: chrono::DateTime<Utc>| match kind {
        Kind::Postgres => format!(
            "'{}'::timestamptz",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        Kind::Sqlite => t.timestamp_micros().to_string(),
    };
    let bytes = |b: &[u8]| match kind {
        Kind::Postgres => format!("'\\x{}'::bytea", hex::encode(b)),
        Kind::Sqlite => format!("X'{}'", hex::encode(b)),
    };
    let payload = match kind {
        Kind::Postgres => format!("'{}'::jsonb", forged.payload),
        Kind::Sqlite => {
            let mut canonical = Vec::new();
            trellis_eventstore::chain::canonical_json(&forged.payload, &mut canonical);
            format!("'{}'", String::from_utf8(canonical).unwrap())
        }
    };
    kept.backend
        .tamper(&format!(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, \
             payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
             prev_hash, hash) VALUES ('{}', '{s}', 5, 'Noted', 1, {payload}, 'leader-1', '{}', \
             '{}', NULL, {}, {}, {}, {})",
            forged.event_id,
            forged.metadata.command_id,
            forged.metadata.correlation_id,
            time(forged.metadata.occurred_at),
            time(forged.metadata.recorded_at),
            bytes(&last.hash.0),
            bytes(&hash.0),
        ))
        .await;
    let (code, out) = trellis(&kept.backend, &["audit", "verify"]);
    assert_eq!(code, 0, "the chain alone takes it: {out}");
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("0 kept checkpoints no longer hold, 1 events are not sealed"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "first problem: stream {s} version 5 (event {}",
            forged.event_id
        )),
        "{out}"
    );
    assert!(out.contains("forged: it has no seal"), "{out}");
    kept.backend.cleanup().await;
}

async fn checkpoints_without_a_public_key_cannot_be_checked(kind: Kind) {
    let kept = Kept::new(kind).await;
    let (code, out) = trellis(
        &kept.backend,
        &[
            "audit",
            "verify",
            "--checkpoints",
            kept.file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("give --public-key"), "{out}");
    kept.backend.cleanup().await;
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(trellis_tests::Kind::Postgres).await }) *
        }
        mod embedded {
            $(#[tokio::test] async fn $name() { super::$name(trellis_tests::Kind::Sqlite).await }) *
        }
    };
}

both_backends!(
    an_untampered_log_extends_every_kept_checkpoint,
    deleting_the_last_event_of_a_stream_is_named,
    deleting_a_whole_stream_is_named,
    rewriting_an_event_and_rehashing_its_stream_is_named,
    a_kept_checkpoint_replaced_by_one_signed_with_another_key_is_named,
    checkpoints_without_a_public_key_cannot_be_checked,
    a_forged_event_appended_with_a_correct_hash_is_named,
);

fn nats_url() -> String {
    std::env::var("TRELLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Checkpoints kept in JetStream: the stream refuses delete and purge, keeps
/// a republished checkpoint once, and `audit verify` reads them from there.
#[tokio::test]
async fn checkpoints_kept_in_jetstream_cannot_be_deleted_and_verify_the_log() {
    use trellis_notifications::checkpoints::{StreamNames, ensure_stream, publish, read_stream};
    let kept = Kept::new(Kind::Sqlite).await;
    let names = StreamNames::new(&format!(
        "TEST_CHECKPOINTS_{}",
        uuid::Uuid::new_v4().simple()
    ));
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
    let mut stream = ensure_stream(&js, &names, 1).await.unwrap();
    let notes = trellis_eventstore::note::parse_many(&std::fs::read_to_string(&kept.file).unwrap())
        .unwrap();
    for note in notes.iter().chain(&notes) {
        publish(&js, &names, note).await.unwrap();
    }
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        2,
        "republished once"
    );
    assert!(stream.delete_message(1).await.is_err(), "delete is refused");
    assert!(stream.purge().await.is_err(), "purge is refused");
    assert_eq!(read_stream(&js, &names).await.unwrap(), notes);

    let verify_from_nats = |backend: &Backend| {
        trellis(
            backend,
            &[
                "audit",
                "verify",
                "--checkpoints-from-nats",
                &nats_url(),
                "--checkpoint-stream",
                &names.stream,
                "--public-key",
                &kept.public_key,
            ],
        )
    };
    let (code, out) = verify_from_nats(&kept.backend);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("extends all 2 kept checkpoints"), "{out}");
    kept.backend
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}'",
            kept.reps[1]
        ))
        .await;
    let (code, out) = verify_from_nats(&kept.backend);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 kept checkpoints no longer hold"), "{out}");
    js.delete_stream(&names.stream).await.unwrap();
    kept.backend.cleanup().await;
}

/// A `trellis serve` child, killed when dropped whatever the test's outcome.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` grows the tree and signs checkpoints by itself, and publishes its
/// public key at the well-known URL; what it signed verifies with that key.
#[tokio::test]
async fn serve_signs_checkpoints_and_publishes_its_public_key() {
    use std::io::{BufRead, BufReader};
    let backend = Backend::new(Kind::Sqlite).await;
    let s = stream("rep");
    append(&*backend.store, &s, 5).await;
    let data_dir = backend.data_dir().to_str().unwrap().to_owned();
    let mut serving = Serving(
        Command::new(env!("CARGO_BIN_EXE_trellis"))
            .args(["--data-dir", &data_dir, "serve", "--listen", "127.0.0.1:0"])
            .args(["--checkpoint-every-events", "1", "--log-origin", ORIGIN])
            .env_remove("TRELLIS_DATABASE_URL")
            .env_remove("TRELLIS_NATS_URL")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = serving.0.stderr.take().unwrap();
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let address = address
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("serve says where it listens");
    let keys = fetch(&address, "/.well-known/trellis/checkpoint-keys").await;
    let public_key = keys.lines().next().expect("one key at least").to_owned();
    assert!(public_key.starts_with(&format!("{ORIGIN}+")), "{keys}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let note = loop {
        let (code, out) = trellis(&backend, &["audit", "checkpoint"]);
        if code == 0 {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was signed: {out}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(note.starts_with(&format!("{ORIGIN}\n5\n")), "{note}");
    let file = trellis_tests::temp_dir().join("kept.txt");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &note).unwrap();
    let (code, out) = trellis(
        &backend,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    );
    assert_eq!(code, 0, "{out}");
    drop(serving);
    backend.cleanup().await;
}

/// A plain HTTP/1.1 GET of `path` on `address`; the body.
async fn fetch(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// One HTTP/1.1 request on `address`; the status and the body.
async fn request(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    (
        status,
        response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned(),
    )
}

/// `trellis serve --demo` on a fresh embedded store, signing a checkpoint
/// after every append; its address, data dir and an admin's token.
struct Demo {
    _serving: Serving,
    address: String,
    data_dir: PathBuf,
    token: String,
}

impl Demo {
    async fn start() -> Demo {
        use std::io::{BufRead, BufReader};
        let data_dir = trellis_tests::temp_dir();
        let mut serving = Serving(
            Command::new(env!("CARGO_BIN_EXE_trellis"))
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
                .args(["--checkpoint-every-events", "1", "--log-origin", ORIGIN])
                .env_remove("TRELLIS_DATABASE_URL")
                .env_remove("TRELLIS_NATS_URL")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stderr = serving.0.stderr.take().unwrap();
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving on http://").nth(1) {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let address = address
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("serve says where it listens");
        let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["token", "--role", "admin"])
            .env_remove("TRELLIS_DATABASE_URL")
            .output()
            .unwrap();
        let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        Demo {
            _serving: serving,
            address,
            data_dir,
            token,
        }
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = request(&self.address, "GET", path, &self.token, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The packet once every event it rests on is covered by a checkpoint.
    async fn covered_packet(&self, path: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let body = self.get(path).await;
            if body["evidence"]["not_yet_covered"]
                .as_array()
                .is_some_and(Vec::is_empty)
            {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never covered: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
}

fn verify_packet_both_ways(file: &std::path::Path, key: &str) -> [(i32, String); 2] {
    let rust = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["audit", "verify-packet"])
        .arg(file)
        .args(["--public-key", key])
        .output()
        .unwrap();
    let python = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/tools/verify_packet.py"
        ))
        .arg(file)
        .arg(key)
        .output()
        .unwrap();
    [rust, python].map(|o| {
        (
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    })
}

/// A review packet carries proofs that every event it rests on is in the
/// signed log; the Rust command and an independent Python verifier both
/// accept it offline and both refuse one altered byte or a proof against
/// another checkpoint. Built again after a competency is renamed, it is
/// the same, byte for byte.
#[tokio::test]
async fn a_review_packet_verifies_offline_in_rust_and_python_and_is_reproducible() {
    let demo = Demo::start().await;
    let key = fetch(&demo.address, "/.well-known/trellis/checkpoint-keys")
        .await
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let reps = demo.get("/v1/reps").await;
    // A rep who joined long before the period, with history in it.
    let rep = reps["reps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "active")
        .min_by_key(|r| r["start_date"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("a rep in {reps}"))["rep_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A period that has ended: what happens later (a rename) is not in it.
    let to = Utc::now().date_naive() - chrono::Days::new(1);
    let from = to - chrono::Days::new(180);
    let path = format!("/v1/reps/{rep}/review-packet?from={from}&to={to}");
    let body = demo.covered_packet(&path).await;
    let evidence = &body["evidence"];
    assert!(
        evidence["events"].as_array().unwrap().len() as u64
            > body["packet"]["events_replayed"].as_u64().unwrap(),
        "the rep's events and the catalogue's"
    );
    let dir = demo.data_dir.join("packets");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("packet.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    for (code, out) in verify_packet_both_ways(&file, &key) {
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("verified: packet"), "{out}");
    }

    // Python's canonical JSON is Rust's, numbers included.
    let tricky =
        json!({"b": [1e20, 1e21, 0.1, 1.5e-7, 0.000001, -0.0, 100.0, 12, -3], "a": "é\n\"\u{1}"});
    let tricky_file = dir.join("tricky.json");
    std::fs::write(&tricky_file, tricky.to_string()).unwrap();
    let mut rust_canonical = Vec::new();
    trellis_eventstore::chain::canonical_json(&tricky, &mut rust_canonical);
    let python = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/tools/verify_packet.py"
        ))
        .args(["--canonical", tricky_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(python.stdout).unwrap().as_bytes(),
        &rust_canonical[..]
    );

    // One altered byte of the packet.
    let text = std::fs::read_to_string(&file).unwrap();
    let name = body["packet"]["name"].as_str().unwrap();
    let altered = text.replacen(name, &format!("{}x", &name[..name.len() - 1]), 1);
    assert_ne!(altered, text);
    std::fs::write(dir.join("altered.json"), &altered).unwrap();
    for (code, out) in verify_packet_both_ways(&dir.join("altered.json"), &key) {
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("the packet was altered"), "{out}");
    }

    // A key that did not sign it.
    let stranger = SignerKey::generate(ORIGIN).unwrap().verifier().to_string();
    for (code, out) in verify_packet_both_ways(&file, &stranger) {
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("not signed by a known key")
                || out.contains("no signature by a known key"),
            "{out}"
        );
    }

    // Renaming a competency the packet names changes nothing in it.
    let competency = body["packet"]["levels"][0]["competency_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a competency in {}", body["packet"]))
        .to_owned();
    let (status, out) = request(
        &demo.address,
        "PUT",
        &format!("/v1/competencies/{competency}"),
        &demo.token,
        Some(&json!({
            "name": "Renamed long after the review",
            "description": "Renamed after the period.",
            "rubric": ["1", "2", "3", "4", "5"],
        })),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let again = demo.covered_packet(&path).await;
    assert_eq!(
        again["sha256"], body["sha256"],
        "the packet changed after a rename"
    );
    assert_eq!(again["packet"], body["packet"]);

    // The proofs (now against a larger tree) with an earlier checkpoint of
    // the same log and key.
    let (code, all) = trellis_in(&demo.data_dir, &["audit", "checkpoint", "--all"]);
    assert_eq!(code, 0, "{all}");
    let first = trellis_eventstore::note::parse_many(&all)
        .unwrap()
        .remove(0);
    let newer = SignedCheckpoint::parse(again["evidence"]["checkpoint"].as_str().unwrap()).unwrap();
    assert!(
        first.head.size < newer.head.size,
        "the rename was checkpointed"
    );
    let mut other = again.clone();
    other["evidence"]["checkpoint"] = json!(first.text());
    std::fs::write(dir.join("other.json"), other.to_string()).unwrap();
    for (code, out) in verify_packet_both_ways(&dir.join("other.json"), &key) {
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("does not lead to the checkpoint's root"),
            "{out}"
        );
    }
}

fn trellis_in(data_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("TRELLIS_DATABASE_URL")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// After a rotation the old key's checkpoints keep verifying with its public
/// key beside the new one, and only with it.
#[tokio::test]
async fn checkpoints_signed_before_a_key_rotation_verify_with_the_old_public_key() {
    let kept = Kept::new(Kind::Sqlite).await;
    let store = &*kept.backend.store;
    let new_key = SignerKey::generate(ORIGIN).unwrap();
    append(
        &*sealed_store(&kept.backend, &new_key).await,
        &kept.reps[1],
        2,
    )
    .await;
    let mut builder = TreeBuilder::load(store).await.unwrap();
    catch_up_to(&mut builder, store, 11).await;
    let mut notes = std::fs::read_to_string(&kept.file).unwrap();
    notes.push('\n');
    notes.push_str(
        builder
            .sign(store, &new_key, ORIGIN, Utc::now())
            .await
            .unwrap()
            .text(),
    );
    std::fs::write(&kept.file, notes).unwrap();
    let file = kept.file.to_str().unwrap();
    let new_public = new_key.verifier().to_string();
    let (code, out) = trellis(
        &kept.backend,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file,
            "--public-key",
            &new_public,
            "--public-key",
            &kept.public_key,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("extends all 3 kept checkpoints"), "{out}");
    let (code, out) = trellis(
        &kept.backend,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file,
            "--public-key",
            &new_public,
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 kept checkpoints no longer hold"), "{out}");
    assert!(out.contains("is not trusted"), "{out}");
    kept.backend.cleanup().await;
}
