//! Everything recorded about one rep: joining and leaving, expectations,
//! feedback, skill assessments, coaching and its action items, training,
//! measurements, support requests, improvement plans, corrections and reviews.
//! Each handler names its body; the conversion below it parses the body into
//! the rep command ([`OnRep`]). Who may send which is `policy::rep_access`.

use axum::response::Response;
use trellis_domain::rep::{
    self, ActionItem, ActionItemCompleted, ActionItemDropped, CoachingSessionHeld, Correction,
    ExpectationsAcknowledged, FactCorrected, FeedbackAcknowledged, FeedbackGiven, FeedbackKind,
    ImprovementPlanClosed, ImprovementPlanStarted, MeasurementSource, Owner, PerformanceMeasured,
    PlanCheckpointRecorded, PlanOutcome, PlanTarget, RepDeparted, RepJoined, ReviewHeld,
    SkillAssessed, SupportAcknowledged, SupportCategory, SupportRequested, SupportResolved,
    TrainingCompleted, Visibility,
};
use trellis_domain::{
    ActionItemId, AssessmentId, CompetencyId, FeedbackId, MeasurementId, MetricName, MetricValue,
    Name, NonEmptyText, Period, PersonName, PlanId, RepCommand, RepId, ReviewId, Role, SessionId,
    Sha256Hex, SkillLevel, StandardId, StandardStatus, SupportRequestId, TeamId, TrainingId,
};

use crate::edge::{Edge, Entity, OnRep, WriteRequest, field};
use crate::policy::{RouteAccess, Scope};
use crate::respond::WriteErrors;
use crate::wire::{self, Recorded, SessionRecorded};
use trellis_http::problem::{ApiError, Fields};
use trellis_http::valid;

fn visibility(v: wire::Visibility) -> Visibility {
    match v {
        wire::Visibility::Shared => Visibility::Shared,
        wire::Visibility::Private => Visibility::Private,
    }
}

/// `day`, unless it is after `now`'s day ([`rep::check_not_ahead`]), which
/// `f` then records against `field`.
fn not_ahead(
    f: &mut Fields,
    field: &str,
    day: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::NaiveDate> {
    f.check(
        field,
        rep::check_not_ahead(day, now.date_naive()).map(|()| day),
    )
}

fn note(f: &mut Fields, field: &str, text: &str) -> Option<NonEmptyText> {
    f.check(field, NonEmptyText::try_from(text))
}

/// A rep joins a team. Who is on which team, in which role, is an admin's
/// to record (or a service's granted `reps:write`), not a leader's.
#[utoipa::path(post, path = "/v1/reps", tag = "reps", request_body = wire::JoinRep,
    responses((status = 201, description = "The rep joined", body = Recorded), WriteErrors))]
pub async fn join(request: WriteRequest<wire::JoinRep>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::New, RouteAccess::Staffing(Scope::Reps))
        .await
}

impl TryFrom<Edge<'_, wire::JoinRep>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::JoinRep>) -> Result<Self, ApiError> {
        let b = edge.body;
        let mut f = Fields::default();
        let name = f.check("name", PersonName::try_from(b.name.as_str()));
        let role = f.check("role", Role::try_from(b.role.as_str()));
        f.finish()?;
        let joined = RepJoined {
            rep_id: RepId::from_uuid(edge.id),
            name: valid!(name),
            role: valid!(role),
            team_id: TeamId::from_uuid(b.team_id),
            start_date: b.start_date,
        };
        let now = edge.ctx.now;
        Ok(OnRep::GivenTeam(
            joined.team_id,
            Box::new(move |team_exists| RepCommand::JoinRep {
                joined,
                team_exists,
                now,
            }),
        ))
    }
}

/// A rep moves to another team: an admin's to record, or a service's granted
/// `reps:write`.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/team-moves", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::MoveTeam,
    responses((status = 200, description = "The rep moved", body = Recorded), WriteErrors))]
pub async fn move_team(request: WriteRequest<wire::MoveTeam>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Staffing(Scope::Reps))
        .await
}

impl TryFrom<Edge<'_, wire::MoveTeam>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::MoveTeam>) -> Result<Self, ApiError> {
        let to = TeamId::from_uuid(edge.body.team_id);
        let (on, now) = (edge.body.on, edge.ctx.now);
        Ok(OnRep::GivenTeam(
            to,
            Box::new(move |team_exists| RepCommand::MoveTeam {
                to,
                on,
                team_exists,
                now,
            }),
        ))
    }
}

/// A rep changes role (e.g. SDR to AE): an admin's to record, or a
/// service's granted `reps:write`.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/role-changes", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::ChangeRole,
    responses((status = 200, description = "The role changed", body = Recorded), WriteErrors))]
pub async fn change_role(request: WriteRequest<wire::ChangeRole>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Staffing(Scope::Reps))
        .await
}

impl TryFrom<Edge<'_, wire::ChangeRole>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::ChangeRole>) -> Result<Self, ApiError> {
        Ok(OnRep::Ready(RepCommand::ChangeRole {
            to: field("role", Role::try_from(edge.body.role.as_str()))?,
            on: edge.body.on,
            now: edge.ctx.now,
        }))
    }
}

/// A rep's name corrected or changed: an admin's to record, or a service's
/// granted `reps:write`. A departed rep's too; an erased rep's is refused.
/// The same name again records nothing.
#[utoipa::path(put, path = "/v1/reps/{rep_id}/name", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::RenameRep,
    responses((status = 200, description = "The rep has the name", body = Recorded), WriteErrors))]
pub async fn rename_rep(request: WriteRequest<wire::RenameRep>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Staffing(Scope::Reps))
        .await
}

impl TryFrom<Edge<'_, wire::RenameRep>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RenameRep>) -> Result<Self, ApiError> {
        Ok(OnRep::Ready(RepCommand::Rename {
            name: field("name", PersonName::try_from(edge.body.name.as_str()))?,
        }))
    }
}

/// A rep leaves: an admin's to record, or a service's granted `reps:write`.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/departure", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::Depart,
    responses((status = 200, description = "The departure was recorded", body = Recorded), WriteErrors))]
pub async fn depart(request: WriteRequest<wire::Depart>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Staffing(Scope::Reps))
        .await
}

impl TryFrom<Edge<'_, wire::Depart>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::Depart>) -> Result<Self, ApiError> {
        let departure = RepDeparted {
            on: edge.body.on,
            reason: field("reason", NonEmptyText::try_from(edge.body.reason.as_str()))?,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::Depart { departure, now }))
    }
}

/// The rep acknowledges the expectations of a standard (its current version).
#[utoipa::path(post, path = "/v1/reps/{rep_id}/expectations-acknowledgements", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::AcknowledgeExpectations,
    responses((status = 200, description = "Acknowledged", body = Recorded), WriteErrors))]
pub async fn acknowledge_expectations(
    request: WriteRequest<wire::AcknowledgeExpectations>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::LeadOrSelf(Scope::Reps))
        .await
}

impl TryFrom<Edge<'_, wire::AcknowledgeExpectations>> for OnRep {
    type Error = ApiError;

    /// The version acknowledged is the standard's latest (0 when it is not active).
    fn try_from(edge: Edge<'_, wire::AcknowledgeExpectations>) -> Result<Self, ApiError> {
        let standard_id = StandardId::from_uuid(edge.body.standard_id);
        let (on, now) = (edge.body.on, edge.ctx.now);
        Ok(OnRep::GivenStandard(
            standard_id,
            Box::new(move |standard| {
                let standard_version = match standard {
                    StandardStatus::Active { latest_version } => latest_version,
                    _ => 0,
                };
                RepCommand::AcknowledgeExpectations {
                    acknowledged: ExpectationsAcknowledged {
                        standard_id,
                        standard_version,
                        on,
                    },
                    standard,
                    now,
                }
            }),
        ))
    }
}

/// A leader gives specific feedback on one competency.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/feedback", tag = "feedback",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::GiveFeedback,
    responses((status = 201, description = "The feedback was recorded", body = Recorded), WriteErrors))]
pub async fn give_feedback(
    request: WriteRequest<wire::GiveFeedback>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::GiveFeedback>> for OnRep {
    type Error = ApiError;

    /// Every field's fault in one answer, the date's rule that needs no
    /// rep among them (not ahead of today).
    fn try_from(edge: Edge<'_, wire::GiveFeedback>) -> Result<Self, ApiError> {
        let leader_id = edge.acting_leader(edge.body.leader_id)?;
        let b = edge.body;
        let now = edge.ctx.now;
        let mut f = Fields::default();
        let competency_id = f.check("competency_id", b.competency_id.into_result());
        let kind = f.check("kind", b.kind.into_result());
        let note = note(&mut f, "note", &b.note);
        let given_on = f
            .check("given_on", b.given_on.into_result())
            .and_then(|day| not_ahead(&mut f, "given_on", day.0, now));
        f.finish()?;
        let feedback = FeedbackGiven {
            feedback_id: FeedbackId::from_uuid(edge.ctx.new_id("feedback")),
            leader_id,
            competency_id: CompetencyId::from_uuid(valid!(competency_id)),
            kind: match valid!(kind) {
                wire::FeedbackKind::Praise => FeedbackKind::Praise,
                wire::FeedbackKind::Constructive => FeedbackKind::Constructive,
            },
            note: valid!(note),
            visibility: visibility(b.visibility),
            given_on: valid!(given_on),
        };
        Ok(OnRep::GivenCompetency(
            feedback.competency_id,
            Box::new(move |competency| RepCommand::GiveFeedback {
                feedback,
                competency,
                now,
            }),
        ))
    }
}

/// The rep acknowledges feedback they were given.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/feedback/{feedback_id}/acknowledgement", tag = "feedback",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("feedback_id" = uuid::Uuid, Path, description = "The feedback")),
    request_body = wire::Acknowledge,
    responses((status = 200, description = "Acknowledged", body = Recorded), WriteErrors))]
pub async fn acknowledge_feedback(
    request: WriteRequest<wire::Acknowledge>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::LeadOrSelf(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::Acknowledge>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::Acknowledge>) -> Result<Self, ApiError> {
        let feedback_id = edge.path_id("feedback_id")?;
        Ok(OnRep::Ready(RepCommand::AcknowledgeFeedback {
            acknowledged: FeedbackAcknowledged {
                feedback_id,
                on: edge.body.on,
            },
            now: edge.ctx.now,
        }))
    }
}

/// A leader rates one competency, 1 to 5, with evidence.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/skill-assessments", tag = "skills",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::AssessSkill,
    responses((status = 201, description = "The assessment was recorded", body = Recorded), WriteErrors))]
pub async fn assess_skill(request: WriteRequest<wire::AssessSkill>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::AssessSkill>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::AssessSkill>) -> Result<Self, ApiError> {
        let leader_id = edge.acting_leader(edge.body.leader_id)?;
        let b = edge.body;
        let mut f = Fields::default();
        let level = f.check("level", SkillLevel::try_from(b.level));
        let evidence = note(&mut f, "evidence", &b.evidence);
        f.finish()?;
        let assessment = SkillAssessed {
            assessment_id: AssessmentId::from_uuid(edge.ctx.new_id("assessment")),
            leader_id,
            competency_id: CompetencyId::from_uuid(b.competency_id),
            level: valid!(level),
            evidence: valid!(evidence),
            assessed_on: b.assessed_on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::GivenCompetency(
            assessment.competency_id,
            Box::new(move |competency| RepCommand::AssessSkill {
                assessment,
                competency,
                now,
            }),
        ))
    }
}

/// A 1:1 coaching session with its focus, notes and action items.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/coaching-sessions", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::HoldCoachingSession,
    responses((status = 201, description = "The session was recorded", body = SessionRecorded), WriteErrors))]
pub async fn hold_coaching_session(
    request: WriteRequest<wire::HoldCoachingSession>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::HoldCoachingSession>> for OnRep {
    type Error = ApiError;

    /// The action items' ids are made before the session's, in the order given.
    fn try_from(edge: Edge<'_, wire::HoldCoachingSession>) -> Result<Self, ApiError> {
        let leader_id = edge.acting_leader(edge.body.leader_id)?;
        let (b, ctx) = (edge.body, edge.ctx);
        let mut f = Fields::default();
        // The session's own rules that need no rep are judged with the
        // fields, so that every mistake is named in one answer.
        let held_on = f
            .check("held_on", b.held_on.into_result())
            .and_then(|day| not_ahead(&mut f, "held_on", day.0, ctx.now));
        // Not a whole number of minutes (-5, "half"): said as a session's
        // length is, not as "0 or more"; a whole number out of range is
        // the domain's rule, below.
        let duration_minutes = f.check(
            "duration_minutes",
            b.duration_minutes.into_result().map_err(|why| {
                if why.starts_with("is required") {
                    why
                } else {
                    format!(
                        "a coaching session lasts a whole number of minutes, from 1 to {}; \
                         enter how long it took",
                        trellis_domain::rep::MAX_SESSION_MINUTES
                    )
                }
            }),
        );
        let duration_minutes = duration_minutes.and_then(|minutes| {
            f.check(
                "duration_minutes",
                rep::check_session_minutes(minutes).map(|()| minutes),
            )
        });
        let notes = note(&mut f, "notes", &b.notes);
        let items: Vec<_> = b
            .action_items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let description = note(
                    &mut f,
                    &format!("action_items[{i}].description"),
                    &item.description,
                );
                let field = format!("action_items[{i}].due_on");
                let due_on =
                    f.check(&field, item.due_on.into_result())
                        .and_then(|due| match held_on {
                            Some(held_on) => {
                                // The item's id is made once every field holds.
                                let id = ActionItemId::from_uuid(uuid::Uuid::nil());
                                f.check(&field, rep::check_item_due(i + 1, id, due.0, held_on))
                                    .map(|()| due)
                            }
                            None => Some(due),
                        });
                (item.owner, description, due_on)
            })
            .collect();
        f.finish()?;
        let action_items: Vec<ActionItem> = items
            .into_iter()
            .enumerate()
            .map(|(i, (owner, description, due_on))| ActionItem {
                action_item_id: ActionItemId::from_uuid(ctx.new_id(&format!("action_item:{i}"))),
                description: valid!(description),
                owner: match owner {
                    wire::ActionItemOwner::Rep => Owner::Rep,
                    wire::ActionItemOwner::Leader => Owner::Leader(leader_id),
                },
                due_on: valid!(due_on).0,
            })
            .collect();
        let session = CoachingSessionHeld {
            session_id: SessionId::from_uuid(ctx.new_id("session")),
            leader_id,
            held_on: valid!(held_on),
            duration_minutes: valid!(duration_minutes),
            focus: b.focus.into_iter().map(CompetencyId::from_uuid).collect(),
            notes: valid!(notes),
            visibility: visibility(b.visibility),
            action_items,
        };
        Ok(OnRep::Ready(RepCommand::HoldCoachingSession {
            session,
            now: ctx.now,
        }))
    }
}

/// An action item was done.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/action-items/{action_item_id}/completion", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("action_item_id" = uuid::Uuid, Path, description = "The action item")),
    request_body = wire::Acknowledge,
    responses((status = 200, description = "Completed", body = Recorded), WriteErrors))]
pub async fn complete_action_item(
    request: WriteRequest<wire::CompleteActionItem>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::LeadOrSelf(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::CompleteActionItem>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::CompleteActionItem>) -> Result<Self, ApiError> {
        let action_item_id = edge.path_id("action_item_id")?;
        Ok(OnRep::Ready(RepCommand::CompleteActionItem {
            completed: ActionItemCompleted {
                action_item_id,
                on: edge.body.0.on,
            },
            now: edge.ctx.now,
        }))
    }
}

/// An action item will not be done, and why.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/action-items/{action_item_id}/drop", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("action_item_id" = uuid::Uuid, Path, description = "The action item")),
    request_body = wire::DropActionItem,
    responses((status = 200, description = "Dropped", body = Recorded), WriteErrors))]
pub async fn drop_action_item(
    request: WriteRequest<wire::DropActionItem>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::LeadOrSelf(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::DropActionItem>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::DropActionItem>) -> Result<Self, ApiError> {
        let dropped = ActionItemDropped {
            action_item_id: edge.path_id("action_item_id")?,
            on: edge.body.on,
            reason: field("reason", NonEmptyText::try_from(edge.body.reason.as_str()))?,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::DropActionItem { dropped, now }))
    }
}

/// The rep completed a training.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/trainings", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::RecordTraining,
    responses((status = 201, description = "The training was recorded", body = Recorded), WriteErrors))]
pub async fn record_training(
    request: WriteRequest<wire::RecordTraining>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Coaching))
        .await
}

impl TryFrom<Edge<'_, wire::RecordTraining>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RecordTraining>) -> Result<Self, ApiError> {
        let b = edge.body;
        let title = field("title", Name::try_from(b.title.as_str()))?;
        let training = TrainingCompleted {
            training_id: TrainingId::from_uuid(edge.ctx.new_id("training")),
            title,
            competency_id: b.competency_id.map(CompetencyId::from_uuid),
            completed_on: b.completed_on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::RecordTraining { training, now }))
    }
}

/// Parses the measured fields shared by one measurement and an import row.
pub(crate) fn measurement_values(
    f: &mut Fields,
    prefix: &str,
    metric: &str,
    period: &str,
    value: f64,
) -> Option<(MetricName, Period, MetricValue)> {
    let metric = f.check(format!("{prefix}metric"), MetricName::try_from(metric));
    let period = f.check(format!("{prefix}period"), period.parse::<Period>());
    let value = f.check(format!("{prefix}value"), MetricValue::try_from(value));
    Some((metric?, period?, value?))
}

/// A rep's actual value of a metric for one period.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/measurements", tag = "measurements",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::RecordMeasurement,
    responses((status = 201, description = "The measurement was recorded (or re-recorded as a correction)", body = Recorded), WriteErrors))]
pub async fn record_measurement(
    request: WriteRequest<wire::RecordMeasurement>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Measurements))
        .await
}

impl TryFrom<Edge<'_, wire::RecordMeasurement>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RecordMeasurement>) -> Result<Self, ApiError> {
        let b = edge.body;
        let mut f = Fields::default();
        let values = measurement_values(&mut f, "", &b.metric, &b.period, b.value);
        f.finish()?;
        let (metric, period, value) = valid!(values);
        let measurement = PerformanceMeasured {
            measurement_id: MeasurementId::from_uuid(edge.ctx.new_id("measurement")),
            metric,
            period,
            value,
            source: match b.source {
                wire::MeasurementSource::Manual => MeasurementSource::Manual,
                wire::MeasurementSource::CrmImport => MeasurementSource::CrmImport,
            },
        };
        let now = edge.ctx.now;
        Ok(OnRep::GivenMetric(
            measurement.metric.clone(),
            (measurement.period.kind(), measurement.value.get()),
            Box::new(
                move |(standard_periods, largest_target)| RepCommand::MeasurePerformance {
                    measurement,
                    now,
                    standard_periods,
                    largest_target,
                },
            ),
        ))
    }
}

/// The rep raises an obstacle for their leader to remove.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/support-requests", tag = "support",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::RaiseSupportRequest,
    responses((status = 201, description = "The request was raised", body = Recorded), WriteErrors))]
pub async fn raise_support_request(
    request: WriteRequest<wire::RaiseSupportRequest>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::LeadOrSelf(Scope::Support))
        .await
}

impl TryFrom<Edge<'_, wire::RaiseSupportRequest>> for OnRep {
    type Error = ApiError;

    /// Every field's fault in one answer, the day's rule that needs no rep
    /// among them (not ahead of today).
    fn try_from(edge: Edge<'_, wire::RaiseSupportRequest>) -> Result<Self, ApiError> {
        let b = edge.body;
        let now = edge.ctx.now;
        let mut f = Fields::default();
        let category = f.check("category", b.category.into_result());
        let description = note(&mut f, "description", &b.description);
        let raised_on = f
            .check("raised_on", b.raised_on.into_result())
            .and_then(|day| not_ahead(&mut f, "raised_on", day.0, now));
        f.finish()?;
        let request = SupportRequested {
            request_id: SupportRequestId::from_uuid(edge.ctx.new_id("support_request")),
            category: match valid!(category) {
                wire::SupportCategory::Leads => SupportCategory::Leads,
                wire::SupportCategory::Tools => SupportCategory::Tools,
                wire::SupportCategory::Training => SupportCategory::Training,
                wire::SupportCategory::Process => SupportCategory::Process,
                wire::SupportCategory::Other => SupportCategory::Other,
            },
            description: valid!(description),
            raised_on: valid!(raised_on),
        };
        Ok(OnRep::Ready(RepCommand::RaiseSupportRequest {
            request,
            now,
        }))
    }
}

/// The leader has seen a support request and is on it.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/support-requests/{request_id}/acknowledgement", tag = "support",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("request_id" = uuid::Uuid, Path, description = "The support request")),
    request_body = wire::AcknowledgeSupportRequest,
    responses((status = 200, description = "Acknowledged", body = Recorded), WriteErrors))]
pub async fn acknowledge_support_request(
    request: WriteRequest<wire::AcknowledgeSupportRequest>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Support))
        .await
}

impl TryFrom<Edge<'_, wire::AcknowledgeSupportRequest>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::AcknowledgeSupportRequest>) -> Result<Self, ApiError> {
        let request_id = edge.path_id("request_id")?;
        let acknowledged = SupportAcknowledged {
            request_id,
            leader_id: edge.acting_leader(edge.body.leader_id)?,
            on: edge.body.on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::AcknowledgeSupportRequest {
            acknowledged,
            now,
        }))
    }
}

/// The leader removed the obstacle.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/support-requests/{request_id}/resolution", tag = "support",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("request_id" = uuid::Uuid, Path, description = "The support request")),
    request_body = wire::ResolveSupportRequest,
    responses((status = 200, description = "Resolved", body = Recorded), WriteErrors))]
pub async fn resolve_support_request(
    request: WriteRequest<wire::ResolveSupportRequest>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Support))
        .await
}

impl TryFrom<Edge<'_, wire::ResolveSupportRequest>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::ResolveSupportRequest>) -> Result<Self, ApiError> {
        let request_id = edge.path_id("request_id")?;
        let leader_id = edge.acting_leader(edge.body.leader_id)?;
        let b = edge.body;
        let resolved = SupportResolved {
            request_id,
            leader_id,
            resolution: field("resolution", NonEmptyText::try_from(b.resolution.as_str()))?,
            on: b.on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::ResolveSupportRequest {
            resolved,
            now,
        }))
    }
}

/// An improvement plan: targets and a review date.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/improvement-plans", tag = "improvement plans",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::StartImprovementPlan,
    responses((status = 201, description = "The plan started", body = Recorded), WriteErrors))]
pub async fn start_improvement_plan(
    request: WriteRequest<wire::StartImprovementPlan>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Plans))
        .await
}

impl TryFrom<Edge<'_, wire::StartImprovementPlan>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::StartImprovementPlan>) -> Result<Self, ApiError> {
        let leader_id = edge.acting_leader(edge.body.leader_id)?;
        let b = edge.body;
        let mut f = Fields::default();
        let descriptions: Vec<_> = b
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| note(&mut f, &format!("targets[{i}].description"), &t.description))
            .collect();
        f.finish()?;
        let targets: Vec<PlanTarget> = b
            .targets
            .iter()
            .zip(descriptions)
            .map(|(t, description)| PlanTarget {
                description: valid!(description),
                standard_id: t.standard_id.map(StandardId::from_uuid),
            })
            .collect();
        let plan = ImprovementPlanStarted {
            plan_id: PlanId::from_uuid(edge.ctx.new_id("plan")),
            leader_id,
            targets,
            started_on: b.started_on,
            review_on: b.review_on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::StartImprovementPlan { plan, now }))
    }
}

/// A checkpoint on the open improvement plan.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/improvement-plans/{plan_id}/checkpoints", tag = "improvement plans",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("plan_id" = uuid::Uuid, Path, description = "The plan")),
    request_body = wire::RecordPlanCheckpoint,
    responses((status = 200, description = "The checkpoint was recorded", body = Recorded), WriteErrors))]
pub async fn record_plan_checkpoint(
    request: WriteRequest<wire::RecordPlanCheckpoint>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Plans))
        .await
}

impl TryFrom<Edge<'_, wire::RecordPlanCheckpoint>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RecordPlanCheckpoint>) -> Result<Self, ApiError> {
        let checkpoint = PlanCheckpointRecorded {
            plan_id: edge.path_id("plan_id")?,
            note: field("note", NonEmptyText::try_from(edge.body.note.as_str()))?,
            on: edge.body.on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::RecordPlanCheckpoint {
            checkpoint,
            now,
        }))
    }
}

/// Close the improvement plan with its outcome.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/improvement-plans/{plan_id}/closure", tag = "improvement plans",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("plan_id" = uuid::Uuid, Path, description = "The plan")),
    request_body = wire::CloseImprovementPlan,
    responses((status = 200, description = "The plan was closed", body = Recorded), WriteErrors))]
pub async fn close_improvement_plan(
    request: WriteRequest<wire::CloseImprovementPlan>,
) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Plans))
        .await
}

impl TryFrom<Edge<'_, wire::CloseImprovementPlan>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::CloseImprovementPlan>) -> Result<Self, ApiError> {
        let plan_id = edge.path_id("plan_id")?;
        let b = edge.body;
        let closed = ImprovementPlanClosed {
            plan_id,
            outcome: match b.outcome {
                wire::PlanOutcome::Met => PlanOutcome::Met,
                wire::PlanOutcome::Extended => PlanOutcome::Extended,
                wire::PlanOutcome::NotMet => PlanOutcome::NotMet,
            },
            note: field("note", NonEmptyText::try_from(b.note.as_str()))?,
            on: b.on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::CloseImprovementPlan {
            closed,
            now,
        }))
    }
}

/// Supersede an earlier record (a wrong level, a wrong value, a record that
/// should not count), with a reason. The original stays in the log.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/corrections", tag = "corrections",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::CorrectFact,
    responses((status = 200, description = "The correction was recorded", body = Recorded), WriteErrors))]
pub async fn correct_fact(request: WriteRequest<wire::CorrectFact>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Corrections))
        .await
}

impl TryFrom<Edge<'_, wire::CorrectFact>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::CorrectFact>) -> Result<Self, ApiError> {
        let b = edge.body;
        let mut f = Fields::default();
        let reason = note(&mut f, "reason", &b.reason);
        let correction = match &b.correction {
            wire::Correction::SkillLevel { level, evidence } => {
                // Judged with the evidence: a level not chosen and no
                // evidence are named in one answer.
                let level = f
                    .check("correction.level", level.value().copied())
                    .and_then(|level| f.check("correction.level", SkillLevel::try_from(level)));
                let evidence = note(&mut f, "correction.evidence", evidence);
                level
                    .zip(evidence)
                    .map(|(level, evidence)| Correction::SkillLevel { level, evidence })
            }
            wire::Correction::MeasuredValue { value } => f
                .check("correction.value", MetricValue::try_from(*value))
                .map(|value| Correction::MeasuredValue { value }),
            wire::Correction::Retracted => Some(Correction::Retracted),
        };
        f.finish()?;
        let correction = FactCorrected {
            fact_id: b.fact_id,
            reason: valid!(reason),
            correction: valid!(correction),
        };
        Ok(match &correction.correction {
            Correction::MeasuredValue { value } => OnRep::GivenCorrectedMeasurement(
                RepId::from_uuid(edge.id),
                b.fact_id,
                value.get(),
                Box::new(move |largest_target| RepCommand::CorrectFact {
                    correction,
                    largest_target,
                }),
            ),
            _ => OnRep::Ready(RepCommand::CorrectFact {
                correction,
                largest_target: None,
            }),
        })
    }
}

/// A performance review was held on a review packet (its SHA-256 goes in
/// the log, so anyone can later prove what the review was based on).
#[utoipa::path(post, path = "/v1/reps/{rep_id}/reviews", tag = "reviews",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::HoldReview,
    responses((status = 201, description = "The review was recorded", body = Recorded), WriteErrors))]
pub async fn hold_review(request: WriteRequest<wire::HoldReview>) -> Result<Response, ApiError> {
    request
        .on_rep(Entity::Named, RouteAccess::Lead(Scope::Reviews))
        .await
}

impl TryFrom<Edge<'_, wire::HoldReview>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::HoldReview>) -> Result<Self, ApiError> {
        let b = edge.body;
        let digest = field(
            "packet_sha256",
            Sha256Hex::try_from(b.packet_sha256.as_str()),
        )?;
        let review = ReviewHeld {
            review_id: ReviewId::from_uuid(edge.ctx.new_id("review")),
            period_from: b.period_from,
            period_to: b.period_to,
            packet_sha256: digest,
            on: b.on,
        };
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::HoldReview { review, now }))
    }
}
