//! Why a command was refused, in the words of the person who sent it.
//!
//! Every message says what was wrong and how to put it right. There is no
//! database, network or "internal" variant: those belong to other layers.

use std::borrow::Cow;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::ids::{ActionItemId, FeedbackId, PlanId, SessionId, StandardId, SupportRequestId};
use crate::period::{Period, PeriodKind};
use crate::rep::{ActionItemStatus, FactKind};
use crate::values::{MetricName, Role, ValueError};

/// A refused command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// A value given at the edge did not parse (e.g. a skill level of 7, an empty note,
    /// a target of 0). The edge turns a [`ValueError`] into this with `?`.
    #[error(transparent)]
    Invalid(#[from] ValueError),

    // Team
    #[error("This team already exists. To form another team, use a new team id.")]
    TeamAlreadyExists,
    #[error("There is no such team. Form the team first, or pick an existing team.")]
    TeamNotFound,
    #[error(
        "Another team is already called “{name}”. Give this one a name of its own, so that leaders and reps can tell the two apart."
    )]
    TeamNameTaken { name: String },

    // Competency
    #[error("This competency is already defined. To change it, revise it instead.")]
    CompetencyAlreadyDefined,
    #[error("There is no such competency. Define it first, or pick one from the framework.")]
    CompetencyNotFound,
    #[error(
        "The framework already has a competency called “{name}”. Revise that one, or give this one a name of its own, so that leaders assessing against them can tell the two apart."
    )]
    CompetencyNameTaken { name: String },
    #[error("This competency has been retired. Pick an active competency.")]
    CompetencyRetired,

    // Standard
    #[error(
        "This standard is already set. To change its target, roles or ramp, revise it instead."
    )]
    StandardAlreadySet,
    #[error("There is no such standard. Set the standard first, or pick an existing one.")]
    StandardNotFound,
    #[error("This standard was retired with effect from {on}. Set a new standard instead.")]
    StandardRetired { on: NaiveDate },
    #[error(
        "Standard {standard_id} has no version {version}; its latest version is {latest}. Acknowledge a version that exists."
    )]
    StandardVersionNotFound {
        standard_id: StandardId,
        version: u32,
        latest: u32,
    },
    #[error(
        "A standard must apply to at least one role. Name the roles it applies to, e.g. SDR or AE."
    )]
    NoRoles,
    #[error(
        "The ramp must list periods 1, 2, 3… in order with no gaps, but step {position} is for period {found} instead of {expected}. Renumber the ramp steps."
    )]
    RampOutOfOrder {
        position: usize,
        expected: u32,
        found: u32,
    },
    #[error(
        "The ramp step for period {period_index} asks for 0% of the target. Give each step a percentage above zero, or leave the period out of the ramp."
    )]
    RampPercentZero { period_index: u32 },
    #[error(
        "The ramp step for period {period_index} asks for {percent}% of the target. A ramp eases a new rep in: give each step 100% or less, or leave the period out of the ramp."
    )]
    RampPercentAboveFull { period_index: u32, percent: u16 },
    #[error(
        "A revision must take effect after the latest version, which takes effect on {latest}; {given} is not after it. Pick a later date."
    )]
    RevisionNotAfterLatest { given: NaiveDate, latest: NaiveDate },
    #[error(
        "A standard cannot be retired before its latest version takes effect on {latest}; {given} is earlier. Pick {latest} or later."
    )]
    RetirementBeforeLatest { given: NaiveDate, latest: NaiveDate },

    // Rep: existence and lifecycle
    #[error("This rep has already joined. To record a new rep, use a new rep id.")]
    RepAlreadyExists,
    #[error(
        "The start date {start_date} is more than a year away (today is {today}). Check the year, or record the rep nearer to their start: pick a date on or before {latest}."
    )]
    StartDateTooFarAhead {
        start_date: NaiveDate,
        today: NaiveDate,
        latest: NaiveDate,
    },
    #[error(
        "The start date {start_date} is more than {} years ago. Check the year: pick a date on or after {earliest}.",
        crate::values::MAX_YEARS_BACK
    )]
    StartDateTooFarBack {
        start_date: NaiveDate,
        earliest: NaiveDate,
    },
    #[error("There is no such rep. Record that the rep joined first, or pick an existing rep.")]
    RepNotFound,
    #[error(
        "This rep departed on {on}, so nothing new can be recorded for them. To fix an earlier record, correct it instead."
    )]
    RepDeparted { on: NaiveDate },
    #[error(
        "This person's personal data was erased on {on}, so nothing more can be recorded about them. Their figures stay, under their id."
    )]
    PersonalDataErased { on: NaiveDate },
    #[error(
        "The reason names the person being erased: it holds their name or a word of it, and their surname counts however it is written (“law” for someone called Law). The reason stays readable in the log after the erasure, so write why without it, for example “asked to be forgotten (GDPR article 17)”."
    )]
    ErasureReasonNamesPerson,
    #[error("This rep already departed on {on}. To fix the departure record, correct it instead.")]
    RepAlreadyDeparted { on: NaiveDate },
    #[error("{date} is before the rep joined on {joined}. Pick a date on or after {joined}.")]
    DateBeforeJoined { date: NaiveDate, joined: NaiveDate },
    #[error("{date} is in the future (today is {today}). Record things once they have happened.")]
    DateInFuture { date: NaiveDate, today: NaiveDate },
    #[error(
        "{date} is before the support request was raised on {raised_on}. Pick a date on or after {raised_on}."
    )]
    DateBeforeRaised {
        date: NaiveDate,
        raised_on: NaiveDate,
    },
    #[error(
        "{date} is before the action item was agreed, in the coaching session on {agreed_on}. Pick a date on or after {agreed_on}."
    )]
    DateBeforeAgreed {
        date: NaiveDate,
        agreed_on: NaiveDate,
    },
    #[error(
        "A review of {from} to {to} cannot have been held on {date}, before the period it looks back on began. Pick the day the review was held, on or after {from}."
    )]
    ReviewBeforePeriod {
        date: NaiveDate,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error(
        "{date} is before the improvement plan started on {started_on}. Pick a date on or after {started_on}."
    )]
    DateBeforePlanStart {
        date: NaiveDate,
        started_on: NaiveDate,
    },
    #[error("The id {id} is already used by another record of this rep. Use a new id.")]
    IdAlreadyUsed { id: Uuid },

    // Rep: feedback
    #[error(
        "There is no feedback {feedback_id} shared with this rep. Check which feedback you mean."
    )]
    FeedbackNotFound { feedback_id: FeedbackId },

    // Rep: coaching
    #[error(
        "A coaching session must last between 1 and {max} minutes, but {minutes} was given. Enter how long the session took."
    )]
    SessionDurationOutOfRange { minutes: u32, max: u32 },
    #[error(
        "Action item {number} is due on {due_on}, before the session on {held_on}. Pick a due date on or after the session."
    )]
    ActionItemDueBeforeSession {
        action_item_id: ActionItemId,
        /// Its place in the session's list, from 1: how the person who
        /// wrote the list knows it.
        number: usize,
        due_on: NaiveDate,
        held_on: NaiveDate,
    },
    #[error(
        "Action item {number} is due on {due_on}, more than a year after the session. A follow-up is due within weeks or months: pick a date on or before {latest}."
    )]
    ActionItemDueTooFar {
        number: usize,
        due_on: NaiveDate,
        latest: NaiveDate,
    },
    #[error(
        "There is no action item {action_item_id} for this rep. Check which follow-up you mean."
    )]
    ActionItemNotFound { action_item_id: ActionItemId },
    #[error("This action item is already {status}. Nothing more to do.")]
    ActionItemClosed {
        action_item_id: ActionItemId,
        status: ActionItemStatus,
    },
    // The session is not named: it may be private, and the item's owner a rep.
    #[error(
        "This action item was agreed in a coaching session that has since been \
         retracted: the item no longer counts and cannot be completed or dropped. Nothing \
         more to do."
    )]
    ActionItemWithdrawn {
        action_item_id: ActionItemId,
        session_id: SessionId,
    },

    // Rep: support
    #[error(
        "There is no support request {request_id} from this rep. Check which request you mean."
    )]
    SupportRequestNotFound { request_id: SupportRequestId },
    #[error(
        "This support request was already resolved on {on}. If the obstacle is back, ask the rep to raise a new request."
    )]
    SupportRequestResolved {
        request_id: SupportRequestId,
        on: NaiveDate,
    },

    // Rep: improvement plans
    #[error("This rep already has an open improvement plan. Close it before starting another.")]
    ImprovementPlanAlreadyOpen { plan_id: PlanId },
    #[error(
        "Improvement plan {plan_id} is not open for this rep. Start a plan first, or pick the open one."
    )]
    ImprovementPlanNotOpen { plan_id: PlanId },
    #[error("An improvement plan needs at least one target. Say what the rep must achieve.")]
    ImprovementPlanWithoutTargets,
    #[error(
        "The review date {review_on} must be after the plan starts on {started_on}. Pick a later review date."
    )]
    ReviewDateNotAfterStart {
        started_on: NaiveDate,
        review_on: NaiveDate,
    },
    #[error(
        "The review date {review_on} is more than a year after the plan starts on {started_on}. An improvement plan is reviewed within weeks or months: pick a date on or before {latest}."
    )]
    ReviewDateTooFar {
        started_on: NaiveDate,
        review_on: NaiveDate,
        latest: NaiveDate,
    },

    // Rep: measurements
    #[error(
        "The period {period} has not started yet (today is {today}). Record a measurement once its period is under way."
    )]
    PeriodNotStarted { period: Period, today: NaiveDate },
    #[error(
        "The standard “{other}” already holds {role} reps to {metric}, {}, over the same time: each measurement would be judged twice. Revise that standard instead, or retire it from the day this one takes effect.",
        period.adverb()
    )]
    StandardOverlaps {
        other: String,
        metric: MetricName,
        period: PeriodKind,
        role: Role,
    },
    #[error(
        "The standard “{other}” already holds {role} reps to {metric}, {}, over the same time: each measurement would be judged twice. Leave {role} out of this one, or retire that one from the day this revision takes effect.",
        period.adverb()
    )]
    RevisionOverlapsStandard {
        other: String,
        metric: MetricName,
        period: PeriodKind,
        role: Role,
    },
    #[error(
        "No standard measures “{metric}”. Check the metric's name against the standards, or set a standard that measures it first."
    )]
    MetricNotMeasured { metric: MetricName },
    #[error(
        "{value} is more than {} times the largest target of the standards for “{metric}” ({largest_target}). Check it for a typo, such as a digit typed twice.",
        crate::values::PLAUSIBLE_TIMES_TARGET
    )]
    MeasurementImplausible {
        metric: MetricName,
        value: f64,
        largest_target: f64,
    },
    #[error(
        "“{metric}” is measured {}, so {period} is not one of its periods. Give a period like {}.",
        kinds_words(kinds),
        kinds_examples(kinds)
    )]
    PeriodNotMeasured {
        metric: MetricName,
        period: Period,
        /// Sorted, each once, never empty.
        kinds: Vec<PeriodKind>,
    },
    #[error(
        "The period {period} ended before the rep joined on {joined}. Pick a period the rep worked in."
    )]
    PeriodBeforeJoined { period: Period, joined: NaiveDate },
    #[error(
        "The period {period} starts after the rep departed on {departed}. Pick a period the rep worked in."
    )]
    PeriodAfterDeparture { period: Period, departed: NaiveDate },

    // Rep: corrections
    #[error(
        "There is no record {fact_id} of this rep that can be corrected. Check the id of the assessment, measurement, feedback, session or training you mean."
    )]
    FactNotFound { fact_id: Uuid },
    #[error("Record {fact_id} has already been retracted. There is nothing left to correct.")]
    FactAlreadyRetracted { fact_id: Uuid },
    #[error(
        "Record {fact_id} is a {fact}, which cannot take a {correction} correction. Correct a skill level on an assessment, a value on a measurement, or retract the record."
    )]
    CorrectionDoesNotFit {
        fact_id: Uuid,
        fact: FactKind,
        correction: &'static str,
    },

    // Rep: reviews
    #[error(
        "The review period runs from {from} to {to}, which is backwards. Put the earlier date first."
    )]
    ReviewPeriodBackwards { from: NaiveDate, to: NaiveDate },

    // Alerts
    #[error(
        "The alert “{occurrence_key}” names no one to act on it. Give at least one leader or the rep."
    )]
    AlertWithoutRecipients { occurrence_key: String },
}

/// "weekly", or "weekly or monthly".
fn kinds_words(kinds: &[PeriodKind]) -> String {
    or_list(kinds.iter().map(|k| k.adverb().to_owned()))
}

/// "2026-W05", or "2026-W05 or 2026-03".
fn kinds_examples(kinds: &[PeriodKind]) -> String {
    or_list(kinds.iter().map(|k| k.example().to_owned()))
}

fn or_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

impl Rejection {
    /// What the refusal is about, when it is one value a form shows: `date`
    /// (the date of the record), `metric`, `period`, `roles`, `ramp`, `targets` or
    /// `review_on` (an improvement plan's review date), `start_date` (a new
    /// rep's), `name` (a team's or a competency's), `duration_minutes`
    /// (a coaching session's length) or `action_items[k].due_on` (the due
    /// date of the session's item `k`, from 0); so that a form can show the
    /// refusal beside that field.
    pub fn concerns(&self) -> Option<Cow<'static, str>> {
        use Rejection as R;
        if let R::ActionItemDueBeforeSession { number, .. }
        | R::ActionItemDueTooFar { number, .. } = self
        {
            let k = number.saturating_sub(1);
            return Some(Cow::Owned(format!("action_items[{k}].due_on")));
        }
        let field = match self {
            R::DateBeforeJoined { .. }
            | R::DateInFuture { .. }
            | R::DateBeforeRaised { .. }
            | R::DateBeforeAgreed { .. }
            | R::ReviewBeforePeriod { .. }
            | R::DateBeforePlanStart { .. }
            | R::RevisionNotAfterLatest { .. }
            | R::RetirementBeforeLatest { .. } => Some("date"),
            R::MetricNotMeasured { .. } | R::StandardOverlaps { .. } => Some("metric"),
            R::RevisionOverlapsStandard { .. } => Some("roles"),
            R::PeriodNotStarted { .. }
            | R::PeriodNotMeasured { .. }
            | R::PeriodBeforeJoined { .. }
            | R::PeriodAfterDeparture { .. } => Some("period"),
            R::NoRoles => Some("roles"),
            R::TeamNameTaken { .. } | R::CompetencyNameTaken { .. } => Some("name"),
            R::RampOutOfOrder { .. }
            | R::RampPercentZero { .. }
            | R::RampPercentAboveFull { .. } => Some("ramp"),
            R::ImprovementPlanWithoutTargets => Some("targets"),
            R::ReviewDateNotAfterStart { .. } | R::ReviewDateTooFar { .. } => Some("review_on"),
            R::StartDateTooFarAhead { .. } | R::StartDateTooFarBack { .. } => Some("start_date"),
            R::SessionDurationOutOfRange { .. } => Some("duration_minutes"),
            R::MeasurementImplausible { .. } => Some("value"),
            R::ErasureReasonNamesPerson => Some("reason"),
            _ => None,
        };
        field.map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_about_one_value_names_it_and_others_name_none() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).expect("a date");
        let before = Rejection::DateBeforeJoined {
            date: day(1),
            joined: day(2),
        };
        assert_eq!(before.concerns().as_deref(), Some("date"));
        assert_eq!(Rejection::NoRoles.concerns().as_deref(), Some("roles"));
        assert_eq!(
            Rejection::ImprovementPlanWithoutTargets
                .concerns()
                .as_deref(),
            Some("targets")
        );
        let raised = Rejection::DateBeforeRaised {
            date: day(1),
            raised_on: day(2),
        };
        assert_eq!(raised.concerns().as_deref(), Some("date"));
        let review = Rejection::ReviewDateNotAfterStart {
            started_on: day(2),
            review_on: day(1),
        };
        assert_eq!(review.concerns().as_deref(), Some("review_on"));
        let long = Rejection::SessionDurationOutOfRange {
            minutes: 500,
            max: 480,
        };
        assert_eq!(long.concerns().as_deref(), Some("duration_minutes"));
        // The third item of a session is `action_items[2]`, as the request
        // and the form list it.
        let due = Rejection::ActionItemDueBeforeSession {
            action_item_id: ActionItemId::from_uuid(Uuid::nil()),
            number: 3,
            due_on: day(1),
            held_on: day(2),
        };
        assert_eq!(due.concerns().as_deref(), Some("action_items[2].due_on"));
        assert!(
            due.to_string().starts_with("Action item 3 is due on"),
            "{due}"
        );
        let far = Rejection::ActionItemDueTooFar {
            number: 1,
            due_on: day(1),
            latest: day(2),
        };
        assert_eq!(far.concerns().as_deref(), Some("action_items[0].due_on"));
        assert_eq!(Rejection::RepNotFound.concerns(), None);
    }
}
