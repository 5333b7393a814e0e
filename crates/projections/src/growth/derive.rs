//! The read models derived from a rep's facts and the standards: the growth
//! timeline, the rep profile (standing and phase included) and what each
//! leader did for the rep. Pure functions of their inputs; no clock.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use trellis_domain::rep::{
    FeedbackKind, Owner, PlanOutcome, PlanTarget, SupportCategory, Visibility,
};
use trellis_domain::{
    ActionItemId, CompetencyId, Direction, FeedbackId, LeaderId, MetricName, MetricValue, Period,
    PeriodKind, PersonName, PlanId, RepId, Role, SessionId, StandardId, StandardKind,
    SupportRequestId, TeamId, TrainingId, attainment, ramp_adjusted_target,
};

use super::model::*;
use crate::stats::mean;

/// An attainment below this is a standard missed badly: one such period is
/// enough for "needs support".
pub const MISSED_BADLY: f64 = 0.8;

/// The longest timeline derived, in periods of one kind (a safety net against
/// absurd dates; 20 years of weeks).
const MAX_PERIODS: usize = 20 * 53;

// ---------------------------------------------------------------------------
// Growth timeline

/// Weeks, months and quarters a recent timeline keeps
/// ([`GrowthTimeline::recent`]): a quarter of weeks, half a year of months
/// and a year of quarters, each with the one in progress.
pub const RECENT_WEEKS: usize = 14;
pub const RECENT_MONTHS: usize = 7;
pub const RECENT_QUARTERS: usize = 5;

/// How many of the last rows of each bucket a partial timeline keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    pub weeks: usize,
    pub months: usize,
    pub quarters: usize,
}

impl Tail {
    /// Kind `recent_timeline`: what the team pages read of each member, a
    /// tenth of a two-year timeline.
    pub const RECENT: Tail = Tail {
        weeks: RECENT_WEEKS,
        months: RECENT_MONTHS,
        quarters: RECENT_QUARTERS,
    };
    /// Kind `current_timeline`: the last week, month and quarter (those in
    /// progress, for a rep still recording), what a team's view of the
    /// period in progress reads of each member.
    pub const CURRENT: Tail = Tail {
        weeks: 1,
        months: 1,
        quarters: 1,
    };

    fn of(self, kind: PeriodKind) -> usize {
        match kind {
            PeriodKind::Week => self.weeks,
            PeriodKind::Month => self.months,
            PeriodKind::Quarter => self.quarters,
        }
    }
}

/// A rep's growth, period by period. Kind `growth_timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowthTimeline {
    pub rep_id: RepId,
    pub weeks: Vec<PeriodRow>,
    pub months: Vec<PeriodRow>,
    pub quarters: Vec<PeriodRow>,
}

impl GrowthTimeline {
    /// The rows of one bucket.
    pub fn rows(&self, kind: PeriodKind) -> &[PeriodRow] {
        match kind {
            PeriodKind::Week => &self.weeks,
            PeriodKind::Month => &self.months,
            PeriodKind::Quarter => &self.quarters,
        }
    }

    /// The last rows of each bucket only, as many as `keep` says.
    pub fn tail(&self, keep: Tail) -> GrowthTimeline {
        let last = |rows: &[PeriodRow], n: usize| rows[rows.len().saturating_sub(n)..].to_vec();
        GrowthTimeline {
            rep_id: self.rep_id,
            weeks: last(&self.weeks, keep.weeks),
            months: last(&self.months, keep.months),
            quarters: last(&self.quarters, keep.quarters),
        }
    }

    /// Whether this timeline, taken by [`GrowthTimeline::tail`] with `keep`
    /// (or whole), still holds every row of `kind` from the period
    /// containing `from` on (a rep with fewer rows than are kept has them
    /// all).
    pub fn tail_covers(&self, keep: Tail, kind: PeriodKind, from: NaiveDate) -> bool {
        let rows = self.rows(kind);
        rows.len() < keep.of(kind) || rows.first().is_some_and(|r| r.start <= from)
    }

    /// [`Tail::RECENT`]'s tail. Kind `recent_timeline`.
    pub fn recent(&self) -> GrowthTimeline {
        self.tail(Tail::RECENT)
    }

    /// [`GrowthTimeline::tail_covers`] for [`Tail::RECENT`].
    pub fn recent_covers(&self, kind: PeriodKind, from: NaiveDate) -> bool {
        self.tail_covers(Tail::RECENT, kind, from)
    }

    /// The row of one period, if the timeline covers it.
    pub fn row(&self, period: Period) -> Option<&PeriodRow> {
        let rows = self.rows(period.kind());
        rows.binary_search_by_key(&period.start(), |r| r.period.start())
            .ok()
            .map(|i| &rows[i])
    }
}

/// One week, month or quarter of a rep's growth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodRow {
    pub period: Period,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The rep's Nth period of this kind since their start date (1 = the first).
    pub period_index: u32,
    /// Role and team on the period's last day.
    pub role: Role,
    pub team_id: TeamId,
    /// Level per competency at the end of the period (latest assessment on or before its last day).
    pub levels: BTreeMap<CompetencyId, u8>,
    /// Standards of this period length that apply to the rep's role, or that
    /// the rep has a measurement for.
    pub standards: Vec<StandardRow>,
    /// Mean attainment over the applying standards of each kind that have one.
    pub quality_attainment: Option<f64>,
    pub quantity_attainment: Option<f64>,
    pub behaviour_attainment: Option<f64>,
    /// Measurements of this period length for metrics no standard covers.
    pub other_measurements: BTreeMap<MetricName, f64>,
    pub feedback: BTreeMap<CompetencyId, FeedbackCount>,
    pub coaching_sessions: u32,
    pub coaching_minutes: u32,
    /// Sessions that focused on each competency.
    pub coaching_focus: BTreeMap<CompetencyId, u32>,
    /// Action items due in the period.
    pub action_items_due: u32,
    /// Action items completed in the period, and of those, on or before their due date.
    pub action_items_completed: u32,
    pub action_items_completed_on_time: u32,
    /// Items due before the period's last day and closed only after it: overdue at its end.
    pub action_items_overdue_closed_later: u32,
    /// Due dates (before the period's last day) of items still open in the
    /// log. Whether they were overdue at the period's end depends on today,
    /// so the query decides ([`crate::query::overdue_in`]).
    pub open_action_items_due: Vec<NaiveDate>,
    pub trainings_completed: Vec<TrainingRow>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackCount {
    pub praise: u32,
    pub constructive: u32,
    /// Of those, how many the rep has acknowledged (by now).
    #[serde(default)]
    pub acknowledged: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRow {
    pub training_id: TrainingId,
    pub title: trellis_domain::Name,
    pub competency_id: Option<CompetencyId>,
}

/// One standard in one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardRow {
    pub standard_id: StandardId,
    pub name: trellis_domain::Name,
    pub metric: MetricName,
    pub kind: StandardKind,
    pub direction: Direction,
    /// Whether the version in force on the period's first day applies to the rep's role.
    pub applies: bool,
    /// That version, when one is in force.
    pub version: Option<u32>,
    pub actual: Option<f64>,
    /// The version's full target, and the target for this rep in this period
    /// (ramp-adjusted by the period index), when the standard applies.
    pub full_target: Option<f64>,
    pub target: Option<f64>,
    /// The ramp step's percentage, when the rep is still on the ramp.
    pub ramp_percent: Option<u16>,
    pub attainment: Option<f64>,
}

impl StandardRow {
    /// Met: an attainment of 1.0 or more.
    pub fn met(&self) -> Option<bool> {
        self.attainment.map(|a| a >= 1.0)
    }
}

/// The last business date the facts mention (at least the start date).
fn last_date(facts: &RepFacts) -> NaiveDate {
    let mut dates: Vec<NaiveDate> = vec![facts.start_date];
    dates.extend(facts.roles.iter().map(|d| d.from));
    dates.extend(facts.teams.iter().map(|d| d.from));
    dates.extend(facts.departed_on);
    dates.extend(facts.acknowledged.values().copied());
    dates.extend(facts.assessments.values().map(|a| a.assessed_on));
    dates.extend(facts.measurements.values().map(|m| m.period.start()));
    dates.extend(facts.feedback.values().map(|f| f.given_on));
    dates.extend(facts.sessions.values().map(|s| s.held_on));
    dates.extend(
        facts
            .action_items
            .values()
            .filter_map(|i| i.status.closed_on()),
    );
    dates.extend(facts.trainings.values().map(|t| t.completed_on));
    for request in facts.support_requests.values() {
        dates.push(request.raised_on);
        dates.extend(request.acknowledged.map(|(_, on)| on));
        dates.extend(request.resolved.map(|(_, on)| on));
    }
    for plan in facts.plans.values() {
        dates.push(plan.started_on);
        dates.extend(plan.checkpoints.iter().copied());
        dates.extend(plan.closed.map(|(_, on)| on));
    }
    dates.extend(facts.reviews_held.iter().copied());
    dates.into_iter().max().unwrap_or(facts.start_date)
}

/// The periods of `kind` from the rep's start to `to`, at most the last
/// [`MAX_PERIODS`] of them: a rep who started decades ago keeps the
/// periods where their records are.
fn periods(kind: PeriodKind, from: NaiveDate, to: NaiveDate) -> Vec<Period> {
    let first = Period::containing(kind, from);
    let mut period = Period::containing(kind, to.max(from));
    let mut out = vec![period];
    while period > first && out.len() < MAX_PERIODS {
        let Some(day_before) = period.start().pred_opt() else {
            break;
        };
        period = Period::containing(kind, day_before);
        out.push(period);
    }
    out.reverse();
    out
}

/// The rep's growth timeline, judged against `standards`.
pub fn timeline(facts: &RepFacts, standards: &BTreeMap<StandardId, StandardDoc>) -> GrowthTimeline {
    let end = last_date(facts);
    let rows = |kind| rows_of(kind, facts, standards, end);
    GrowthTimeline {
        rep_id: facts.rep_id,
        weeks: rows(PeriodKind::Week),
        months: rows(PeriodKind::Month),
        quarters: rows(PeriodKind::Quarter),
    }
}

fn rows_of(
    kind: PeriodKind,
    facts: &RepFacts,
    standards: &BTreeMap<StandardId, StandardDoc>,
    end: NaiveDate,
) -> Vec<PeriodRow> {
    let periods = periods(kind, facts.start_date, end);
    let Some(&last) = periods.last() else {
        return vec![];
    };
    let first = periods[0];
    let index_of = |date: NaiveDate| -> Option<usize> {
        let p = Period::containing(kind, date);
        (first <= p && p <= last).then(|| periods.binary_search(&p).ok())?
    };

    // The live measurement of each metric and period (the latest recorded, if ever two).
    let mut measured: BTreeMap<(&MetricName, Period), &MeasurementFact> = BTreeMap::new();
    for m in facts
        .measurements
        .values()
        .filter(|m| m.period.kind() == kind)
    {
        let slot = measured.entry((&m.metric, m.period)).or_insert(m);
        if m.seq > slot.seq {
            *slot = m;
        }
    }
    let kind_standards: Vec<&StandardDoc> =
        standards.values().filter(|s| s.period == kind).collect();
    let covered: BTreeSet<&MetricName> = kind_standards.iter().map(|s| &s.metric).collect();

    let mut assessments: Vec<&AssessmentFact> = facts.assessments.values().collect();
    assessments.sort_by_key(|a| (a.assessed_on, a.seq));
    let mut next_assessment = 0;
    let mut levels: BTreeMap<CompetencyId, u8> = BTreeMap::new();

    let mut rows: Vec<PeriodRow> = Vec::with_capacity(periods.len());
    for (i, &period) in periods.iter().enumerate() {
        let (start, end) = (period.start(), period.end());
        while let Some(a) = assessments
            .get(next_assessment)
            .filter(|a| a.assessed_on <= end)
        {
            levels.insert(a.competency_id, a.level.get());
            next_assessment += 1;
        }
        let role = at(&facts.roles, end)
            .cloned()
            .unwrap_or_else(|| facts.roles[0].value.clone());
        let team_id = at(&facts.teams, end)
            .copied()
            .unwrap_or(facts.teams[0].value);
        // The rep's Nth period since their start (the first kept of a
        // timeline longer than it keeps is not their first).
        let period_index = period
            .ordinal_since(facts.start_date)
            .unwrap_or_else(|| u32::try_from(i + 1).unwrap_or(u32::MAX));
        let mut standard_rows = Vec::new();
        for standard in &kind_standards {
            let version = standard.version_in_force(start);
            let applies = version.is_some_and(|v| v.roles.contains(&role));
            let actual = measured.get(&(&standard.metric, period)).map(|m| m.value);
            if !applies && actual.is_none() {
                continue;
            }
            let version_applying = version.filter(|_| applies);
            let ordinal = period_index;
            let target = version_applying.map(|v| ramp_adjusted_target(v.target, &v.ramp, ordinal));
            let ramp_percent = version_applying.and_then(|v| {
                v.ramp
                    .iter()
                    .find(|step| step.period_index == ordinal)
                    .map(|step| step.percent_of_target)
            });
            let attained = match (actual, target) {
                (Some(actual), Some(target)) => attainment(standard.direction, actual, target),
                _ => None,
            };
            standard_rows.push(StandardRow {
                standard_id: standard.standard_id,
                name: standard.name.clone(),
                metric: standard.metric.clone(),
                kind: standard.kind,
                direction: standard.direction,
                applies,
                version: version.map(|v| v.version),
                actual: actual.map(MetricValue::get),
                full_target: version_applying.map(|v| v.target.get()),
                target: target.map(|t| t.get()),
                ramp_percent,
                attainment: attained,
            });
        }
        let kind_mean = |k: StandardKind| {
            mean(
                standard_rows
                    .iter()
                    .filter(|r| r.applies && r.kind == k)
                    .filter_map(|r| r.attainment),
            )
        };
        let other_measurements = measured
            .iter()
            .filter(|((metric, p), _)| *p == period && !covered.contains(metric))
            .map(|((metric, _), m)| ((*metric).clone(), m.value.get()))
            .collect();
        rows.push(PeriodRow {
            period,
            start,
            end,
            period_index,
            role,
            team_id,
            levels: levels.clone(),
            quality_attainment: kind_mean(StandardKind::Quality),
            quantity_attainment: kind_mean(StandardKind::Quantity),
            behaviour_attainment: kind_mean(StandardKind::Behaviour),
            standards: standard_rows,
            other_measurements,
            feedback: BTreeMap::new(),
            coaching_sessions: 0,
            coaching_minutes: 0,
            coaching_focus: BTreeMap::new(),
            action_items_due: 0,
            action_items_completed: 0,
            action_items_completed_on_time: 0,
            action_items_overdue_closed_later: 0,
            open_action_items_due: vec![],
            trainings_completed: vec![],
        });
    }

    for feedback in facts.feedback.values() {
        if let Some(i) = index_of(feedback.given_on) {
            let count = rows[i].feedback.entry(feedback.competency_id).or_default();
            match feedback.kind {
                FeedbackKind::Praise => count.praise += 1,
                FeedbackKind::Constructive => count.constructive += 1,
            }
            if feedback.acknowledged_on.is_some() {
                count.acknowledged += 1;
            }
        }
    }
    for session in facts.sessions.values() {
        if let Some(i) = index_of(session.held_on) {
            let row = &mut rows[i];
            row.coaching_sessions += 1;
            row.coaching_minutes += session.minutes;
            for competency in &session.focus {
                *row.coaching_focus.entry(*competency).or_default() += 1;
            }
        }
    }
    for (id, training) in &facts.trainings {
        if let Some(i) = index_of(training.completed_on) {
            rows[i].trainings_completed.push(TrainingRow {
                training_id: *id,
                title: training.title.clone(),
                competency_id: training.competency_id,
            });
        }
    }
    for item in facts.action_items.values() {
        if let Some(i) = index_of(item.due_on) {
            rows[i].action_items_due += 1;
        }
        if let ItemStatus::Completed(on) = item.status
            && let Some(i) = index_of(on)
        {
            rows[i].action_items_completed += 1;
            if trellis_domain::rep::done_on_time(on, item.due_on) {
                rows[i].action_items_completed_on_time += 1;
            }
        }
        let closed = item.status.closed_on();
        // Overdue at the row's end, if still open then.
        for row in rows
            .iter_mut()
            .filter(|r| trellis_domain::rep::overdue_on(item.due_on, r.end))
        {
            match closed {
                Some(on) if on > row.end => row.action_items_overdue_closed_later += 1,
                Some(_) => {}
                None => row.open_action_items_due.push(item.due_on),
            }
        }
    }
    for row in &mut rows {
        row.open_action_items_due.sort();
    }
    rows
}

// ---------------------------------------------------------------------------
// Rep profile

/// Who a rep is and where they stand. Kind `rep_profile`.
///
/// Everything here follows from the log alone. What depends on today (which
/// open action items are overdue, and the standing that follows from that) is
/// added by [`crate::query::rep_profile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepProfile {
    pub rep_id: RepId,
    pub name: PersonName,
    pub team_id: TeamId,
    pub role: Role,
    /// Tenure runs from the start date.
    pub start_date: NaiveDate,
    pub status: RepStatus,
    pub departed_on: Option<NaiveDate>,
    /// When the rep's personal data was erased; absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_on: Option<NaiveDate>,
    pub team_history: Vec<Dated<TeamId>>,
    pub role_history: Vec<Dated<Role>>,
    pub levels: BTreeMap<CompetencyId, CurrentLevel>,
    pub open_action_items: Vec<OpenActionItem>,
    /// Every support request, oldest first.
    pub support_requests: Vec<SupportRequestView>,
    pub open_plan: Option<PlanView>,
    /// Every improvement plan, oldest first.
    pub plans: Vec<PlanView>,
    pub last_coached_on: Option<NaiveDate>,
    pub coaching_sessions: u32,
    pub standing: Standing,
    pub phase: PhaseView,
    /// The standards the rep acknowledged: each version, and when.
    #[serde(default)]
    pub acknowledged_standards: Vec<StandardAcknowledgement>,
}

/// The feedback a rep was given (retracted feedback left out), oldest
/// first: whether and when they acknowledged it. Kind `rep_feedback`.
///
/// Kept apart from the [`RepProfile`]: it grows with every piece of
/// feedback (about a quarter of a kilobyte each), and the pages and views
/// that read many profiles at once (a team, a leader's reps, every rep an
/// admin lists) never show it. A single rep's profile view adds it back
/// ([`crate::query::rep_profile`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepFeedback {
    pub rep_id: RepId,
    pub feedback: Vec<FeedbackView>,
}

/// A piece of feedback, as the profile shows it: its id and what the
/// projection keeps of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackView {
    pub feedback_id: FeedbackId,
    #[serde(flatten)]
    pub fact: FeedbackFact,
}

/// A standard's version the rep acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardAcknowledgement {
    pub standard_id: StandardId,
    pub version: u32,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepStatus {
    Active,
    Departed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentLevel {
    pub level: u8,
    pub assessed_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenActionItem {
    pub action_item_id: ActionItemId,
    pub session_id: SessionId,
    pub description: trellis_domain::Note,
    pub owner: Owner,
    pub due_on: NaiveDate,
    pub visibility: Visibility,
}

impl OpenActionItem {
    /// Overdue on `today`: its due day has passed and it is still open.
    pub fn overdue_on(&self, today: NaiveDate) -> bool {
        trellis_domain::rep::overdue_on(self.due_on, today)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportRequestView {
    pub request_id: SupportRequestId,
    pub category: SupportCategory,
    pub description: trellis_domain::Note,
    pub raised_on: NaiveDate,
    pub acknowledged_on: Option<NaiveDate>,
    pub resolved_on: Option<NaiveDate>,
    pub resolved_by: Option<LeaderId>,
    /// Calendar days from raised to resolved.
    pub days_to_resolve: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub plan_id: PlanId,
    pub leader_id: LeaderId,
    pub targets: Vec<PlanTarget>,
    pub started_on: NaiveDate,
    pub review_on: NaiveDate,
    pub checkpoints: Vec<NaiveDate>,
    pub outcome: Option<PlanOutcome>,
    pub closed_on: Option<NaiveDate>,
}

/// Derived standing, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandingKind {
    Departed,
    OnImprovementPlan,
    NeedsSupport,
    OnTrack,
    Thriving,
}

/// The standing and the reasons that made it so, in words a leader reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    pub standing: StandingKind,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Quality,
    Quantity,
}

/// Quality first, then quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseView {
    pub phase: Phase,
    /// N: consecutive periods every quality standard must be met for.
    pub gate_periods: u32,
    /// The last day of the period in which the last quality standard
    /// completed its run of N met periods.
    pub quality_gate_passed_on: Option<NaiveDate>,
    pub standards: Vec<GateStandard>,
    pub reason: String,
}

/// One quality standard's progress towards the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateStandard {
    pub standard_id: StandardId,
    pub name: trellis_domain::Name,
    /// Met periods in a row up to the latest measured one.
    pub consecutive_met: u32,
    /// The period in which the first run of N met periods completed.
    pub gate_met_in: Option<Period>,
}

/// An attainment as a whole percentage, rounded down: 99.75% of a target
/// is a miss and must not read 100%. (The tolerance keeps an exact 80% of
/// a target, computed as 79.999…, at 80%.) Every place that shows an
/// attainment shows it through this: the profile's reasons, the dashboard,
/// the review packet's document.
pub fn pct(attainment: f64) -> String {
    format!("{:.0}%", (attainment * 100.0 + 1e-9).floor())
}

/// The rep's profile, given their facts, timeline and the standards.
pub fn profile(
    facts: &RepFacts,
    timeline: &GrowthTimeline,
    standards: &BTreeMap<StandardId, StandardDoc>,
    gate_periods: u32,
) -> RepProfile {
    let role = facts
        .roles
        .last()
        .map_or_else(|| facts.roles[0].value.clone(), |d| d.value.clone());
    let team_id = facts.teams.last().map_or(facts.teams[0].value, |d| d.value);

    let mut assessments: Vec<&AssessmentFact> = facts.assessments.values().collect();
    assessments.sort_by_key(|a| (a.assessed_on, a.seq));
    let mut levels = BTreeMap::new();
    for a in assessments {
        levels.insert(
            a.competency_id,
            CurrentLevel {
                level: a.level.get(),
                assessed_on: a.assessed_on,
            },
        );
    }

    let mut open_action_items: Vec<OpenActionItem> = facts
        .action_items
        .iter()
        .filter(|(_, i)| i.status == ItemStatus::Open)
        .map(|(id, i)| OpenActionItem {
            action_item_id: *id,
            session_id: i.session_id,
            description: i.description.clone(),
            owner: i.owner,
            due_on: i.due_on,
            visibility: i.visibility,
        })
        .collect();
    open_action_items.sort_by_key(|i| (i.due_on, i.action_item_id));

    let mut support_requests: Vec<SupportRequestView> = facts
        .support_requests
        .iter()
        .map(|(id, r)| SupportRequestView {
            request_id: *id,
            category: r.category,
            description: r.description.clone(),
            raised_on: r.raised_on,
            acknowledged_on: r.acknowledged.map(|(_, on)| on),
            resolved_on: r.resolved.map(|(_, on)| on),
            resolved_by: r.resolved.map(|(leader, _)| leader),
            days_to_resolve: r.resolved.map(|(_, on)| (on - r.raised_on).num_days()),
        })
        .collect();
    support_requests.sort_by_key(|r| (r.raised_on, r.request_id));

    let mut plans: Vec<PlanView> = facts
        .plans
        .iter()
        .map(|(id, p)| PlanView {
            plan_id: *id,
            leader_id: p.leader_id,
            targets: p.targets.clone(),
            started_on: p.started_on,
            review_on: p.review_on,
            checkpoints: p.checkpoints.clone(),
            outcome: p.closed.map(|(o, _)| o),
            closed_on: p.closed.map(|(_, on)| on),
        })
        .collect();
    plans.sort_by_key(|p| (p.started_on, p.plan_id));
    let open_plan = plans.iter().rev().find(|p| p.outcome.is_none()).cloned();

    // Kept as `{standard}/v{version}`.
    let mut acknowledged_standards: Vec<StandardAcknowledgement> = facts
        .acknowledged
        .iter()
        .filter_map(|(key, on)| {
            let (id, version) = key.split_once("/v")?;
            Some(StandardAcknowledgement {
                standard_id: StandardId::from_uuid(uuid::Uuid::parse_str(id).ok()?),
                version: version.parse().ok()?,
                on: *on,
            })
        })
        .collect();
    acknowledged_standards.sort_by_key(|a| (a.on, a.standard_id, a.version));
    let last_coached_on = facts.sessions.values().map(|s| s.held_on).max();
    let phase = phase(facts, timeline, standards, &role, gate_periods);
    let standing = standing(
        facts,
        timeline,
        &support_requests,
        open_plan.as_ref(),
        &phase,
    );

    RepProfile {
        rep_id: facts.rep_id,
        name: facts.name.clone(),
        team_id,
        role,
        start_date: facts.start_date,
        status: if facts.departed_on.is_some() {
            RepStatus::Departed
        } else {
            RepStatus::Active
        },
        departed_on: facts.departed_on,
        erased_on: facts.erased_on,
        team_history: facts.teams.clone(),
        role_history: facts.roles.clone(),
        levels,
        open_action_items,
        support_requests,
        open_plan,
        plans,
        last_coached_on,
        coaching_sessions: u32::try_from(facts.sessions.len()).unwrap_or(u32::MAX),
        standing,
        phase,
        acknowledged_standards,
    }
}

/// The feedback the rep was given, oldest first.
pub fn feedback(facts: &RepFacts) -> RepFeedback {
    let mut feedback: Vec<FeedbackView> = facts
        .feedback
        .iter()
        .map(|(id, f)| FeedbackView {
            feedback_id: *id,
            fact: f.clone(),
        })
        .collect();
    feedback.sort_by_key(|f| (f.fact.given_on, f.feedback_id));
    RepFeedback {
        rep_id: facts.rep_id,
        feedback,
    }
}

/// Each applying standard's rows in a bucket, oldest first.
fn standard_rows<'a>(
    timeline: &'a GrowthTimeline,
    standard: &StandardDoc,
) -> Vec<(Period, &'a StandardRow)> {
    timeline
        .rows(standard.period)
        .iter()
        .filter_map(|row| {
            row.standards
                .iter()
                .find(|s| s.standard_id == standard.standard_id && s.applies)
                .map(|s| (row.period, s))
        })
        .collect()
}

fn phase(
    facts: &RepFacts,
    timeline: &GrowthTimeline,
    standards: &BTreeMap<StandardId, StandardDoc>,
    role: &Role,
    gate_periods: u32,
) -> PhaseView {
    let today_in_log = last_date(facts);
    let n = gate_periods.max(1);
    let quality: Vec<&StandardDoc> = standards
        .values()
        .filter(|s| s.kind == StandardKind::Quality)
        .filter(|s| {
            s.version_in_force(today_in_log)
                .is_some_and(|v| v.roles.contains(role))
        })
        .collect();
    let mut gate = Vec::new();
    for standard in &quality {
        let rows = standard_rows(timeline, standard);
        let mut run = 0u32;
        let mut gate_met_in = None;
        for (period, row) in &rows {
            if row.met() == Some(true) {
                run += 1;
                if run >= n && gate_met_in.is_none() {
                    gate_met_in = Some(*period);
                }
            } else {
                run = 0;
            }
        }
        // The current run ignores trailing periods not measured yet.
        let measured = rows
            .iter()
            .rposition(|(_, r)| r.actual.is_some())
            .map_or(&rows[..0], |last| &rows[..=last]);
        let consecutive_met = measured
            .iter()
            .rev()
            .take_while(|(_, r)| r.met() == Some(true))
            .count();
        gate.push(GateStandard {
            standard_id: standard.standard_id,
            name: standard.name.clone(),
            consecutive_met: u32::try_from(consecutive_met).unwrap_or(u32::MAX),
            gate_met_in,
        });
    }
    let passed_on = if gate.is_empty() {
        None
    } else {
        gate.iter()
            .map(|g| g.gate_met_in.map(|p| p.end()))
            .collect::<Option<Vec<_>>>()
            .and_then(|ends| ends.into_iter().max())
    };
    let (phase, reason) = match (passed_on, gate.is_empty()) {
        (Some(on), _) => (
            Phase::Quantity,
            format!(
                "quality gate passed on {on}: every quality standard met for {n} periods in a row"
            ),
        ),
        (None, true) => (
            Phase::Quality,
            format!(
                "no quality standard applies to the role {role} yet, so the quality gate cannot be passed"
            ),
        ),
        (None, false) => {
            let missing: Vec<String> = gate
                .iter()
                .filter(|g| g.gate_met_in.is_none())
                .map(|g| format!("{} ({} of {n})", g.name, g.consecutive_met.min(n)))
                .collect();
            (
                Phase::Quality,
                format!(
                    "in the quality phase: not yet met {n} periods in a row: {}",
                    missing.join(", ")
                ),
            )
        }
    };
    PhaseView {
        phase,
        gate_periods: n,
        quality_gate_passed_on: passed_on,
        standards: gate,
        reason,
    }
}

/// The latest two measured periods of each applying standard, as (name, period, attainment).
fn latest_attainments(timeline: &GrowthTimeline) -> Vec<(String, Vec<(Period, f64)>)> {
    let mut by_standard: BTreeMap<StandardId, (String, Vec<(Period, f64)>)> = BTreeMap::new();
    for kind in [PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter] {
        for row in timeline.rows(kind) {
            for s in row.standards.iter().filter(|s| s.applies) {
                if let Some(a) = s.attainment {
                    by_standard
                        .entry(s.standard_id)
                        .or_insert_with(|| (s.name.to_string(), vec![]))
                        .1
                        .push((row.period, a));
                }
            }
        }
    }
    by_standard
        .into_values()
        .map(|(name, mut rows)| {
            let keep = rows.len().saturating_sub(2);
            rows.drain(..keep);
            (name, rows)
        })
        .collect()
}

fn standing(
    facts: &RepFacts,
    timeline: &GrowthTimeline,
    support: &[SupportRequestView],
    open_plan: Option<&PlanView>,
    phase: &PhaseView,
) -> Standing {
    if let Some(on) = facts.departed_on {
        return Standing {
            standing: StandingKind::Departed,
            reasons: vec![format!("departed on {on}")],
        };
    }
    if let Some(plan) = open_plan {
        return Standing {
            standing: StandingKind::OnImprovementPlan,
            reasons: vec![format!(
                "improvement plan started on {}, review on {}",
                plan.started_on, plan.review_on
            )],
        };
    }
    let latest = latest_attainments(timeline);
    let mut reasons = Vec::new();
    for (name, rows) in &latest {
        match rows.as_slice() {
            [.., (period, a)] if *a < MISSED_BADLY => {
                reasons.push(format!("{name}: {} of target in {period}", pct(*a)));
            }
            [(p1, a1), (p2, a2)] if *a1 < 1.0 && *a2 < 1.0 => reasons.push(format!(
                "{name}: missed in {p1} ({}) and {p2} ({})",
                pct(*a1),
                pct(*a2)
            )),
            _ => {}
        }
    }
    for request in support.iter().filter(|r| r.resolved_on.is_none()) {
        reasons.push(format!(
            "support request ({}) open since {}",
            category_label(request.category),
            request.raised_on
        ));
    }
    if !reasons.is_empty() {
        return Standing {
            standing: StandingKind::NeedsSupport,
            reasons,
        };
    }
    let all_met = !latest.is_empty()
        && latest
            .iter()
            .all(|(_, rows)| rows.last().is_some_and(|(_, a)| *a >= 1.0));
    match (phase.quality_gate_passed_on, all_met) {
        (Some(on), true) => Standing {
            standing: StandingKind::Thriving,
            reasons: vec![
                format!("quality gate passed on {on}"),
                "every standard met in its latest period".to_owned(),
            ],
        },
        _ => Standing {
            standing: StandingKind::OnTrack,
            reasons: vec![if latest.is_empty() {
                "no measured standard yet".to_owned()
            } else if all_met {
                "every standard met in its latest period; quality gate not passed yet".to_owned()
            } else {
                "no standard missed badly or twice in a row".to_owned()
            }],
        },
    }
}

pub(crate) fn category_label(category: SupportCategory) -> &'static str {
    match category {
        SupportCategory::Leads => "leads",
        SupportCategory::Tools => "tools",
        SupportCategory::Training => "training",
        SupportCategory::Process => "process",
        SupportCategory::Other => "other",
    }
}

// ---------------------------------------------------------------------------
// Leader activity

/// What each leader did for this rep, by leader.
pub fn leader_activity(facts: &RepFacts) -> BTreeMap<LeaderId, LeaderActivity> {
    let mut out: BTreeMap<LeaderId, LeaderActivity> = BTreeMap::new();
    for (id, s) in &facts.sessions {
        out.entry(s.leader_id)
            .or_default()
            .sessions
            .push(LeaderSession {
                session_id: *id,
                held_on: s.held_on,
                minutes: s.minutes,
                focus: s.focus.clone(),
            });
    }
    for (id, f) in &facts.feedback {
        out.entry(f.leader_id)
            .or_default()
            .feedback
            .push(LeaderFeedback {
                feedback_id: *id,
                competency_id: f.competency_id,
                kind: f.kind,
                given_on: f.given_on,
            });
    }
    for (id, r) in &facts.support_requests {
        if let Some((leader, on)) = r.resolved {
            out.entry(leader)
                .or_default()
                .support_resolved
                .push(LeaderSupport {
                    request_id: *id,
                    category: r.category,
                    raised_on: r.raised_on,
                    resolved_on: on,
                });
        }
    }
    for (id, item) in &facts.action_items {
        if let Owner::Leader(leader) = item.owner {
            out.entry(leader)
                .or_default()
                .action_items
                .push(LeaderActionItem {
                    action_item_id: *id,
                    due_on: item.due_on,
                    status: item.status,
                });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::growth::derive::pct;

    #[test]
    fn a_missed_attainment_never_reads_100_percent() {
        assert_eq!(pct(79.8 / 80.0), "99%");
        assert_eq!(pct(0.8), "80%");
        assert_eq!(pct(1.0), "100%");
    }
}
