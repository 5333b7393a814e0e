//! Queries over the read models: pure functions that take the documents and
//! `today` (everything time-dependent — overdue items, the standing that
//! follows from them — is decided here, never in the fold), and
//! [`ReadModels`], which loads the documents of the active generation and
//! calls them. The HTTP layer mounts [`ReadModels`]' methods.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use trellis_domain::rep::{Owner, Visibility, done_on_time, overdue_on};
use trellis_domain::{
    CompetencyId, LeaderId, Name, Period, PeriodKind, PersonName, PlanId, RepId, StandardId,
    StandardKind, TeamId,
};

use crate::Error;
use crate::growth::derive::{
    FeedbackView, GrowthTimeline, MISSED_BADLY, OpenActionItem, PeriodRow, RepFeedback, RepProfile,
    Standing, StandingKind,
};
use crate::growth::model::{
    ItemStatus, LeaderDoc, LeaderHeader, LeaderShare, TeamDoc, at, leader_share_key,
};
use crate::growth::{NAME, Tail, kinds};
use crate::stats::{mean, median};
use crate::store::{DocPage, ReadStore, Status};

fn ratio(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------
// Rep profile

/// An open action item, with whether it is overdue today.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionItemView {
    #[serde(flatten)]
    pub item: OpenActionItem,
    pub overdue: bool,
}

/// A rep's profile as of `today`, with the feedback the rep was given.
///
/// In JSON the feedback is the profile's `feedback` field, as it was when
/// the profile document still held it.
#[derive(Debug, Clone, PartialEq)]
pub struct RepProfileView {
    pub as_of: NaiveDate,
    /// The standing today: the stored one, plus overdue action items.
    pub standing: Standing,
    pub open_action_items: Vec<ActionItemView>,
    pub overdue_action_items: u32,
    pub profile: RepProfile,
    /// Retracted feedback left out, oldest first.
    pub feedback: Vec<FeedbackView>,
}

impl Serialize for RepProfileView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Profile<'a> {
            #[serde(flatten)]
            profile: &'a RepProfile,
            feedback: &'a [FeedbackView],
        }
        #[derive(Serialize)]
        struct View<'a> {
            as_of: NaiveDate,
            standing: &'a Standing,
            open_action_items: &'a [ActionItemView],
            overdue_action_items: u32,
            profile: Profile<'a>,
        }
        View {
            as_of: self.as_of,
            standing: &self.standing,
            open_action_items: &self.open_action_items,
            overdue_action_items: self.overdue_action_items,
            profile: Profile {
                profile: &self.profile,
                feedback: &self.feedback,
            },
        }
        .serialize(serializer)
    }
}

impl RepProfileView {
    /// What the rep may see of their own profile: nothing that came from a
    /// private session, no private feedback.
    pub fn for_rep(mut self) -> Self {
        self.open_action_items
            .retain(|i| i.item.visibility == Visibility::Shared);
        self.profile
            .open_action_items
            .retain(|i| i.visibility == Visibility::Shared);
        self.feedback
            .retain(|f| f.fact.visibility == Visibility::Shared);
        self
    }
}

/// The standing on `today`: overdue action items the rep owns make a rep
/// who is otherwise thriving or on track need support; an improvement plan
/// past its review date says so.
pub fn standing_as_of(profile: &RepProfile, today: NaiveDate) -> Standing {
    let mut standing = profile.standing.clone();
    let overdue: Vec<&OpenActionItem> = profile
        .open_action_items
        .iter()
        .filter(|i| i.owner == Owner::Rep && i.overdue_on(today))
        .collect();
    match standing.standing {
        StandingKind::Departed => {}
        StandingKind::OnImprovementPlan => {
            if let Some(plan) = profile.open_plan.as_ref().filter(|p| p.review_on < today) {
                standing
                    .reasons
                    .push(format!("the plan's review was due on {}", plan.review_on));
            }
        }
        StandingKind::NeedsSupport | StandingKind::OnTrack | StandingKind::Thriving => {
            if let Some(oldest) = overdue.iter().map(|i| i.due_on).min() {
                if standing.standing != StandingKind::NeedsSupport {
                    standing.standing = StandingKind::NeedsSupport;
                    standing.reasons.clear();
                }
                standing.reasons.push(format!(
                    "{} overdue, the oldest due on {oldest}",
                    match overdue.len() {
                        1 => "1 action item".to_owned(),
                        n => format!("{n} action items"),
                    }
                ));
            }
        }
    }
    standing
}

/// The profile as of `today`, with the rep's feedback.
pub fn rep_profile(profile: RepProfile, feedback: RepFeedback, today: NaiveDate) -> RepProfileView {
    let open_action_items: Vec<ActionItemView> = profile
        .open_action_items
        .iter()
        .map(|item| ActionItemView {
            item: item.clone(),
            overdue: item.overdue_on(today),
        })
        .collect();
    RepProfileView {
        as_of: today,
        standing: standing_as_of(&profile, today),
        overdue_action_items: count(open_action_items.iter().filter(|i| i.overdue).count()),
        open_action_items,
        profile,
        feedback: feedback.feedback,
    }
}

// ---------------------------------------------------------------------------
// Growth timeline

/// One period of the timeline, with the overdue count as of `today`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineRowView {
    #[serde(flatten)]
    pub row: PeriodRow,
    /// Action items overdue at the end of the period (or today, if the period has not ended).
    pub action_items_overdue: u32,
}

/// How many action items were overdue at the end of `row`'s period, as of `today`.
pub fn overdue_in(row: &PeriodRow, today: NaiveDate) -> u32 {
    let cutoff = row.end.min(today);
    row.action_items_overdue_closed_later
        + count(
            row.open_action_items_due
                .iter()
                .filter(|d| **d < cutoff)
                .count(),
        )
}

/// The rows of one bucket that overlap `from..=to`.
pub fn growth_timeline(
    timeline: &GrowthTimeline,
    bucket: PeriodKind,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Vec<TimelineRowView> {
    timeline
        .rows(bucket)
        .iter()
        .filter(|r| r.end >= from && r.start <= to)
        .map(|row| TimelineRowView {
            action_items_overdue: overdue_in(row, today),
            row: row.clone(),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Team view

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamView {
    pub team_id: TeamId,
    pub name: Name,
    pub period: Period,
    pub as_of: NaiveDate,
    pub leaders: BTreeMap<LeaderId, PersonName>,
    /// Reps on the team during the period (on its last day, or today if earlier).
    pub headcount: u32,
    pub reps: Vec<RepId>,
    pub coaching: CoachingCoverage,
    pub attainment: Vec<AttainmentDistribution>,
    pub needs_support: Vec<RepStanding>,
    pub ramp: Vec<RampProgress>,
    pub open_plans: Vec<OpenPlan>,
    pub support: SupportSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoachingCoverage {
    pub reps_coached: u32,
    /// Share of the headcount coached at least once in the period.
    pub coverage: Option<f64>,
    pub sessions: u32,
    pub sessions_per_rep: Option<f64>,
    pub minutes: u32,
}

/// How the team's reps did against one standard in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttainmentDistribution {
    pub standard_id: StandardId,
    pub name: Name,
    pub kind: StandardKind,
    pub reps_measured: u32,
    /// Attainment ≥ 1.0.
    pub met: u32,
    /// 0.8 ≤ attainment < 1.0.
    pub near: u32,
    /// Attainment < 0.8.
    pub missed_badly: u32,
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepStanding {
    pub rep_id: RepId,
    pub name: PersonName,
    pub standing: Standing,
}

/// A new hire on a ramp: each standard's ramp step, target and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RampProgress {
    pub rep_id: RepId,
    pub name: PersonName,
    pub start_date: NaiveDate,
    pub period_index: u32,
    pub standards: Vec<RampStandard>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RampStandard {
    pub standard_id: StandardId,
    pub name: Name,
    pub ramp_percent: u16,
    pub target: Option<f64>,
    pub full_target: Option<f64>,
    pub actual: Option<f64>,
    pub attainment: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenPlan {
    pub rep_id: RepId,
    pub name: PersonName,
    pub plan_id: PlanId,
    pub started_on: NaiveDate,
    pub review_on: NaiveDate,
    pub review_overdue: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupportSummary {
    /// Open at the end of the period (or today, if earlier).
    pub open: u32,
    pub raised_in_period: u32,
    pub resolved_in_period: u32,
    /// Over the requests resolved in the period, in days.
    pub median_days_to_resolve: Option<f64>,
}

/// The team in one period, from its document and its reps' profiles and timelines.
pub fn team_view(
    team: &TeamDoc,
    reps: &[(RepProfile, GrowthTimeline)],
    period: Period,
    today: NaiveDate,
) -> TeamView {
    let cutoff = period.end().min(today);
    let members: Vec<&(RepProfile, GrowthTimeline)> = reps
        .iter()
        .filter(|(p, _)| {
            p.start_date <= cutoff
                && p.departed_on.is_none_or(|d| d >= period.start())
                && at(&p.team_history, cutoff) == Some(&team.team_id)
        })
        .collect();
    let headcount = count(members.len());

    let rows: Vec<(&RepProfile, Option<&PeriodRow>)> =
        members.iter().map(|(p, t)| (p, t.row(period))).collect();
    let sessions: u32 = rows
        .iter()
        .filter_map(|(_, r)| r.map(|r| r.coaching_sessions))
        .sum();
    let reps_coached = count(
        rows.iter()
            .filter(|(_, r)| r.is_some_and(|r| r.coaching_sessions > 0))
            .count(),
    );
    let coaching = CoachingCoverage {
        reps_coached,
        coverage: ratio(reps_coached, headcount),
        sessions,
        sessions_per_rep: ratio(sessions, headcount),
        minutes: rows
            .iter()
            .filter_map(|(_, r)| r.map(|r| r.coaching_minutes))
            .sum(),
    };

    let mut by_standard: BTreeMap<StandardId, (Name, StandardKind, Vec<f64>)> = BTreeMap::new();
    for (_, row) in &rows {
        for s in row.iter().flat_map(|r| &r.standards).filter(|s| s.applies) {
            let entry = by_standard
                .entry(s.standard_id)
                .or_insert_with(|| (s.name.clone(), s.kind, vec![]));
            entry.2.extend(s.attainment);
        }
    }
    let attainment = by_standard
        .into_iter()
        .map(
            |(standard_id, (name, kind, values))| AttainmentDistribution {
                standard_id,
                name,
                kind,
                reps_measured: count(values.len()),
                met: count(values.iter().filter(|a| **a >= 1.0).count()),
                near: count(
                    values
                        .iter()
                        .filter(|a| (MISSED_BADLY..1.0).contains(*a))
                        .count(),
                ),
                missed_badly: count(values.iter().filter(|a| **a < MISSED_BADLY).count()),
                min: values.iter().copied().reduce(f64::min),
                max: values.iter().copied().reduce(f64::max),
                median: median(values),
            },
        )
        .collect();

    let needs_support = members
        .iter()
        .filter_map(|(p, _)| {
            let standing = standing_as_of(p, today);
            matches!(
                standing.standing,
                StandingKind::NeedsSupport | StandingKind::OnImprovementPlan
            )
            .then(|| RepStanding {
                rep_id: p.rep_id,
                name: p.name.clone(),
                standing,
            })
        })
        .collect();

    let ramp = rows
        .iter()
        .filter_map(|(p, row)| {
            let row = (*row)?;
            let standards: Vec<RampStandard> = row
                .standards
                .iter()
                .filter_map(|s| {
                    Some(RampStandard {
                        standard_id: s.standard_id,
                        name: s.name.clone(),
                        ramp_percent: s.ramp_percent?,
                        target: s.target,
                        full_target: s.full_target,
                        actual: s.actual,
                        attainment: s.attainment,
                    })
                })
                .collect();
            (!standards.is_empty()).then(|| RampProgress {
                rep_id: p.rep_id,
                name: p.name.clone(),
                start_date: p.start_date,
                period_index: row.period_index,
                standards,
            })
        })
        .collect();

    let open_plans = members
        .iter()
        .filter_map(|(p, _)| {
            p.open_plan.as_ref().map(|plan| OpenPlan {
                rep_id: p.rep_id,
                name: p.name.clone(),
                plan_id: plan.plan_id,
                started_on: plan.started_on,
                review_on: plan.review_on,
                review_overdue: plan.review_on < today,
            })
        })
        .collect();

    let requests = members.iter().flat_map(|(p, _)| &p.support_requests);
    let mut support = SupportSummary {
        open: 0,
        raised_in_period: 0,
        resolved_in_period: 0,
        median_days_to_resolve: None,
    };
    let mut days = vec![];
    for r in requests {
        if r.raised_on <= cutoff && r.resolved_on.is_none_or(|on| on > cutoff) {
            support.open += 1;
        }
        if period.contains(r.raised_on) {
            support.raised_in_period += 1;
        }
        if let Some(on) = r.resolved_on.filter(|on| period.contains(*on)) {
            support.resolved_in_period += 1;
            days.push((on - r.raised_on).num_days() as f64);
        }
    }
    support.median_days_to_resolve = median(days);

    TeamView {
        team_id: team.team_id,
        name: team.name.clone(),
        period,
        as_of: today,
        leaders: team.leaders.clone(),
        headcount,
        reps: members.iter().map(|(p, _)| p.rep_id).collect(),
        coaching,
        attainment,
        needs_support,
        ramp,
        open_plans,
        support,
    }
}

// ---------------------------------------------------------------------------
// Leader scorecard

/// How well a leader served the team between two dates (inclusive).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderScorecard {
    pub leader_id: LeaderId,
    pub name: Option<PersonName>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub as_of: NaiveDate,
    pub sessions_held: u32,
    pub coaching_minutes: u32,
    pub reps_coached: u32,
    pub feedback_praise: u32,
    pub feedback_constructive: u32,
    /// Praise ÷ all feedback.
    pub praise_share: Option<f64>,
    pub support_resolved: u32,
    pub median_days_to_resolve: Option<f64>,
    /// Action items the leader owns, due in the range.
    pub action_items_due: u32,
    pub action_items_completed_on_time: u32,
    pub action_items_completed_late: u32,
    pub action_items_dropped: u32,
    /// Still open and past due today.
    pub action_items_overdue: u32,
    /// Action items the leader owns that fell due before the range and are
    /// still open today: owed all the same, though not due in the range.
    pub action_items_overdue_from_before: u32,
    /// On time ÷ (due items that are done or overdue).
    pub on_time_rate: Option<f64>,
}

pub fn leader_scorecard(
    leader: &LeaderDoc,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> LeaderScorecard {
    let within = |d: NaiveDate| from <= d && d <= to;
    let mut card = LeaderScorecard {
        leader_id: leader.leader_id,
        name: leader.name.clone(),
        from,
        to,
        as_of: today,
        sessions_held: 0,
        coaching_minutes: 0,
        reps_coached: 0,
        feedback_praise: 0,
        feedback_constructive: 0,
        praise_share: None,
        support_resolved: 0,
        median_days_to_resolve: None,
        action_items_due: 0,
        action_items_completed_on_time: 0,
        action_items_completed_late: 0,
        action_items_dropped: 0,
        action_items_overdue: 0,
        action_items_overdue_from_before: 0,
        on_time_rate: None,
    };
    let mut coached = BTreeSet::new();
    let mut days = vec![];
    for (rep_id, activity) in &leader.reps {
        for s in activity.sessions.iter().filter(|s| within(s.held_on)) {
            card.sessions_held += 1;
            card.coaching_minutes += s.minutes;
            coached.insert(*rep_id);
        }
        for f in activity.feedback.iter().filter(|f| within(f.given_on)) {
            match f.kind {
                trellis_domain::rep::FeedbackKind::Praise => card.feedback_praise += 1,
                trellis_domain::rep::FeedbackKind::Constructive => card.feedback_constructive += 1,
            }
        }
        for r in activity
            .support_resolved
            .iter()
            .filter(|r| within(r.resolved_on))
        {
            card.support_resolved += 1;
            days.push((r.resolved_on - r.raised_on).num_days() as f64);
        }
        card.action_items_overdue_from_before += count(
            activity
                .action_items
                .iter()
                .filter(|i| overdue_on(i.due_on, from) && overdue_on(i.due_on, today))
                .filter(|i| matches!(i.status, ItemStatus::Open))
                .count(),
        );
        for item in activity.action_items.iter().filter(|i| within(i.due_on)) {
            card.action_items_due += 1;
            match item.status {
                ItemStatus::Completed(on) if done_on_time(on, item.due_on) => {
                    card.action_items_completed_on_time += 1;
                }
                ItemStatus::Completed(_) => card.action_items_completed_late += 1,
                ItemStatus::Dropped(_) => card.action_items_dropped += 1,
                ItemStatus::Open if overdue_on(item.due_on, today) => {
                    card.action_items_overdue += 1;
                }
                ItemStatus::Open => {}
            }
        }
    }
    card.reps_coached = count(coached.len());
    card.praise_share = ratio(
        card.feedback_praise,
        card.feedback_praise + card.feedback_constructive,
    );
    card.median_days_to_resolve = median(days);
    card.on_time_rate = ratio(
        card.action_items_completed_on_time,
        card.action_items_completed_on_time
            + card.action_items_completed_late
            + card.action_items_overdue,
    );
    card
}

// ---------------------------------------------------------------------------
// Coaching impact

/// How one competency moved after coaching on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoachingImpact {
    pub competency_id: CompetencyId,
    /// Weeks with coaching on the competency whose after-window has ended.
    pub coached_weeks: u32,
    /// Mean level at the end of the week before coaching, and N weeks after.
    pub level_before: Option<f64>,
    pub level_after: Option<f64>,
    /// Mean attainment (over applying weekly standards) in the N weeks before
    /// and the N weeks after the coaching week.
    pub attainment_before: Option<f64>,
    pub attainment_after: Option<f64>,
}

/// Per competency, levels and weekly attainment in the `weeks` weeks after
/// coaching on it against the weeks before, over the given reps' timelines.
/// Only coaching whose after-window ended before `today` counts.
pub fn coaching_impact(
    timelines: &[GrowthTimeline],
    weeks: u32,
    today: NaiveDate,
) -> Vec<CoachingImpact> {
    let n = usize::try_from(weeks.max(1)).unwrap_or(1);
    #[derive(Default)]
    struct Acc {
        weeks: u32,
        before: Vec<f64>,
        after: Vec<f64>,
        att_before: Vec<f64>,
        att_after: Vec<f64>,
    }
    let mut by_competency: BTreeMap<CompetencyId, Acc> = BTreeMap::new();
    let week_attainment = |row: &PeriodRow| -> Vec<f64> {
        row.standards
            .iter()
            .filter(|s| s.applies)
            .filter_map(|s| s.attainment)
            .collect()
    };
    for timeline in timelines {
        let rows = &timeline.weeks;
        for (i, row) in rows.iter().enumerate() {
            let window_end = row.end.checked_add_days(Days::new(7 * weeks as u64));
            if i + n >= rows.len() || window_end.is_none_or(|end| end >= today) {
                continue;
            }
            for competency in row.coaching_focus.keys() {
                let acc = by_competency.entry(*competency).or_default();
                acc.weeks += 1;
                if let Some(level) = i
                    .checked_sub(1)
                    .and_then(|b| rows[b].levels.get(competency))
                {
                    acc.before.push(f64::from(*level));
                }
                if let Some(level) = rows[i + n].levels.get(competency) {
                    acc.after.push(f64::from(*level));
                }
                acc.att_before.extend(
                    rows[i.saturating_sub(n)..i]
                        .iter()
                        .flat_map(week_attainment),
                );
                acc.att_after
                    .extend(rows[i + 1..=i + n].iter().flat_map(week_attainment));
            }
        }
    }
    let mean = |v: &[f64]| mean(v.iter().copied());
    by_competency
        .into_iter()
        .map(|(competency_id, acc)| CoachingImpact {
            competency_id,
            coached_weeks: acc.weeks,
            level_before: mean(&acc.before),
            level_after: mean(&acc.after),
            attainment_before: mean(&acc.att_before),
            attainment_after: mean(&acc.att_after),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Loading

/// A `leader` document as stored: a header, or the whole leader as growth
/// code versions before 6 wrote it, which an upgraded API process serves
/// until the projector has rebuilt and switched generations.
#[derive(Debug)]
enum StoredLeader {
    Header(LeaderHeader),
    Whole(LeaderDoc),
}

impl StoredLeader {
    /// Read as a header, else as a whole leader; when it is neither, the
    /// error is the header's (what the document should be).
    fn parse(text: &str) -> Result<StoredLeader, serde_json::Error> {
        match serde_json::from_str(text) {
            Ok(header) => Ok(StoredLeader::Header(header)),
            Err(error) => serde_json::from_str(text)
                .map(StoredLeader::Whole)
                .map_err(|_| error),
        }
    }
}

/// The read models of the active generation, for the query routes.
#[derive(Debug, Clone)]
pub struct ReadModels {
    read: Arc<dyn ReadStore>,
}

impl ReadModels {
    pub fn new(read: Arc<dyn ReadStore>) -> Self {
        ReadModels { read }
    }

    /// The documents of one kind by key, decoded; missing keys are left out.
    pub async fn docs<T: DeserializeOwned>(
        &self,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<T>, Error> {
        self.read
            .get(NAME, kind, keys)
            .await?
            .into_iter()
            .map(|(key, doc)| {
                serde_json::from_str(&doc).map_err(|e| Error::Malformed {
                    kind: kind.to_owned(),
                    key,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The document of one kind under `key`, decoded.
    pub async fn doc<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: impl ToString,
    ) -> Result<Option<T>, Error> {
        Ok(self.docs(kind, &[key.to_string()]).await?.pop())
    }

    /// Where in the log the active generation's documents stand: every
    /// event up to it is applied. None while there is no active generation.
    pub async fn applied(&self) -> Result<Option<trellis_eventstore::Checkpoint>, Error> {
        Ok(self
            .read
            .generations()
            .await?
            .into_iter()
            .find(|g| g.model == NAME && g.status == Status::Active)
            .map(|g| g.checkpoint))
    }

    /// Every document of one kind in the active generation (for the kinds
    /// few enough to list: teams, competencies, standards).
    pub async fn all<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, Error> {
        let generations = self.read.generations().await?;
        let Some(active) = generations
            .iter()
            .find(|g| g.model == NAME && g.status == Status::Active)
        else {
            return Ok(vec![]);
        };
        self.read
            .load(NAME, active.generation, &[kind], DocPage::ALL)
            .await?
            .into_iter()
            .map(|(_, key, text)| {
                serde_json::from_str::<T>(&text).map_err(|e| Error::Malformed {
                    kind: kind.to_owned(),
                    key,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Every team of the active generation, by name.
    pub async fn teams(&self) -> Result<Vec<TeamDoc>, Error> {
        let mut teams: Vec<TeamDoc> = self.all(kinds::TEAM).await?;
        teams.sort_by_key(|t| t.name.to_string());
        Ok(teams)
    }

    /// The names teams have given `person` as their leader, each once:
    /// none when no team has had them as a leader.
    pub async fn leader_names(&self, person: uuid::Uuid) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = self
            .teams()
            .await?
            .iter()
            .flat_map(|team| team.leaders.iter())
            .filter(|(l, _)| l.as_uuid() == person)
            .map(|(_, name)| name.as_str().to_owned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The stored profile document (no time-dependent fields).
    pub async fn stored_profile(&self, rep_id: RepId) -> Result<Option<RepProfile>, Error> {
        self.doc(kinds::REP_PROFILE, rep_id.to_string()).await
    }

    /// The stored growth timeline document.
    pub async fn stored_timeline(&self, rep_id: RepId) -> Result<Option<GrowthTimeline>, Error> {
        self.doc(kinds::GROWTH_TIMELINE, rep_id.to_string()).await
    }

    /// The stored feedback of a rep. It is written with the profile, in
    /// the same commit; a rep without one (unknown, or on a generation
    /// written before feedback had a document of its own, while the
    /// rebuild that replaces it runs) has none.
    pub async fn stored_feedback(&self, rep_id: RepId) -> Result<RepFeedback, Error> {
        let stored: Option<RepFeedback> = self.doc(kinds::REP_FEEDBACK, rep_id.to_string()).await?;
        Ok(stored.unwrap_or(RepFeedback {
            rep_id,
            feedback: Vec::new(),
        }))
    }

    /// `GET /v1/reps/{id}/profile`.
    pub async fn rep_profile(
        &self,
        rep_id: RepId,
        today: NaiveDate,
    ) -> Result<Option<RepProfileView>, Error> {
        // Both at once: two round trips in the time of one. (Read one after
        // the other they could straddle a commit just the same.)
        let (profile, feedback) =
            tokio::try_join!(self.stored_profile(rep_id), self.stored_feedback(rep_id))?;
        let Some(profile) = profile else {
            return Ok(None);
        };
        Ok(Some(rep_profile(profile, feedback, today)))
    }

    /// `GET /v1/reps/{id}/timeline?bucket=week|month|quarter&from=…&to=…`.
    pub async fn growth_timeline(
        &self,
        rep_id: RepId,
        bucket: PeriodKind,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Result<Option<Vec<TimelineRowView>>, Error> {
        if to < from {
            return Err(Error::InvalidInput(format!(
                "the range ends ({to}) before it starts ({from})"
            )));
        }
        Ok(self
            .stored_timeline(rep_id)
            .await?
            .map(|t| growth_timeline(&t, bucket, from, to, today)))
    }

    /// The team's document.
    pub async fn team(&self, team_id: TeamId) -> Result<Option<TeamDoc>, Error> {
        self.doc(kinds::TEAM, team_id.to_string()).await
    }

    /// `GET /v1/teams/{id}/view?period=2026-03`.
    pub async fn team_view(
        &self,
        team_id: TeamId,
        period: Period,
        today: NaiveDate,
    ) -> Result<Option<TeamView>, Error> {
        let Some(team) = self.team(team_id).await? else {
            return Ok(None);
        };
        let reps = self
            .profiles_and_timelines_from(&team.reps, &[(period.kind(), period.start())], today)
            .await?;
        Ok(Some(team_view(&team, &reps, period, today)))
    }

    /// The profiles of `reps` with timelines that hold at least every row
    /// of each `(kind, from)` of `needs` from the period containing `from`
    /// on: the smallest tail that holds them ([`Tail::CURRENT`], tried only
    /// when every need is a period in progress on `today`, then
    /// [`Tail::RECENT`]), and the whole timelines of the reps whose tails
    /// start later or are missing (a generation written before the tail
    /// was). A team page reads a tenth of the whole timelines, a team's
    /// view of the month in progress a hundredth.
    pub async fn profiles_and_timelines_from(
        &self,
        reps: &BTreeSet<RepId>,
        needs: &[(PeriodKind, NaiveDate)],
        today: NaiveDate,
    ) -> Result<Vec<(RepProfile, GrowthTimeline)>, Error> {
        let keys: Vec<String> = reps.iter().map(ToString::to_string).collect();
        let profiles: Vec<RepProfile> = self.docs(kinds::REP_PROFILE, &keys).await?;
        let in_progress = needs
            .iter()
            .all(|(kind, from)| *from >= Period::containing(*kind, today).start());
        let tails = [
            (kinds::CURRENT_TIMELINE, Tail::CURRENT),
            (kinds::RECENT_TIMELINE, Tail::RECENT),
        ];
        let mut timelines: BTreeMap<RepId, GrowthTimeline> = BTreeMap::new();
        let mut unresolved = keys;
        for (kind, tail) in tails.into_iter().skip(usize::from(!in_progress)) {
            if unresolved.is_empty() {
                break;
            }
            let found: Vec<GrowthTimeline> = self.docs(kind, &unresolved).await?;
            timelines.extend(found.into_iter().filter_map(|t| {
                needs
                    .iter()
                    .all(|(kind, from)| t.tail_covers(tail, *kind, *from))
                    .then_some((t.rep_id, t))
            }));
            let covered: BTreeSet<String> = timelines.keys().map(ToString::to_string).collect();
            unresolved.retain(|key| !covered.contains(key));
        }
        if !unresolved.is_empty() {
            let whole: Vec<GrowthTimeline> = self.docs(kinds::GROWTH_TIMELINE, &unresolved).await?;
            timelines.extend(whole.into_iter().map(|t| (t.rep_id, t)));
        }
        Ok(profiles
            .into_iter()
            .filter_map(|p| timelines.remove(&p.rep_id).map(|t| (p, t)))
            .collect())
    }

    /// The profiles and timelines of `reps`, paired (a rep with one but not
    /// the other, mid-projection, is left out).
    pub async fn profiles_and_timelines(
        &self,
        reps: &BTreeSet<RepId>,
    ) -> Result<Vec<(RepProfile, GrowthTimeline)>, Error> {
        let keys: Vec<String> = reps.iter().map(ToString::to_string).collect();
        let profiles: Vec<RepProfile> = self.docs(kinds::REP_PROFILE, &keys).await?;
        let timelines: Vec<GrowthTimeline> = self.docs(kinds::GROWTH_TIMELINE, &keys).await?;
        let mut timelines: BTreeMap<RepId, GrowthTimeline> =
            timelines.into_iter().map(|t| (t.rep_id, t)).collect();
        Ok(profiles
            .into_iter()
            .filter_map(|p| timelines.remove(&p.rep_id).map(|t| (p, t)))
            .collect())
    }

    /// `GET /v1/leaders/{id}/scorecard?from=…&to=…`.
    pub async fn leader_scorecard(
        &self,
        leader_id: LeaderId,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Result<Option<LeaderScorecard>, Error> {
        if to < from {
            return Err(Error::InvalidInput(format!(
                "the range ends ({to}) before it starts ({from})"
            )));
        }
        let leader = self.leader(leader_id).await?;
        Ok(leader.map(|l| leader_scorecard(&l, from, to, today)))
    }

    /// A leader with what they did for each rep: the `leader` document and
    /// the `leader_rep` shares it lists, put back together. Two reads, not
    /// one snapshot: a write between them may show a share newer than the
    /// header (a rep listed a moment late), never a torn document.
    pub async fn leader(&self, leader_id: LeaderId) -> Result<Option<LeaderDoc>, Error> {
        let Some((key, text)) = self
            .read
            .get(NAME, kinds::LEADER, &[leader_id.to_string()])
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let stored = StoredLeader::parse(&text).map_err(|e| Error::Malformed {
            kind: kinds::LEADER.to_owned(),
            key,
            reason: e.to_string(),
        })?;
        let header = match stored {
            StoredLeader::Whole(leader) => return Ok(Some(leader)),
            StoredLeader::Header(header) => header,
        };
        let keys: Vec<String> = header
            .reps
            .iter()
            .map(|rep_id| leader_share_key(leader_id, *rep_id))
            .collect();
        let shares: Vec<LeaderShare> = self.docs(kinds::LEADER_REP, &keys).await?;
        Ok(Some(LeaderDoc {
            leader_id,
            name: header.name,
            teams: header.teams,
            reps: shares
                .into_iter()
                .map(|share| (share.rep_id, share.activity))
                .collect(),
        }))
    }

    /// `GET /v1/teams/{id}/coaching-impact?weeks=4`: over the team's reps.
    pub async fn coaching_impact(
        &self,
        team_id: TeamId,
        weeks: u32,
        today: NaiveDate,
    ) -> Result<Option<Vec<CoachingImpact>>, Error> {
        let Some(team) = self.team(team_id).await? else {
            return Ok(None);
        };
        let timelines: Vec<GrowthTimeline> = self
            .profiles_and_timelines(&team.reps)
            .await?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        Ok(Some(coaching_impact(&timelines, weeks, today)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use uuid::Uuid;

    use super::*;
    use crate::growth::model::LeaderActivity;

    /// During an upgrade to growth code version 6 the API reads documents
    /// an older projector wrote: a `leader` document that holds every rep's
    /// activity reads whole, a header reads as a header.
    #[test]
    fn a_leader_document_reads_as_a_header_or_as_a_whole_leader_written_before_version_6() {
        let rep_id = RepId::from_uuid(Uuid::from_u128(7));
        let whole = LeaderDoc {
            leader_id: LeaderId::from_uuid(Uuid::from_u128(2)),
            name: Some("Lena Park".try_into().unwrap()),
            teams: BTreeSet::from([TeamId::from_uuid(Uuid::from_u128(1))]),
            reps: BTreeMap::from([(rep_id, LeaderActivity::default())]),
        };
        let text = serde_json::to_string(&whole).unwrap();
        match StoredLeader::parse(&text).unwrap() {
            StoredLeader::Whole(read) => assert_eq!(read, whole),
            other => panic!("read as {other:?}"),
        }
        let text = serde_json::to_string(&whole.header()).unwrap();
        match StoredLeader::parse(&text).unwrap() {
            StoredLeader::Header(header) => {
                assert_eq!(header, whole.header());
                assert_eq!(header.reps, BTreeSet::from([rep_id]));
            }
            other => panic!("read as {other:?}"),
        }
        // Neither: the error says what a header lacks.
        let error = StoredLeader::parse(r#"{"leader_id": "00000000-0000-0000-0000-000000000002"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `teams`"), "{error}");
    }
}
