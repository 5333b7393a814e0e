//! The read side of Trellis: projections fold the global log into read
//! models — each rep's profile and growth timeline, teams and leaders — kept
//! in the same database as the log, and queries read them.
//!
//! # What it owns
//!
//! - The projection engine ([`engine::Engine`]): each projection is a fold over
//!   the log with its own checkpoint, written in the same transaction as the
//!   documents of each batch; live following with one active runner per
//!   projection (a PostgreSQL advisory lock held on a connection of its own;
//!   in-process for the embedded store; standbys retry every second);
//!   rebuilds from position zero into a new generation that replaces the
//!   active one atomically when caught up (folded in memory, in shards on
//!   threads of their own where the projection allows; every document
//!   derived once at the end and written in bulk, with `COPY` on
//!   PostgreSQL; a rebuild that fails or is dropped drops its generation);
//!   lag.
//! - The read-model storage of both backends ([`store`]): PostgreSQL (schema
//!   `trellis`) and the embedded SQLite file, with the same tables and views
//!   (see `README.md` in this crate).
//! - The `growth` projection ([`growth`]) and the queries over it ([`query`]):
//!   rep profile (standing and phase), growth timeline, team view, leader
//!   scorecard, coaching impact.
//!
//! # What it must not do
//!
//! - Read the clock, or anything but the events, inside a fold: `apply` is
//!   pure, and documents are serialized from `BTreeMap`s and ordered `Vec`s,
//!   so replaying from zero gives byte-for-byte the documents live processing
//!   gave. Whatever depends on today (overdue items, the standing that follows
//!   from them) is computed by [`query`] functions that take `today`.
//! - Put global positions into documents (they differ between backends).
//! - Serve HTTP: the query routes call [`query::ReadModels`].
//! - Write to the log.
//!
//! # Rules a sales leader would expect, where issue 4 is silent
//!
//! - **Version in force**: a period is judged against the version of the
//!   standard in force on the period's first day; ramps apply by the rep's
//!   Nth period of the standard's length since their start date (the
//!   domain's `Period::ordinal_since` and `ramp_adjusted_target`).
//! - **Role and team in a period**: those on the period's last day.
//! - **Timeline span**: from the period containing the start date to the one
//!   containing the latest business date the log mentions for the rep (never
//!   "today", which would make the fold read the clock).
//! - **Quality gate**: for each quality standard that applies to the rep's
//!   current role, the first run of N consecutive periods met (attainment ≥
//!   1.0; an unmeasured period breaks a run); passed on the last day of the
//!   period in which the last of those runs completed. No quality standard
//!   for the role means the gate is not passed (there is no evidence yet).
//!   A new quality standard re-opens the gate until it too is met N times.
//! - **Standing**, most serious first: departed; on an improvement plan (open
//!   plan); needs support (a standard's latest attainment below 80%, or
//!   below 100% in its last two measured periods; an open support request;
//!   at query time, overdue action items the rep owns); thriving (quality
//!   gate passed and every standard met in its latest period); otherwise on
//!   track. Every standing carries its reasons in words.
//! - **Overdue**: an action item is overdue on a day after its due date while
//!   it is open. Timeline rows count items overdue at the period's end.
//! - **Corrections**: a corrected level or value replaces the original; a
//!   retracted fact disappears (a retracted session takes its action items).
//! - **Team view**: reps on the team on the period's last day (or today, if
//!   earlier), who had started and had not left before the period began;
//!   attainment buckets met (≥ 1.0), near (0.8–1.0), missed badly (< 0.8);
//!   support requests open at that day, median days to resolve over those
//!   resolved in the period.
//! - **Leader scorecard**: over a date range; action items the leader owns
//!   are due in the range; on-time rate = on time ÷ (on time + late + overdue).
//! - **Coaching impact**: per competency, the level at the end of the week
//!   before coaching against N weeks after, and mean weekly attainment in the
//!   N weeks before against the N weeks after. Standards are not linked to
//!   competencies in the domain, so "related standards" are all the weekly
//!   standards that apply to the rep.
//!
//! # Layout
//!
//! - [`projection`] — the [`projection::Projection`] trait and [`projection::Envelope`].
//! - [`engine`] — running, rebuilding, lag.
//! - [`store`] — [`store::ReadStore`] and its two backends.
//! - [`growth`] — the `growth` projection: facts ([`growth::model`]), the fold,
//!   derived documents ([`growth::derive`]).
//! - [`query`] — pure query functions and [`query::ReadModels`].
//! - [`error`] — [`Error`].

pub mod engine;
pub mod error;
pub mod growth;
pub mod projection;
pub mod query;
pub mod stats;
pub mod store;

pub use error::Error;
