//! The given/when/then helper and the fixtures the cases are written with.

use chrono::{DateTime, NaiveDate, Utc};
use trellis_domain::{Aggregate, NonEmptyText, Rejection};
use uuid::Uuid;

/// Given these events in the stream, when this command arrives, then exactly
/// these events are recorded (or exactly this rejection is returned).
///
/// Accepted events are also folded into the state, so `evolve` is exercised on
/// everything `decide` can produce.
#[track_caller]
pub fn check<A: Aggregate>(
    given: Vec<A::Event>,
    when: A::Command,
    then: Result<Vec<A::Event>, Rejection>,
) {
    let state = A::replay(&given);
    let decided = A::decide(&state, when);
    assert_eq!(decided, then);
    if let Ok(events) = decided {
        let _ = events.iter().fold(state, A::evolve);
    }
}

/// A deterministic id of any kind: `id(7)` is `00000000-…-000000000007`.
pub fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(n))
}

pub fn date(iso: &str) -> NaiveDate {
    iso.parse().expect("a valid ISO date in a test")
}

/// "Now" for every rep test: 2026-03-16, midday UTC.
pub fn now() -> DateTime<Utc> {
    "2026-03-16T12:00:00Z".parse().expect("a valid instant")
}

pub fn today() -> NaiveDate {
    date("2026-03-16")
}

pub fn text(s: &str) -> NonEmptyText {
    NonEmptyText::try_from(s).expect("non-empty text in a test")
}

/// Parses any value type from a string in a test.
pub fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("a valid value in a test")
}
