//! The routes over the read models of the `growth` projection: rep profile,
//! growth timeline, team view, coaching impact, leader scorecard. "Today"
//! (for overdue items and the standing that follows) is the service clock's
//! date.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use serde::Serialize;
use trellis_commands::extract::Principal;
use trellis_commands::problem::ApiError;
use trellis_domain::{LeaderId, Period, PeriodKind, RepId, TeamId};
use trellis_projections::query::TimelineRowView;

use crate::access::{self, View};
use crate::params::{Params, PathIds};
use crate::{QueryState, read_error};

pub(crate) fn rep_not_found(rep_id: RepId) -> ApiError {
    ApiError::NotFound(format!(
        "no rep {rep_id} in the read models; if the rep joined a moment ago, the projection may \
         not have caught up yet: retry in a second"
    ))
}

/// `GET /v1/reps/{rep_id}` (and `/v1/reps/{rep_id}/profile`): the rep's
/// profile as of today.
pub async fn rep_profile(
    State(state): State<QueryState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
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

#[derive(Debug, Serialize)]
struct TimelineBody {
    rep_id: RepId,
    bucket: PeriodKind,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    as_of: NaiveDate,
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

/// `GET /v1/reps/{rep_id}/timeline?bucket=week|month|quarter&from=&to=`:
/// the periods overlapping the range (all of them when it is open).
pub async fn growth_timeline(
    State(state): State<QueryState>,
    Principal(claims): Principal,
    path: PathIds,
    params: Params,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
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

/// `GET /v1/teams/{team_id}/view?period=2026-03` (default: this month).
pub async fn team_view(
    State(state): State<QueryState>,
    Principal(claims): Principal,
    path: PathIds,
    params: Params,
) -> Result<Response, ApiError> {
    let team_id = TeamId::from_uuid(path.uuid("team_id")?);
    let today = state.today();
    let period = params
        .parsed(
            "period",
            "a week (2026-W05), a month (2026-03) or a quarter (2026-Q1)",
            |v| v.parse::<Period>().ok(),
        )?
        .unwrap_or_else(|| Period::containing(PeriodKind::Month, today));
    access::team_read(&claims, team_id)?;
    let view = state
        .read
        .team_view(team_id, period, today)
        .await
        .map_err(read_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no team {team_id}")))?;
    Ok(Json(view).into_response())
}

/// `GET /v1/teams/{team_id}/coaching-impact?weeks=4`.
pub async fn coaching_impact(
    State(state): State<QueryState>,
    Principal(claims): Principal,
    path: PathIds,
    params: Params,
) -> Result<Response, ApiError> {
    let team_id = TeamId::from_uuid(path.uuid("team_id")?);
    let weeks = params.number("weeks", 1, 26)?.unwrap_or(4) as u32;
    access::team_read(&claims, team_id)?;
    let today = state.today();
    let impact = state
        .read
        .coaching_impact(team_id, weeks, today)
        .await
        .map_err(read_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no team {team_id}")))?;
    Ok(Json(serde_json::json!({
        "team_id": team_id,
        "weeks": weeks,
        "as_of": today,
        "competencies": impact,
    }))
    .into_response())
}

/// `GET /v1/leaders/{leader_id}/scorecard?from=&to=` (default: the 90 days to today).
pub async fn leader_scorecard(
    State(state): State<QueryState>,
    Principal(claims): Principal,
    path: PathIds,
    params: Params,
) -> Result<Response, ApiError> {
    let leader_id = LeaderId::from_uuid(path.uuid("leader_id")?);
    let (from, to) = range(&params)?;
    access::leader_read(&claims, leader_id)?;
    let today = state.today();
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| to.checked_sub_days(Days::new(89)).unwrap_or(to));
    if to < from {
        return Err(ApiError::BadRequest(format!(
            "the query parameter from ({from}) is after to ({to}): the range must not end \
             before it starts"
        )));
    }
    let card = state
        .read
        .leader_scorecard(leader_id, from, to, today)
        .await
        .map_err(read_error)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no leader {leader_id}: a leader appears once assigned to a team or once they \
                 coach, give feedback or resolve a request"
            ))
        })?;
    Ok(Json(card).into_response())
}
