//! Request and response bodies: the JSON contract of the API.
//!
//! These are wire types, parsed by hand into domain commands, each by one
//! conversion beside its route handler (so every bad field is named), and
//! never used by the domain. Unknown fields are refused, so a typo is an error
//! instead of a silently dropped value.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use trellis_http::extract::Judged;
use utoipa::ToSchema;
use uuid::Uuid;

/// Reads a calendar date, `YYYY-MM-DD`, saying what is wrong with one that is not.
fn date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    // Read as any value, so that a date given as a number or left null is
    // told what a date looks like, not that "text" was expected.
    let text = match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => text,
        serde_json::Value::Null => String::new(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "{other} is not a date; write it in quotes as YYYY-MM-DD, e.g. \"2026-03-16\""
            )));
        }
    };
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let parsed = if shaped {
        NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()
    } else {
        None
    };
    parsed.ok_or_else(|| {
        serde::de::Error::custom(if text.trim().is_empty() {
            "is required: write a date as YYYY-MM-DD, e.g. 2026-03-16".to_owned()
        } else if shaped {
            format!(
                "{text:?} is not a day of the calendar (check the month's length); write YYYY-MM-DD"
            )
        } else {
            format!("{text:?} is not a date; write YYYY-MM-DD, e.g. 2026-03-16")
        })
    })
}

/// A day, `YYYY-MM-DD`, read as [`date`] reads it: for a field judged
/// with the others ([`Judged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        date(deserializer).map(Day)
    }
}

/// What a successful write returns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recorded {
    /// The id of what was created (absent for actions on existing records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The stream's version after the write; send it as `If-Match` to write
    /// only if nobody wrote in between.
    pub stream_version: u64,
    /// How many events were recorded (0 when nothing changed).
    pub events: usize,
    /// True when this answers a retried request (same `Idempotency-Key`).
    pub replayed: bool,
}

// ---- teams ----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormTeam {
    /// The team's name, e.g. "EMEA Mid-Market".
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignLeader {
    pub leader_id: Uuid,
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub leader_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTeam {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub name: String,
}

// ---- competency framework ---------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineCompetency {
    /// e.g. "Discovery".
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub name: String,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub description: String,
    /// Exactly five descriptions: what levels 1 to 5 look like.
    #[schema(min_items = 5, max_items = 5)]
    pub rubric: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireCompetency {
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub reason: String,
}

// ---- standards ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StandardKind {
    /// How the work is done (discovery, call quality, CRM hygiene).
    Quality,
    /// How much (calls, meetings, pipeline, revenue).
    Quantity,
    Behaviour,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    AtLeast,
    AtMost,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Week,
    Month,
    Quarter,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RampStep {
    /// The rep's Nth period since their start date, from 1.
    #[schema(minimum = 1)]
    pub period_index: u32,
    /// Share of the full target expected in that period, in percent.
    #[schema(required = true, value_type = u16, minimum = 1)]
    #[serde(default)]
    pub percent_of_target: Judged<u16>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStandard {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub name: String,
    /// The metric measured, a lowercase slug such as `calls_made`.
    #[schema(max_length = 64, pattern = r"^\s*[a-z][a-z0-9]*(_[a-z0-9]+)*\s*$")]
    pub metric: String,
    #[schema(required = true, value_type = StandardKind)]
    #[serde(default)]
    pub kind: Judged<StandardKind>,
    #[schema(required = true, value_type = Direction)]
    #[serde(default)]
    pub direction: Judged<Direction>,
    /// e.g. "calls", "%", "EUR".
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub unit: String,
    #[schema(required = true, value_type = PeriodKind)]
    #[serde(default)]
    pub period: Judged<PeriodKind>,
    /// Greater than zero.
    #[schema(required = true, value_type = f64, exclusive_minimum = 0)]
    #[serde(default)]
    pub target: Judged<f64>,
    /// The roles it applies to, e.g. ["SDR"].
    #[schema(min_items = 1)]
    pub roles: Vec<String>,
    #[schema(required = true, value_type = NaiveDate)]
    #[serde(default)]
    pub effective_from: Judged<Day>,
    /// Ramp schedule for new hires; empty for none.
    #[serde(default)]
    pub ramp: Vec<RampStep>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviseStandard {
    #[schema(required = true, value_type = f64, exclusive_minimum = 0)]
    #[serde(default)]
    pub target: Judged<f64>,
    #[schema(required = true, value_type = NaiveDate)]
    #[serde(default)]
    pub effective_from: Judged<Day>,
    /// Absent: keep the previous version's roles.
    #[schema(min_items = 1)]
    pub roles: Option<Vec<String>>,
    /// Absent: keep the previous version's ramp.
    pub ramp: Option<Vec<RampStep>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireStandard {
    #[serde(deserialize_with = "date")]
    pub effective_from: NaiveDate,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub reason: String,
}

// ---- reps ----------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRep {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub name: String,
    /// e.g. "SDR", "AE".
    #[schema(min_length = 1, max_length = 50, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub role: String,
    pub team_id: Uuid,
    #[serde(deserialize_with = "date")]
    pub start_date: NaiveDate,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTeam {
    pub team_id: Uuid,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    #[schema(min_length = 1, max_length = 50, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub role: String,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

/// The rep's name from now on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRep {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub name: String,
}

/// Why a person's personal data is erased. Kept readable in the log, so it
/// must not itself hold personal data.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasePerson {
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"\S",
        example = "Asked to be forgotten (GDPR article 17), ticket 4411"
    )]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Depart {
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeExpectations {
    pub standard_id: Uuid,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Praise,
    Constructive,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// The rep sees it.
    #[default]
    Shared,
    /// Leaders (and auditors) only.
    Private,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveFeedback {
    /// Absent for a leader's own token: the leader is the caller.
    pub leader_id: Option<Uuid>,
    #[schema(required = true, value_type = Uuid)]
    #[serde(default)]
    pub competency_id: Judged<Uuid>,
    #[schema(required = true, value_type = FeedbackKind)]
    #[serde(default)]
    pub kind: Judged<FeedbackKind>,
    /// Specific: what happened, and what to keep or change.
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub note: String,
    #[serde(default)]
    pub visibility: Visibility,
    #[schema(required = true, value_type = NaiveDate)]
    #[serde(default)]
    pub given_on: Judged<Day>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledge {
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

/// The body of an action item's completion: an [`Acknowledge`] (the
/// OpenAPI document shows it as one), its own type so that it parses into
/// its own command.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct CompleteActionItem(pub Acknowledge);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessSkill {
    pub leader_id: Option<Uuid>,
    pub competency_id: Uuid,
    /// 1 to 5, per the competency's rubric.
    #[schema(minimum = 1, maximum = 5)]
    pub level: i64,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub evidence: String,
    #[serde(deserialize_with = "date")]
    pub assessed_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionItemOwner {
    Rep,
    Leader,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActionItem {
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub description: String,
    /// Who owes it: the rep, or the leader holding the session.
    pub owner: ActionItemOwner,
    #[schema(required = true, value_type = NaiveDate)]
    #[serde(default)]
    pub due_on: Judged<Day>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldCoachingSession {
    pub leader_id: Option<Uuid>,
    #[schema(required = true, value_type = NaiveDate)]
    #[serde(default)]
    pub held_on: Judged<Day>,
    #[schema(required = true, value_type = u32, minimum = 1, maximum = 480)]
    #[serde(default)]
    pub duration_minutes: Judged<u32>,
    /// The competencies the session focused on.
    #[serde(default)]
    pub focus: Vec<Uuid>,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub notes: String,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub action_items: Vec<NewActionItem>,
}

/// What a coaching session created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionRecorded {
    #[serde(flatten)]
    pub recorded: Recorded,
    /// The ids of the session's action items, in the order given.
    pub action_item_ids: Vec<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DropActionItem {
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTraining {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
    pub title: String,
    pub competency_id: Option<Uuid>,
    #[serde(deserialize_with = "date")]
    pub completed_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementSource {
    #[default]
    Manual,
    CrmImport,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMeasurement {
    #[schema(max_length = 64, pattern = r"^\s*[a-z][a-z0-9]*(_[a-z0-9]+)*\s*$")]
    pub metric: String,
    /// `2026-W05`, `2026-03` or `2026-Q1`.
    #[schema(
        pattern = r"^\s*[0-9]{4}-([Ww](0[1-9]|[1-4][0-9]|5[0-3])|0[1-9]|1[0-2]|[Qq][1-4])\s*$"
    )]
    pub period: String,
    #[schema(minimum = 0)]
    pub value: f64,
    #[serde(default)]
    pub source: MeasurementSource,
}

/// One row of a measurement import (JSON form; CSV has the same columns).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasurementRow {
    pub rep_id: Uuid,
    #[schema(max_length = 64, pattern = r"^\s*[a-z][a-z0-9]*(_[a-z0-9]+)*\s*$")]
    pub metric: String,
    #[schema(
        pattern = r"^\s*[0-9]{4}-([Ww](0[1-9]|[1-4][0-9]|5[0-3])|0[1-9]|1[0-2]|[Qq][1-4])\s*$"
    )]
    pub period: String,
    #[schema(minimum = 0)]
    pub value: f64,
}

/// What an import recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Imported {
    pub rows: usize,
    pub reps: usize,
    /// Events recorded: new measurements and re-imported values (a re-import
    /// of the same value records nothing).
    pub events: usize,
    pub replayed: bool,
    /// True for the answer to `?dry_run=true`: every row would be recorded
    /// (`events` says how many events that makes) but nothing was.
    #[serde(default)]
    pub dry_run: bool,
    /// The rows whose value replaces one recorded before for their rep,
    /// metric and period (each a correction, "re-imported"), in the order
    /// of the file: what a re-import changes, to see before recording it.
    /// Empty in the answer to a retried request (nothing new was recorded).
    #[schema(required = true)]
    #[serde(default)]
    pub replaced: Vec<Replaced>,
}

/// A row of an import whose value replaces one recorded before.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Replaced {
    /// "line 12" (CSV) or "[11]" (JSON).
    pub row: String,
    pub rep_id: Uuid,
    pub metric: String,
    pub period: String,
    /// The value recorded before.
    pub was: f64,
    /// The row's value, which replaces it.
    pub value: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupportCategory {
    Leads,
    Tools,
    Training,
    Process,
    Other,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseSupportRequest {
    #[schema(required = true, value_type = SupportCategory)]
    #[serde(default)]
    pub category: Judged<SupportCategory>,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub description: String,
    #[schema(required = true, value_type = NaiveDate)]
    #[serde(default)]
    pub raised_on: Judged<Day>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeSupportRequest {
    pub leader_id: Option<Uuid>,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveSupportRequest {
    pub leader_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub resolution: String,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTarget {
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub description: String,
    pub standard_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartImprovementPlan {
    pub leader_id: Option<Uuid>,
    #[schema(min_items = 1)]
    pub targets: Vec<PlanTarget>,
    #[serde(deserialize_with = "date")]
    pub started_on: NaiveDate,
    #[serde(deserialize_with = "date")]
    pub review_on: NaiveDate,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPlanCheckpoint {
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub note: String,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanOutcome {
    Met,
    Extended,
    NotMet,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseImprovementPlan {
    pub outcome: PlanOutcome,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub note: String,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}

/// How the correction supersedes the earlier record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Correction {
    /// A skill assessment's level was entered wrongly.
    SkillLevel {
        #[schema(required = true, value_type = i64, minimum = 1, maximum = 5)]
        #[serde(default)]
        level: Judged<i64>,
        #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
        evidence: String,
    },
    /// A measurement's value was wrong.
    MeasuredValue {
        #[schema(minimum = 0)]
        value: f64,
    },
    /// The record should not count at all.
    Retracted,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectFact {
    /// The id of the assessment, measurement, feedback, session or training corrected.
    pub fact_id: Uuid,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub reason: String,
    pub correction: Correction,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldReview {
    #[serde(deserialize_with = "date")]
    pub period_from: NaiveDate,
    #[serde(deserialize_with = "date")]
    pub period_to: NaiveDate,
    /// The SHA-256 (64 hex characters) of the review packet the review was based on.
    #[schema(pattern = r"^[0-9a-f]{64}$")]
    pub packet_sha256: String,
    #[serde(deserialize_with = "date")]
    pub on: NaiveDate,
}
