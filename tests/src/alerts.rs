//! Alerts over the scripted scenario (`trellis_alerts::testing`), on both
//! backends: each alert fires once; evaluating again, a day later, or after
//! a restart raises nothing new; with NATS each appears once on a
//! `TRELLIS_ALERTS`-like stream of the test's own.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use chrono::{Days, Utc};
use futures_util::StreamExt as _;
use trellis_alerts::testing::{self, today};
use trellis_alerts::{Evaluator, EvaluatorConfig, PublisherConfig};
use trellis_domain::{AlertEvent, Event};
use trellis_eventstore::{CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::query::ReadModels;
use trellis_tests::{Backend, Kind};
use uuid::Uuid;

use crate::http::{on_each_backend, read_store};

/// Appends the scenario and projects it; the read models of the result.
async fn scenario(backend: &Backend) -> ReadModels {
    for (stream, events) in testing::streams() {
        let new: Vec<NewEvent> = events
            .iter()
            .map(|e: &Event| {
                let on = e.occurred_on().unwrap_or(testing::date("2025-11-01"));
                NewEvent::new(
                    e.event_type(),
                    e.schema_version(),
                    e.to_payload(),
                    on.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
                )
            })
            .collect();
        backend
            .store
            .append(
                &StreamId::new(stream).expect("stream id"),
                ExpectedVersion::Exact(0),
                &CommandMeta::new("test", Utc::now()),
                &new,
            )
            .await
            .expect("append");
    }
    // Projected only once every event reads in global order: a read model
    // short of the scenario's last events would raise fewer alerts.
    trellis_tests::settle(&*backend.store).await;
    let read = read_store(backend).await;
    Engine::new(backend.store.clone(), read.clone())
        .catch_up(&Growth::new(GrowthSettings::default()))
        .await
        .expect("projected");
    ReadModels::new(read)
}

/// Every `AlertRaised` in the log, once the scenario's alerts all read
/// (on PostgreSQL, another test's open transaction can hold the readers'
/// horizon back a moment after an append commits).
async fn alerts_in_log(store: &dyn EventStore) -> Vec<trellis_domain::alert::AlertRaised> {
    let alert = |e: &trellis_eventstore::RecordedEvent| e.stream_id.category() == "alert";
    let mut events = Vec::new();
    for _ in 0..400 {
        events = store
            .read_all(trellis_eventstore::Checkpoint::START, 10_000)
            .await
            .expect("read");
        if events.iter().filter(|e| alert(e)).count() >= testing::expected().len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    events
        .into_iter()
        .filter(|e| alert(e))
        .map(|e| {
            assert_eq!(e.stream_version, 1, "one event per alert stream");
            match Event::from_stored(&e.event_type, e.schema_version, e.payload) {
                Ok(Event::Alert(AlertEvent::Raised(a))) => a,
                other => panic!("not an alert: {other:?}"),
            }
        })
        .collect()
}

fn kinds(
    alerts: &[trellis_domain::alert::AlertRaised],
) -> Vec<(trellis_domain::RepId, trellis_domain::AlertKind)> {
    let mut k: Vec<_> = alerts.iter().map(|a| (a.rep_id, a.kind())).collect();
    k.sort();
    k
}

async fn each_alert_fires_once(kind: Kind) {
    let backend = Backend::new(kind).await;
    let read = scenario(&backend).await;

    let mut evaluator = Evaluator::new(
        backend.store.clone(),
        read.clone(),
        EvaluatorConfig::default(),
    );
    let first = evaluator.evaluate(today()).await.expect("evaluate");
    assert_eq!(kinds(&first.raised), testing::expected());
    assert_eq!(first.already_raised, 0);

    let again = evaluator.evaluate(today()).await.expect("evaluate");
    assert!(again.raised.is_empty());
    assert_eq!(again.already_raised, 6);
    let tomorrow = evaluator
        .evaluate(today() + Days::new(1))
        .await
        .expect("evaluate");
    assert!(tomorrow.raised.is_empty(), "{:?}", tomorrow.raised);

    // A restart: a new evaluator over a reopened store, knowing nothing.
    let store = backend.reopen().await;
    let mut restarted = Evaluator::new(store.clone(), read.clone(), EvaluatorConfig::default());
    let after_restart = restarted.evaluate(today()).await.expect("evaluate");
    assert!(after_restart.raised.is_empty());
    assert_eq!(after_restart.already_raised, 6);

    let logged = alerts_in_log(&*store).await;
    assert_eq!(kinds(&logged), testing::expected());
    assert_eq!(logged, first.raised);

    // The occurrences still hold: they are known, not forgotten.
    let mut racing = Evaluator::new(store.clone(), read, EvaluatorConfig::default());
    let occurrences = racing.occurrences(today()).await.expect("occurrences");
    assert_eq!(occurrences.len(), 6);
    backend.cleanup().await;
}

on_each_backend!(each_alert_fires_once);

#[tokio::test]
async fn the_scheduled_evaluator_raises_once_and_stops_on_shutdown() {
    let backend = Backend::new(Kind::Sqlite).await;
    let read = scenario(&backend).await;
    let config = EvaluatorConfig {
        interval: Duration::from_millis(50),
        settle: Duration::from_millis(10),
        today: trellis_alerts::Today::from_fn(today),
        ..EvaluatorConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(trellis_alerts::run_evaluator(
        backend.store.clone(),
        read,
        config,
        async {
            let _ = stopped.await;
        },
    ));
    // Several ticks, and the wake-ups its own appends cause.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .expect("no panic");
    assert_eq!(
        kinds(&alerts_in_log(&*backend.store).await),
        testing::expected()
    );
    backend.cleanup().await;
}

fn nats_url() -> String {
    std::env::var("TRELLIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

#[tokio::test]
async fn alerts_appear_on_jetstream_once_each() {
    let backend = Backend::new(Kind::Sqlite).await;
    let read = scenario(&backend).await;
    let mut evaluator = Evaluator::new(backend.store.clone(), read, EvaluatorConfig::default());
    evaluator.evaluate(today()).await.expect("evaluate");

    let tag = Uuid::now_v7().simple().to_string();
    let tag = tag[tag.len() - 12..].to_owned();
    let config =
        PublisherConfig::for_stream(format!("TEST_ALERTS_{tag}"), format!("test.{tag}.alerts"));
    let client = async_nats::connect(nats_url())
        .await
        .expect("nats-server is running (tests/run)");
    let js = jetstream::new(client.clone());

    // Publish, stop, start again from the checkpoint (and once more from
    // scratch: the duplicate window drops what was published).
    for round in 0..2 {
        if round == 1 {
            backend
                .store
                .save_checkpoint(
                    &config.checkpoint_name,
                    trellis_eventstore::Checkpoint::START,
                )
                .await
                .expect("reset checkpoint");
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(trellis_alerts::run_publisher(
            backend.store.clone(),
            client.clone(),
            config.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = js.get_stream(&config.stream).await {
                let info = stream.info().await.expect("info");
                if info.state.messages >= 6 {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "alerts not published"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The publisher went through the log again (in round 1, from the
        // start): its checkpoint moved past the start.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let saved = backend
                .store
                .load_checkpoint(&config.checkpoint_name)
                .await
                .expect("checkpoint");
            if saved.is_some_and(|c| c != trellis_eventstore::Checkpoint::START) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: the publisher never got through the log"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(());
        task.await.expect("no panic");
    }

    let stream = js.get_stream(&config.stream).await.expect("stream");
    let consumer = stream
        .create_consumer(pull::Config::default())
        .await
        .expect("consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .expect("fetch");
    let mut received = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let (envelope, event) =
            trellis_contracts::decode_envelope(&message.payload).expect("an envelope");
        let Event::Alert(AlertEvent::Raised(alert)) = event else {
            panic!("not an alert")
        };
        assert_eq!(
            message.subject.as_str(),
            format!("test.{tag}.alerts.{}.{}", alert.team_id, alert.kind())
        );
        let headers = message.headers.as_ref().expect("headers");
        assert_eq!(
            headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()),
            Some(envelope.event_id.clone())
        );
        received.push(alert);
    }
    assert_eq!(kinds(&received), testing::expected());
    js.delete_stream(&config.stream)
        .await
        .expect("delete stream");
    backend.cleanup().await;
}

#[tokio::test]
async fn one_alerts_publisher_is_active_and_a_standby_takes_over_when_it_stops() {
    let backend = Backend::new(Kind::Postgres).await;
    let read = scenario(&backend).await;
    let mut evaluator = Evaluator::new(backend.store.clone(), read, EvaluatorConfig::default());
    evaluator.evaluate(today()).await.expect("evaluate");

    let tag = Uuid::now_v7().simple().to_string();
    let tag = tag[tag.len() - 12..].to_owned();
    let client = async_nats::connect(nats_url())
        .await
        .expect("nats-server is running (tests/run)");
    let js = jetstream::new(client.clone());
    // Two publishers of one stream, each with a checkpoint of its own: only
    // the active one moves its checkpoint.
    let base =
        PublisherConfig::for_stream(format!("TEST_ALERTS_{tag}"), format!("test.{tag}.alerts"))
            .with_postgres_lease(&backend.database().url);
    let config = |name: &str| PublisherConfig {
        checkpoint_name: format!("alerts-publisher:{tag}:{name}"),
        standby_retry: Duration::from_millis(100),
        ..base.clone()
    };
    let (a, b) = (config("a"), config("b"));
    let start = |config: PublisherConfig| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(trellis_alerts::run_publisher(
            backend.store.clone(),
            client.clone(),
            config,
            async {
                let _ = stopped.await;
            },
        ));
        (stop, task)
    };
    let saved = |config: &PublisherConfig| {
        let (store, name) = (backend.store.clone(), config.checkpoint_name.clone());
        async move { store.load_checkpoint(&name).await.expect("checkpoint") }
    };
    let wait_until_saved = |config: PublisherConfig| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while saved(&config).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never published",
                config.checkpoint_name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let (stop_a, task_a) = start(a.clone());
    wait_until_saved(a.clone()).await;
    let (stop_b, task_b) = start(b.clone());
    // Many standby retries later, b has still published nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        saved(&b).await,
        None,
        "the standby published while a was active"
    );

    // a stops (its session, and with it the lock, ends): b takes over.
    let _ = stop_a.send(());
    task_a.await.expect("no panic");
    wait_until_saved(b.clone()).await;
    let _ = stop_b.send(());
    task_b.await.expect("no panic");

    let info = js
        .get_stream(&base.stream)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(info as usize, testing::expected().len(), "each alert once");
    js.delete_stream(&base.stream).await.expect("delete stream");
    backend.cleanup().await;
}
