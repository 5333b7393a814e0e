//! `GET /reps/{id}/review?from=…&to=…`: the review packet for a period as a
//! printable page: the read side's packet (replayed from the log, with its
//! hash), the one `GET /v1/reps/{id}/review-packet` serves.

use std::fmt::Write;

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use chrono::Days;
use serde::Deserialize;
use trellis_queries::packet::{render, review_packet};

use super::{RepVisit, query_date};
use crate::error::PageError;
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
    let to = query_date(params.to.as_deref(), "to")?
        .unwrap_or(today)
        .min(today);
    let from = query_date(params.from.as_deref(), "from")?
        .unwrap_or_else(|| to.checked_sub_days(Days::new(90)).unwrap_or(to));
    if to < from {
        return Err(PageError::BadRequest(format!(
            "The period ends ({to}) before it starts ({from})."
        )));
    }
    let title = format!("Review packet: {}", stored.name);
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Review packet</h1><p class=\"lead\"><a href=\"/reps/{rep_id}\">{}</a>, {} · {from} to {to}</p>\
         <form class=\"asof noprint\" method=\"get\"><label for=\"from\">From<input type=\"date\" id=\"from\" name=\"from\" value=\"{from}\" max=\"{today}\"></label>\
         <label for=\"to\">To<input type=\"date\" id=\"to\" name=\"to\" value=\"{to}\" max=\"{today}\"></label>\
         <button type=\"submit\">Show</button><button type=\"button\" data-print>Print</button></form>",
        esc(stored.name.as_ref()),
        esc(stored.role.as_ref()),
    );
    let (packet, sha256) = review_packet(state.reads(), viewer.claims(), rep_id, from, to).await?;
    let document = render::document(&packet, &sha256);
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
