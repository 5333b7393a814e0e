//! Projections: read models from the log, on both backends.
//!
//! - A scripted quarter for one team, every number worked out by hand.
//! - Replay equals live: live processing in many small batches while events
//!   are appended gives byte-for-byte the documents a rebuild from zero gives.
//! - A rebuild in bulk — folded in shards, written by several writers at
//!   once — writes what live processing wrote, batch after batch, also when
//!   teams, leaders and standards change midway.
//! - A failed write (rolled back, or committed with the answer lost) and a
//!   runner killed mid-way lose nothing and double nothing; a rebuild that
//!   fails or is dropped leaves the active generation serving and nothing
//!   of its own behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use trellis_domain::competency::{self, CompetencyCommand};
use trellis_domain::rep::{
    ActionItem, ActionItemCompleted, CoachingSessionHeld, Correction, FactCorrected, FeedbackGiven,
    FeedbackKind, ImprovementPlanClosed, ImprovementPlanStarted, MeasurementSource, Owner,
    PerformanceMeasured, PlanOutcome, PlanTarget, RepDeparted, RepJoined, SkillAssessed,
    SupportCategory, SupportRequested, SupportResolved, TrainingCompleted, Visibility,
};
use trellis_domain::standard::RampStep;
use trellis_domain::team::TeamCommand;
use trellis_domain::{
    Aggregate, CompetencyAggregate, CompetencyState, CompetencyStatus, Direction, Event, Period,
    PeriodKind, RepAggregate, RepCommand, RepId, RepState, StandardAggregate, StandardCommand,
    StandardKind, StandardState, TeamAggregate, TeamId, TeamState,
};
use trellis_domain::{CompetencyId, StandardId};
use trellis_eventstore::{
    Checkpoint, CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use trellis_projections::Error;
use trellis_projections::engine::{Engine, EngineConfig, RebuildConfig};
use trellis_projections::growth::derive::{Phase, RepStatus, StandingKind};
use trellis_projections::growth::{Growth, GrowthSettings, NAME, kinds};
use trellis_projections::projection::{DocChange, Envelope, Projection};
use trellis_projections::query::ReadModels;
use trellis_projections::store::{
    Batch, DocPage, Generation, Lease, LeaseKind, Part, Parts, ReadStore, Status,
};
use trellis_tests::{Backend, Kind};
use uuid::Uuid;

use crate::http::read_store;

fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(n))
}

fn date(iso: &str) -> NaiveDate {
    iso.parse().expect("a valid date")
}

fn text<T: TryFrom<&'static str>>(s: &'static str) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(s).expect("valid text")
}

fn now() -> DateTime<Utc> {
    "2026-04-01T12:00:00Z".parse().expect("an instant")
}

fn growth() -> Box<Growth> {
    Box::new(Growth::new(GrowthSettings::default()))
}

/// Decides a command on fresh state and appends what it decides, as the
/// command service will.
async fn exec<A>(
    store: &dyn EventStore,
    state: &mut A::State,
    stream: &str,
    command: A::Command,
) -> bool
where
    A: Aggregate<Event: Into<Event>>,
{
    let Ok(events) = A::decide(state, command) else {
        return false;
    };
    if events.is_empty() {
        return true;
    }
    let stream = StreamId::new(stream).expect("stream id");
    let version = store.stream_version(&stream).await.expect("version");
    let new: Vec<NewEvent> = events
        .iter()
        .map(|e| {
            let event: Event = e.clone().into();
            NewEvent::new(
                event.event_type(),
                event.schema_version(),
                event.to_payload(),
                now(),
            )
        })
        .collect();
    store
        .append(
            &stream,
            ExpectedVersion::Exact(version),
            &CommandMeta::new("leader-1", now()),
            &new,
        )
        .await
        .expect("append");
    for event in &events {
        *state = A::evolve(std::mem::take(state), event);
    }
    true
}

// ---------------------------------------------------------------------------
// The scripted quarter

const TEAM: u128 = 1;
const LEADER: u128 = 2;
const DISCOVERY: u128 = 10;
const OBJECTIONS: u128 = 11;
const QUALITY: u128 = 20;
const MEETINGS: u128 = 21;
const ANA: u128 = 100;
const BEN: u128 = 101;
const CARA: u128 = 102;

struct Quarter<'a> {
    store: &'a dyn EventStore,
    reps: BTreeMap<u128, RepState>,
    next_id: u128,
}

impl Quarter<'_> {
    fn fresh(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    async fn rep(&mut self, rep: u128, command: RepCommand) {
        let mut state = self.reps.remove(&rep).unwrap_or_default();
        let stream = RepId::from(Uuid::from_u128(rep)).stream_id();
        assert!(
            exec::<RepAggregate>(self.store, &mut state, &stream, command).await,
            "a scripted rep command was refused"
        );
        self.reps.insert(rep, state);
    }

    async fn join(&mut self, rep: u128, name: &'static str, start: &str) {
        self.join_team(rep, name, start, TEAM).await;
    }

    async fn join_team(&mut self, rep: u128, name: &'static str, start: &str, team: u128) {
        self.rep(
            rep,
            RepCommand::JoinRep {
                joined: RepJoined {
                    rep_id: id(rep),
                    name: text(name),
                    role: text("AE"),
                    team_id: id(team),
                    start_date: date(start),
                },
                team_exists: true,
                now: now(),
            },
        )
        .await;
    }

    async fn measure(&mut self, rep: u128, metric: &'static str, month: &str, value: f64) {
        let measurement_id = self.fresh();
        let period: Period = month.parse().expect("a period");
        self.rep(
            rep,
            RepCommand::MeasurePerformance {
                measurement: PerformanceMeasured {
                    measurement_id: id(measurement_id),
                    metric: text(metric),
                    period,
                    value: value.try_into().expect("a value"),
                    source: MeasurementSource::CrmImport,
                },
                now: now(),
                // Decided by the domain directly: what the write side
                // reads of the standards is tested with the write API.
                standard_periods: vec![period.kind()],
                largest_target: value,
            },
        )
        .await;
    }

    async fn assess(&mut self, rep: u128, competency: u128, level: u8, on: &str) -> u128 {
        let assessment = self.fresh();
        self.rep(
            rep,
            RepCommand::AssessSkill {
                assessment: SkillAssessed {
                    assessment_id: id(assessment),
                    leader_id: id(LEADER),
                    competency_id: id(competency),
                    level: level.try_into().expect("a level"),
                    evidence: text("observed on calls"),
                    assessed_on: date(on),
                },
                competency: CompetencyStatus::Active,
                now: now(),
            },
        )
        .await;
        assessment
    }

    #[allow(clippy::too_many_arguments)]
    async fn coach(
        &mut self,
        rep: u128,
        on: &str,
        minutes: u32,
        focus: u128,
        items: Vec<(Owner, &str)>,
    ) -> Vec<u128> {
        let session = self.fresh();
        let items: Vec<(u128, Owner, NaiveDate)> = items
            .into_iter()
            .map(|(owner, due)| (self.fresh(), owner, date(due)))
            .collect();
        self.rep(
            rep,
            RepCommand::HoldCoachingSession {
                session: CoachingSessionHeld {
                    session_id: id(session),
                    leader_id: id(LEADER),
                    held_on: date(on),
                    duration_minutes: minutes,
                    focus: vec![id(focus)],
                    notes: text("walked through two calls"),
                    visibility: Visibility::Shared,
                    action_items: items
                        .iter()
                        .map(|(item, owner, due)| ActionItem {
                            action_item_id: id(*item),
                            description: text("follow up"),
                            owner: *owner,
                            due_on: *due,
                        })
                        .collect(),
                },
                now: now(),
            },
        )
        .await;
        items.into_iter().map(|(item, _, _)| item).collect()
    }

    async fn complete(&mut self, rep: u128, item: u128, on: &str) {
        self.rep(
            rep,
            RepCommand::CompleteActionItem {
                completed: ActionItemCompleted {
                    action_item_id: id(item),
                    on: date(on),
                },
                now: now(),
            },
        )
        .await;
    }

    async fn feedback(
        &mut self,
        rep: u128,
        competency: u128,
        kind: FeedbackKind,
        on: &str,
        visibility: Visibility,
    ) {
        self.feedback_by(LEADER, rep, competency, kind, on, visibility)
            .await;
    }

    /// Feedback from `leader`; its id.
    async fn feedback_by(
        &mut self,
        leader: u128,
        rep: u128,
        competency: u128,
        kind: FeedbackKind,
        on: &str,
        visibility: Visibility,
    ) -> u128 {
        let feedback = self.fresh();
        self.rep(
            rep,
            RepCommand::GiveFeedback {
                feedback: FeedbackGiven {
                    feedback_id: id(feedback),
                    leader_id: id(leader),
                    competency_id: id(competency),
                    kind,
                    note: text("specific note"),
                    visibility,
                    given_on: date(on),
                },
                competency: CompetencyStatus::Active,
                now: now(),
            },
        )
        .await;
        feedback
    }

    async fn support(&mut self, rep: u128, category: SupportCategory, raised: &str) -> u128 {
        let request = self.fresh();
        self.rep(
            rep,
            RepCommand::RaiseSupportRequest {
                request: SupportRequested {
                    request_id: id(request),
                    category,
                    description: text("blocked"),
                    raised_on: date(raised),
                },
                now: now(),
            },
        )
        .await;
        request
    }

    async fn resolve(&mut self, rep: u128, request: u128, on: &str) {
        self.rep(
            rep,
            RepCommand::ResolveSupportRequest {
                resolved: SupportResolved {
                    request_id: id(request),
                    leader_id: id(LEADER),
                    resolution: text("sorted"),
                    on: date(on),
                },
                now: now(),
            },
        )
        .await;
    }

    async fn plan(&mut self, rep: u128, started: &str, review: &str, outcome: PlanOutcome) {
        let plan = self.fresh();
        self.rep(
            rep,
            RepCommand::StartImprovementPlan {
                plan: ImprovementPlanStarted {
                    plan_id: id(plan),
                    leader_id: id(LEADER),
                    targets: vec![PlanTarget {
                        description: text("book 15 meetings"),
                        standard_id: Some(id(MEETINGS)),
                    }],
                    started_on: date(started),
                    review_on: date(review),
                },
                now: now(),
            },
        )
        .await;
        self.rep(
            rep,
            RepCommand::CloseImprovementPlan {
                closed: ImprovementPlanClosed {
                    plan_id: id(plan),
                    outcome,
                    note: text("reviewed"),
                    on: date(review),
                },
                now: now(),
            },
        )
        .await;
    }
}

/// Appends the quarter: Q1 2026, one team, three AEs.
async fn script_quarter(store: &dyn EventStore) {
    let mut team = TeamState::default();
    let team_stream = TeamId::from(Uuid::from_u128(TEAM)).stream_id();
    for command in [
        TeamCommand::FormTeam {
            team_id: id(TEAM),
            name: text("Enterprise East"),
            name_taken: None,
        },
        TeamCommand::AssignLeader {
            leader_id: id(LEADER),
            leader_name: text("Lena Park"),
        },
    ] {
        assert!(exec::<TeamAggregate>(store, &mut team, &team_stream, command).await);
    }
    for (competency, name) in [(DISCOVERY, "Discovery"), (OBJECTIONS, "Objection handling")] {
        let mut state = CompetencyState::default();
        let level = |s: &'static str| text::<trellis_domain::NonEmptyText>(s);
        let command = CompetencyCommand::DefineCompetency {
            competency_id: id(competency),
            name: text(name),
            description: text("a skill"),
            rubric: trellis_domain::Rubric::new([
                level("1"),
                level("2"),
                level("3"),
                level("4"),
                level("5"),
            ]),
            name_taken: None,
        };
        let stream = trellis_domain::CompetencyId::from(Uuid::from_u128(competency)).stream_id();
        assert!(exec::<CompetencyAggregate>(store, &mut state, &stream, command).await);
    }
    let _ = competency::decide;

    // Quality: discovery score ≥ 80 a month. Quantity: 20 meetings a month
    // (new hires: 50% in their first month, 75% in their second), revised to
    // 25 from March.
    let mut quality = StandardState::default();
    let quality_stream = trellis_domain::StandardId::from(Uuid::from_u128(QUALITY)).stream_id();
    assert!(
        exec::<StandardAggregate>(
            store,
            &mut quality,
            &quality_stream,
            StandardCommand::SetStandard {
                standard_id: id(QUALITY),
                name: text("Discovery quality"),
                metric: text("discovery_score"),
                kind: StandardKind::Quality,
                direction: Direction::AtLeast,
                unit: text("points"),
                period: PeriodKind::Month,
                target: 80.0.try_into().unwrap(),
                roles: vec![text("AE")],
                effective_from: date("2026-01-01"),
                ramp: vec![],
                others: vec![],
            },
        )
        .await
    );
    let mut meetings = StandardState::default();
    let meetings_stream = trellis_domain::StandardId::from(Uuid::from_u128(MEETINGS)).stream_id();
    for command in [
        StandardCommand::SetStandard {
            standard_id: id(MEETINGS),
            name: text("Meetings booked"),
            metric: text("meetings_booked"),
            kind: StandardKind::Quantity,
            direction: Direction::AtLeast,
            unit: text("meetings"),
            period: PeriodKind::Month,
            target: 20.0.try_into().unwrap(),
            roles: vec![text("AE")],
            effective_from: date("2026-01-01"),
            ramp: vec![
                RampStep {
                    period_index: 1,
                    percent_of_target: 50,
                },
                RampStep {
                    period_index: 2,
                    percent_of_target: 75,
                },
            ],
            others: vec![],
        },
        StandardCommand::ReviseStandard {
            target: 25.0.try_into().unwrap(),
            effective_from: date("2026-03-01"),
            roles: None,
            ramp: None,
            others: vec![],
        },
    ] {
        assert!(exec::<StandardAggregate>(store, &mut meetings, &meetings_stream, command).await);
    }

    let mut q = Quarter {
        store,
        reps: BTreeMap::new(),
        next_id: 1000,
    };
    q.join(ANA, "Ana Lopez", "2025-10-01").await;
    q.join(BEN, "Ben Okafor", "2026-02-02").await;
    q.join(CARA, "Cara Holm", "2025-06-01").await;

    // Ana: a veteran who meets everything; her February import is corrected.
    q.assess(ANA, DISCOVERY, 3, "2026-01-05").await;
    let items = q
        .coach(
            ANA,
            "2026-01-14",
            45,
            DISCOVERY,
            vec![(Owner::Rep, "2026-01-21")],
        )
        .await;
    q.complete(ANA, items[0], "2026-01-20").await;
    q.feedback(
        ANA,
        DISCOVERY,
        FeedbackKind::Praise,
        "2026-01-14",
        Visibility::Shared,
    )
    .await;
    q.measure(ANA, "discovery_score", "2026-01", 85.0).await;
    q.measure(ANA, "meetings_booked", "2026-01", 22.0).await;
    q.measure(ANA, "discovery_score", "2026-02", 90.0).await;
    q.measure(ANA, "meetings_booked", "2026-02", 18.0).await;
    q.measure(ANA, "meetings_booked", "2026-02", 20.0).await; // re-imported: a correction
    let training = q.fresh();
    q.rep(
        ANA,
        RepCommand::RecordTraining {
            training: TrainingCompleted {
                training_id: id(training),
                title: text("Objection handling 101"),
                competency_id: Some(id(OBJECTIONS)),
                completed_on: date("2026-02-20"),
            },
            now: now(),
        },
    )
    .await;
    q.assess(ANA, DISCOVERY, 4, "2026-03-02").await;
    let request = q.support(ANA, SupportCategory::Leads, "2026-03-02").await;
    q.resolve(ANA, request, "2026-03-05").await;
    q.measure(ANA, "discovery_score", "2026-03", 88.0).await;
    q.measure(ANA, "meetings_booked", "2026-03", 25.0).await;

    // Ben: a new hire on the ramp, short of meetings twice.
    let wrong = q.assess(BEN, OBJECTIONS, 2, "2026-02-03").await;
    let retracted = q.assess(BEN, DISCOVERY, 2, "2026-02-03").await;
    q.rep(
        BEN,
        RepCommand::CorrectFact {
            correction: FactCorrected {
                fact_id: Uuid::from_u128(wrong),
                reason: text("entered the wrong level"),
                correction: Correction::SkillLevel {
                    level: 3u8.try_into().unwrap(),
                    evidence: text("re-rated"),
                },
            },
            largest_target: None,
        },
    )
    .await;
    q.rep(
        BEN,
        RepCommand::CorrectFact {
            correction: FactCorrected {
                fact_id: Uuid::from_u128(retracted),
                reason: text("assessed the wrong rep"),
                correction: Correction::Retracted,
            },
            largest_target: None,
        },
    )
    .await;
    let request = q.support(BEN, SupportCategory::Tools, "2026-02-04").await;
    q.resolve(BEN, request, "2026-02-09").await;
    let items = q
        .coach(
            BEN,
            "2026-02-10",
            30,
            OBJECTIONS,
            vec![
                (Owner::Leader(id(LEADER)), "2026-02-17"),
                (Owner::Rep, "2026-03-10"),
            ],
        )
        .await;
    q.complete(BEN, items[0], "2026-02-19").await; // the leader's, two days late
    q.feedback(
        BEN,
        OBJECTIONS,
        FeedbackKind::Constructive,
        "2026-02-10",
        Visibility::Shared,
    )
    .await;
    q.measure(BEN, "meetings_booked", "2026-02", 8.0).await;
    q.measure(BEN, "discovery_score", "2026-02", 70.0).await;
    q.coach(BEN, "2026-03-09", 30, DISCOVERY, vec![]).await;
    q.feedback(
        BEN,
        OBJECTIONS,
        FeedbackKind::Praise,
        "2026-03-09",
        Visibility::Private,
    )
    .await;
    q.support(BEN, SupportCategory::Training, "2026-03-16")
        .await;
    q.measure(BEN, "meetings_booked", "2026-03", 15.0).await;
    q.measure(BEN, "discovery_score", "2026-03", 82.0).await;

    // Cara: three improvement plans, one per outcome, then she leaves.
    q.measure(CARA, "meetings_booked", "2026-01", 10.0).await;
    q.plan(CARA, "2026-01-05", "2026-01-30", PlanOutcome::Extended)
        .await;
    q.plan(CARA, "2026-02-02", "2026-02-27", PlanOutcome::Met)
        .await;
    let items = q
        .coach(
            CARA,
            "2026-03-16",
            20,
            OBJECTIONS,
            vec![(Owner::Leader(id(LEADER)), "2026-03-20")],
        )
        .await;
    q.complete(CARA, items[0], "2026-03-18").await;
    q.plan(CARA, "2026-03-02", "2026-03-27", PlanOutcome::NotMet)
        .await;
    q.rep(
        CARA,
        RepCommand::Depart {
            departure: RepDeparted {
                on: date("2026-03-31"),
                reason: text("moved on"),
            },
            now: now(),
        },
    )
    .await;
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value");
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

async fn the_scripted_quarter_gives_the_numbers_worked_out_by_hand(
    kind: Kind,
) -> Vec<(String, String, Value)> {
    let backend = Backend::new(kind).await;
    script_quarter(&*backend.store).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    let engine = Engine::new(backend.store.clone(), read.clone());
    let applied = engine
        .catch_up(&*growth())
        .await
        .unwrap()
        .expect("the lease");
    assert!(applied > 50, "{applied} events");
    let models = ReadModels::new(read.clone());
    let today = date("2026-04-01");

    // Ana: quality gate passed at the end of March (85, 90, 88 ≥ 80 for 3
    // months); every standard met in its latest period: thriving.
    let ana = models.rep_profile(id(ANA), today).await.unwrap().unwrap();
    assert_eq!(ana.profile.phase.phase, Phase::Quantity);
    assert_eq!(
        ana.profile.phase.quality_gate_passed_on,
        Some(date("2026-03-31"))
    );
    assert_eq!(
        ana.standing.standing,
        StandingKind::Thriving,
        "{:?}",
        ana.standing
    );
    assert_eq!(ana.profile.levels[&id(DISCOVERY)].level, 4);
    assert_eq!(ana.profile.last_coached_on, Some(date("2026-01-14")));
    assert_eq!(ana.overdue_action_items, 0);
    assert!(ana.open_action_items.is_empty());

    let months = models
        .growth_timeline(
            id(ANA),
            PeriodKind::Month,
            date("2026-01-01"),
            date("2026-03-31"),
            today,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(months.len(), 3);
    let meetings = |row: &trellis_projections::query::TimelineRowView| {
        row.row
            .standards
            .iter()
            .find(|s| s.standard_id == id(MEETINGS))
            .cloned()
            .expect("the meetings standard")
    };
    // January: 85/80 and 22/20.
    close(months[0].row.quality_attainment, 85.0 / 80.0);
    close(months[0].row.quantity_attainment, 22.0 / 20.0);
    assert_eq!(months[0].row.coaching_sessions, 1);
    assert_eq!(months[0].row.coaching_minutes, 45);
    assert_eq!(months[0].row.action_items_completed, 1);
    assert_eq!(months[0].row.action_items_completed_on_time, 1);
    assert_eq!(months[0].row.feedback[&id(DISCOVERY)].praise, 1);
    assert_eq!(months[0].row.levels[&id(DISCOVERY)], 3);
    // February: the re-imported 20 replaces 18.
    let feb = meetings(&months[1]);
    assert_eq!(
        (feb.actual, feb.target, feb.version),
        (Some(20.0), Some(20.0), Some(1))
    );
    close(feb.attainment, 1.0);
    assert_eq!(months[1].row.trainings_completed.len(), 1);
    // March: judged against version 2 (25).
    let mar = meetings(&months[2]);
    assert_eq!(
        (mar.actual, mar.target, mar.version),
        (Some(25.0), Some(25.0), Some(2))
    );
    assert_eq!(months[2].row.levels[&id(DISCOVERY)], 4);

    // Ben: ramp 50% of 20 in February, 75% of 25 in March; 8 and 15 meetings
    // are 80% twice: needs support, with the open request and, today, the
    // overdue action item (due 10 March).
    let ben_months = models
        .growth_timeline(
            id(BEN),
            PeriodKind::Month,
            date("2026-01-01"),
            date("2026-03-31"),
            today,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ben_months.len(), 2);
    let feb = meetings(&ben_months[0]);
    assert_eq!(ben_months[0].row.period_index, 1);
    assert_eq!(
        (feb.target, feb.full_target, feb.ramp_percent),
        (Some(10.0), Some(20.0), Some(50))
    );
    close(feb.attainment, 0.8);
    let mar = meetings(&ben_months[1]);
    assert_eq!(
        (mar.target, mar.full_target, mar.ramp_percent),
        (Some(18.75), Some(25.0), Some(75))
    );
    close(mar.attainment, 0.8);
    close(ben_months[1].row.quality_attainment, 82.0 / 80.0);
    // The corrected level counts, the retracted assessment is gone.
    assert_eq!(ben_months[0].row.levels.get(&id(OBJECTIONS)), Some(&3));
    assert_eq!(ben_months[0].row.levels.get(&id(DISCOVERY)), None);
    assert_eq!(ben_months[0].row.feedback[&id(OBJECTIONS)].constructive, 1);
    assert_eq!(ben_months[1].row.feedback[&id(OBJECTIONS)].praise, 1);
    assert_eq!(
        ben_months[1].action_items_overdue, 1,
        "due 10 March, still open"
    );
    let ben = models.rep_profile(id(BEN), today).await.unwrap().unwrap();
    assert_eq!(ben.profile.phase.phase, Phase::Quality);
    assert_eq!(ben.standing.standing, StandingKind::NeedsSupport);
    assert_eq!(
        ben.standing.reasons,
        vec![
            "Meetings booked: missed in 2026-02 (80%) and 2026-03 (80%)".to_owned(),
            "support request (training) open since 2026-03-16".to_owned(),
            "1 action item overdue, the oldest due on 2026-03-10".to_owned(),
        ]
    );
    assert_eq!(ben.overdue_action_items, 1);
    // On 9 March the item was not overdue yet.
    let earlier = models
        .rep_profile(id(BEN), date("2026-03-09"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(earlier.overdue_action_items, 0);

    // Cara: three plans, one per outcome; departed.
    let cara = models.rep_profile(id(CARA), today).await.unwrap().unwrap();
    assert_eq!(cara.profile.status, RepStatus::Departed);
    assert_eq!(cara.standing.standing, StandingKind::Departed);
    let outcomes: Vec<_> = cara.profile.plans.iter().map(|p| p.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Some(PlanOutcome::Extended),
            Some(PlanOutcome::Met),
            Some(PlanOutcome::NotMet)
        ]
    );
    assert!(cara.profile.open_plan.is_none());

    // The team in March: three reps (Cara left on its last day); Ben and Cara
    // coached; meetings 1.0 (Ana) and 0.8 (Ben).
    let march: Period = "2026-03".parse().unwrap();
    let team = models
        .team_view(id(TEAM), march, today)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team.headcount, 3);
    assert_eq!(team.coaching.reps_coached, 2);
    assert_eq!(team.coaching.sessions, 2);
    assert_eq!(team.coaching.minutes, 50);
    close(team.coaching.coverage, 2.0 / 3.0);
    close(team.coaching.sessions_per_rep, 2.0 / 3.0);
    let dist = team
        .attainment
        .iter()
        .find(|d| d.standard_id == id(MEETINGS))
        .unwrap();
    assert_eq!(
        (dist.reps_measured, dist.met, dist.near, dist.missed_badly),
        (2, 1, 1, 0)
    );
    close(dist.median, 0.9);
    let quality = team
        .attainment
        .iter()
        .find(|d| d.standard_id == id(QUALITY))
        .unwrap();
    assert_eq!((quality.reps_measured, quality.met), (2, 2));
    let needing: Vec<RepId> = team.needs_support.iter().map(|r| r.rep_id).collect();
    assert_eq!(needing, vec![id(BEN)]);
    assert_eq!(team.ramp.len(), 1);
    assert_eq!(team.ramp[0].rep_id, id(BEN));
    assert_eq!(team.ramp[0].period_index, 2);
    assert_eq!(team.ramp[0].standards[0].ramp_percent, 75);
    assert!(team.open_plans.is_empty());
    assert_eq!(team.support.raised_in_period, 2);
    assert_eq!(team.support.resolved_in_period, 1);
    assert_eq!(team.support.open, 1);
    close(team.support.median_days_to_resolve, 3.0);
    // In January Ben had not started.
    let january = models
        .team_view(id(TEAM), "2026-01".parse().unwrap(), today)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(january.headcount, 2);

    // The leader's quarter: 4 sessions (125 minutes) with 3 reps; 2 praise,
    // 1 constructive; 2 requests resolved in 5 and 3 days; of the 2 items
    // the leader owed, one on time, one late.
    let card = models
        .leader_scorecard(id(LEADER), date("2026-01-01"), date("2026-03-31"), today)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.sessions_held, 4);
    assert_eq!(card.coaching_minutes, 125);
    assert_eq!(card.reps_coached, 3);
    assert_eq!((card.feedback_praise, card.feedback_constructive), (2, 1));
    close(card.praise_share, 2.0 / 3.0);
    assert_eq!(card.support_resolved, 2);
    close(card.median_days_to_resolve, 4.0);
    assert_eq!(card.action_items_due, 2);
    assert_eq!(card.action_items_completed_on_time, 1);
    assert_eq!(card.action_items_completed_late, 1);
    close(card.on_time_rate, 0.5);

    // The analysts' views show the same.
    let generation = active(&*read).await;
    let dump = read.dump(NAME, generation.generation).await.unwrap();
    let docs = dump
        .into_iter()
        .map(|(kind, key, doc)| (kind, key, serde_json::from_str(&doc).unwrap()))
        .collect();
    assert_eq!(generation.events_applied, applied);
    backend.cleanup().await;
    docs
}

async fn active(read: &dyn ReadStore) -> Generation {
    read.generations()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.model == NAME && g.status == Status::Active)
        .expect("an active generation")
}

#[tokio::test]
async fn the_scripted_quarter_gives_the_same_documents_on_both_backends() {
    let postgres = the_scripted_quarter_gives_the_numbers_worked_out_by_hand(Kind::Postgres).await;
    let sqlite = the_scripted_quarter_gives_the_numbers_worked_out_by_hand(Kind::Sqlite).await;
    assert_eq!(postgres.len(), sqlite.len());
    for (pg, lite) in postgres.iter().zip(&sqlite) {
        assert_eq!(pg, lite);
    }
}

#[tokio::test]
async fn the_views_expose_the_read_models_as_columns_on_postgres() {
    let backend = Backend::postgres().await;
    script_quarter(&*backend.store).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    Engine::new(backend.store.clone(), read)
        .catch_up(&*growth())
        .await
        .unwrap();
    let client = backend.database().superuser().await;
    let row = client
        .query_one(
            "SELECT name, standing, phase, open_support_requests FROM trellis.rep_profiles WHERE rep_id = $1",
            &[&Uuid::from_u128(BEN)],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Ben Okafor");
    assert_eq!(row.get::<_, String>(1), "needs_support");
    assert_eq!(row.get::<_, String>(2), "quality");
    assert_eq!(row.get::<_, i32>(3), 1);
    let row = client
        .query_one(
            "SELECT target, attainment, ramp_percent FROM trellis.growth_timeline_standards \
              WHERE rep_id = $1 AND bucket = 'month' AND period = '2026-03' AND metric = 'meetings_booked'",
            &[&Uuid::from_u128(BEN)],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, f64>(0), 18.75);
    assert!((row.get::<_, f64>(1) - 0.8).abs() < 1e-9);
    assert_eq!(row.get::<_, i32>(2), 75);
    backend.cleanup().await;
}

/// A PostgreSQL backend, its read store, and an empty active generation of
/// the growth projection at the log's start.
async fn an_active_generation_on_postgres() -> (Backend, Arc<dyn ReadStore>, Generation) {
    let backend = Backend::postgres().await;
    let read = read_store(&backend).await;
    let generation = read
        .create_generation(NAME, "growth/test", Status::Active)
        .await
        .unwrap();
    (backend, read, generation)
}

/// A batch carrying more than one statement's share of documents
/// (`STATEMENT_BYTES`) is written in several statements of one transaction:
/// all of it, or, when the server refuses a document of a later statement,
/// none of it and the checkpoint where it was.
#[tokio::test]
async fn a_batch_larger_than_a_statement_is_written_whole_or_not_at_all_on_postgres() {
    use trellis_projections::store::postgres::STATEMENT_BYTES;

    let (backend, read, generation) = an_active_generation_on_postgres().await;
    // Counts the INSERT statements into the read models.
    let owner = backend.database().superuser().await;
    owner
        .batch_execute(
            "CREATE TABLE public.inserts (n integer NOT NULL); \
             CREATE FUNCTION public.count_insert() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN INSERT INTO public.inserts VALUES (1); RETURN NULL; END $$; \
             CREATE TRIGGER count_insert AFTER INSERT ON trellis.read_models \
               FOR EACH STATEMENT EXECUTE FUNCTION public.count_insert()",
        )
        .await
        .unwrap();
    // Three documents fill a statement's share short of a fourth.
    let pad = "x".repeat(STATEMENT_BYTES / 3 - 64);
    let docs = |bad_last: bool| -> Vec<DocChange> {
        (0..7)
            .map(|n| DocChange {
                kind: "rep_profile",
                key: format!("rep-{n}"),
                // Text holds no NUL byte, and serde_json never writes one
                // (it escapes it): the server refuses this document.
                doc: Some(if bad_last && n == 6 {
                    "{\"pad\":\"\0\"}".to_owned()
                } else {
                    format!(r#"{{"n":{n},"pad":"{pad}"}}"#)
                }),
            })
            .collect()
    };
    let checkpoint = || async {
        read.generations()
            .await
            .unwrap()
            .into_iter()
            .find(|g| g.generation == generation.generation)
            .expect("the generation")
            .checkpoint
    };

    let refused = docs(true);
    commit_at(&*read, generation.generation, &refused, 1)
        .await
        .expect_err("the server refuses the last document");
    assert!(
        read.dump(NAME, generation.generation)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(checkpoint().await, Checkpoint::START);

    let written = docs(false);
    assert!(
        commit_at(&*read, generation.generation, &written, 2)
            .await
            .unwrap()
    );
    let dump = read.dump(NAME, generation.generation).await.unwrap();
    assert_eq!(dump.len(), 7);
    for (change, (_, key, doc)) in written.iter().zip(&dump) {
        assert_eq!((&change.key, change.doc.as_ref()), (key, Some(doc)));
    }
    assert_eq!(checkpoint().await, Checkpoint { tx: 2, position: 2 });
    let inserts: i64 = owner
        .query_one("SELECT count(*) FROM public.inserts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inserts, 3, "seven documents, three to a statement");
    drop(owner);
    backend.cleanup().await;
}

/// Every scan of the documents in a plan: its index condition and the rows
/// it read (kept and filtered out).
fn document_scans(node: &Value, out: &mut Vec<(String, f64)>) {
    if node["Relation Name"] == "read_models" {
        out.push((
            node["Index Cond"].as_str().unwrap_or("").to_owned(),
            node["Actual Rows"].as_f64().unwrap_or(0.0)
                * node["Actual Loops"].as_f64().unwrap_or(1.0)
                + node["Rows Removed by Filter"].as_f64().unwrap_or(0.0),
        ));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        document_scans(child, out);
    }
}

/// Listing a kind (the teams every page's access check reads) and each
/// page of a restore read the documents they answer, not the generation's
/// others. Asked for as `kind = ANY(...)` in (kind, key) order with a
/// limit, the planner walked every document of the generation and
/// filtered them by kind, which doubled the rep page's time at 5,000 reps.
#[tokio::test]
async fn listing_a_kind_and_each_restore_page_read_only_what_they_answer_on_postgres() {
    use trellis_projections::store::postgres::LOAD_DOCUMENTS;

    let (backend, read, generation) = an_active_generation_on_postgres().await;
    let mut changes: Vec<DocChange> = (0..3000)
        .map(|n| DocChange {
            kind: "rep_profile",
            key: format!("rep-{n:04}"),
            doc: Some(format!(r#"{{"n":{n}}}"#)),
        })
        .collect();
    changes.extend((0..3).map(|n| DocChange {
        kind: "team",
        key: format!("team-{n}"),
        doc: Some(format!(r#"{{"n":{n}}}"#)),
    }));
    assert!(
        commit_at(&*read, generation.generation, &changes, 1)
            .await
            .unwrap()
    );
    let owner = backend.database().superuser().await;
    let rows_read = |plan: &Value| {
        let mut found = vec![];
        document_scans(&plan[0]["Plan"], &mut found);
        assert_eq!(found.len(), 1, "one scan of the documents: {plan}");
        found[0].1
    };
    let plan: Value = owner
        .query_one(
            &format!("EXPLAIN (ANALYZE, FORMAT JSON) {LOAD_DOCUMENTS}"),
            &[&NAME, &generation.generation, &"team", &"", &i64::MAX],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows_read(&plan), 3.0, "listing the teams: {plan}");
    let plan: Value = owner
        .query_one(
            &format!("EXPLAIN (ANALYZE, FORMAT JSON) {LOAD_DOCUMENTS}"),
            &[
                &NAME,
                &generation.generation,
                &"rep_profile",
                &"rep-2990",
                &5i64,
            ],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        rows_read(&plan),
        5.0,
        "a page of five after rep-2990: {plan}"
    );
    backend.cleanup().await;
}

/// Documents are read by probing the primary key once per key asked for,
/// even on a table the planner has no statistics for (a generation just
/// built, a server without autovacuum). The earlier `key = ANY($3)` was
/// planned, there, as a scan of every document of the kind filtered by key.
#[tokio::test]
async fn documents_are_read_one_key_probe_each_without_statistics_on_postgres() {
    use trellis_projections::store::postgres::GET_DOCUMENTS;

    let (backend, read, generation) = an_active_generation_on_postgres().await;
    let changes: Vec<DocChange> = (0..3000)
        .map(|n| DocChange {
            kind: "rep_profile",
            key: format!("rep-{n:04}"),
            doc: Some(format!(r#"{{"n":{n}}}"#)),
        })
        .collect();
    assert!(
        commit_at(&*read, generation.generation, &changes, 1)
            .await
            .unwrap()
    );
    let owner = backend.database().superuser().await;
    let analyzed: Option<DateTime<Utc>> = owner
        .query_one(
            "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables \
              WHERE schemaname = 'trellis' AND relname = 'read_models'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analyzed, None, "the table has no statistics yet");
    let keys = vec!["rep-0007".to_owned(), "rep-2999".to_owned()];
    let plan: Value = owner
        .query_one(
            &format!("EXPLAIN (ANALYZE, FORMAT JSON) {GET_DOCUMENTS}"),
            &[&NAME, &"rep_profile", &keys],
        )
        .await
        .unwrap()
        .get(0);
    let mut found = vec![];
    document_scans(&plan[0]["Plan"], &mut found);
    assert_eq!(found.len(), 1, "one scan of the documents: {plan}");
    let (condition, rows) = &found[0];
    assert!(
        condition.contains("(key = k.key)"),
        "the key is not in the index condition: {plan}"
    );
    assert_eq!(
        *rows, 2.0,
        "read other documents than those asked for: {plan}"
    );
    // And `get` answers each key asked for once, in key order.
    let asked = ["rep-2999", "rep-0007", "rep-2999", "rep-9999"].map(str::to_owned);
    let got = read.get(NAME, "rep_profile", &asked).await.unwrap();
    assert_eq!(
        got,
        vec![
            ("rep-0007".to_owned(), r#"{"n":7}"#.to_owned()),
            ("rep-2999".to_owned(), r#"{"n":2999}"#.to_owned()),
        ]
    );
    drop(owner);
    backend.cleanup().await;
}

/// The growth projection, except that deriving its documents blocks the
/// thread until `release` says so (or 10 s pass): whether it was released
/// goes to `released`.
struct HeldUntilReleased {
    inner: Box<dyn Projection>,
    deriving: Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
    released: Arc<std::sync::atomic::AtomicBool>,
}

impl Projection for HeldUntilReleased {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
    fn fresh(&self) -> Box<dyn Projection> {
        Box::new(HeldUntilReleased {
            inner: self.inner.fresh(),
            deriving: self.deriving.clone(),
            release: self.release.clone(),
            released: self.released.clone(),
        })
    }
    fn state_kinds(&self) -> &'static [&'static str] {
        self.inner.state_kinds()
    }
    fn restore(&mut self, kind: &str, key: &str, doc: &str) -> Result<(), String> {
        self.inner.restore(kind, key, doc)
    }
    fn apply(&mut self, event: &Envelope) {
        self.inner.apply(event);
    }
    fn take_changes(&mut self) -> Vec<DocChange> {
        let deriving = self.deriving.lock().unwrap().take();
        if let Some(deriving) = deriving {
            let _ = deriving.send(());
            let got = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            self.released.store(got.is_ok(), Ordering::SeqCst);
        }
        self.inner.take_changes()
    }
}

/// While the live runner folds a batch and derives its documents, the other
/// tasks of its runtime worker go on (handed to another worker): on two
/// cores, pages and API reads waited behind every batch. With one worker,
/// the task that releases the fold runs only if the fold left the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_live_fold_leaves_its_runtime_worker_to_other_tasks() {
    let backend = Backend::sqlite().await;
    script_quarter(&*backend.store).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    let (deriving, derived) = tokio::sync::oneshot::channel();
    let (release, held) = std::sync::mpsc::channel();
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let projection = HeldUntilReleased {
        inner: growth(),
        deriving: Arc::new(std::sync::Mutex::new(Some(deriving))),
        release: Arc::new(std::sync::Mutex::new(held)),
        released: released.clone(),
    };
    let engine = Engine::new(backend.store.clone(), read.clone());
    // Both on the runtime's one worker: the fold, and the task that waits
    // for it to start deriving and then releases it.
    let releaser = tokio::spawn(async move {
        if derived.await.is_ok() {
            let _ = release.send(());
        }
    });
    let folded = tokio::spawn(async move { engine.catch_up(&projection).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(folded, Some(event_count(&*backend.store).await));
    assert!(
        released.load(Ordering::SeqCst),
        "the fold held the runtime's worker: the task releasing it never ran"
    );
    releaser.await.unwrap();
    backend.cleanup().await;
}

/// Commits `changes` to an active generation at the log's start, moving it
/// to position `to`.
async fn commit_at(
    read: &dyn ReadStore,
    generation: i32,
    changes: &[DocChange],
    to: u64,
) -> Result<bool, Error> {
    read.commit(Batch {
        model: NAME,
        generation,
        status: Status::Active,
        from: Checkpoint::START,
        to: Checkpoint {
            tx: to,
            position: to,
        },
        events: 1,
        changes,
    })
    .await
}

/// The type of `trellis.read_models.doc`.
async fn doc_column_type(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT data_type FROM information_schema.columns \
              WHERE table_schema = 'trellis' AND table_name = 'read_models' \
                AND column_name = 'doc'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Migration 0004 turned `read_models.doc` from `jsonb` into `json`, and 0005
/// into `text`: the documents a database already holds read the same through
/// the store and the views after them, a grant given on a view after 0004
/// stays, and new documents are kept as the projection wrote them.
#[tokio::test]
async fn documents_written_as_jsonb_read_the_same_once_they_are_kept_as_text() {
    use trellis_eventstore::postgres::Migrations;
    use trellis_projections::store::postgres::MIGRATIONS;

    /// Applies the read models' migrations up to and including `last`.
    async fn migrate_up_to(owner: &mut tokio_postgres::Client, last: usize) {
        let before = Migrations {
            steps: &MIGRATIONS.steps[..last],
            ..MIGRATIONS
        };
        trellis_eventstore::postgres::migrate(owner, &before)
            .await
            .unwrap_or_else(|e| panic!("the migrations up to {last:04}: {e}"));
    }

    let backend = Backend::postgres().await;
    let mut owner = backend.database().superuser().await;
    migrate_up_to(&mut owner, 3).await;
    let rep = Uuid::from_u128(BEN);
    let doc = serde_json::json!({
        "rep_id": rep, "name": "Ben Okafor", "status": "active", "pad": "x".repeat(16_384),
        "standing": {"standing": "needs_support", "reasons": ["late"]},
        "open_action_items": [], "support_requests": [{"resolved_on": null}],
    });
    owner
        .execute(
            "INSERT INTO trellis.projection_checkpoints (model, generation, fingerprint, status) \
             VALUES ($1, 1, 'growth/v0', 'active')",
            &[&NAME],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO trellis.read_models (model, generation, kind, key, doc) \
             VALUES ($1, 1, 'rep_profile', $2, $3)",
            &[&NAME, &rep.to_string(), &doc],
        )
        .await
        .unwrap();
    assert_eq!(doc_column_type(&owner).await, "jsonb");

    migrate_up_to(&mut owner, 4).await;
    assert_eq!(doc_column_type(&owner).await, "json");
    owner
        .batch_execute("GRANT SELECT ON trellis.rep_profiles TO PUBLIC")
        .await
        .unwrap();

    // Opening the store applies 0005.
    let read = read_store(&backend).await;
    assert_eq!(doc_column_type(&owner).await, "text");
    let granted: bool = owner
        .query_one(
            "SELECT has_table_privilege('public', 'trellis.rep_profiles', 'SELECT')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(granted, "the grant on a view outlives migration 0005");
    // The rewrite kept lz4, where the server has it (migration 0002).
    let compression = owner
        .query_one(
            "SELECT pg_column_compression(doc), \
                    (SELECT 'lz4' = ANY(enumvals) FROM pg_settings \
                      WHERE name = 'default_toast_compression') \
               FROM trellis.read_models",
            &[],
        )
        .await
        .unwrap();
    if compression.get::<_, bool>(1) {
        assert_eq!(
            compression.get::<_, Option<String>>(0).as_deref(),
            Some("lz4")
        );
    }
    let got = read
        .get(NAME, "rep_profile", &[rep.to_string()])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, rep.to_string());
    assert_eq!(serde_json::from_str::<Value>(&got[0].1).unwrap(), doc);
    let row = owner
        .query_one(
            "SELECT name, standing, open_support_requests, open_action_items \
               FROM trellis.rep_profiles WHERE rep_id = $1",
            &[&rep],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Ben Okafor");
    assert_eq!(row.get::<_, String>(1), "needs_support");
    assert_eq!(row.get::<_, i32>(2), 1);
    assert_eq!(row.get::<_, i32>(3), 0);

    // A document written now is kept byte for byte, keys in field order.
    let written = r#"{"rep_id":"x","name":"Ada","b":1,"a":2}"#;
    assert!(
        read.commit(Batch {
            model: NAME,
            generation: 1,
            status: Status::Active,
            from: Checkpoint::START,
            to: Checkpoint::START,
            events: 0,
            changes: &[DocChange {
                kind: "rep_profile",
                key: "x".to_owned(),
                doc: Some(written.to_owned()),
            }],
        })
        .await
        .unwrap()
    );
    let dump = read.dump(NAME, 1).await.unwrap();
    assert!(
        dump.contains(&("rep_profile".to_owned(), "x".to_owned(), written.to_owned())),
        "{dump:?}"
    );
    drop(owner);
    backend.cleanup().await;
}

#[tokio::test]
async fn the_views_expose_the_read_models_as_columns_in_the_embedded_file() {
    let backend = Backend::sqlite().await;
    script_quarter(&*backend.store).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    Engine::new(backend.store.clone(), read)
        .catch_up(&*growth())
        .await
        .unwrap();
    let path = backend
        .data_dir()
        .join(trellis_eventstore::sqlite::FILE_NAME);
    let (standing, coverage): (String, i64) = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        let standing = conn
            .query_row(
                "SELECT standing FROM rep_profiles WHERE rep_id = ?1",
                [Uuid::from_u128(ANA).to_string()],
                |r| r.get(0),
            )
            .unwrap();
        let sessions = conn
            .query_row(
                "SELECT sum(coaching_sessions) FROM growth_timeline WHERE bucket = 'month'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (standing, sessions)
    })
    .await
    .unwrap();
    assert_eq!(standing, "thriving");
    assert_eq!(coverage, 4);
    backend.cleanup().await;
}

// ---------------------------------------------------------------------------
// Replay equals live

/// A small deterministic generator (an LCG), so a failing history can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Appends a generated history: a team, standards (one revised), reps and a
/// mix of everything that happens to them, including corrections.
async fn generate(store: &dyn EventStore, seed: u64, reps: u128, steps: usize, offset: u128) {
    let mut rng = Rng(seed);
    let mut q = Quarter {
        store,
        reps: BTreeMap::new(),
        next_id: 1_000_000 + offset * 1_000_000,
    };
    for rep in 0..reps {
        let rep_id = 500 + offset * 1000 + rep;
        q.join(rep_id, "Generated Rep", "2026-01-05").await;
    }
    let mut measured: Vec<(u128, u128)> = vec![];
    for step in 0..steps {
        let rep = 500 + offset * 1000 + u128::from(rng.below(reps as u64));
        let day = 5 + rng.below(80);
        let on = (date("2026-01-05") + chrono::Days::new(day)).to_string();
        let on: &str = &on;
        let competency = if rng.below(2) == 0 {
            DISCOVERY
        } else {
            OBJECTIONS
        };
        match rng.below(8) {
            0 => {
                q.assess(rep, competency, 1 + rng.below(5) as u8, on).await;
            }
            1 => {
                let items = q
                    .coach(
                        rep,
                        on,
                        15 + rng.below(60) as u32,
                        competency,
                        vec![(Owner::Rep, on)],
                    )
                    .await;
                if rng.below(2) == 0 {
                    q.complete(rep, items[0], on).await;
                }
            }
            2 => {
                let kind = if rng.below(3) == 0 {
                    FeedbackKind::Constructive
                } else {
                    FeedbackKind::Praise
                };
                q.feedback(rep, competency, kind, on, Visibility::Shared)
                    .await;
            }
            3 | 4 => {
                let month = ["2026-01", "2026-02", "2026-03"][rng.below(3) as usize];
                let metric = if rng.below(2) == 0 {
                    "meetings_booked"
                } else {
                    "discovery_score"
                };
                q.measure(rep, metric, month, (rng.below(120) + 1) as f64)
                    .await;
                measured.push((rep, q.next_id));
            }
            5 => {
                let request = q.support(rep, SupportCategory::Tools, on).await;
                if rng.below(2) == 0 {
                    q.resolve(rep, request, on).await;
                }
            }
            6 => {
                if let Some((rep, fact)) = measured.pop() {
                    let mut state = q.reps.remove(&rep).unwrap_or_default();
                    let stream = RepId::from(Uuid::from_u128(rep)).stream_id();
                    // May be refused (already corrected): fine, nothing recorded.
                    exec::<RepAggregate>(
                        store,
                        &mut state,
                        &stream,
                        RepCommand::CorrectFact {
                            correction: FactCorrected {
                                fact_id: Uuid::from_u128(fact),
                                reason: text("wrong import"),
                                correction: Correction::Retracted,
                            },
                            largest_target: None,
                        },
                    )
                    .await;
                    q.reps.insert(rep, state);
                }
            }
            _ => {
                if step % 50 == 0 {
                    // A standard revised mid-stream re-derives every rep.
                    let mut state = StandardState::default();
                    let standard = 9_000 + offset * 100 + step as u128;
                    let stream =
                        trellis_domain::StandardId::from(Uuid::from_u128(standard)).stream_id();
                    exec::<StandardAggregate>(
                        store,
                        &mut state,
                        &stream,
                        StandardCommand::SetStandard {
                            standard_id: id(standard),
                            name: text("Generated standard"),
                            metric: text("meetings_booked"),
                            kind: StandardKind::Quantity,
                            direction: Direction::AtLeast,
                            unit: text("meetings"),
                            period: PeriodKind::Month,
                            target: (10.0 + rng.below(20) as f64).try_into().unwrap(),
                            roles: vec![text("AE")],
                            effective_from: date("2026-01-01"),
                            ramp: vec![RampStep {
                                period_index: 1,
                                percent_of_target: 50,
                            }],
                            others: vec![],
                        },
                    )
                    .await;
                }
            }
        }
    }
}

/// On the embedded file the log's appends wait for the projector's commits
/// (one writer for both), so a live commit there writes the documents of at
/// most 8 reps, however many a batch touches.
#[tokio::test]
async fn on_the_embedded_file_a_live_commit_writes_at_most_8_reps_documents() {
    let backend = Backend::sqlite().await;
    generate(&*backend.store, 5, 20, 0, 0).await;
    let read = read_store(&backend).await;
    let path = backend
        .data_dir()
        .join(trellis_eventstore::sqlite::FILE_NAME);
    let count = move |sql: &'static str| {
        let path = path.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(sql).unwrap();
                let mut statement = conn.prepare("SELECT reps FROM test_commits").unwrap();
                let rows = statement.query_map([], |r| r.get::<_, i64>(0)).unwrap();
                rows.map(Result::unwrap).collect::<Vec<i64>>()
            })
            .await
            .unwrap()
        }
    };
    // A commit moves its checkpoint first, then writes its documents: each
    // move counts the profiles written since the last one.
    count(
        "CREATE TABLE test_commits (reps INTEGER NOT NULL); \
         CREATE TABLE test_written (key TEXT NOT NULL); \
         CREATE TRIGGER test_inserted AFTER INSERT ON read_models WHEN NEW.kind = 'rep_profile' \
           BEGIN INSERT INTO test_written VALUES (NEW.key); END; \
         CREATE TRIGGER test_updated AFTER UPDATE ON read_models WHEN NEW.kind = 'rep_profile' \
           BEGIN INSERT INTO test_written VALUES (NEW.key); END; \
         CREATE TRIGGER test_moved AFTER UPDATE ON projection_checkpoints \
           BEGIN INSERT INTO test_commits SELECT count(*) FROM test_written; \
                 DELETE FROM test_written; END;",
    )
    .await;
    Engine::new(backend.store.clone(), read)
        .with_config(EngineConfig::beside_the_log_s_writer())
        .catch_up(&*growth())
        .await
        .unwrap();
    let commits = count(
        "INSERT INTO test_commits SELECT count(*) FROM test_written; DELETE FROM test_written;",
    )
    .await;
    assert_eq!(commits.iter().sum::<i64>(), 20, "{commits:?}");
    assert_eq!(commits.iter().max(), Some(&8), "{commits:?}");
    backend.cleanup().await;
}

fn fast() -> EngineConfig {
    EngineConfig {
        batch_size: 7,
        rebuild_batch_size: 64,
        standby_retry: Duration::from_millis(50),
        lease_check: Duration::from_millis(200),
        poll: Duration::from_millis(50),
        // Restores read several pages, and batches commit in parts.
        restore_page: 3,
        max_pending: 2,
    }
}

/// Waits until every event appended is readable. On PostgreSQL a reader
/// only sees events below the oldest transaction running anywhere in the
/// cluster (docs/adr/0001-global-order.md), and other tests run beside us.
async fn settled(backend: &Backend) -> Checkpoint {
    for _ in 0..1200 {
        let head = backend.store.head().await.unwrap();
        let written = match backend.kind {
            Kind::Sqlite => return head,
            Kind::Postgres => backend
                .database()
                .superuser()
                .await
                .query_one(
                    "SELECT coalesce(max(global_position), 0) FROM trellis.events",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, i64>(0),
        };
        if head.position == u64::try_from(written).unwrap() {
            return head;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the log never settled");
}

/// Waits until the active generation has applied every event of the log.
async fn caught_up(read: &dyn ReadStore, backend: &Backend) -> Generation {
    let head = settled(backend).await;
    for _ in 0..600 {
        let generation = read
            .generations()
            .await
            .unwrap()
            .into_iter()
            .find(|g| g.model == NAME && g.status == Status::Active);
        if let Some(generation) = generation.filter(|g| g.checkpoint == head) {
            return generation;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the projection did not catch up with {head}");
}

async fn event_count(store: &dyn EventStore) -> u64 {
    let mut checkpoint = Checkpoint::START;
    let mut n = 0;
    loop {
        let batch = store.read_all(checkpoint, 1000).await.unwrap();
        let Some(last) = batch.last() else { return n };
        checkpoint = last.checkpoint;
        n += batch.len() as u64;
    }
}

async fn replay_equals_live(kind: Kind) {
    let backend = Backend::new(kind).await;
    script_quarter(&*backend.store).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    let engine = Engine::new(backend.store.clone(), read.clone()).with_config(fast());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run(growth(), async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    // Appended while the runner follows, in small batches.
    for round in 0..3 {
        generate(&*backend.store, 42 + round, 4, 60, round as u128).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = caught_up(&*read, &backend).await;
    assert_eq!(live.events_applied, event_count(&*backend.store).await);
    let live_docs = read.dump(NAME, live.generation).await.unwrap();

    let mut reports = 0;
    let summary = engine
        .rebuild(&*growth(), &mut |_| reports += 1)
        .await
        .unwrap();
    assert!(reports > 1, "progress reported after every batch");
    assert_eq!(summary.events, live.events_applied);
    assert_ne!(summary.generation, live.generation);
    let rebuilt = active(&*read).await;
    assert_eq!(rebuilt.generation, summary.generation);
    let rebuilt_docs = read.dump(NAME, rebuilt.generation).await.unwrap();
    assert_eq!(live_docs.len(), rebuilt_docs.len());
    for (a, b) in live_docs.iter().zip(&rebuilt_docs) {
        assert_eq!(a, b, "live and replayed documents differ");
    }
    // The old generation is gone; the live runner moves to the new one.
    assert!(read.dump(NAME, live.generation).await.unwrap().is_empty());
    generate(&*backend.store, 7, 2, 20, 9).await;
    let after = caught_up(&*read, &backend).await;
    assert_eq!(after.generation, summary.generation);
    let _ = stop.send(());
    runner.await.unwrap();
    backend.cleanup().await;
}

crate::http::on_each_backend!(replay_equals_live);

/// A projection's state is restored a page at a time: the pages, read one
/// after another, hold every document of the kinds asked for, in (kind,
/// key) order, each once, and nothing of the other kinds; a page that
/// ends exactly at a kind's last document goes on with the next kind.
async fn state_documents_load_page_by_page_each_once_in_kind_and_key_order(kind: Kind) {
    let backend = Backend::new(kind).await;
    let read = read_store(&backend).await;
    let generation = read
        .create_generation(NAME, "test", Status::Active)
        .await
        .unwrap();
    let doc = |kind: &'static str, n: u32| DocChange {
        kind,
        key: format!("{n:03}"),
        doc: Some(format!("{{\"n\":{n}}}")),
    };
    // Three kinds asked for, one not; the first kind fills a page exactly.
    let mut changes: Vec<DocChange> = (0..4).map(|n| doc(kinds::LEADER, n)).collect();
    changes.extend((0..9).map(|n| doc(kinds::REP_FACTS, n)));
    changes.extend((0..2).map(|n| doc(kinds::TEAM, n)));
    changes.extend((0..5).map(|n| doc(kinds::REP_PROFILE, n)));
    assert!(
        commit_at(&*read, generation.generation, &changes, 1)
            .await
            .unwrap()
    );
    let asked = [kinds::TEAM, kinds::REP_FACTS, kinds::LEADER];

    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let after = paged
            .last()
            .map(|(kind, key, _): &(String, String, String)| (kind.as_str(), key.as_str()));
        let page = read
            .load(
                NAME,
                generation.generation,
                &asked,
                DocPage { after, limit: 4 },
            )
            .await
            .unwrap();
        assert!(page.len() <= 4, "a page holds at most its limit");
        pages += 1;
        assert!(pages <= 5, "the pages go on from where the last ended");
        let done = page.len() < 4;
        paged.extend(page);
        if done {
            break;
        }
    }
    let mut expected: Vec<(String, String, String)> = changes
        .iter()
        .filter(|c| asked.contains(&c.kind))
        .map(|c| (c.kind.to_owned(), c.key.clone(), c.doc.clone().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(paged, expected);
    assert_eq!(pages, 4, "15 documents in pages of 4");
    assert_eq!(
        read.load(NAME, generation.generation, &asked, DocPage::ALL)
            .await
            .unwrap(),
        expected,
        "all at once, the same"
    );
    backend.cleanup().await;
}

crate::http::on_each_backend!(state_documents_load_page_by_page_each_once_in_kind_and_key_order);

/// Rebuilds however folded and written — one shard or several, parts of
/// one rep or many, one writer or several — write the very documents live
/// processing wrote, batch after batch.
async fn a_rebuild_in_parts_writes_what_live_processing_wrote(kind: Kind) {
    let backend = Backend::new(kind).await;
    script_quarter(&*backend.store).await;
    generate(&*backend.store, 11, 5, 80, 0).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    let engine = Engine::new(backend.store.clone(), read.clone()).with_config(fast());
    let applied = engine.catch_up(&*growth()).await.unwrap().unwrap();
    assert_eq!(applied, event_count(&*backend.store).await);
    let live = active(&*read).await;
    let live_docs = read.dump(NAME, live.generation).await.unwrap();
    for config in [
        RebuildConfig {
            shards: 3,
            part: 2,
            writers: 3,
        },
        RebuildConfig {
            shards: 1,
            part: 1,
            writers: 1,
        },
    ] {
        let summary = engine
            .clone()
            .with_rebuild_config(config)
            .rebuild(&*growth(), &mut |_| {})
            .await
            .unwrap();
        let rebuilt = active(&*read).await;
        assert_eq!(rebuilt.generation, summary.generation);
        assert_eq!(rebuilt.events_applied, applied, "{config:?}");
        assert_eq!(rebuilt.checkpoint, live.checkpoint, "{config:?}");
        let rebuilt_docs = read.dump(NAME, rebuilt.generation).await.unwrap();
        assert_eq!(live_docs, rebuilt_docs, "{config:?}");
    }
    backend.cleanup().await;
}

crate::http::on_each_backend!(a_rebuild_in_parts_writes_what_live_processing_wrote);

const NORTH: u128 = 30;
const SOUTH: u128 = 31;
const NORTH_LEADER: u128 = 32;
const SOUTH_LEADER: u128 = 33;
const CALLS: u128 = 40;
const CLOSING: u128 = 12;

/// An organisation that changes while its reps work, appended in phases:
/// teams formed after the first reps (one renamed later, one given its
/// leader only midway), reps moving between teams, changing role and one
/// renamed, a
/// weekly standard set, revised for more roles and retired, a competency
/// defined and revised — with generated histories on the scripted team in
/// between (which set further standards of their own).
struct Organisation<'a> {
    q: Quarter<'a>,
    north: TeamState,
    south: TeamState,
    calls: StandardState,
    closing: CompetencyState,
    /// The one feedback of a leader no team names, retracted in phase 2.
    stray_feedback: Option<u128>,
}

/// A leader no team names, whose only record is retracted: their documents
/// are written, then removed.
const STRAY_LEADER: u128 = 34;

impl<'a> Organisation<'a> {
    async fn new(store: &'a dyn EventStore) -> Organisation<'a> {
        script_quarter(store).await;
        Organisation {
            q: Quarter {
                store,
                reps: BTreeMap::new(),
                next_id: 50_000_000,
            },
            north: TeamState::default(),
            south: TeamState::default(),
            calls: StandardState::default(),
            closing: CompetencyState::default(),
            stray_feedback: None,
        }
    }

    async fn team(&mut self, team: u128, command: TeamCommand) {
        let (state, stream) = match team {
            NORTH => (
                &mut self.north,
                TeamId::from(Uuid::from_u128(NORTH)).stream_id(),
            ),
            _ => (
                &mut self.south,
                TeamId::from(Uuid::from_u128(SOUTH)).stream_id(),
            ),
        };
        assert!(exec::<TeamAggregate>(self.q.store, state, &stream, command).await);
    }

    async fn calls(&mut self, command: StandardCommand) {
        let stream = StandardId::from(Uuid::from_u128(CALLS)).stream_id();
        assert!(exec::<StandardAggregate>(self.q.store, &mut self.calls, &stream, command).await);
    }

    async fn closing(&mut self, command: CompetencyCommand) {
        let stream = CompetencyId::from(Uuid::from_u128(CLOSING)).stream_id();
        assert!(
            exec::<CompetencyAggregate>(self.q.store, &mut self.closing, &stream, command).await
        );
    }

    /// A few weeks of work for the organisation's own reps.
    async fn work(&mut self, seed: u64, weeks: std::ops::Range<u32>) {
        let mut rng = Rng(seed);
        for week in weeks {
            for rep in 7_000..7_006u128 {
                let working = matches!(
                    self.q.reps.get(&rep),
                    Some(RepState::Joined(r)) if r.departed_on.is_none()
                );
                if !working {
                    continue;
                }
                let period = format!("2026-W{week:02}");
                let value = (20 + rng.below(40)) as f64;
                let measurement = self.q.fresh();
                self.q
                    .rep(
                        rep,
                        RepCommand::MeasurePerformance {
                            measurement: PerformanceMeasured {
                                measurement_id: id(measurement),
                                metric: text("calls_made"),
                                period: period.parse().expect("a week"),
                                value: value.try_into().unwrap(),
                                source: MeasurementSource::CrmImport,
                            },
                            now: now(),
                            standard_periods: vec![PeriodKind::Week],
                            largest_target: 60.0,
                        },
                    )
                    .await;
                let monday = Period::containing(
                    PeriodKind::Week,
                    date("2026-01-05") + chrono::Days::new(u64::from(week - 2) * 7),
                )
                .start()
                .to_string();
                match rng.below(3) {
                    0 => {
                        self.q
                            .feedback(
                                rep,
                                CLOSING,
                                FeedbackKind::Praise,
                                &monday,
                                Visibility::Shared,
                            )
                            .await;
                    }
                    1 => {
                        let items = self
                            .q
                            .coach(rep, &monday, 30, CLOSING, vec![(Owner::Rep, &monday)])
                            .await;
                        self.q.complete(rep, items[0], &monday).await;
                    }
                    _ => {
                        self.q
                            .assess(rep, CLOSING, 1 + rng.below(5) as u8, &monday)
                            .await;
                    }
                }
            }
        }
    }

    async fn phase(&mut self, phase: u32) {
        let store = self.q.store;
        match phase {
            0 => {
                generate(store, 21, 4, 60, 0).await;
                self.team(
                    NORTH,
                    TeamCommand::FormTeam {
                        team_id: id(NORTH),
                        name: text("North"),
                        name_taken: None,
                    },
                )
                .await;
                for rep in 7_000..7_003u128 {
                    self.q
                        .join_team(rep, "North Rep", "2026-01-05", NORTH)
                        .await;
                }
                self.closing(CompetencyCommand::DefineCompetency {
                    competency_id: id(CLOSING),
                    name: text("Closing"),
                    description: text("asks for the business"),
                    rubric: trellis_domain::Rubric::new(
                        ["1", "2", "3", "4", "5"].map(text::<trellis_domain::NonEmptyText>),
                    ),
                    name_taken: None,
                })
                .await;
                self.calls(StandardCommand::SetStandard {
                    standard_id: id(CALLS),
                    name: text("Calls made"),
                    metric: text("calls_made"),
                    kind: StandardKind::Quantity,
                    direction: Direction::AtLeast,
                    unit: text("calls"),
                    period: PeriodKind::Week,
                    target: 40.0.try_into().unwrap(),
                    roles: vec![text("AE")],
                    effective_from: date("2026-01-05"),
                    ramp: vec![RampStep {
                        period_index: 1,
                        percent_of_target: 50,
                    }],
                    others: vec![],
                })
                .await;
                self.work(1, 2..6).await;
            }
            1 => {
                self.team(
                    SOUTH,
                    TeamCommand::FormTeam {
                        team_id: id(SOUTH),
                        name: text("South"),
                        name_taken: None,
                    },
                )
                .await;
                self.team(
                    SOUTH,
                    TeamCommand::AssignLeader {
                        leader_id: id(SOUTH_LEADER),
                        leader_name: text("Sam Reyes"),
                    },
                )
                .await;
                for rep in 7_003..7_006u128 {
                    self.q
                        .join_team(rep, "South Rep", "2026-02-02", SOUTH)
                        .await;
                }
                // North gets its leader only now, and two reps move.
                self.team(
                    NORTH,
                    TeamCommand::AssignLeader {
                        leader_id: id(NORTH_LEADER),
                        leader_name: text("Nia Berg"),
                    },
                )
                .await;
                for (rep, to) in [(7_001u128, SOUTH), (7_004, NORTH)] {
                    self.q
                        .rep(
                            rep,
                            RepCommand::MoveTeam {
                                to: id(to),
                                on: date("2026-02-09"),
                                team_exists: true,
                                now: now(),
                            },
                        )
                        .await;
                }
                self.q
                    .rep(
                        7_002,
                        RepCommand::ChangeRole {
                            to: text("SDR"),
                            on: date("2026-02-16"),
                            now: now(),
                        },
                    )
                    .await;
                // A name mistyped at hire, corrected.
                self.q
                    .rep(
                        7_003,
                        RepCommand::Rename {
                            name: text("South Rep-Okafor"),
                        },
                    )
                    .await;
                self.calls(StandardCommand::ReviseStandard {
                    target: 45.0.try_into().unwrap(),
                    effective_from: date("2026-02-16"),
                    roles: Some(vec![text("AE"), text("SDR")]),
                    ramp: None,
                    others: vec![],
                })
                .await;
                self.work(2, 6..10).await;
                generate(store, 22, 3, 60, 1).await;
                self.stray_feedback = Some(
                    self.q
                        .feedback_by(
                            STRAY_LEADER,
                            7_000,
                            CLOSING,
                            FeedbackKind::Constructive,
                            "2026-02-17",
                            Visibility::Shared,
                        )
                        .await,
                );
            }
            _ => {
                self.team(
                    NORTH,
                    TeamCommand::RenameTeam {
                        name: text("North East"),
                        name_taken: None,
                    },
                )
                .await;
                self.closing(CompetencyCommand::ReviseCompetency {
                    name: text("Closing the deal"),
                    description: text("asks for the business, twice"),
                    rubric: trellis_domain::Rubric::new(
                        ["1", "2", "3", "4", "5"].map(text::<trellis_domain::NonEmptyText>),
                    ),
                    name_taken: None,
                })
                .await;
                self.work(3, 10..13).await;
                self.calls(StandardCommand::RetireStandard {
                    effective_from: date("2026-03-30"),
                    reason: text("replaced by meetings"),
                })
                .await;
                self.q
                    .rep(
                        7_005,
                        RepCommand::Depart {
                            departure: RepDeparted {
                                on: date("2026-03-20"),
                                reason: text("moved on"),
                            },
                            now: now(),
                        },
                    )
                    .await;
                self.work(4, 13..14).await;
                generate(store, 23, 3, 40, 2).await;
                let stray = self.stray_feedback.expect("given in phase 1");
                self.q
                    .rep(
                        7_000,
                        RepCommand::CorrectFact {
                            correction: FactCorrected {
                                fact_id: Uuid::from_u128(stray),
                                reason: text("not their rep"),
                                correction: Correction::Retracted,
                            },
                            largest_target: None,
                        },
                    )
                    .await;
            }
        }
    }
}

/// Live processing catches up after each phase of a changing organisation
/// (so its documents are rewritten as teams, leaders and standards change);
/// a rebuild in bulk from zero, however sharded and written, gives the same
/// documents byte for byte, the same checkpoint and the same event count.
async fn a_bulk_rebuild_equals_live_processing_of_an_organisation_that_changes_midway(kind: Kind) {
    let backend = Backend::new(kind).await;
    let read = read_store(&backend).await;
    let engine = Engine::new(backend.store.clone(), read.clone()).with_config(fast());
    let mut organisation = Organisation::new(&*backend.store).await;
    for phase in 0..3 {
        organisation.phase(phase).await;
        settled(&backend).await;
        engine.catch_up(&*growth()).await.unwrap().unwrap();
    }
    let live = active(&*read).await;
    assert_eq!(live.events_applied, event_count(&*backend.store).await);
    let live_docs = read.dump(NAME, live.generation).await.unwrap();
    let count = |kind: &str| live_docs.iter().filter(|(k, _, _)| k == kind).count();
    assert_eq!(count("team"), 3);
    assert_eq!(count("leader"), 3);
    let stray = Uuid::from_u128(STRAY_LEADER).to_string();
    assert!(
        !live_docs.iter().any(|(_, key, _)| key.starts_with(&stray)),
        "a leader whose only record was retracted keeps no document"
    );
    assert!(count("standard") >= 3, "{}", count("standard"));
    assert_eq!(count("competency"), 3);
    assert!(count("rep_profile") >= 19, "{}", count("rep_profile"));
    for config in [
        RebuildConfig::default(),
        RebuildConfig {
            shards: 4,
            part: 1,
            writers: 3,
        },
        RebuildConfig {
            shards: 2,
            part: 1_000,
            writers: 1,
        },
        RebuildConfig {
            shards: 1,
            part: 3,
            writers: 2,
        },
    ] {
        let summary = engine
            .clone()
            .with_rebuild_config(config)
            .rebuild(&*growth(), &mut |_| {})
            .await
            .unwrap();
        let rebuilt = active(&*read).await;
        assert_eq!(rebuilt.generation, summary.generation, "{config:?}");
        assert_eq!(rebuilt.checkpoint, live.checkpoint, "{config:?}");
        assert_eq!(rebuilt.events_applied, live.events_applied, "{config:?}");
        let rebuilt_docs = read.dump(NAME, rebuilt.generation).await.unwrap();
        assert_eq!(rebuilt_docs.len(), live_docs.len(), "{config:?}");
        for (a, b) in live_docs.iter().zip(&rebuilt_docs) {
            assert_eq!(a, b, "{config:?}: live and rebuilt documents differ");
        }
        // Only the new generation is left.
        let generations = read.generations().await.unwrap();
        assert_eq!(generations.len(), 1, "{generations:?}");
    }
    backend.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: a_bulk_rebuild_equals_live_processing_of_an_organisation_that_changes_midway);

/// Waits until the log's readers see something after `after`.
async fn readable_after(backend: &Backend, after: Checkpoint) -> bool {
    for _ in 0..100 {
        if !backend.store.read_all(after, 10).await.unwrap().is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A bulk writer commits part by part and holds no transaction open while
/// it waits for the next part: on PostgreSQL a transaction that wrote would
/// hold back every reader of the log until it ended (ADR 1) — the live
/// runners, the relay and the feed — for as long as a rebuild folds.
async fn a_bulk_writer_commits_part_by_part_and_holds_nothing_open_between_parts(kind: Kind) {
    let backend = Backend::new(kind).await;
    script_quarter(&*backend.store).await;
    let read = read_store(&backend).await;
    let building = read
        .create_generation(NAME, "test", Status::Building)
        .await
        .unwrap();
    let (feed, parts) = Parts::channel(1);
    let writer = {
        let (read, parts) = (read.clone(), parts.clone());
        tokio::spawn(async move {
            read.write_bulk(NAME, building.generation, Checkpoint::START, &parts)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let head = settled(&backend).await;
    generate(&*backend.store, 18, 1, 2, 7).await;
    assert!(
        readable_after(&backend, head).await,
        "a writer waiting for its first part hid an append from the log's readers"
    );

    let doc = |key: &str| DocChange {
        kind: "rep_profile",
        key: key.to_owned(),
        doc: Some(r#"{"b":1,"a":[true,null]}"#.to_owned()),
    };
    feed.send(Part::Docs(vec![doc("1"), doc("2")]))
        .await
        .unwrap();
    let mut written = vec![];
    for _ in 0..100 {
        written = read.dump(NAME, building.generation).await.unwrap();
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(written.len(), 2, "the part was committed on its own");
    let head = settled(&backend).await;
    generate(&*backend.store, 19, 1, 2, 8).await;
    assert!(
        readable_after(&backend, head).await,
        "a writer between parts hid an append from the log's readers"
    );

    feed.send(Part::Docs(vec![doc("3")])).await.unwrap();
    feed.send(Part::Done).await.unwrap();
    assert!(writer.await.unwrap().unwrap());
    assert_eq!(read.dump(NAME, building.generation).await.unwrap().len(), 3);
    // Nothing was served, and dropping the generation takes it all.
    assert!(
        read.get(NAME, "rep_profile", &["1".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    read.drop_generation(NAME, building.generation)
        .await
        .unwrap();
    assert!(read.generations().await.unwrap().is_empty());
    assert!(
        read.dump(NAME, building.generation)
            .await
            .unwrap()
            .is_empty()
    );
    backend.cleanup().await;
}

crate::http::on_each_backend!(
    multi_thread: a_bulk_writer_commits_part_by_part_and_holds_nothing_open_between_parts
);

// ---------------------------------------------------------------------------
// Crashes

/// A read store whose third commit fails before writing and whose sixth
/// commits and then reports a failure (the answer lost on the way back).
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn ReadStore>,
    commits: AtomicU32,
}

#[async_trait]
impl ReadStore for Flaky {
    async fn try_lease(
        &self,
        model: &str,
        kind: LeaseKind,
    ) -> Result<Option<Box<dyn Lease>>, Error> {
        self.inner.try_lease(model, kind).await
    }
    async fn generations(&self) -> Result<Vec<Generation>, Error> {
        self.inner.generations().await
    }
    async fn create_generation(
        &self,
        model: &str,
        fingerprint: &str,
        status: Status,
    ) -> Result<Generation, Error> {
        self.inner
            .create_generation(model, fingerprint, status)
            .await
    }
    async fn load(
        &self,
        model: &str,
        generation: i32,
        kinds: &[&str],
        page: DocPage<'_>,
    ) -> Result<Vec<(String, String, String)>, Error> {
        self.inner.load(model, generation, kinds, page).await
    }
    async fn commit(&self, batch: Batch<'_>) -> Result<bool, Error> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 3 {
            return Err(Error::Database(
                "the connection dropped before commit".into(),
            ));
        }
        let done = self.inner.commit(batch).await?;
        if n == 6 {
            return Err(Error::Database(
                "the connection dropped after commit".into(),
            ));
        }
        Ok(done)
    }
    async fn write_bulk(
        &self,
        model: &str,
        generation: i32,
        from: Checkpoint,
        parts: &Parts,
    ) -> Result<bool, Error> {
        self.inner.write_bulk(model, generation, from, parts).await
    }
    async fn drop_generation(&self, model: &str, generation: i32) -> Result<(), Error> {
        self.inner.drop_generation(model, generation).await
    }
    async fn activate(&self, model: &str, generation: i32, at: Checkpoint) -> Result<bool, Error> {
        self.inner.activate(model, generation, at).await
    }
    async fn drop_inactive(&self, model: &str, keep: Option<i32>) -> Result<(), Error> {
        self.inner.drop_inactive(model, keep).await
    }
    async fn get(
        &self,
        model: &str,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        self.inner.get(model, kind, keys).await
    }
    async fn dump(
        &self,
        model: &str,
        generation: i32,
    ) -> Result<Vec<(String, String, String)>, Error> {
        self.inner.dump(model, generation).await
    }
}

async fn a_crash_mid_batch_loses_nothing_and_doubles_nothing(kind: Kind) {
    let backend = Backend::new(kind).await;
    script_quarter(&*backend.store).await;
    generate(&*backend.store, 3, 3, 40, 0).await;
    let read = read_store(&backend).await;
    let flaky: Arc<dyn ReadStore> = Arc::new(Flaky {
        inner: read.clone(),
        commits: AtomicU32::new(0),
    });
    let engine = Engine::new(backend.store.clone(), flaky).with_config(fast());

    // A runner killed part-way, then another that takes over.
    let first = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run(growth(), std::future::pending()).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    first.abort();
    let _ = first.await;
    generate(&*backend.store, 4, 2, 30, 1).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let second = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run(growth(), async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let live = caught_up(&*read, &backend).await;
    let _ = stop.send(());
    second.await.unwrap();

    // Every event applied exactly once, and the documents are those of a clean replay.
    assert_eq!(live.events_applied, event_count(&*backend.store).await);
    let live_docs = read.dump(NAME, live.generation).await.unwrap();
    let clean = Engine::new(backend.store.clone(), read.clone())
        .rebuild(&*growth(), &mut |_| {})
        .await
        .unwrap();
    let clean_docs = read.dump(NAME, clean.generation).await.unwrap();
    assert_eq!(live_docs, clean_docs);
    backend.cleanup().await;
}

crate::http::on_each_backend!(a_crash_mid_batch_loses_nothing_and_doubles_nothing);

/// Where a rebuild is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// The second writer loses its connection after taking a part.
    WriterFails,
    /// Every document is written, then moving the checkpoint fails.
    CheckpointFails,
    /// Every document is written, then moving the checkpoint never
    /// returns: the rebuild's task is dropped there.
    CheckpointHangs,
}

/// A read store that interrupts rebuilds.
#[derive(Debug)]
struct Interrupts {
    inner: Arc<dyn ReadStore>,
    at: Interruption,
    writers: AtomicU32,
    /// Raised when a rebuild reaches its checkpoint's move.
    reached: tokio::sync::Notify,
}

impl Interrupts {
    fn new(inner: Arc<dyn ReadStore>, at: Interruption) -> Arc<Interrupts> {
        Arc::new(Interrupts {
            inner,
            at,
            writers: AtomicU32::new(0),
            reached: tokio::sync::Notify::new(),
        })
    }
}

#[async_trait]
impl ReadStore for Interrupts {
    async fn try_lease(
        &self,
        model: &str,
        kind: LeaseKind,
    ) -> Result<Option<Box<dyn Lease>>, Error> {
        self.inner.try_lease(model, kind).await
    }
    async fn generations(&self) -> Result<Vec<Generation>, Error> {
        self.inner.generations().await
    }
    async fn create_generation(
        &self,
        model: &str,
        fingerprint: &str,
        status: Status,
    ) -> Result<Generation, Error> {
        self.inner
            .create_generation(model, fingerprint, status)
            .await
    }
    async fn load(
        &self,
        model: &str,
        generation: i32,
        kinds: &[&str],
        page: DocPage<'_>,
    ) -> Result<Vec<(String, String, String)>, Error> {
        self.inner.load(model, generation, kinds, page).await
    }
    async fn commit(&self, batch: Batch<'_>) -> Result<bool, Error> {
        if batch.status == Status::Building {
            self.reached.notify_one();
            match self.at {
                Interruption::CheckpointFails => {
                    return Err(Error::Database(
                        "injected: the checkpoint's transaction failed".into(),
                    ));
                }
                Interruption::CheckpointHangs => std::future::pending::<()>().await,
                Interruption::WriterFails => {}
            }
        }
        self.inner.commit(batch).await
    }
    async fn write_bulk(
        &self,
        model: &str,
        generation: i32,
        from: Checkpoint,
        parts: &Parts,
    ) -> Result<bool, Error> {
        let writer = self.writers.fetch_add(1, Ordering::SeqCst);
        if self.at == Interruption::WriterFails && writer == 1 {
            let _ = parts.next().await;
            return Err(Error::Database(
                "injected: a writer's connection dropped".into(),
            ));
        }
        self.inner.write_bulk(model, generation, from, parts).await
    }
    async fn drop_generation(&self, model: &str, generation: i32) -> Result<(), Error> {
        self.inner.drop_generation(model, generation).await
    }
    async fn activate(&self, model: &str, generation: i32, at: Checkpoint) -> Result<bool, Error> {
        self.inner.activate(model, generation, at).await
    }
    async fn drop_inactive(&self, model: &str, keep: Option<i32>) -> Result<(), Error> {
        self.inner.drop_inactive(model, keep).await
    }
    async fn get(
        &self,
        model: &str,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        self.inner.get(model, kind, keys).await
    }
    async fn dump(
        &self,
        model: &str,
        generation: i32,
    ) -> Result<Vec<(String, String, String)>, Error> {
        self.inner.dump(model, generation).await
    }
}

/// What an interrupted rebuild must leave: the active generation alone,
/// as it was, serving what it served, and no document of another.
async fn only_the_active_generation(
    read: &dyn ReadStore,
    live: &Generation,
    docs: &[(String, String, String)],
    served: &[(String, String)],
) {
    assert_eq!(read.generations().await.unwrap(), vec![live.clone()]);
    assert_eq!(read.dump(NAME, live.generation).await.unwrap(), docs);
    let keys: Vec<String> = served.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(read.get(NAME, "rep_profile", &keys).await.unwrap(), served);
    // The interrupted rebuild's generation was numbered next.
    assert!(
        read.dump(NAME, live.generation + 1)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A rebuild whose writer fails, whose checkpoint cannot move once every
/// document is written, or whose task is dropped there, leaves the active
/// generation serving and drops its own generation with what it wrote;
/// the next rebuild runs.
async fn an_interrupted_rebuild_leaves_the_active_generation_serving_and_nothing_behind(
    kind: Kind,
) {
    let backend = Backend::new(kind).await;
    script_quarter(&*backend.store).await;
    generate(&*backend.store, 5, 4, 60, 0).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    let engine = Engine::new(backend.store.clone(), read.clone()).with_config(fast());
    engine.catch_up(&*growth()).await.unwrap().unwrap();
    let live = active(&*read).await;
    let docs = read.dump(NAME, live.generation).await.unwrap();
    let keys: Vec<String> = docs
        .iter()
        .filter(|(kind, _, _)| kind == "rep_profile")
        .map(|(_, key, _)| key.clone())
        .collect();
    let served = read.get(NAME, "rep_profile", &keys).await.unwrap();
    assert_eq!(served.len(), 7);
    let config = RebuildConfig {
        shards: 2,
        part: 1,
        writers: 2,
    };
    let interrupted = |at| {
        let store = Interrupts::new(read.clone(), at);
        let engine = Engine::new(backend.store.clone(), store.clone())
            .with_config(fast())
            .with_rebuild_config(config);
        (store, engine)
    };

    for at in [Interruption::WriterFails, Interruption::CheckpointFails] {
        let (_, engine) = interrupted(at);
        let error = engine
            .rebuild(&*growth(), &mut |_| {})
            .await
            .expect_err("an interrupted rebuild fails");
        assert!(error.to_string().contains("injected"), "{at:?}: {error}");
        only_the_active_generation(&*read, &live, &docs, &served).await;
    }

    // Dropped once every document is in its generation: while it hangs, the
    // building generation holds them all, unserved.
    let (store, engine) = interrupted(Interruption::CheckpointHangs);
    let rebuild = tokio::spawn(async move { engine.rebuild(&*growth(), &mut |_| {}).await });
    store.reached.notified().await;
    let building = read
        .generations()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.status == Status::Building)
        .expect("the rebuild's generation");
    assert_eq!(building.generation, live.generation + 1);
    assert_eq!(building.checkpoint, Checkpoint::START);
    assert_eq!(read.dump(NAME, building.generation).await.unwrap(), docs);
    assert_eq!(read.get(NAME, "rep_profile", &keys).await.unwrap(), served);
    rebuild.abort();
    assert!(rebuild.await.unwrap_err().is_cancelled());
    // Its generation is dropped behind it, and its lease released.
    for _ in 0..200 {
        if read.generations().await.unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    only_the_active_generation(&*read, &live, &docs, &served).await;
    // The clean-up releases the lease just after the drop it waited on: a
    // rebuild may find it held for a moment, never for long.
    let mut summary = None;
    for _ in 0..200 {
        match engine_with(&backend, &read)
            .rebuild(&*growth(), &mut |_| {})
            .await
        {
            Ok(done) => {
                summary = Some(done);
                break;
            }
            Err(Error::RebuildRunning(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("the rebuild after the clean-up failed: {error}"),
        }
    }
    let summary = summary.expect("the dropped rebuild's lease is released");
    assert_eq!(read.dump(NAME, summary.generation).await.unwrap(), docs);
    backend.cleanup().await;
}

fn engine_with(backend: &Backend, read: &Arc<dyn ReadStore>) -> Engine {
    Engine::new(backend.store.clone(), read.clone()).with_config(fast())
}

crate::http::on_each_backend!(multi_thread: an_interrupted_rebuild_leaves_the_active_generation_serving_and_nothing_behind);

// ---------------------------------------------------------------------------
// One active runner

#[tokio::test]
async fn one_runner_is_active_per_projection_and_a_standby_takes_over_when_it_dies() {
    let backend = Backend::postgres().await;
    script_quarter(&*backend.store).await;
    let read_a = read_store(&backend).await;
    let read_b = read_store(&backend).await;
    let lease = read_a.try_lease(NAME, LeaseKind::Runner).await.unwrap();
    assert!(lease.is_some());
    assert!(
        read_b
            .try_lease(NAME, LeaseKind::Runner)
            .await
            .unwrap()
            .is_none()
    );

    // A standby runner waits while the lease is held…
    let engine = Engine::new(backend.store.clone(), read_b.clone()).with_config(fast());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let standby = tokio::spawn(async move {
        engine
            .run(growth(), async {
                let _ = stopped.await;
            })
            .await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        read_b.generations().await.unwrap().is_empty(),
        "the standby did nothing"
    );
    // …and takes over within seconds once the holder dies.
    drop(lease);
    caught_up(&*read_b, &backend).await;
    let _ = stop.send(());
    standby.await.unwrap();
    backend.cleanup().await;
}

#[tokio::test]
async fn lag_reports_each_projections_checkpoint_and_the_head() {
    let backend = Backend::sqlite().await;
    script_quarter(&*backend.store).await;
    settled(&backend).await;
    let read = read_store(&backend).await;
    let engine = Engine::new(backend.store.clone(), read);
    assert!(engine.lag().await.unwrap().is_empty());
    engine.catch_up(&*growth()).await.unwrap();
    let lag = engine.lag().await.unwrap();
    assert_eq!(lag.len(), 1);
    assert_eq!(lag[0].projection, NAME);
    assert_eq!(lag[0].behind, 0);
    assert_eq!(lag[0].checkpoint, lag[0].head);
    generate(&*backend.store, 1, 1, 5, 0).await;
    settled(&backend).await;
    let lag = engine.lag().await.unwrap();
    assert!(lag[0].behind > 0);
    backend.cleanup().await;
}
