//! `replay`: how fast the `growth` projection rebuilds from the log, against
//! the raw ordered scan of the same log, in the same run (PostgreSQL).
//!
//! The log is filled through the real append path with a realistic mix of
//! domain events: 20 teams with a leader each, three standards (weekly calls
//! and CRM hygiene, monthly meetings), then ~5000 reps who each join and
//! receive measurements (40%), feedback (30%), skill assessments (10%),
//! coaching sessions with an action item (10%) and action-item completions
//! (10%), dated over two years. Appends carry 25 events of one rep and go
//! round-robin over the reps (8 writers), so every rebuild batch touches
//! many reps, as a real log would.
//!
//! Baseline: `EventStore::read_all` from the start to the end in pages of
//! `--page` events (decoding every row). Scenario: `Engine::rebuild` of the
//! `growth` projection into a new generation: read the log in pages of 2000
//! events (read ahead and decoded while the fold runs), fold it all in
//! memory, then derive every profile, timeline and leader document once and
//! write them in parts of 250 reps, two transactions at a time, the last one
//! moving the checkpoint, then switch. The ratio is rebuild events/s over scan events/s. The
//! rebuild is stopped after 90 s (the rate is then over the part done, and
//! the output says so), so the default run stays near three minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{Days, NaiveDate, NaiveTime, Utc};
use trellis_domain::rep::{
    ActionItem, ActionItemCompleted, CoachingSessionHeld, FeedbackGiven, FeedbackKind,
    MeasurementSource, Owner, PerformanceMeasured, RepEvent, RepJoined, SkillAssessed, Visibility,
};
use trellis_domain::standard::{StandardEvent, StandardSet};
use trellis_domain::team::{LeaderAssigned, TeamEvent, TeamFormed};
use trellis_domain::{
    ActionItemId, AssessmentId, CompetencyId, Direction, Event, FeedbackId, LeaderId,
    MeasurementId, Period, PeriodKind, RepId, SessionId, StandardId, StandardKind, TeamId,
};
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{
    Checkpoint, CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::store::postgres::PostgresReadStore;
use uuid::Uuid;

use crate::baseline::BenchDatabase;
use crate::workload::{Report, Tally};

const ACTOR: &str = "bench:replay";
const TEAMS: usize = 20;
const REPS: u64 = 5_000;
const PER_APPEND: usize = 25;
const WRITERS: u64 = 8;
/// The longest the rebuild runs, so the default run stays near three minutes.
const REBUILD_CAP: Duration = Duration::from_secs(90);

fn v<T: TryFrom<&'static str>>(s: &'static str) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(s).expect("a valid value")
}

fn new_event(event: Event, on: NaiveDate) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.schema_version(),
        event.to_payload(),
        on.and_time(NaiveTime::MIN).and_utc(),
    )
}

/// The day the mix starts.
pub fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date")
}

/// The catalogue: teams with a leader each, and the standards.
pub async fn catalogue(store: &dyn EventStore, teams: usize) -> Result<Vec<(TeamId, LeaderId)>> {
    let mut out = Vec::with_capacity(teams);
    for _ in 0..teams {
        let team_id = TeamId::from_uuid(Uuid::now_v7());
        let leader_id = LeaderId::from_uuid(Uuid::now_v7());
        let events = vec![
            new_event(
                TeamEvent::Formed(TeamFormed {
                    team_id,
                    name: v("Mid-Market"),
                })
                .into(),
                epoch(),
            ),
            new_event(
                TeamEvent::LeaderAssigned(LeaderAssigned {
                    team_id,
                    leader_id,
                    leader_name: v("Lena Leader"),
                })
                .into(),
                epoch(),
            ),
        ];
        append(store, &team_id.stream_id(), 0, &events).await?;
        out.push((team_id, leader_id));
    }
    for (metric, kind, period, target) in [
        ("calls_made", StandardKind::Quantity, PeriodKind::Week, 50.0),
        ("crm_hygiene", StandardKind::Quality, PeriodKind::Week, 90.0),
        (
            "meetings_booked",
            StandardKind::Quantity,
            PeriodKind::Month,
            12.0,
        ),
    ] {
        let standard_id = StandardId::from_uuid(Uuid::now_v7());
        let set = StandardSet {
            standard_id,
            name: v("Standard"),
            metric: v(metric),
            kind,
            direction: Direction::AtLeast,
            unit: v("count"),
            period,
            target: target.try_into().expect("a target"),
            roles: vec![v("SDR")],
            effective_from: epoch(),
            ramp: vec![],
            version: 1,
        };
        append(
            store,
            &standard_id.stream_id(),
            0,
            &[new_event(StandardEvent::Set(set).into(), epoch())],
        )
        .await?;
    }
    Ok(out)
}

async fn append(
    store: &dyn EventStore,
    stream: &str,
    version: u64,
    events: &[NewEvent],
) -> Result<u64> {
    let stream = StreamId::new(stream).context("a stream id")?;
    let outcome = store
        .append(
            &stream,
            ExpectedVersion::Exact(version),
            &CommandMeta::new(ACTOR, Utc::now()),
            events,
        )
        .await
        .context("an append failed")?;
    Ok(outcome.stream_version)
}

/// One rep's events, generated in order.
#[derive(Debug)]
pub struct RepMix {
    pub rep_id: RepId,
    team_id: TeamId,
    leader_id: LeaderId,
    competencies: [CompetencyId; 4],
    /// Events this rep will have in all, and over how many days.
    total: u64,
    span_days: u64,
    next: u64,
    version: u64,
    open_item: Option<ActionItemId>,
}

impl RepMix {
    pub fn new(team: (TeamId, LeaderId), total: u64, span_days: u64) -> Self {
        RepMix {
            rep_id: RepId::from_uuid(Uuid::now_v7()),
            team_id: team.0,
            leader_id: team.1,
            competencies: [0u128, 1, 2, 3].map(|n| CompetencyId::from_uuid(Uuid::from_u128(n + 1))),
            total: total.max(1),
            span_days,
            next: 0,
            version: 0,
            open_item: None,
        }
    }

    pub fn done(&self) -> bool {
        self.next >= self.total
    }

    fn event(&mut self) -> NewEvent {
        let k = self.next;
        self.next += 1;
        let day = epoch() + Days::new(k * self.span_days / self.total);
        let competency = self.competencies[(k % 4) as usize];
        let leader_id = self.leader_id;
        let id = Uuid::now_v7;
        let event = match (k, k % 10) {
            (0, _) => RepEvent::Joined(RepJoined {
                rep_id: self.rep_id,
                name: v("Riley Rep"),
                role: v("SDR"),
                team_id: self.team_id,
                start_date: epoch(),
            }),
            (_, 0..=3) => {
                let (metric, kind) = match k % 3 {
                    0 => ("calls_made", PeriodKind::Week),
                    1 => ("crm_hygiene", PeriodKind::Week),
                    _ => ("meetings_booked", PeriodKind::Month),
                };
                RepEvent::PerformanceMeasured(PerformanceMeasured {
                    measurement_id: MeasurementId::from_uuid(id()),
                    metric: v(metric),
                    period: Period::containing(kind, day),
                    value: ((k * 7 % 60 + 20) as f64).try_into().expect("a value"),
                    source: MeasurementSource::CrmImport,
                })
            }
            (_, 4..=6) => RepEvent::FeedbackGiven(FeedbackGiven {
                feedback_id: FeedbackId::from_uuid(id()),
                leader_id,
                competency_id: competency,
                kind: if k.is_multiple_of(2) {
                    FeedbackKind::Praise
                } else {
                    FeedbackKind::Constructive
                },
                note: v(
                    "Restated the customer's goals before the demo and asked two sharp follow-ups about budget timing.",
                ),
                visibility: Visibility::Shared,
                given_on: day,
            }),
            (_, 7) => RepEvent::SkillAssessed(SkillAssessed {
                assessment_id: AssessmentId::from_uuid(id()),
                leader_id,
                competency_id: competency,
                level: ((k % 5 + 1) as u8).try_into().expect("a level"),
                evidence: v("Three discovery calls reviewed; consistent follow-up questions."),
                assessed_on: day,
            }),
            (_, 8) => {
                let item = ActionItemId::from_uuid(id());
                self.open_item = Some(item);
                RepEvent::CoachingSessionHeld(CoachingSessionHeld {
                    session_id: SessionId::from_uuid(id()),
                    leader_id,
                    held_on: day,
                    duration_minutes: 30,
                    focus: vec![competency],
                    notes: v("Role-played the pricing objection."),
                    visibility: Visibility::Shared,
                    action_items: vec![ActionItem {
                        action_item_id: item,
                        description: v("Rewrite the discovery script"),
                        owner: Owner::Rep,
                        due_on: day + Days::new(7),
                    }],
                })
            }
            _ => match self.open_item.take() {
                Some(action_item_id) => RepEvent::ActionItemCompleted(ActionItemCompleted {
                    action_item_id,
                    on: day,
                }),
                None => RepEvent::FeedbackGiven(FeedbackGiven {
                    feedback_id: FeedbackId::from_uuid(id()),
                    leader_id,
                    competency_id: competency,
                    kind: FeedbackKind::Praise,
                    note: v("Good call."),
                    visibility: Visibility::Shared,
                    given_on: day,
                }),
            },
        };
        new_event(event.into(), day)
    }

    /// Appends the rep's next `n` events (fewer at the end).
    pub async fn append_next(&mut self, store: &dyn EventStore, n: usize) -> Result<u64> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n && !self.done() {
            events.push(self.event());
        }
        if events.is_empty() {
            return Ok(0);
        }
        self.version = append(store, &self.rep_id.stream_id(), self.version, &events).await?;
        Ok(events.len() as u64)
    }
}

/// Fills the log with `events` events of the mix over `reps` reps.
async fn fill(store: Arc<dyn EventStore>, events: u64, reps: u64) -> Result<Tally> {
    let started = Instant::now();
    let teams = catalogue(&*store, TEAMS).await?;
    let per_rep = (events / reps).max(1);
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let n = done.load(Ordering::Relaxed);
                eprint!(
                    "\rfilling: {n}/{events} events ({:.0} events/s)   ",
                    n as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let done = done.clone();
        let teams = teams.clone();
        handles.push(tokio::spawn(async move {
            let mut mine: Vec<RepMix> = (w..reps)
                .step_by(WRITERS as usize)
                .map(|r| RepMix::new(teams[r as usize % teams.len()], per_rep, 730))
                .collect();
            while !mine.is_empty() {
                for rep in &mut mine {
                    let n = rep.append_next(&*store, PER_APPEND).await?;
                    done.fetch_add(n, Ordering::Relaxed);
                }
                mine.retain(|r| !r.done());
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await.context("a writer panicked")??;
    }
    progress.abort();
    eprintln!();
    Ok(Tally {
        events: done.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

async fn scan(store: &dyn EventStore, page: usize) -> Result<Tally> {
    let started = Instant::now();
    let mut after = Checkpoint::START;
    let mut events = 0u64;
    loop {
        let batch = store.read_all(after, page).await?;
        let Some(last) = batch.last() else { break };
        after = last.checkpoint;
        events += batch.len() as u64;
    }
    Ok(Tally {
        events,
        elapsed: started.elapsed(),
    })
}

/// Fills, scans, rebuilds, scans again; records `replay`.
pub async fn run(db: &BenchDatabase, events: u64, page: usize, report: &mut Report) -> Result<()> {
    let store = PostgresStore::connect(&PostgresConfig {
        url: db.conninfo(),
        pool_size: 16,
    })
    .await
    .context("failed to open the PostgreSQL event store")?;
    let pool = store.pool().clone();
    let store: Arc<dyn EventStore> = Arc::new(store);
    let reps = REPS.min(events.max(1));
    let filled = fill(store.clone(), events, reps).await?;
    println!(
        "replay: filled {} events over {reps} reps in {:.1} s",
        filled.events,
        filled.elapsed.as_secs_f64()
    );
    let read = Arc::new(
        PostgresReadStore::new(pool)
            .await
            .context("failed to open the read store")?,
    );
    let engine = Engine::new(store.clone(), read);
    // Warm the cache with one untimed pass, then time scan, rebuild, scan.
    scan(&*store, page).await?;
    let first = scan(&*store, page).await?;
    let mut last_line = Instant::now();
    let mut reached = (0u64, Duration::ZERO, 0.0f64);
    let growth = Growth::new(GrowthSettings::default());
    let rebuild = trellis_queries::replay(&engine, &growth, |p| {
        reached = (p.events, p.elapsed, p.fraction);
        if last_line.elapsed() > Duration::from_millis(500) {
            last_line = Instant::now();
            eprint!("\r{}   ", p.line("growth"));
        }
    });
    let rebuilt = match tokio::time::timeout(REBUILD_CAP, rebuild).await {
        Ok(summary) => {
            let summary = summary.context("the rebuild failed")?;
            eprintln!();
            println!("replay: {}", trellis_queries::ops::summary_line(&summary));
            Tally {
                events: summary.events,
                elapsed: Duration::from_secs_f64(summary.seconds),
            }
        }
        Err(_) => {
            let (events, elapsed, fraction) = reached;
            eprintln!();
            println!(
                "replay: rebuild stopped at the {} s cap after {events} events ({:.1}% of the \
                 log); the rate is over that part (later batches carry longer histories)",
                REBUILD_CAP.as_secs(),
                fraction * 100.0
            );
            Tally { events, elapsed }
        }
    };
    let second = scan(&*store, page).await?;
    let mut baseline = first;
    baseline.add(second);
    report.record(
        "replay",
        "read_all ordered scan",
        baseline,
        "growth rebuild",
        rebuilt,
    );
    Ok(())
}
