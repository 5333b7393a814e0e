//! The competency framework and the standards reps are measured against.
//! Each handler names its body; the conversion below it parses the body into
//! the competency's or standard's command.

use axum::response::Response;
use trellis_domain::standard::RampStep;
use trellis_domain::values::taken_by;
use trellis_domain::{
    CompetencyAggregate, CompetencyCommand, CompetencyId, Direction, MetricName, Name,
    NonEmptyText, PeriodKind, Role, Rubric, StandardAggregate, StandardCommand, StandardId,
    StandardKind, StandardState, Target,
};
use uuid::Uuid;

use crate::edge::{Edge, Entity, WriteRequest, field};
use crate::policy::Scope;
use crate::respond::WriteErrors;
use crate::state::CommandState;
use crate::wire::{self, Recorded};
use crate::write::states_of;
use trellis_http::extract::Judged;
use trellis_http::problem::{ApiError, Fields};
use trellis_http::valid;

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
    responses((status = 201, description = "The competency was defined", body = Recorded), WriteErrors))]
pub async fn define_competency(
    request: WriteRequest<wire::DefineCompetency>,
) -> Result<Response, ApiError> {
    request
        .admin_given::<CompetencyAggregate, _, _>(Scope::Framework, Entity::New, with_name_taken)
        .await
}

/// Revise a competency's name, description and rubric.
#[utoipa::path(put, path = "/v1/competencies/{competency_id}", tag = "competency framework",
    params(("competency_id" = uuid::Uuid, Path, description = "The competency")),
    request_body = wire::DefineCompetency,
    responses((status = 200, description = "The competency was revised", body = Recorded), WriteErrors))]
pub async fn revise_competency(
    request: WriteRequest<wire::DefineCompetency>,
) -> Result<Response, ApiError> {
    request
        .admin_given::<CompetencyAggregate, _, _>(Scope::Framework, Entity::Named, with_name_taken)
        .await
}

/// `command` with the name of a competency in use other than `competency`
/// that is already called the name it gives (ignoring case and surrounding
/// space), folded from the competencies' streams (the domain says which
/// name is in use, `CompetencyState::name_in_use`): leaders pick a
/// competency by its name, in forms and in the framework.
async fn with_name_taken(
    app: CommandState,
    competency: Uuid,
    mut command: CompetencyCommand,
) -> Result<CompetencyCommand, ApiError> {
    let (CompetencyCommand::DefineCompetency {
        name, name_taken, ..
    }
    | CompetencyCommand::ReviseCompetency {
        name, name_taken, ..
    }) = &mut command
    else {
        return Ok(command);
    };
    let states = states_of::<CompetencyAggregate>(app.store()).await?;
    let in_use = states
        .iter()
        .filter_map(|(id, state)| Some((*id, state.name_in_use()?.clone())));
    *name_taken = taken_by(in_use, &competency, name);
    Ok(command)
}

/// The same body defines a new competency or revises the one the path names.
impl TryFrom<Edge<'_, wire::DefineCompetency>> for CompetencyCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::DefineCompetency>) -> Result<Self, ApiError> {
        let b = edge.body;
        let mut f = Fields::default();
        let name = f.check("name", Name::try_from(b.name.as_str()));
        let description = f.check(
            "description",
            NonEmptyText::try_from(b.description.as_str()),
        );
        let rubric = rubric(&mut f, &b.rubric);
        f.finish()?;
        let (name, description, rubric) = (valid!(name), valid!(description), valid!(rubric));
        Ok(match edge.entity {
            // Whether the name is taken is read before the command
            // executes (`with_name_taken`).
            Entity::New => CompetencyCommand::DefineCompetency {
                competency_id: CompetencyId::from_uuid(edge.id),
                name,
                description,
                rubric,
                name_taken: None,
            },
            Entity::Named => CompetencyCommand::ReviseCompetency {
                name,
                description,
                rubric,
                name_taken: None,
            },
        })
    }
}

/// Retire a competency: no new feedback or assessments on it.
#[utoipa::path(post, path = "/v1/competencies/{competency_id}/retirement", tag = "competency framework",
    params(("competency_id" = uuid::Uuid, Path, description = "The competency")),
    request_body = wire::RetireCompetency,
    responses((status = 200, description = "The competency was retired", body = Recorded), WriteErrors))]
pub async fn retire_competency(
    request: WriteRequest<wire::RetireCompetency>,
) -> Result<Response, ApiError> {
    request
        .admin::<CompetencyAggregate>(Scope::Framework, Entity::Named)
        .await
}

impl TryFrom<Edge<'_, wire::RetireCompetency>> for CompetencyCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RetireCompetency>) -> Result<Self, ApiError> {
        let reason = field("reason", NonEmptyText::try_from(edge.body.reason.as_str()))?;
        Ok(CompetencyCommand::RetireCompetency { reason })
    }
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

/// The ramp's steps, each percentage checked with the other fields
/// (`ramp[2].percent_of_target` names the third).
fn ramp(f: &mut Fields, steps: Vec<wire::RampStep>) -> Option<Vec<RampStep>> {
    let steps: Vec<Option<RampStep>> = steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let percent = f.check(
                format!("ramp[{i}].percent_of_target"),
                s.percent_of_target.into_result(),
            )?;
            Some(RampStep {
                period_index: s.period_index,
                percent_of_target: percent,
            })
        })
        .collect();
    steps.into_iter().collect()
}

/// A standard's target: a number, and one the domain accepts.
fn target(given: Judged<f64>) -> Result<Target, String> {
    Target::try_from(given.into_result()?).map_err(|e| e.to_string())
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
    responses((status = 201, description = "The standard was set (version 1)", body = Recorded), WriteErrors))]
pub async fn set_standard(request: WriteRequest<wire::SetStandard>) -> Result<Response, ApiError> {
    request
        .admin_given::<StandardAggregate, _, _>(Scope::Framework, Entity::New, with_others)
        .await
}

/// `command` with every other standard, folded from the standards'
/// streams: the domain picks those of its metric and kind of period, and
/// refuses two that would judge one measurement of a rep twice.
async fn with_others(
    app: CommandState,
    _standard: Uuid,
    mut command: StandardCommand,
) -> Result<StandardCommand, ApiError> {
    let (StandardCommand::SetStandard { others, .. }
    | StandardCommand::ReviseStandard { others, .. }) = &mut command
    else {
        return Ok(command);
    };
    *others = states_of::<StandardAggregate>(app.store())
        .await?
        .into_values()
        .filter_map(|state| match state {
            StandardState::Set(s) => Some(s),
            StandardState::NotSet => None,
        })
        .collect();
    Ok(command)
}

impl TryFrom<Edge<'_, wire::SetStandard>> for StandardCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::SetStandard>) -> Result<Self, ApiError> {
        let b = edge.body;
        let mut f = Fields::default();
        // In the order of the form, so the answer's summary reads as it.
        let name = f.check("name", Name::try_from(b.name.as_str()));
        let metric = f.check("metric", MetricName::try_from(b.metric.as_str()));
        let kind = f.check("kind", b.kind.into_result());
        let direction = f.check("direction", b.direction.into_result());
        let target = f.check("target", target(b.target));
        let unit = f.check(
            "unit",
            Name::try_from(b.unit.as_str()).map_err(|e| e.about("unit")),
        );
        let period = f.check("period", b.period.into_result());
        let roles = roles(&mut f, "roles", &b.roles);
        let effective_from = f.check("effective_from", b.effective_from.into_result());
        let ramp = ramp(&mut f, b.ramp);
        f.finish()?;
        Ok(StandardCommand::SetStandard {
            standard_id: StandardId::from_uuid(edge.id),
            name: valid!(name),
            metric: valid!(metric),
            kind: match valid!(kind) {
                wire::StandardKind::Quality => StandardKind::Quality,
                wire::StandardKind::Quantity => StandardKind::Quantity,
                wire::StandardKind::Behaviour => StandardKind::Behaviour,
            },
            direction: match valid!(direction) {
                wire::Direction::AtLeast => Direction::AtLeast,
                wire::Direction::AtMost => Direction::AtMost,
            },
            unit: valid!(unit),
            period: period_kind(valid!(period)),
            target: valid!(target),
            roles: valid!(roles),
            effective_from: valid!(effective_from).0,
            ramp: valid!(ramp),
            // Read before the command executes (`with_others`).
            others: vec![],
        })
    }
}

/// Revise a standard: a new version with a new target from a date. Periods
/// before that date stay judged against the earlier version.
#[utoipa::path(post, path = "/v1/standards/{standard_id}/revisions", tag = "standards",
    params(("standard_id" = uuid::Uuid, Path, description = "The standard")),
    request_body = wire::ReviseStandard,
    responses((status = 200, description = "A new version of the standard", body = Recorded), WriteErrors))]
pub async fn revise_standard(
    request: WriteRequest<wire::ReviseStandard>,
) -> Result<Response, ApiError> {
    request
        .admin_given::<StandardAggregate, _, _>(Scope::Framework, Entity::Named, with_others)
        .await
}

impl TryFrom<Edge<'_, wire::ReviseStandard>> for StandardCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::ReviseStandard>) -> Result<Self, ApiError> {
        let b = edge.body;
        let mut f = Fields::default();
        let target = f.check("target", target(b.target));
        let new_roles = match &b.roles {
            Some(list) => roles(&mut f, "roles", list).map(Some),
            None => Some(None),
        };
        let effective_from = f.check("effective_from", b.effective_from.into_result());
        let new_ramp = match b.ramp {
            Some(steps) => ramp(&mut f, steps).map(Some),
            None => Some(None),
        };
        f.finish()?;
        Ok(StandardCommand::ReviseStandard {
            target: valid!(target),
            effective_from: valid!(effective_from).0,
            roles: valid!(new_roles),
            ramp: valid!(new_ramp),
            // Read before the command executes (`with_others`).
            others: vec![],
        })
    }
}

/// Retire a standard from a date.
#[utoipa::path(post, path = "/v1/standards/{standard_id}/retirement", tag = "standards",
    params(("standard_id" = uuid::Uuid, Path, description = "The standard")),
    request_body = wire::RetireStandard,
    responses((status = 200, description = "The standard was retired", body = Recorded), WriteErrors))]
pub async fn retire_standard(
    request: WriteRequest<wire::RetireStandard>,
) -> Result<Response, ApiError> {
    request
        .admin::<StandardAggregate>(Scope::Framework, Entity::Named)
        .await
}

impl TryFrom<Edge<'_, wire::RetireStandard>> for StandardCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RetireStandard>) -> Result<Self, ApiError> {
        let b = edge.body;
        Ok(StandardCommand::RetireStandard {
            effective_from: b.effective_from,
            reason: field("reason", NonEmptyText::try_from(b.reason.as_str()))?,
        })
    }
}
