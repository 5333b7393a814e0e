//! Time travel: a rep's state as of any instant, computed by replaying the
//! rep's stream (and the standards it is judged against), never from the
//! projection's tables.
//!
//! - **As it happened** ([`TimeBasis::Business`]): the events whose business
//!   time (`occurred_at`) is at or before the instant, whenever they were
//!   recorded. A correction recorded later applies only if its own business
//!   time is at or before the instant.
//! - **As it was known then** ([`TimeBasis::Recorded`]): the events recorded
//!   (`recorded_at`) at or before the instant.
//!
//! The fold is the `growth` projection's own ([`Growth`]), fed one rep's
//! events and the standards' (filtered the same way), so the state as of now
//! is the live profile. Events are read in pages and each is decoded once,
//! its payload moved rather than copied. Decoded streams are kept in a
//! bounded [`StreamCache`]: the log is append-only, so a later query reads
//! only what was appended since (usually nothing) and folds the rest from
//! memory — a 10,000-event history is a fold of a few milliseconds, not a
//! re-read of the stream.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use trellis_domain::{RepId, TeamId};
use trellis_eventstore::{EventStore, Metadata};
use trellis_http::auth::Claims;
use trellis_http::problem::{ApiError, Problem};
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::growth::{GrowthTimeline, RepFeedback, RepProfile};
use trellis_projections::projection::{Envelope, Projection};
use trellis_projections::query::{RepProfileView, rep_profile};
use utoipa::ToSchema;

use crate::access::View;
use crate::params::Params;
use crate::schemas::{ReadErrors, RepProfileSchema};
use crate::state::{About, QueryState};
use crate::streams::{RepStream, StreamCache, category_events, envelope, readable_stream};
use trellis_http::openapi::CommonErrors;

/// Which of an event's two times decides whether it counts at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// As it happened: business time, `occurred_at`.
    Business,
    /// As it was known then: recorded time, `recorded_at`.
    Recorded,
}

impl TimeBasis {
    /// Whether an event with `metadata` counts as of `at`.
    pub fn includes(self, metadata: &Metadata, at: DateTime<Utc>) -> bool {
        match self {
            TimeBasis::Business => metadata.occurred_at <= at,
            TimeBasis::Recorded => metadata.recorded_at <= at,
        }
    }

    fn includes_envelope(self, e: &Envelope, at: DateTime<Utc>) -> bool {
        match self {
            TimeBasis::Business => e.occurred_at <= at,
            TimeBasis::Recorded => e.recorded_at <= at,
        }
    }
}

/// One rep's replay: the `growth` fold over that rep's events and the standards.
#[derive(Debug)]
pub struct RepReplay {
    rep_id: RepId,
    growth: Growth,
}

impl RepReplay {
    pub fn new(rep_id: RepId, settings: GrowthSettings) -> Self {
        RepReplay {
            rep_id,
            growth: Growth::new(settings),
        }
    }

    /// Folds one event (the rep's, or a standard's).
    pub fn apply(&mut self, event: &Envelope) {
        self.growth.apply(event);
    }

    /// The profile and timeline the events so far give, if the rep had joined.
    pub fn derive(&self) -> Option<(RepProfile, GrowthTimeline)> {
        self.growth.derive(self.rep_id)
    }

    /// The feedback the events so far gave, if the rep had joined.
    pub fn feedback(&self) -> Option<RepFeedback> {
        self.growth.feedback(self.rep_id)
    }

    /// The replayed rep's facts (corrections applied).
    pub fn facts(&self) -> Option<&trellis_projections::growth::RepFacts> {
        self.growth.rep(self.rep_id)
    }

    /// The folds of `events` (the rep's) and `catalogue` (standards) that
    /// count as of `at` on `basis`.
    pub fn at(
        rep_id: RepId,
        settings: GrowthSettings,
        catalogue: &[Envelope],
        events: &[&Envelope],
        at: DateTime<Utc>,
        basis: TimeBasis,
    ) -> RepReplay {
        let mut replay = RepReplay::new(rep_id, settings);
        for e in catalogue.iter().chain(events.iter().copied()) {
            if basis.includes_envelope(e, at) {
                replay.apply(e);
            }
        }
        replay
    }
}

/// Replays of one history to instants that only rise, each the fold a
/// fresh [`RepReplay::at`] gives. An instant's fold continues the previous
/// instant's when that gives the same fold: no standard's event counts
/// anew, and each of the rep's events that counts anew comes after, in
/// stream order, every one folded so far. Otherwise (an event recorded late
/// but dated earlier, a standard set in between) it folds afresh. A review
/// packet follows the rep's standing week by week this way.
#[derive(Debug)]
pub struct RisingReplay<'a> {
    settings: GrowthSettings,
    catalogue: &'a [Envelope],
    events: &'a [&'a Envelope],
    basis: TimeBasis,
    replay: RepReplay,
    /// How many of the catalogue's events are folded.
    catalogue_folded: usize,
    /// The index after the last of `events` folded.
    frontier: usize,
    /// The indices before `frontier` that did not count, and are not folded.
    passed_over: Vec<usize>,
}

impl<'a> RisingReplay<'a> {
    pub fn new(
        rep_id: RepId,
        settings: GrowthSettings,
        catalogue: &'a [Envelope],
        events: &'a [&'a Envelope],
        basis: TimeBasis,
    ) -> Self {
        RisingReplay {
            settings,
            catalogue,
            events,
            basis,
            replay: RepReplay::new(rep_id, settings),
            catalogue_folded: 0,
            frontier: 0,
            passed_over: Vec::new(),
        }
    }

    /// The fold as of `at`, no earlier than the previous call's instant.
    pub fn at(&mut self, at: DateTime<Utc>) -> &RepReplay {
        let basis = self.basis;
        let catalogue = self
            .catalogue
            .iter()
            .filter(|e| basis.includes_envelope(e, at))
            .count();
        let continues = catalogue == self.catalogue_folded
            && self
                .passed_over
                .iter()
                .all(|&i| !basis.includes_envelope(self.events[i], at));
        if !continues {
            self.replay = RepReplay::new(self.replay.rep_id, self.settings);
            for e in self.catalogue {
                if basis.includes_envelope(e, at) {
                    self.replay.apply(e);
                }
            }
            self.catalogue_folded = catalogue;
            self.frontier = 0;
            self.passed_over.clear();
        }
        // Events that do not count yet after the last one folded are looked
        // at again next time; those before it are passed over.
        let mut not_yet = Vec::new();
        for (i, e) in self.events.iter().enumerate().skip(self.frontier) {
            if basis.includes_envelope(e, at) {
                self.passed_over.append(&mut not_yet);
                self.replay.apply(e);
                self.frontier = i + 1;
            } else {
                not_yet.push(i);
            }
        }
        &self.replay
    }
}

/// A rep's state as of an instant.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RepAsOf)]
pub struct AsOf {
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    pub at: DateTime<Utc>,
    pub time: TimeBasis,
    /// The day the profile is judged on (overdue items): the instant's date.
    pub as_of_date: NaiveDate,
    /// Events in the rep's stream now, and those that counted at the instant.
    pub events_in_stream: u64,
    pub events_applied: u64,
    /// The stream version of the last event that counted.
    pub last_version_applied: u64,
    /// The profile the events that counted give, judged on `as_of_date`.
    #[schema(value_type = RepProfileSchema)]
    pub profile: RepProfileView,
}

/// What the log holds about one rep, decoded once and replayed to any
/// instant: the rep's stream (as the [`StreamCache`] keeps it) and the
/// standards' (the catalogue a measurement is judged against). The read
/// API's as-of and the dashboard's rep page replay the same history with
/// [`History::at`], so they cannot disagree.
#[derive(Debug)]
pub struct History {
    rep_id: RepId,
    settings: GrowthSettings,
    catalogue: Vec<Envelope>,
    stream: Arc<RepStream>,
}

/// One replay of a [`History`] to an instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub profile: RepProfile,
    pub feedback: RepFeedback,
    pub timeline: GrowthTimeline,
    /// Events of the rep's stream that counted at the instant.
    pub events_applied: u64,
    /// The stream version of the last event that counted.
    pub last_version_applied: u64,
}

impl History {
    /// The rep's history: their stream through `cache` (only what was
    /// appended since it last looked is read) and the standards'.
    pub async fn load(
        store: &dyn EventStore,
        cache: &StreamCache,
        rep_id: RepId,
        settings: GrowthSettings,
    ) -> Result<History, ApiError> {
        let stream = cache.load(store, rep_id).await?;
        History::of(store, rep_id, stream, settings).await
    }

    /// The history of `stream` (the rep's, already loaded).
    pub async fn of(
        store: &dyn EventStore,
        rep_id: RepId,
        stream: Arc<RepStream>,
        settings: GrowthSettings,
    ) -> Result<History, ApiError> {
        let catalogue = category_events(store, "standard")
            .await?
            .into_iter()
            .map(envelope)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(History {
            rep_id,
            settings,
            catalogue,
            stream,
        })
    }

    /// The rep's team now; `None` when there is no such rep.
    pub fn current_team(&self) -> Option<TeamId> {
        self.stream.team
    }

    /// The rep's stream, decoded.
    pub fn stream(&self) -> &RepStream {
        &self.stream
    }

    /// Events in the rep's stream now.
    pub fn events_in_stream(&self) -> u64 {
        self.stream.version
    }

    /// The rep as of `at` on `basis`: the `growth` fold of the standards'
    /// events and the rep's that count then. `None` when the rep had not
    /// joined.
    pub fn at(&self, at: DateTime<Utc>, basis: TimeBasis) -> Option<Snapshot> {
        let mut replay = RepReplay::new(self.rep_id, self.settings);
        for event in &self.catalogue {
            if basis.includes_envelope(event, at) {
                replay.apply(event);
            }
        }
        let mut events_applied = 0u64;
        let mut last_version_applied = 0u64;
        for event in self.stream.events() {
            if basis.includes_envelope(event, at) {
                replay.apply(event);
                events_applied += 1;
                last_version_applied = event.stream_version;
            }
        }
        let feedback = replay.feedback()?;
        replay.derive().map(|(profile, timeline)| Snapshot {
            profile,
            feedback,
            timeline,
            events_applied,
            last_version_applied,
        })
    }

    /// [`History::at`] as the read API answers it: the profile judged on the
    /// instant's date.
    pub fn as_of(&self, at: DateTime<Utc>, basis: TimeBasis) -> Option<AsOf> {
        let snapshot = self.at(at, basis)?;
        let as_of_date = at.date_naive();
        Some(AsOf {
            rep_id: self.rep_id,
            at,
            time: basis,
            as_of_date,
            events_in_stream: self.events_in_stream(),
            events_applied: snapshot.events_applied,
            last_version_applied: snapshot.last_version_applied,
            profile: rep_profile(snapshot.profile, snapshot.feedback, as_of_date),
        })
    }
}

/// What replaying a rep's stream up to an instant gave.
#[derive(Debug, Clone)]
pub struct AsOfOutcome {
    /// The rep's team now (for authorization); `None` when the rep does not exist.
    pub current_team: Option<TeamId>,
    /// `None` when the rep had not joined as of the instant.
    pub state: Option<AsOf>,
}

/// Replays `rep_id`'s stream and the standards up to `at` on `basis`, for
/// any reader (no access rule applied: see [`readable_history`]).
pub async fn state_as_of(
    store: &dyn EventStore,
    cache: &StreamCache,
    rep_id: RepId,
    at: DateTime<Utc>,
    basis: TimeBasis,
    settings: GrowthSettings,
) -> Result<AsOfOutcome, ApiError> {
    let history = History::load(store, cache, rep_id, settings).await?;
    Ok(AsOfOutcome {
        current_team: history.current_team(),
        state: history.as_of(at, basis),
    })
}

/// The history of a rep `claims` may read, and how much of it they see
/// ([`readable_stream`]'s rules).
pub async fn readable_history(
    state: &QueryState,
    claims: &Claims,
    rep_id: RepId,
) -> Result<(History, View), ApiError> {
    let store = state.http.store();
    let (stream, view) = readable_stream(store, &state.stream_cache, claims, rep_id).await?;
    let history = History::of(store, rep_id, stream, state.settings).await?;
    Ok((history, view))
}

/// The rep as of `at` on `basis`, as `claims` may see it: what
/// `GET /v1/reps/{rep_id}/as-of` answers.
pub async fn rep_as_of(
    state: &QueryState,
    claims: &Claims,
    rep_id: RepId,
    at: DateTime<Utc>,
    basis: TimeBasis,
) -> Result<AsOf, ApiError> {
    let (history, view) = readable_history(state, claims, rep_id).await?;
    let mut as_of = history.as_of(at, basis).ok_or_else(|| {
        ApiError::NotFound(format!(
            "rep {rep_id} had not joined as of {at} ({} time)",
            match basis {
                TimeBasis::Business => "business",
                TimeBasis::Recorded => "recorded",
            }
        ))
    })?;
    if view == View::OwnRecord {
        as_of.profile = as_of.profile.for_rep();
    }
    Ok(as_of)
}

/// A rep's state as of any instant, replayed from the log.
///
/// `GET /v1/reps/{rep_id}/as-of?at=<RFC 3339>&time=business|recorded`: as
/// it happened (business time) or as it was known then (recorded time),
/// never from the read models, so the answer is reproducible.
#[utoipa::path(get, path = "/v1/reps/{rep_id}/as-of", operation_id = "get_rep_as_of",
    tag = "reps",
    params(
        ("rep_id" = uuid::Uuid, Path, description = "The rep"),
        ("at" = String, Query, description = "The instant to replay to: RFC 3339 \
            (`2026-03-31T17:00:00Z`), or a date meaning the end of that day, UTC",
            example = "2026-03-31T17:00:00Z"),
        ("time" = Option<TimeBasis>, Query, description = "`business` (the default): as it \
            happened, by each event's `occurred_at`; `recorded`: as it was known then, by its \
            `recorded_at`")),
    responses(
        (status = 200, description = "The rep's state as of the instant, replayed from the log",
            body = AsOf),
        (status = 400, description = "`at` is missing or not an instant, or `time` is neither \
            `business` nor `recorded`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rep (or the id is not a UUID), or the rep had not \
            joined as of the instant", body = Problem, content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn route(about: About<RepId>, params: Params) -> Result<Response, ApiError> {
    let (state, claims, rep_id) = (about.state, about.claims, about.id);
    let at = params.instant("at")?.ok_or_else(|| {
        ApiError::BadRequest(
            "the query parameter at is required: the instant to replay to, like \
                 2026-03-31T17:00:00Z"
                .into(),
        )
    })?;
    let basis = params
        .parsed(
            "time",
            "business (as it happened) or recorded (as it was known then)",
            |v| match v {
                "business" => Some(TimeBasis::Business),
                "recorded" => Some(TimeBasis::Recorded),
                _ => None,
            },
        )?
        .unwrap_or(TimeBasis::Business);
    let as_of = rep_as_of(&state, &claims, rep_id, at, basis).await?;
    Ok(Json(as_of).into_response())
}

#[cfg(test)]
mod tests {
    use chrono::{Days, NaiveDate, TimeZone, Utc};
    use trellis_domain::rep::{
        Correction, FactCorrected, MeasurementSource, PerformanceMeasured, RepEvent, RepJoined,
    };
    use trellis_domain::standard::{Direction, StandardEvent, StandardRevised, StandardSet};
    use trellis_domain::{Event, MeasurementId, PeriodKind, RepId, StandardId, StandardKind};
    use trellis_projections::growth::GrowthSettings;
    use trellis_projections::projection::Envelope;
    use uuid::Uuid;

    use super::{RepReplay, RisingReplay, TimeBasis};
    use crate::params::end_of_day;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// An event of `stream` at `version`, dated `occurred` and recorded
    /// `recorded` (both at noon).
    fn envelope(
        stream: String,
        version: u64,
        occurred: &str,
        recorded: &str,
        event: Event,
    ) -> Envelope {
        let noon = |d: &str| Utc.from_utc_datetime(&date(d).and_hms_opt(12, 0, 0).unwrap());
        Envelope {
            event,
            event_id: Uuid::from_u128(u128::from(version)),
            stream_id: stream,
            stream_version: version,
            actor: "test".into(),
            occurred_at: noon(occurred),
            recorded_at: noon(recorded),
        }
    }

    fn rep_id() -> RepId {
        RepId::from_uuid(Uuid::from_u128(1))
    }

    fn standard_id() -> StandardId {
        StandardId::from_uuid(Uuid::from_u128(2))
    }

    fn rep(version: u64, occurred: &str, recorded: &str, event: RepEvent) -> Envelope {
        envelope(
            rep_id().stream_id(),
            version,
            occurred,
            recorded,
            Event::Rep(event),
        )
    }

    fn measured(version: u64, month: &str, value: f64, occurred: &str, recorded: &str) -> Envelope {
        rep(
            version,
            occurred,
            recorded,
            RepEvent::PerformanceMeasured(PerformanceMeasured {
                measurement_id: MeasurementId::from_uuid(Uuid::from_u128(
                    100 + u128::from(version),
                )),
                metric: "discovery_score".parse().unwrap(),
                period: month.parse().unwrap(),
                value: value.try_into().unwrap(),
                source: MeasurementSource::Manual,
            }),
        )
    }

    /// A standard set in January and raised in mid-February (back to
    /// February's start); a rep measured month by month, with one
    /// measurement recorded in March but dated January, and one retracted.
    fn history() -> (Vec<Envelope>, Vec<Envelope>) {
        let stream = format!("standard-{}", standard_id());
        let catalogue = vec![
            envelope(
                stream.clone(),
                1,
                "2026-01-01",
                "2026-01-01",
                Event::Standard(StandardEvent::Set(StandardSet {
                    standard_id: standard_id(),
                    name: "Discovery quality".try_into().unwrap(),
                    metric: "discovery_score".parse().unwrap(),
                    kind: StandardKind::Quality,
                    direction: Direction::AtLeast,
                    unit: "points".try_into().unwrap(),
                    period: PeriodKind::Month,
                    target: 80.0.try_into().unwrap(),
                    roles: vec!["AE".try_into().unwrap()],
                    effective_from: date("2026-01-01"),
                    ramp: vec![],
                    version: 1,
                })),
            ),
            envelope(
                stream,
                2,
                "2026-02-15",
                "2026-02-15",
                Event::Standard(StandardEvent::Revised(StandardRevised {
                    standard_id: standard_id(),
                    version: 2,
                    target: 90.0.try_into().unwrap(),
                    effective_from: date("2026-02-01"),
                    roles: None,
                    ramp: None,
                })),
            ),
        ];
        let events = vec![
            rep(
                1,
                "2026-01-05",
                "2026-01-05",
                RepEvent::Joined(RepJoined {
                    rep_id: rep_id(),
                    name: "Ana Lopez".try_into().unwrap(),
                    role: "AE".try_into().unwrap(),
                    team_id: trellis_domain::TeamId::from_uuid(Uuid::from_u128(3)),
                    start_date: date("2026-01-05"),
                }),
            ),
            measured(2, "2026-01", 85.0, "2026-02-01", "2026-02-01"),
            measured(3, "2026-02", 70.0, "2026-03-01", "2026-03-01"),
            // Recorded in March, dated in January.
            measured(4, "2026-01", 60.0, "2026-01-20", "2026-03-05"),
            measured(5, "2026-03", 95.0, "2026-04-01", "2026-04-01"),
            rep(
                6,
                "2026-04-10",
                "2026-04-10",
                RepEvent::FactCorrected(FactCorrected {
                    fact_id: Uuid::from_u128(103),
                    reason: "wrong month".try_into().unwrap(),
                    correction: Correction::Retracted,
                }),
            ),
            measured(7, "2026-04", 50.0, "2026-05-01", "2026-05-01"),
        ];
        (catalogue, events)
    }

    /// Day by day, on both time bases, the rising replay's fold is the one a
    /// fresh replay to that instant gives, whether it continued the last
    /// fold or had to begin again (the backdated measurement, the revision).
    #[test]
    fn a_rising_replay_folds_what_a_fresh_replay_to_each_instant_folds() {
        let settings = GrowthSettings {
            quality_gate_periods: 2,
        };
        let (catalogue, events) = history();
        let events: Vec<&Envelope> = events.iter().collect();
        for basis in [TimeBasis::Business, TimeBasis::Recorded] {
            let mut rising = RisingReplay::new(rep_id(), settings, &catalogue, &events, basis);
            let mut day = date("2025-12-30");
            let mut joined = 0;
            while day <= date("2026-05-10") {
                let at = end_of_day(day);
                let fresh = RepReplay::at(rep_id(), settings, &catalogue, &events, at, basis);
                let expected = fresh.derive();
                joined += usize::from(expected.is_some());
                assert_eq!(rising.at(at).derive(), expected, "{basis:?} as of {day}");
                day = day.checked_add_days(Days::new(1)).unwrap();
            }
            assert!(joined > 100, "the rep had joined on most days: {joined}");
        }
    }
}
