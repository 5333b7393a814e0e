//! Collection reads for integrations: the teams, the reps (by team, by
//! status), their open action items and support requests (by team, by rep,
//! by status) and the competency framework, a page at a time. Pages are in id
//! order; `after` is the last id of the previous page (`next_after`), so a
//! client pages through without missing or repeating one while others are
//! added. The same access rules as the single-record reads: a leader lists
//! the teams they lead and their reps, a rep no list at all.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;
use trellis_domain::competency::CompetencyState;
use trellis_domain::rep::Owner;
use trellis_domain::{LeaderId, RepId, TeamId};
use trellis_http::openapi::CommonErrors;
use trellis_http::problem::{ApiError, Problem};
use trellis_projections::growth::derive::{RepProfile, RepStatus};
use trellis_projections::growth::{TeamDoc, kinds};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access;
use crate::params::Params;
use crate::schemas::ReadErrors;
use crate::state::Reader;

/// The most items a page holds.
pub const MAX_LIMIT: u64 = 1000;
const DEFAULT_LIMIT: u64 = 100;

/// `items` in id order after `after`, at most `limit`, and the cursor of
/// the next page when there is one.
fn page<T>(mut items: Vec<(Uuid, T)>, params: &Params) -> Result<(Vec<T>, Option<Uuid>), ApiError> {
    let after = params.parsed("after", "an id returned as next_after", |v| {
        Uuid::parse_str(v).ok()
    })?;
    let limit = params
        .number("limit", 1, MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT) as usize;
    items.sort_by_key(|(id, _)| *id);
    let start = after.map_or(0, |a| items.partition_point(|(id, _)| *id <= a));
    let rest: Vec<(Uuid, T)> = items.into_iter().skip(start).collect();
    let next = (rest.len() > limit).then(|| rest[limit - 1].0);
    Ok((rest.into_iter().take(limit).map(|(_, t)| t).collect(), next))
}

/// A team as a list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamItem {
    #[schema(value_type = uuid::Uuid)]
    pub team_id: TeamId,
    pub name: String,
    pub leaders: Vec<LeaderItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeaderItem {
    #[schema(value_type = uuid::Uuid)]
    pub leader_id: LeaderId,
    pub name: String,
}

/// A page of teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamsPage {
    pub teams: Vec<TeamItem>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_after: Option<Uuid>,
}

/// The teams the caller may read.
///
/// `GET /v1/teams?after=&limit=`: every team for admins, auditors and
/// granted services; a leader's own teams for a leader.
#[utoipa::path(get, path = "/v1/teams", operation_id = "list_teams", tag = "teams",
    params(
        ("after" = Option<uuid::Uuid>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Teams per page (default 100)")),
    responses(
        (status = 200, description = "A page of teams, in id order", body = TeamsPage),
        (status = 400, description = "`after` or `limit` is not valid", body = Problem,
            content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn teams(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let listed = access::teams_listed(&reader.claims)?;
    let teams: Vec<TeamDoc> = reader.state.read.teams().await.map_err(read_error)?;
    let items = teams
        .into_iter()
        .filter(|t| listed.as_ref().is_none_or(|l| l.contains(&t.team_id)))
        .map(|t| {
            let item = TeamItem {
                team_id: t.team_id,
                name: t.name.to_string(),
                leaders: t
                    .leaders
                    .into_iter()
                    .map(|(leader_id, name)| LeaderItem {
                        leader_id,
                        name: name.to_string(),
                    })
                    .collect(),
            };
            (t.team_id.as_uuid(), item)
        })
        .collect();
    let (teams, next_after) = page(items, &params)?;
    Ok(Json(TeamsPage { teams, next_after }).into_response())
}

/// A rep as a list shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepItem {
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    pub name: String,
    pub role: String,
    #[schema(value_type = uuid::Uuid)]
    pub team_id: TeamId,
    pub start_date: NaiveDate,
    /// `active` or `departed`.
    pub status: String,
}

/// A page of reps.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepsPage {
    pub reps: Vec<RepItem>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_after: Option<Uuid>,
}

/// The reps the caller may read, by team and status.
///
/// `GET /v1/reps?team=&status=active|departed&after=&limit=`: from the read
/// models; a leader lists the reps of the teams they lead.
#[utoipa::path(get, path = "/v1/reps", operation_id = "list_reps", tag = "reps",
    params(
        ("team" = Option<uuid::Uuid>, Query, description = "Only the reps now on this team"),
        ("status" = Option<String>, Query, description = "`active` or `departed`"),
        ("after" = Option<uuid::Uuid>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Reps per page (default 100)")),
    responses(
        (status = 200, description = "A page of reps, in id order", body = RepsPage),
        (status = 400, description = "A bad query parameter, named in `detail`", body = Problem,
            content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn reps(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let (listed, team, _) = scope(&reader, &params)?;
    let status = params.parsed("status", "active or departed", |v| match v {
        "active" => Some(RepStatus::Active),
        "departed" => Some(RepStatus::Departed),
        _ => None,
    })?;
    let profiles = visible_profiles(&reader, listed.as_deref(), team, None).await?;
    let items = profiles
        .into_iter()
        .filter(|p| status.is_none_or(|s| s == p.status))
        .map(|p| {
            let item = RepItem {
                rep_id: p.rep_id,
                name: p.name.to_string(),
                role: p.role.to_string(),
                team_id: p.team_id,
                start_date: p.start_date,
                status: match p.status {
                    RepStatus::Active => "active",
                    RepStatus::Departed => "departed",
                }
                .to_owned(),
            };
            (p.rep_id.as_uuid(), item)
        })
        .collect();
    let (reps, next_after) = page(items, &params)?;
    Ok(Json(RepsPage { reps, next_after }).into_response())
}

/// A competency of the framework, with its rubric.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompetencyItem {
    pub competency_id: Uuid,
    pub name: String,
    pub description: String,
    /// The five levels' descriptions, level 1 first.
    pub rubric: Vec<String>,
    pub retired: bool,
}

/// A page of the competency framework.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompetenciesPage {
    pub competencies: Vec<CompetencyItem>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_after: Option<Uuid>,
}

/// The competency framework, rubrics included, as the log holds it now.
#[utoipa::path(get, path = "/v1/competencies", operation_id = "list_competencies",
    tag = "competencies",
    params(
        ("after" = Option<uuid::Uuid>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Competencies per page (default 100)")),
    responses(
        (status = 200, description = "A page of competencies, in id order", body = CompetenciesPage),
        (status = 400, description = "`after` or `limit` is not valid", body = Problem,
            content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn competencies(reader: Reader, params: Params) -> Result<Response, ApiError> {
    access::framework_read(&reader.claims)?;
    let framework = crate::framework::competencies(reader.state.http.store()).await?;
    let items = framework
        .into_iter()
        .filter_map(|c| match c {
            CompetencyState::Defined {
                competency_id,
                name,
                description,
                rubric,
                retired,
            } => Some((
                competency_id.as_uuid(),
                CompetencyItem {
                    competency_id: competency_id.as_uuid(),
                    name: name.to_string(),
                    description: description.to_string(),
                    rubric: rubric.levels().iter().map(ToString::to_string).collect(),
                    retired,
                },
            )),
            CompetencyState::NotDefined => None,
        })
        .collect();
    let (competencies, next_after) = page(items, &params)?;
    Ok(Json(CompetenciesPage {
        competencies,
        next_after,
    })
    .into_response())
}

/// A standard with every version of its target, roles and ramp.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandardItem {
    pub standard_id: Uuid,
    pub name: String,
    pub metric: String,
    /// `quality`, `quantity` or `behaviour`.
    #[schema(value_type = String)]
    pub kind: serde_json::Value,
    /// `at_least` or `at_most`.
    #[schema(value_type = String)]
    pub direction: serde_json::Value,
    pub unit: String,
    /// `week`, `month` or `quarter`.
    #[schema(value_type = String)]
    pub period: serde_json::Value,
    /// Oldest first: each with `version`, `target`, `roles`, `ramp` and
    /// `effective_from`.
    #[schema(value_type = Vec<Object>)]
    pub versions: Vec<serde_json::Value>,
    /// From when the standard no longer applies, if retired.
    #[schema(nullable = true)]
    pub retired_from: Option<NaiveDate>,
}

/// A page of standards.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandardsPage {
    pub standards: Vec<StandardItem>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_after: Option<Uuid>,
}

/// The standards with their revisions, as the log holds them now.
#[utoipa::path(get, path = "/v1/standards", operation_id = "list_standards", tag = "standards",
    params(
        ("after" = Option<uuid::Uuid>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Standards per page (default 100)")),
    responses(
        (status = 200, description = "A page of standards, in id order", body = StandardsPage),
        (status = 400, description = "`after` or `limit` is not valid", body = Problem,
            content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn standards(reader: Reader, params: Params) -> Result<Response, ApiError> {
    access::framework_read(&reader.claims)?;
    let items = crate::framework::standards(reader.state.http.store())
        .await?
        .into_iter()
        .map(|s| {
            let item = StandardItem {
                standard_id: s.standard_id.as_uuid(),
                name: s.name.to_string(),
                metric: s.metric.to_string(),
                kind: value(&s.kind),
                direction: value(&s.direction),
                unit: s.unit.to_string(),
                period: value(&s.period),
                versions: s.versions.iter().map(value).collect(),
                retired_from: s.retired.as_ref().map(|(from, _)| *from),
            };
            (s.standard_id.as_uuid(), item)
        })
        .collect();
    let (standards, next_after) = page(items, &params)?;
    Ok(Json(StandardsPage {
        standards,
        next_after,
    })
    .into_response())
}

/// A domain value as the JSON it already knows how to be.
fn value(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Which reps a list of reps' records covers: the teams the caller may
/// list (`None`: all), and the `team` and `rep` asked for.
type Scope = (Option<Vec<TeamId>>, Option<TeamId>, Option<RepId>);

fn scope(reader: &Reader, params: &Params) -> Result<Scope, ApiError> {
    let listed = access::teams_listed(&reader.claims)?;
    let team = params
        .parsed("team", "a team id", |v| Uuid::parse_str(v).ok())?
        .map(TeamId::from_uuid);
    let rep = params
        .parsed("rep", "a rep id", |v| Uuid::parse_str(v).ok())?
        .map(RepId::from_uuid);
    if let (Some(team), Some(listed)) = (team, &listed)
        && !listed.contains(&team)
    {
        return Err(ApiError::Forbidden(
            "you do not lead this team; a leader lists only their own teams' records".into(),
        ));
    }
    Ok((listed, team, rep))
}

/// The profiles of the reps the caller may list, on `team` and of `rep`
/// when asked.
async fn visible_profiles(
    reader: &Reader,
    listed: Option<&[TeamId]>,
    team: Option<TeamId>,
    rep: Option<RepId>,
) -> Result<Vec<RepProfile>, ApiError> {
    let profiles: Vec<RepProfile> = reader
        .state
        .read
        .all(kinds::REP_PROFILE)
        .await
        .map_err(read_error)?;
    Ok(profiles
        .into_iter()
        .filter(|p| listed.is_none_or(|l| l.contains(&p.team_id)))
        .filter(|p| team.is_none_or(|t| t == p.team_id))
        .filter(|p| rep.is_none_or(|r| r == p.rep_id))
        .collect())
}

/// An open action item as a list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionItemItem {
    pub action_item_id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    #[schema(value_type = uuid::Uuid)]
    pub team_id: TeamId,
    pub description: String,
    /// `rep`, or `leader` (then `leader_id` says who).
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<uuid::Uuid>)]
    pub leader_id: Option<LeaderId>,
    pub due_on: NaiveDate,
    /// Due before today (the service's date) and still open.
    pub overdue: bool,
}

/// A page of open action items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionItemsPage {
    pub action_items: Vec<ActionItemItem>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_after: Option<Uuid>,
}

/// The open action items of the reps the caller may read.
///
/// `GET /v1/action-items?team=&rep=&status=open|overdue&after=&limit=`:
/// from the read models, overdue as of today.
#[utoipa::path(get, path = "/v1/action-items", operation_id = "list_action_items",
    tag = "coaching",
    params(
        ("team" = Option<uuid::Uuid>, Query, description = "Only the items of this team's reps"),
        ("rep" = Option<uuid::Uuid>, Query, description = "Only this rep's items"),
        ("status" = Option<String>, Query, description = "`open` (the default: every open item) or `overdue`"),
        ("after" = Option<uuid::Uuid>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Items per page (default 100)")),
    responses(
        (status = 200, description = "A page of open action items, in id order", body = ActionItemsPage),
        (status = 400, description = "A bad query parameter, named in `detail`", body = Problem,
            content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn action_items(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let (listed, team, rep) = scope(&reader, &params)?;
    let overdue_only = params
        .parsed("status", "open or overdue", |v| match v {
            "open" => Some(false),
            "overdue" => Some(true),
            _ => None,
        })?
        .unwrap_or(false);
    let today = reader.state.today();
    let mut items = Vec::new();
    for p in visible_profiles(&reader, listed.as_deref(), team, rep).await? {
        for i in &p.open_action_items {
            let overdue = i.due_on < today;
            if overdue_only && !overdue {
                continue;
            }
            let (owner, leader_id) = match i.owner {
                Owner::Rep => ("rep", None),
                Owner::Leader(leader) => ("leader", Some(leader)),
            };
            items.push((
                i.action_item_id.as_uuid(),
                ActionItemItem {
                    action_item_id: i.action_item_id.as_uuid(),
                    rep_id: p.rep_id,
                    team_id: p.team_id,
                    description: i.description.to_string(),
                    owner: owner.to_owned(),
                    leader_id,
                    due_on: i.due_on,
                    overdue,
                },
            ));
        }
    }
    let (action_items, next_after) = page(items, &params)?;
    Ok(Json(ActionItemsPage {
        action_items,
        next_after,
    })
    .into_response())
}

/// A support request as a list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportRequestItem {
    pub request_id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    #[schema(value_type = uuid::Uuid)]
    pub team_id: TeamId,
    /// `leads`, `tools`, `training`, `process` or `other`.
    #[schema(value_type = String)]
    pub category: serde_json::Value,
    pub description: String,
    pub raised_on: NaiveDate,
    #[schema(nullable = true)]
    pub acknowledged_on: Option<NaiveDate>,
    #[schema(nullable = true)]
    pub resolved_on: Option<NaiveDate>,
}

/// A page of support requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportRequestsPage {
    pub support_requests: Vec<SupportRequestItem>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_after: Option<Uuid>,
}

/// The support requests of the reps the caller may read.
///
/// `GET /v1/support-requests?team=&rep=&status=open|resolved&after=&limit=`.
#[utoipa::path(get, path = "/v1/support-requests", operation_id = "list_support_requests",
    tag = "support",
    params(
        ("team" = Option<uuid::Uuid>, Query, description = "Only the requests of this team's reps"),
        ("rep" = Option<uuid::Uuid>, Query, description = "Only this rep's requests"),
        ("status" = Option<String>, Query, description = "`open` or `resolved`; absent: both"),
        ("after" = Option<uuid::Uuid>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Requests per page (default 100)")),
    responses(
        (status = 200, description = "A page of support requests, in id order", body = SupportRequestsPage),
        (status = 400, description = "A bad query parameter, named in `detail`", body = Problem,
            content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn support_requests(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let (listed, team, rep) = scope(&reader, &params)?;
    let resolved = params.parsed("status", "open or resolved", |v| match v {
        "open" => Some(false),
        "resolved" => Some(true),
        _ => None,
    })?;
    let mut items = Vec::new();
    for p in visible_profiles(&reader, listed.as_deref(), team, rep).await? {
        for r in &p.support_requests {
            if resolved.is_some_and(|want| want != r.resolved_on.is_some()) {
                continue;
            }
            items.push((
                r.request_id.as_uuid(),
                SupportRequestItem {
                    request_id: r.request_id.as_uuid(),
                    rep_id: p.rep_id,
                    team_id: p.team_id,
                    category: serde_json::to_value(r.category).unwrap_or_default(),
                    description: r.description.to_string(),
                    raised_on: r.raised_on,
                    acknowledged_on: r.acknowledged_on,
                    resolved_on: r.resolved_on,
                },
            ));
        }
    }
    let (support_requests, next_after) = page(items, &params)?;
    Ok(Json(SupportRequestsPage {
        support_requests,
        next_after,
    })
    .into_response())
}

fn read_error(e: trellis_projections::Error) -> ApiError {
    match e {
        trellis_projections::Error::Store(e) => ApiError::from(e),
        other => ApiError::Internal(other.to_string()),
    }
}
