//! Everything recorded about one rep: joining and leaving, expectations,
//! feedback, skill assessments, coaching and its action items, training,
//! measurements, support requests, improvement plans, corrections and reviews.

use axum::extract::State;
use axum::response::Response;
use trellis_domain::rep::{
    ActionItem, ActionItemCompleted, ActionItemDropped, Correction, ExpectationsAcknowledged,
    FactCorrected, FeedbackAcknowledged, FeedbackGiven, FeedbackKind, ImprovementPlanClosed,
    ImprovementPlanStarted, MeasurementSource, Owner, PerformanceMeasured, PlanCheckpointRecorded,
    PlanOutcome, PlanTarget, RepDeparted, RepJoined, ReviewHeld, SkillAssessed,
    SupportAcknowledged, SupportCategory, SupportRequested, SupportResolved, TrainingCompleted,
    Visibility,
};
use trellis_domain::{
    ActionItemId, AssessmentId, CompetencyId, FeedbackId, MeasurementId, MetricName, MetricValue,
    Name, NonEmptyText, Period, PersonName, PlanId, RepAggregate, RepCommand, RepId, RepState,
    ReviewId, Role, SessionId, Sha256Hex, SkillLevel, StandardId, SupportRequestId, TeamId,
    TrainingId,
};

use super::framework::{competency_status, standard_status};
use super::teams::team_exists;
use super::{PathIds, respond, respond_with, stream};
use crate::extract::{JsonBody, Principal, WriteHeaders};
use crate::openapi::WriteErrors;
use crate::policy::{RepAccess, Scope, acting_leader, rep_write};
use crate::problem::{ApiError, Fields};
use crate::wire::{self, Recorded, SessionRecorded};
use crate::write::{WriteCtx, Written, execute};
use crate::{AppState, valid};

/// Runs a command on a rep's stream after checking the caller may.
async fn on_rep(
    app: &AppState,
    ctx: &WriteCtx,
    rep_id: RepId,
    access: RepAccess,
    mut command: impl FnMut(&RepState) -> Result<RepCommand, ApiError>,
) -> Result<Written, ApiError> {
    execute::<RepAggregate>(app, ctx, &stream("rep", rep_id.as_uuid())?, |loaded| {
        rep_write(&ctx.claims, rep_id, &loaded.state, None, access)?;
        command(&loaded.state)
    })
    .await
}

fn visibility(v: wire::Visibility) -> Visibility {
    match v {
        wire::Visibility::Shared => Visibility::Shared,
        wire::Visibility::Private => Visibility::Private,
    }
}

fn note(f: &mut Fields, field: &str, text: &str) -> Option<NonEmptyText> {
    f.check(field, NonEmptyText::try_from(text))
}

/// A rep joins a team.
#[utoipa::path(post, path = "/v1/reps", tag = "reps", request_body = wire::JoinRep,
    responses((status = 201, description = "The rep joined", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn join(
    State(app): State<AppState>,
    Principal(claims): Principal,
    headers: WriteHeaders,
    body: JsonBody<wire::JoinRep>,
) -> Result<Response, ApiError> {
    let b = &body.value;
    let mut f = Fields::default();
    let name = f.check("name", PersonName::try_from(b.name.as_str()));
    let role = f.check("role", Role::try_from(b.role.as_str()));
    f.finish()?;
    let (name, role) = (valid!(name), valid!(role));
    let team_id = TeamId::from_uuid(b.team_id);
    let start_date = b.start_date;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let rep_id = RepId::from_uuid(ctx.new_id("rep"));
    let team_exists = team_exists(&app, team_id).await?;
    let written =
        execute::<RepAggregate>(&app, &ctx, &stream("rep", rep_id.as_uuid())?, |loaded| {
            rep_write(
                &ctx.claims,
                rep_id,
                &loaded.state,
                Some(team_id),
                RepAccess::Lead(Scope::Reps),
            )?;
            Ok(RepCommand::JoinRep {
                joined: RepJoined {
                    rep_id,
                    name: name.clone(),
                    role: role.clone(),
                    team_id,
                    start_date,
                },
                team_exists,
            })
        })
        .await?;
    Ok(respond(true, Some(rep_id.as_uuid()), written))
}

/// A rep moves to another team (the leader of the team they leave records it).
#[utoipa::path(post, path = "/v1/reps/{rep_id}/team-moves", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::MoveTeam,
    responses((status = 200, description = "The rep moved", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn move_team(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::MoveTeam>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let (to, on) = (TeamId::from_uuid(body.value.team_id), body.value.on);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let team_exists = team_exists(&app, to).await?;
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Reps), |_| {
        Ok(RepCommand::MoveTeam {
            to,
            on,
            team_exists,
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// A rep changes role (e.g. SDR to AE).
#[utoipa::path(post, path = "/v1/reps/{rep_id}/role-changes", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::ChangeRole,
    responses((status = 200, description = "The role changed", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn change_role(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::ChangeRole>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let mut f = Fields::default();
    let role = f.check("role", Role::try_from(body.value.role.as_str()));
    f.finish()?;
    let (to, on) = (valid!(role), body.value.on);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Reps), |_| {
        Ok(RepCommand::ChangeRole {
            to: to.clone(),
            on,
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// A rep leaves.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/departure", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::Depart,
    responses((status = 200, description = "The departure was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn depart(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::Depart>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let mut f = Fields::default();
    let reason = note(&mut f, "reason", &body.value.reason);
    f.finish()?;
    let departure = RepDeparted {
        on: body.value.on,
        reason: valid!(reason),
    };
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Reps), |_| {
        Ok(RepCommand::Depart {
            departure: departure.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// The rep acknowledges the expectations of a standard (its current version).
#[utoipa::path(post, path = "/v1/reps/{rep_id}/expectations-acknowledgements", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::AcknowledgeExpectations,
    responses((status = 200, description = "Acknowledged", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn acknowledge_expectations(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::AcknowledgeExpectations>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let standard_id = StandardId::from_uuid(body.value.standard_id);
    let on = body.value.on;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let standard = standard_status(&app, standard_id).await?;
    let standard_version = match standard {
        trellis_domain::StandardStatus::Active { latest_version } => latest_version,
        _ => 0,
    };
    let written = on_rep(
        &app,
        &ctx,
        rep_id,
        RepAccess::LeadOrSelf(Scope::Reps),
        |_| {
            Ok(RepCommand::AcknowledgeExpectations {
                acknowledged: ExpectationsAcknowledged {
                    standard_id,
                    standard_version,
                    on,
                },
                standard,
                now: ctx.now,
            })
        },
    )
    .await?;
    Ok(respond(false, None, written))
}

/// A leader gives specific feedback on one competency.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/feedback", tag = "feedback",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::GiveFeedback,
    responses((status = 201, description = "The feedback was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn give_feedback(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::GiveFeedback>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let leader_id = acting_leader(&claims, b.leader_id.map(Into::into))?;
    let mut f = Fields::default();
    let text = note(&mut f, "note", &b.note);
    f.finish()?;
    let competency_id = CompetencyId::from_uuid(b.competency_id);
    let kind = match b.kind {
        wire::FeedbackKind::Praise => FeedbackKind::Praise,
        wire::FeedbackKind::Constructive => FeedbackKind::Constructive,
    };
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let feedback = FeedbackGiven {
        feedback_id: FeedbackId::from_uuid(ctx.new_id("feedback")),
        leader_id,
        competency_id,
        kind,
        note: valid!(text),
        visibility: visibility(b.visibility),
        given_on: b.given_on,
    };
    let competency = competency_status(&app, competency_id).await?;
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Coaching), |_| {
        Ok(RepCommand::GiveFeedback {
            feedback: feedback.clone(),
            competency,
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(true, Some(feedback.feedback_id.as_uuid()), written))
}

/// The rep acknowledges feedback they were given.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/feedback/{feedback_id}/acknowledgement", tag = "feedback",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("feedback_id" = uuid::Uuid, Path, description = "The feedback")),
    request_body = wire::Acknowledge,
    responses((status = 200, description = "Acknowledged", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn acknowledge_feedback(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::Acknowledge>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let feedback_id = FeedbackId::from_uuid(path.uuid("feedback_id")?);
    let on = body.value.on;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(
        &app,
        &ctx,
        rep_id,
        RepAccess::LeadOrSelf(Scope::Coaching),
        |_| {
            Ok(RepCommand::AcknowledgeFeedback {
                acknowledged: FeedbackAcknowledged { feedback_id, on },
                now: ctx.now,
            })
        },
    )
    .await?;
    Ok(respond(false, None, written))
}

/// A leader rates one competency, 1 to 5, with evidence.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/skill-assessments", tag = "skills",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::AssessSkill,
    responses((status = 201, description = "The assessment was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn assess_skill(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::AssessSkill>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let leader_id = acting_leader(&claims, b.leader_id.map(Into::into))?;
    let mut f = Fields::default();
    let level = f.check("level", SkillLevel::try_from(b.level));
    let evidence = note(&mut f, "evidence", &b.evidence);
    f.finish()?;
    let competency_id = CompetencyId::from_uuid(b.competency_id);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let assessment = SkillAssessed {
        assessment_id: AssessmentId::from_uuid(ctx.new_id("assessment")),
        leader_id,
        competency_id,
        level: valid!(level),
        evidence: valid!(evidence),
        assessed_on: b.assessed_on,
    };
    let competency = competency_status(&app, competency_id).await?;
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Coaching), |_| {
        Ok(RepCommand::AssessSkill {
            assessment: assessment.clone(),
            competency,
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(
        true,
        Some(assessment.assessment_id.as_uuid()),
        written,
    ))
}

/// A 1:1 coaching session with its focus, notes and action items.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/coaching-sessions", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::HoldCoachingSession,
    responses((status = 201, description = "The session was recorded", body = SessionRecorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn hold_coaching_session(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::HoldCoachingSession>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let leader_id = acting_leader(&claims, b.leader_id.map(Into::into))?;
    let mut f = Fields::default();
    let notes = note(&mut f, "notes", &b.notes);
    let descriptions: Vec<_> = b
        .action_items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            note(
                &mut f,
                &format!("action_items[{i}].description"),
                &item.description,
            )
        })
        .collect();
    f.finish()?;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let action_items: Vec<ActionItem> = b
        .action_items
        .iter()
        .zip(descriptions)
        .enumerate()
        .map(|(i, (item, description))| ActionItem {
            action_item_id: ActionItemId::from_uuid(ctx.new_id(&format!("action_item:{i}"))),
            description: valid!(description),
            owner: match item.owner {
                wire::ActionItemOwner::Rep => Owner::Rep,
                wire::ActionItemOwner::Leader => Owner::Leader(leader_id),
            },
            due_on: item.due_on,
        })
        .collect();
    let session = trellis_domain::rep::CoachingSessionHeld {
        session_id: SessionId::from_uuid(ctx.new_id("session")),
        leader_id,
        held_on: b.held_on,
        duration_minutes: b.duration_minutes,
        focus: b
            .focus
            .iter()
            .copied()
            .map(CompetencyId::from_uuid)
            .collect(),
        notes: valid!(notes),
        visibility: visibility(b.visibility),
        action_items,
    };
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Coaching), |_| {
        Ok(RepCommand::HoldCoachingSession {
            session: session.clone(),
            now: ctx.now,
        })
    })
    .await?;
    let body = SessionRecorded {
        recorded: Recorded {
            id: Some(session.session_id.as_uuid()),
            stream_version: written.stream_version,
            events: written.events,
            replayed: written.replayed,
        },
        action_item_ids: session
            .action_items
            .iter()
            .map(|i| i.action_item_id.as_uuid())
            .collect(),
    };
    Ok(respond_with(true, written, &body))
}

/// An action item was done.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/action-items/{action_item_id}/completion", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("action_item_id" = uuid::Uuid, Path, description = "The action item")),
    request_body = wire::Acknowledge,
    responses((status = 200, description = "Completed", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn complete_action_item(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::Acknowledge>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let action_item_id = ActionItemId::from_uuid(path.uuid("action_item_id")?);
    let on = body.value.on;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(
        &app,
        &ctx,
        rep_id,
        RepAccess::ActionItem(action_item_id),
        |_| {
            Ok(RepCommand::CompleteActionItem {
                completed: ActionItemCompleted { action_item_id, on },
                now: ctx.now,
            })
        },
    )
    .await?;
    Ok(respond(false, None, written))
}

/// An action item will not be done, and why.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/action-items/{action_item_id}/drop", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("action_item_id" = uuid::Uuid, Path, description = "The action item")),
    request_body = wire::DropActionItem,
    responses((status = 200, description = "Dropped", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn drop_action_item(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::DropActionItem>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let action_item_id = ActionItemId::from_uuid(path.uuid("action_item_id")?);
    let mut f = Fields::default();
    let reason = note(&mut f, "reason", &body.value.reason);
    f.finish()?;
    let dropped = ActionItemDropped {
        action_item_id,
        on: body.value.on,
        reason: valid!(reason),
    };
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Coaching), |_| {
        Ok(RepCommand::DropActionItem {
            dropped: dropped.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// The rep completed a training.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/trainings", tag = "coaching",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::RecordTraining,
    responses((status = 201, description = "The training was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn record_training(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RecordTraining>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let mut f = Fields::default();
    let title = f.check("title", Name::try_from(b.title.as_str()));
    f.finish()?;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let training = TrainingCompleted {
        training_id: TrainingId::from_uuid(ctx.new_id("training")),
        title: valid!(title),
        competency_id: b.competency_id.map(CompetencyId::from_uuid),
        completed_on: b.completed_on,
    };
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Coaching), |_| {
        Ok(RepCommand::RecordTraining {
            training: training.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(true, Some(training.training_id.as_uuid()), written))
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
    responses((status = 201, description = "The measurement was recorded (or re-recorded as a correction)", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn record_measurement(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RecordMeasurement>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let mut f = Fields::default();
    let values = measurement_values(&mut f, "", &b.metric, &b.period, b.value);
    f.finish()?;
    let (metric, period, value) = valid!(values);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let measurement = PerformanceMeasured {
        measurement_id: MeasurementId::from_uuid(ctx.new_id("measurement")),
        metric,
        period,
        value,
        source: match b.source {
            wire::MeasurementSource::Manual => MeasurementSource::Manual,
            wire::MeasurementSource::CrmImport => MeasurementSource::CrmImport,
        },
    };
    let written = on_rep(
        &app,
        &ctx,
        rep_id,
        RepAccess::Lead(Scope::Measurements),
        |_| {
            Ok(RepCommand::MeasurePerformance {
                measurement: measurement.clone(),
                now: ctx.now,
            })
        },
    )
    .await?;
    Ok(respond(
        true,
        Some(measurement.measurement_id.as_uuid()),
        written,
    ))
}

/// The rep raises an obstacle for their leader to remove.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/support-requests", tag = "support",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::RaiseSupportRequest,
    responses((status = 201, description = "The request was raised", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn raise_support_request(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RaiseSupportRequest>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let mut f = Fields::default();
    let description = note(&mut f, "description", &b.description);
    f.finish()?;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let request = SupportRequested {
        request_id: SupportRequestId::from_uuid(ctx.new_id("support_request")),
        category: match b.category {
            wire::SupportCategory::Leads => SupportCategory::Leads,
            wire::SupportCategory::Tools => SupportCategory::Tools,
            wire::SupportCategory::Training => SupportCategory::Training,
            wire::SupportCategory::Process => SupportCategory::Process,
            wire::SupportCategory::Other => SupportCategory::Other,
        },
        description: valid!(description),
        raised_on: b.raised_on,
    };
    let written = on_rep(
        &app,
        &ctx,
        rep_id,
        RepAccess::LeadOrSelf(Scope::Support),
        |_| {
            Ok(RepCommand::RaiseSupportRequest {
                request: request.clone(),
                now: ctx.now,
            })
        },
    )
    .await?;
    Ok(respond(true, Some(request.request_id.as_uuid()), written))
}

/// The leader has seen a support request and is on it.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/support-requests/{request_id}/acknowledgement", tag = "support",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("request_id" = uuid::Uuid, Path, description = "The support request")),
    request_body = wire::AcknowledgeSupportRequest,
    responses((status = 200, description = "Acknowledged", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn acknowledge_support_request(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::AcknowledgeSupportRequest>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let request_id = SupportRequestId::from_uuid(path.uuid("request_id")?);
    let leader_id = acting_leader(&claims, body.value.leader_id.map(Into::into))?;
    let on = body.value.on;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Support), |_| {
        Ok(RepCommand::AcknowledgeSupportRequest {
            acknowledged: SupportAcknowledged {
                request_id,
                leader_id,
                on,
            },
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// The leader removed the obstacle.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/support-requests/{request_id}/resolution", tag = "support",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("request_id" = uuid::Uuid, Path, description = "The support request")),
    request_body = wire::ResolveSupportRequest,
    responses((status = 200, description = "Resolved", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn resolve_support_request(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::ResolveSupportRequest>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let request_id = SupportRequestId::from_uuid(path.uuid("request_id")?);
    let b = &body.value;
    let leader_id = acting_leader(&claims, b.leader_id.map(Into::into))?;
    let mut f = Fields::default();
    let resolution = note(&mut f, "resolution", &b.resolution);
    f.finish()?;
    let resolved = SupportResolved {
        request_id,
        leader_id,
        resolution: valid!(resolution),
        on: b.on,
    };
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Support), |_| {
        Ok(RepCommand::ResolveSupportRequest {
            resolved: resolved.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// An improvement plan: targets and a review date.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/improvement-plans", tag = "improvement plans",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    request_body = wire::StartImprovementPlan,
    responses((status = 201, description = "The plan started", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn start_improvement_plan(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::StartImprovementPlan>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let leader_id = acting_leader(&claims, b.leader_id.map(Into::into))?;
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
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let plan = ImprovementPlanStarted {
        plan_id: PlanId::from_uuid(ctx.new_id("plan")),
        leader_id,
        targets,
        started_on: b.started_on,
        review_on: b.review_on,
    };
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Plans), |_| {
        Ok(RepCommand::StartImprovementPlan {
            plan: plan.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(true, Some(plan.plan_id.as_uuid()), written))
}

/// A checkpoint on the open improvement plan.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/improvement-plans/{plan_id}/checkpoints", tag = "improvement plans",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("plan_id" = uuid::Uuid, Path, description = "The plan")),
    request_body = wire::RecordPlanCheckpoint,
    responses((status = 200, description = "The checkpoint was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn record_plan_checkpoint(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RecordPlanCheckpoint>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let plan_id = PlanId::from_uuid(path.uuid("plan_id")?);
    let mut f = Fields::default();
    let text = note(&mut f, "note", &body.value.note);
    f.finish()?;
    let checkpoint = PlanCheckpointRecorded {
        plan_id,
        note: valid!(text),
        on: body.value.on,
    };
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Plans), |_| {
        Ok(RepCommand::RecordPlanCheckpoint {
            checkpoint: checkpoint.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// Close the improvement plan with its outcome.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/improvement-plans/{plan_id}/closure", tag = "improvement plans",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep"),
           ("plan_id" = uuid::Uuid, Path, description = "The plan")),
    request_body = wire::CloseImprovementPlan,
    responses((status = 200, description = "The plan was closed", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn close_improvement_plan(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::CloseImprovementPlan>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let plan_id = PlanId::from_uuid(path.uuid("plan_id")?);
    let b = &body.value;
    let mut f = Fields::default();
    let text = note(&mut f, "note", &b.note);
    f.finish()?;
    let closed = ImprovementPlanClosed {
        plan_id,
        outcome: match b.outcome {
            wire::PlanOutcome::Met => PlanOutcome::Met,
            wire::PlanOutcome::Extended => PlanOutcome::Extended,
            wire::PlanOutcome::NotMet => PlanOutcome::NotMet,
        },
        note: valid!(text),
        on: b.on,
    };
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Plans), |_| {
        Ok(RepCommand::CloseImprovementPlan {
            closed: closed.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// Supersede an earlier record (a wrong level, a wrong value, a record that
/// should not count), with a reason. The original stays in the log.
#[utoipa::path(post, path = "/v1/reps/{rep_id}/corrections", tag = "corrections",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::CorrectFact,
    responses((status = 200, description = "The correction was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn correct_fact(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::CorrectFact>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let mut f = Fields::default();
    let reason = note(&mut f, "reason", &b.reason);
    let correction = match &b.correction {
        wire::Correction::SkillLevel { level, evidence } => {
            let level = f.check("correction.level", SkillLevel::try_from(*level));
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
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = on_rep(
        &app,
        &ctx,
        rep_id,
        RepAccess::Lead(Scope::Corrections),
        |_| {
            Ok(RepCommand::CorrectFact {
                correction: correction.clone(),
            })
        },
    )
    .await?;
    Ok(respond(false, None, written))
}

/// A performance review was held on a review packet (its SHA-256 goes in
/// the log, so anyone can later prove what the review was based on).
#[utoipa::path(post, path = "/v1/reps/{rep_id}/reviews", tag = "reviews",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")), request_body = wire::HoldReview,
    responses((status = 201, description = "The review was recorded", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn hold_review(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::HoldReview>,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
    let b = &body.value;
    let mut f = Fields::default();
    let digest = f.check(
        "packet_sha256",
        Sha256Hex::try_from(b.packet_sha256.as_str()),
    );
    f.finish()?;
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let review = ReviewHeld {
        review_id: ReviewId::from_uuid(ctx.new_id("review")),
        period_from: b.period_from,
        period_to: b.period_to,
        packet_sha256: valid!(digest),
        on: b.on,
    };
    let written = on_rep(&app, &ctx, rep_id, RepAccess::Lead(Scope::Reviews), |_| {
        Ok(RepCommand::HoldReview {
            review: review.clone(),
            now: ctx.now,
        })
    })
    .await?;
    Ok(respond(true, Some(review.review_id.as_uuid()), written))
}
