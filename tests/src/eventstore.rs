//! The event store conformance suite: every test runs against PostgreSQL and
//! the embedded backend, which must behave identically.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;
use trellis_eventstore::note::SignerKey;
use trellis_eventstore::tree::TreeBuilder;
use trellis_eventstore::{
    AppendRequest, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Follower, Hash,
    NewEvent, Problem, RecordedEvent, StreamId, StreamWrite, TraceParent, verify,
};
use trellis_tests::{Backend, Kind, stream};
use uuid::Uuid;

/// Generates one `#[tokio::test]` per backend for each conformance test.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = trellis_tests::Backend::new(trellis_tests::Kind::Postgres).await;
                    super::$name(&backend).await;
                    backend.cleanup().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = trellis_tests::Backend::new(trellis_tests::Kind::Sqlite).await;
                    super::$name(&backend).await;
                    backend.cleanup().await;
                }
            )*
        }
        // The same contract as `trellis serve` runs the store: appends
        // grouped into shared commits, scans reading the next page ahead.
        mod grouped_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = trellis_tests::Backend::new(trellis_tests::Kind::Postgres)
                        .await
                        .grouped();
                    super::$name(&backend).await;
                    backend.cleanup().await;
                }
            )*
        }
        mod grouped_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = trellis_tests::Backend::new(trellis_tests::Kind::Sqlite)
                        .await
                        .grouped();
                    super::$name(&backend).await;
                    backend.cleanup().await;
                }
            )*
        }
    };
}

conformance!(
    appended_events_read_back_with_their_metadata_and_contiguous_versions,
    a_stale_expected_version_is_a_conflict_with_the_current_version_and_writes_nothing,
    expected_version_zero_means_the_stream_must_not_exist,
    a_multi_event_append_is_atomic,
    the_same_command_id_records_once_and_returns_the_first_outcome,
    a_command_handed_over_is_answered_as_a_lent_one,
    read_all_returns_the_log_in_order_from_a_checkpoint_in_batches,
    a_scan_that_reached_the_end_sees_what_was_appended_after,
    a_reader_resuming_from_its_checkpoint_after_a_restart_sees_no_event_twice,
    a_follower_wakes_on_append_without_waiting_for_its_poll,
    eight_concurrent_writers_and_a_tailing_reader_lose_and_duplicate_nothing,
    conflicting_writers_get_conflicts_never_a_lost_update,
    the_log_refuses_update_and_delete,
    an_intact_log_verifies,
    a_stream_scan_stops_where_its_callback_says_hands_on_its_error_and_resumes_after_a_place,
    verify_names_an_altered_event,
    verify_names_a_missing_event,
    verify_names_reordered_events,
    bad_appends_are_refused_with_a_reason_and_record_nothing,
    tricky_payload_numbers_and_text_survive_storage_and_keep_the_chain_valid,
    read_all_json_returns_the_same_events_with_each_payload_as_its_json_text,
    read_leaves_returns_read_all_s_events_checkpoints_and_hashes_page_by_page,
    a_multi_stream_append_writes_every_stream_or_none,
    a_multi_stream_append_retried_records_once,
    a_replayed_command_gives_back_the_first_request_hash,
    a_traceparent_is_kept_with_every_event_of_its_command_outside_the_chain_and_absent_when_not_given,
    a_subscriber_checkpoint_survives_a_restart,
    the_stored_tree_grows_in_global_order_survives_a_restart_and_serves_proofs,
    a_catch_up_over_several_batches_stores_every_leaf_once_in_global_order,
    a_stale_tree_builder_is_refused_and_writes_nothing,
    the_stored_tree_and_its_checkpoints_refuse_update_and_delete,
    a_held_scope_keeps_another_writer_of_the_log_waiting_until_it_is_let_go,
);

/// `exclusive` holds a scope against another store over the same log (as
/// another process has it): the other waits while it is held, and takes
/// it once it is let go.
async fn a_held_scope_keeps_another_writer_of_the_log_waiting_until_it_is_let_go(b: &Backend) {
    let other = b.reopen().await;
    let held = b
        .store
        .exclusive("team")
        .await
        .expect("a free scope is taken");
    let mut waiting = tokio::spawn(async move {
        let second = other.exclusive("team").await;
        (second, other)
    });
    assert_waits(
        &mut waiting,
        "another writer must wait while the scope is held",
    )
    .await;
    drop(held);
    let (second, other) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("a scope let go is taken by the writer waiting for it")
        .expect("the waiting writer ran");
    let second = second.expect("the scope is taken");
    // Now the first waits for the second.
    let mut first = Box::pin(b.store.exclusive("team"));
    assert_waits(
        &mut first,
        "the first writer must wait while the second holds the scope",
    )
    .await;
    drop(second);
    let first = first.await.expect("taken again once let go");
    // A guard dropped where no runtime runs (a thread of its own) lets go
    // all the same, for the other store too: its connection or file is
    // closed, not handed back to a pool still holding the lock.
    std::thread::spawn(move || drop(first))
        .join()
        .expect("the guard is dropped");
    let again = tokio::time::timeout(Duration::from_secs(5), other.exclusive("team"))
        .await
        .expect("a scope whose guard was dropped off the runtime is taken again");
    drop(again.expect("the scope is taken"));
}

/// Asserts that `waiting` is still waiting after 300 ms.
async fn assert_waits<F: std::future::Future + Unpin>(waiting: &mut F, why: &str) {
    let finished = tokio::time::timeout(Duration::from_millis(300), waiting).await;
    assert!(finished.is_err(), "{why}");
}

fn meta(actor: &str) -> CommandMeta {
    CommandMeta::new(actor, Utc::now())
}

fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent::new(
        kind,
        1,
        json!({ "n": n, "note": format!("event {n}") }),
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap(),
    )
}

async fn append_one(store: &dyn EventStore, stream: &StreamId, n: u64) -> u64 {
    store
        .append(
            stream,
            ExpectedVersion::Any,
            &meta("leader-1"),
            &[event("Noted", n)],
        )
        .await
        .expect("append")
        .stream_version
}

async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let batch = store.read_all(after, 1000).await.expect("read_all");
        let Some(last) = batch.last() else { return all };
        after = last.checkpoint;
        all.extend(batch);
    }
}

/// The whole log once `n` events are readable, and asserts it holds exactly `n`.
///
/// On PostgreSQL an event becomes readable once every older transaction of
/// the cluster has ended, and other tests run their own transactions in
/// parallel, so the newest events may take a moment to appear.
async fn read_exactly(store: &dyn EventStore, n: usize) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all = read_everything(store).await;
        if all.len() >= n || tokio::time::Instant::now() > deadline {
            assert_eq!(
                all.len(),
                n,
                "the log should hold exactly {n} readable events"
            );
            return all;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn appended_events_read_back_with_their_metadata_and_contiguous_versions(b: &Backend) {
    let s = stream("rep");
    let causation = Uuid::now_v7();
    let mut m = meta("leader-7");
    m.causation_id = Some(causation);
    // Nanoseconds are dropped: the log keeps microseconds.
    m.recorded_at =
        Utc.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).unwrap() + Duration::from_nanos(1_234_567);
    let events = [event("FeedbackGiven", 1), event("SkillAssessed", 2)];
    let outcome = b
        .store
        .append(&s, ExpectedVersion::Exact(0), &m, &events)
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 2);
    assert!(!outcome.replayed);
    assert!(outcome.first_position < outcome.last_position);
    let third = b
        .store
        .append(
            &s,
            ExpectedVersion::Exact(2),
            &meta("leader-7"),
            &[event("X", 3)],
        )
        .await;
    assert_eq!(third.unwrap().stream_version, 3);

    let read = b.store.read_stream(&s, 0, 100).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(b.store.stream_version(&s).await.unwrap(), 3);
    let first = &read[0];
    assert_eq!(first.event_id, events[0].event_id);
    assert_eq!(first.stream_id, s);
    assert_eq!(first.event_type, "FeedbackGiven");
    assert_eq!(first.schema_version, 1);
    assert_eq!(first.payload, events[0].payload);
    assert_eq!(first.global_position, outcome.first_position);
    assert_eq!(first.metadata.actor, "leader-7");
    assert_eq!(first.metadata.command_id, m.command_id);
    assert_eq!(first.metadata.correlation_id, m.correlation_id);
    assert_eq!(first.metadata.causation_id, Some(causation));
    assert_eq!(first.metadata.occurred_at, events[0].occurred_at);
    assert_eq!(
        first.metadata.recorded_at,
        Utc.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).unwrap() + Duration::from_micros(1_234)
    );
    assert_eq!(
        read[1].prev_hash, first.hash,
        "each event carries its predecessor's hash"
    );
    assert_eq!(b.store.read_stream(&s, 2, 100).await.unwrap().len(), 1);
    assert_eq!(
        b.store.read_stream(&stream("rep"), 0, 100).await.unwrap(),
        vec![]
    );
    assert_eq!(b.store.stream_version(&stream("rep")).await.unwrap(), 0);
}

async fn a_stale_expected_version_is_a_conflict_with_the_current_version_and_writes_nothing(
    b: &Backend,
) {
    let s = stream("rep");
    append_one(&*b.store, &s, 1).await;
    append_one(&*b.store, &s, 2).await;
    let err = b
        .store
        .append(
            &s,
            ExpectedVersion::Exact(1),
            &meta("leader-1"),
            &[event("X", 3), event("X", 4)],
        )
        .await
        .unwrap_err();
    match err {
        Error::Conflict {
            stream,
            expected,
            current,
        } => {
            assert_eq!(stream, s);
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(current, 2);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.store.read_stream(&s, 0, 100).await.unwrap().len(), 2);
}

async fn expected_version_zero_means_the_stream_must_not_exist(b: &Backend) {
    let s = stream("team");
    b.store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &meta("admin"),
            &[event("TeamFormed", 1)],
        )
        .await
        .unwrap();
    let err = b
        .store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &meta("admin"),
            &[event("TeamFormed", 1)],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { current: 1, .. }), "{err:?}");
}

async fn a_multi_event_append_is_atomic(b: &Backend) {
    let s = stream("rep");
    append_one(&*b.store, &s, 1).await;
    // The second event reuses the first's id: the whole append must fail.
    let first = event("A", 2);
    let mut duplicate = event("B", 3);
    duplicate.event_id = first.event_id;
    let result = b
        .store
        .append(
            &s,
            ExpectedVersion::Exact(1),
            &meta("x"),
            &[first, duplicate],
        )
        .await;
    assert!(
        result.is_err(),
        "an append with a duplicate event id must fail"
    );
    assert_eq!(
        b.store.stream_version(&s).await.unwrap(),
        1,
        "nothing of the failed append stays"
    );
    read_exactly(&*b.store, 1).await;
}

async fn the_same_command_id_records_once_and_returns_the_first_outcome(b: &Backend) {
    let s = stream("rep");
    let m = meta("leader-1");
    let first = b
        .store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &m,
            &[event("A", 1), event("B", 2)],
        )
        .await
        .unwrap();
    // A retry carries the same command id (and, here, a stale expected version
    // and new event ids): it must record nothing and answer as the first time.
    let again = b
        .store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &m,
            &[event("A", 1), event("B", 2)],
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (
            again.stream_version,
            again.first_position,
            again.last_position
        ),
        (
            first.stream_version,
            first.first_position,
            first.last_position
        )
    );
    assert_eq!(b.store.read_stream(&s, 0, 10).await.unwrap().len(), 2);

    // Concurrent retries of one command also record once.
    let s2 = stream("rep");
    let m2 = meta("leader-1");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = b.store.clone();
        let (s2, m2) = (s2.clone(), m2.clone());
        tasks.push(tokio::spawn(async move {
            store
                .append(&s2, ExpectedVersion::Any, &m2, &[event("A", 1)])
                .await
        }));
    }
    let mut replays = 0;
    for t in tasks {
        let outcome = t.await.unwrap().expect("every retry succeeds");
        assert_eq!(outcome.stream_version, 1);
        replays += usize::from(outcome.replayed);
    }
    assert_eq!(replays, 7);
    assert_eq!(b.store.read_stream(&s2, 0, 10).await.unwrap().len(), 1);
}

fn handed_over(
    stream: &StreamId,
    expected: ExpectedVersion,
    meta: &CommandMeta,
    events: Vec<NewEvent>,
) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        expected,
        meta: meta.clone(),
        events,
    }
}

async fn a_command_handed_over_is_answered_as_a_lent_one(b: &Backend) {
    let s = stream("rep");
    let m = meta("leader-1");
    let first = b
        .store
        .append_owned(handed_over(
            &s,
            ExpectedVersion::Exact(0),
            &m,
            vec![event("A", 1), event("B", 2)],
        ))
        .await
        .unwrap();
    assert_eq!((first.stream_version, first.replayed), (2, false));
    // The same command again records nothing and answers as the first time.
    let again = b
        .store
        .append_owned(handed_over(
            &s,
            ExpectedVersion::Exact(0),
            &m,
            vec![event("A", 1)],
        ))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.stream_version, again.first_position),
        (first.stream_version, first.first_position)
    );
    // A stale version is a conflict naming the current one.
    let stale = b
        .store
        .append_owned(handed_over(
            &s,
            ExpectedVersion::Exact(1),
            &meta("leader-1"),
            vec![event("C", 3)],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(stale, Error::Conflict { current: 2, .. }),
        "{stale:?}"
    );
    // Bad input is refused before anything is queued.
    let empty = b
        .store
        .append_owned(handed_over(
            &s,
            ExpectedVersion::Any,
            &meta("leader-1"),
            vec![],
        ))
        .await
        .unwrap_err();
    assert!(matches!(empty, Error::InvalidInput(_)), "{empty:?}");

    // Many at once (grouped: queued into shared commits, not each alone),
    // each answered with its own stream's version.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = b.store.clone();
        tasks.push(tokio::spawn(async move {
            let s = stream("rep");
            for n in 1..=5u64 {
                let outcome = store
                    .append_owned(handed_over(
                        &s,
                        ExpectedVersion::Exact(n - 1),
                        &meta("leader-1"),
                        vec![event("Noted", n)],
                    ))
                    .await
                    .unwrap();
                assert_eq!(outcome.stream_version, n);
            }
            s
        }));
    }
    for task in tasks {
        let s = task.await.unwrap();
        let read: Vec<u64> = b
            .store
            .read_stream(&s, 0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(read, [1, 2, 3, 4, 5]);
    }
    let read = b.store.read_stream(&s, 0, 10).await.unwrap();
    assert_eq!(
        read.len(),
        2,
        "nothing of the replay or the conflict was recorded"
    );
}

async fn read_all_returns_the_log_in_order_from_a_checkpoint_in_batches(b: &Backend) {
    let streams: Vec<_> = (0..3).map(|_| stream("rep")).collect();
    for n in 0..30u64 {
        append_one(&*b.store, &streams[(n % 3) as usize], n).await;
    }
    let all = read_exactly(&*b.store, 30).await;
    let ns: Vec<u64> = all
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ns,
        (0..30).collect::<Vec<_>>(),
        "sequential appends read back in append order"
    );
    assert!(all.windows(2).all(|w| w[0].checkpoint < w[1].checkpoint));
    assert_eq!(
        b.store.head().await.unwrap(),
        all.last().unwrap().checkpoint
    );

    let mut after = Checkpoint::START;
    let mut batches = 0;
    let mut seen = Vec::new();
    loop {
        let batch = b.store.read_all(after, 7).await.unwrap();
        assert!(batch.len() <= 7);
        let Some(last) = batch.last() else { break };
        after = last.checkpoint;
        batches += 1;
        seen.extend(batch.into_iter().map(|e| e.event_id));
    }
    assert_eq!(batches, 5);
    assert_eq!(seen, all.iter().map(|e| e.event_id).collect::<Vec<_>>());
    let from_middle = b.store.read_all(all[9].checkpoint, 100).await.unwrap();
    assert_eq!(from_middle.first().unwrap().event_id, all[10].event_id);
    assert_eq!(from_middle.len(), 20);
}

/// A scan that came to the end of the log, then goes on after more appends,
/// reads them: a page read ahead (`ReadAhead`, in the grouped variants) as
/// the log ended must not stand for the page read now.
async fn a_scan_that_reached_the_end_sees_what_was_appended_after(b: &Backend) {
    let s = stream("rep");
    for n in 0..5u64 {
        append_one(&*b.store, &s, n).await;
    }
    read_exactly(&*b.store, 5).await;
    let ns = |events: &[RecordedEvent]| -> Vec<u64> {
        events
            .iter()
            .map(|e| e.payload["n"].as_u64().unwrap())
            .collect()
    };
    let first = b.store.read_all(Checkpoint::START, 2).await.unwrap();
    assert_eq!(ns(&first), [0, 1]);
    let second = b.store.read_all(first[1].checkpoint, 2).await.unwrap();
    assert_eq!(ns(&second), [2, 3]);
    // The next page is [4], short: the end of the log as it stands. Give a
    // read ahead of it the time to come back so, before appending more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_one(&*b.store, &s, 5).await;
    append_one(&*b.store, &s, 6).await;
    read_exactly(&*b.store, 7).await;
    let third = b.store.read_all(second[1].checkpoint, 2).await.unwrap();
    assert_eq!(
        ns(&third),
        [4, 5],
        "the page after the end is read as it is now"
    );
    let fourth = b.store.read_all(third[1].checkpoint, 2).await.unwrap();
    assert_eq!(ns(&fourth), [6]);
    let text = b.store.read_all_json(third[1].checkpoint, 2).await.unwrap();
    assert_eq!(text.len(), 1, "a page read as text is the same page");
    append_one(&*b.store, &s, 7).await;
    read_exactly(&*b.store, 8).await;
    let last = b.store.read_all(fourth[0].checkpoint, 2).await.unwrap();
    assert_eq!(ns(&last), [7]);
}

async fn a_reader_resuming_from_its_checkpoint_after_a_restart_sees_no_event_twice(b: &Backend) {
    let s = stream("rep");
    for n in 0..10 {
        append_one(&*b.store, &s, n).await;
    }
    read_exactly(&*b.store, 10).await;
    let first_half = b.store.read_all(Checkpoint::START, 4).await.unwrap();
    let saved: Checkpoint = first_half
        .last()
        .unwrap()
        .checkpoint
        .to_string()
        .parse()
        .unwrap();
    for n in 10..15 {
        append_one(&*b.store, &s, n).await;
    }
    read_exactly(&*b.store, 15).await;
    let restarted = b.reopen().await;
    let rest = read_everything_after(&*restarted, saved).await;
    let mut ids: Vec<_> = first_half.iter().map(|e| e.event_id).collect();
    ids.extend(rest.iter().map(|e| e.event_id));
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), 15);
    assert_eq!(unique.len(), 15);
}

async fn read_everything_after(
    store: &dyn EventStore,
    mut after: Checkpoint,
) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let batch = store.read_all(after, 3).await.unwrap();
        let Some(last) = batch.last() else { return all };
        after = last.checkpoint;
        all.extend(batch);
    }
}

async fn a_follower_wakes_on_append_without_waiting_for_its_poll(b: &Backend) {
    let s = stream("rep");
    append_one(&*b.store, &s, 0).await;
    read_exactly(&*b.store, 1).await;
    let mut follower = Follower::new(b.store.clone(), Checkpoint::START, 100)
        .with_poll_interval(Duration::from_secs(3600));
    assert_eq!(follower.next_batch().await.unwrap().len(), 1);
    let waiting = tokio::spawn(async move {
        let batch = follower.next_batch().await.unwrap();
        batch
            .into_iter()
            .map(|e| e.payload["n"].as_u64().unwrap())
            .collect::<Vec<_>>()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    append_one(&*b.store, &s, 1).await;
    let woke = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the follower must wake on the append signal, not its hour-long poll")
        .unwrap();
    assert_eq!(woke, [1]);
}

async fn eight_concurrent_writers_and_a_tailing_reader_lose_and_duplicate_nothing(b: &Backend) {
    const WRITERS: usize = 8;
    const TOTAL: usize = 10_000;
    let streams: Arc<Vec<StreamId>> = Arc::new((0..20).map(|_| stream("rep")).collect());

    // The reader tails the log while the writers write.
    let mut follower = Follower::new(b.store.clone(), Checkpoint::START, 500)
        .with_poll_interval(Duration::from_millis(50));
    let reader = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(TOTAL);
        while seen.len() < TOTAL {
            let batch = tokio::time::timeout(Duration::from_secs(60), follower.next_batch())
                .await
                .expect("the reader stalled")
                .unwrap();
            seen.extend(batch);
        }
        seen
    });

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = b.store.clone();
        let streams = streams.clone();
        writers.push(tokio::spawn(async move {
            let mut written = 0;
            let mut i = 0usize;
            let mine = TOTAL / WRITERS;
            while written < mine {
                // Overlapping streams: every writer writes to every stream.
                let s = &streams[(w * 7 + i * 3) % streams.len()];
                let n = (1 + (i + w) % 3).min(mine - written);
                let events: Vec<_> = (0..n)
                    .map(|k| event("Noted", (w * mine + written + k) as u64))
                    .collect();
                store
                    .append(s, ExpectedVersion::Any, &meta("writer"), &events)
                    .await
                    .expect("append");
                written += n;
                i += 1;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("reader finished")
        .unwrap();

    assert_eq!(seen.len(), TOTAL, "the reader saw every event");
    let ids: HashSet<_> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), TOTAL, "the reader saw no event twice");
    let ns: HashSet<_> = seen
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns.len(), TOTAL, "every written event arrived");
    // Per stream, the reader's order is the stream's version order, 1, 2, 3, ...
    let mut per_stream: HashMap<&StreamId, Vec<u64>> = HashMap::new();
    for e in &seen {
        per_stream
            .entry(&e.stream_id)
            .or_default()
            .push(e.stream_version);
    }
    for (s, versions) in per_stream {
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "stream {s} read out of version order");
    }
    // Nothing more arrives later, and the whole log says the same.
    read_exactly(&*b.store, TOTAL).await;
    assert!(verify(&*b.store, 1000).await.unwrap().is_intact());
}

async fn conflicting_writers_get_conflicts_never_a_lost_update(b: &Backend) {
    // Eight writers each read-modify-write one counter stream 25 times with
    // the version they read. Every successful write must be in the log.
    let s = stream("rep");
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let store = b.store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut conflicts) = (Vec::new(), 0);
            for i in 0..25 {
                let version = store.stream_version(&s).await.unwrap();
                match store
                    .append(
                        &s,
                        ExpectedVersion::Exact(version),
                        &meta("w"),
                        &[event("Inc", w * 100 + i)],
                    )
                    .await
                {
                    Ok(outcome) => {
                        assert_eq!(outcome.stream_version, version + 1);
                        ok.push(w * 100 + i);
                    }
                    Err(Error::Conflict { current, .. }) => {
                        assert!(current > version, "a conflict reports a newer version");
                        conflicts += 1;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            (ok, conflicts)
        }));
    }
    let mut succeeded = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (ok, c) = t.await.unwrap();
        succeeded.extend(ok);
        conflicts += c;
    }
    let log = b.store.read_stream(&s, 0, 10_000).await.unwrap();
    let mut in_log: Vec<u64> = log
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    succeeded.sort_unstable();
    in_log.sort_unstable();
    assert_eq!(
        in_log, succeeded,
        "exactly the acknowledged writes are in the log"
    );
    assert_eq!(succeeded.len() + conflicts, 200);
    assert_eq!(
        log.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1..=log.len() as u64).collect::<Vec<_>>()
    );
}

async fn the_log_refuses_update_and_delete(b: &Backend) {
    let s = stream("rep");
    append_one(&*b.store, &s, 1).await;
    let update = b
        .try_modify("UPDATE events SET actor = 'someone else'")
        .await
        .unwrap_err();
    assert!(update.contains("append-only"), "{update}");
    let delete = b.try_modify("DELETE FROM events").await.unwrap_err();
    assert!(delete.contains("append-only"), "{delete}");
    if b.kind == Kind::Postgres {
        let truncate = b.try_modify("TRUNCATE events").await.unwrap_err();
        assert!(truncate.contains("append-only"), "{truncate}");
    }
    read_exactly(&*b.store, 1).await;
}

async fn an_intact_log_verifies(b: &Backend) {
    for _ in 0..5 {
        let s = stream("rep");
        for n in 0..7 {
            append_one(&*b.store, &s, n).await;
        }
    }
    let report = verify(&*b.store, 4).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!((report.events, report.streams), (35, 5));
}

/// `scan_streams_after`, the loop every whole-log scan uses: it stops at
/// the event its callback answers `Break` to (mid-page, with more pages
/// after), hands on the callback's first error without reading further,
/// and resumes after a given stream and version.
async fn a_stream_scan_stops_where_its_callback_says_hands_on_its_error_and_resumes_after_a_place(
    b: &Backend,
) {
    use std::ops::ControlFlow;
    use trellis_eventstore::scan_streams_after;
    three_streams(b).await;
    let mut all = Vec::new();
    scan_streams_after(&*b.store, None, 1000, |e| {
        all.push((e.stream_id, e.stream_version));
        Ok::<_, Error>(ControlFlow::Continue(()))
    })
    .await
    .unwrap();
    assert_eq!(all.len(), 15);

    let mut seen = Vec::new();
    scan_streams_after(&*b.store, None, 4, |e| {
        seen.push((e.stream_id, e.stream_version));
        Ok::<_, Error>(if seen.len() == 7 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        all[..7],
        "stopped at the seventh, in the second page of four"
    );

    let mut calls = 0;
    let failed = scan_streams_after(&*b.store, None, 4, |_| {
        calls += 1;
        if calls == 3 {
            return Err(Error::Internal("the callback gave up".into()));
        }
        Ok(ControlFlow::Continue(()))
    })
    .await
    .unwrap_err();
    assert_eq!(
        (calls, failed.to_string()),
        (
            3,
            Error::Internal("the callback gave up".into()).to_string()
        )
    );

    let mut rest = Vec::new();
    scan_streams_after(&*b.store, Some(all[6].clone()), 4, |e| {
        rest.push((e.stream_id, e.stream_version));
        Ok::<_, Error>(ControlFlow::Continue(()))
    })
    .await
    .unwrap();
    assert_eq!(rest, all[7..], "every event after the seventh, once");
}

/// Three streams of five events; returns them and their events.
async fn three_streams(b: &Backend) -> Vec<(StreamId, Vec<RecordedEvent>)> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let s = stream("rep");
        for n in 0..5 {
            append_one(&*b.store, &s, n).await;
        }
        let events = b.store.read_stream(&s, 0, 10).await.unwrap();
        out.push((s, events));
    }
    out
}

async fn verify_names_an_altered_event(b: &Backend) {
    let streams = three_streams(b).await;
    let (s, events) = &streams[1];
    let target = &events[2];
    let payload = match b.kind {
        Kind::Postgres => r#"'{"n": 999, "note": "changed"}'::jsonb"#,
        Kind::Sqlite => r#"'{"n":999,"note":"changed"}'"#,
    };
    b.tamper(&format!(
        "UPDATE events SET payload = {payload} WHERE stream_id = '{s}' AND stream_version = 3"
    ))
    .await;
    let report = verify(&*b.store, 100).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!((&finding.stream_id, finding.stream_version), (s, 3));
    assert_eq!(finding.event_id, target.event_id);
    assert_eq!(finding.problem, Problem::Altered);

    // Changing metadata is caught too.
    let (s0, _) = &streams[0];
    b.tamper(&format!(
        "UPDATE events SET actor = 'mallory' WHERE stream_id = '{s0}' AND stream_version = 5"
    ))
    .await;
    let report = verify(&*b.store, 100).await.unwrap();
    assert_eq!(report.findings.len(), 2);
    assert!(
        report
            .findings
            .iter()
            .any(|f| &f.stream_id == s0 && f.stream_version == 5 && f.problem == Problem::Altered)
    );
}

async fn verify_names_a_missing_event(b: &Backend) {
    let streams = three_streams(b).await;
    let (s, _) = &streams[2];
    b.tamper(&format!(
        "DELETE FROM events WHERE stream_id = '{s}' AND stream_version = 2"
    ))
    .await;
    let report = verify(&*b.store, 100).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!((&finding.stream_id, finding.stream_version), (s, 3));
    assert_eq!(
        finding.problem,
        Problem::Missing {
            expected_version: 2
        }
    );
}

async fn verify_names_reordered_events(b: &Backend) {
    let streams = three_streams(b).await;
    let (s, _) = &streams[0];
    // Swap versions 2 and 3 (through a free number, as the pair is unique).
    b.tamper(&format!(
        "UPDATE events SET stream_version = 1000 WHERE stream_id = '{s}' AND stream_version = 2; \
         UPDATE events SET stream_version = 2 WHERE stream_id = '{s}' AND stream_version = 3; \
         UPDATE events SET stream_version = 3 WHERE stream_id = '{s}' AND stream_version = 1000"
    ))
    .await;
    let report = verify(&*b.store, 100).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!((&finding.stream_id, finding.stream_version), (s, 2));
    assert_eq!(finding.problem, Problem::Reordered);
}

async fn bad_appends_are_refused_with_a_reason_and_record_nothing(b: &Backend) {
    let s = stream("rep");
    append_one(&*b.store, &s, 1).await;
    let cases: Vec<(Vec<NewEvent>, &str)> = vec![
        (vec![], "at least one event"),
        (
            vec![NewEvent::new("", 1, json!({}), Utc::now())],
            "1 to 100 characters",
        ),
        (
            vec![NewEvent::new(
                "X",
                1,
                json!({"note": "a\u{0}b"}),
                Utc::now(),
            )],
            "NUL",
        ),
    ];
    for (events, reason) in cases {
        let err = b
            .store
            .append(&s, ExpectedVersion::Any, &meta("x"), &events)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(
            err.to_string().contains(reason),
            "{err} should mention {reason:?}"
        );
    }
    let err = b
        .store
        .append(&s, ExpectedVersion::Any, &meta(" "), &[event("X", 2)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("actor"), "{err}");
    let bad_stream = StreamId::new("rep 1").unwrap_err().to_string();
    assert!(bad_stream.contains("not a valid stream id"), "{bad_stream}");
    read_exactly(&*b.store, 1).await;
}

async fn tricky_payload_numbers_and_text_survive_storage_and_keep_the_chain_valid(b: &Backend) {
    let s = stream("rep");
    let payload = json!({
        "zeta": 1, "alpha": [0.1, 100.0, 1e20, -0.0, 12, -7, 1.5e-7, 18446744073709551615u64],
        "text": "quotes \" backslash \\ newline \n tab \t unicode é 日本 emoji 🚀 control \u{1}",
        "nested": {"b": {"d": null, "c": true}, "a": false},
        "": "empty key"
    });
    b.store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &meta("x"),
            &[NewEvent::new("T", 1, payload.clone(), Utc::now())],
        )
        .await
        .unwrap();
    let read = b.store.read_stream(&s, 0, 10).await.unwrap();
    assert_eq!(read[0].payload["text"], payload["text"]);
    assert_eq!(read[0].payload["nested"], payload["nested"]);
    let report = verify(&*b.store, 100).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    // Keys are unordered in JSON; the stored document is the same document.
    let keys: BTreeMap<_, _> = read[0].payload.as_object().unwrap().iter().collect();
    assert_eq!(keys.len(), 5);
}

async fn read_all_json_returns_the_same_events_with_each_payload_as_its_json_text(b: &Backend) {
    let s = stream("rep");
    let tricky = json!({
        "text": "quotes \" backslash \\ newline \n unicode é 日本 🚀 control \u{1}",
        "numbers": [0.1, 1e20, -7, 18446744073709551615u64],
        "nested": {"b": {"d": null}, "a": false}
    });
    b.store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            &meta("x"),
            &[NewEvent::new("T", 1, tricky, Utc::now())],
        )
        .await
        .unwrap();
    for n in 0..9 {
        append_one(&*b.store, &stream("rep"), n).await;
    }
    let parsed = read_exactly(&*b.store, 10).await;

    // Page by page, as the relay reads: the same events, the same checkpoints.
    let mut as_text = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let page = b.store.read_all_json(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.checkpoint;
        as_text.extend(page);
    }
    assert_eq!(as_text.len(), parsed.len());
    for (text, parsed) in as_text.into_iter().zip(&parsed) {
        let reparsed = text.map_payload(|payload| {
            serde_json::from_str::<serde_json::Value>(&payload).expect("the payload is JSON text")
        });
        assert_eq!(&reparsed, parsed);
    }

    // A follower reading JSON text ends where one reading parsed payloads does.
    let mut follower = Follower::new(b.store.clone(), Checkpoint::START, 100);
    let batch = follower.next_batch_json().await.unwrap();
    assert_eq!(batch.len(), 10);
    assert_eq!(follower.checkpoint(), parsed.last().unwrap().checkpoint);
}

/// The tree's lean read gives what `read_all` gives of each event, in its
/// order and with its checkpoints, so the tree grown from it is the log's.
async fn read_leaves_returns_read_all_s_events_checkpoints_and_hashes_page_by_page(b: &Backend) {
    for n in 0..7 {
        append_one(&*b.store, &stream("rep"), n).await;
        append_one(&*b.store, &stream("rep"), 0).await;
    }
    let events = read_exactly(&*b.store, 14).await;
    let mut leaves = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let page = b.store.read_leaves(after, 4).await.unwrap();
        assert!(page.len() <= 4, "a page holds at most what was asked");
        let Some(last) = page.last() else { break };
        after = last.checkpoint;
        leaves.extend(page);
    }
    let expected: Vec<trellis_eventstore::tree::Leaf> = events
        .iter()
        .map(trellis_eventstore::tree::Leaf::of)
        .collect();
    assert_eq!(leaves, expected);
}

fn write(stream: &StreamId, expected: ExpectedVersion, ns: std::ops::Range<u64>) -> StreamWrite {
    StreamWrite {
        stream: stream.clone(),
        expected,
        events: ns.map(|n| event("Measured", n)).collect(),
    }
}

async fn a_multi_stream_append_writes_every_stream_or_none(b: &Backend) {
    let (s1, s2, s3) = (stream("rep"), stream("rep"), stream("rep"));
    append_one(&*b.store, &s2, 0).await;
    // s2 is at version 1, but the import believed 0: nothing may be written.
    let stale = [
        write(&s1, ExpectedVersion::Exact(0), 0..3),
        write(&s2, ExpectedVersion::Exact(0), 3..5),
        write(&s3, ExpectedVersion::Any, 5..6),
    ];
    let err = b
        .store
        .append_many(&meta("importer"), &stale)
        .await
        .unwrap_err();
    match err {
        Error::Conflict {
            stream, current, ..
        } => assert_eq!((stream, current), (s2.clone(), 1)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.store.stream_version(&s1).await.unwrap(), 0);
    assert_eq!(b.store.stream_version(&s3).await.unwrap(), 0);

    let good = [
        write(&s1, ExpectedVersion::Exact(0), 0..3),
        write(&s2, ExpectedVersion::Exact(1), 3..5),
        write(&s3, ExpectedVersion::Any, 5..6),
    ];
    let outcomes = b.store.append_many(&meta("importer"), &good).await.unwrap();
    let versions: Vec<_> = outcomes.iter().map(|o| o.stream_version).collect();
    assert_eq!(versions, [3, 3, 1]);
    read_exactly(&*b.store, 7).await;
    assert!(verify(&*b.store, 100).await.unwrap().is_intact());

    let twice = [
        write(&s1, ExpectedVersion::Any, 0..1),
        write(&s1, ExpectedVersion::Any, 1..2),
    ];
    let err = b
        .store
        .append_many(&meta("importer"), &twice)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
}

async fn a_multi_stream_append_retried_records_once(b: &Backend) {
    let (s1, s2) = (stream("rep"), stream("rep"));
    let m = meta("importer");
    let writes = [
        write(&s1, ExpectedVersion::Exact(0), 0..2),
        write(&s2, ExpectedVersion::Exact(0), 2..3),
    ];
    let first = b.store.append_many(&m, &writes).await.unwrap();
    assert!(first.iter().all(|o| !o.replayed));
    let again = b.store.append_many(&m, &writes).await.unwrap();
    assert!(again.iter().all(|o| o.replayed));
    assert_eq!(
        again
            .iter()
            .map(|o| (o.stream_version, o.first_position))
            .collect::<Vec<_>>(),
        first
            .iter()
            .map(|o| (o.stream_version, o.first_position))
            .collect::<Vec<_>>()
    );
    read_exactly(&*b.store, 3).await;
}

async fn a_replayed_command_gives_back_the_first_request_hash(b: &Backend) {
    let s = stream("rep");
    let mut m = meta("leader-1");
    m.request_hash = Some(Hash([7; 32]));
    let first = b
        .store
        .append(&s, ExpectedVersion::Any, &m, &[event("A", 1)])
        .await
        .unwrap();
    assert_eq!(first.request_hash, Some(Hash([7; 32])));
    // A retry under the same command id but another request: the first hash comes back.
    m.request_hash = Some(Hash([9; 32]));
    let again = b
        .store
        .append(&s, ExpectedVersion::Any, &m, &[event("A", 1)])
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.request_hash, Some(Hash([7; 32])));
    let plain = b
        .store
        .append(&s, ExpectedVersion::Any, &meta("x"), &[event("B", 2)])
        .await
        .unwrap();
    assert_eq!(plain.request_hash, None);
}

async fn a_traceparent_is_kept_with_every_event_of_its_command_outside_the_chain_and_absent_when_not_given(
    b: &Backend,
) {
    let traced = |n: u64| {
        let mut m = meta("leader-1");
        m.traceparent = Some(
            TraceParent::new(format!(
                "00-4bf92f3577b34da6a3ce929d0e0e47{n:02x}-00f067aa0ba902b7-01"
            ))
            .unwrap(),
        );
        m
    };
    let (one, two, plain) = (stream("rep"), stream("rep"), stream("rep"));
    let (many_a, many_b, batch) = (stream("rep"), stream("rep"), stream("rep"));
    // One event (PostgreSQL's append_one), two events (append_events), a
    // multi-stream append, a batch of independent commands, and none.
    let m1 = traced(1);
    b.store
        .append(&one, ExpectedVersion::Exact(0), &m1, &[event("A", 1)])
        .await
        .unwrap();
    let m2 = traced(2);
    b.store
        .append(
            &two,
            ExpectedVersion::Exact(0),
            &m2,
            &[event("A", 1), event("B", 2)],
        )
        .await
        .unwrap();
    let m3 = traced(3);
    b.store
        .append_many(
            &m3,
            &[
                write(&many_a, ExpectedVersion::Exact(0), 0..2),
                write(&many_b, ExpectedVersion::Exact(0), 2..3),
            ],
        )
        .await
        .unwrap();
    let m4 = traced(4);
    let outcomes = b
        .store
        .append_batch(vec![
            trellis_eventstore::AppendRequest {
                stream: batch.clone(),
                expected: ExpectedVersion::Exact(0),
                meta: m4.clone(),
                events: vec![event("A", 1)],
            },
            trellis_eventstore::AppendRequest {
                stream: batch.clone(),
                expected: ExpectedVersion::Exact(1),
                meta: meta("leader-1"),
                events: vec![event("B", 2)],
            },
        ])
        .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    b.store
        .append(
            &plain,
            ExpectedVersion::Exact(0),
            &meta("x"),
            &[event("A", 1)],
        )
        .await
        .unwrap();

    let expected = |s: &StreamId| -> Vec<Option<TraceParent>> {
        let of = |m: &CommandMeta| m.traceparent.clone();
        if *s == one {
            vec![of(&m1)]
        } else if *s == two {
            vec![of(&m2); 2]
        } else if *s == many_a {
            vec![of(&m3); 2]
        } else if *s == many_b {
            vec![of(&m3)]
        } else if *s == batch {
            vec![of(&m4), None]
        } else {
            vec![None]
        }
    };
    for s in [&one, &two, &many_a, &many_b, &batch, &plain] {
        let read = b.store.read_stream(s, 0, 100).await.unwrap();
        let kept: Vec<_> = read
            .iter()
            .map(|e| e.metadata.traceparent.clone())
            .collect();
        assert_eq!(kept, expected(s), "read_stream of {s}");
    }
    let all = read_exactly(&*b.store, 9).await;
    for e in &all {
        let at = usize::try_from(e.stream_version - 1).unwrap();
        assert_eq!(
            e.metadata.traceparent,
            expected(&e.stream_id)[at],
            "read_all"
        );
    }
    let as_text = b.store.read_all_json(Checkpoint::START, 100).await.unwrap();
    assert_eq!(
        as_text
            .iter()
            .map(|e| &e.metadata.traceparent)
            .collect::<Vec<_>>(),
        all.iter()
            .map(|e| &e.metadata.traceparent)
            .collect::<Vec<_>>(),
        "read_all_json"
    );
    // Outside the chain: the hashes, recomputed from everything else, hold.
    let report = verify(&*b.store, 4).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
}

async fn a_subscriber_checkpoint_survives_a_restart(b: &Backend) {
    assert_eq!(b.store.load_checkpoint("relay").await.unwrap(), None);
    let first = Checkpoint {
        tx: 7,
        position: 41,
    };
    b.store.save_checkpoint("relay", first).await.unwrap();
    let later = Checkpoint {
        tx: 9,
        position: 44,
    };
    b.store.save_checkpoint("relay", later).await.unwrap();
    b.store.save_checkpoint("alerts", first).await.unwrap();
    let restarted = b.reopen().await;
    assert_eq!(
        restarted.load_checkpoint("relay").await.unwrap(),
        Some(later)
    );
    assert_eq!(
        restarted.load_checkpoint("alerts").await.unwrap(),
        Some(first)
    );
}

/// The size of the newest checkpoint recorded with the log, if any.
async fn latest_checkpoint_size(store: &dyn EventStore) -> Option<u64> {
    store
        .latest_tree_checkpoint()
        .await
        .unwrap()
        .map(|c| c.size)
}

/// Integrates until the tree has `size` leaves (on PostgreSQL, events become
/// readable in global order once older transactions of the cluster end).
async fn tree_of(store: &dyn EventStore, size: u64) -> TreeBuilder {
    let mut builder = TreeBuilder::load(store).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while builder.catch_up(store).await.unwrap() < size {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never became readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    builder
}

async fn the_stored_tree_grows_in_global_order_survives_a_restart_and_serves_proofs(b: &Backend) {
    use trellis_eventstore::merkle::{
        self, Frontier, inclusion_proof, nodes_needed, verify_inclusion,
    };
    let streams = [stream("rep"), stream("rep")];
    for n in 0..13u64 {
        append_one(&*b.store, &streams[(n % 2) as usize], n).await;
    }
    let builder = tree_of(&*b.store, 13).await;
    let events = read_exactly(&*b.store, 13).await;
    let mut expected = Frontier::new();
    for event in &events {
        expected.push(&event.hash);
    }
    assert_eq!(
        builder.root(),
        expected.root(),
        "leaves are the events in global order"
    );
    let restarted = b.reopen().await;
    let reloaded = TreeBuilder::load(&*restarted).await.unwrap();
    assert_eq!((reloaded.size(), reloaded.root()), (13, expected.root()));
    assert_eq!(reloaded.read(), events[12].checkpoint);
    // Every leaf's audit path, from the stored nodes, proves it in the root.
    let leaves = restarted.tree_leaf_range(0, 100).await.unwrap();
    assert_eq!(leaves.len(), 13);
    for (i, event) in events.iter().enumerate() {
        let (index, position, leaf) = leaves[i];
        assert_eq!((index, position), (i as u64, event.global_position));
        assert_eq!(leaf, merkle::leaf_hash(&event.hash));
        let ids = nodes_needed(|get| inclusion_proof(index, 13, get));
        let stored = restarted.tree_nodes(&ids).await.unwrap();
        let map: std::collections::HashMap<_, _> = ids
            .iter()
            .zip(stored)
            .map(|(id, h)| (*id, h.expect("stored")))
            .collect();
        let proof = inclusion_proof(index, 13, &mut |id| map[&id]);
        assert!(verify_inclusion(index, 13, &leaf, &proof, &expected.root()));
    }
}

/// A catch-up longer than one batch reads each batch while the one before it
/// is written: what it stores must be what one pass over the log gives.
async fn a_catch_up_over_several_batches_stores_every_leaf_once_in_global_order(b: &Backend) {
    use trellis_eventstore::merkle::Frontier;
    let n = 2 * TreeBuilder::BATCH + 7;
    let streams = [stream("rep"), stream("rep")];
    let mut appended = 0;
    while appended < n {
        let events: Vec<NewEvent> = (appended..n.min(appended + 500))
            .map(|i| event("Noted", i as u64))
            .collect();
        let s = &streams[appended / 500 % 2];
        let m = meta("leader-1");
        b.store
            .append(s, ExpectedVersion::Any, &m, &events)
            .await
            .expect("append");
        appended += events.len();
    }
    // Everything readable first, so that one catch-up covers it all.
    let events = read_exactly(&*b.store, n).await;
    let mut builder = TreeBuilder::load(&*b.store).await.unwrap();
    assert_eq!(builder.catch_up(&*b.store).await.unwrap(), n as u64);
    let mut expected = Frontier::new();
    for event in &events {
        expected.push(&event.hash);
    }
    assert_eq!(builder.root(), expected.root());
    assert_eq!(builder.read(), events[n - 1].checkpoint);
    let mut leaves = Vec::new();
    loop {
        let page = b
            .store
            .tree_leaf_range(leaves.len() as u64, 1_000)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        leaves.extend(page);
    }
    assert_eq!(
        leaves.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(),
        events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64, e.global_position))
            .collect::<Vec<_>>(),
        "each event is the leaf of its place in global order, once"
    );
    let reloaded = TreeBuilder::load(&*b.reopen().await).await.unwrap();
    assert_eq!(
        (reloaded.size(), reloaded.root(), reloaded.read()),
        (n as u64, expected.root(), events[n - 1].checkpoint)
    );
}

async fn a_stale_tree_builder_is_refused_and_writes_nothing(b: &Backend) {
    let s = stream("rep");
    for n in 0..3 {
        append_one(&*b.store, &s, n).await;
    }
    let mut stale = TreeBuilder::load(&*b.store).await.unwrap();
    let active = tree_of(&*b.store, 3).await;
    let leaves: Vec<trellis_eventstore::tree::Leaf> = read_exactly(&*b.store, 3)
        .await
        .iter()
        .map(trellis_eventstore::tree::Leaf::of)
        .collect();
    let err = stale.extend(&*b.store, &leaves).await.unwrap_err();
    assert!(
        err.to_string().contains("another process is building it"),
        "{err}"
    );
    assert_eq!(b.store.tree_state().await.unwrap().size, 3);
    // Reloaded, it carries on from where the other left off.
    let reloaded = TreeBuilder::load(&*b.store).await.unwrap();
    assert_eq!(reloaded.root(), active.root());
}

async fn the_stored_tree_and_its_checkpoints_refuse_update_and_delete(b: &Backend) {
    let s = stream("rep");
    // Sixteen leaves: a segment of them and the node over them.
    for n in 1..=16 {
        append_one(&*b.store, &s, n).await;
    }
    let builder = tree_of(&*b.store, 16).await;
    let key = SignerKey::generate("trellis.test/log").unwrap();
    builder
        .sign(&*b.store, &key, "trellis.test/log", Utc::now())
        .await
        .unwrap();
    for sql in [
        "UPDATE tree_nodes SET idx = 5",
        "DELETE FROM tree_nodes",
        "UPDATE tree_segments SET first_position = 5",
        "DELETE FROM tree_segments",
        "UPDATE tree_checkpoints SET note = 'x'",
        "DELETE FROM tree_checkpoints",
    ] {
        let err = b.try_modify(sql).await.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(latest_checkpoint_size(&*b.store).await, Some(16));
}

/// What a store's tree looks like when its file or database comes from before
/// the tree kept its leaves in segments: a leaf, its node and the builder's
/// read checkpoint in the old tables, and a signed checkpoint.
const OLD_TREE: &str = "INSERT INTO tree_leaves (leaf_index, global_position) VALUES (0, 1); \
     INSERT INTO tree_nodes (level, idx, hash) VALUES (0, 0, X'{hash}'); \
     INSERT INTO subscriber_checkpoints (name, tx, position, updated_at) \
         VALUES ('trellis.tree', 1, 1, 0); \
     INSERT INTO tree_checkpoints (tree_size, key_id, signed_at, note) VALUES (1, 'k', 0, 'n')";

/// After the upgrade the store keeps no tree and its builder starts from the
/// log's first event, so the tree is made again from the log; the signed
/// checkpoints stay, and the tree made again grows as any other.
async fn the_tree_is_made_again_from_the_log_after_the_upgrade(store: &dyn EventStore) {
    assert_eq!(
        store.tree_state().await.unwrap(),
        trellis_eventstore::tree::TreeState {
            size: 0,
            read: Checkpoint::START,
        }
    );
    assert_eq!(latest_checkpoint_size(store).await, Some(1));
    let s = stream("rep");
    let mut frontier = trellis_eventstore::merkle::Frontier::new();
    for n in 1..=20 {
        append_one(store, &s, n).await;
    }
    for event in store.read_stream(&s, 0, 100).await.unwrap() {
        frontier.push(&event.hash);
    }
    let builder = tree_of(store, 20).await;
    assert_eq!(builder.root(), frontier.root());
    let reloaded = TreeBuilder::load(store).await.unwrap();
    assert_eq!((reloaded.size(), reloaded.root()), (20, frontier.root()));
}

#[tokio::test]
async fn postgres_a_tree_kept_before_segments_is_made_again_from_the_log_after_the_upgrade() {
    use trellis_eventstore::postgres::{
        self, LOG_MIGRATIONS, Migrations, PostgresConfig, PostgresStore,
    };
    let db = trellis_tests::TestDatabase::create().await;
    let mut client = db.superuser().await;
    // Every migration before the one that brought segments.
    let before = Migrations {
        steps: &LOG_MIGRATIONS.steps[..8],
        ..LOG_MIGRATIONS
    };
    assert_eq!(before.steps.last().map(|s| s.1), Some("batch_seals"));
    postgres::migrate(&mut client, &before).await.unwrap();
    let old = OLD_TREE
        .replace("X'{hash}'", &format!("'\\x{}'::bytea", "ab".repeat(32)))
        .replace(
            "VALUES ('trellis.tree', 1, 1, 0)",
            "VALUES ('trellis.tree', 1, 1, now())",
        )
        .replace("'k', 0, 'n'", "'k', now(), 'n'");
    client
        .batch_execute(&format!("SET search_path = trellis; {old}"))
        .await
        .unwrap();
    drop(client);
    let store = PostgresStore::connect(&PostgresConfig::new(&db.url))
        .await
        .expect("the store applies the rest");
    the_tree_is_made_again_from_the_log_after_the_upgrade(&store).await;
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
async fn embedded_a_tree_kept_before_segments_is_made_again_from_the_log_after_the_upgrade() {
    use trellis_eventstore::sqlite::{self, FILE_NAME, LOG_MIGRATIONS, Migrations, SqliteStore};
    let dir = trellis_tests::temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    {
        let mut conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
        let before = Migrations {
            steps: &LOG_MIGRATIONS.steps[..6],
            ..LOG_MIGRATIONS
        };
        assert_eq!(before.steps.last().map(|s| s.1), Some("batch_seals"));
        sqlite::migrate(&mut conn, &before).unwrap();
        conn.execute_batch(&OLD_TREE.replace("{hash}", &"ab".repeat(32)))
            .unwrap();
    }
    let store = SqliteStore::open(&dir)
        .await
        .expect("the store applies the rest");
    the_tree_is_made_again_from_the_log_after_the_upgrade(&store).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Discarding the stored tree (`trellis audit rebuild-tree`): a builder that
/// held the old one is refused its next extension, as when another process
/// built the tree, and after reloading makes it again from the log's first
/// event: the same roots, so the checkpoint signed before still holds.
async fn a_discarded_tree_is_made_again_by_a_builder_that_reloads(
    b: &Backend,
    discard: impl std::future::Future<Output = Result<(), Error>>,
) {
    let s = stream("rep");
    for n in 0..5 {
        append_one(&*b.store, &s, n).await;
    }
    let mut builder = tree_of(&*b.store, 5).await;
    let key = SignerKey::generate("trellis.test/log").unwrap();
    let signed = builder
        .sign(&*b.store, &key, "trellis.test/log", Utc::now())
        .await
        .unwrap();
    discard.await.unwrap();
    assert_eq!(b.store.tree_state().await.unwrap().size, 0);
    assert_eq!(
        latest_checkpoint_size(&*b.store).await,
        Some(5),
        "the recorded checkpoints stay"
    );
    for n in 5..8 {
        append_one(&*b.store, &s, n).await;
    }
    trellis_tests::settle(&*b.store).await;
    let refused = builder.catch_up(&*b.store).await.unwrap_err();
    assert!(matches!(refused, Error::Unavailable(_)), "{refused}");
    let rebuilt = tree_of(&*b.store, 8).await;
    let report = trellis_eventstore::tree::verify_checkpoints(
        &*b.store,
        std::slice::from_ref(&signed),
        &[key.verifier()],
        None,
        3,
    )
    .await
    .unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.covered, report.log_size), (5, 8));
    assert_eq!(
        TreeBuilder::load(&*b.store).await.unwrap().root(),
        rebuilt.root()
    );
}

#[tokio::test]
async fn postgres_a_discarded_tree_is_made_again_by_a_builder_that_reloads() {
    use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
    let b = Backend::new(Kind::Postgres).await;
    let owner = PostgresStore::connect(&PostgresConfig::new(&b.database().url))
        .await
        .unwrap();
    a_discarded_tree_is_made_again_by_a_builder_that_reloads(&b, owner.discard_stored_tree()).await;
    drop(owner);
    b.cleanup().await;
}

#[tokio::test]
async fn embedded_a_discarded_tree_is_made_again_by_a_builder_that_reloads() {
    use trellis_eventstore::sqlite::SqliteStore;
    let b = Backend::new(Kind::Sqlite).await;
    let owner = SqliteStore::open(b.data_dir()).await.unwrap();
    a_discarded_tree_is_made_again_by_a_builder_that_reloads(&b, owner.discard_stored_tree()).await;
    drop(owner);
    b.cleanup().await;
}
