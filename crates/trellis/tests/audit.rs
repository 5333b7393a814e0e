//! `trellis audit verify` against signed checkpoints kept outside the
//! database: every way of rewriting history that a per-stream chain cannot
//! see is caught by a kept checkpoint and named, on both backends.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use trellis_eventstore::chain::{DigestInput, link};
use trellis_eventstore::note::{SignedCheckpoint, SignerKey};
use trellis_eventstore::tree::TreeBuilder;
use trellis_eventstore::{CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId};
use trellis_tests::{Backend, Kind, stream};

use common::{api, eventually, fetch, printed, run, run_on, serve, trellis};

const ORIGIN: &str = "trellis.test/log";

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

/// `n` events in one command: a sealing store signs them once, each seal
/// carrying its path to what was signed.
async fn append_together(store: &dyn EventStore, s: &StreamId, n: u32) {
    let events: Vec<NewEvent> = (0..n)
        .map(|i| NewEvent::new("Noted", 1, json!({ "n": i, "note": "kept" }), Utc::now()))
        .collect();
    store
        .append(
            s,
            ExpectedVersion::Any,
            &CommandMeta::new("leader-1", Utc::now()),
            &events,
        )
        .await
        .unwrap();
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
        // One command of two events: they share one batch seal.
        append_together(store, &reps[2], 2).await;
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
        run_on(
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

    /// Verifies, expecting one event named as not sealed by the service,
    /// the first problem, at `event`; returns what verify printed.
    fn named_unsealed(&self, event: &str) -> String {
        let (code, out) = self.verify();
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("0 kept checkpoints no longer hold, 1 events are not sealed"),
            "{out}"
        );
        assert!(out.contains(&format!("first problem: {event}")), "{out}");
        out
    }

    /// Nodes are kept a row each from level 4 (16 events) up: grows the log
    /// to 32 events, sealed as the service would, and the tree with it.
    async fn grow_to_32_events(&self) {
        let sealed = sealed_store(&self.backend, &self.signer).await;
        append(&*sealed, &self.reps[1], 23).await;
        let mut builder = TreeBuilder::load(&*sealed).await.unwrap();
        catch_up_to(&mut builder, &*sealed, 32).await;
    }

    /// Deletes the last of the second rep's three events, behind the log's back.
    async fn delete_last_event_of_the_second_rep(&self) {
        self.backend
            .tamper(&format!(
                "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 3",
                self.reps[1]
            ))
            .await;
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
    assert!(!out.contains("checked against no kept checkpoint"), "{out}");
    assert!(!out.contains("checked without"), "{out}");
    // And `audit checkpoint` prints the newest, which verifies too.
    let (code, printed) = run_on(&kept.backend, &["audit", "checkpoint"]);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.starts_with(&format!("{ORIGIN}\n9\n")), "{printed}");
    kept.backend.cleanup().await;
}

async fn deleting_the_last_event_of_a_stream_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let gone = kept.position(&kept.reps[1], 3).await;
    kept.delete_last_event_of_the_second_rep().await;
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

/// After every kept checkpoint only the stored tree still says what the log
/// held: deleting the last event of a stream there, or the log's last
/// events, is named from it (no checkpoint can), and the tree is kept.
async fn deleting_events_after_every_kept_checkpoint_is_named_from_the_stored_tree(kind: Kind) {
    let kept = Kept::new(kind).await;
    let sealed = sealed_store(&kept.backend, &kept.signer).await;
    append(&*sealed, &kept.reps[0], 1).await;
    append(&*sealed, &kept.reps[2], 1).await;
    let mut builder = TreeBuilder::load(&*sealed).await.unwrap();
    catch_up_to(&mut builder, &*sealed, 11).await;
    drop(sealed);
    let gone = kept.position(&kept.reps[0], 5).await;
    let next = kept.position(&kept.reps[2], 3).await;
    kept.backend
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 5",
            kept.reps[0]
        ))
        .await;
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "0 of 3 streams are broken, 0 kept checkpoints no longer hold, 0 events are not \
             sealed by the service, 0 stored tree leaves and 0 stored tree nodes were altered"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "first problem: the log is not what its stored tree integrated: the first difference \
             is event 10 of the log: the log now has stream {} version 3 (position {next}) where \
             it had the event at position {gone}",
            kept.reps[2]
        )),
        "{out}"
    );
    // The log's last event deleted too: the stored tree has more than the log.
    kept.backend
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 3",
            kept.reps[2]
        ))
        .await;
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "first problem: the log is not what its stored tree integrated: the first difference \
             is event 10 of the log: the event at position {gone} is gone"
        )),
        "{out}"
    );
    kept.refuses_to_rebuild().await;
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
    // The chains alone no longer see it; without the kept checkpoints only
    // the stored tree, which an attacker could have rewritten too, still says.
    let chains = trellis_eventstore::verify(&*kept.backend.store, 100)
        .await
        .unwrap();
    assert!(chains.is_intact(), "the rehashed chain passes on its own");
    let (code, out) = run_on(&kept.backend, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "first problem: the log is not what its stored tree integrated: the first difference \
             is event 2 of the log: stream {s} version 2 (position {}) was rewritten",
            events[1].global_position
        )),
        "{out}"
    );
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

/// Appends, straight into the database, an event after version `after` of
/// stream `s`, its hash computed with the documented formula, carrying
/// `seal` (bytes an attacker copied) or none. Returns the forged event's id.
async fn forge_after(kept: &Kept, s: &StreamId, after: u64, seal: Option<&[u8]>) -> uuid::Uuid {
    let kind = kept.backend.kind;
    let last = kept
        .backend
        .store
        .read_stream(s, after - 1, 1)
        .await
        .unwrap()
        .remove(0);
    let version = after + 1;
    let mut forged = last.clone();
    forged.event_id = uuid::Uuid::now_v7();
    forged.stream_version = version;
    forged.payload = json!({ "n": 99, "note": "a warning that was never given" });
    forged.metadata.command_id = uuid::Uuid::now_v7();
    let mut scratch = Vec::new();
    let digest = DigestInput::of_recorded(&forged).digest(&mut scratch);
    let hash = link(&last.hash, version, &digest);
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
    // The seal as each backend keeps it: whole on PostgreSQL; on the
    // embedded file, a batch seal's place and path beside its signature.
    let (seal_columns, seal_values) = match (seal, kind) {
        (None, _) => (String::new(), String::new()),
        (Some(seal), Kind::Postgres) => (", seal".into(), format!(", {}", bytes(seal))),
        (Some(seal), Kind::Sqlite) => {
            let (head, path) = seal.split_at(seal.len().min(68));
            let path = if path.is_empty() {
                "NULL".into()
            } else {
                bytes(path)
            };
            (
                ", seal, seal_path".into(),
                format!(", {}, {path}", bytes(head)),
            )
        }
    };
    kept.backend
        .tamper(&format!(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, \
             payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
             prev_hash, hash{seal_columns}) VALUES ('{}', '{s}', {version}, 'Noted', 1, {payload}, \
             'leader-1', '{}', '{}', NULL, {}, {}, {}, {}{seal_values})",
            forged.event_id,
            forged.metadata.command_id,
            forged.metadata.correlation_id,
            time(forged.metadata.occurred_at),
            time(forged.metadata.recorded_at),
            bytes(&last.hash.0),
            bytes(&hash.0),
        ))
        .await;
    forged.event_id
}

/// An event appended by someone who can write to the database, its hash
/// computed with the documented formula: the chain takes it, the checkpoint
/// (which predates it) still holds, and it lacks the service's seal.
async fn a_forged_event_appended_with_a_correct_hash_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let s = &kept.reps[0];
    let forged = forge_after(&kept, s, 4, None).await;
    let (code, out) = run_on(&kept.backend, &["audit", "verify"]);
    assert_eq!(code, 0, "the chain alone takes it: {out}");
    let out = kept.named_unsealed(&format!("stream {s} version 5 (event {forged}"));
    assert!(out.contains("forged: it has no seal"), "{out}");
    kept.backend.cleanup().await;
}

/// A forged event that carries a copy of a real batch seal (signature and
/// path of the event before it, sealed with it in one command): the path
/// does not lead from its digest to what the key signed, so it is named.
async fn a_forged_event_with_a_copied_batch_seal_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    let s = &kept.reps[2];
    let sealed = kept.backend.store.read_stream(s, 1, 1).await.unwrap();
    let seal = sealed[0].seal.clone().expect("the event is sealed");
    assert!(seal.0.len() > 68, "the stream's events share a batch seal");
    let forged = forge_after(&kept, s, 2, Some(&seal.0)).await;
    let out = kept.named_unsealed(&format!("stream {s} version 3 (event {forged}"));
    assert!(
        out.contains("forged or altered: its seal does not verify with any known key"),
        "{out}"
    );
    kept.backend.cleanup().await;
}

/// A log checked with a key that did not seal it: every event is named
/// as not sealed, so verify says the key is the likely cause, names the
/// first hundred and counts the rest rather than printing them all.
async fn a_log_checked_with_another_key_says_so_and_names_a_hundred_events(kind: Kind) {
    let kept = Kept::new(kind).await;
    let sealed = sealed_store(&kept.backend, &kept.signer).await;
    append(&*sealed, &kept.reps[1], 120).await;
    // On PostgreSQL the last events are readable in global order only once
    // other tests' older transactions end: verify reads them all after this.
    let mut builder = TreeBuilder::load(&*sealed).await.unwrap();
    catch_up_to(&mut builder, &*sealed, 129).await;
    let stranger = SignerKey::generate(ORIGIN).unwrap().verifier().to_string();
    let (code, out) = run_on(
        &kept.backend,
        &["audit", "verify", "--public-key", &stranger],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("129 events are not sealed by the service"),
        "{out}"
    );
    assert!(
        out.contains("no seal in the log verifies with the public keys given"),
        "{out}"
    );
    assert!(
        out.contains("and 29 more events not sealed by the service, after the 100 named above"),
        "{out}"
    );
    assert_eq!(out.matches("forged or altered").count(), 100, "{out}");
    kept.backend.cleanup().await;
}

/// A stored inner node of the tree replaced (the packets' proofs are built
/// from them): the events, chains and checkpoints all still hold, yet
/// `audit verify` names the node, with or without the public key.
async fn altering_a_stored_tree_node_is_named(kind: Kind) {
    let kept = Kept::new(kind).await;
    kept.grow_to_32_events().await;
    let forged = "ab".repeat(32);
    // The guard against updates, lifted as a superuser or the file's owner could.
    let (unguard, hash) = match kind {
        Kind::Postgres => (
            "DROP TRIGGER tree_nodes_no_update ON tree_nodes",
            format!("'\\x{forged}'::bytea"),
        ),
        Kind::Sqlite => ("DROP TRIGGER tree_nodes_no_update", format!("X'{forged}'")),
    };
    kept.backend
        .tamper(&format!(
            "{unguard}; UPDATE tree_nodes SET hash = {hash} WHERE level = 4 AND idx = 1"
        ))
        .await;
    let named =
        "the stored tree node over events 17 to 32 of the log (level 4, index 1) was altered";
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert_only_stored_tree_altered(&out, 0, 1);
    assert!(out.contains(&format!("first problem: {named}")), "{out}");
    let (code, out) = run_on(&kept.backend, &["audit", "verify"]);
    assert_eq!(code, 1, "without keys too: {out}");
    assert!(out.contains(named), "{out}");
    kept.backend.cleanup().await;
}

/// `out` (of `audit verify` with the kept checkpoints) finds `leaves`
/// altered stored leaves, `nodes` altered stored nodes and nothing else wrong.
fn assert_only_stored_tree_altered(out: &str, leaves: usize, nodes: usize) {
    assert!(
        out.contains(&format!(
            "0 kept checkpoints no longer hold, 0 events are not sealed by the service, \
             {leaves} stored tree leaves and {nodes} stored tree nodes were altered"
        )),
        "{out}"
    );
}

/// A stored leaf altered while its event is as a kept checkpoint signed it:
/// the stored tree was tampered with, not the log, and verify says so.
async fn altering_a_stored_leaf_is_named_and_not_called_a_rewrite(kind: Kind) {
    let kept = Kept::new(kind).await;
    let forged = "ab".repeat(32);
    // The first leaf's hash, in the segment of the first six; the guard
    // against updates lifted as a superuser or the file's owner could.
    let tamper = match kind {
        Kind::Postgres => format!(
            "DROP TRIGGER tree_segments_no_update ON tree_segments; \
             UPDATE tree_segments SET hashes = overlay(hashes placing '\\x{forged}'::bytea \
             from 1 for 32) WHERE first_leaf = 0"
        ),
        Kind::Sqlite => format!(
            "DROP TRIGGER tree_segments_no_update; \
             UPDATE tree_segments SET hashes = CAST(X'{forged}' || substr(hashes, 33) AS BLOB) \
             WHERE first_leaf = 0"
        ),
    };
    kept.backend.tamper(&tamper).await;
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert_only_stored_tree_altered(&out, 1, 0);
    assert!(
        out.contains(
            "first problem: the stored tree's leaf for event 1 of the log was altered: the event \
             is as a kept checkpoint signed it"
        ),
        "{out}"
    );
    assert!(!out.contains("rewritten"), "{out}");
    kept.backend.cleanup().await;
}

impl Kept {
    /// `trellis audit rebuild-tree` with the kept checkpoints and the key.
    fn rebuild_tree(&self) -> (i32, String) {
        run_on(
            &self.backend,
            &[
                "audit",
                "rebuild-tree",
                "--checkpoints",
                self.file.to_str().unwrap(),
                "--public-key",
                &self.public_key,
            ],
        )
    }

    /// The stored tree's size and its leaves (index, position, hash): what a
    /// rebuild that was refused must leave as it was.
    async fn stored_tree(&self) -> (u64, Vec<(u64, u64, trellis_eventstore::Hash)>) {
        let store = &*self.backend.store;
        let size = store.tree_state().await.unwrap().size;
        (size, store.tree_leaf_range(0, 1_000).await.unwrap())
    }

    /// `audit rebuild-tree` refuses, says the stored tree is kept, and the
    /// stored tree is as it was before; returns what it printed.
    async fn refuses_to_rebuild(&self) -> String {
        let stored = self.stored_tree().await;
        let (code, out) = self.rebuild_tree();
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("the stored tree is left as it is"), "{out}");
        assert_eq!(self.stored_tree().await, stored, "{out}");
        out
    }

    /// Whether both tree tables still refuse deletes, by their guards.
    async fn tree_refuses_deletes(&self) -> bool {
        let mut refused = true;
        for table in ["tree_nodes", "tree_segments"] {
            refused &= self
                .backend
                .try_modify(&format!("DELETE FROM {table}"))
                .await
                .is_err_and(|e| e.contains("append-only"));
        }
        refused
    }
}

/// A stored tree altered in a node and two leaves, the log intact: `audit
/// verify` names each, `audit rebuild-tree` names what it repairs, makes the tree again from the log,
/// and `audit verify` passes after; the tree's guards are back in place,
/// the ones the tampering dropped too.
async fn rebuilding_an_altered_stored_tree_makes_it_agree_with_the_log(kind: Kind) {
    let kept = Kept::new(kind).await;
    kept.grow_to_32_events().await;
    let forged = "ab".repeat(32);
    let tamper = match kind {
        Kind::Postgres => format!(
            "DROP TRIGGER tree_nodes_no_update ON tree_nodes; \
             DROP TRIGGER tree_segments_no_update ON tree_segments; \
             UPDATE tree_nodes SET hash = '\\x{forged}'::bytea WHERE level = 4 AND idx = 1; \
             UPDATE tree_segments SET hashes = overlay(overlay(hashes placing \
             '\\x{forged}'::bytea from 1 for 32) placing '\\x{forged}'::bytea from 97 for 32) \
             WHERE first_leaf = 0"
        ),
        Kind::Sqlite => format!(
            "DROP TRIGGER tree_nodes_no_update; DROP TRIGGER tree_segments_no_update; \
             UPDATE tree_nodes SET hash = X'{forged}' WHERE level = 4 AND idx = 1; \
             UPDATE tree_segments SET hashes = CAST(X'{forged}' || substr(hashes, 33, 64) \
             || X'{forged}' || substr(hashes, 129) AS BLOB) WHERE first_leaf = 0"
        ),
    };
    kept.backend.tamper(&tamper).await;
    // Each altered place is named, not only the first.
    let (code, out) = kept.verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "0 kept checkpoints no longer hold, 0 events are not sealed by the service, 2 stored \
             tree leaves and 1 stored tree nodes were altered"
        ),
        "{out}"
    );
    for named in [
        "first problem: the stored tree's leaf for event 1 of the log was altered",
        "also: the stored tree's leaf for event 4 of the log was altered",
        "also: the stored tree node over events 17 to 32 of the log (level 4, index 1) was \
         altered",
    ] {
        assert!(out.contains(named), "{named}: {out}");
    }
    assert!(!out.contains("first difference"), "{out}");

    // Without the kept checkpoints it cannot show the log holds: it refuses.
    let (code, out) = run_on(&kept.backend, &["audit", "rebuild-tree"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("needs the kept checkpoints"), "{out}");

    let (code, out) = kept.rebuild_tree();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "rebuilding the stored tree, which was altered: 0 of 3 streams are broken, 0 kept \
             checkpoints no longer hold, 0 events are not sealed by the service, 2 stored tree \
             leaves and 1 stored tree nodes were altered"
        ),
        "{out}"
    );
    assert!(
        out.contains("first problem: the stored tree's leaf for event 1 of the log was altered"),
        "{out}"
    );
    assert!(
        out.contains("rebuilt: the stored tree was made again from the log's 32 events"),
        "{out}"
    );
    assert!(
        out.contains("rebuilding the stored tree: 32 of 32 events (100%)"),
        "{out}"
    );
    // Verify compares every stored node and leaf with the events again:
    // the altered node is made again too.
    let (code, out) = kept.verify();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the log extends all 2 kept checkpoints"),
        "{out}"
    );
    assert!(kept.tree_refuses_deletes().await, "the guards are back");
    // The tree's guards the tampering dropped are made again with it.
    assert!(!out.contains("warning: the guard tree_"), "{out}");
    // Nothing left to repair.
    let (code, out) = kept.rebuild_tree();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to rebuild"), "{out}");
    kept.backend.cleanup().await;
}

/// The log itself no longer holds (a stream's last event deleted): `audit
/// rebuild-tree` refuses and leaves the stored tree as it was, since it is
/// what shows where the log changed.
async fn rebuilding_the_tree_is_refused_while_the_log_does_not_hold(kind: Kind) {
    let kept = Kept::new(kind).await;
    kept.delete_last_event_of_the_second_rep().await;
    let out = kept.refuses_to_rebuild().await;
    assert!(
        out.contains(
            "NOT REBUILT, the log itself does not hold: 0 of 3 streams are broken, 2 kept \
             checkpoints no longer hold"
        ),
        "{out}"
    );
    assert!(
        out.contains("the first difference is event 6 of the log"),
        "{out}"
    );
    kept.backend.cleanup().await;
}

async fn checkpoints_without_a_public_key_cannot_be_checked(kind: Kind) {
    let kept = Kept::new(kind).await;
    let (code, out) = run_on(
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

/// A guard dropped, switched off or emptied is not history: `audit verify`
/// still finds the log intact (exit 0) and warns of each such guard by
/// name; `trellis migrate` puts each back, and the log refuses changes again.
async fn a_missing_guard_is_warned_of_and_migrate_puts_it_back(kind: Kind) {
    let kept = Kept::new(kind).await;
    let (tamper, warned, guarded): (&str, &[&str], &str) = match kind {
        Kind::Postgres => (
            "DROP TRIGGER events_no_delete ON events; \
             ALTER TABLE tree_nodes DISABLE TRIGGER tree_nodes_no_update; \
             CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RETURN OLD; END; $$",
            &[
                "the guard events_no_delete on events is missing",
                "the guard tree_nodes_no_update on tree_nodes is disabled",
                "the function trellis.refuse_change(), which the guards on the log's tables \
                 call, is not the one the migrations made",
            ],
            "tree_segments",
        ),
        // `tamper` drops the events' two guards on the file itself.
        Kind::Sqlite => (
            "DROP TRIGGER tree_segments_no_delete; \
             DROP TRIGGER personal_data_keys_stay_erased; \
             CREATE TRIGGER personal_data_keys_stay_erased BEFORE UPDATE ON personal_data_keys \
             WHEN 0 BEGIN SELECT 1; END",
            &[
                "the guard events_no_update on events is missing",
                "the guard events_no_delete on events is missing",
                "the guard tree_segments_no_delete on tree_segments is missing",
                "the guard personal_data_keys_stay_erased on personal_data_keys is not the one \
                 the migrations made",
            ],
            "tree_segments",
        ),
    };
    kept.backend.tamper(tamper).await;
    let (code, out) = kept.verify();
    assert_eq!(
        code, 0,
        "the log itself is as every checkpoint signed it: {out}"
    );
    assert!(out.contains("intact:"), "{out}");
    for warning in warned {
        assert!(out.contains(&format!("warning: {warning}")), "{out}");
    }
    assert_eq!(out.matches("warning:").count(), warned.len(), "{out}");
    let (code, out) = run_on(&kept.backend, &["migrate"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("guard put back:").count(),
        warned.len(),
        "{out}"
    );
    assert!(
        out.contains("guard put back: events_no_delete on events (it was missing)"),
        "{out}"
    );
    let (code, out) = kept.verify();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning:"), "{out}");
    for table in ["events", guarded] {
        let refused = kept
            .backend
            .try_modify(&format!("DELETE FROM {table}"))
            .await
            .expect_err("the guard is back");
        assert!(refused.contains("append-only"), "{table}: {refused}");
    }
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
    altering_a_stored_tree_node_is_named,
    altering_a_stored_leaf_is_named_and_not_called_a_rewrite,
    deleting_the_last_event_of_a_stream_is_named,
    deleting_a_whole_stream_is_named,
    deleting_events_after_every_kept_checkpoint_is_named_from_the_stored_tree,
    rewriting_an_event_and_rehashing_its_stream_is_named,
    a_kept_checkpoint_replaced_by_one_signed_with_another_key_is_named,
    checkpoints_without_a_public_key_cannot_be_checked,
    rebuilding_an_altered_stored_tree_makes_it_agree_with_the_log,
    rebuilding_the_tree_is_refused_while_the_log_does_not_hold,
    a_forged_event_appended_with_a_correct_hash_is_named,
    a_forged_event_with_a_copied_batch_seal_is_named,
    a_log_checked_with_another_key_says_so_and_names_a_hundred_events,
    a_missing_guard_is_warned_of_and_migrate_puts_it_back,
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
        run_on(
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

/// `serve` grows the tree and signs checkpoints by itself, and publishes its
/// public key at the well-known URL; what it signed verifies with that key.
#[tokio::test]
async fn serve_signs_checkpoints_and_publishes_its_public_key() {
    let backend = Backend::new(Kind::Sqlite).await;
    let s = stream("rep");
    append(&*backend.store, &s, 5).await;
    let (serving, address) = serve(
        trellis()
            .arg("--data-dir")
            .arg(backend.data_dir())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--checkpoint-every-events", "1", "--log-origin", ORIGIN]),
    );
    let keys = fetch(&address, "/.well-known/trellis/checkpoint-keys");
    let public_key = keys.lines().next().expect("one key at least").to_owned();
    assert!(public_key.starts_with(&format!("{ORIGIN}+")), "{keys}");

    let note = eventually(
        "a checkpoint is signed",
        Duration::from_secs(30),
        || match run_on(&backend, &["audit", "checkpoint"]) {
            (0, out) => Ok(out),
            (_, out) => Err(out),
        },
    );
    assert!(note.starts_with(&format!("{ORIGIN}\n5\n")), "{note}");
    let file = trellis_tests::temp_dir().join("kept.txt");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &note).unwrap();
    let (code, out) = run_on(
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

/// `trellis serve --demo` on a fresh embedded store, signing a checkpoint
/// after every append; its address, data dir and an admin's token.
struct Demo {
    _serving: common::Serving,
    address: String,
    data_dir: PathBuf,
    token: String,
}

impl Demo {
    fn start() -> Demo {
        let data_dir = trellis_tests::temp_dir();
        // The demo organisation is recorded before it serves: give it time.
        let serving = common::Serving::spawn(
            trellis()
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
                .args(["--checkpoint-every-events", "1", "--log-origin", ORIGIN])
                .stdout(std::process::Stdio::null()),
        );
        let address = serving.address_within("serving on http://", Duration::from_secs(120));
        let token = printed(
            trellis()
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["token", "--role", "admin"]),
        );
        Demo {
            _serving: serving,
            address,
            data_dir,
            token,
        }
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = api(&self.address, "GET", path, &self.token, None);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The packet once every event it rests on is covered by a checkpoint.
    fn covered_packet(&self, path: &str) -> serde_json::Value {
        eventually(
            "every event the packet rests on is covered",
            Duration::from_secs(30),
            || {
                let body = self.get(path);
                if body["evidence"]["not_yet_covered"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                {
                    Ok(body)
                } else {
                    Err(body.to_string())
                }
            },
        )
    }
}

/// The independent Python verifier of packets.
fn python_verifier() -> Command {
    let mut command = Command::new("python3");
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/tools/verify_packet.py"
    ));
    command
}

fn verify_packet_both_ways(file: &std::path::Path, key: &str) -> [(i32, String); 2] {
    [
        run(trellis()
            .args(["audit", "verify-packet"])
            .arg(file)
            .args(["--public-key", key])),
        run(python_verifier().arg(file).arg(key)),
    ]
}

/// A review packet carries proofs that every event it rests on is in the
/// signed log; the Rust command and an independent Python verifier both
/// accept it offline and both refuse one altered byte or a proof against
/// another checkpoint. Built again after a competency and the rep are
/// renamed, it is the same, byte for byte.
#[tokio::test]
async fn a_review_packet_verifies_offline_in_rust_and_python_and_is_reproducible() {
    let demo = Demo::start();
    let key = fetch(&demo.address, "/.well-known/trellis/checkpoint-keys")
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let reps = demo.get("/v1/reps");
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
    let body = demo.covered_packet(&path);
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
    let python = python_verifier()
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
    // The demo defined its competencies after the period (skills assessed
    // on earlier dates): the packet, as it stood then, names none of them,
    // and its reading names each by its name now, saying so.
    assert!(
        body["packet"]["levels"][0]["competency"].is_null(),
        "{}",
        body["packet"]
    );
    let (status, markdown) = api(
        &demo.address,
        "GET",
        &format!("{path}&format=md"),
        &demo.token,
        None,
    );
    assert_eq!(status, 200, "{markdown}");
    assert!(
        markdown.contains(" (defined after the period) |"),
        "{markdown}"
    );
    assert!(
        !markdown.contains(&format!("| {competency} |")),
        "{markdown}"
    );
    let (status, out) = api(
        &demo.address,
        "PUT",
        &format!("/v1/competencies/{competency}"),
        &demo.token,
        Some(&json!({
            "name": "Renamed long after the review",
            "description": "Renamed after the period.",
            "rubric": ["1", "2", "3", "4", "5"],
        })),
    );
    assert_eq!(status, 200, "{out}");
    // And so does renaming the rep: the packet keeps the name they had.
    let (status, out) = api(
        &demo.address,
        "PUT",
        &format!("/v1/reps/{rep}/name"),
        &demo.token,
        Some(&json!({ "name": "Renamed After-the-Review" })),
    );
    assert_eq!(status, 200, "{out}");
    eventually(
        "the rep's profile has the new name",
        Duration::from_secs(30),
        || {
            let profile = demo.get(&format!("/v1/reps/{rep}"));
            match profile["profile"]["name"].as_str() {
                Some("Renamed After-the-Review") => Ok(()),
                other => Err(format!("named {other:?}")),
            }
        },
    );
    let (code, all) =
        run(trellis()
            .arg("--data-dir")
            .arg(&demo.data_dir)
            .args(["audit", "checkpoint", "--all"]));
    assert_eq!(code, 0, "{all}");
    let first = trellis_eventstore::note::parse_many(&all)
        .unwrap()
        .remove(0);
    // Built again once a checkpoint covers the rename: the worker signs
    // about a second after an append, and the packet's evidence is against
    // the newest checkpoint, which until then may still be the first.
    let checkpoint_of = |packet: &serde_json::Value| {
        SignedCheckpoint::parse(packet["evidence"]["checkpoint"].as_str().unwrap()).unwrap()
    };
    let again = eventually(
        "a packet against a checkpoint signed after the first",
        Duration::from_secs(30),
        || {
            let packet = demo.covered_packet(&path);
            let size = checkpoint_of(&packet).head.size;
            if size > first.head.size {
                Ok(packet)
            } else {
                Err(format!(
                    "its checkpoint has {size} events, the first {}",
                    first.head.size
                ))
            }
        },
    );
    assert_eq!(
        again["sha256"], body["sha256"],
        "the packet changed after a rename"
    );
    assert_eq!(again["packet"]["name"], json!(name));
    assert_eq!(again["packet"], body["packet"]);

    // The proofs (now against a larger tree) with an earlier checkpoint of
    // the same log and key.
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
    let (code, out) = run_on(
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
    let (code, out) = run_on(
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

/// `audit verify-packet` on evidence that is not `trellis-evidence/1` as
/// written: it says so and names the field that is wrong (exit 1), whatever
/// the field: the format, a missing one, one of the wrong type deep in an
/// event, a hash that is not hex.
#[test]
fn malformed_evidence_is_named_as_not_trellis_evidence_with_its_wrong_field() {
    use sha2::Digest;
    use trellis_eventstore::note::TreeHead;

    let key = SignerKey::generate(ORIGIN).unwrap();
    let checkpoint = key.sign(&TreeHead {
        origin: ORIGIN.into(),
        size: 1,
        root: trellis_eventstore::Hash([7; 32]),
        time: Utc::now(),
    });
    let event = json!({
        "event_id": uuid::Uuid::now_v7(), "stream_id": "rep-1", "stream_version": 1,
        "event_type": "Noted", "occurred_at": "2026-03-02T09:30:00Z",
        "content_digest": "00".repeat(32), "prev_hash": "00".repeat(32), "hash": "00".repeat(32),
        "leaf_index": 0, "proof": [],
    });
    let evidence = json!({
        "format": "trellis-evidence/1",
        "checkpoint": checkpoint.text(),
        "events": [event],
        "not_yet_covered": [],
    });
    let packet = json!({ "rep_id": "1", "events_replayed": 1 });
    let mut canonical = Vec::new();
    trellis_eventstore::chain::canonical_json(&packet, &mut canonical);
    let sha256 = hex::encode(sha2::Sha256::digest(&canonical));
    let dir = trellis_tests::temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let verify_with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut evidence = evidence.clone();
        change(&mut evidence);
        let file = dir.join("packet.json");
        let body = json!({ "sha256": sha256, "packet": packet, "evidence": evidence });
        std::fs::write(&file, body.to_string()).unwrap();
        let public_key = key.verifier().to_string();
        run(trellis()
            .args(["audit", "verify-packet"])
            .arg(&file)
            .args(["--public-key", &public_key]))
    };
    for (change, says) in [
        (
            Box::new(|e: &mut serde_json::Value| e["format"] = json!("trellis-evidence/2"))
                as Box<dyn Fn(&mut serde_json::Value)>,
            "the evidence is in format \"trellis-evidence/2\"; this verifier reads \
             trellis-evidence/1",
        ),
        (
            Box::new(|e| e["format"] = json!(1)),
            "the evidence is not valid trellis-evidence/1: its field `format` is 1",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("checkpoint");
            }),
            "the evidence is not valid trellis-evidence/1: missing field `checkpoint`",
        ),
        (
            Box::new(|e| e["events"][0]["leaf_index"] = json!("seven")),
            "the evidence is not valid trellis-evidence/1: field `events[0].leaf_index`: invalid \
             type: string \"seven\"",
        ),
        (
            Box::new(|e| e["events"][0]["prev_hash"] = json!("not hex")),
            "the evidence is not valid trellis-evidence/1: field `events[0].prev_hash` (event",
        ),
    ] {
        let (code, out) = verify_with(&*change);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(says), "expected {says:?} in:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
