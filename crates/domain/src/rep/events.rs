//! The rep's events and the small vocabulary types they use.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{
    ActionItemId, AssessmentId, CompetencyId, FeedbackId, LeaderId, MeasurementId, PlanId, RepId,
    ReviewId, SessionId, StandardId, SupportRequestId, TeamId, TrainingId,
};
use crate::payload::event_enum;
use crate::period::Period;
use crate::values::{
    MetricName, MetricValue, Name, NonEmptyText, Note, PersonName, Role, Sha256Hex, SkillLevel,
};

/// Who may read a note: the rep too, or only leaders (auditors read both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Shared,
    Private,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Praise,
    Constructive,
}

/// Who owes an action item. JSON: `{"kind": "rep"}` or `{"kind": "leader", "leader_id": "…"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "leader_id", rename_all = "snake_case")]
pub enum Owner {
    Rep,
    Leader(LeaderId),
}

/// A follow-up agreed in a coaching session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    pub action_item_id: ActionItemId,
    pub description: Note,
    pub owner: Owner,
    pub due_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementSource {
    Manual,
    CrmImport,
}

/// What kind of obstacle a rep raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportCategory {
    Leads,
    Tools,
    Training,
    Process,
    Other,
}

/// One target of an improvement plan, optionally tied to a standard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTarget {
    pub description: Note,
    pub standard_id: Option<StandardId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanOutcome {
    Met,
    Extended,
    NotMet,
}

/// How a later event supersedes an earlier fact. JSON is tagged by `"kind"`:
/// `{"kind": "skill_level", "level": 3, "evidence": "…"}`, `{"kind": "measured_value", "value": 12.0}`,
/// `{"kind": "retracted"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Correction {
    /// A skill assessment's level (and evidence) was entered wrongly.
    SkillLevel { level: SkillLevel, evidence: Note },
    /// A measurement's value was wrong, or was re-imported with a new value.
    MeasuredValue { value: MetricValue },
    /// The record should not count at all.
    Retracted,
}

impl Correction {
    /// A short name for messages: `skill level`, `measured value`, `retraction`.
    pub fn label(&self) -> &'static str {
        match self {
            Correction::SkillLevel { .. } => "skill level",
            Correction::MeasuredValue { .. } => "measured value",
            Correction::Retracted => "retraction",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepJoined {
    pub rep_id: RepId,
    pub name: PersonName,
    pub role: Role,
    pub team_id: TeamId,
    pub start_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepMovedTeam {
    pub from: TeamId,
    pub to: TeamId,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepRoleChanged {
    pub from: Role,
    pub to: Role,
    pub on: NaiveDate,
}

/// The rep's name is now `name`: a mistake at hire corrected, or a name
/// changed. What was recorded under the earlier name stays as it was; a
/// view of a time before this reads the earlier name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepRenamed {
    pub name: PersonName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepDeparted {
    pub on: NaiveDate,
    pub reason: Note,
}

/// The rep acknowledged one version of a standard: the expectation is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationsAcknowledged {
    pub standard_id: StandardId,
    pub standard_version: u32,
    pub on: NaiveDate,
}

/// Schema v2. v1 had `sentiment` (`positive`/`negative`) and `text`, and no visibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackGiven {
    pub feedback_id: FeedbackId,
    pub leader_id: LeaderId,
    pub competency_id: CompetencyId,
    pub kind: FeedbackKind,
    pub note: Note,
    pub visibility: Visibility,
    pub given_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackAcknowledged {
    pub feedback_id: FeedbackId,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillAssessed {
    pub assessment_id: AssessmentId,
    pub leader_id: LeaderId,
    pub competency_id: CompetencyId,
    pub level: SkillLevel,
    pub evidence: Note,
    pub assessed_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoachingSessionHeld {
    pub session_id: SessionId,
    pub leader_id: LeaderId,
    pub held_on: NaiveDate,
    pub duration_minutes: u32,
    pub focus: Vec<CompetencyId>,
    pub notes: Note,
    pub visibility: Visibility,
    pub action_items: Vec<ActionItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItemCompleted {
    pub action_item_id: ActionItemId,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItemDropped {
    pub action_item_id: ActionItemId,
    pub on: NaiveDate,
    pub reason: Note,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingCompleted {
    pub training_id: TrainingId,
    pub title: Name,
    pub competency_id: Option<CompetencyId>,
    pub completed_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceMeasured {
    pub measurement_id: MeasurementId,
    pub metric: MetricName,
    pub period: Period,
    pub value: MetricValue,
    pub source: MeasurementSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportRequested {
    pub request_id: SupportRequestId,
    pub category: SupportCategory,
    pub description: Note,
    pub raised_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportAcknowledged {
    pub request_id: SupportRequestId,
    pub leader_id: LeaderId,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportResolved {
    pub request_id: SupportRequestId,
    pub leader_id: LeaderId,
    pub resolution: Note,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImprovementPlanStarted {
    pub plan_id: PlanId,
    pub leader_id: LeaderId,
    pub targets: Vec<PlanTarget>,
    pub started_on: NaiveDate,
    pub review_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCheckpointRecorded {
    pub plan_id: PlanId,
    pub note: Note,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImprovementPlanClosed {
    pub plan_id: PlanId,
    pub outcome: PlanOutcome,
    pub note: Note,
    pub on: NaiveDate,
}

/// Supersedes an earlier assessment, measurement, feedback, coaching session or
/// training of this rep. The original stays in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactCorrected {
    /// The id of the corrected record (an `AssessmentId`, `MeasurementId`, …).
    pub fact_id: Uuid,
    pub reason: Note,
    pub correction: Correction,
}

/// A performance review was held on a packet replayed from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewHeld {
    pub review_id: ReviewId,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    /// SHA-256 of the review packet, so the packet can be shown unaltered later.
    pub packet_sha256: Sha256Hex,
    pub on: NaiveDate,
}

/// The rep's personal data was erased: the key it was encrypted with is
/// destroyed, so their name and every free text about them read as erased
/// from now on, in every view, packet and export, while the log, its
/// figures and its proofs stay whole. The last event of the stream: nothing
/// more can be recorded about the rep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalDataErased {
    /// Why, in the admin's words (a request under GDPR article 17, say). Not
    /// personal data: it is kept readable, so it must not repeat any.
    pub reason: NonEmptyText,
    pub on: NaiveDate,
}

event_enum! {
    /// Everything that can happen in a rep's stream.
    pub enum RepEvent in "rep" {
        Joined(RepJoined) = ("RepJoined", v 1),
        MovedTeam(RepMovedTeam) = ("RepMovedTeam", v 1),
        RoleChanged(RepRoleChanged) = ("RepRoleChanged", v 1),
        Departed(RepDeparted) = ("RepDeparted", v 1),
        Renamed(RepRenamed) = ("RepRenamed", v 1),
        ExpectationsAcknowledged(ExpectationsAcknowledged) = ("ExpectationsAcknowledged", v 1),
        FeedbackGiven(FeedbackGiven) = ("FeedbackGiven", v 2),
        FeedbackAcknowledged(FeedbackAcknowledged) = ("FeedbackAcknowledged", v 1),
        SkillAssessed(SkillAssessed) = ("SkillAssessed", v 1),
        CoachingSessionHeld(CoachingSessionHeld) = ("CoachingSessionHeld", v 1),
        ActionItemCompleted(ActionItemCompleted) = ("ActionItemCompleted", v 1),
        ActionItemDropped(ActionItemDropped) = ("ActionItemDropped", v 1),
        TrainingCompleted(TrainingCompleted) = ("TrainingCompleted", v 1),
        PerformanceMeasured(PerformanceMeasured) = ("PerformanceMeasured", v 1),
        SupportRequested(SupportRequested) = ("SupportRequested", v 1),
        SupportAcknowledged(SupportAcknowledged) = ("SupportAcknowledged", v 1),
        SupportResolved(SupportResolved) = ("SupportResolved", v 1),
        ImprovementPlanStarted(ImprovementPlanStarted) = ("ImprovementPlanStarted", v 1),
        PlanCheckpointRecorded(PlanCheckpointRecorded) = ("PlanCheckpointRecorded", v 1),
        ImprovementPlanClosed(ImprovementPlanClosed) = ("ImprovementPlanClosed", v 1),
        FactCorrected(FactCorrected) = ("FactCorrected", v 1),
        ReviewHeld(ReviewHeld) = ("ReviewHeld", v 1),
        PersonalDataErased(PersonalDataErased) = ("PersonalDataErased", v 1),
    }
}
