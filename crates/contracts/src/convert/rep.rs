//! Rep events: lifecycle, feedback, assessments, coaching, training,
//! performance, support, improvement plans, corrections and reviews.

use trellis_domain::rep::{
    ActionItem, ActionItemCompleted, ActionItemDropped, CoachingSessionHeld, Correction,
    ExpectationsAcknowledged, FactCorrected, FeedbackAcknowledged, FeedbackGiven, FeedbackKind,
    ImprovementPlanClosed, ImprovementPlanStarted, MeasurementSource, Owner, PerformanceMeasured,
    PersonalDataErased, PlanCheckpointRecorded, PlanOutcome, PlanTarget, RepDeparted, RepJoined,
    RepMovedTeam, RepRenamed, RepRoleChanged, ReviewHeld, SkillAssessed, SupportAcknowledged,
    SupportCategory, SupportRequested, SupportResolved, TrainingCompleted, Visibility,
};
use trellis_domain::{EventPayload, SkillLevel, ValueError};
use uuid::Uuid;

use super::{Convert, Fields, date, id_text};
use crate::error::ContractError;
use crate::proto as w;
use crate::proto::action_item_owner::{self, Owner as WireOwner};
use crate::proto::correction::{self, Correction as WireCorrection};

// --- enums -------------------------------------------------------------------

fn visibility_to_wire(visibility: Visibility) -> i32 {
    match visibility {
        Visibility::Shared => w::Visibility::Shared,
        Visibility::Private => w::Visibility::Private,
    }
    .into()
}

fn visibility_from_wire(f: Fields, value: i32) -> Result<Visibility, ContractError> {
    match f.enumeration("visibility", value)? {
        w::Visibility::Unspecified => Err(f.missing("visibility")),
        w::Visibility::Shared => Ok(Visibility::Shared),
        w::Visibility::Private => Ok(Visibility::Private),
    }
}

fn feedback_kind_to_wire(kind: FeedbackKind) -> i32 {
    match kind {
        FeedbackKind::Praise => w::FeedbackKind::Praise,
        FeedbackKind::Constructive => w::FeedbackKind::Constructive,
    }
    .into()
}

fn feedback_kind_from_wire(f: Fields, value: i32) -> Result<FeedbackKind, ContractError> {
    match f.enumeration("kind", value)? {
        w::FeedbackKind::Unspecified => Err(f.missing("kind")),
        w::FeedbackKind::Praise => Ok(FeedbackKind::Praise),
        w::FeedbackKind::Constructive => Ok(FeedbackKind::Constructive),
    }
}

fn source_to_wire(source: MeasurementSource) -> i32 {
    match source {
        MeasurementSource::Manual => w::MeasurementSource::Manual,
        MeasurementSource::CrmImport => w::MeasurementSource::CrmImport,
    }
    .into()
}

fn source_from_wire(f: Fields, value: i32) -> Result<MeasurementSource, ContractError> {
    match f.enumeration("source", value)? {
        w::MeasurementSource::Unspecified => Err(f.missing("source")),
        w::MeasurementSource::Manual => Ok(MeasurementSource::Manual),
        w::MeasurementSource::CrmImport => Ok(MeasurementSource::CrmImport),
    }
}

fn category_to_wire(category: SupportCategory) -> i32 {
    match category {
        SupportCategory::Leads => w::SupportCategory::Leads,
        SupportCategory::Tools => w::SupportCategory::Tools,
        SupportCategory::Training => w::SupportCategory::Training,
        SupportCategory::Process => w::SupportCategory::Process,
        SupportCategory::Other => w::SupportCategory::Other,
    }
    .into()
}

fn category_from_wire(f: Fields, value: i32) -> Result<SupportCategory, ContractError> {
    match f.enumeration("category", value)? {
        w::SupportCategory::Unspecified => Err(f.missing("category")),
        w::SupportCategory::Leads => Ok(SupportCategory::Leads),
        w::SupportCategory::Tools => Ok(SupportCategory::Tools),
        w::SupportCategory::Training => Ok(SupportCategory::Training),
        w::SupportCategory::Process => Ok(SupportCategory::Process),
        w::SupportCategory::Other => Ok(SupportCategory::Other),
    }
}

fn outcome_to_wire(outcome: PlanOutcome) -> i32 {
    match outcome {
        PlanOutcome::Met => w::PlanOutcome::Met,
        PlanOutcome::Extended => w::PlanOutcome::Extended,
        PlanOutcome::NotMet => w::PlanOutcome::NotMet,
    }
    .into()
}

fn outcome_from_wire(f: Fields, value: i32) -> Result<PlanOutcome, ContractError> {
    match f.enumeration("outcome", value)? {
        w::PlanOutcome::Unspecified => Err(f.missing("outcome")),
        w::PlanOutcome::Met => Ok(PlanOutcome::Met),
        w::PlanOutcome::Extended => Ok(PlanOutcome::Extended),
        w::PlanOutcome::NotMet => Ok(PlanOutcome::NotMet),
    }
}

fn skill_level(f: Fields, field: &'static str, value: u32) -> Result<SkillLevel, ContractError> {
    f.value(field, i64::from(value))
}

// --- nested messages ---------------------------------------------------------

impl Convert for ActionItem {
    type Wire = w::ActionItem;

    fn to_wire(&self) -> Self::Wire {
        let owner = match self.owner {
            Owner::Rep => WireOwner::Rep(action_item_owner::Rep {}),
            Owner::Leader(leader_id) => WireOwner::Leader(action_item_owner::Leader {
                leader_id: id_text(leader_id),
            }),
        };
        w::ActionItem {
            action_item_id: id_text(self.action_item_id),
            description: self.description.as_str().to_owned(),
            owner: Some(w::ActionItemOwner { owner: Some(owner) }),
            due_on: Some(date(self.due_on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields("ActionItem");
        let owner = f.message("owner", m.owner.as_ref())?;
        let owner = match Fields("ActionItemOwner").message("owner", owner.owner.as_ref())? {
            WireOwner::Rep(_) => Owner::Rep,
            WireOwner::Leader(leader) => {
                Owner::Leader(Fields("ActionItemOwner.Leader").id("leader_id", &leader.leader_id)?)
            }
        };
        Ok(ActionItem {
            action_item_id: f.id("action_item_id", &m.action_item_id)?,
            description: f.text("description", &m.description)?,
            owner,
            due_on: f.date("due_on", m.due_on)?,
        })
    }
}

impl Convert for PlanTarget {
    type Wire = w::PlanTarget;

    fn to_wire(&self) -> Self::Wire {
        w::PlanTarget {
            description: self.description.as_str().to_owned(),
            standard_id: self.standard_id.map(id_text),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields("PlanTarget");
        Ok(PlanTarget {
            description: f.text("description", &m.description)?,
            standard_id: f.opt_id("standard_id", m.standard_id.as_ref())?,
        })
    }
}

impl Convert for Correction {
    type Wire = w::Correction;

    fn to_wire(&self) -> Self::Wire {
        let correction = match self {
            Correction::SkillLevel { level, evidence } => {
                WireCorrection::SkillLevel(correction::SkillLevel {
                    level: u32::from(level.get()),
                    evidence: evidence.as_str().to_owned(),
                })
            }
            Correction::MeasuredValue { value } => {
                WireCorrection::MeasuredValue(correction::MeasuredValue { value: value.get() })
            }
            Correction::Retracted => WireCorrection::Retracted(correction::Retracted {}),
        };
        w::Correction {
            correction: Some(correction),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        match Fields("Correction").message("correction", m.correction.as_ref())? {
            WireCorrection::SkillLevel(c) => {
                let f = Fields("Correction.SkillLevel");
                Ok(Correction::SkillLevel {
                    level: skill_level(f, "level", c.level)?,
                    evidence: f.text("evidence", &c.evidence)?,
                })
            }
            WireCorrection::MeasuredValue(c) => Ok(Correction::MeasuredValue {
                value: Fields("Correction.MeasuredValue").value("value", c.value)?,
            }),
            WireCorrection::Retracted(_) => Ok(Correction::Retracted),
        }
    }
}

// --- lifecycle ----------------------------------------------------------------

impl Convert for RepJoined {
    type Wire = w::RepJoined;

    fn to_wire(&self) -> Self::Wire {
        w::RepJoined {
            rep_id: id_text(self.rep_id),
            name: self.name.as_str().to_owned(),
            role: self.role.as_str().to_owned(),
            team_id: id_text(self.team_id),
            start_date: Some(date(self.start_date)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(RepJoined {
            rep_id: f.id("rep_id", &m.rep_id)?,
            name: f.text("name", &m.name)?,
            role: f.text("role", &m.role)?,
            team_id: f.id("team_id", &m.team_id)?,
            start_date: f.date("start_date", m.start_date)?,
        })
    }
}

impl Convert for RepRenamed {
    type Wire = w::RepRenamed;

    fn to_wire(&self) -> Self::Wire {
        w::RepRenamed {
            name: self.name.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(RepRenamed {
            name: f.text("name", &m.name)?,
        })
    }
}

impl Convert for RepMovedTeam {
    type Wire = w::RepMovedTeam;

    fn to_wire(&self) -> Self::Wire {
        w::RepMovedTeam {
            from_team_id: id_text(self.from),
            to_team_id: id_text(self.to),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(RepMovedTeam {
            from: f.id("from_team_id", &m.from_team_id)?,
            to: f.id("to_team_id", &m.to_team_id)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for RepRoleChanged {
    type Wire = w::RepRoleChanged;

    fn to_wire(&self) -> Self::Wire {
        w::RepRoleChanged {
            from_role: self.from.as_str().to_owned(),
            to_role: self.to.as_str().to_owned(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(RepRoleChanged {
            from: f.text("from_role", &m.from_role)?,
            to: f.text("to_role", &m.to_role)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for RepDeparted {
    type Wire = w::RepDeparted;

    fn to_wire(&self) -> Self::Wire {
        w::RepDeparted {
            on: Some(date(self.on)),
            reason: self.reason.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(RepDeparted {
            on: f.date("on", m.on)?,
            reason: f.text("reason", &m.reason)?,
        })
    }
}

impl Convert for PersonalDataErased {
    type Wire = w::PersonalDataErased;

    fn to_wire(&self) -> Self::Wire {
        w::PersonalDataErased {
            reason: self.reason.as_str().to_owned(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(PersonalDataErased {
            reason: f.text("reason", &m.reason)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for ExpectationsAcknowledged {
    type Wire = w::ExpectationsAcknowledged;

    fn to_wire(&self) -> Self::Wire {
        w::ExpectationsAcknowledged {
            standard_id: id_text(self.standard_id),
            standard_version: self.standard_version,
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(ExpectationsAcknowledged {
            standard_id: f.id("standard_id", &m.standard_id)?,
            standard_version: m.standard_version,
            on: f.date("on", m.on)?,
        })
    }
}

// --- feedback and assessment ----------------------------------------------------

impl Convert for FeedbackGiven {
    type Wire = w::FeedbackGiven;

    fn to_wire(&self) -> Self::Wire {
        w::FeedbackGiven {
            feedback_id: id_text(self.feedback_id),
            leader_id: id_text(self.leader_id),
            competency_id: id_text(self.competency_id),
            kind: feedback_kind_to_wire(self.kind),
            note: self.note.as_str().to_owned(),
            visibility: visibility_to_wire(self.visibility),
            given_on: Some(date(self.given_on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(FeedbackGiven {
            feedback_id: f.id("feedback_id", &m.feedback_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            competency_id: f.id("competency_id", &m.competency_id)?,
            kind: feedback_kind_from_wire(f, m.kind)?,
            note: f.text("note", &m.note)?,
            visibility: visibility_from_wire(f, m.visibility)?,
            given_on: f.date("given_on", m.given_on)?,
        })
    }
}

impl Convert for FeedbackAcknowledged {
    type Wire = w::FeedbackAcknowledged;

    fn to_wire(&self) -> Self::Wire {
        w::FeedbackAcknowledged {
            feedback_id: id_text(self.feedback_id),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(FeedbackAcknowledged {
            feedback_id: f.id("feedback_id", &m.feedback_id)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for SkillAssessed {
    type Wire = w::SkillAssessed;

    fn to_wire(&self) -> Self::Wire {
        w::SkillAssessed {
            assessment_id: id_text(self.assessment_id),
            leader_id: id_text(self.leader_id),
            competency_id: id_text(self.competency_id),
            level: u32::from(self.level.get()),
            evidence: self.evidence.as_str().to_owned(),
            assessed_on: Some(date(self.assessed_on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(SkillAssessed {
            assessment_id: f.id("assessment_id", &m.assessment_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            competency_id: f.id("competency_id", &m.competency_id)?,
            level: skill_level(f, "level", m.level)?,
            evidence: f.text("evidence", &m.evidence)?,
            assessed_on: f.date("assessed_on", m.assessed_on)?,
        })
    }
}

// --- coaching and training ------------------------------------------------------

impl Convert for CoachingSessionHeld {
    type Wire = w::CoachingSessionHeld;

    fn to_wire(&self) -> Self::Wire {
        w::CoachingSessionHeld {
            session_id: id_text(self.session_id),
            leader_id: id_text(self.leader_id),
            held_on: Some(date(self.held_on)),
            duration_minutes: self.duration_minutes,
            focus_competency_ids: self.focus.iter().map(|&id| id_text(id)).collect(),
            notes: self.notes.as_str().to_owned(),
            visibility: visibility_to_wire(self.visibility),
            action_items: self.action_items.iter().map(Convert::to_wire).collect(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(CoachingSessionHeld {
            session_id: f.id("session_id", &m.session_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            held_on: f.date("held_on", m.held_on)?,
            duration_minutes: m.duration_minutes,
            focus: f.ids("focus_competency_ids", &m.focus_competency_ids)?,
            notes: f.text("notes", &m.notes)?,
            visibility: visibility_from_wire(f, m.visibility)?,
            action_items: m
                .action_items
                .iter()
                .map(ActionItem::from_wire)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl Convert for ActionItemCompleted {
    type Wire = w::ActionItemCompleted;

    fn to_wire(&self) -> Self::Wire {
        w::ActionItemCompleted {
            action_item_id: id_text(self.action_item_id),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(ActionItemCompleted {
            action_item_id: f.id("action_item_id", &m.action_item_id)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for ActionItemDropped {
    type Wire = w::ActionItemDropped;

    fn to_wire(&self) -> Self::Wire {
        w::ActionItemDropped {
            action_item_id: id_text(self.action_item_id),
            on: Some(date(self.on)),
            reason: self.reason.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(ActionItemDropped {
            action_item_id: f.id("action_item_id", &m.action_item_id)?,
            on: f.date("on", m.on)?,
            reason: f.text("reason", &m.reason)?,
        })
    }
}

impl Convert for TrainingCompleted {
    type Wire = w::TrainingCompleted;

    fn to_wire(&self) -> Self::Wire {
        w::TrainingCompleted {
            training_id: id_text(self.training_id),
            title: self.title.as_str().to_owned(),
            competency_id: self.competency_id.map(id_text),
            completed_on: Some(date(self.completed_on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(TrainingCompleted {
            training_id: f.id("training_id", &m.training_id)?,
            title: f.text("title", &m.title)?,
            competency_id: f.opt_id("competency_id", m.competency_id.as_ref())?,
            completed_on: f.date("completed_on", m.completed_on)?,
        })
    }
}

// --- performance and support ------------------------------------------------------

impl Convert for PerformanceMeasured {
    type Wire = w::PerformanceMeasured;

    fn to_wire(&self) -> Self::Wire {
        w::PerformanceMeasured {
            measurement_id: id_text(self.measurement_id),
            metric: self.metric.as_str().to_owned(),
            period: self.period.to_string(),
            value: self.value.get(),
            source: source_to_wire(self.source),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(PerformanceMeasured {
            measurement_id: f.id("measurement_id", &m.measurement_id)?,
            metric: f.text("metric", &m.metric)?,
            period: f.text("period", &m.period)?,
            value: f.value("value", m.value)?,
            source: source_from_wire(f, m.source)?,
        })
    }
}

impl Convert for SupportRequested {
    type Wire = w::SupportRequested;

    fn to_wire(&self) -> Self::Wire {
        w::SupportRequested {
            request_id: id_text(self.request_id),
            category: category_to_wire(self.category),
            description: self.description.as_str().to_owned(),
            raised_on: Some(date(self.raised_on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(SupportRequested {
            request_id: f.id("request_id", &m.request_id)?,
            category: category_from_wire(f, m.category)?,
            description: f.text("description", &m.description)?,
            raised_on: f.date("raised_on", m.raised_on)?,
        })
    }
}

impl Convert for SupportAcknowledged {
    type Wire = w::SupportAcknowledged;

    fn to_wire(&self) -> Self::Wire {
        w::SupportAcknowledged {
            request_id: id_text(self.request_id),
            leader_id: id_text(self.leader_id),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(SupportAcknowledged {
            request_id: f.id("request_id", &m.request_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for SupportResolved {
    type Wire = w::SupportResolved;

    fn to_wire(&self) -> Self::Wire {
        w::SupportResolved {
            request_id: id_text(self.request_id),
            leader_id: id_text(self.leader_id),
            resolution: self.resolution.as_str().to_owned(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(SupportResolved {
            request_id: f.id("request_id", &m.request_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            resolution: f.text("resolution", &m.resolution)?,
            on: f.date("on", m.on)?,
        })
    }
}

// --- improvement plans, corrections, reviews ---------------------------------------

impl Convert for ImprovementPlanStarted {
    type Wire = w::ImprovementPlanStarted;

    fn to_wire(&self) -> Self::Wire {
        w::ImprovementPlanStarted {
            plan_id: id_text(self.plan_id),
            leader_id: id_text(self.leader_id),
            targets: self.targets.iter().map(Convert::to_wire).collect(),
            started_on: Some(date(self.started_on)),
            review_on: Some(date(self.review_on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(ImprovementPlanStarted {
            plan_id: f.id("plan_id", &m.plan_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            targets: m
                .targets
                .iter()
                .map(PlanTarget::from_wire)
                .collect::<Result<_, _>>()?,
            started_on: f.date("started_on", m.started_on)?,
            review_on: f.date("review_on", m.review_on)?,
        })
    }
}

impl Convert for PlanCheckpointRecorded {
    type Wire = w::PlanCheckpointRecorded;

    fn to_wire(&self) -> Self::Wire {
        w::PlanCheckpointRecorded {
            plan_id: id_text(self.plan_id),
            note: self.note.as_str().to_owned(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(PlanCheckpointRecorded {
            plan_id: f.id("plan_id", &m.plan_id)?,
            note: f.text("note", &m.note)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for ImprovementPlanClosed {
    type Wire = w::ImprovementPlanClosed;

    fn to_wire(&self) -> Self::Wire {
        w::ImprovementPlanClosed {
            plan_id: id_text(self.plan_id),
            outcome: outcome_to_wire(self.outcome),
            note: self.note.as_str().to_owned(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(ImprovementPlanClosed {
            plan_id: f.id("plan_id", &m.plan_id)?,
            outcome: outcome_from_wire(f, m.outcome)?,
            note: f.text("note", &m.note)?,
            on: f.date("on", m.on)?,
        })
    }
}

impl Convert for FactCorrected {
    type Wire = w::FactCorrected;

    fn to_wire(&self) -> Self::Wire {
        w::FactCorrected {
            fact_id: id_text(self.fact_id),
            reason: self.reason.as_str().to_owned(),
            correction: Some(self.correction.to_wire()),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        if m.fact_id.is_empty() {
            return Err(f.missing("fact_id"));
        }
        let fact_id = Uuid::parse_str(&m.fact_id).map_err(|_| ContractError::InvalidValue {
            message: f.0,
            field: "fact_id",
            source: ValueError::InvalidId {
                what: "fact id",
                input: m.fact_id.clone(),
            },
        })?;
        Ok(FactCorrected {
            fact_id,
            reason: f.text("reason", &m.reason)?,
            correction: Correction::from_wire(f.message("correction", m.correction.as_ref())?)?,
        })
    }
}

impl Convert for ReviewHeld {
    type Wire = w::ReviewHeld;

    fn to_wire(&self) -> Self::Wire {
        w::ReviewHeld {
            review_id: id_text(self.review_id),
            period_from: Some(date(self.period_from)),
            period_to: Some(date(self.period_to)),
            packet_sha256: self.packet_sha256.to_string(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(ReviewHeld {
            review_id: f.id("review_id", &m.review_id)?,
            period_from: f.date("period_from", m.period_from)?,
            period_to: f.date("period_to", m.period_to)?,
            packet_sha256: f.text("packet_sha256", &m.packet_sha256)?,
            on: f.date("on", m.on)?,
        })
    }
}
