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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use trellis_commands::extract::Principal;
use trellis_commands::problem::{ApiError, Problem};
use trellis_commands::streams::read_rep_stream;
use trellis_domain::rep::RepEvent;
use trellis_domain::{Event, RepId, TeamId};
use trellis_eventstore::{EventStore, Metadata, RecordedEvent, StreamId};
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::growth::{GrowthTimeline, RepProfile};
use trellis_projections::projection::{Envelope, Projection};
use trellis_projections::query::{RepProfileView, rep_profile};
use utoipa::ToSchema;

use crate::QueryState;
use crate::access::{self, View};
use crate::openapi::{ReadErrors, RepProfileSchema};
use crate::params::{Params, PathIds};

/// Events per read of a stream.
pub const PAGE: usize = 2_000;

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

/// Decodes a stored event into what a projection folds, taking its payload
/// (upcasting old schema versions).
pub fn envelope(recorded: RecordedEvent) -> Result<Envelope, ApiError> {
    let position = recorded.global_position;
    let event = Event::from_stored(
        &recorded.event_type,
        recorded.schema_version,
        recorded.payload,
    )
    .map_err(|e| {
        ApiError::Internal(format!(
            "the event at global position {position} cannot be read: {e}"
        ))
    })?;
    Ok(Envelope {
        event,
        event_id: recorded.event_id,
        stream_id: String::from(recorded.stream_id),
        stream_version: recorded.stream_version,
        actor: recorded.metadata.actor,
        occurred_at: recorded.metadata.occurred_at,
        recorded_at: recorded.metadata.recorded_at,
    })
}

/// Every event of every stream of `category` (e.g. `standard`), stream by
/// stream. The catalogue categories are small.
pub async fn category_events(
    store: &dyn EventStore,
    category: &str,
) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut after = Some((
        StreamId::new(category).map_err(|e| ApiError::Internal(e.to_string()))?,
        0,
    ));
    let mut out = Vec::new();
    loop {
        let page = store.scan_streams(after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.stream_id.clone(), last.stream_version));
        let full = page.len() == PAGE;
        let mut done = false;
        for event in page {
            if event.stream_id.category() == category {
                out.push(event);
            } else {
                done = true;
                break;
            }
        }
        if done || !full {
            break;
        }
    }
    Ok(out)
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

/// What replaying a rep's stream up to an instant gave.
#[derive(Debug, Clone)]
pub struct AsOfOutcome {
    /// The rep's team now (for authorization); `None` when the rep does not exist.
    pub current_team: Option<TeamId>,
    /// `None` when the rep had not joined as of the instant.
    pub state: Option<AsOf>,
}

/// Replays `rep_id`'s stream and the standards up to `at` on `basis`.
pub async fn state_as_of(
    store: &dyn EventStore,
    cache: &StreamCache,
    rep_id: RepId,
    at: DateTime<Utc>,
    basis: TimeBasis,
    settings: GrowthSettings,
) -> Result<AsOfOutcome, ApiError> {
    let mut replay = RepReplay::new(rep_id, settings);
    for event in category_events(store, "standard").await? {
        if basis.includes(&event.metadata, at) {
            replay.apply(&envelope(event)?);
        }
    }
    let stream = cache.load(store, rep_id).await?;
    let mut applied = 0u64;
    let mut last_version_applied = 0u64;
    for event in stream.events() {
        if basis.includes_envelope(event, at) {
            replay.apply(event);
            applied += 1;
            last_version_applied = event.stream_version;
        }
    }
    let as_of_date = at.date_naive();
    let state = replay.derive().map(|(profile, _)| AsOf {
        rep_id,
        at,
        time: basis,
        as_of_date,
        events_in_stream: stream.version,
        events_applied: applied,
        last_version_applied,
        profile: rep_profile(profile, as_of_date),
    });
    Ok(AsOfOutcome {
        current_team: stream.team,
        state,
    })
}

/// A rep's stream, decoded.
#[derive(Debug, Default)]
pub struct RepStream {
    /// The version of the last event held.
    pub version: u64,
    /// The rep's team after the last event held.
    pub team: Option<TeamId>,
    chunks: Vec<Arc<[Envelope]>>,
    len: usize,
}

impl RepStream {
    /// The events, in version order.
    pub fn events(&self) -> impl Iterator<Item = &Envelope> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

/// Decoded rep streams, kept between queries. The log is append-only, so
/// what was read once never changes: a query reads only the events appended
/// since (usually none) and folds the rest from memory. Bounded by a number
/// of events; the least recently used streams go first.
#[derive(Debug)]
pub struct StreamCache {
    max_events: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    tick: u64,
    events: usize,
    streams: HashMap<RepId, (u64, Arc<RepStream>)>,
}

/// Chunks a cached stream may grow to before it is compacted into one.
const MAX_CHUNKS: usize = 32;

impl Default for StreamCache {
    fn default() -> Self {
        StreamCache::new(250_000)
    }
}

impl StreamCache {
    /// A cache of at most `max_events` decoded events (0: no caching).
    pub fn new(max_events: usize) -> Self {
        StreamCache {
            max_events,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, rep_id: RepId) -> Option<Arc<RepStream>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner.streams.get_mut(&rep_id).map(|(used, stream)| {
            *used = tick;
            stream.clone()
        })
    }

    fn put(&self, rep_id: RepId, stream: Arc<RepStream>) {
        if stream.len > self.max_events {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((_, old)) = inner.streams.insert(rep_id, (tick, stream.clone())) {
            inner.events -= old.len;
        }
        inner.events += stream.len;
        while inner.events > self.max_events {
            let Some(oldest) = inner
                .streams
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((_, gone)) = inner.streams.remove(&oldest) {
                inner.events -= gone.len;
            }
        }
    }

    /// The rep's stream: what is cached, and whatever was appended since.
    pub async fn load(
        &self,
        store: &dyn EventStore,
        rep_id: RepId,
    ) -> Result<Arc<RepStream>, ApiError> {
        let cached = self.get(rep_id).unwrap_or_default();
        let mut team = cached.team;
        let mut new = Vec::new();
        let version = read_rep_stream(store, rep_id, cached.version, PAGE, |event| {
            let envelope = envelope(event)?;
            match &envelope.event {
                Event::Rep(RepEvent::Joined(e)) if team.is_none() => team = Some(e.team_id),
                Event::Rep(RepEvent::MovedTeam(e)) => team = Some(e.to),
                _ => {}
            }
            new.push(envelope);
            Ok::<_, ApiError>(())
        })
        .await?;
        if new.is_empty() {
            return Ok(cached);
        }
        let mut chunks = cached.chunks.clone();
        chunks.push(new.into());
        if chunks.len() > MAX_CHUNKS {
            let all: Vec<Envelope> = chunks.iter().flat_map(|c| c.iter().cloned()).collect();
            chunks = vec![all.into()];
        }
        let stream = Arc::new(RepStream {
            version,
            team,
            len: chunks.iter().map(|c| c.len()).sum(),
            chunks,
        });
        self.put(rep_id, stream.clone());
        Ok(stream)
    }
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
        ReadErrors),
    security(("bearer" = [])))]
pub async fn route(
    State(state): State<QueryState>,
    Principal(claims): Principal,
    path: PathIds,
    params: Params,
) -> Result<Response, ApiError> {
    let rep_id = RepId::from_uuid(path.uuid("rep_id")?);
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
    access::rep_precheck(&claims, rep_id)?;
    let outcome = state_as_of(
        state.app.store(),
        &state.stream_cache,
        rep_id,
        at,
        basis,
        state.settings,
    )
    .await?;
    let team = outcome
        .current_team
        .ok_or_else(|| ApiError::NotFound(format!("no rep {rep_id}")))?;
    let view = access::rep_read(&claims, rep_id, team)?;
    let mut as_of = outcome.state.ok_or_else(|| {
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
    Ok(Json(as_of).into_response())
}
