//! Group commit: several commands in one transaction and one commit, each
//! answered on its own, with every invariant of the log kept (the
//! conformance suite also runs whole through [`GroupCommit`], in
//! `eventstore.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;
use trellis_eventstore::{
    AppendOutcome, AppendRequest, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion,
    GroupCommit, GroupCommitConfig, NewEvent, RecordedEvent, StreamId, verify,
};
use trellis_tests::{Backend, Kind, stream};

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "Noted",
        1,
        json!({ "n": n }),
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap(),
    )
}

fn request(stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        expected,
        meta: CommandMeta::new("leader-1", Utc::now()),
        events,
    }
}

/// The whole log, once `count` events are readable: a reader waits for
/// transactions still running anywhere in the cluster (other tests')
/// before it may read past them (ADR 1).
async fn everything(store: &dyn EventStore, count: usize) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Checkpoint::START;
    for _ in 0..2_000 {
        let batch = store.read_all(after, 1000).await.expect("read_all");
        match batch.last() {
            Some(last) => after = last.checkpoint,
            None if all.len() >= count => return all,
            None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
        all.extend(batch);
    }
    panic!("only {} of {count} events became readable", all.len());
}

/// Each stream's events appear in the global order by version, 1, 2, 3...
/// with none missing, and every chain verifies.
async fn assert_log_is_sound(store: &dyn EventStore, count: usize) -> Vec<RecordedEvent> {
    let all = everything(store, count).await;
    assert_eq!(all.len(), count, "every event recorded, none twice");
    let mut next: HashMap<&StreamId, u64> = HashMap::new();
    for e in &all {
        let expected = next.entry(&e.stream_id).or_insert(1);
        assert_eq!(
            e.stream_version, *expected,
            "stream {} out of order in the global order",
            e.stream_id
        );
        *expected += 1;
    }
    let report = verify(store, 500).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    all
}

fn done(outcome: &Result<AppendOutcome, Error>) -> &AppendOutcome {
    outcome.as_ref().expect("the command was recorded")
}

/// One batch of neighbours: a stale version, a replayed command id, bad
/// input, two commands to one stream, a command of three events. Each gets
/// what `append` alone would have answered, and the ones that wrote share
/// one transaction.
async fn a_batch_answers_each_command_as_if_it_were_alone(kind: Kind) {
    let b = Backend::new(kind).await;
    let (a, stale, replayed, multi, any) = (
        stream("rep"),
        stream("rep"),
        stream("rep"),
        stream("rep"),
        stream("rep"),
    );
    let earlier = request(&replayed, ExpectedVersion::Exact(0), vec![event(0)]);
    let first = b
        .store
        .append(
            &earlier.stream,
            earlier.expected,
            &earlier.meta,
            &earlier.events,
        )
        .await
        .unwrap();

    let requests = vec![
        request(&a, ExpectedVersion::Exact(0), vec![event(1)]),
        request(&stale, ExpectedVersion::Exact(5), vec![event(2)]),
        request(&a, ExpectedVersion::Exact(1), vec![event(3)]),
        // The same command again, even with another event: recorded once.
        AppendRequest {
            events: vec![event(99)],
            ..earlier.clone()
        },
        request(
            &multi,
            ExpectedVersion::Exact(0),
            vec![event(4), event(5), event(6)],
        ),
        request(&any, ExpectedVersion::Any, vec![]),
        request(&any, ExpectedVersion::Any, vec![event(7)]),
    ];
    let outcomes = b.store.append_batch(requests.clone()).await;
    assert_eq!(outcomes.len(), requests.len());

    assert_eq!(done(&outcomes[0]).stream_version, 1);
    assert!(!done(&outcomes[0]).replayed);
    match &outcomes[1] {
        Err(Error::Conflict {
            stream, current, ..
        }) => {
            assert_eq!(stream, &stale);
            assert_eq!(*current, 0);
        }
        other => panic!("a stale version must be a conflict, not {other:?}"),
    }
    assert_eq!(done(&outcomes[2]).stream_version, 2, "sees its neighbour");
    assert!(done(&outcomes[3]).replayed);
    assert_eq!(done(&outcomes[3]).first_position, first.first_position);
    assert_eq!(done(&outcomes[4]).stream_version, 3);
    assert_eq!(
        done(&outcomes[4]).last_position - done(&outcomes[4]).first_position,
        2
    );
    match &outcomes[5] {
        Err(Error::InvalidInput(why)) => assert!(why.contains("at least one event"), "{why}"),
        other => panic!("an empty append must be refused, not {other:?}"),
    }
    assert_eq!(done(&outcomes[6]).stream_version, 1);

    // Each stream in order (`assert_log_is_sound`); commands of one batch
    // to different streams were concurrent, and the log may order them
    // either way (PostgreSQL writes the one-event commands first).
    let all = assert_log_is_sound(&*b.store, 7).await;
    let mut ns: Vec<u64> = all
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(
        ns,
        [0, 1, 3, 4, 5, 6, 7],
        "nothing of the stale or replayed"
    );
    assert_eq!(b.store.stream_version(&stale).await.unwrap(), 0);
    if kind == Kind::Postgres {
        // One transaction: every event the batch wrote has its id.
        let txs: HashSet<u64> = all[1..].iter().map(|e| e.checkpoint.tx).collect();
        assert_eq!(txs.len(), 1, "the batch took one commit: {txs:?}");
    }
    b.cleanup().await;
}

crate::http::on_each_backend!(a_batch_answers_each_command_as_if_it_were_alone);

/// A command that fails half way (its second event reuses an id the log
/// holds) records none of its events; its neighbours are recorded.
async fn a_command_failing_in_a_batch_records_nothing_and_spares_its_neighbours(kind: Kind) {
    let b = Backend::new(kind).await;
    let taken = event(0);
    b.store
        .append(
            &stream("rep"),
            ExpectedVersion::Any,
            &CommandMeta::new("leader-1", Utc::now()),
            std::slice::from_ref(&taken),
        )
        .await
        .unwrap();
    let (before, broken, after) = (stream("rep"), stream("rep"), stream("rep"));
    let outcomes = b
        .store
        .append_batch(vec![
            request(&before, ExpectedVersion::Exact(0), vec![event(1)]),
            request(&broken, ExpectedVersion::Exact(0), vec![event(2), taken]),
            request(&after, ExpectedVersion::Exact(0), vec![event(3)]),
        ])
        .await;
    assert_eq!(done(&outcomes[0]).stream_version, 1);
    let error = outcomes[1]
        .as_ref()
        .expect_err("a reused event id is refused");
    assert!(
        error.to_string().contains("event id"),
        "the error names the event id: {error}"
    );
    assert_eq!(done(&outcomes[2]).stream_version, 1);
    assert_eq!(b.store.stream_version(&broken).await.unwrap(), 0);
    let ns: Vec<u64> = assert_log_is_sound(&*b.store, 3)
        .await
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 3]);
    b.cleanup().await;
}

crate::http::on_each_backend!(
    a_command_failing_in_a_batch_records_nothing_and_spares_its_neighbours
);

/// On PostgreSQL a batch's one-event commands on distinct streams go in one
/// statement (`trellis.append_batch`), so their rows share the statement's
/// command counter within the transaction (`cmin`); a stream's second
/// command and a command of several events follow, one statement each.
#[tokio::test]
async fn a_batch_writes_its_one_event_commands_in_one_statement_on_postgres() {
    let b = Backend::postgres().await;
    let (a, multi, c) = (stream("rep"), stream("rep"), stream("rep"));
    let outcomes = b
        .store
        .append_batch(vec![
            request(&a, ExpectedVersion::Exact(0), vec![event(1)]),
            request(&multi, ExpectedVersion::Exact(0), vec![event(2), event(3)]),
            request(&a, ExpectedVersion::Exact(1), vec![event(4)]),
            request(&c, ExpectedVersion::Exact(0), vec![event(5)]),
        ])
        .await;
    for outcome in &outcomes {
        done(outcome);
    }
    let client = b.database().superuser().await;
    let statement_of: HashMap<i64, i64> = client
        .query(
            "SELECT (payload->>'n')::bigint, cmin::text::bigint FROM trellis.events",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(statement_of.len(), 5, "{statement_of:?}");
    assert_eq!(
        statement_of[&1], statement_of[&5],
        "the first commands of two streams in one statement: {statement_of:?}"
    );
    assert_eq!(statement_of[&2], statement_of[&3], "{statement_of:?}");
    let statements: HashSet<i64> = [1, 2, 4].iter().map(|n| statement_of[n]).collect();
    assert_eq!(
        statements.len(),
        3,
        "the command of two events and the stream's second command each in a statement of its own: {statement_of:?}"
    );
    b.cleanup().await;
}

/// One command id twice in a batch, on two streams (a client retrying
/// while its first try still queues): recorded once, the retry answered as
/// the replay of the first, and the neighbours recorded.
async fn a_command_id_twice_in_one_batch_is_recorded_once(kind: Kind) {
    let b = Backend::new(kind).await;
    let (first_stream, retry_stream, other) = (stream("rep"), stream("rep"), stream("rep"));
    let first = request(&first_stream, ExpectedVersion::Exact(0), vec![event(1)]);
    let retry = AppendRequest {
        stream: retry_stream.clone(),
        events: vec![event(2)],
        ..first.clone()
    };
    let outcomes = b
        .store
        .append_batch(vec![
            first,
            retry,
            request(&other, ExpectedVersion::Exact(0), vec![event(3)]),
        ])
        .await;
    assert!(!done(&outcomes[0]).replayed);
    assert!(done(&outcomes[1]).replayed, "{:?}", outcomes[1]);
    assert_eq!(
        done(&outcomes[1]).first_position,
        done(&outcomes[0]).first_position,
        "the retry is answered with the first try's event"
    );
    assert_eq!(done(&outcomes[2]).stream_version, 1);
    assert_eq!(b.store.stream_version(&retry_stream).await.unwrap(), 0);
    let mut ns: Vec<u64> = assert_log_is_sound(&*b.store, 2)
        .await
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, [1, 3]);
    b.cleanup().await;
}

crate::http::on_each_backend!(a_command_id_twice_in_one_batch_is_recorded_once);

/// Many writers in two processes (two stores, each grouping its own
/// appends) write to the same few streams, some retrying a command: the
/// appends were grouped, nothing was lost or doubled, every stream's
/// versions follow the global order, and every chain verifies.
async fn writers_in_two_processes_share_commits_and_keep_every_invariant(kind: Kind) {
    const WRITERS: usize = 24;
    const PER_WRITER: usize = 25;
    let b = Backend::new(kind).await;
    let config = GroupCommitConfig {
        max_batch: 16,
        max_in_flight: 2,
    };
    let processes = [
        GroupCommit::new(b.store.clone(), config),
        GroupCommit::new(b.reopen().await, config),
    ];
    let streams: Arc<Vec<StreamId>> = Arc::new((0..6).map(|_| stream("rep")).collect());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = processes[w % 2].clone();
        let streams = streams.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let s = &streams[(w + i) % streams.len()];
                let meta = CommandMeta::new("writer", Utc::now());
                let n = (w * PER_WRITER + i) as u64;
                let first = store
                    .append(s, ExpectedVersion::Any, &meta, &[event(n)])
                    .await
                    .expect("append");
                if i % 5 == 0 {
                    // A client retrying the same command: recorded once.
                    let again = store
                        .append(s, ExpectedVersion::Any, &meta, &[event(n)])
                        .await
                        .expect("retry");
                    assert!(again.replayed);
                    assert_eq!(again.first_position, first.first_position);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = assert_log_is_sound(&*b.store, WRITERS * PER_WRITER).await;
    let ns: HashSet<u64> = all
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns.len(), WRITERS * PER_WRITER, "no event twice");
    let stats: Vec<_> = processes.iter().map(GroupCommit::stats).collect();
    let commands: u64 = stats.iter().map(|s| s.commands).sum();
    let batches: u64 = stats.iter().map(|s| s.batches).sum();
    assert_eq!(commands as usize, WRITERS * PER_WRITER * 6 / 5);
    assert!(
        batches < commands,
        "concurrent appends were grouped: {stats:?}"
    );
    b.cleanup().await;
}

crate::http::on_each_backend!(
    multi_thread: writers_in_two_processes_share_commits_and_keep_every_invariant
);

/// Eight writers through one batch slot, each appending as soon as it is
/// answered: the batch that answered them waits (briefly) for them to come
/// back, so they share commits about eight at a time. Without that wait the
/// first to come back goes alone and the other seven wait a whole commit:
/// batches alternate between a few and the rest, four a commit on average.
async fn writers_answered_together_come_back_to_one_commit(kind: Kind) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 40;
    let b = Backend::new(kind).await;
    let group = GroupCommit::new(b.store.clone(), GroupCommitConfig::single_writer());
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let store = group.clone();
        tasks.push(tokio::spawn(async move {
            let s = stream("rep");
            for i in 0..PER_WRITER as u64 {
                let meta = CommandMeta::new("writer", Utc::now());
                store
                    .append(&s, ExpectedVersion::Exact(i), &meta, &[event(i)])
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_log_is_sound(&*b.store, WRITERS * PER_WRITER).await;
    let stats = group.stats();
    assert_eq!(stats.commands as usize, WRITERS * PER_WRITER);
    let per_commit = stats.commands as f64 / stats.batches as f64;
    assert!(
        per_commit > 5.5,
        "eight writers shared commits {per_commit:.2} at a time: {stats:?}"
    );
    b.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: writers_answered_together_come_back_to_one_commit);

/// A command that finds nothing queued and a slot free goes to the store on
/// its caller's own task, once, counted as a batch of one: no batch task to
/// wake and answer it. (One that queues behind a running command is sealed
/// as it queues and goes in a batch: the store's unit test
/// `a_command_through_group_commit_is_written_with_the_seal_made_as_it_queued`.)
async fn a_command_alone_is_appended_on_its_callers_task(kind: Kind) {
    let b = Backend::new(kind).await;
    let counted = trellis_tests::CountingStore::new(b.store.clone());
    let group = GroupCommit::new(counted.clone(), GroupCommitConfig::single_writer());
    let s = stream("rep");
    let (store, at) = (group.clone(), s.clone());
    let (caller, outcome) = tokio::spawn(async move {
        let meta = CommandMeta::new("leader-1", Utc::now());
        let outcome = store
            .append(&at, ExpectedVersion::Exact(0), &meta, &[event(1)])
            .await;
        (tokio::task::id(), outcome)
    })
    .await
    .unwrap();
    assert_eq!(done(&outcome).stream_version, 1);
    assert_eq!(counted.append_tasks(), [Some(caller)]);
    assert_eq!(group.stats().batches, 1);
    b.cleanup().await;
}

/// A caller alone that stops waiting (a client gone, a timeout) gives its
/// slot and its stream back: the next command, on the same stream, goes.
async fn a_caller_alone_that_stops_waiting_frees_the_slot_and_the_stream(kind: Kind) {
    let b = Backend::new(kind).await;
    let counted = trellis_tests::CountingStore::new(b.store.clone());
    let group = GroupCommit::new(counted.clone(), GroupCommitConfig::single_writer());
    let s = stream("rep");
    counted.stall_next_append();
    let meta = CommandMeta::new("leader-1", Utc::now());
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        group.append(&s, ExpectedVersion::Exact(0), &meta, &[event(1)]),
    )
    .await;
    assert!(gave_up.is_err(), "the stalled append finished: {gave_up:?}");
    let meta = CommandMeta::new("leader-1", Utc::now());
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        group.append(&s, ExpectedVersion::Exact(0), &meta, &[event(2)]),
    )
    .await
    .expect("the next command waited for a slot nobody gave back");
    assert_eq!(done(&next).stream_version, 1);
    assert_log_is_sound(&*b.store, 1).await;
    b.cleanup().await;
}

/// A command alone whose caller is dropped where no runtime runs (a
/// future held by a thread that outlived its runtime) cannot start a batch
/// for the commands that queued behind it: they hear that the group commit
/// stopped, nothing of theirs is written, and the slot and their streams
/// are given back, so the next command goes through.
fn a_command_alone_dropped_outside_any_runtime_answers_those_queued_behind_it(kind: Kind) {
    use std::time::Duration;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let b = runtime.block_on(Backend::new(kind));
    let counted = trellis_tests::CountingStore::new(b.store.clone());
    let group = Arc::new(GroupCommit::new(
        counted.clone(),
        GroupCommitConfig::single_writer(),
    ));
    let (alone_stream, queued_stream) = (stream("rep"), stream("rep"));
    counted.stall_next_append();
    let mut alone = Box::pin({
        let group = group.clone();
        async move {
            let meta = CommandMeta::new("leader-1", Utc::now());
            group
                .append(&alone_stream, ExpectedVersion::Exact(0), &meta, &[event(1)])
                .await
        }
    });
    runtime.block_on(async {
        // Polled once, it holds the only slot and stalls in the store.
        let polled = tokio::time::timeout(Duration::from_millis(20), &mut alone).await;
        assert!(polled.is_err(), "the stalled append finished: {polled:?}");
    });
    let queued = runtime.spawn({
        let (group, s) = (group.clone(), queued_stream.clone());
        async move {
            let meta = CommandMeta::new("leader-1", Utc::now());
            group
                .append(&s, ExpectedVersion::Exact(0), &meta, &[event(2)])
                .await
        }
    });
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    assert!(!queued.is_finished(), "the second command did not queue");
    drop(alone);
    let answer = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), queued).await })
        .expect("the queued command was never answered")
        .expect("the queued command's task panicked");
    let said = answer.expect_err("the queued command was recorded with no runtime to run it");
    assert!(
        said.to_string().contains("stopped before answering"),
        "{said}"
    );
    runtime.block_on(async {
        let meta = CommandMeta::new("leader-1", Utc::now());
        let next = tokio::time::timeout(
            Duration::from_secs(10),
            group.append(
                &queued_stream,
                ExpectedVersion::Exact(0),
                &meta,
                &[event(3)],
            ),
        )
        .await
        .expect("the next command waited for a slot or a stream nobody gave back");
        assert_eq!(done(&next).stream_version, 1);
        let all = assert_log_is_sound(&*b.store, 1).await;
        assert_eq!(
            all[0].payload,
            json!({ "n": 3 }),
            "only the next command is written"
        );
        b.cleanup().await;
    });
}

mod a_command_alone_dropped_outside_any_runtime_answers_those_queued_behind_it {
    #[test]
    fn postgres() {
        super::a_command_alone_dropped_outside_any_runtime_answers_those_queued_behind_it(
            trellis_tests::Kind::Postgres,
        );
    }

    #[test]
    fn sqlite() {
        super::a_command_alone_dropped_outside_any_runtime_answers_those_queued_behind_it(
            trellis_tests::Kind::Sqlite,
        );
    }
}

crate::http::on_each_backend!(
    multi_thread: a_command_alone_is_appended_on_its_callers_task,
    a_caller_alone_that_stops_waiting_frees_the_slot_and_the_stream,
);
