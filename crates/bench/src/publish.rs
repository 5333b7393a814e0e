//! `publish`: the relay (log → JetStream) measured against raw pipelined
//! publishes of the same messages, and the end-to-end latency from an HTTP
//! command to a JetStream subscriber.
//!
//! Runs on PostgreSQL (a database of its own, dropped at the end) and the
//! NATS server of `--nats-url`, on streams of its own (`BENCH_*_<tag>`,
//! deleted at the end).
//!
//! - `relay`: the log is filled with `--publish-events` valid `FeedbackGiven`
//!   events (250 per append, 4 writers, 2,000 rep streams). Baseline: every
//!   event is read and encoded up front (subject, headers, protobuf envelope,
//!   exactly what the relay sends, down to the `Nats-Expected-Last-Msg-Id`
//!   that names the previous event), then published with async-nats' JetStream
//!   API (`jetstream::Context::publish_with_headers`, as another service would
//!   publish), pipelined with the relay's window of unacknowledged publishes,
//!   every ack awaited in order, into a fresh stream with the relay's settings.
//!   (The relay publishes through the same client but takes its acks on one
//!   subscription of its own: ADR 6.) Trellis: a relay
//!   started on a fresh stream with no checkpoint, timed from its start until
//!   the broker has acknowledged the whole backlog (reading the log, encoding,
//!   publishing, checkpointing). First an untimed warm-up (20,000 raw
//!   publishes), then four blocks of four rounds back to back: raw, relay,
//!   relay, raw. Within a block each side goes first once, so a machine
//!   speeding up or slowing down weighs on both sides alike, and the block's
//!   ratio is the geometric mean of its two pairs' ratios. The ratio is the
//!   median of the four blocks' ratios: this machine's speed drifts by a
//!   quarter within seconds, and a slow spell that hits one round then moves
//!   one block, not the result. (The pooled ratio, all events over all time
//!   of each side, is printed beside it.) Each round also
//!   prints the CPU time the bench process, nats-server and PostgreSQL used
//!   in it: the relay's own work (reading the log and encoding) runs on the
//!   same cores as the broker it feeds.
//! - `e2e`: the command service of `trellis serve` on a loopback port of
//!   this process and a relay caught up with the log; feedback commands
//!   (`POST /v1/reps/{rep}/feedback`, one event each) at a steady 500/s for
//!   `max(--seconds, 10)` s, over 8 keep-alive HTTP connections; a
//!   subscriber written as another service would write it (a JetStream pull
//!   consumer, deliver new, decoding each protobuf envelope) receives them.
//!   The latency of a command is from just before its request is written to
//!   the moment the subscriber has the event (matched by correlation id, the
//!   request's `X-Request-Id`); the first second is a warm-up and not counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use chrono::{NaiveDate, Utc};
use futures_util::StreamExt as _;
use trellis_domain::Event;
use trellis_domain::rep::{FeedbackGiven, FeedbackKind, Visibility};
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{
    Checkpoint, CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use trellis_notifications::message::{Encoder, Outgoing};
use trellis_notifications::{RelayConfig, ensure_stream};
use uuid::Uuid;

use crate::baseline::BenchDatabase;
use crate::http::{CommandService, Http};
use crate::workload::{Report, Tally};

/// Steady append rate of the latency measurement.
const RATE: u64 = 500;
/// Blocks of rounds: raw, relay, relay, raw.
const BLOCKS: usize = 4;
/// Messages published before the timed rounds.
const WARM_UP: usize = 20_000;

/// The two sides of a round; the index of each in a pair's rates.
#[derive(Clone, Copy)]
enum Side {
    Raw = 0,
    Relay = 1,
}

/// Runs the `publish` scenario and prints its report (last lines
/// `ratios: relay=…` and `latency_ms: e2e_p50=… e2e_p99=…`).
pub async fn main(
    database_url: &str,
    nats_url: &str,
    events: u64,
    seconds: Duration,
) -> Result<()> {
    let db = BenchDatabase::create(database_url).await?;
    println!("postgres: database {}", db.name());
    let mut report = Report::default();
    let outcome = tokio::select! {
        outcome = run(&db, nats_url, events, seconds, &mut report) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    db.drop_now().await;
    outcome.context("the publish benchmark failed")?;
    println!("{}", report.ratios_line());
    if let Some(line) = report.latency_line() {
        println!("{line}");
    }
    Ok(())
}

async fn run(
    db: &BenchDatabase,
    nats_url: &str,
    events: u64,
    seconds: Duration,
    report: &mut Report,
) -> Result<()> {
    let store: Arc<dyn EventStore> = Arc::new(
        PostgresStore::connect(&PostgresConfig {
            url: db.conninfo(),
            pool_size: 16,
        })
        .await
        .context("failed to open the PostgreSQL store")?,
    );
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("failed to connect to NATS at {nats_url}"))?;
    let js = jetstream::new(client.clone());
    let tag = Uuid::now_v7().simple().to_string()[20..].to_owned();
    println!("nats: {nats_url}, streams BENCH_*_{tag}");

    let filled = fill(&store, events).await?;
    println!(
        "fill: {} events in {:.1} s",
        filled.events,
        filled.elapsed.as_secs_f64()
    );

    let base = base_config(&tag);
    let messages = Arc::new(encode_log(&store, &base.subject_prefix, &base.source).await?);
    println!("raw: {} messages encoded up front", messages.len());

    // Untimed: the first publishes to a freshly started nats-server, and
    // through this process's client, run slower than the rest (the server's
    // heap and store, the connection's buffers); no timed round should pay
    // for that. (The relay connects anew in each of its rounds, as it does
    // when it starts; that is part of its time.)
    let warm_up = messages[..messages.len().min(WARM_UP)].to_vec();
    let mut config = base.clone();
    config.stream = format!("BENCH_WARM_{tag}");
    raw_publish(&js, &config, warm_up).await?;

    let mut raw = Tally::default();
    let mut relay = Tally::default();
    let mut block_ratios = Vec::with_capacity(BLOCKS);
    let mut first_pair = 0.0;
    for pair in 0..2 * BLOCKS {
        // A block is two pairs: raw first, then relay first. A machine that
        // speeds up or slows down during it weighs on both sides alike.
        let (first, second) = if pair % 2 == 0 {
            (Side::Raw, Side::Relay)
        } else {
            (Side::Relay, Side::Raw)
        };
        let mut rates = [0.0; 2];
        for side in [first, second] {
            // The raw side's copy to move from is made before its CPU is counted.
            let mut copy = matches!(side, Side::Raw).then(|| messages.to_vec());
            let cpu = CpuUse::now();
            let tally = match (side, copy.take()) {
                (Side::Raw, Some(copy)) => raw_round(&js, &base, &tag, pair, copy).await?,
                _ => {
                    let mut config = base.clone();
                    config.stream = format!("BENCH_RELAY_{tag}_{pair}");
                    config.subject_prefix = format!("bench.{tag}.relay{pair}");
                    config.checkpoint_name = format!("relay:{}", config.stream);
                    relay_publish(&store, nats_url, &js, &config, events).await?
                }
            };
            let (name, total) = match side {
                Side::Raw => ("raw", &mut raw),
                Side::Relay => ("relay", &mut relay),
            };
            println!(
                "  round {pair} {name:<6} {:>10.0} events/s, {}",
                tally.rate(),
                cpu.since()
            );
            rates[side as usize] = tally.rate();
            total.add(tally);
        }
        let ratio = rates[Side::Relay as usize] / rates[Side::Raw as usize].max(1e-9);
        println!("  round {pair} ratio  {ratio:>10.2}");
        if pair % 2 == 0 {
            first_pair = ratio;
        } else {
            // The geometric mean of the block's two pairs.
            let block = (first_pair * ratio).sqrt();
            println!("  block {}       {block:>10.2}", pair / 2);
            block_ratios.push(block);
        }
    }
    report.record_blocks(
        "relay",
        "raw pipelined publishes, acks awaited",
        raw,
        "relay from a backlog",
        relay,
        &block_ratios,
    );

    let (p50, p99, samples) = latency(&store, nats_url, &js, &base, &tag, seconds).await?;
    println!(
        "e2e              trellis   {samples} commands at {RATE}/s over HTTP to a subscriber: \
         p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    report.latency("e2e_p50", p50);
    report.latency("e2e_p99", p99);
    Ok(())
}

fn base_config(tag: &str) -> RelayConfig {
    let mut config = RelayConfig::for_stream(format!("BENCH_{tag}"), format!("bench.{tag}.raw"));
    config.source = "urn:trellis:bench".into();
    config
}

fn feedback() -> NewEvent {
    let event: Event = FeedbackGiven {
        feedback_id: Uuid::now_v7().into(),
        leader_id: Uuid::now_v7().into(),
        competency_id: Uuid::now_v7().into(),
        kind: FeedbackKind::Constructive,
        note: "Restated the customer's goals before the demo and asked two sharp follow-ups \
               about budget timing."
            .try_into()
            .expect("a valid note"),
        visibility: Visibility::Shared,
        given_on: NaiveDate::from_ymd_opt(2026, 3, 2).expect("a date"),
    }
    .into();
    NewEvent::new(
        event.event_type(),
        event.schema_version(),
        event.to_payload(),
        Utc::now(),
    )
}

/// Appends `target` valid domain events: 4 writers, 250 per append.
async fn fill(store: &Arc<dyn EventStore>, target: u64) -> Result<Tally> {
    const WRITERS: u64 = 4;
    const PER_APPEND: u64 = 250;
    const STREAMS_PER_WRITER: usize = 500;
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let mine = (target / WRITERS) + u64::from(w < target % WRITERS);
        handles.push(tokio::spawn(async move {
            let streams: Vec<StreamId> = (0..STREAMS_PER_WRITER)
                .map(|_| StreamId::for_entity("rep", Uuid::now_v7()))
                .collect::<Result<_, _>>()?;
            let mut done = 0u64;
            let mut i = 0usize;
            while done < mine {
                let n = PER_APPEND.min(mine - done);
                let events: Vec<NewEvent> = (0..n).map(|_| feedback()).collect();
                store
                    .append(
                        &streams[i % streams.len()],
                        ExpectedVersion::Any,
                        &CommandMeta::new("user-bench", Utc::now()),
                        &events,
                    )
                    .await?;
                done += n;
                i += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut events = 0;
    for handle in handles {
        events += handle.await.context("a filling writer panicked")??;
    }
    Ok(Tally {
        events,
        elapsed: start.elapsed(),
    })
}

/// Every event of the log as the relay would send it.
async fn encode_log(
    store: &Arc<dyn EventStore>,
    prefix: &str,
    source: &str,
) -> Result<Vec<Outgoing>> {
    let encoder = Encoder::new(prefix, source);
    let mut out = Vec::new();
    let mut after = Checkpoint::START;
    let (mut reading, mut encoding) = (Duration::ZERO, Duration::ZERO);
    loop {
        let start = Instant::now();
        let page = store.read_all_json(after, 1000).await?;
        reading += start.elapsed();
        let Some(last) = page.last() else { break };
        after = last.checkpoint;
        let start = Instant::now();
        for event in page {
            out.push(encoder.encode(event)?);
        }
        encoding += start.elapsed();
    }
    println!(
        "log: read in {:.2} s, encoded in {:.2} s (what the relay does besides publishing)",
        reading.as_secs_f64(),
        encoding.as_secs_f64()
    );
    Ok(out)
}

/// One raw round: the messages' own subjects, into a stream of its own
/// (deleted after the round), on a worker thread like the relay (not on the
/// runtime's main thread).
async fn raw_round(
    js: &jetstream::Context,
    base: &RelayConfig,
    tag: &str,
    pair: usize,
    messages: Vec<Outgoing>,
) -> Result<Tally> {
    let mut config = base.clone();
    config.stream = format!("BENCH_RAW_{tag}_{pair}");
    let js = js.clone();
    tokio::spawn(async move { raw_publish(&js, &config, messages).await })
        .await
        .context("the raw publisher panicked")?
}

/// Pipelined publishes of `messages` with at most `max_in_flight` awaiting
/// their ack, acks awaited in order.
async fn raw_publish(
    js: &jetstream::Context,
    config: &RelayConfig,
    messages: Vec<Outgoing>,
) -> Result<Tally> {
    let total = messages.len() as u64;
    let js = jetstream::ContextBuilder::new()
        .timeout(config.ack_timeout)
        .max_ack_inflight(config.max_in_flight + 100)
        .build(js.client());
    ensure_stream(&js, config).await?;
    let start = Instant::now();
    let mut in_flight = std::collections::VecDeque::with_capacity(config.max_in_flight);
    let mut previous = None;
    for mut message in messages {
        // The relay's headers to the byte, the chain header included: each
        // publish names the one before it (`Nats-Expected-Last-Msg-Id`).
        let headers = message.take_headers(&config.source, previous.take());
        previous = Some(message.msg_id());
        if in_flight.len() >= config.max_in_flight {
            let ack: jetstream::context::PublishAckFuture =
                in_flight.pop_front().expect("one in flight");
            ack.await?;
        }
        in_flight.push_back(
            js.publish_with_headers(message.subject, headers, message.body)
                .await?,
        );
    }
    for ack in in_flight {
        ack.await?;
    }
    let elapsed = start.elapsed();
    let _ = js.delete_stream(&config.stream).await;
    Ok(Tally {
        events: total,
        elapsed,
    })
}

async fn relay_publish(
    store: &Arc<dyn EventStore>,
    nats_url: &str,
    js: &jetstream::Context,
    config: &RelayConfig,
    events: u64,
) -> Result<Tally> {
    let start = Instant::now();
    let relay = trellis_notifications::spawn(store.clone(), nats_url, config.clone())?;
    relay.wait_acked(events).await;
    let elapsed = start.elapsed();
    relay.stop().await?;
    let _ = js.delete_stream(&config.stream).await;
    Ok(Tally { events, elapsed })
}

/// Concurrent HTTP clients sending the commands of the latency measurement.
const CLIENTS: usize = 8;

/// p50, p99 (milliseconds) and the number of commands measured.
async fn latency(
    store: &Arc<dyn EventStore>,
    nats_url: &str,
    js: &jetstream::Context,
    base: &RelayConfig,
    tag: &str,
    seconds: Duration,
) -> Result<(f64, f64, usize)> {
    let mut config = base.clone();
    config.stream = format!("BENCH_E2E_{tag}");
    config.subject_prefix = format!("bench.{tag}.e2e");
    config.checkpoint_name = format!("relay:{}", config.stream);
    let service = CommandService::start(store.clone()).await?;
    let org = service.organisation(100).await?;
    // Start caught up: the backlog is not what this measures.
    let head = store.head().await?;
    store.save_checkpoint(&config.checkpoint_name, head).await?;
    ensure_stream(js, &config).await?;
    let relay = trellis_notifications::spawn(store.clone(), nats_url, config.clone())?;

    // The subscriber, as another service would write it: a pull consumer
    // decoding each protobuf envelope. Commands are told apart by their
    // correlation id (the request's `X-Request-Id`).
    let consumer = js
        .get_stream(&config.stream)
        .await?
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let sent: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let received: Arc<Mutex<Vec<(Uuid, Instant)>>> = Arc::default();
    let subscriber = {
        let received = received.clone();
        let mut messages = consumer.messages().await?;
        tokio::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                let now = Instant::now();
                if let Ok((envelope, _)) = trellis_contracts::decode_envelope(&message.payload)
                    && let Ok(id) = Uuid::parse_str(&envelope.correlation_id)
                {
                    received.lock().expect("received").push((id, now));
                }
            }
        })
    };

    // A steady RATE commands per second, handed to CLIENTS keep-alive
    // connections (so a slow response never delays the next command).
    let (jobs_tx, jobs_rx) = tokio::sync::mpsc::channel::<(Uuid, bool)>(RATE as usize);
    let jobs_rx = Arc::new(tokio::sync::Mutex::new(jobs_rx));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (jobs, sent) = (jobs_rx.clone(), sent.clone());
        let (addr, token, reps) = (service.addr, org.leader_token.clone(), org.reps.clone());
        let body = serde_json::to_vec(&serde_json::json!({
            "competency_id": org.competency, "kind": "praise",
            "note": "Great discovery questions on the Acme call: keep asking about impact.",
            "given_on": "2026-02-10"}))?;
        clients.push(tokio::spawn(async move {
            let mut http = Http::connect(addr).await?;
            let mut n = 0usize;
            loop {
                let Some((request_id, measured)) = jobs.lock().await.recv().await else {
                    return anyhow::Ok(());
                };
                let rep = &reps[(c + n * CLIENTS) % reps.len()];
                n += 1;
                let path = format!("/v1/reps/{rep}/feedback");
                let request_id_text = request_id.to_string();
                if measured {
                    sent.lock()
                        .expect("sent")
                        .insert(request_id, Instant::now());
                }
                let (status, body_out) = http
                    .send_with(
                        "POST",
                        &path,
                        &token,
                        "application/json",
                        &[("x-request-id", &request_id_text)],
                        &body,
                    )
                    .await?;
                anyhow::ensure!(
                    status == 201,
                    "feedback answered {status}: {}",
                    String::from_utf8_lossy(&body_out)
                );
            }
        }));
    }

    let duration = seconds.max(Duration::from_secs(10));
    let warm_up = Duration::from_secs(1);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let (mut commands, mut measured) = (0usize, 0usize);
    while start.elapsed() < duration {
        tick.tick().await;
        let measure = start.elapsed() >= warm_up;
        jobs_tx
            .send((Uuid::now_v7(), measure))
            .await
            .context("the HTTP clients stopped")?;
        commands += 1;
        measured += usize::from(measure);
    }
    drop(jobs_tx);
    for client in clients {
        client.await.context("an HTTP client panicked")??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().expect("received").len() < commands && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    subscriber.abort();
    relay.stop().await?;
    drop(service);
    let _ = js.delete_stream(&config.stream).await;

    let sent = sent.lock().expect("sent");
    let received = received.lock().expect("received");
    let mut latencies: Vec<Duration> = received
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|sent| at.saturating_duration_since(*sent)))
        .collect();
    anyhow::ensure!(
        latencies.len() == measured,
        "the subscriber received {} of {measured} measured commands",
        latencies.len()
    );
    latencies.sort_unstable();
    Ok((
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.len(),
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// CPU time (user + system) this process has used, from `/proc/self/stat`
/// (0 where that is not available).
fn cpu_seconds() -> f64 {
    process_cpu_seconds("/proc/self/stat")
}

/// CPU time used so far by each process on this machine named `name`, by pid.
fn cpu_seconds_of(name: &str) -> HashMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == name).then(|| {
                let stat = entry.path().join("stat");
                (pid, process_cpu_seconds(&stat.to_string_lossy()))
            })
        })
        .collect()
}

/// CPU used since `before` by the processes named like those in it: those
/// alive at both ends, and those started since (one that ended is not seen).
fn cpu_since(before: &HashMap<u32, f64>, name: &str) -> f64 {
    cpu_seconds_of(name)
        .into_iter()
        .map(|(pid, now)| now - before.get(&pid).copied().unwrap_or(0.0))
        .sum()
}

/// The CPU use of this process, the broker and the database, for the report.
#[derive(Debug)]
struct CpuUse {
    bench: f64,
    nats: HashMap<u32, f64>,
    postgres: HashMap<u32, f64>,
}

impl CpuUse {
    fn now() -> Self {
        CpuUse {
            bench: cpu_seconds(),
            nats: cpu_seconds_of("nats-server"),
            postgres: cpu_seconds_of("postgres"),
        }
    }

    /// `cpu: bench 1.20 s, nats-server 1.50 s, postgres 0.30 s` since `self`.
    fn since(self) -> String {
        format!(
            "cpu: bench {:.2} s, nats-server {:.2} s, postgres {:.2} s",
            cpu_seconds() - self.bench,
            cpu_since(&self.nats, "nats-server"),
            cpu_since(&self.postgres, "postgres")
        )
    }
}

fn process_cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the
    // 12th and stime the 13th of them, in clock ticks (100 per second).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
