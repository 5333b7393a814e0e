//! The routes over the read models of the `growth` projection: rep profile,
//! growth timeline, team view, coaching impact, leader scorecard. "Today"
//! (for overdue items and the standing that follows) is the service clock's
//! date.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use serde::Serialize;
use trellis_domain::{LeaderId, Period, PeriodKind, RepId, TeamId};
use trellis_http::problem::{ApiError, Problem};
use trellis_projections::query::{CoachingImpact, TimelineRowView};
use utoipa::ToSchema;

use crate::access::{self, View};
use crate::params::Params;
use crate::schemas::{
    CoachingImpactSchema, LeaderScorecardSchema, ReadErrors, RepNotProjected, RepProfileSchema,
    TeamNotProjected, TeamViewSchema, TimelineRowSchema,
};
use crate::state::About;
use trellis_http::openapi::CommonErrors;

pub(crate) fn rep_not_found(rep_id: RepId) -> ApiError {
    ApiError::NotFound(format!(
        "no rep {rep_id} in the read models; if the rep joined a moment ago, the projection may \
         not have caught up yet: retry in a second"
    ))
}

pub(crate) fn team_not_found(team_id: TeamId) -> ApiError {
    ApiError::NotFound(format!(
        "no team {team_id} in the read models; if the team was formed a moment ago, the \
         projection may not have caught up yet: retry in a second"
    ))
}

pub(crate) fn leader_not_found(leader_id: LeaderId) -> ApiError {
    ApiError::NotFound(format!(
        "no leader {leader_id} in the read models: a leader appears once assigned to a team or \
         once they coach, give feedback or resolve a request; if that happened a moment ago, \
         the projection may not have caught up yet: retry in a second"
    ))
}

/// A rep's profile as of today.
///
/// `GET /v1/reps/{rep_id}`: the profile the read models hold, with the
/// standing and overdue action items as of the service's date.
#[utoipa::path(get, path = "/v1/reps/{rep_id}", operation_id = "get_rep", tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    responses(
        (status = 200, description = "The rep's profile as of today (the service's date); a rep \
            reading their own sees nothing from a private session", body = RepProfileSchema),
        RepNotProjected,
        ReadErrors, CommonErrors))]
pub async fn rep(about: About<RepId>) -> Result<Response, ApiError> {
    profile_today(about).await
}

/// A rep's profile as of today, addressed as the profile itself.
///
/// `GET /v1/reps/{rep_id}/profile`: the same answer as `GET /v1/reps/{rep_id}`.
#[utoipa::path(get, path = "/v1/reps/{rep_id}/profile", operation_id = "get_rep_profile",
    tag = "reps",
    params(("rep_id" = uuid::Uuid, Path, description = "The rep")),
    responses(
        (status = 200, description = "The rep's profile as of today, as `GET /v1/reps/{rep_id}` \
            answers it", body = RepProfileSchema),
        RepNotProjected,
        ReadErrors, CommonErrors))]
pub async fn rep_profile(about: About<RepId>) -> Result<Response, ApiError> {
    profile_today(about).await
}

/// The rep's profile as of today, as the caller may see it.
async fn profile_today(
    About {
        state,
        claims,
        id: rep_id,
    }: About<RepId>,
) -> Result<Response, ApiError> {
    access::rep_precheck(&claims, rep_id)?;
    let view = state
        .read
        .rep_profile(rep_id, state.today())
        .await
        .map_err(read_error)?
        .ok_or_else(|| rep_not_found(rep_id))?;
    let view = match access::rep_read(&claims, rep_id, view.profile.team_id)? {
        View::Full => view,
        View::OwnRecord => view.for_rep(),
    };
    Ok(Json(view).into_response())
}

/// A rep's growth timeline in periods of one kind.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GrowthTimeline)]
struct TimelineBody {
    #[schema(value_type = uuid::Uuid)]
    rep_id: RepId,
    #[schema(schema_with = crate::schemas::period_kind)]
    bucket: PeriodKind,
    /// The range asked for; null when open at that end.
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// Today (the service's date): what "overdue" is judged against.
    as_of: NaiveDate,
    /// The periods overlapping the range, oldest first.
    #[schema(value_type = Vec<TimelineRowSchema>)]
    rows: Vec<TimelineRowView>,
}

pub(crate) fn bucket(params: &Params) -> Result<PeriodKind, ApiError> {
    Ok(params
        .parsed("bucket", "week, month or quarter", |v| match v {
            "week" => Some(PeriodKind::Week),
            "month" => Some(PeriodKind::Month),
            "quarter" => Some(PeriodKind::Quarter),
            _ => None,
        })?
        .unwrap_or(PeriodKind::Month))
}

fn range(params: &Params) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ApiError> {
    let from = params.date("from")?;
    let to = params.date("to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(ApiError::BadRequest(format!(
            "the query parameter to ({to}) is before from ({from}): the range must not end \
             before it starts"
        )));
    }
    Ok((from, to))
}

/// A rep's growth timeline by week, month or quarter.
///
/// `GET /v1/reps/{rep_id}/timeline?bucket=week|month|quarter&from=&to=`:
/// the periods overlapping the range (all of them when it is open).
#[utoipa::path(get, path = "/v1/reps/{rep_id}/timeline", operation_id = "get_growth_timeline",
    tag = "reps",
    params(
        ("rep_id" = uuid::Uuid, Path, description = "The rep"),
        ("bucket" = Option<String>, Query, description = "The kind of period: `week`, `month` \
            (the default) or `quarter`", example = "month"),
        ("from" = Option<NaiveDate>, Query, description = "The first day of the range \
            (inclusive); absent: from the rep's first period"),
        ("to" = Option<NaiveDate>, Query, description = "The last day of the range (inclusive); \
            absent: to the rep's last period")),
    responses(
        (status = 200, description = "The periods of the timeline that overlap the range",
            body = TimelineBody),
        (status = 400, description = "A bad query parameter (`bucket`, `from` or `to`), named in \
            `detail`, or a range that ends before it starts",
            body = Problem, content_type = "application/problem+json"),
        RepNotProjected,
        ReadErrors, CommonErrors))]
pub async fn growth_timeline(about: About<RepId>, params: Params) -> Result<Response, ApiError> {
    let (state, claims, rep_id) = (about.state, about.claims, about.id);
    let bucket = bucket(&params)?;
    let (from, to) = range(&params)?;
    access::rep_precheck(&claims, rep_id)?;
    let profile = state
        .read
        .stored_profile(rep_id)
        .await
        .map_err(read_error)?
        .ok_or_else(|| rep_not_found(rep_id))?;
    access::rep_read(&claims, rep_id, profile.team_id)?;
    let today = state.today();
    let rows = state
        .read
        .growth_timeline(
            rep_id,
            bucket,
            from.unwrap_or(NaiveDate::MIN),
            to.unwrap_or(NaiveDate::MAX),
            today,
        )
        .await
        .map_err(read_error)?
        .ok_or_else(|| rep_not_found(rep_id))?;
    Ok(Json(TimelineBody {
        rep_id,
        bucket,
        from,
        to,
        as_of: today,
        rows,
    })
    .into_response())
}

/// A team's view of one period.
///
/// `GET /v1/teams/{team_id}/view?period=2026-03` (default: this month):
/// coaching coverage, attainment per standard, who needs support, new
/// hires' ramps, open improvement plans and support requests.
#[utoipa::path(get, path = "/v1/teams/{team_id}/view", operation_id = "get_team_view",
    tag = "teams",
    params(
        ("team_id" = uuid::Uuid, Path, description = "The team"),
        ("period" = Option<String>, Query, description = "A week (`2026-W05`), a month \
            (`2026-03`) or a quarter (`2026-Q1`); absent: the month of today", example = "2026-03")),
    responses(
        (status = 200, description = "The team in the period", body = TeamViewSchema),
        (status = 400, description = "`period` is not a week, a month or a quarter",
            body = Problem, content_type = "application/problem+json"),
        TeamNotProjected,
        ReadErrors, CommonErrors))]
pub async fn team_view(about: About<TeamId>, params: Params) -> Result<Response, ApiError> {
    let (state, claims, team_id) = (about.state, about.claims, about.id);
    let today = state.today();
    // The domain's own reason ("months run from 01 to 12", …) says what to fix.
    let period = match params.get("period") {
        None => Period::containing(PeriodKind::Month, today),
        Some(value) => value.parse::<Period>().map_err(|e| {
            ApiError::BadRequest(format!(
                "the query parameter period is {value:?}: {e}; send a week (2026-W05), a \
                 month (2026-03) or a quarter (2026-Q1)"
            ))
        })?,
    };
    access::team_read(&claims, team_id)?;
    let view = state
        .read
        .team_view(team_id, period, today)
        .await
        .map_err(read_error)?
        .ok_or_else(|| team_not_found(team_id))?;
    Ok(Json(view).into_response())
}

/// The body of `GET /v1/teams/{team_id}/coaching-impact`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TeamCoachingImpact)]
struct CoachingImpactBody {
    #[schema(value_type = uuid::Uuid)]
    team_id: TeamId,
    /// The window, in weeks, before and after each coaching week.
    weeks: u32,
    /// Today (the service's date): only coaching whose after-window ended before it counts.
    as_of: NaiveDate,
    /// One row per competency the team's reps were coached on.
    #[schema(value_type = Vec<CoachingImpactSchema>)]
    competencies: Vec<CoachingImpact>,
}

/// How a team's competencies moved after coaching on them.
///
/// `GET /v1/teams/{team_id}/coaching-impact?weeks=4`: per competency, mean
/// levels and attainment in the weeks before and after each coaching week.
#[utoipa::path(get, path = "/v1/teams/{team_id}/coaching-impact",
    operation_id = "get_coaching_impact", tag = "teams",
    params(
        ("team_id" = uuid::Uuid, Path, description = "The team"),
        ("weeks" = Option<u32>, Query, minimum = 1, maximum = 26, description = "The window \
            before and after each coaching week, in weeks (1 to 26; default 4)")),
    responses(
        (status = 200, description = "Per competency, levels and attainment before and after \
            coaching on it", body = CoachingImpactBody),
        (status = 400, description = "`weeks` is not a whole number from 1 to 26",
            body = Problem, content_type = "application/problem+json"),
        TeamNotProjected,
        ReadErrors, CommonErrors))]
pub async fn coaching_impact(about: About<TeamId>, params: Params) -> Result<Response, ApiError> {
    let (state, claims, team_id) = (about.state, about.claims, about.id);
    let weeks = params.number("weeks", 1, 26)?.unwrap_or(4) as u32;
    access::team_read(&claims, team_id)?;
    let today = state.today();
    let impact = state
        .read
        .coaching_impact(team_id, weeks, today)
        .await
        .map_err(read_error)?
        .ok_or_else(|| team_not_found(team_id))?;
    Ok(Json(CoachingImpactBody {
        team_id,
        weeks,
        as_of: today,
        competencies: impact,
    })
    .into_response())
}

/// The scorecard's range: `to` defaults to `today`, `from` to the 89 days
/// before `to`. Both given and out of order is [`range`]'s 400; the one left
/// to check is a `from` after today with no `to`, and the message says so
/// rather than naming a `to` the caller did not send.
fn scorecard_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let sent_to = to;
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| to.checked_sub_days(Days::new(89)).unwrap_or(to));
    if to < from {
        return Err(ApiError::BadRequest(match sent_to {
            Some(to) => format!(
                "the query parameter from ({from}) is after to ({to}): the range must not end \
                 before it starts"
            ),
            None => format!(
                "the query parameter from ({from}) is after today ({to}), where the range ends \
                 when to is not given: send a from on or before {to}, or send a to on or after \
                 {from} as well"
            ),
        }));
    }
    Ok((from, to))
}

/// A leader's scorecard over a range of days.
///
/// `GET /v1/leaders/{leader_id}/scorecard?from=&to=` (default: the 90 days
/// to today).
#[utoipa::path(get, path = "/v1/leaders/{leader_id}/scorecard",
    operation_id = "get_leader_scorecard", tag = "leaders",
    params(
        ("leader_id" = uuid::Uuid, Path, description = "The leader"),
        ("from" = Option<NaiveDate>, Query, description = "The first day (inclusive); absent: \
            89 days before `to`"),
        ("to" = Option<NaiveDate>, Query, description = "The last day (inclusive); absent: today")),
    responses(
        (status = 200, description = "The leader's scorecard over the range",
            body = LeaderScorecardSchema),
        (status = 400, description = "A bad date (`from` or `to`), named in `detail`, or a range \
            that ends before it starts (with `to` absent: a `from` after today)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such leader: a leader appears once assigned to a team \
            or once they coach, give feedback or resolve a request (or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn leader_scorecard(
    about: About<LeaderId>,
    params: Params,
) -> Result<Response, ApiError> {
    let (state, claims, leader_id) = (about.state, about.claims, about.id);
    let (from, to) = range(&params)?;
    access::leader_read(&claims, leader_id)?;
    let today = state.today();
    let (from, to) = scorecard_range(from, to, today)?;
    let card = state
        .read
        .leader_scorecard(leader_id, from, to, today)
        .await
        .map_err(read_error)?
        .ok_or_else(|| leader_not_found(leader_id))?;
    Ok(Json(card).into_response())
}

/// A read-side failure at the HTTP edge.
fn read_error(e: trellis_projections::Error) -> ApiError {
    use trellis_projections::Error as E;
    match e {
        E::Store(e) => ApiError::from(e),
        E::Unavailable(why) => ApiError::Unavailable(why),
        E::InvalidInput(message) => ApiError::BadRequest(message),
        other => ApiError::Internal(other.to_string()),
    }
}
