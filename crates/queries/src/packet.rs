//! The review packet: what replaying one rep's history over a period yields
//! for a performance review, as JSON, Markdown or HTML, with the SHA-256 of
//! its canonical JSON (sorted keys, no whitespace: the log's own
//! `canonical_json`), which `POST /v1/reps/{rep}/reviews` records in the log.
//!
//! # Rules
//!
//! - Business time: the state at the start is the replay of every event that
//!   happened before the period's first day, the state at the end of every
//!   event that happened by the end of its last day (UTC), whenever recorded.
//! - `ReviewHeld` events are not replayed: recording a review must not
//!   change the packet it was based on.
//! - The packet is the same for every reader: it carries no note text from
//!   feedback or sessions, and an action item agreed in a private session is
//!   listed without its description.
//! - "Today" for overdue items is the period's last day; nothing depends on
//!   the clock, so a packet recomputed later over an unchanged log has the
//!   same hash.
//! - Standing changes are looked at on the last day of every ISO week in the
//!   period and on its last day.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Serialize;
use sha2::{Digest, Sha256};
use trellis_domain::competency::CompetencyEvent;
use trellis_domain::rep::{
    FeedbackKind, Owner, PlanOutcome, RepEvent, SupportCategory, Visibility,
};
use trellis_domain::{
    CompetencyId, Event, PeriodKind, PlanId, RepId, StandardId, StandardKind, SupportRequestId,
    TeamId,
};
use trellis_eventstore::evidence::{Evidence, GatherError};
use trellis_eventstore::{EventStore, RecordedEvent};
use trellis_http::auth::Claims;
use trellis_http::problem::{ApiError, Problem};
use trellis_projections::growth::derive::StandingKind;
use trellis_projections::growth::model::ItemStatus;
use trellis_projections::growth::{GrowthSettings, GrowthTimeline, RepProfile, Standing};
use trellis_projections::projection::Envelope;
use trellis_projections::query::standing_as_of;
use trellis_projections::stats::{mean, median};
use utoipa::ToSchema;

use crate::asof::{RepReplay, RisingReplay, TimeBasis};
use crate::params::{Params, end_of_day};
use crate::schemas::{ReadErrors, StandingSchema};
use crate::state::{About, QueryState};
use crate::streams::{RepStream, category_events, envelope, readable_stream, rep_events};
use trellis_http::openapi::CommonErrors;

/// What replaying one rep's history over a period yields for a review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewPacket {
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    pub name: String,
    pub role: String,
    #[schema(value_type = uuid::Uuid)]
    pub team_id: TeamId,
    pub start_date: NaiveDate,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    /// The rep's events that happened by the end of the period (reviews excluded).
    pub events_replayed: u64,
    pub levels: Vec<LevelChange>,
    pub standards: Vec<StandardTrend>,
    pub coaching: CoachingSummary,
    pub action_items: ActionItems,
    pub support_requests: SupportRequests,
    pub improvement_plans: Vec<PlanLine>,
    pub standing: StandingSummary,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelChange {
    #[schema(value_type = uuid::Uuid)]
    pub competency_id: CompetencyId,
    pub competency: Option<String>,
    pub start: Option<u8>,
    pub end: Option<u8>,
    pub change: Option<i16>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StandardTrend {
    #[schema(value_type = uuid::Uuid)]
    pub standard_id: StandardId,
    pub name: String,
    #[schema(schema_with = crate::schemas::standard_kind)]
    pub kind: StandardKind,
    /// The kind of period the trend is measured in.
    #[schema(schema_with = crate::schemas::period_kind)]
    pub bucket: PeriodKind,
    pub periods: Vec<PeriodAttainment>,
    /// Attainment in the first and the last measured period, and the mean.
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub mean: Option<f64>,
    pub periods_met: u32,
    pub periods_measured: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodAttainment {
    pub period: String,
    pub target: Option<f64>,
    pub actual: Option<f64>,
    pub attainment: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoachingSummary {
    pub sessions: u32,
    pub minutes: u32,
    pub feedback_praise: u32,
    pub feedback_constructive: u32,
    pub trainings_completed: u32,
    pub by_competency: Vec<CompetencyActivity>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompetencyActivity {
    #[schema(value_type = uuid::Uuid)]
    pub competency_id: CompetencyId,
    pub competency: Option<String>,
    /// Coaching sessions that focused on it.
    pub sessions: u32,
    pub praise: u32,
    pub constructive: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionItems {
    /// Agreed in a session held in the period, or due in it.
    pub items: Vec<ActionItemLine>,
    pub completed: u32,
    pub completed_on_time: u32,
    pub dropped: u32,
    /// Open and past due at the end of the period.
    pub overdue_at_end: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionItemLine {
    pub action_item_id: uuid::Uuid,
    /// `None` for an item agreed in a private session.
    pub description: Option<String>,
    pub owner: String,
    pub due_on: NaiveDate,
    /// `open`, `completed` or `dropped`, at the end of the period.
    pub status: String,
    pub closed_on: Option<NaiveDate>,
    pub on_time: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupportRequests {
    /// Raised in the period.
    pub requests: Vec<SupportLine>,
    pub resolved: u32,
    pub median_days_to_resolve: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupportLine {
    #[schema(value_type = uuid::Uuid)]
    pub request_id: SupportRequestId,
    #[schema(schema_with = crate::schemas::support_category)]
    pub category: SupportCategory,
    pub raised_on: NaiveDate,
    pub resolved_on: Option<NaiveDate>,
    pub days_to_resolve: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanLine {
    #[schema(value_type = uuid::Uuid)]
    pub plan_id: PlanId,
    pub started_on: NaiveDate,
    pub review_on: NaiveDate,
    pub checkpoints: u32,
    #[schema(schema_with = crate::schemas::plan_outcome)]
    pub outcome: Option<PlanOutcome>,
    pub closed_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StandingSummary {
    /// The standing on the day before the period.
    #[schema(value_type = StandingSchema)]
    pub at_start: Standing,
    /// The standing on the period's last day.
    #[schema(value_type = StandingSchema)]
    pub at_end: Standing,
    pub changes: Vec<StandingChange>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StandingChange {
    pub on: NaiveDate,
    #[schema(schema_with = crate::schemas::standing_kind)]
    pub from: StandingKind,
    #[schema(schema_with = crate::schemas::standing_kind)]
    pub to: StandingKind,
    pub reasons: Vec<String>,
}

/// SHA-256 (lower-case hex) of the packet's canonical JSON.
pub fn packet_sha256(packet: &ReviewPacket) -> String {
    let value = serde_json::to_value(packet).expect("a packet serializes");
    let mut bytes = Vec::new();
    trellis_eventstore::chain::canonical_json(&value, &mut bytes);
    hex::encode(Sha256::digest(&bytes))
}

/// The packet of `events` (the rep's stream, decoded, reviews left out)
/// judged against `catalogue` (the standards), for `from..=to`. `None` when
/// the rep had not joined by the end of the period.
pub fn build(
    rep_id: RepId,
    settings: GrowthSettings,
    catalogue: &[Envelope],
    competency_names: &BTreeMap<CompetencyId, String>,
    events: &[&Envelope],
    from: NaiveDate,
    to: NaiveDate,
) -> Option<ReviewPacket> {
    let basis = TimeBasis::Business;
    let end_at = end_of_day(to);
    let replay =
        |day: NaiveDate| RepReplay::at(rep_id, settings, catalogue, events, end_of_day(day), basis);
    let before = from.pred_opt().unwrap_or(from);
    let end = replay(to);
    let (end_profile, end_timeline) = end.derive()?;
    let start = replay(before).derive();
    let facts = end.facts()?;

    let name = |id: &CompetencyId| competency_names.get(id).cloned();

    // Levels at the start and end.
    let mut levels: BTreeMap<CompetencyId, (Option<u8>, Option<u8>)> = BTreeMap::new();
    if let Some((p, _)) = &start {
        for (id, l) in &p.levels {
            levels.entry(*id).or_default().0 = Some(l.level);
        }
    }
    for (id, l) in &end_profile.levels {
        levels.entry(*id).or_default().1 = Some(l.level);
    }
    let levels = levels
        .into_iter()
        .map(|(id, (s, e))| LevelChange {
            competency_id: id,
            competency: name(&id),
            start: s,
            end: e,
            change: s.zip(e).map(|(s, e)| i16::from(e) - i16::from(s)),
        })
        .collect();

    let standards = trends(&end_timeline, from, to);

    // Coaching, feedback and trainings in the period, by competency.
    let within = |d: NaiveDate| from <= d && d <= to;
    let mut by: BTreeMap<CompetencyId, CompetencyActivity> = BTreeMap::new();
    fn entry<'a>(
        by: &'a mut BTreeMap<CompetencyId, CompetencyActivity>,
        names: &BTreeMap<CompetencyId, String>,
        id: CompetencyId,
    ) -> &'a mut CompetencyActivity {
        by.entry(id).or_insert_with(|| CompetencyActivity {
            competency_id: id,
            competency: names.get(&id).cloned(),
            sessions: 0,
            praise: 0,
            constructive: 0,
        })
    }
    let (mut sessions, mut minutes, mut praise, mut constructive) = (0u32, 0u32, 0u32, 0u32);
    for s in facts.sessions.values().filter(|s| within(s.held_on)) {
        sessions += 1;
        minutes += s.minutes;
        for c in &s.focus {
            entry(&mut by, competency_names, *c).sessions += 1;
        }
    }
    for f in facts.feedback.values().filter(|f| within(f.given_on)) {
        match f.kind {
            FeedbackKind::Praise => {
                praise += 1;
                entry(&mut by, competency_names, f.competency_id).praise += 1;
            }
            FeedbackKind::Constructive => {
                constructive += 1;
                entry(&mut by, competency_names, f.competency_id).constructive += 1;
            }
        }
    }
    let coaching = CoachingSummary {
        sessions,
        minutes,
        feedback_praise: praise,
        feedback_constructive: constructive,
        trainings_completed: facts
            .trainings
            .values()
            .filter(|t| within(t.completed_on))
            .count() as u32,
        by_competency: by.into_values().collect(),
    };

    // Action items agreed or due in the period.
    let mut items = Vec::new();
    let (mut completed, mut on_time, mut dropped, mut overdue) = (0u32, 0u32, 0u32, 0u32);
    let mut sorted: Vec<_> = facts.action_items.iter().collect();
    sorted.sort_by_key(|(id, i)| (i.due_on, **id));
    for (id, item) in sorted {
        let agreed_on = facts.sessions.get(&item.session_id).map(|s| s.held_on);
        if !(within(item.due_on) || agreed_on.is_some_and(within)) {
            continue;
        }
        let (status, closed_on, timely) = match item.status {
            ItemStatus::Open => {
                if trellis_domain::rep::overdue_on(item.due_on, to) {
                    overdue += 1;
                }
                ("open", None, None)
            }
            ItemStatus::Completed(on) => {
                completed += 1;
                if trellis_domain::rep::done_on_time(on, item.due_on) {
                    on_time += 1;
                }
                (
                    "completed",
                    Some(on),
                    Some(trellis_domain::rep::done_on_time(on, item.due_on)),
                )
            }
            ItemStatus::Dropped(on) => {
                dropped += 1;
                ("dropped", Some(on), None)
            }
        };
        items.push(ActionItemLine {
            action_item_id: id.as_uuid(),
            description: (item.visibility == Visibility::Shared)
                .then(|| item.description.to_string()),
            owner: match item.owner {
                Owner::Rep => "rep".to_owned(),
                Owner::Leader(l) => format!("leader {l}"),
            },
            due_on: item.due_on,
            status: status.to_owned(),
            closed_on,
            on_time: timely,
        });
    }
    let action_items = ActionItems {
        items,
        completed,
        completed_on_time: on_time,
        dropped,
        overdue_at_end: overdue,
    };

    // Support requests raised in the period.
    let mut requests: Vec<SupportLine> = facts
        .support_requests
        .iter()
        .filter(|(_, r)| within(r.raised_on))
        .map(|(id, r)| SupportLine {
            request_id: *id,
            category: r.category,
            raised_on: r.raised_on,
            resolved_on: r.resolved.map(|(_, on)| on),
            days_to_resolve: r.resolved.map(|(_, on)| (on - r.raised_on).num_days()),
        })
        .collect();
    requests.sort_by_key(|r| (r.raised_on, r.request_id));
    let days: Vec<f64> = requests
        .iter()
        .filter_map(|r| r.days_to_resolve.map(|d| d as f64))
        .collect();
    let support_requests = SupportRequests {
        resolved: days.len() as u32,
        median_days_to_resolve: median(days),
        requests,
    };

    // Improvement plans open at some point in the period.
    let improvement_plans = end_profile
        .plans
        .iter()
        .filter(|p| p.started_on <= to && p.closed_on.is_none_or(|on| on >= from))
        .map(|p| PlanLine {
            plan_id: p.plan_id,
            started_on: p.started_on,
            review_on: p.review_on,
            checkpoints: p.checkpoints.len() as u32,
            outcome: p.outcome,
            closed_on: p.closed_on,
        })
        .collect();

    let mut weekly = RisingReplay::new(rep_id, settings, catalogue, events, basis);
    let standing = standing_changes(
        &mut |day| {
            weekly
                .at(end_of_day(day))
                .derive()
                .map(|(profile, _)| profile)
        },
        start.as_ref().map(|(p, _)| p),
        before,
        &end_profile,
        from,
        to,
    );

    Some(ReviewPacket {
        rep_id,
        name: end_profile.name.to_string(),
        role: end_profile.role.to_string(),
        team_id: end_profile.team_id,
        start_date: end_profile.start_date,
        period_from: from,
        period_to: to,
        events_replayed: events.iter().filter(|e| basis_counts(e, end_at)).count() as u64,
        levels,
        standards,
        coaching,
        action_items,
        support_requests,
        improvement_plans,
        standing,
    })
}

fn basis_counts(e: &Envelope, at: chrono::DateTime<chrono::Utc>) -> bool {
    e.occurred_at <= at
}

fn trends(timeline: &GrowthTimeline, from: NaiveDate, to: NaiveDate) -> Vec<StandardTrend> {
    let mut out: BTreeMap<StandardId, StandardTrend> = BTreeMap::new();
    for bucket in [PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter] {
        for row in timeline
            .rows(bucket)
            .iter()
            .filter(|r| r.end >= from && r.start <= to)
        {
            for s in row
                .standards
                .iter()
                .filter(|s| s.applies || s.actual.is_some())
            {
                let trend = out.entry(s.standard_id).or_insert_with(|| StandardTrend {
                    standard_id: s.standard_id,
                    name: s.name.to_string(),
                    kind: s.kind,
                    bucket,
                    periods: vec![],
                    first: None,
                    last: None,
                    mean: None,
                    periods_met: 0,
                    periods_measured: 0,
                });
                trend.periods.push(PeriodAttainment {
                    period: row.period.to_string(),
                    target: s.target,
                    actual: s.actual,
                    attainment: s.attainment,
                });
                // Met as the timeline judges it, not a rule of the packet's own.
                if s.met() == Some(true) {
                    trend.periods_met += 1;
                }
            }
        }
    }
    out.into_values()
        .map(|mut t| {
            let measured: Vec<f64> = t.periods.iter().filter_map(|p| p.attainment).collect();
            t.first = measured.first().copied();
            t.last = measured.last().copied();
            t.mean = mean(measured.iter().copied());
            t.periods_measured = measured.len() as u32;
            t
        })
        .collect()
}

/// The standing at the start and end of the period and each Sunday in
/// between; `profile_on` gives the profile as of a day (days only rise).
fn standing_changes(
    profile_on: &mut impl FnMut(NaiveDate) -> Option<RepProfile>,
    start: Option<&RepProfile>,
    before: NaiveDate,
    end: &RepProfile,
    from: NaiveDate,
    to: NaiveDate,
) -> StandingSummary {
    let at_start = start.map_or_else(
        || Standing {
            standing: StandingKind::OnTrack,
            reasons: vec!["had not joined yet".to_owned()],
        },
        |p| standing_as_of(p, before),
    );
    let at_end = standing_as_of(end, to);
    // Sundays in the period, then its last day.
    let mut days = Vec::new();
    let mut day = from;
    while day < to {
        if day.weekday() == Weekday::Sun {
            days.push(day);
        }
        day = match day.checked_add_days(Days::new(1)) {
            Some(d) => d,
            None => break,
        };
    }
    let mut changes = Vec::new();
    let mut current = start.map(|_| at_start.standing);
    let mut check = |day: NaiveDate, standing: Standing| {
        if current != Some(standing.standing) {
            if let Some(previous) = current {
                changes.push(StandingChange {
                    on: day,
                    from: previous,
                    to: standing.standing,
                    reasons: standing.reasons.clone(),
                });
            }
            current = Some(standing.standing);
        }
    };
    for day in days {
        if let Some(profile) = profile_on(day) {
            check(day, standing_as_of(&profile, day));
        }
    }
    check(to, at_end.clone());
    StandingSummary {
        at_start,
        at_end,
        changes,
    }
}

/// The longest period a packet covers. The packet follows the rep's
/// standing week by week, replaying their stream for each week, so its cost
/// grows with the period: a review covers a quarter or a year, not centuries.
pub const MAX_PACKET_DAYS: i64 = 731;

/// A 400 unless `from..=to` is a period a packet covers.
pub fn check_period(from: NaiveDate, to: NaiveDate) -> Result<(), ApiError> {
    if (to - from).num_days() > MAX_PACKET_DAYS {
        return Err(ApiError::BadRequest(format!(
            "the period {from} to {to} is longer than a packet covers ({MAX_PACKET_DAYS} days, \
             two years): ask for a shorter one, such as a year, from {} to {to}",
            to.checked_sub_days(chrono::Days::new(364)).unwrap_or(to)
        )));
    }
    Ok(())
}

/// Whether a packet rests on the rep's event `event`: every one but a
/// recorded review, since recording a review must not change the packet it
/// was based on. [`packet_of`] replays what this keeps and
/// [`packet_evidence`] proves it: one rule, so the two cannot disagree.
pub fn rests_on(event: &Event) -> bool {
    !matches!(event, Event::Rep(RepEvent::ReviewHeld(_)))
}

/// The rep's stored events a packet rests on ([`rests_on`], decided on
/// each one decoded as the packet decodes it), in order.
fn rested_on(events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut kept = Vec::with_capacity(events.len());
    for recorded in events {
        let event = Event::from_stored_ref(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        )
        .map_err(|e| {
            ApiError::Internal(format!(
                "event {} of {} does not decode: {e}",
                recorded.event_id, recorded.stream_id
            ))
        })?;
        if rests_on(&event) {
            kept.push(recorded);
        }
    }
    Ok(kept)
}

/// Builds the packet of `stream` (the rep's, decoded, as the [`StreamCache`]
/// holds it) against the catalogue read from the log. `None` when the rep
/// had not joined by `to`.
pub async fn packet_of(
    store: &dyn EventStore,
    rep_id: RepId,
    stream: &RepStream,
    from: NaiveDate,
    to: NaiveDate,
    settings: GrowthSettings,
) -> Result<Option<ReviewPacket>, ApiError> {
    check_period(from, to)?;
    let events: Vec<&Envelope> = stream.events().filter(|e| rests_on(&e.event)).collect();
    let catalogue = category_events(store, "standard")
        .await?
        .into_iter()
        .map(envelope)
        .collect::<Result<Vec<_>, _>>()?;
    // Names as they stood at the end of the period, never as they stand
    // today: a packet recomputed after a rename has the same hash. A
    // competency defined only after the period (skills assessed on dates
    // before it was set up) has no name in the packet; its rendering names
    // it from `render::Labels`, which the hash does not cover.
    let end_at = end_of_day(to);
    let mut names = BTreeMap::new();
    for e in category_events(store, "competency").await? {
        let e = envelope(e)?;
        if e.occurred_at > end_at {
            continue;
        }
        match e.event {
            Event::Competency(CompetencyEvent::Defined(d)) => {
                names.insert(d.competency_id, d.name.to_string());
            }
            Event::Competency(CompetencyEvent::Revised(r)) => {
                names.insert(r.competency_id, r.name.to_string());
            }
            _ => {}
        }
    }
    Ok(build(
        rep_id, settings, &catalogue, &names, &events, from, to,
    ))
}

/// The rep's packet over `from..=to` as `claims` may read it, with its
/// SHA-256: what `GET /v1/reps/{rep_id}/review-packet` answers and the
/// dashboard's packet page shows. Who may read is decided on the decoded
/// stream the cache keeps, before the packet (a replay per week of the
/// period) is built. 404 when there is no such rep or they had not joined
/// by `to`.
pub async fn review_packet(
    state: &QueryState,
    claims: &Claims,
    rep_id: RepId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(ReviewPacket, String), ApiError> {
    check_period(from, to)?;
    let store = state.http.store();
    let (stream, _) = readable_stream(store, &state.stream_cache, claims, rep_id).await?;
    let packet = packet_of(store, rep_id, &stream, from, to, state.settings)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("rep {rep_id} had not joined by {to}")))?;
    let sha256 = packet_sha256(&packet);
    Ok((packet, sha256))
}

/// The packet's JSON body: `{ "sha256": …, "packet": …, "evidence": … }`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReviewPacketBody)]
pub struct PacketBody<'a> {
    /// SHA-256 (lower-case hex) of the packet's canonical JSON (sorted keys,
    /// no whitespace): what `POST /v1/reps/{rep_id}/reviews` records.
    pub sha256: String,
    #[schema(value_type = ReviewPacket)]
    pub packet: &'a ReviewPacket,
    /// Proof that every event the packet rests on is in the log: each
    /// event's hash and audit path to the root of a signed checkpoint, and
    /// that checkpoint (format `trellis-evidence/1`, see
    /// docs/packet-evidence.md). Absent until the log's first checkpoint is
    /// signed. `trellis audit verify-packet` checks a saved body offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<Evidence>,
}

/// The evidence of the events a packet over a period ending `to` rests on:
/// the rep's events that happened by then (reviews left out, as the packet
/// leaves them out) and the standards and competencies as they stood.
pub async fn packet_evidence(
    store: &dyn EventStore,
    rep_id: RepId,
    to: NaiveDate,
) -> Result<Option<Evidence>, ApiError> {
    // Nothing to prove against before the first checkpoint: read nothing.
    if store.latest_tree_checkpoint().await?.is_none() {
        return Ok(None);
    }
    let end_at = end_of_day(to);
    let mut events = rested_on(rep_events(store, rep_id).await?)?;
    events.extend(category_events(store, "standard").await?);
    events.extend(category_events(store, "competency").await?);
    let rested_on: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| e.metadata.occurred_at <= end_at)
        .collect();
    // A damaged tree is the operator's to look into: the answer says so (and,
    // a 500, is logged with it), rather than a bare internal error.
    trellis_eventstore::evidence::gather(store, &rested_on)
        .await
        .map_err(|e| match e {
            GatherError::Store(e) => e.into(),
            damaged @ GatherError::MissingNode { .. } => ApiError::Damaged(format!(
                "the evidence of the packet cannot be built: {damaged}"
            )),
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Markdown,
    Html,
}

fn format(params: &Params, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(f) = params.parsed("format", "json, md or html", |v| match v {
        "json" => Some(Format::Json),
        "md" | "markdown" => Some(Format::Markdown),
        "html" => Some(Format::Html),
        _ => None,
    })? {
        return Ok(f);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(if accept.contains("text/markdown") {
        Format::Markdown
    } else if accept.contains("text/html") {
        Format::Html
    } else {
        Format::Json
    })
}

/// A rep's review packet over a period, with its SHA-256.
///
/// `GET /v1/reps/{rep_id}/review-packet?from=&to=&format=json|md|html`:
/// replayed from the log by business time: skill levels, standards,
/// coaching, action items, support requests, improvement plans and standing
/// changes. The format is `format` if given, else the `Accept` header
/// (`text/markdown`, `text/html`), else JSON. The packet carries no note
/// text, so it is the same for every reader.
#[utoipa::path(get, path = "/v1/reps/{rep_id}/review-packet", operation_id = "get_review_packet",
    tag = "reviews",
    params(
        ("rep_id" = uuid::Uuid, Path, description = "The rep"),
        ("from" = NaiveDate, Query, description = "The period's first day (inclusive)"),
        ("to" = NaiveDate, Query, description = "The period's last day (inclusive)"),
        ("format" = Option<String>, Query, description = "`json`, `md` (or `markdown`) or \
            `html`; absent: chosen by the `Accept` header, JSON by default")),
    responses(
        (status = 200, description = "The packet and its SHA-256 (also in `x-packet-sha256`)",
            content(
                (PacketBody = "application/json"),
                (String = "text/markdown"),
                (String = "text/html")),
            headers(("x-packet-sha256" = String, description = "SHA-256 (lower-case hex) of \
                the packet's canonical JSON, whatever the format"))),
        (status = 400, description = "`from` or `to` is missing or not a date, the period ends \
            before it starts or is longer than a packet covers (731 days), or `format` is unknown",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rep (or the id is not a UUID), or the rep had not \
            joined by the period's end", body = Problem, content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn route(
    about: About<RepId>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (state, claims, rep_id) = (about.state, about.claims, about.id);
    let expected = "a date like 2026-03-31";
    let from = params.required("from", expected, |v| v.parse::<NaiveDate>().ok())?;
    let to = params.required("to", expected, |v| v.parse::<NaiveDate>().ok())?;
    if to < from {
        return Err(ApiError::BadRequest(format!(
            "the query parameter to ({to}) is before from ({from}): the period must not end \
             before it starts"
        )));
    }
    let format = format(&params, &headers)?;
    let (packet, sha256) = review_packet(&state, &claims, rep_id, from, to).await?;
    let labels = || render::Labels::read(&state, packet.team_id);
    let mut response = match format {
        Format::Json => Json(PacketBody {
            sha256: sha256.clone(),
            packet: &packet,
            evidence: packet_evidence(state.http.store(), rep_id, to).await?,
        })
        .into_response(),
        Format::Markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            render::markdown(&render::document(&packet, &sha256, &labels().await?)),
        )
            .into_response(),
        Format::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render::html(&render::document(&packet, &sha256, &labels().await?)),
        )
            .into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&sha256) {
        response.headers_mut().insert("x-packet-sha256", value);
    }
    Ok(response)
}

/// The packet as a readable document: one structure, two renderings.
pub mod render {
    use super::*;

    #[derive(Debug)]
    pub enum Block {
        Heading(u8, String),
        Para(String),
        List(Vec<String>),
        Table(Vec<String>, Vec<Vec<String>>),
    }

    /// Rounded down, as the dashboard and the growth projection show it:
    /// 79.8 against a target of 80 is 99%, not a 100% that was not met.
    fn pct(a: Option<f64>) -> String {
        a.map_or_else(|| "–".to_owned(), trellis_projections::growth::derive::pct)
    }

    fn num(v: Option<f64>) -> String {
        v.map_or_else(|| "–".to_owned(), |v| format!("{v}"))
    }

    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "–".to_owned(), |v| v.to_string())
    }

    fn kind(k: StandingKind) -> &'static str {
        match k {
            StandingKind::Departed => "departed",
            StandingKind::OnImprovementPlan => "on an improvement plan",
            StandingKind::NeedsSupport => "needs support",
            StandingKind::OnTrack => "on track",
            StandingKind::Thriving => "thriving",
        }
    }

    /// Names a packet refers to by id: its rep's team and the leaders who
    /// own action items. They are read as they stand when the document is
    /// made, for its reader, and are not part of the packet: its hash does
    /// not depend on them. An id with no name (a leader since erased) is
    /// shown as such.
    #[derive(Debug, Clone, Default)]
    pub struct Labels {
        pub team: Option<String>,
        pub leaders: BTreeMap<uuid::Uuid, String>,
        /// Each competency's name now: for one the packet does not name,
        /// because it was defined only after the period.
        pub competencies: BTreeMap<CompetencyId, String>,
    }

    impl Labels {
        /// The names of the team `team` and of every team's leaders, from
        /// the teams read model.
        pub async fn read(state: &QueryState, team: TeamId) -> Result<Labels, ApiError> {
            let teams = state
                .read
                .teams()
                .await
                .map_err(crate::collections::read_error)?;
            let mut labels = Labels::default();
            for t in teams {
                if t.team_id == team {
                    labels.team = Some(t.name.to_string());
                }
                labels.leaders.extend(
                    t.leaders
                        .into_iter()
                        .map(|(id, name)| (id.as_uuid(), name.to_string())),
                );
            }
            let competencies: Vec<trellis_projections::growth::CompetencyDoc> = state
                .read
                .all(trellis_projections::growth::kinds::COMPETENCY)
                .await
                .map_err(crate::collections::read_error)?;
            labels.competencies = competencies
                .into_iter()
                .map(|c| (c.competency_id, c.name.to_string()))
                .collect();
            Ok(labels)
        }

        /// A competency as the packet names it, or, when the packet cannot
        /// (it was defined after the period), by its name now, said so.
        pub(crate) fn competency(&self, named: Option<&String>, id: CompetencyId) -> String {
            match (named, self.competencies.get(&id)) {
                (Some(name), _) => name.clone(),
                (None, Some(now)) => format!("{now} (defined after the period)"),
                (None, None) => id.to_string(),
            }
        }

        /// An action item's owner as the packet has it (`rep`, or `leader`
        /// and the leader's id), in words.
        pub(crate) fn owner(&self, owner: &str) -> String {
            match owner.strip_prefix("leader ") {
                Some(id) => id
                    .parse::<uuid::Uuid>()
                    .ok()
                    .and_then(|id| self.leaders.get(&id))
                    .map_or_else(|| "a leader".to_owned(), |name| format!("{name} (leader)")),
                None => owner.to_owned(),
            }
        }
    }

    fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
        let n = n.into();
        format!("{n} {}", if n == 1 { one } else { many })
    }

    fn standard_kind(k: StandardKind) -> &'static str {
        match k {
            StandardKind::Quality => "quality",
            StandardKind::Quantity => "quantity",
            StandardKind::Behaviour => "behaviour",
        }
    }

    fn bucket(b: PeriodKind) -> &'static str {
        match b {
            PeriodKind::Week => "weekly",
            PeriodKind::Month => "monthly",
            PeriodKind::Quarter => "quarterly",
        }
    }

    fn category(c: SupportCategory) -> &'static str {
        match c {
            SupportCategory::Leads => "leads",
            SupportCategory::Tools => "tools",
            SupportCategory::Training => "training",
            SupportCategory::Process => "process",
            SupportCategory::Other => "other",
        }
    }

    fn outcome(o: Option<PlanOutcome>) -> &'static str {
        match o {
            None => "open",
            Some(PlanOutcome::Met) => "met",
            Some(PlanOutcome::Extended) => "extended",
            Some(PlanOutcome::NotMet) => "not met",
        }
    }

    pub fn document(p: &ReviewPacket, sha256: &str, labels: &Labels) -> Vec<Block> {
        use Block::*;
        let team = labels.team.as_ref().map_or_else(
            || format!("a team ({})", p.team_id),
            |name| format!("team {name}"),
        );
        let mut d = vec![
            Heading(1, format!("Review packet: {}", p.name)),
            Para(format!(
                "{} ({}), {team}, started {}. Period {} to {}; {} replayed.",
                p.name,
                p.role,
                p.start_date,
                p.period_from,
                p.period_to,
                plural(p.events_replayed, "event", "events")
            )),
            Heading(2, "Standing".into()),
            List(vec![
                format!(
                    "At the start: {} ({})",
                    kind(p.standing.at_start.standing),
                    p.standing.at_start.reasons.join("; ")
                ),
                format!(
                    "At the end: {} ({})",
                    kind(p.standing.at_end.standing),
                    p.standing.at_end.reasons.join("; ")
                ),
            ]),
        ];
        if !p.standing.changes.is_empty() {
            d.push(Para(
                "Standing is looked at at the end of each week (Sunday) and on the period's \
                 last day; a change is dated by the look that first saw it."
                    .into(),
            ));
            d.push(Table(
                vec!["seen on".into(), "from".into(), "to".into(), "why".into()],
                p.standing
                    .changes
                    .iter()
                    .map(|c| {
                        vec![
                            c.on.to_string(),
                            kind(c.from).into(),
                            kind(c.to).into(),
                            c.reasons.join("; "),
                        ]
                    })
                    .collect(),
            ));
        }
        d.push(Heading(2, "Skill levels".into()));
        d.push(Table(
            vec![
                "competency".into(),
                "start".into(),
                "end".into(),
                "change".into(),
            ],
            p.levels
                .iter()
                .map(|l| {
                    vec![
                        labels.competency(l.competency.as_ref(), l.competency_id),
                        opt(l.start),
                        opt(l.end),
                        l.change.map_or_else(|| "–".into(), |c| format!("{c:+}")),
                    ]
                })
                .collect(),
        ));
        d.push(Heading(2, "Standards".into()));
        for s in &p.standards {
            d.push(Heading(
                3,
                format!(
                    "{} ({}, {})",
                    s.name,
                    standard_kind(s.kind),
                    bucket(s.bucket)
                ),
            ));
            d.push(Para(format!(
                "Met {} of {} measured periods; first {}, last {}, mean {}.",
                s.periods_met,
                s.periods_measured,
                pct(s.first),
                pct(s.last),
                pct(s.mean)
            )));
            d.push(Table(
                vec![
                    "period".into(),
                    "target".into(),
                    "actual".into(),
                    "attainment".into(),
                ],
                s.periods
                    .iter()
                    .map(|r| {
                        vec![
                            r.period.clone(),
                            num(r.target),
                            num(r.actual),
                            pct(r.attainment),
                        ]
                    })
                    .collect(),
            ));
        }
        let c = &p.coaching;
        d.push(Heading(2, "Coaching and feedback".into()));
        d.push(Para(format!(
            "{} ({}); feedback: {} praise, {} constructive; {} completed.",
            plural(c.sessions, "coaching session", "coaching sessions"),
            plural(c.minutes, "minute", "minutes"),
            c.feedback_praise,
            c.feedback_constructive,
            plural(c.trainings_completed, "training", "trainings"),
        )));
        d.push(Table(
            vec![
                "competency".into(),
                "sessions".into(),
                "praise".into(),
                "constructive".into(),
            ],
            c.by_competency
                .iter()
                .map(|a| {
                    vec![
                        labels.competency(a.competency.as_ref(), a.competency_id),
                        a.sessions.to_string(),
                        a.praise.to_string(),
                        a.constructive.to_string(),
                    ]
                })
                .collect(),
        ));
        let a = &p.action_items;
        d.push(Heading(2, "Action items".into()));
        d.push(Para(format!(
            "{} completed ({} on time), {} dropped, {} overdue at the end.",
            a.completed, a.completed_on_time, a.dropped, a.overdue_at_end
        )));
        d.push(Table(
            vec![
                "item".into(),
                "owner".into(),
                "due".into(),
                "status".into(),
                "closed".into(),
            ],
            a.items
                .iter()
                .map(|i| {
                    vec![
                        i.description.clone().unwrap_or_else(|| "(private)".into()),
                        labels.owner(&i.owner),
                        i.due_on.to_string(),
                        i.status.clone(),
                        opt(i.closed_on),
                    ]
                })
                .collect(),
        ));
        let s = &p.support_requests;
        d.push(Heading(2, "Support requests".into()));
        d.push(Para(format!(
            "{} raised, {} resolved; median days to resolve: {}.",
            s.requests.len(),
            s.resolved,
            num(s.median_days_to_resolve)
        )));
        d.push(Table(
            vec![
                "category".into(),
                "raised".into(),
                "resolved".into(),
                "days".into(),
            ],
            s.requests
                .iter()
                .map(|r| {
                    vec![
                        category(r.category).to_owned(),
                        r.raised_on.to_string(),
                        opt(r.resolved_on),
                        opt(r.days_to_resolve),
                    ]
                })
                .collect(),
        ));
        d.push(Heading(2, "Improvement plans".into()));
        if p.improvement_plans.is_empty() {
            d.push(Para("None in the period.".into()));
        } else {
            d.push(Table(
                vec![
                    "started".into(),
                    "review".into(),
                    "checkpoints".into(),
                    "outcome".into(),
                    "closed".into(),
                ],
                p.improvement_plans
                    .iter()
                    .map(|pl| {
                        vec![
                            pl.started_on.to_string(),
                            pl.review_on.to_string(),
                            pl.checkpoints.to_string(),
                            outcome(pl.outcome).to_owned(),
                            opt(pl.closed_on),
                        ]
                    })
                    .collect(),
            ));
        }
        d.push(Heading(2, "Integrity".into()));
        d.push(Para(format!(
            "This packet's fingerprint: {sha256} (the SHA-256 of its canonical JSON). A \
             review recorded on it keeps the fingerprint in the log, so anyone can later show \
             that the packet was not changed."
        )));
        d
    }

    fn md_cell(s: &str) -> String {
        s.replace('|', "\\|").replace('\n', " ")
    }

    pub fn markdown(blocks: &[Block]) -> String {
        let mut out = String::new();
        for b in blocks {
            match b {
                Block::Heading(level, text) => {
                    let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(*level)));
                }
                Block::Para(text) => {
                    let _ = writeln!(out, "{text}\n");
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(out, "- {i}");
                    }
                    out.push('\n');
                }
                Block::Table(head, rows) => {
                    let cells = |r: &[String]| {
                        format!(
                            "| {} |",
                            r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                        )
                    };
                    let _ = writeln!(out, "{}", cells(head));
                    let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
                    for r in rows {
                        let _ = writeln!(out, "{}", cells(r));
                    }
                    out.push('\n');
                }
            }
        }
        out
    }

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    pub fn html(blocks: &[Block]) -> String {
        let title = blocks
            .iter()
            .find_map(|b| match b {
                Block::Heading(1, t) => Some(esc(t)),
                _ => None,
            })
            .unwrap_or_default();
        let mut out = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
             table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em}}\
             .scroll{{overflow-x:auto}}</style>\
             </head><body>\n"
        );
        out.push_str(&html_body(blocks));
        out.push_str("</body></html>\n");
        out
    }

    /// The blocks as HTML elements, to embed in a page of one's own (the
    /// dashboard's packet page); every text is escaped.
    pub fn html_body(blocks: &[Block]) -> String {
        let mut out = String::new();
        for b in blocks {
            match b {
                Block::Heading(level, text) => {
                    let _ = writeln!(out, "<h{level}>{}</h{level}>", esc(text));
                }
                Block::Para(text) => {
                    let _ = writeln!(out, "<p>{}</p>", esc(text));
                }
                Block::List(items) => {
                    out.push_str("<ul>");
                    for i in items {
                        let _ = write!(out, "<li>{}</li>", esc(i));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(head, rows) => {
                    // Scrolls sideways inside itself on a narrow screen,
                    // rather than the page.
                    out.push_str("<div class=\"scroll\"><table><thead><tr>");
                    for h in head {
                        let _ = write!(out, "<th>{}</th>", esc(h));
                    }
                    out.push_str("</tr></thead><tbody>");
                    for r in rows {
                        out.push_str("<tr>");
                        for c in r {
                            let _ = write!(out, "<td>{}</td>", esc(c));
                        }
                        out.push_str("</tr>");
                    }
                    out.push_str("</tbody></table></div>\n");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::{Value, json};
    use trellis_eventstore::{Checkpoint, Hash, Metadata, RecordedEvent, StreamId};
    use trellis_projections::projection::Envelope;
    use uuid::Uuid;

    use crate::packet::render::Labels;
    use crate::packet::{rested_on, rests_on};

    #[test]
    fn an_action_item_s_leader_is_named_and_an_unknown_one_is_not_shown_by_id() {
        let (known, erased) = (Uuid::now_v7(), Uuid::now_v7());
        let labels = Labels {
            team: None,
            leaders: [(known, "Lee Leader".to_owned())].into(),
            competencies: Default::default(),
        };
        assert_eq!(labels.owner("rep"), "rep");
        assert_eq!(
            labels.owner(&format!("leader {known}")),
            "Lee Leader (leader)"
        );
        assert_eq!(labels.owner(&format!("leader {erased}")), "a leader");
    }

    /// The packet names a competency as it stood in the period; one defined
    /// only after it goes by its name now, said so, and its id only when
    /// even that is unknown.
    #[test]
    fn a_competency_the_packet_cannot_name_is_named_as_it_is_now() {
        let (later, unknown) = (
            trellis_domain::CompetencyId::from_uuid(Uuid::now_v7()),
            trellis_domain::CompetencyId::from_uuid(Uuid::now_v7()),
        );
        let labels = Labels {
            competencies: [(later, "Negotiation".to_owned())].into(),
            ..Labels::default()
        };
        let then = "Discovery".to_owned();
        assert_eq!(labels.competency(Some(&then), later), "Discovery");
        assert_eq!(
            labels.competency(None, later),
            "Negotiation (defined after the period)"
        );
        assert_eq!(labels.competency(None, unknown), unknown.to_string());
    }

    fn stored(version: u64, event_type: &str, payload: Value) -> RecordedEvent {
        RecordedEvent {
            global_position: version,
            checkpoint: Checkpoint {
                tx: version,
                position: version,
            },
            event_id: Uuid::now_v7(),
            stream_id: StreamId::new(format!("rep-{}", Uuid::nil())).unwrap(),
            stream_version: version,
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload,
            metadata: Metadata {
                actor: "leader-1".into(),
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                occurred_at: Utc::now(),
                recorded_at: Utc::now(),
                traceparent: None,
            },
            prev_hash: Hash::default(),
            hash: Hash::default(),
            seal: None,
            content_digest: Default::default(),
        }
    }

    fn training(version: u64) -> RecordedEvent {
        stored(
            version,
            "TrainingCompleted",
            json!({
                "training_id": Uuid::now_v7(),
                "title": "Discovery basics",
                "competency_id": null,
                "completed_on": "2026-02-03",
            }),
        )
    }

    fn review(version: u64) -> RecordedEvent {
        stored(
            version,
            "ReviewHeld",
            json!({
                "review_id": Uuid::now_v7(),
                "period_from": "2026-02-09",
                "period_to": "2026-02-28",
                "packet_sha256": "ab".repeat(32),
                "on": "2026-02-28",
            }),
        )
    }

    /// The evidence proves, of the stored events, exactly those the packet
    /// replays of the same events decoded: everything but recorded reviews.
    #[test]
    fn the_evidence_keeps_the_events_the_packet_replays_and_leaves_out_reviews() {
        let events = vec![training(1), review(2), training(3), review(4)];
        let replayed: Vec<u64> = events
            .iter()
            .map(|e| Envelope::decode(e).expect("decodes"))
            .filter(|e| rests_on(&e.event))
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(replayed, [1, 3]);
        let proven: Vec<u64> = rested_on(events)
            .expect("decodes")
            .iter()
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(proven, replayed);
    }

    /// An event the packet could not decode (and so could not be built on)
    /// is an error, not quietly proven or left out.
    #[test]
    fn a_stored_event_that_does_not_decode_is_an_error() {
        let broken = stored(2, "ReviewHeld", json!({ "on": 3 }));
        let error = rested_on(vec![training(1), broken]).unwrap_err();
        assert!(error.to_string().contains("does not decode"), "{error}");
    }
}
