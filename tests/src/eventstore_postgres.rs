//! What only the PostgreSQL backend can show: out-of-order commits, and the
//! privileges of the role the service runs as.

use std::time::Duration;

use chrono::Utc;
use trellis_eventstore::chain::DigestInput;
use trellis_eventstore::{Checkpoint, CommandMeta, ExpectedVersion, NewEvent, verify};
use trellis_tests::{Backend, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_skips_an_event_whose_transaction_commits_after_a_later_one() {
    let b = Backend::postgres().await;
    let store = b.store.clone();
    let late_stream = stream("rep");
    let meta = CommandMeta::new("late-writer", Utc::now());
    let late = NewEvent::new("Late", 1, serde_json::json!({"which": "late"}), Utc::now());
    let digest = DigestInput::of_new(&late_stream, &meta, &late).digest(&mut Vec::new());

    // Writer A appends first (taking the lower position) but holds its
    // transaction open.
    let mut client = b.database().superuser().await;
    let tx = client.transaction().await.unwrap();
    let row = tx
        .query_one(
            "SELECT outcome, first_position FROM trellis.append_events($1, -1, $2, $3, $4, NULL, $5, \
             ARRAY[$6::uuid], ARRAY[$7::text], ARRAY[1], ARRAY[$8::jsonb], ARRAY[$9::timestamptz], \
             ARRAY[$10::bytea], NULL, NULL)",
            &[
                &late_stream.as_str(),
                &meta.command_id,
                &meta.actor,
                &meta.correlation_id,
                &meta.recorded_at,
                &late.event_id,
                &late.event_type,
                &late.payload,
                &late.occurred_at,
                &digest.as_slice(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "appended");
    let late_position: i64 = row.get(1);

    // Writer B appends later and commits first.
    let early_stream = stream("rep");
    let early = store
        .append(
            &early_stream,
            ExpectedVersion::Exact(0),
            &CommandMeta::new("early-writer", Utc::now()),
            &[NewEvent::new(
                "Early",
                1,
                serde_json::json!({"which": "early"}),
                Utc::now(),
            )],
        )
        .await
        .unwrap();
    assert!(
        early.first_position > late_position as u64,
        "B's event sits after A's in position order"
    );

    // A reader now must not move past A's slot: it sees nothing yet.
    let seen = store.read_all(Checkpoint::START, 100).await.unwrap();
    assert!(
        seen.is_empty(),
        "read {} event(s) while an earlier append was uncommitted",
        seen.len()
    );

    tx.commit().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = store.read_all(Checkpoint::START, 100).await.unwrap();
        if seen.len() == 2 || tokio::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let types: Vec<_> = seen.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["Late", "Early"],
        "both events, in commit-safe order"
    );
    assert!(verify(&*store, 100).await.unwrap().is_intact());
    drop(store);
    b.cleanup().await;
}

/// The head stops short of a transaction still running; the settled head
/// waits for it, so a write that returned meanwhile is under it (a form
/// waiting for the read models to show its write once went back at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settled_head_covers_a_write_that_returned_behind_a_running_transaction() {
    let b = Backend::postgres().await;
    let store = b.store.clone();
    // Another session's transaction, running, with an id.
    let mut client = b.database().superuser().await;
    let running = client.transaction().await.unwrap();
    running
        .execute("SELECT pg_current_xact_id()", &[])
        .await
        .unwrap();

    let written = stream("rep");
    let meta = CommandMeta::new("writer", Utc::now());
    let event = NewEvent::new("Noted", 1, serde_json::json!({"n": 1}), Utc::now());
    store
        .append(&written, ExpectedVersion::Exact(0), &meta, &[event])
        .await
        .expect("the append returns");
    let ours = store.read_stream(&written, 0, 1).await.unwrap()[0].checkpoint;
    assert!(
        store.head().await.unwrap() < ours,
        "the plain head stops short of the running transaction"
    );

    let mut settled = Box::pin(store.settled_head());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut settled)
            .await
            .is_err(),
        "the settled head waits for the transaction running at the call"
    );
    running.commit().await.unwrap();
    let head = tokio::time::timeout(Duration::from_secs(10), settled)
        .await
        .expect("settles once the transaction ends")
        .expect("a head");
    assert!(head >= ours, "{head:?} covers {ours:?}");
    b.cleanup().await;
}

/// A login role that is a member of trellis_writer, as an operator sets
/// up, and the superuser connection that made it (to drop it at the end).
async fn runtime_login_role(b: &Backend) -> (String, tokio_postgres::Client) {
    let role = format!("trellis_test_role_{}", uuid::Uuid::now_v7().simple());
    let admin = b.database().superuser().await;
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN IN ROLE trellis_writer"))
        .await
        .unwrap();
    (role, admin)
}

async fn drop_role(admin: tokio_postgres::Client, role: &str) {
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_service_role_may_read_and_append_but_never_change_the_log() {
    let b = Backend::postgres().await;
    let s = stream("rep");
    b.store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &CommandMeta::new("leader", Utc::now()),
            &[NewEvent::new("Noted", 1, serde_json::json!({}), Utc::now())],
        )
        .await
        .unwrap();

    let (role, admin) = runtime_login_role(&b).await;
    let mut config: tokio_postgres::Config = b.database().url.parse().unwrap();
    config.user(&role);
    config.password("");
    let (service, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let conn_task = tokio::spawn(connection);

    let count: i64 = service
        .query_one("SELECT count(*) FROM trellis.events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "the service role can read");
    // It appends the way Trellis does, through the append function, which
    // chains the event onto the stream's head itself.
    let appended = service
        .query_one(
            "SELECT replayed, head, inserted FROM trellis.append_one($1, 1, $2, 'leader', $2, \
             NULL, now(), $3, 'Noted', 1, '{}'::jsonb, now(), $4, NULL, NULL)",
            &[
                &s.as_str(),
                &uuid::Uuid::now_v7(),
                &uuid::Uuid::now_v7(),
                &vec![0u8; 32],
            ],
        )
        .await
        .expect("the runtime role appends through the function");
    assert!(!appended.get::<_, bool>(0));
    assert_eq!(appended.get::<_, i64>(1), 1, "onto the head it read");
    assert!(appended.get::<_, Option<i64>>(2).is_some(), "inserted");
    // A forged event, hash computed by the documented formula and all: the
    // role may not write a row of its own making.
    let forged = format!(
        "INSERT INTO trellis.events (event_id, stream_id, stream_version, event_type, \
         schema_version, payload, actor, command_id, correlation_id, occurred_at, recorded_at, \
         prev_hash, hash) SELECT '{}', '{s}', 3, 'Noted', 1, '{{}}', 'forger', '{}', '{}', now(), \
         now(), hash, sha256(hash) FROM trellis.events WHERE stream_id = '{s}' \
         AND stream_version = 2",
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7()
    );
    for sql in [
        forged.as_str(),
        "UPDATE trellis.events SET actor = 'x'",
        "DELETE FROM trellis.events",
        "TRUNCATE trellis.events",
        "UPDATE trellis.events SET request_hash = NULL",
        "ALTER TABLE trellis.events DISABLE TRIGGER events_no_update",
    ] {
        let err = service.batch_execute(sql).await.unwrap_err();
        let message = err
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_default();
        assert!(
            message.contains("permission denied") || message.contains("must be owner"),
            "{sql}: {message}"
        );
    }
    drop(service);
    conn_task.abort();
    drop_role(admin, &role).await;
    b.cleanup().await;
}

/// Discarding the stored tree (`trellis audit rebuild-tree`) lifts the
/// guards of its tables: the runtime role may not, is told whose connection
/// it takes, and the tree is left as it was.
#[tokio::test]
async fn only_the_schema_owner_may_discard_the_stored_tree() {
    use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
    use trellis_eventstore::tree::TreeBuilder;
    let b = Backend::postgres().await;
    let s = stream("rep");
    for _ in 0..3 {
        b.store
            .append(
                &s,
                ExpectedVersion::Any,
                &CommandMeta::new("leader", Utc::now()),
                &[NewEvent::new("Noted", 1, serde_json::json!({}), Utc::now())],
            )
            .await
            .unwrap();
    }
    trellis_tests::settle(&*b.store).await;
    let mut builder = TreeBuilder::load(&*b.store).await.unwrap();
    assert_eq!(builder.catch_up(&*b.store).await.unwrap(), 3);

    let (role, admin) = runtime_login_role(&b).await;
    // The test database's URL names its user first: that role instead.
    let url = b
        .database()
        .url
        .replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, b.database().url);
    let service = PostgresStore::connect(&PostgresConfig::new(&url))
        .await
        .unwrap();
    let refused = service.discard_stored_tree().await.unwrap_err();
    assert!(
        refused.to_string().contains(
            "only the schema's owner may discard the stored tree, and this connection's role is \
             not it"
        ),
        "{refused}"
    );
    assert_eq!(
        b.store.tree_state().await.unwrap().size,
        3,
        "left as it was"
    );
    drop(service);
    drop_role(admin, &role).await;
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_wakes_when_another_process_appends() {
    let b = Backend::postgres().await;
    let other_process = b.reopen().await;
    let mut follower = trellis_eventstore::Follower::new(b.store.clone(), Checkpoint::START, 100)
        .with_poll_interval(Duration::from_secs(3600));
    let waiting = tokio::spawn(async move { follower.next_batch().await.unwrap().len() });
    // Give the follower time to read nothing and start waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    other_process
        .append(
            &stream("rep"),
            ExpectedVersion::Exact(0),
            &CommandMeta::new("leader", Utc::now()),
            &[NewEvent::new("Noted", 1, serde_json::json!({}), Utc::now())],
        )
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the follower must wake on the other process's NOTIFY, not its hour-long poll")
        .unwrap();
    assert_eq!(woke, 1);
    drop(other_process);
    b.cleanup().await;
}

/// A group commit's batch on PostgreSQL is sealed with one signature: its
/// one-event commands (written in one statement) and a command of two
/// events (written after it) all carry it, each with its own path, and
/// every seal verifies for its event. A command alone keeps the single
/// event's 68-byte seal.
#[tokio::test]
async fn a_batch_is_sealed_with_one_signature_on_postgres() {
    use trellis_eventstore::EventStore;
    use trellis_eventstore::note::{SEAL_LEN, SealCheck, SignerKey};
    use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
    let b = Backend::postgres().await;
    let key = SignerKey::generate("trellis.test/seal").unwrap();
    let store = PostgresStore::connect(&PostgresConfig::new(&b.database().url))
        .await
        .unwrap()
        .sealing_with(key.clone());
    let event = |n: usize| NewEvent::new("Noted", 1, serde_json::json!({ "n": n }), Utc::now());
    let streams = [stream("rep"), stream("rep"), stream("rep")];
    let requests = streams
        .iter()
        .enumerate()
        .map(|(i, s)| trellis_eventstore::AppendRequest {
            stream: s.clone(),
            expected: ExpectedVersion::Exact(0),
            meta: CommandMeta::new("leader", Utc::now()),
            // The last command has two events.
            events: (0..=i / 2).map(event).collect(),
        })
        .collect();
    for outcome in store.append_batch(requests).await {
        outcome.unwrap();
    }
    let alone = stream("rep");
    store
        .append(
            &alone,
            ExpectedVersion::Exact(0),
            &CommandMeta::new("leader", Utc::now()),
            &[event(9)],
        )
        .await
        .unwrap();
    let keys = [key.verifier()];
    let mut check = SealCheck::new(&keys);
    let mut scratch = Vec::new();
    let mut batch = Vec::new();
    for s in &streams {
        batch.extend(store.read_stream(s, 0, 10).await.unwrap());
    }
    assert_eq!(batch.len(), 4);
    let heads: std::collections::HashSet<Vec<u8>> = batch
        .iter()
        .map(|e| {
            let seal = &e.seal.as_ref().expect("sealed").0;
            assert!(seal.len() > SEAL_LEN, "a batch seal carries its path");
            let digest = e.stored_digest(&mut scratch).unwrap();
            assert!(check.verifies(&digest, seal));
            seal[..SEAL_LEN].to_vec()
        })
        .collect();
    assert_eq!(heads.len(), 1, "one signature for the batch");
    let alone = store.read_stream(&alone, 0, 10).await.unwrap().remove(0);
    let seal = &alone.seal.as_ref().expect("sealed").0;
    assert_eq!(seal.len(), SEAL_LEN);
    assert!(check.verifies(&alone.stored_digest(&mut scratch).unwrap(), seal));
    drop(store);
    b.cleanup().await;
}
