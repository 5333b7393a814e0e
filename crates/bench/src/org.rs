//! `org`: a whole organisation as `trellis serve` holds it, and how fast its
//! pages and reads answer while people keep recording (issue 17, point 3).
//!
//! # The organisation
//! `--reps` reps (default 5,000) in teams of `--team-size` (default 50), a
//! leader each, over `--weeks` weeks (default 104) ending last week: four
//! competencies, four weekly standards, and for every rep a join, every
//! week four measurements (one per standard), every two weeks a coaching
//! session with one action item (closed two weeks later: completed, or one
//! in five dropped) and a piece of feedback, every eight weeks a skill
//! assessment, every thirteen weeks a support request (raised, acknowledged,
//! resolved), and for one rep in five an improvement plan half-way through
//! (started, two checkpoints, closed). At the defaults that is 3,054,208
//! events: the mix taken literally (its "about 2,000,000" undercounts
//! four weekly measurements alone, 2,080,000). Everything is derived from a
//! seeded generator (ids, values, kinds; the dates from today), so a
//! run's organisation is the same for the same options on the same day.
//!
//! The history goes in through the real write path: `EventStore::append`
//! of the domain's own events (the event store of `trellis serve`, sealing
//! every event with the checkpoint key the server is then given), one
//! append per rep per quarter (about 150 events), 8 writers, round-robin
//! over their reps so the log interleaves as it would have. Progress goes to
//! stderr. The store is then brought to where a running installation would
//! be: the log's Merkle tree integrated and one checkpoint signed, and the
//! read models rebuilt (`trellis replay`'s code). Those steps are timed but
//! are not the measurement.
//!
//! # The server
//! The built `trellis` binary is spawned as a child process, `trellis serve`
//! on the bench's database (PostgreSQL) or data directory (SQLite), every
//! role but the relay (no `--nats-url`: a fresh relay would publish the
//! whole backlog to NATS and measure that). A child process, not the
//! library in this process, because that is what the figures are about:
//! start to ready is from `spawn` to the first `200` of `/readyz` (opening
//! the stores, checking migrations, starting the workers and binding the
//! listener: all of `trellis serve`'s start), and resident memory is the
//! server's own `VmRSS` (`/proc/<pid>/status`), not the bench's generator
//! and rebuild. The binary is `--trellis-bin`, else `trellis` beside this
//! executable (`cargo build --release -p trellis` first). Requests carry
//! bearer tokens minted with the `--jwt-secret` the server is given: the
//! API's check, which the dashboard also accepts.
//!
//! # The measurement
//! Warm-up: every kind of request below once for each rep and team of the
//! warm set (20 teams spread over the organisation, two reps of each); then
//! one piece of feedback for every rep, over the writers' 8 connections, so
//! the write side holds each rep's folded state as a server that has been
//! running would (without it, most measured writes were a rep's first since
//! start and read the rep's whole history first). Then
//! `memory_mb: rss_after_warmup`. Then, while 8 writers keep recording
//! feedback through `POST /v1/reps/{rep}/feedback` (each its own keep-alive
//! connection, a leader's token, reps drawn from the whole organisation),
//! one reader samples `--samples` requests of each kind round-robin (so
//! drift hits every kind alike), all on the warm set: dashboard team page
//! (`/teams/{id}`), rep page (`/reps/{id}`), leader scorecard
//! (`/leaders/{id}`), review packet page (`/reps/{id}/review`); API team view
//! (`/v1/teams/{id}/view`), profile (`/v1/reps/{id}/profile`), timeline
//! (`/v1/reps/{id}/timeline`) and as-of (`/v1/reps/{id}/as-of?at=…`, a
//! random instant of the history). Also, `--samples / 4` each of the rep
//! page and as-of for reps nobody looked at before (`*_cold`). Every answer
//! must be a 200 (201 for the writes). p50 and p99 per kind go to
//! `latency_ms:`, with the writes' own and `start_to_ready`; `memory_mb:`
//! has the RSS when ready, after warm-up (the target's figure), at the end,
//! and the high-water mark (`VmHWM`).
//!
//! The ratio `org_feedback_8w` (`sqlite_org_feedback_8w`): the feedback
//! commands' events/s during the sampling against the raw single-row
//! INSERT at 8 writers (`append_8w`'s baseline) measured in the same run,
//! `--seconds / 2` before and after the sampling. There is no raw baseline
//! for a page; the ratio says what the write path keeps of the raw
//! database's rate while the reads run beside it (the baseline runs with
//! the server idle). Each figure with a target is printed as `MET` or
//! `MISSED`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{Datelike, Days, NaiveDate, NaiveTime, Utc};
use trellis_domain::competency::{CompetencyDefined, CompetencyEvent};
use trellis_domain::rep::Owner;
use trellis_domain::rep::{
    ActionItem, ActionItemCompleted, ActionItemDropped, CoachingSessionHeld, FeedbackGiven,
    FeedbackKind, ImprovementPlanClosed, ImprovementPlanStarted, MeasurementSource,
    PerformanceMeasured, PlanCheckpointRecorded, PlanOutcome, PlanTarget, RepEvent, RepJoined,
    SkillAssessed, SupportAcknowledged, SupportCategory, SupportRequested, SupportResolved,
    Visibility,
};
use trellis_domain::standard::{StandardEvent, StandardSet};
use trellis_domain::team::{LeaderAssigned, TeamEvent, TeamFormed};
use trellis_domain::values::NonEmptyText;
use trellis_domain::{
    ActionItemId, AssessmentId, CompetencyId, Direction, Event, FeedbackId, LeaderId,
    MeasurementId, Period, PeriodKind, PlanId, RepId, SessionId, StandardId, StandardKind,
    SupportRequestId, TeamId,
};
use trellis_eventstore::note::SignerKey;
use trellis_eventstore::tree::TreeBuilder;
use trellis_eventstore::{CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId};
use trellis_http::auth::{Claims, Role, TokenKey};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::store::ReadStore;
use uuid::Uuid;

use crate::http::Http;
use crate::workload::{Report, Tally};

const ACTOR: &str = "bench:org";
/// The origin of the log's checkpoints, and the signing key's name.
const ORIGIN: &str = "trellis.bench/org";
const WRITERS: usize = 8;
/// Weeks of one rep's history per append (about 150 events at the mix).
const WEEKS_PER_APPEND: u64 = 13;
/// Teams of the warm set, and reps of each.
const WARM_TEAMS: usize = 20;
const WARM_REPS_PER_TEAM: usize = 2;

/// The four weekly standards: metric, kind, direction, target, usual value.
const STANDARDS: [(&str, StandardKind, Direction, f64, f64); 4] = [
    (
        "calls_made",
        StandardKind::Quantity,
        Direction::AtLeast,
        50.0,
        52.0,
    ),
    (
        "meetings_booked",
        StandardKind::Quantity,
        Direction::AtLeast,
        5.0,
        5.0,
    ),
    (
        "crm_hygiene",
        StandardKind::Quality,
        Direction::AtLeast,
        90.0,
        91.0,
    ),
    (
        "talk_ratio",
        StandardKind::Quality,
        Direction::AtMost,
        60.0,
        57.0,
    ),
];

const COMPETENCIES: [&str; 4] = ["Discovery", "Objection handling", "Negotiation", "Pipeline"];

/// Options of the scenario.
#[derive(Debug, Clone)]
pub struct Options {
    pub reps: u64,
    pub team_size: u64,
    pub weeks: u64,
    pub seed: u64,
    pub samples: usize,
    pub seconds: Duration,
    pub trellis_bin: Option<PathBuf>,
}

impl Options {
    fn teams(&self) -> u64 {
        self.reps.div_ceil(self.team_size)
    }
}

/// A seeded splitmix64: the organisation is the same for the same seed.
#[derive(Debug, Clone)]
struct Seeded(u64);

impl Seeded {
    fn new(seed: u64, stream: u64) -> Self {
        let mut s = Seeded(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        s.next();
        s
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A random (version 4) UUID from the generator.
    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next().to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

fn text<T: TryFrom<String>>(s: impl Into<String>) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(s.into()).expect("a valid value")
}

fn new_event(event: Event, on: NaiveDate) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.schema_version(),
        event.to_payload(),
        on.and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("a time"))
            .and_utc(),
    )
}

/// The teams, leaders, competencies and standards, and the first Monday.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub start: NaiveDate,
    pub teams: Vec<(TeamId, LeaderId)>,
    pub competencies: Vec<CompetencyId>,
    pub standards: Vec<StandardId>,
    events: Vec<(String, Vec<NewEvent>)>,
}

impl Catalogue {
    pub fn new(options: &Options, today: NaiveDate) -> Catalogue {
        let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
        let start = monday - Days::new(7 * options.weeks);
        let mut rng = Seeded::new(options.seed, u64::MAX);
        let mut events = Vec::new();
        let competencies: Vec<CompetencyId> = COMPETENCIES
            .iter()
            .map(|name| {
                let competency_id = CompetencyId::from_uuid(rng.uuid());
                let rubric: Vec<NonEmptyText> =
                    ["Not yet", "Sometimes", "Usually", "Always", "Teaches it"]
                        .map(text)
                        .to_vec();
                let defined = CompetencyEvent::Defined(CompetencyDefined {
                    competency_id,
                    name: text(*name),
                    description: text(format!("{name}, as the sales team practises it.")),
                    rubric: rubric.try_into().expect("five levels"),
                });
                events.push((
                    competency_id.stream_id(),
                    vec![new_event(defined.into(), start)],
                ));
                competency_id
            })
            .collect();
        let standards = STANDARDS
            .iter()
            .map(|&(metric, kind, direction, target, _)| {
                let standard_id = StandardId::from_uuid(rng.uuid());
                let set = StandardSet {
                    standard_id,
                    name: text(metric.replace('_', " ")),
                    metric: text(metric),
                    kind,
                    direction,
                    unit: text(if kind == StandardKind::Quality {
                        "percent"
                    } else {
                        "count"
                    }),
                    period: PeriodKind::Week,
                    target: target.try_into().expect("a target"),
                    roles: vec![text("SDR")],
                    effective_from: start,
                    ramp: vec![],
                    version: 1,
                };
                events.push((
                    standard_id.stream_id(),
                    vec![new_event(StandardEvent::Set(set).into(), start)],
                ));
                standard_id
            })
            .collect();
        let teams = (0..options.teams())
            .map(|t| {
                let team_id = TeamId::from_uuid(rng.uuid());
                let leader_id = LeaderId::from_uuid(rng.uuid());
                events.push((
                    team_id.stream_id(),
                    vec![
                        new_event(
                            TeamEvent::Formed(TeamFormed {
                                team_id,
                                name: text(format!("Team {t}")),
                            })
                            .into(),
                            start,
                        ),
                        new_event(
                            TeamEvent::LeaderAssigned(LeaderAssigned {
                                team_id,
                                leader_id,
                                leader_name: text(format!("Leader {t}")),
                            })
                            .into(),
                            start,
                        ),
                    ],
                ));
                (team_id, leader_id)
            })
            .collect();
        Catalogue {
            start,
            teams,
            competencies,
            standards,
            events,
        }
    }

    fn len(&self) -> u64 {
        self.events.iter().map(|(_, e)| e.len() as u64).sum()
    }
}

/// One rep's history, generated week by week.
#[derive(Debug)]
pub struct RepHistory {
    pub index: u64,
    pub rep_id: RepId,
    team: usize,
    rng: Seeded,
    version: u64,
    next_week: u64,
    open_item: Option<ActionItemId>,
    plan: Option<PlanId>,
}

impl RepHistory {
    pub fn new(options: &Options, index: u64) -> RepHistory {
        let mut rng = Seeded::new(options.seed, index);
        RepHistory {
            index,
            rep_id: RepId::from_uuid(rng.uuid()),
            team: (index / options.team_size) as usize,
            rng,
            version: 0,
            next_week: 0,
            open_item: None,
            plan: None,
        }
    }

    /// The events of week `w` (in order).
    fn week(&mut self, cat: &Catalogue, weeks: u64, w: u64, out: &mut Vec<(Event, NaiveDate)>) {
        let monday = cat.start + Days::new(7 * w);
        let day = |d: u64| monday + Days::new(d);
        let (team_id, leader_id) = cat.teams[self.team];
        let competency = cat.competencies[(w / 2 % cat.competencies.len() as u64) as usize];
        let rng = &mut self.rng;
        let mut push = |e: RepEvent, on: NaiveDate| out.push((e.into(), on));
        if w == 0 {
            push(
                RepEvent::Joined(RepJoined {
                    rep_id: self.rep_id,
                    name: text(format!("Rep {}", self.index)),
                    role: text("SDR"),
                    team_id,
                    start_date: monday,
                }),
                monday,
            );
        }
        if w % 13 == 4 {
            let request_id = SupportRequestId::from_uuid(rng.uuid());
            push(
                RepEvent::SupportRequested(SupportRequested {
                    request_id,
                    category: [
                        SupportCategory::Leads,
                        SupportCategory::Tools,
                        SupportCategory::Training,
                        SupportCategory::Process,
                    ][rng.below(4) as usize],
                    description: text("The new sequence tool drops my follow-ups."),
                    raised_on: day(0),
                }),
                day(0),
            );
            push(
                RepEvent::SupportAcknowledged(SupportAcknowledged {
                    request_id,
                    leader_id,
                    on: day(1),
                }),
                day(1),
            );
            push(
                RepEvent::SupportResolved(SupportResolved {
                    request_id,
                    leader_id,
                    resolution: text("Fixed with the tools team; checked together."),
                    on: day(1 + rng.below(4)),
                }),
                day(4),
            );
        }
        if w.is_multiple_of(2) {
            let item = ActionItemId::from_uuid(rng.uuid());
            self.open_item = Some(item);
            push(
                RepEvent::CoachingSessionHeld(CoachingSessionHeld {
                    session_id: SessionId::from_uuid(rng.uuid()),
                    leader_id,
                    held_on: day(1),
                    duration_minutes: 30,
                    focus: vec![competency],
                    notes: text("Role-played the pricing objection and reviewed two calls."),
                    visibility: Visibility::Shared,
                    action_items: vec![ActionItem {
                        action_item_id: item,
                        description: text("Rewrite the discovery script"),
                        owner: Owner::Rep,
                        due_on: day(8),
                    }],
                }),
                day(1),
            );
        } else {
            if let Some(action_item_id) = self.open_item.take() {
                if rng.below(5) == 0 {
                    push(
                        RepEvent::ActionItemDropped(ActionItemDropped {
                            action_item_id,
                            on: day(1),
                            reason: text("Overtaken by the new playbook."),
                        }),
                        day(1),
                    );
                } else {
                    push(
                        RepEvent::ActionItemCompleted(ActionItemCompleted {
                            action_item_id,
                            on: day(1),
                        }),
                        day(1),
                    );
                }
            }
            push(
                RepEvent::FeedbackGiven(FeedbackGiven {
                    feedback_id: FeedbackId::from_uuid(rng.uuid()),
                    leader_id,
                    competency_id: competency,
                    kind: if rng.below(3) == 0 {
                        FeedbackKind::Constructive
                    } else {
                        FeedbackKind::Praise
                    },
                    note: text(
                        "Restated the customer's goals before the demo and asked two sharp \
                         follow-ups about budget timing.",
                    ),
                    visibility: Visibility::Shared,
                    given_on: day(2),
                }),
                day(2),
            );
        }
        if w % 8 == 3 {
            push(
                RepEvent::SkillAssessed(SkillAssessed {
                    assessment_id: AssessmentId::from_uuid(rng.uuid()),
                    leader_id,
                    competency_id: competency,
                    level: ((rng.below(5) + 1) as u8).try_into().expect("a level"),
                    evidence: text("Three calls reviewed; consistent follow-up questions."),
                    assessed_on: day(3),
                }),
                day(3),
            );
        }
        // One rep in five: an improvement plan half-way through.
        let plan_week = weeks / 2;
        if self.index.is_multiple_of(5) && w >= plan_week && w <= plan_week + 6 {
            match w - plan_week {
                0 => {
                    let plan_id = PlanId::from_uuid(rng.uuid());
                    self.plan = Some(plan_id);
                    push(
                        RepEvent::ImprovementPlanStarted(ImprovementPlanStarted {
                            plan_id,
                            leader_id,
                            targets: vec![PlanTarget {
                                description: text("Fifty calls a week, every week"),
                                standard_id: Some(cat.standards[0]),
                            }],
                            started_on: day(0),
                            review_on: day(42),
                        }),
                        day(0),
                    );
                }
                2 | 4 => {
                    if let Some(plan_id) = self.plan {
                        push(
                            RepEvent::PlanCheckpointRecorded(PlanCheckpointRecorded {
                                plan_id,
                                note: text("On track: two good weeks."),
                                on: day(2),
                            }),
                            day(2),
                        );
                    }
                }
                6 => {
                    if let Some(plan_id) = self.plan.take() {
                        push(
                            RepEvent::ImprovementPlanClosed(ImprovementPlanClosed {
                                plan_id,
                                outcome: [
                                    PlanOutcome::Met,
                                    PlanOutcome::Extended,
                                    PlanOutcome::NotMet,
                                ][rng.below(3) as usize],
                                note: text("Reviewed together."),
                                on: day(0),
                            }),
                            day(0),
                        );
                    }
                }
                _ => {}
            }
        }
        for &(metric, _, _, target, usual) in &STANDARDS {
            let spread = (target / 5.0).max(2.0);
            let value = (usual + (rng.below(1000) as f64 / 1000.0 - 0.5) * 2.0 * spread)
                .max(0.0)
                .round();
            push(
                RepEvent::PerformanceMeasured(PerformanceMeasured {
                    measurement_id: MeasurementId::from_uuid(rng.uuid()),
                    metric: text(metric),
                    period: Period::containing(PeriodKind::Week, monday),
                    value: value.try_into().expect("a value"),
                    source: MeasurementSource::CrmImport,
                }),
                day(4),
            );
        }
    }

    fn done(&self, weeks: u64) -> bool {
        self.next_week >= weeks
    }

    /// The next `WEEKS_PER_APPEND` weeks' events.
    fn next_events(&mut self, cat: &Catalogue, weeks: u64) -> Vec<(Event, NaiveDate)> {
        let mut out = Vec::with_capacity(160);
        let end = (self.next_week + WEEKS_PER_APPEND).min(weeks);
        while self.next_week < end {
            let w = self.next_week;
            self.week(cat, weeks, w, &mut out);
            self.next_week += 1;
        }
        out
    }
}

/// How many events the generator writes for `options`: the catalogue and
/// every rep's history (reps with a plan and without differ only by it).
pub fn planned_events(options: &Options) -> u64 {
    let cat = Catalogue::new(options, Utc::now().date_naive());
    let count = |index: u64| {
        let mut rep = RepHistory::new(options, index);
        let mut n = 0u64;
        while !rep.done(options.weeks) {
            n += rep.next_events(&cat, options.weeks).len() as u64;
        }
        n
    };
    let with_plan = options.reps.div_ceil(5);
    let (plan, plain) = (count(0), if options.reps > 1 { count(1) } else { 0 });
    cat.len() + with_plan * plan + (options.reps - with_plan) * plain
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

/// Writes the whole organisation; returns the tally and the reps' ids.
async fn fill(
    store: Arc<dyn EventStore>,
    options: &Options,
    cat: &Arc<Catalogue>,
    label: &str,
) -> Result<(Tally, Vec<RepId>)> {
    let target = planned_events(options);
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let (done, label) = (done.clone(), label.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                crate::workload::show_progress(
                    &label,
                    done.load(Ordering::Relaxed),
                    target,
                    started,
                );
            }
        })
    };
    for (stream, events) in &cat.events {
        append(&*store, stream, 0, events).await?;
        done.fetch_add(events.len() as u64, Ordering::Relaxed);
    }
    let mut handles = Vec::new();
    for w in 0..WRITERS as u64 {
        let (store, done, cat, options) =
            (store.clone(), done.clone(), cat.clone(), options.clone());
        handles.push(tokio::spawn(async move {
            let mut mine: Vec<RepHistory> = (w..options.reps)
                .step_by(WRITERS)
                .map(|i| RepHistory::new(&options, i))
                .collect();
            let ids: Vec<(u64, RepId)> = mine.iter().map(|r| (r.index, r.rep_id)).collect();
            let mut active: Vec<&mut RepHistory> = mine.iter_mut().collect();
            while !active.is_empty() {
                for rep in &mut active {
                    let events: Vec<NewEvent> = rep
                        .next_events(&cat, options.weeks)
                        .into_iter()
                        .map(|(e, on)| new_event(e, on))
                        .collect();
                    if events.is_empty() {
                        continue;
                    }
                    rep.version =
                        append(&*store, &rep.rep_id.stream_id(), rep.version, &events).await?;
                    done.fetch_add(events.len() as u64, Ordering::Relaxed);
                }
                active.retain(|r| !r.done(options.weeks));
            }
            anyhow::Ok(ids)
        }));
    }
    let mut reps = BTreeMap::new();
    let mut result = Ok(());
    for handle in handles {
        match handle.await.context("a writer panicked").and_then(|r| r) {
            Ok(ids) => reps.extend(ids),
            Err(e) if result.is_ok() => result = Err(e),
            Err(_) => {}
        }
    }
    progress.abort();
    crate::workload::show_progress(label, done.load(Ordering::Relaxed), target, started);
    eprintln!();
    result?;
    let written = done.load(Ordering::Relaxed);
    anyhow::ensure!(
        written == target,
        "wrote {written} events but the generator planned {target}"
    );
    Ok((
        Tally {
            events: written,
            elapsed: started.elapsed(),
        },
        reps.into_values().collect(),
    ))
}

/// Integrates the log's Merkle tree and signs one checkpoint, then rebuilds
/// the read models: where a running installation would be.
async fn settle(
    store: Arc<dyn EventStore>,
    read: Arc<dyn ReadStore>,
    key: &SignerKey,
) -> Result<()> {
    let started = Instant::now();
    let mut builder = TreeBuilder::load(&*store).await?;
    let mut size = u64::MAX;
    loop {
        let now = builder.catch_up(&*store).await?;
        if now == size {
            break;
        }
        size = now;
    }
    builder.sign(&*store, key, ORIGIN, Utc::now()).await?;
    println!(
        "org: tree of {size} events integrated and signed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let engine = Engine::new(store, read);
    let growth = Growth::new(GrowthSettings::default());
    let mut last = Instant::now();
    let summary = trellis_queries::replay(&engine, &growth, |p| {
        if last.elapsed() > Duration::from_millis(500) {
            last = Instant::now();
            eprint!("\r{}   ", p.line("growth"));
        }
    })
    .await
    .context("the rebuild of the read models failed")?;
    eprintln!();
    println!(
        "org: read models rebuilt: {}",
        trellis_queries::ops::summary_line(&summary)
    );
    Ok(())
}

/// Where the scenario's stores are.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Postgres(&'a crate::baseline::BenchDatabase),
    Sqlite(&'a Path),
}

/// The raw baseline the ratio is against: single-row INSERTs at 8 writers.
#[derive(Debug)]
enum Raw {
    Postgres(deadpool_postgres::Pool),
    Sqlite(crate::sqlite::Raw),
}

impl Raw {
    async fn measure(&self, slice: Duration) -> Result<Tally> {
        match self {
            Raw::Postgres(pool) => {
                crate::workload::time_boxed(WRITERS, slice, |deadline| {
                    crate::baseline::raw_writer(pool.clone(), deadline, 1)
                })
                .await
            }
            Raw::Sqlite(raw) => {
                crate::workload::time_boxed(WRITERS, slice, |deadline| {
                    crate::sqlite::raw_writer(raw.clone(), deadline, 1)
                })
                .await
            }
        }
    }
}

/// The `trellis serve` child process; killed if dropped while running.
#[derive(Debug)]
struct Server {
    child: std::process::Child,
    pid: u32,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    fn status_kb(&self, field: &str) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("failed to read the server's /proc status")?;
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .with_context(|| format!("no {field} in the server's /proc status"))
    }

    fn rss_mb(&self) -> Result<f64> {
        Ok(self.status_kb("VmRSS:")? / 1024.0)
    }

    fn hwm_mb(&self) -> Result<f64> {
        Ok(self.status_kb("VmHWM:")? / 1024.0)
    }

    /// SIGTERM, as an operator stops it; SIGKILL after 20 s.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                eprintln!("warning: the server did not stop within 20 s; killing it");
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn trellis_bin(options: &Options) -> Result<PathBuf> {
    if let Some(bin) = &options.trellis_bin {
        return Ok(bin.clone());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("the bench has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("no target directory")?;
    }
    let bin = dir.join("trellis");
    if !bin.exists() {
        bail!(
            "no trellis binary at {}: build it first (cargo build --release -p trellis) or pass \
             --trellis-bin",
            bin.display()
        );
    }
    Ok(bin)
}

fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn spawn_server(
    options: &Options,
    target: &Target<'_>,
    data_dir: &Path,
    secret: &str,
    key: &SignerKey,
) -> Result<(Server, Duration)> {
    let bin = trellis_bin(options)?;
    let addr = free_port()?;
    let log = std::fs::File::create(data_dir.join("serve.log"))?;
    let mut command = std::process::Command::new(&bin);
    command
        .arg("serve")
        .args(["--listen", &addr.to_string()])
        .args(["--data-dir", &data_dir.display().to_string()])
        .args(["--log-origin", ORIGIN])
        .env("TRELLIS_JWT_SECRET", secret)
        .env("TRELLIS_SIGNING_KEY", key.to_secret_text())
        .env("RUST_LOG", "warn")
        .env_remove("TRELLIS_NATS_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    match target {
        Target::Postgres(db) => {
            command.env("TRELLIS_DATABASE_URL", db.conninfo());
        }
        Target::Sqlite(_) => {
            command.env_remove("TRELLIS_DATABASE_URL");
        }
    }
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("failed to start {}", bin.display()))?;
    let pid = child.id();
    let mut server = Server { child, pid, addr };
    loop {
        if let Some(status) = server.child.try_wait()? {
            let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
            bail!("trellis serve exited with {status} before it was ready:\n{log}");
        }
        if let Ok(mut http) = Http::connect(addr).await
            && let Ok((200, _)) = http.send("GET", "/readyz", "-", "text/plain", b"").await
        {
            return Ok((server, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("trellis serve was not ready after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn mint(key: &TokenKey, role: Role, sub: String, teams: Vec<Uuid>) -> String {
    key.mint(&Claims {
        sub,
        role,
        teams,
        grants: vec![],
        exp: Utc::now().timestamp() + 24 * 3600,
        iat: None,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The kinds of request sampled, and their target p99 in ms.
const KINDS: [(&str, f64); 8] = [
    ("team_page", 100.0),
    ("rep_page", 100.0),
    ("scorecard_page", 100.0),
    ("packet_page", 100.0),
    ("api_team_view", 50.0),
    ("api_profile", 50.0),
    ("api_timeline", 50.0),
    ("api_as_of", 20.0),
];

#[derive(Debug)]
struct Org {
    cat: Arc<Catalogue>,
    reps: Vec<RepId>,
    /// A token per team: its leader's.
    tokens: Vec<String>,
    team_size: u64,
    weeks: u64,
}

impl Org {
    fn team_of(&self, rep: usize) -> usize {
        rep / self.team_size as usize
    }

    /// The path of `kind` for rep number `rep` (and its team).
    fn path(&self, kind: &str, rep: usize, rng: &mut Seeded) -> String {
        let team = self.team_of(rep);
        let (team_id, leader_id) = self.cat.teams[team];
        let rep_id = self.reps[rep];
        match kind {
            "team_page" => format!("/teams/{team_id}"),
            "rep_page" | "rep_page_cold" => format!("/reps/{rep_id}"),
            "scorecard_page" => format!("/leaders/{leader_id}"),
            "packet_page" => format!("/reps/{rep_id}/review"),
            "api_team_view" => format!("/v1/teams/{team_id}/view"),
            "api_profile" => format!("/v1/reps/{rep_id}/profile"),
            "api_timeline" => format!("/v1/reps/{rep_id}/timeline"),
            _ => {
                let day = self.cat.start + Days::new(rng.below(7 * self.weeks));
                format!("/v1/reps/{rep_id}/as-of?at={day}T17:00:00Z")
            }
        }
    }

    async fn get(&self, http: &mut Http, kind: &str, rep: usize, rng: &mut Seeded) -> Result<f64> {
        let path = self.path(kind, rep, rng);
        let token = &self.tokens[self.team_of(rep)];
        let started = Instant::now();
        let (status, body) = http.send("GET", &path, token, "text/plain", b"").await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status != 200 {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(400)])
            );
        }
        Ok(ms)
    }
}

/// A feedback writer: the events it wrote and each request's milliseconds.
type Writer = tokio::task::JoinHandle<Result<(u64, Vec<f64>)>>;

/// Records one piece of feedback for rep number `rep` as its team's leader
/// (`POST /v1/reps/{rep}/feedback`); the request's milliseconds.
async fn post_feedback(
    http: &mut Http,
    org: &Org,
    rep: usize,
    rng: &mut Seeded,
    today: NaiveDate,
) -> Result<f64> {
    let competency = org.cat.competencies[rng.below(org.cat.competencies.len() as u64) as usize];
    let body = serde_json::to_vec(&serde_json::json!({
        "competency_id": competency, "kind": "praise",
        "note": "Great discovery questions on the Acme call: keep asking about impact.",
        "given_on": today}))?;
    let path = format!("/v1/reps/{}/feedback", org.reps[rep]);
    let token = &org.tokens[org.team_of(rep)];
    let started = Instant::now();
    let (status, out) = http
        .send("POST", &path, token, "application/json", &body)
        .await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status != 201 {
        bail!(
            "POST {path} answered {status}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    Ok(ms)
}

/// The write side's warm-up: one piece of feedback for every rep of the
/// organisation, over the writers' 8 connections, so the measured writes
/// find each rep's state folded as a server that has been running would
/// (not its whole history read on the rep's first write); the writes made.
async fn warm_writes(org: &Arc<Org>, addr: SocketAddr) -> Result<u64> {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let org = org.clone();
            tokio::spawn(async move {
                let mut http = Http::connect(addr).await?;
                let mut rng = Seeded::new(0xFEED_0000, w as u64);
                let today = Utc::now().date_naive();
                let mut written = 0u64;
                for rep in (w..org.reps.len()).step_by(WRITERS) {
                    post_feedback(&mut http, &org, rep, &mut rng, today).await?;
                    written += 1;
                }
                anyhow::Ok(written)
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await.context("a warm-up writer panicked")??;
    }
    Ok(written)
}

/// The feedback writers: 8, each its own connection, until `stop`.
fn start_writers(org: &Arc<Org>, addr: SocketAddr, stop: &Arc<AtomicBool>) -> Vec<Writer> {
    (0..WRITERS as u64)
        .map(|w| {
            let (org, stop) = (org.clone(), stop.clone());
            tokio::spawn(async move {
                let mut http = Http::connect(addr).await?;
                let mut rng = Seeded::new(0xFEED, w);
                let today = Utc::now().date_naive();
                let mut written = 0u64;
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let rep = rng.below(org.reps.len() as u64) as usize;
                    latencies.push(post_feedback(&mut http, &org, rep, &mut rng, today).await?);
                    written += 1;
                }
                Ok((written, latencies))
            })
        })
        .collect()
}

/// What one backend's run found, for the summary of targets.
#[derive(Debug)]
struct Findings {
    prefix: &'static str,
    p99: Vec<(String, f64, f64)>,
    rss_mb: f64,
    ready: Duration,
}

/// Fills, settles, serves and measures one backend.
pub async fn run(options: &Options, target: Target<'_>, report: &mut Report) -> Result<()> {
    let (prefix, backend) = match target {
        Target::Postgres(_) => ("", "postgres"),
        Target::Sqlite(_) => ("sqlite_", "sqlite"),
    };
    let key = SignerKey::generate(ORIGIN).map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = Uuid::now_v7().simple().to_string() + &Uuid::now_v7().simple().to_string();
    let today = Utc::now().date_naive();
    let cat = Arc::new(Catalogue::new(options, today));
    let planned = planned_events(options);
    println!(
        "org {backend}: {} reps in {} teams of {}, {} weeks from {}: {planned} events planned",
        options.reps,
        cat.teams.len(),
        options.team_size,
        options.weeks,
        cat.start
    );
    // A scratch directory: the embedded store (SQLite), the server's log,
    // its data directory (PostgreSQL: keys come by environment, nothing kept).
    let (data_dir, raw) = match target {
        Target::Postgres(db) => {
            let dir = std::env::temp_dir().join(format!("trellis-bench-org-{}", db.name()));
            std::fs::create_dir_all(&dir)?;
            let admin = db.connect().await?;
            let store = trellis_eventstore::postgres::PostgresStore::connect(
                &trellis_eventstore::postgres::PostgresConfig {
                    url: db.conninfo(),
                    pool_size: 16,
                },
            )
            .await
            .context("failed to open the PostgreSQL event store")?;
            admin
                .batch_execute(
                    "CREATE SCHEMA bench_raw; \
                     CREATE TABLE bench_raw.events (LIKE trellis.events INCLUDING ALL)",
                )
                .await
                .context("failed to create the baseline table")?;
            let read: Arc<dyn ReadStore> = Arc::new(
                trellis_projections::store::postgres::PostgresReadStore::new(store.pool().clone())
                    .await
                    .context("failed to open the read models")?,
            );
            let sealed: Arc<dyn EventStore> = Arc::new(store.sealing_with(key.clone()));
            let (filled, reps) = fill(sealed.clone(), options, &cat, "fill postgres").await?;
            report_fill(backend, filled);
            settle(sealed, read, &key).await?;
            (dir, (Raw::Postgres(crate::pg::raw_pool(db)?), reps))
        }
        Target::Sqlite(dir) => {
            let store_dir = dir.join("trellis");
            let store = trellis_eventstore::sqlite::SqliteStore::open(&store_dir)
                .await
                .context("failed to open the embedded event store")?;
            let read: Arc<dyn ReadStore> = Arc::new(
                trellis_projections::store::sqlite::SqliteReadStore::open(store.path())
                    .await
                    .context("failed to open the embedded read models")?,
            );
            let sealed: Arc<dyn EventStore> = Arc::new(store.sealing_with(key.clone()));
            let (filled, reps) = fill(sealed.clone(), options, &cat, "fill sqlite").await?;
            report_fill(backend, filled);
            settle(sealed, read, &key).await?;
            let raw = crate::sqlite::Raw::create(&dir.join("raw.db")).await?;
            (store_dir, (Raw::Sqlite(raw), reps))
        }
    };
    let (raw, reps) = raw;
    // The server alone holds the store from here (the embedded one is one process's).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (server, ready) = spawn_server(options, &target, &data_dir, &secret, &key).await?;
    let rss_ready = server.rss_mb()?;
    println!(
        "org {backend}: trellis serve (pid {}) ready in {:.2} s (spawn to the first 200 of \
         /readyz); RSS {rss_ready:.0} MB",
        server.pid,
        ready.as_secs_f64()
    );
    report.memory(&format!("{prefix}rss_at_ready"), rss_ready);
    let outcome = measure(
        options, &server, &cat, reps, &secret, &raw, prefix, ready, report,
    )
    .await;
    let rss_end = server.rss_mb().unwrap_or(0.0);
    let hwm = server.hwm_mb().unwrap_or(0.0);
    server.stop().await;
    let findings = outcome?;
    report.memory(&format!("{prefix}rss_end"), rss_end);
    report.memory(&format!("{prefix}rss_peak"), hwm);
    println!("org {backend}: server RSS at the end {rss_end:.0} MB, peak {hwm:.0} MB");
    targets(&findings);
    if let Target::Postgres(_) = target {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

fn report_fill(backend: &str, filled: Tally) {
    println!(
        "org {backend}: wrote {} events in {:.1} s ({:.0} events/s), as planned",
        filled.events,
        filled.elapsed.as_secs_f64(),
        filled.rate()
    );
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    options: &Options,
    server: &Server,
    cat: &Arc<Catalogue>,
    reps: Vec<RepId>,
    secret: &str,
    raw: &Raw,
    prefix: &'static str,
    ready: Duration,
    report: &mut Report,
) -> Result<Findings> {
    let key = TokenKey::new(secret.as_bytes().to_vec()).map_err(anyhow::Error::msg)?;
    let tokens = cat
        .teams
        .iter()
        .map(|(team, leader)| mint(&key, Role::Leader, leader.to_string(), vec![team.as_uuid()]))
        .collect();
    let org = Arc::new(Org {
        cat: cat.clone(),
        reps,
        tokens,
        team_size: options.team_size,
        weeks: options.weeks,
    });
    // The warm set: two reps of each of 20 teams spread over the organisation.
    let teams = cat.teams.len();
    let step = teams.div_ceil(WARM_TEAMS).max(1);
    let mut warm = Vec::new();
    for team in (0..teams).step_by(step) {
        let first = team * options.team_size as usize;
        for k in 0..WARM_REPS_PER_TEAM {
            let rep = first + k * (options.team_size as usize / WARM_REPS_PER_TEAM).max(1);
            if rep < org.reps.len() && !warm.contains(&rep) {
                warm.push(rep);
            }
        }
    }
    let cold: Vec<usize> = (0..org.reps.len()).filter(|r| !warm.contains(r)).collect();
    let mut http = Http::connect(server.addr).await?;
    let mut rng = Seeded::new(options.seed, 0xA5);
    let started = Instant::now();
    for &(kind, _) in &KINDS {
        for &rep in &warm {
            org.get(&mut http, kind, rep, &mut rng).await?;
        }
    }
    println!(
        "org: warm-up of {} requests over {} reps in {:.1} s; server RSS {:.0} MB",
        KINDS.len() * warm.len(),
        warm.len(),
        started.elapsed().as_secs_f64(),
        server.rss_mb()?
    );
    let started = Instant::now();
    let warmed = warm_writes(&org, server.addr).await?;
    let rss = server.rss_mb()?;
    println!(
        "org: warm-up of writes: {warmed} pieces of feedback, one per rep, in {:.1} s; \
         server RSS {rss:.0} MB",
        started.elapsed().as_secs_f64()
    );

    let slice = options.seconds / 2;
    let mut base = raw.measure(slice).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writers_started = Instant::now();
    let writers = start_writers(&org, server.addr, &stop);
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let sampling = async {
        let cold_kinds = ["rep_page_cold", "api_as_of_cold"];
        for i in 0..options.samples {
            for &(kind, _) in &KINDS {
                let rep = warm[rng.below(warm.len() as u64) as usize];
                let ms = org.get(&mut http, kind, rep, &mut rng).await?;
                samples.entry(kind.to_owned()).or_default().push(ms);
            }
            if i % 4 == 0 && !cold.is_empty() {
                for kind in cold_kinds {
                    let rep = cold[rng.below(cold.len() as u64) as usize];
                    let ms = org.get(&mut http, kind, rep, &mut rng).await?;
                    samples.entry(kind.to_owned()).or_default().push(ms);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    let mut write_ms = Vec::new();
    for handle in writers {
        let (n, ms) = handle.await.context("a writer panicked")??;
        written += n;
        write_ms.extend(ms);
    }
    let elapsed = writers_started.elapsed();
    sampling?;
    base.add(raw.measure(slice).await?);
    report.record(
        &format!("{prefix}org_feedback_8w"),
        "raw single-row autocommit INSERT, 8 writers (server idle)",
        base,
        "POST /v1/reps/{rep}/feedback (HTTP), 8 clients, while pages are read",
        Tally {
            events: written,
            elapsed,
        },
    );

    let mut p99s = Vec::new();
    let kinds: Vec<(&str, Option<f64>)> = KINDS
        .iter()
        .map(|&(k, t)| (k, Some(t)))
        .chain([("rep_page_cold", None), ("api_as_of_cold", None)])
        .collect();
    for (kind, goal) in kinds {
        let Some(ms) = samples.get_mut(kind) else {
            continue;
        };
        ms.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(ms, 0.5), percentile(ms, 0.99));
        println!(
            "{:<24} latency   p50 {p50:>7.2} ms  p99 {p99:>7.2} ms over {} requests",
            format!("{prefix}{kind}"),
            ms.len()
        );
        report.latency(&format!("{prefix}{kind}_p50"), p50);
        report.latency(&format!("{prefix}{kind}_p99"), p99);
        if let Some(goal) = goal {
            p99s.push((kind.to_owned(), p99, goal));
        }
    }
    write_ms.sort_by(f64::total_cmp);
    let (w50, w99) = (percentile(&write_ms, 0.5), percentile(&write_ms, 0.99));
    println!(
        "{:<24} latency   p50 {w50:>7.2} ms  p99 {w99:>7.2} ms over {} requests",
        format!("{prefix}feedback_write"),
        write_ms.len()
    );
    report.latency(&format!("{prefix}feedback_write_p50"), w50);
    report.latency(&format!("{prefix}feedback_write_p99"), w99);
    report.latency(
        &format!("{prefix}start_to_ready"),
        ready.as_secs_f64() * 1000.0,
    );
    report.memory(&format!("{prefix}rss_after_warmup"), rss);
    Ok(Findings {
        prefix,
        p99: p99s,
        rss_mb: rss,
        ready,
    })
}

/// One line per target of the issue: the figure and whether it is met.
fn targets(f: &Findings) {
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    for (kind, p99, goal) in &f.p99 {
        println!(
            "target {:<28} p99 {p99:>8.2} ms  < {goal:>5.0} ms  {}",
            format!("{}{kind}", f.prefix),
            verdict(p99 < goal)
        );
    }
    println!(
        "target {:<28} {:>12.0} MB  < {:>5} MB  {}",
        format!("{}rss_after_warmup", f.prefix),
        f.rss_mb,
        1024,
        verdict(f.rss_mb < 1024.0)
    );
    let s = f.ready.as_secs_f64();
    println!(
        "target {:<28} {s:>13.2} s  < {:>6} s  {}",
        format!("{}start_to_ready", f.prefix),
        10,
        verdict(s < 10.0)
    );
}
