//! Rep: one salesperson's stream — everything recorded about how they grow.
//! Stream category `rep`.
//!
//! Most commands propose the event they would record (e.g. `GiveFeedback`
//! carries a `FeedbackGiven`), plus what the decision needs from outside the
//! stream: `now` (for "not in the future"), and facts from other streams such as
//! a competency's status. `decide` checks the rules and records the event as
//! proposed, or refuses it.
//!
//! Rules worth knowing:
//! - Dates must not be in the future (relative to `now`) nor before the rep's
//!   start date. A rep may be recorded as joining ahead of their start date.
//! - A departed rep gets no new activity. Closing existing work stays possible
//!   (completing or dropping action items, acknowledging or resolving support
//!   requests, closing the improvement plan), as do corrections, reviews, and
//!   measurements for periods that started on or before the departure.
//! - Idempotent no-ops (accepted, nothing recorded): moving to the current team,
//!   changing to the current role, acknowledging the same expectations or
//!   feedback twice, acknowledging a support request twice, a measured-value
//!   correction equal to the current value.
//! - Re-recording a measurement for a metric and period that already has one:
//!   the same value records nothing; a different value records a `FactCorrected`
//!   (`MeasuredValue`) against the earlier measurement, with the reason
//!   "re-imported" (CRM import) or "re-entered" (manual). The earlier
//!   `PerformanceMeasured` stays in the log; the new measurement id is not used.
//! - Private feedback cannot be acknowledged: to the rep it does not exist, so
//!   the refusal is the same as for unknown feedback.
//! - Corrections apply to assessments (skill level), measurements (value), and
//!   to any assessment, measurement, feedback, coaching session or training
//!   (retraction). A retracted record cannot be corrected again.
//! - A retracted coaching session takes the action items agreed in it along:
//!   they can be neither completed nor dropped (and the read models drop them).

mod events;
mod state;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

pub use events::*;
pub use state::{
    ActionItemRecord, ActionItemStatus, Fact, FactKind, FeedbackRecord, Measurement, MetricSlot,
    Rep, RepState, SupportStatus, done_on_time, evolve, hidden_from_rep, overdue_on,
};

use crate::aggregate::Aggregate;
use crate::competency::CompetencyStatus;
use crate::ids::{ActionItemId, MeasurementId, PlanId, RepId, SupportRequestId, TeamId, stream_id};
use crate::period::PeriodKind;
use crate::rejection::Rejection;
use crate::standard::StandardStatus;
use crate::values::{NonEmptyText, PersonName, Role};

impl RepId {
    /// This rep's stream, `rep-<uuid>`.
    pub fn stream_id(&self) -> String {
        stream_id(RepEvent::CATEGORY, self.as_uuid())
    }
}

/// How far ahead a date may lie that is planned rather than past: a new
/// rep's start (from the day they are recorded), an improvement plan's
/// review (from the plan's start) and an action item's due date (from its
/// session). Further ahead is a mistyped year, and
/// once recorded it is in the log for good: a rep starting in 2099 had a
/// page no as-of date could be picked on.
pub const MAX_DAYS_AHEAD: u64 = 365;

/// `from` plus [`MAX_DAYS_AHEAD`] (the last day there is, past the calendar).
fn latest_ahead(from: NaiveDate) -> NaiveDate {
    from.checked_add_days(chrono::Days::new(MAX_DAYS_AHEAD))
        .unwrap_or(NaiveDate::MAX)
}

/// The earliest start date taken on `today`
/// ([`crate::values::MAX_YEARS_BACK`] before it).
fn earliest_start(today: NaiveDate) -> NaiveDate {
    today
        .checked_sub_months(chrono::Months::new(12 * crate::values::MAX_YEARS_BACK))
        .unwrap_or(NaiveDate::MIN)
}

/// The longest coaching session accepted, in minutes (a working day).
pub const MAX_SESSION_MINUTES: u32 = 480;

/// A date given for something that happened: not after `today`. The
/// rules below need no rep, so the write side also applies them to a
/// request whose other fields are wrong, to name every mistake at once;
/// [`decide`] applies them in any case.
pub fn check_not_ahead(date: NaiveDate, today: NaiveDate) -> Result<(), Rejection> {
    if date > today {
        return Err(Rejection::DateInFuture { date, today });
    }
    Ok(())
}

/// A coaching session's length: from 1 to [`MAX_SESSION_MINUTES`].
pub fn check_session_minutes(minutes: u32) -> Result<(), Rejection> {
    if !(1..=MAX_SESSION_MINUTES).contains(&minutes) {
        return Err(Rejection::SessionDurationOutOfRange {
            minutes,
            max: MAX_SESSION_MINUTES,
        });
    }
    Ok(())
}

/// The due date of a session's `number`th action item (from 1): on or
/// after the session, and at most [`MAX_DAYS_AHEAD`] after it.
pub fn check_item_due(
    number: usize,
    action_item_id: ActionItemId,
    due_on: NaiveDate,
    held_on: NaiveDate,
) -> Result<(), Rejection> {
    if due_on < held_on {
        return Err(Rejection::ActionItemDueBeforeSession {
            action_item_id,
            number,
            due_on,
            held_on,
        });
    }
    let latest = latest_ahead(held_on);
    if due_on > latest {
        return Err(Rejection::ActionItemDueTooFar {
            number,
            due_on,
            latest,
        });
    }
    Ok(())
}

/// What can be asked of a rep's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum RepCommand {
    JoinRep {
        joined: RepJoined,
        team_exists: bool,
        now: DateTime<Utc>,
    },
    MoveTeam {
        to: TeamId,
        on: NaiveDate,
        team_exists: bool,
        now: DateTime<Utc>,
    },
    ChangeRole {
        to: Role,
        on: NaiveDate,
        now: DateTime<Utc>,
    },
    Depart {
        departure: RepDeparted,
        now: DateTime<Utc>,
    },
    /// Gives the rep another name, departed or not.
    Rename { name: PersonName },
    AcknowledgeExpectations {
        acknowledged: ExpectationsAcknowledged,
        standard: StandardStatus,
        now: DateTime<Utc>,
    },
    GiveFeedback {
        feedback: FeedbackGiven,
        competency: CompetencyStatus,
        now: DateTime<Utc>,
    },
    AcknowledgeFeedback {
        acknowledged: FeedbackAcknowledged,
        now: DateTime<Utc>,
    },
    AssessSkill {
        assessment: SkillAssessed,
        competency: CompetencyStatus,
        now: DateTime<Utc>,
    },
    HoldCoachingSession {
        session: CoachingSessionHeld,
        now: DateTime<Utc>,
    },
    CompleteActionItem {
        completed: ActionItemCompleted,
        now: DateTime<Utc>,
    },
    DropActionItem {
        dropped: ActionItemDropped,
        now: DateTime<Utc>,
    },
    RecordTraining {
        training: TrainingCompleted,
        now: DateTime<Utc>,
    },
    MeasurePerformance {
        measurement: PerformanceMeasured,
        now: DateTime<Utc>,
        /// The kinds of period in which the standards measure the metric,
        /// read from them before deciding; none when no standard does.
        standard_periods: Vec<PeriodKind>,
        /// The largest target any standard of the metric has had, read with
        /// them: a value far above it is taken for a typo
        /// ([`crate::values::PLAUSIBLE_TIMES_TARGET`]).
        largest_target: f64,
    },
    RaiseSupportRequest {
        request: SupportRequested,
        now: DateTime<Utc>,
    },
    AcknowledgeSupportRequest {
        acknowledged: SupportAcknowledged,
        now: DateTime<Utc>,
    },
    ResolveSupportRequest {
        resolved: SupportResolved,
        now: DateTime<Utc>,
    },
    StartImprovementPlan {
        plan: ImprovementPlanStarted,
        now: DateTime<Utc>,
    },
    RecordPlanCheckpoint {
        checkpoint: PlanCheckpointRecorded,
        now: DateTime<Utc>,
    },
    CloseImprovementPlan {
        closed: ImprovementPlanClosed,
        now: DateTime<Utc>,
    },
    CorrectFact {
        correction: FactCorrected,
        /// For a measured value, the largest target any standard of the
        /// measurement's metric has had, read before deciding: a new value
        /// far above it is refused as a typo, as a measurement would be.
        /// `None` for the other corrections.
        largest_target: Option<f64>,
    },
    HoldReview {
        review: ReviewHeld,
        now: DateTime<Utc>,
    },
    /// Erase the rep's personal data (the store destroys their key).
    ErasePersonalData {
        erased: PersonalDataErased,
        now: DateTime<Utc>,
    },
}

/// The rule for an erasure's reason, which stays readable after the
/// erasure: it must name none of the person's `names` ([`crate::personal::names_person`]).
/// The rep's decision applies it; the write side applies it to every name
/// the person has (a leader's live in the teams' streams) before it
/// destroys their key, so that a refusal leaves nothing done.
pub fn check_erasure_reason<'a>(
    reason: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), Rejection> {
    if names
        .into_iter()
        .any(|name| crate::personal::names_person(reason, name))
    {
        return Err(Rejection::ErasureReasonNamesPerson);
    }
    Ok(())
}

/// The rep aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepAggregate;

impl Aggregate for RepAggregate {
    const CATEGORY: &'static str = RepEvent::CATEGORY;
    type State = RepState;
    type Command = RepCommand;
    type Event = RepEvent;

    fn decide(state: &RepState, command: RepCommand) -> Result<Vec<RepEvent>, Rejection> {
        decide(state, command)
    }

    fn evolve(state: RepState, event: &RepEvent) -> RepState {
        evolve(state, event)
    }
}

pub fn decide(state: &RepState, command: RepCommand) -> Result<Vec<RepEvent>, Rejection> {
    match (state, command) {
        (
            RepState::NotJoined,
            RepCommand::JoinRep {
                joined,
                team_exists,
                now,
            },
        ) => {
            if !team_exists {
                return Err(Rejection::TeamNotFound);
            }
            let today = now.date_naive();
            let latest = latest_ahead(today);
            if joined.start_date > latest {
                return Err(Rejection::StartDateTooFarAhead {
                    start_date: joined.start_date,
                    today,
                    latest,
                });
            }
            let earliest = earliest_start(today);
            if joined.start_date < earliest {
                return Err(Rejection::StartDateTooFarBack {
                    start_date: joined.start_date,
                    earliest,
                });
            }
            Ok(vec![joined.into()])
        }
        (RepState::NotJoined, _) => Err(Rejection::RepNotFound),
        (RepState::Joined(_), RepCommand::JoinRep { .. }) => Err(Rejection::RepAlreadyExists),
        (RepState::Joined(rep), command) => decide_for(rep, command),
    }
}

/// One event, when a command is accepted.
fn record(event: impl Into<RepEvent>) -> Result<Vec<RepEvent>, Rejection> {
    Ok(vec![event.into()])
}

fn decide_for(rep: &Rep, command: RepCommand) -> Result<Vec<RepEvent>, Rejection> {
    use RepCommand::*;
    if let Some(on) = rep.erased_on {
        return Err(Rejection::PersonalDataErased { on });
    }
    match command {
        JoinRep { .. } => Err(Rejection::RepAlreadyExists),
        MoveTeam {
            to,
            on,
            team_exists,
            now,
        } => {
            rep.active()?;
            rep.check_date(on, now)?;
            if !team_exists {
                return Err(Rejection::TeamNotFound);
            }
            if to == rep.team_id {
                return Ok(vec![]);
            }
            record(RepMovedTeam {
                from: rep.team_id,
                to,
                on,
            })
        }
        ChangeRole { to, on, now } => {
            rep.active()?;
            rep.check_date(on, now)?;
            if to == rep.role {
                return Ok(vec![]);
            }
            record(RepRoleChanged {
                from: rep.role.clone(),
                to,
                on,
            })
        }
        Rename { name } => {
            if name == rep.name {
                return Ok(vec![]);
            }
            record(RepRenamed { name })
        }
        Depart { departure, now } => {
            if let Some(on) = rep.departed_on {
                return Err(Rejection::RepAlreadyDeparted { on });
            }
            rep.check_date(departure.on, now)?;
            record(departure)
        }
        AcknowledgeExpectations {
            acknowledged,
            standard,
            now,
        } => {
            rep.active()?;
            rep.check_date(acknowledged.on, now)?;
            match standard {
                StandardStatus::Unknown => return Err(Rejection::StandardNotFound),
                StandardStatus::Retired { on } => return Err(Rejection::StandardRetired { on }),
                StandardStatus::Active { latest_version } => {
                    let version = acknowledged.standard_version;
                    if version == 0 || version > latest_version {
                        return Err(Rejection::StandardVersionNotFound {
                            standard_id: acknowledged.standard_id,
                            version,
                            latest: latest_version,
                        });
                    }
                }
            }
            let key = (acknowledged.standard_id, acknowledged.standard_version);
            if rep.acknowledged_expectations.contains(&key) {
                return Ok(vec![]);
            }
            record(acknowledged)
        }
        GiveFeedback {
            feedback,
            competency,
            now,
        } => {
            rep.active()?;
            rep.check_date(feedback.given_on, now)?;
            rep.check_new_id(feedback.feedback_id.as_uuid())?;
            check_competency(competency)?;
            record(feedback)
        }
        AcknowledgeFeedback { acknowledged, now } => {
            rep.active()?;
            rep.check_date(acknowledged.on, now)?;
            let feedback_id = acknowledged.feedback_id;
            if !rep.sees_feedback(feedback_id) {
                return Err(Rejection::FeedbackNotFound { feedback_id });
            }
            if rep
                .feedback
                .get(&feedback_id)
                .is_some_and(|f| f.acknowledged)
            {
                return Ok(vec![]);
            }
            record(acknowledged)
        }
        AssessSkill {
            assessment,
            competency,
            now,
        } => {
            rep.active()?;
            rep.check_date(assessment.assessed_on, now)?;
            rep.check_new_id(assessment.assessment_id.as_uuid())?;
            check_competency(competency)?;
            record(assessment)
        }
        HoldCoachingSession { session, now } => {
            rep.active()?;
            rep.check_date(session.held_on, now)?;
            rep.check_new_id(session.session_id.as_uuid())?;
            check_session_minutes(session.duration_minutes)?;
            for (i, item) in session.action_items.iter().enumerate() {
                let id = item.action_item_id;
                let repeated = session.action_items[..i]
                    .iter()
                    .any(|earlier| earlier.action_item_id == id);
                if repeated || id.as_uuid() == session.session_id.as_uuid() {
                    return Err(Rejection::IdAlreadyUsed { id: id.as_uuid() });
                }
                rep.check_new_id(id.as_uuid())?;
                check_item_due(i + 1, id, item.due_on, session.held_on)?;
            }
            record(session)
        }
        CompleteActionItem { completed, now } => {
            rep.check_date(completed.on, now)?;
            rep.open_action_item(completed.action_item_id)?;
            rep.check_not_before_agreed(completed.action_item_id, completed.on)?;
            record(completed)
        }
        DropActionItem { dropped, now } => {
            rep.check_date(dropped.on, now)?;
            rep.open_action_item(dropped.action_item_id)?;
            rep.check_not_before_agreed(dropped.action_item_id, dropped.on)?;
            record(dropped)
        }
        RecordTraining { training, now } => {
            rep.active()?;
            rep.check_date(training.completed_on, now)?;
            rep.check_new_id(training.training_id.as_uuid())?;
            record(training)
        }
        MeasurePerformance {
            measurement,
            now,
            standard_periods,
            largest_target,
        } => rep.measure(measurement, now, (&standard_periods, largest_target)),
        RaiseSupportRequest { request, now } => {
            rep.active()?;
            rep.check_date(request.raised_on, now)?;
            rep.check_new_id(request.request_id.as_uuid())?;
            record(request)
        }
        AcknowledgeSupportRequest { acknowledged, now } => {
            rep.check_date(acknowledged.on, now)?;
            rep.check_not_before_raised(acknowledged.request_id, acknowledged.on)?;
            match rep.support_request(acknowledged.request_id)? {
                SupportStatus::Raised => record(acknowledged),
                SupportStatus::Acknowledged => Ok(vec![]),
                SupportStatus::Resolved { on } => Err(Rejection::SupportRequestResolved {
                    request_id: acknowledged.request_id,
                    on,
                }),
            }
        }
        ResolveSupportRequest { resolved, now } => {
            rep.check_date(resolved.on, now)?;
            rep.check_not_before_raised(resolved.request_id, resolved.on)?;
            match rep.support_request(resolved.request_id)? {
                SupportStatus::Resolved { on } => Err(Rejection::SupportRequestResolved {
                    request_id: resolved.request_id,
                    on,
                }),
                SupportStatus::Raised | SupportStatus::Acknowledged => record(resolved),
            }
        }
        StartImprovementPlan { plan, now } => {
            rep.active()?;
            rep.check_date(plan.started_on, now)?;
            rep.check_new_id(plan.plan_id.as_uuid())?;
            if let Some(plan_id) = rep.open_plan {
                return Err(Rejection::ImprovementPlanAlreadyOpen { plan_id });
            }
            if plan.targets.is_empty() {
                return Err(Rejection::ImprovementPlanWithoutTargets);
            }
            if plan.review_on <= plan.started_on {
                return Err(Rejection::ReviewDateNotAfterStart {
                    started_on: plan.started_on,
                    review_on: plan.review_on,
                });
            }
            let latest = latest_ahead(plan.started_on);
            if plan.review_on > latest {
                return Err(Rejection::ReviewDateTooFar {
                    started_on: plan.started_on,
                    review_on: plan.review_on,
                    latest,
                });
            }
            record(plan)
        }
        RecordPlanCheckpoint { checkpoint, now } => {
            rep.active()?;
            rep.check_date(checkpoint.on, now)?;
            rep.open_plan(checkpoint.plan_id)?;
            rep.check_not_before_plan_start(checkpoint.on)?;
            record(checkpoint)
        }
        CloseImprovementPlan { closed, now } => {
            rep.check_date(closed.on, now)?;
            rep.open_plan(closed.plan_id)?;
            rep.check_not_before_plan_start(closed.on)?;
            record(closed)
        }
        CorrectFact {
            correction,
            largest_target,
        } => rep.correct(correction, largest_target),
        HoldReview { review, now } => {
            rep.check_date(review.on, now)?;
            rep.check_new_id(review.review_id.as_uuid())?;
            if review.period_to < review.period_from {
                return Err(Rejection::ReviewPeriodBackwards {
                    from: review.period_from,
                    to: review.period_to,
                });
            }
            if review.on < review.period_from {
                return Err(Rejection::ReviewBeforePeriod {
                    date: review.on,
                    from: review.period_from,
                    to: review.period_to,
                });
            }
            record(review)
        }
        ErasePersonalData { erased, now } => {
            if erased.on > now.date_naive() {
                return Err(Rejection::DateInFuture {
                    date: erased.on,
                    today: now.date_naive(),
                });
            }
            check_erasure_reason(
                erased.reason.as_str(),
                std::iter::once(&rep.name)
                    .chain(&rep.former_names)
                    .map(PersonName::as_str),
            )?;
            record(erased)
        }
    }
}

fn check_competency(status: CompetencyStatus) -> Result<(), Rejection> {
    match status {
        CompetencyStatus::Active => Ok(()),
        CompetencyStatus::Retired => Err(Rejection::CompetencyRetired),
        CompetencyStatus::Unknown => Err(Rejection::CompetencyNotFound),
    }
}

impl Rep {
    /// Refuses `date` for something about support request `request_id` when
    /// it is before the request was raised.
    fn check_not_before_raised(
        &self,
        request_id: SupportRequestId,
        date: NaiveDate,
    ) -> Result<(), Rejection> {
        match self.raised_on.get(&request_id) {
            Some(&raised_on) if date < raised_on => {
                Err(Rejection::DateBeforeRaised { date, raised_on })
            }
            _ => Ok(()),
        }
    }

    /// Refuses `date` for something about the open improvement plan when it
    /// is before the plan started.
    /// Refuses closing an action item before the session it was agreed in.
    fn check_not_before_agreed(
        &self,
        action_item_id: ActionItemId,
        date: NaiveDate,
    ) -> Result<(), Rejection> {
        match self.action_items.get(&action_item_id) {
            Some(item) if date < item.agreed_on => Err(Rejection::DateBeforeAgreed {
                date,
                agreed_on: item.agreed_on,
            }),
            _ => Ok(()),
        }
    }

    fn check_not_before_plan_start(&self, date: NaiveDate) -> Result<(), Rejection> {
        match self.open_plan_started_on {
            Some(started_on) if date < started_on => {
                Err(Rejection::DateBeforePlanStart { date, started_on })
            }
            _ => Ok(()),
        }
    }

    /// Refuses new activity for a departed rep.
    fn active(&self) -> Result<(), Rejection> {
        match self.departed_on {
            Some(on) => Err(Rejection::RepDeparted { on }),
            None => Ok(()),
        }
    }

    /// A date must not be in the future, nor before the rep joined.
    fn check_date(&self, date: NaiveDate, now: DateTime<Utc>) -> Result<(), Rejection> {
        check_not_ahead(date, now.date_naive())?;
        if date < self.start_date {
            return Err(Rejection::DateBeforeJoined {
                date,
                joined: self.start_date,
            });
        }
        Ok(())
    }

    fn check_new_id(&self, id: Uuid) -> Result<(), Rejection> {
        if self.id_used(id) {
            Err(Rejection::IdAlreadyUsed { id })
        } else {
            Ok(())
        }
    }

    /// An action item that is open, and counts: not agreed in a coaching
    /// session retracted since (the session and its items no longer count).
    fn open_action_item(&self, action_item_id: ActionItemId) -> Result<(), Rejection> {
        let Some(item) = self.action_items.get(&action_item_id) else {
            return Err(Rejection::ActionItemNotFound { action_item_id });
        };
        if self.is_retracted(item.session_id.as_uuid()) {
            return Err(Rejection::ActionItemWithdrawn {
                action_item_id,
                session_id: item.session_id,
            });
        }
        match item.status {
            ActionItemStatus::Open => Ok(()),
            status => Err(Rejection::ActionItemClosed {
                action_item_id,
                status,
            }),
        }
    }

    fn support_request(&self, request_id: SupportRequestId) -> Result<SupportStatus, Rejection> {
        self.support_requests
            .get(&request_id)
            .copied()
            .ok_or(Rejection::SupportRequestNotFound { request_id })
    }

    fn open_plan(&self, plan_id: PlanId) -> Result<(), Rejection> {
        if self.open_plan == Some(plan_id) {
            Ok(())
        } else {
            Err(Rejection::ImprovementPlanNotOpen { plan_id })
        }
    }

    /// Records a measurement of a metric some standard measures, in a
    /// period of that standard's kind: any other would be judged against
    /// nothing and shown nowhere. Measured again with a new value, it is
    /// corrected; with the same value, nothing happens.
    fn measure(
        &self,
        measurement: PerformanceMeasured,
        now: DateTime<Utc>,
        (standard_periods, largest_target): (&[PeriodKind], f64),
    ) -> Result<Vec<RepEvent>, Rejection> {
        let period = measurement.period;
        if standard_periods.is_empty() {
            return Err(Rejection::MetricNotMeasured {
                metric: measurement.metric,
            });
        }
        // A stray digit (999999999 calls) would make every chart and mean
        // of the rep's meaningless, for good: the log keeps it.
        if !crate::values::plausible(measurement.value.get(), largest_target) {
            return Err(Rejection::MeasurementImplausible {
                metric: measurement.metric,
                value: measurement.value.get(),
                largest_target,
            });
        }
        if !standard_periods.contains(&period.kind()) {
            let mut kinds = standard_periods.to_vec();
            kinds.sort();
            kinds.dedup();
            return Err(Rejection::PeriodNotMeasured {
                metric: measurement.metric,
                period,
                kinds,
            });
        }
        let today = now.date_naive();
        if period.start() > today {
            return Err(Rejection::PeriodNotStarted { period, today });
        }
        if period.end() < self.start_date {
            return Err(Rejection::PeriodBeforeJoined {
                period,
                joined: self.start_date,
            });
        }
        if let Some(departed) = self
            .departed_on
            .filter(|departed| period.start() > *departed)
        {
            return Err(Rejection::PeriodAfterDeparture { period, departed });
        }
        if let Some(earlier) = self.live_measurement(&measurement.metric, period) {
            if earlier.value == measurement.value {
                return Ok(vec![]);
            }
            let reason = match measurement.source {
                MeasurementSource::CrmImport => "re-imported",
                MeasurementSource::Manual => "re-entered",
            };
            return record(FactCorrected {
                fact_id: earlier.measurement_id.as_uuid(),
                reason: NonEmptyText::try_from(reason).expect("a fixed, non-empty reason"),
                correction: Correction::MeasuredValue {
                    value: measurement.value,
                },
            });
        }
        self.check_new_id(measurement.measurement_id.as_uuid())?;
        record(measurement)
    }

    fn correct(
        &self,
        corrected: FactCorrected,
        largest_target: Option<f64>,
    ) -> Result<Vec<RepEvent>, Rejection> {
        let fact_id = corrected.fact_id;
        let fact = self
            .fact(fact_id)
            .ok_or(Rejection::FactNotFound { fact_id })?;
        if fact.retracted {
            return Err(Rejection::FactAlreadyRetracted { fact_id });
        }
        match (fact.kind, &corrected.correction) {
            (_, Correction::Retracted) | (FactKind::Assessment, Correction::SkillLevel { .. }) => {
                record(corrected)
            }
            (FactKind::Measurement, Correction::MeasuredValue { value }) => {
                let current = self.measurement(MeasurementId::from_uuid(fact_id));
                if current.is_some_and(|m| m.value == *value) {
                    return Ok(vec![]);
                }
                if let (Some(largest_target), Some(current)) = (largest_target, current)
                    && !crate::values::plausible(value.get(), largest_target)
                {
                    return Err(Rejection::MeasurementImplausible {
                        metric: self.metric(current.metric).clone(),
                        value: value.get(),
                        largest_target,
                    });
                }
                record(corrected)
            }
            (kind, correction) => Err(Rejection::CorrectionDoesNotFit {
                fact_id,
                fact: kind,
                correction: correction.label(),
            }),
        }
    }
}
