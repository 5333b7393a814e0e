//! Alert: one occurrence of something a person must act on (a standard missed
//! again, a rep not coached for a while, …), raised by the alert rules.
//! Stream category `alert`.
//!
//! Each occurrence has a stable key (e.g.
//! `standard_missed/<rep>/<standard>/2026-W05`) and its stream is
//! `alert-<uuid>` with the UUID a name-based (v5) UUID of that key
//! ([`AlertId::for_occurrence`]), so the log itself guarantees that an
//! occurrence is raised at most once: the raiser appends expecting an empty
//! stream, and a conflict means it was raised already.
//!
//! Raising an occurrence that was already raised is accepted and records
//! nothing (so retries and restarts are harmless).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::ids::{
    ActionItemId, AlertId, LeaderId, PlanId, RepId, StandardId, SupportRequestId, TeamId, stream_id,
};
use crate::payload::event_enum;
use crate::period::Period;
use crate::rejection::Rejection;
use crate::values::ValueError;

/// The namespace of alert ids: `AlertId = uuid_v5(ALERT_NAMESPACE, occurrence key)`.
pub const ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c2e_9d4a_5e7b_8c01_a2f3_4d5e_6f70);

/// The longest occurrence key accepted.
pub const MAX_OCCURRENCE_KEY_LEN: usize = 400;

/// What makes one occurrence of an alert itself: one line, no whitespace, at
/// most [`MAX_OCCURRENCE_KEY_LEN`] characters, e.g.
/// `support_request_unresolved/0190…`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OccurrenceKey(String);

impl OccurrenceKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for OccurrenceKey {
    type Error = ValueError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        const WHAT: &str = "occurrence key";
        if input.is_empty() {
            return Err(ValueError::EmptyLine { what: WHAT });
        }
        let actual = input.chars().count();
        if actual > MAX_OCCURRENCE_KEY_LEN {
            return Err(ValueError::TextTooLong {
                what: WHAT,
                max: MAX_OCCURRENCE_KEY_LEN,
                actual,
            });
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::NotOneLine { what: WHAT });
        }
        Ok(OccurrenceKey(input.to_owned()))
    }
}

impl TryFrom<String> for OccurrenceKey {
    type Error = ValueError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        OccurrenceKey::try_from(input.as_str())
    }
}

impl From<OccurrenceKey> for String {
    fn from(key: OccurrenceKey) -> Self {
        key.0
    }
}

impl fmt::Display for OccurrenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AlertId {
    /// The id of an occurrence: a name-based UUID (v5) of its key.
    pub fn for_occurrence(key: &OccurrenceKey) -> AlertId {
        AlertId::from_uuid(Uuid::new_v5(&ALERT_NAMESPACE, key.as_str().as_bytes()))
    }

    /// This alert's stream, `alert-<uuid>`.
    pub fn stream_id(&self) -> String {
        stream_id(AlertEvent::CATEGORY, self.as_uuid())
    }
}

/// What kind of alert, as a subject token and a name: `standard_missed`, ….
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    StandardMissed,
    NotCoached,
    ActionItemOverdue,
    SupportRequestUnresolved,
    QualityGatePassed,
    PlanReviewNear,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::StandardMissed,
        AlertKind::NotCoached,
        AlertKind::ActionItemOverdue,
        AlertKind::SupportRequestUnresolved,
        AlertKind::QualityGatePassed,
        AlertKind::PlanReviewNear,
    ];

    /// The snake_case name, e.g. `standard_missed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::StandardMissed => "standard_missed",
            AlertKind::NotCoached => "not_coached",
            AlertKind::ActionItemOverdue => "action_item_overdue",
            AlertKind::SupportRequestUnresolved => "support_request_unresolved",
            AlertKind::QualityGatePassed => "quality_gate_passed",
            AlertKind::PlanReviewNear => "plan_review_near",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who must act. JSON: `{"kind": "leader", "id": "…"}` or `{"kind": "rep", "id": "…"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    Leader(LeaderId),
    Rep(RepId),
}

/// What the alert is about, per kind. JSON is tagged by `"kind"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertDetails {
    /// A standard missed in `periods` (consecutive, oldest first).
    StandardMissed {
        standard_id: StandardId,
        periods: Vec<Period>,
    },
    /// No coaching session for `days` days; `last_coached_on` is `None` when never coached.
    NotCoached {
        last_coached_on: Option<NaiveDate>,
        days: u32,
    },
    /// An open action item past its due date.
    ActionItemOverdue {
        action_item_id: ActionItemId,
        due_on: NaiveDate,
        days_overdue: u32,
    },
    /// A support request open `days_open` days, past the SLA.
    SupportRequestUnresolved {
        request_id: SupportRequestId,
        raised_on: NaiveDate,
        days_open: u32,
    },
    /// Every quality standard met for the required run of periods.
    QualityGatePassed { passed_on: NaiveDate },
    /// An open improvement plan's review is `days_until` days away.
    PlanReviewNear {
        plan_id: PlanId,
        review_on: NaiveDate,
        days_until: u32,
    },
}

impl AlertDetails {
    pub fn kind(&self) -> AlertKind {
        match self {
            AlertDetails::StandardMissed { .. } => AlertKind::StandardMissed,
            AlertDetails::NotCoached { .. } => AlertKind::NotCoached,
            AlertDetails::ActionItemOverdue { .. } => AlertKind::ActionItemOverdue,
            AlertDetails::SupportRequestUnresolved { .. } => AlertKind::SupportRequestUnresolved,
            AlertDetails::QualityGatePassed { .. } => AlertKind::QualityGatePassed,
            AlertDetails::PlanReviewNear { .. } => AlertKind::PlanReviewNear,
        }
    }
}

/// An alert was raised for one occurrence. The only event of its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    /// `uuid_v5(ALERT_NAMESPACE, occurrence_key)`: the stream's entity id.
    pub alert_id: AlertId,
    pub occurrence_key: OccurrenceKey,
    pub team_id: TeamId,
    pub rep_id: RepId,
    /// Who must act, in a stable order; never empty.
    pub recipients: Vec<Recipient>,
    pub details: AlertDetails,
    /// The business date the rules were evaluated for.
    pub raised_on: NaiveDate,
}

impl AlertRaised {
    pub fn kind(&self) -> AlertKind {
        self.details.kind()
    }
}

event_enum! {
    /// Everything that can happen in an alert's stream.
    pub enum AlertEvent in "alert" {
        Raised(AlertRaised) = ("AlertRaised", v 1),
    }
}

/// What an alert aggregate remembers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AlertState {
    #[default]
    NotRaised,
    Raised {
        alert_id: AlertId,
        raised_on: NaiveDate,
    },
}

/// What can be asked of an alert's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertCommand {
    /// Raise one occurrence (on the stream of [`AlertId::for_occurrence`] of
    /// its key). It must name at least one recipient.
    Raise {
        occurrence_key: OccurrenceKey,
        team_id: TeamId,
        rep_id: RepId,
        recipients: Vec<Recipient>,
        details: AlertDetails,
        raised_on: NaiveDate,
    },
}

/// The alert aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertAggregate;

impl Aggregate for AlertAggregate {
    const CATEGORY: &'static str = AlertEvent::CATEGORY;
    type State = AlertState;
    type Command = AlertCommand;
    type Event = AlertEvent;

    fn decide(state: &AlertState, command: AlertCommand) -> Result<Vec<AlertEvent>, Rejection> {
        decide(state, command)
    }

    fn evolve(state: AlertState, event: &AlertEvent) -> AlertState {
        evolve(state, event)
    }
}

pub fn decide(state: &AlertState, command: AlertCommand) -> Result<Vec<AlertEvent>, Rejection> {
    let AlertCommand::Raise {
        occurrence_key,
        team_id,
        rep_id,
        mut recipients,
        details,
        raised_on,
    } = command;
    if let AlertState::Raised { .. } = state {
        // Raised once per occurrence: raising it again records nothing.
        return Ok(vec![]);
    }
    recipients.sort();
    recipients.dedup();
    if recipients.is_empty() {
        return Err(Rejection::AlertWithoutRecipients {
            occurrence_key: occurrence_key.to_string(),
        });
    }
    Ok(vec![
        AlertRaised {
            alert_id: AlertId::for_occurrence(&occurrence_key),
            occurrence_key,
            team_id,
            rep_id,
            recipients,
            details,
            raised_on,
        }
        .into(),
    ])
}

pub fn evolve(state: AlertState, event: &AlertEvent) -> AlertState {
    match (state, event) {
        (AlertState::NotRaised, AlertEvent::Raised(e)) => AlertState::Raised {
            alert_id: e.alert_id,
            raised_on: e.raised_on,
        },
        (state, _) => state,
    }
}
