//! `GET /reps/{id}/review?from=…&to=…`: the review packet for a period as a
//! printable page: the read side's packet (replayed from the log, with its
//! hash), the one `GET /v1/reps/{id}/review-packet` serves.

use std::fmt::Write;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use trellis_http::problem::ApiError;
use trellis_queries::packet::{render, review_packet};

use super::{RepVisit, lenient_date};
use crate::error::{PageError, sentence};
use crate::html::{esc, page};

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    from: Option<String>,
    to: Option<String>,
}

pub(crate) async fn handler(
    visit: RepVisit,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let (state, viewer, stored) = (visit.state, visit.viewer, visit.profile);
    let (today, rep_id) = (state.today(), stored.rep_id);
    // A period the page cannot show is said beside its field, with the
    // form to put it right: the reader stays on the page.
    let mut errors: Vec<(&str, String)> = Vec::new();
    let mut date = |field: &'static str, raw: Option<&str>| {
        let (date, error) = lenient_date(raw, field);
        errors.extend(error.map(|why| (field, why)));
        date
    };
    let asked_to = date("to", params.to.as_deref());
    let to = asked_to.unwrap_or(today).min(today);
    // A period that runs on past today is shown up to today, and says so.
    let cut = asked_to.filter(|asked| *asked > today);
    let from = date("from", params.from.as_deref())
        .unwrap_or_else(|| to.checked_sub_days(Days::new(90)).unwrap_or(to));
    if to < from {
        errors.push((
            "to",
            format!("The period ends ({to}) before it starts ({from}): pick an end on or after its start."),
        ));
    }
    let packet = if errors.is_empty() {
        match review_packet(state.reads(), viewer.claims(), rep_id, from, to).await {
            Ok(packet) => Some(packet),
            Err(ApiError::BadRequest(why)) => {
                errors.push(("from", sentence(&why)));
                None
            }
            Err(ApiError::NotFound(_)) => {
                errors.push((
                    "to",
                    format!(
                        "{} had not joined by {to}: pick an end on or after {}.",
                        stored.name, stored.start_date
                    ),
                ));
                None
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let field = |name: &str, label: &str, value: NaiveDate| {
        let error = errors.iter().find(|(f, _)| *f == name).map(|(_, why)| why);
        format!(
            "<label for=\"{name}\">{label}<input type=\"date\" id=\"{name}\" name=\"{name}\" \
             value=\"{value}\" max=\"{today}\"{}></label>{}",
            if error.is_some() {
                format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\"")
            } else {
                String::new()
            },
            error.map_or(String::new(), |why| format!(
                "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                esc(why)
            ))
        )
    };
    // The packet's name and role are the rep's at the period's end; a
    // rep renamed since is said so, so the page never names two people.
    let (name, role, now) = match &packet {
        Some((p, _)) if p.name != stored.name.as_str() => (
            p.name.clone(),
            p.role.clone(),
            format!(" (now {})", esc(stored.name.as_ref())),
        ),
        Some((p, _)) => (p.name.clone(), p.role.clone(), String::new()),
        None => (
            stored.name.to_string(),
            stored.role.to_string(),
            String::new(),
        ),
    };
    let title = format!("Review packet: {name}");
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Review packet</h1><p class=\"lead\"><a href=\"/reps/{rep_id}\">{}</a>{now}, {} · {from} to {to}</p>\
         <form class=\"asof noprint\" method=\"get\">{}{}\
         <button type=\"submit\">Show</button><button type=\"button\" data-print>Print</button></form>",
        esc(&name),
        esc(&role),
        field("from", "From", from),
        field("to", "To", to),
    );
    if let Some(asked) = cut {
        let _ = write!(
            b,
            "<p class=\"notice noprint\" role=\"status\">The period asked for ends on {asked}, \
             which is still ahead: the packet covers it up to today, {today}.</p>"
        );
    }
    let Some((packet, sha256)) = packet else {
        b.push_str("<p>Pick the period above to see its packet.</p>");
        return Ok((
            StatusCode::BAD_REQUEST,
            Html(page(&title, Some(viewer.signed()), &b)),
        )
            .into_response());
    };
    let labels = render::Labels::read(state.reads(), packet.team_id).await?;
    let document = render::document(&packet, &sha256, &labels);
    // The page has its own title.
    let body = match document.split_first() {
        Some((render::Block::Heading(1, _), rest)) => rest,
        _ => &document[..],
    };
    b.push_str(&render::html_body(body));
    if state.writes().is_some() && viewer.writes_for_leaders() {
        let _ = write!(
            b,
            "<p class=\"noprint\"><a class=\"button\" href=\"/reps/{rep_id}/reviews/new?from={from}&amp;to={to}\">\
             Record that the review was held on this packet</a></p>"
        );
    }
    Ok(Html(page(&title, Some(viewer.signed()), &b)).into_response())
}
