//! The pure core of Trellis: the vocabulary of how salespeople grow, every event
//! that can be recorded about it, and the rules that decide whether a command is
//! accepted.
//!
//! # What it owns
//!
//! - Value types parsed at the edge (ids, [`SkillLevel`], [`Period`], [`Target`], …):
//!   once you hold one, it is valid.
//! - The event catalogue: one struct per event, a stable type name and a schema
//!   version each, grouped per aggregate and gathered in [`Event`], with upcasting
//!   of old schema versions on read ([`Event::from_stored`]).
//! - Six aggregates — team, competency, standard, rep, alert, leader — each a pure
//!   `decide(&State, Command) -> Result<Vec<Event>, Rejection>` and
//!   `evolve(State, &Event) -> State`.
//! - [`Rejection`]: why a command was refused, in the user's words.
//!
//! # What it must not do
//!
//! No I/O, no async, no clock reads (`Utc::now` is never called: time arrives in
//! commands as `now`), no random ids (ids arrive from the caller), and no
//! dependency on any database, network, runtime or wire-format crate. Nothing
//! here knows about storage, HTTP or protobuf; the edges convert by hand.
//!
//! # Layout
//!
//! - [`ids`] — `RepId`, `TeamId`, … (UUID newtypes) and [`stream_id`].
//! - [`values`] — `NonEmptyText`/`Note`, `PersonName`, `Name`, `Role`,
//!   `SkillLevel`, `MetricName`, `MetricValue`, `Target`, `Rubric`, `Sha256Hex`,
//!   and [`ValueError`] for anything that fails to parse.
//! - [`period`] — [`Period`] (`2026-W05`, `2026-03`, `2026-Q1`) and [`PeriodKind`].
//! - [`event`] — [`Event`], [`DecodeError`], the [`EventPayload`] trait.
//! - `upcast` (private) — old schema versions to current, one step at a time.
//! - [`aggregate`] — the [`Aggregate`] trait shared by the four aggregates.
//! - [`team`], [`competency`], [`standard`], [`rep`] — each aggregate's events,
//!   state, commands, `decide` and `evolve`. [`standard`] also holds
//!   [`attainment`] and [`ramp_adjusted_target`].
//! - [`alert`] — one occurrence of something a person must act on, raised
//!   once per occurrence key (stream `alert-<uuid v5 of the key>`).
//! - [`leader`] — a leader as a person: only the erasure of their personal
//!   data (stream `leader-<uuid>`).
//! - [`rejection`] — [`Rejection`].
//! - [`personal`] — which parts of a payload are personal data, and whose.

pub mod aggregate;
pub mod alert;
pub mod competency;
mod decode;
pub mod event;
pub mod ids;
pub mod leader;
mod payload;
pub mod period;
pub mod personal;
pub mod rejection;
pub mod rep;
pub mod standard;
pub mod team;
mod upcast;
pub mod values;

pub use aggregate::Aggregate;
pub use alert::{
    AlertAggregate, AlertCommand, AlertDetails, AlertEvent, AlertKind, AlertState, OccurrenceKey,
    Recipient,
};
pub use competency::{
    CompetencyAggregate, CompetencyCommand, CompetencyEvent, CompetencyState, CompetencyStatus,
};
pub use decode::DecodeError;
pub use event::Event;
pub use ids::{
    ActionItemId, AlertId, AssessmentId, CompetencyId, FeedbackId, LeaderId, MeasurementId, PlanId,
    RepId, ReviewId, SessionId, StandardId, SupportRequestId, TeamId, TrainingId, stream_id,
};
pub use leader::{LeaderAggregate, LeaderCommand, LeaderEvent, LeaderState};
pub use payload::EventPayload;
pub use period::{Period, PeriodKind};
pub use rejection::Rejection;
pub use rep::{RepAggregate, RepCommand, RepEvent, RepState};
pub use standard::{
    Direction, MAX_AT_MOST_ATTAINMENT, StandardAggregate, StandardCommand, StandardEvent,
    StandardKind, StandardState, StandardStatus, attainment, ramp_adjusted_target,
};
pub use team::{TeamAggregate, TeamCommand, TeamEvent, TeamState};
pub use values::{
    MetricName, MetricValue, Name, NonEmptyText, Note, PersonName, Role, Rubric, Sha256Hex,
    SkillLevel, Target, ValueError,
};
