//! Collection reads for integrations: the teams and their leaders, the
//! reps (by team, by status), their open action items and support requests (by team, by rep,
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
use utoipa::{IntoParams, IntoResponses, ToSchema};
use uuid::Uuid;

use crate::access;
use crate::params::Params;
use crate::schemas::ReadErrors;
use crate::state::Reader;

/// Declares the page of a list: its items under a name of their own, and
/// the cursor of the next page.
macro_rules! page_of {
    ($(#[$doc:meta])* $page:ident { $items:ident: $item:ty }) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $page {
            pub $items: Vec<$item>,
            /// Pass as `after` for the next page; absent on the last.
            #[serde(skip_serializing_if = "Option::is_none")]
            #[schema(nullable = false)]
            pub next_after: Option<Uuid>,
        }
    };
}

/// The reps a list of their records covers, described once for the
/// OpenAPI document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RepScope {
    /// Only the records of this team's reps.
    team: Option<Uuid>,
    /// Only this rep's records.
    rep: Option<Uuid>,
}

/// The paging of every list, described once for the OpenAPI document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// The `next_after` of the previous page.
    after: Option<Uuid>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// The 400 of a list: a query parameter it cannot read, named in `detail`.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum BadQuery {
    /// A query parameter is not what the list takes (`after`, `limit` or a
    /// filter), named in `detail` with what it should be.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
}

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

page_of!(
    /// A page of teams.
    TeamsPage { teams: TeamItem }
);

/// The teams the caller may read.
///
/// `GET /v1/teams?after=&limit=`: every team for admins, auditors and
/// granted services; a leader's own teams for a leader.
#[utoipa::path(get, path = "/v1/teams", operation_id = "list_teams", tag = "teams",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of teams, in id order", body = TeamsPage),
        BadQuery, ReadErrors, CommonErrors))]
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

/// A leader as a list shows them: the teams they lead now.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaderListed {
    #[schema(value_type = uuid::Uuid)]
    pub leader_id: LeaderId,
    pub name: String,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub teams: Vec<TeamId>,
}

page_of!(
    /// A page of leaders.
    LeadersPage { leaders: LeaderListed }
);

/// The leaders of the teams the caller may read, with the teams they lead.
///
/// `GET /v1/leaders?team=&after=&limit=`: every leader for admins, auditors
/// and granted services; a leader lists the leaders of the teams they lead
/// (themselves included).
#[utoipa::path(get, path = "/v1/leaders", operation_id = "list_leaders", tag = "teams",
    params(
        ("team" = Option<uuid::Uuid>, Query, description = "Only the leaders of this team"),
        PageQuery),
    responses(
        (status = 200, description = "A page of leaders, in id order", body = LeadersPage),
        BadQuery, ReadErrors, CommonErrors))]
pub async fn leaders(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let listed = access::teams_listed(&reader.claims)?;
    let team = params.parsed("team", "a team id", |v| {
        Uuid::parse_str(v).ok().map(TeamId::from_uuid)
    })?;
    let teams: Vec<TeamDoc> = reader.state.read.teams().await.map_err(read_error)?;
    let mut by_leader: std::collections::BTreeMap<LeaderId, LeaderListed> = Default::default();
    for t in teams
        .into_iter()
        .filter(|t| listed.as_ref().is_none_or(|l| l.contains(&t.team_id)))
        .filter(|t| team.is_none_or(|only| only == t.team_id))
    {
        for (leader_id, name) in t.leaders {
            by_leader
                .entry(leader_id)
                .or_insert_with(|| LeaderListed {
                    leader_id,
                    name: name.to_string(),
                    teams: Vec::new(),
                })
                .teams
                .push(t.team_id);
        }
    }
    let items = by_leader
        .into_iter()
        .map(|(id, leader)| (id.as_uuid(), leader))
        .collect();
    let (leaders, next_after) = page(items, &params)?;
    Ok(Json(LeadersPage {
        leaders,
        next_after,
    })
    .into_response())
}

/// A rep as a list shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepItem {
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    #[schema(value_type = uuid::Uuid)]
    pub team_id: TeamId,
    pub name: String,
    pub role: String,
    pub start_date: NaiveDate,
    /// `active` or `departed`.
    pub status: String,
}

page_of!(
    /// A page of reps.
    RepsPage { reps: RepItem }
);

/// The reps the caller may read, by team and status.
///
/// `GET /v1/reps?team=&status=active|departed&after=&limit=`: from the read
/// models; a leader lists the reps of the teams they lead.
#[utoipa::path(get, path = "/v1/reps", operation_id = "list_reps", tag = "reps",
    params(
        ("team" = Option<uuid::Uuid>, Query, description = "Only the reps now on this team"),
        ("status" = Option<String>, Query, description = "`active` or `departed`"),
        PageQuery),
    responses(
        (status = 200, description = "A page of reps, in id order", body = RepsPage),
        BadQuery, ReadErrors, CommonErrors))]
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
                team_id: p.team_id,
                name: p.name.to_string(),
                role: p.role.to_string(),
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

page_of!(
    /// A page of the competency framework.
    CompetenciesPage { competencies: CompetencyItem }
);

/// The competency framework, rubrics included, as the log holds it now.
#[utoipa::path(get, path = "/v1/competencies", operation_id = "list_competencies",
    tag = "competencies",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of competencies, in id order", body = CompetenciesPage),
        BadQuery, ReadErrors, CommonErrors))]
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

page_of!(
    /// A page of standards.
    StandardsPage { standards: StandardItem }
);

/// The standards with their revisions, as the log holds them now.
#[utoipa::path(get, path = "/v1/standards", operation_id = "list_standards", tag = "standards",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of standards, in id order", body = StandardsPage),
        BadQuery, ReadErrors, CommonErrors))]
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

page_of!(
    /// A page of open action items.
    ActionItemsPage { action_items: ActionItemItem }
);

/// The open action items of the reps the caller may read.
///
/// `GET /v1/action-items?team=&rep=&status=open|overdue&after=&limit=`:
/// from the read models, overdue as of today.
#[utoipa::path(get, path = "/v1/action-items", operation_id = "list_action_items",
    tag = "coaching",
    params(RepScope, PageQuery,
        ("status" = Option<String>, Query, description = "`open` (the default: every open item) or `overdue`")),
    responses(
        (status = 200, description = "A page of open action items, in id order", body = ActionItemsPage),
        BadQuery, ReadErrors, CommonErrors))]
pub async fn action_items(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let overdue_only = two_way(&params, "open", "overdue")?.unwrap_or(false);
    let today = reader.state.today();
    let items = each_rep(&reader, &params, |p, items| {
        let open = p.open_action_items.iter();
        for i in open.filter(|i| !overdue_only || i.overdue_on(today)) {
            let (owner, leader_id) = match i.owner {
                Owner::Rep => ("rep", None),
                Owner::Leader(leader) => ("leader", Some(leader)),
            };
            let item = ActionItemItem {
                action_item_id: i.action_item_id.as_uuid(),
                rep_id: p.rep_id,
                team_id: p.team_id,
                description: i.description.to_string(),
                owner: owner.to_owned(),
                leader_id,
                due_on: i.due_on,
                overdue: i.overdue_on(today),
            };
            items.push((item.action_item_id, item));
        }
    })
    .await?;
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

page_of!(
    /// A page of support requests.
    SupportRequestsPage { support_requests: SupportRequestItem }
);

/// The support requests of the reps the caller may read.
///
/// `GET /v1/support-requests?team=&rep=&status=open|resolved&after=&limit=`.
#[utoipa::path(get, path = "/v1/support-requests", operation_id = "list_support_requests",
    tag = "support",
    params(RepScope, PageQuery,
        ("status" = Option<String>, Query, description = "`open` or `resolved`; absent: both")),
    responses(
        (status = 200, description = "A page of support requests, in id order", body = SupportRequestsPage),
        BadQuery, ReadErrors, CommonErrors))]
pub async fn support_requests(reader: Reader, params: Params) -> Result<Response, ApiError> {
    let resolved = two_way(&params, "open", "resolved")?;
    let items = each_rep(&reader, &params, |p, items| {
        let wanted = p
            .support_requests
            .iter()
            .filter(|r| resolved.is_none_or(|want| want == r.resolved_on.is_some()));
        for r in wanted {
            let item = SupportRequestItem {
                request_id: r.request_id.as_uuid(),
                rep_id: p.rep_id,
                team_id: p.team_id,
                category: serde_json::to_value(r.category).unwrap_or_default(),
                description: r.description.to_string(),
                raised_on: r.raised_on,
                acknowledged_on: r.acknowledged_on,
                resolved_on: r.resolved_on,
            };
            items.push((item.request_id, item));
        }
    })
    .await?;
    let (support_requests, next_after) = page(items, &params)?;
    Ok(Json(SupportRequestsPage {
        support_requests,
        next_after,
    })
    .into_response())
}

/// A `status` filter of two values: `Some(false)` for `first`, `Some(true)`
/// for `second`, `None` when absent.
fn two_way(params: &Params, first: &str, second: &str) -> Result<Option<bool>, ApiError> {
    params.parsed("status", &format!("{first} or {second}"), |v| {
        (v == first || v == second).then_some(v == second)
    })
}

/// The records `each` takes from every rep the caller may list (on the
/// `team` and of the `rep` asked for), keyed by their own ids.
async fn each_rep<T>(
    reader: &Reader,
    params: &Params,
    mut each: impl FnMut(&RepProfile, &mut Vec<(Uuid, T)>),
) -> Result<Vec<(Uuid, T)>, ApiError> {
    let (listed, team, rep) = scope(reader, params)?;
    let mut items = Vec::new();
    for profile in visible_profiles(reader, listed.as_deref(), team, rep).await? {
        each(&profile, &mut items);
    }
    Ok(items)
}

/// A read model's failure as the answer to a read.
pub(crate) fn read_error(e: trellis_projections::Error) -> ApiError {
    match e {
        trellis_projections::Error::Store(e) => ApiError::from(e),
        trellis_projections::Error::Unavailable(why) => ApiError::Unavailable(why),
        other => ApiError::Internal(other.to_string()),
    }
}
