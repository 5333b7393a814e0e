//! The documents the `growth` projection keeps as its state: what the log
//! says about each rep (corrections applied), and the catalogue (standards,
//! teams, competencies, leaders) the read models are judged against.
//!
//! Every map is a `BTreeMap` and every list is in a defined order, so the
//! same facts always serialize to the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use trellis_domain::rep::{
    FeedbackKind, MeasurementSource, Owner, PlanOutcome, PlanTarget, SupportCategory, Visibility,
};
use trellis_domain::{
    ActionItemId, AssessmentId, CompetencyId, Direction, FeedbackId, LeaderId, MeasurementId,
    MetricName, MetricValue, Name, Note, Period, PeriodKind, PersonName, PlanId, RepId, Role,
    SessionId, SkillLevel, StandardId, StandardKind, SupportRequestId, TeamId, TrainingId,
};

/// A value that holds from a date on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dated<T> {
    pub from: NaiveDate,
    pub value: T,
}

/// Which of a history's values holds on `date` (the first one before any).
pub fn at<T>(history: &[Dated<T>], date: NaiveDate) -> Option<&T> {
    history
        .iter()
        .rev()
        .find(|d| d.from <= date)
        .or_else(|| history.first())
        .map(|d| &d.value)
}

/// The one copy of `name` that `metrics` keeps (added if it is new):
/// measurements share their metric's name rather than each holding one.
pub(super) fn intern(metrics: &mut BTreeSet<MetricName>, name: &MetricName) -> MetricName {
    if let Some(kept) = metrics.get(name) {
        return kept.clone();
    }
    metrics.insert(name.clone());
    name.clone()
}

/// Everything the log says about one rep, with corrections applied: a
/// corrected level or value replaces the original, a retracted record is gone.
/// Stored as kind `rep_facts` (internal state; may hold private notes' metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepFacts {
    pub rep_id: RepId,
    pub name: PersonName,
    pub start_date: NaiveDate,
    /// Oldest first; the first holds from the start date.
    pub roles: Vec<Dated<Role>>,
    /// Oldest first; the first holds from the start date.
    pub teams: Vec<Dated<TeamId>>,
    pub departed_on: Option<NaiveDate>,
    /// When the rep's personal data was erased (`PersonalDataErased`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_on: Option<NaiveDate>,
    /// (standard, version) → acknowledged on.
    pub acknowledged: BTreeMap<String, NaiveDate>,
    pub assessments: BTreeMap<AssessmentId, AssessmentFact>,
    pub measurements: BTreeMap<MeasurementId, MeasurementFact>,
    pub feedback: BTreeMap<FeedbackId, FeedbackFact>,
    pub sessions: BTreeMap<SessionId, SessionFact>,
    pub action_items: BTreeMap<ActionItemId, ActionItemFact>,
    pub trainings: BTreeMap<TrainingId, TrainingFact>,
    pub support_requests: BTreeMap<SupportRequestId, SupportFact>,
    pub plans: BTreeMap<PlanId, PlanFact>,
    pub reviews_held: Vec<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentFact {
    pub leader_id: LeaderId,
    pub competency_id: CompetencyId,
    pub level: SkillLevel,
    pub assessed_on: NaiveDate,
    /// The stream version that recorded it: orders assessments of one day.
    pub seq: u64,
    /// Set when a correction replaced the level.
    pub corrected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementFact {
    pub metric: MetricName,
    pub period: Period,
    pub value: MetricValue,
    pub source: MeasurementSource,
    pub seq: u64,
    pub corrected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackFact {
    pub leader_id: LeaderId,
    pub competency_id: CompetencyId,
    pub kind: FeedbackKind,
    pub visibility: Visibility,
    pub given_on: NaiveDate,
    pub acknowledged_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionFact {
    pub leader_id: LeaderId,
    pub held_on: NaiveDate,
    pub minutes: u32,
    pub focus: Vec<CompetencyId>,
    pub visibility: Visibility,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "on", rename_all = "snake_case")]
pub enum ItemStatus {
    Open,
    Completed(NaiveDate),
    Dropped(NaiveDate),
}

impl ItemStatus {
    /// When it was closed, if it was.
    pub fn closed_on(self) -> Option<NaiveDate> {
        match self {
            ItemStatus::Open => None,
            ItemStatus::Completed(on) | ItemStatus::Dropped(on) => Some(on),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItemFact {
    pub session_id: SessionId,
    pub description: Note,
    pub owner: Owner,
    pub due_on: NaiveDate,
    /// The session's visibility: an item agreed in a private session is private too.
    pub visibility: Visibility,
    pub status: ItemStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingFact {
    pub title: Name,
    pub competency_id: Option<CompetencyId>,
    pub completed_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportFact {
    pub category: SupportCategory,
    pub description: Note,
    pub raised_on: NaiveDate,
    pub acknowledged: Option<(LeaderId, NaiveDate)>,
    pub resolved: Option<(LeaderId, NaiveDate)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFact {
    pub leader_id: LeaderId,
    pub targets: Vec<PlanTarget>,
    pub started_on: NaiveDate,
    pub review_on: NaiveDate,
    pub checkpoints: Vec<NaiveDate>,
    pub closed: Option<(PlanOutcome, NaiveDate)>,
}

/// A standard with every version it had. Kind `standard`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardDoc {
    pub standard_id: StandardId,
    pub name: Name,
    pub metric: MetricName,
    pub kind: StandardKind,
    pub direction: Direction,
    pub unit: Name,
    pub period: PeriodKind,
    /// Oldest first.
    pub versions: Vec<StandardVersionDoc>,
    pub retired_from: Option<NaiveDate>,
}

/// One version of a standard: the domain's, kept as it is.
pub type StandardVersionDoc = trellis_domain::standard::StandardVersion;

impl StandardDoc {
    /// The version in force on `date`, by the domain's rule
    /// (`StandardVersion::in_force`): the latest that took effect on or
    /// before it, none once retired.
    pub fn version_in_force(&self, date: NaiveDate) -> Option<&StandardVersionDoc> {
        StandardVersionDoc::in_force(&self.versions, self.retired_from, date)
    }
}

/// A team. Kind `team`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamDoc {
    pub team_id: TeamId,
    pub name: Name,
    pub leaders: BTreeMap<LeaderId, PersonName>,
    /// Every rep who was ever on the team (the team view works out who was
    /// on it in a given period from each rep's team history).
    pub reps: BTreeSet<RepId>,
}

/// A competency's name. Kind `competency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetencyDoc {
    pub competency_id: CompetencyId,
    pub name: Name,
    pub retired: bool,
}

/// What a leader did for each rep: the raw material of the leader scorecard.
///
/// Stored in parts, so that recording for one rep rewrites that rep's share
/// and not the leader's whole history (a leader of 50 reps over two years
/// holds megabytes): a [`LeaderHeader`] (kind `leader`) and one
/// [`LeaderShare`] per rep (kind `leader_rep`). `ReadModels::leader`
/// puts them back together. The fold keeps less of each share than its
/// activity (`S`): a digest, enough to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderDoc<S = LeaderActivity> {
    pub leader_id: LeaderId,
    pub name: Option<PersonName>,
    pub teams: BTreeSet<TeamId>,
    pub reps: BTreeMap<RepId, S>,
}

impl<S> LeaderDoc<S> {
    /// The part stored under kind `leader`.
    pub fn header(&self) -> LeaderHeader {
        LeaderHeader {
            leader_id: self.leader_id,
            name: self.name.clone(),
            teams: self.teams.clone(),
            reps: self.reps.keys().copied().collect(),
        }
    }
}

/// A leader as stored under kind `leader`: who they are, their teams, and
/// the reps they have a [`LeaderShare`] for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderHeader {
    pub leader_id: LeaderId,
    pub name: Option<PersonName>,
    pub teams: BTreeSet<TeamId>,
    pub reps: BTreeSet<RepId>,
}

/// What one leader did for one rep. Kind `leader_rep`, under
/// [`leader_share_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderShare {
    pub leader_id: LeaderId,
    pub rep_id: RepId,
    pub activity: LeaderActivity,
}

/// The key of a [`LeaderShare`]: `{leader id}/{rep id}`.
pub fn leader_share_key(leader_id: LeaderId, rep_id: RepId) -> String {
    format!("{leader_id}/{rep_id}")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaderActivity {
    pub sessions: Vec<LeaderSession>,
    pub feedback: Vec<LeaderFeedback>,
    pub support_resolved: Vec<LeaderSupport>,
    /// Action items the leader owns.
    pub action_items: Vec<LeaderActionItem>,
}

impl LeaderActivity {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.feedback.is_empty()
            && self.support_resolved.is_empty()
            && self.action_items.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderSession {
    pub session_id: SessionId,
    pub held_on: NaiveDate,
    pub minutes: u32,
    pub focus: Vec<CompetencyId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderFeedback {
    pub feedback_id: FeedbackId,
    pub competency_id: CompetencyId,
    pub kind: FeedbackKind,
    pub given_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderSupport {
    pub request_id: SupportRequestId,
    pub category: SupportCategory,
    pub raised_on: NaiveDate,
    pub resolved_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderActionItem {
    pub action_item_id: ActionItemId,
    pub due_on: NaiveDate,
    pub status: ItemStatus,
}
