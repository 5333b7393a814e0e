//! One module per page, and what they share.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::PageError;

pub(crate) mod audit;
pub(crate) mod home;
pub(crate) mod leader;
pub(crate) mod packet;
pub(crate) mod rep;
pub(crate) mod team;

/// A path id: 404 when it is not a UUID (no such page can exist).
pub(crate) fn path_id(raw: &str, what: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| {
        PageError::NotFound(format!(
            "{raw:?} is not a {what} id; ids are UUIDs, as the links in Trellis give them."
        ))
    })
}

/// An optional `YYYY-MM-DD` query value; a bad one is a 400 that says why.
pub(crate) fn query_date(raw: Option<&str>, field: &str) -> Result<Option<NaiveDate>, PageError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                PageError::BadRequest(format!(
                    "{field} must be a date written YYYY-MM-DD, e.g. 2026-03-16; {text:?} is not."
                ))
            }),
    }
}

/// Days between two dates, in words.
pub(crate) fn days_ago(from: NaiveDate, today: NaiveDate) -> String {
    match (today - from).num_days() {
        0 => "today".to_owned(),
        1 => "1 day ago".to_owned(),
        n if n < 0 => format!("in {} days", -n),
        n => format!("{n} days ago"),
    }
}
