//! The competency framework and the standards reps are measured against.

use axum::extract::State;
use axum::response::Response;
use trellis_domain::standard::RampStep;
use trellis_domain::{
    CompetencyAggregate, CompetencyCommand, CompetencyId, CompetencyStatus, Direction, MetricName,
    Name, NonEmptyText, PeriodKind, Role, Rubric, StandardAggregate, StandardCommand, StandardId,
    StandardKind, StandardStatus, Target,
};

use super::{PathIds, respond, stream};
use crate::extract::{JsonBody, Principal, WriteHeaders};
use crate::openapi::WriteErrors;
use crate::policy::{Scope, admin_write};
use crate::problem::{ApiError, Fields};
use crate::wire::{self, Recorded};
use crate::write::{WriteCtx, execute, load_fact};
use crate::{AppState, valid};

fn rubric(f: &mut Fields, levels: &[String]) -> Option<Rubric> {
    let mut parsed = Vec::with_capacity(levels.len());
    for (i, level) in levels.iter().enumerate() {
        parsed.push(f.check(
            format!("rubric[{i}]"),
            NonEmptyText::try_from(level.as_str()),
        )?);
    }
    f.check("rubric", Rubric::try_from(parsed))
}

/// Define a competency with its 1–5 rubric.
#[utoipa::path(post, path = "/v1/competencies", tag = "competency framework",
    request_body = wire::DefineCompetency,
    responses((status = 201, description = "The competency was defined", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn define_competency(
    State(app): State<AppState>,
    Principal(claims): Principal,
    headers: WriteHeaders,
    body: JsonBody<wire::DefineCompetency>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Framework)?;
    let b = &body.value;
    let mut f = Fields::default();
    let name = f.check("name", Name::try_from(b.name.as_str()));
    let description = f.check(
        "description",
        NonEmptyText::try_from(b.description.as_str()),
    );
    let rubric = rubric(&mut f, &b.rubric);
    f.finish()?;
    let (name, description, rubric) = (valid!(name), valid!(description), valid!(rubric));
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let id = CompetencyId::from_uuid(ctx.new_id("competency"));
    let written =
        execute::<CompetencyAggregate>(&app, &ctx, &stream("competency", id.as_uuid())?, |_| {
            Ok(CompetencyCommand::DefineCompetency {
                competency_id: id,
                name: name.clone(),
                description: description.clone(),
                rubric: rubric.clone(),
            })
        })
        .await?;
    Ok(respond(true, Some(id.as_uuid()), written))
}

/// Revise a competency's name, description and rubric.
#[utoipa::path(put, path = "/v1/competencies/{competency_id}", tag = "competency framework",
    params(("competency_id" = uuid::Uuid, Path, description = "The competency")),
    request_body = wire::DefineCompetency,
    responses((status = 200, description = "The competency was revised", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn revise_competency(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::DefineCompetency>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Framework)?;
    let id = path.uuid("competency_id")?;
    let b = &body.value;
    let mut f = Fields::default();
    let name = f.check("name", Name::try_from(b.name.as_str()));
    let description = f.check(
        "description",
        NonEmptyText::try_from(b.description.as_str()),
    );
    let rubric = rubric(&mut f, &b.rubric);
    f.finish()?;
    let (name, description, rubric) = (valid!(name), valid!(description), valid!(rubric));
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = execute::<CompetencyAggregate>(&app, &ctx, &stream("competency", id)?, |_| {
        Ok(CompetencyCommand::ReviseCompetency {
            name: name.clone(),
            description: description.clone(),
            rubric: rubric.clone(),
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// Retire a competency: no new feedback or assessments on it.
#[utoipa::path(post, path = "/v1/competencies/{competency_id}/retirement", tag = "competency framework",
    params(("competency_id" = uuid::Uuid, Path, description = "The competency")),
    request_body = wire::RetireCompetency,
    responses((status = 200, description = "The competency was retired", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn retire_competency(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RetireCompetency>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Framework)?;
    let id = path.uuid("competency_id")?;
    let mut f = Fields::default();
    let reason = f.check("reason", NonEmptyText::try_from(body.value.reason.as_str()));
    f.finish()?;
    let reason = valid!(reason);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = execute::<CompetencyAggregate>(&app, &ctx, &stream("competency", id)?, |_| {
        Ok(CompetencyCommand::RetireCompetency {
            reason: reason.clone(),
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

fn roles(f: &mut Fields, field: &str, roles: &[String]) -> Option<Vec<Role>> {
    let mut parsed = Vec::with_capacity(roles.len());
    let mut ok = true;
    for (i, role) in roles.iter().enumerate() {
        match f.check(format!("{field}[{i}]"), Role::try_from(role.as_str())) {
            Some(role) => parsed.push(role),
            None => ok = false,
        }
    }
    ok.then_some(parsed)
}

fn ramp(steps: &[wire::RampStep]) -> Vec<RampStep> {
    steps
        .iter()
        .map(|s| RampStep {
            period_index: s.period_index,
            percent_of_target: s.percent_of_target,
        })
        .collect()
}

fn period_kind(kind: wire::PeriodKind) -> PeriodKind {
    match kind {
        wire::PeriodKind::Week => PeriodKind::Week,
        wire::PeriodKind::Month => PeriodKind::Month,
        wire::PeriodKind::Quarter => PeriodKind::Quarter,
    }
}

/// Set a standard: a metric, its kind and direction, a target per period,
/// the roles it applies to, when it takes effect and a ramp for new hires.
#[utoipa::path(post, path = "/v1/standards", tag = "standards", request_body = wire::SetStandard,
    responses((status = 201, description = "The standard was set (version 1)", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn set_standard(
    State(app): State<AppState>,
    Principal(claims): Principal,
    headers: WriteHeaders,
    body: JsonBody<wire::SetStandard>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Framework)?;
    let b = &body.value;
    let mut f = Fields::default();
    let name = f.check("name", Name::try_from(b.name.as_str()));
    let metric = f.check("metric", MetricName::try_from(b.metric.as_str()));
    let unit = f.check("unit", Name::try_from(b.unit.as_str()));
    let target = f.check("target", Target::try_from(b.target));
    let roles = roles(&mut f, "roles", &b.roles);
    f.finish()?;
    let (name, metric, unit, target, roles) = (
        valid!(name),
        valid!(metric),
        valid!(unit),
        valid!(target),
        valid!(roles),
    );
    let kind = match b.kind {
        wire::StandardKind::Quality => StandardKind::Quality,
        wire::StandardKind::Quantity => StandardKind::Quantity,
        wire::StandardKind::Behaviour => StandardKind::Behaviour,
    };
    let direction = match b.direction {
        wire::Direction::AtLeast => Direction::AtLeast,
        wire::Direction::AtMost => Direction::AtMost,
    };
    let (period, effective_from, ramp) = (period_kind(b.period), b.effective_from, ramp(&b.ramp));
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let id = StandardId::from_uuid(ctx.new_id("standard"));
    let written =
        execute::<StandardAggregate>(&app, &ctx, &stream("standard", id.as_uuid())?, |_| {
            Ok(StandardCommand::SetStandard {
                standard_id: id,
                name: name.clone(),
                metric: metric.clone(),
                kind,
                direction,
                unit: unit.clone(),
                period,
                target,
                roles: roles.clone(),
                effective_from,
                ramp: ramp.clone(),
            })
        })
        .await?;
    Ok(respond(true, Some(id.as_uuid()), written))
}

/// Revise a standard: a new version with a new target from a date. Periods
/// before that date stay judged against the earlier version.
#[utoipa::path(post, path = "/v1/standards/{standard_id}/revisions", tag = "standards",
    params(("standard_id" = uuid::Uuid, Path, description = "The standard")),
    request_body = wire::ReviseStandard,
    responses((status = 200, description = "A new version of the standard", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn revise_standard(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::ReviseStandard>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Framework)?;
    let id = path.uuid("standard_id")?;
    let b = &body.value;
    let mut f = Fields::default();
    let target = f.check("target", Target::try_from(b.target));
    let new_roles = match &b.roles {
        Some(list) => roles(&mut f, "roles", list).map(Some),
        None => Some(None),
    };
    f.finish()?;
    let (target, new_roles) = (valid!(target), valid!(new_roles));
    let (effective_from, new_ramp) = (b.effective_from, b.ramp.as_deref().map(ramp));
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = execute::<StandardAggregate>(&app, &ctx, &stream("standard", id)?, |_| {
        Ok(StandardCommand::ReviseStandard {
            target,
            effective_from,
            roles: new_roles.clone(),
            ramp: new_ramp.clone(),
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// Retire a standard from a date.
#[utoipa::path(post, path = "/v1/standards/{standard_id}/retirement", tag = "standards",
    params(("standard_id" = uuid::Uuid, Path, description = "The standard")),
    request_body = wire::RetireStandard,
    responses((status = 200, description = "The standard was retired", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn retire_standard(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RetireStandard>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Framework)?;
    let id = path.uuid("standard_id")?;
    let mut f = Fields::default();
    let reason = f.check("reason", NonEmptyText::try_from(body.value.reason.as_str()));
    f.finish()?;
    let (reason, effective_from) = (valid!(reason), body.value.effective_from);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = execute::<StandardAggregate>(&app, &ctx, &stream("standard", id)?, |_| {
        Ok(StandardCommand::RetireStandard {
            effective_from,
            reason: reason.clone(),
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// A competency's status, for commands on reps that name it.
pub(crate) async fn competency_status(
    app: &AppState,
    id: CompetencyId,
) -> Result<CompetencyStatus, ApiError> {
    Ok(
        load_fact::<CompetencyAggregate>(app, &stream("competency", id.as_uuid())?)
            .await?
            .state
            .status(),
    )
}

/// A standard's status, for commands on reps that name it.
pub(crate) async fn standard_status(
    app: &AppState,
    id: StandardId,
) -> Result<StandardStatus, ApiError> {
    Ok(
        load_fact::<StandardAggregate>(app, &stream("standard", id.as_uuid())?)
            .await?
            .state
            .status(),
    )
}
