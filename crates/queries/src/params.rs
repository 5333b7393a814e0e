//! Path and query parameters, parsed by hand so that every bad one is a 400
//! (or, for an id in the path, a 404) naming the parameter and saying what
//! would be right.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use trellis_domain::{LeaderId, RepId, TeamId};
use trellis_http::problem::ApiError;

/// The query string, as (name, value) pairs, percent-decoded.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        Params::parse(query)
    }
}

impl Params {
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut out = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "the query parameter {name:?} is not valid percent-encoded UTF-8"
                    ))
                })
            };
            out.push((decode(name)?, decode(value)?));
        }
        Ok(Params(out))
    }

    /// The value of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed with `parse`, or a 400 naming it and what was expected.
    pub fn parsed<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => parse(value)
                .map(Some)
                .ok_or_else(|| bad(name, value, expected)),
        }
    }

    pub fn required<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ApiError> {
        self.parsed(name, expected, parse)?.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the query parameter {name} is required: {expected}"
            ))
        })
    }

    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.parsed(name, "a date like 2026-03-31", |v| v.parse().ok())
    }

    pub fn instant(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.parsed(
            name,
            "an RFC 3339 instant like 2026-03-31T17:00:00Z, or a date like 2026-03-31 \
             (meaning the end of that day, UTC)",
            parse_instant,
        )
    }

    pub fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
        self.parsed(name, &format!("a whole number from {min} to {max}"), |v| {
            v.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
        })
    }
}

/// An RFC 3339 instant, or a date meaning the last microsecond of that day (UTC).
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let date: NaiveDate = text.parse().ok()?;
    Some(end_of_day(date))
}

/// The last microsecond of `date`, UTC.
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_micro_opt(23, 59, 59, 999_999)
        .expect("a valid time of day")
        .and_utc()
}

fn bad(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "the query parameter {name} is {value:?}; expected {expected}"
    ))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Path parameters: the extractor every API shares.
pub use trellis_http::extract::PathIds;

/// An id in the path, as the domain's id type: `PathId<RepId>` reads
/// `{rep_id}` (a 404 naming it when it is not a UUID).
#[derive(Debug, Clone, Copy)]
pub struct PathId<T>(pub T);

/// A domain id a route's path names, and the parameter that holds it.
pub trait PathParam: Sized {
    const NAME: &'static str;
    fn from_uuid(id: uuid::Uuid) -> Self;
}

impl PathParam for RepId {
    const NAME: &'static str = "rep_id";
    fn from_uuid(id: uuid::Uuid) -> Self {
        RepId::from_uuid(id)
    }
}

impl PathParam for TeamId {
    const NAME: &'static str = "team_id";
    fn from_uuid(id: uuid::Uuid) -> Self {
        TeamId::from_uuid(id)
    }
}

impl PathParam for LeaderId {
    const NAME: &'static str = "leader_id";
    fn from_uuid(id: uuid::Uuid) -> Self {
        LeaderId::from_uuid(id)
    }
}

impl<T: PathParam, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ids = PathIds::from_request_parts(parts, state).await?;
        Ok(PathId(T::from_uuid(ids.uuid(T::NAME)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_name_the_bad_parameter() {
        let p = Params::parse("at=2026-03-01T10%3A00%3A00%2B01%3A00&bucket=week&x=").unwrap();
        assert_eq!(p.get("bucket"), Some("week"));
        assert_eq!(p.get("x"), None);
        assert_eq!(
            p.instant("at").unwrap(),
            Some("2026-03-01T09:00:00Z".parse().unwrap())
        );
        let err = Params::parse("from=yesterday")
            .unwrap()
            .date("from")
            .unwrap_err()
            .to_string();
        assert!(err.contains("from") && err.contains("yesterday"), "{err}");
    }
}
