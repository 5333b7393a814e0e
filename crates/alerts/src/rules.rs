//! The alert rules: pure functions from one rep's read models (profile and
//! growth timeline), their team's leaders, `today` and the [`Thresholds`] to
//! the occurrences that hold today.
//!
//! Each occurrence has a key that names exactly one situation, so evaluating
//! again (tomorrow, after a restart) finds the same key and nothing new is
//! raised:
//!
//! | kind | key | who |
//! | --- | --- | --- |
//! | `standard_missed` | `standard_missed/<rep>/<standard>/<first missed period of the run>` | leaders |
//! | `not_coached` | `not_coached/<rep>/<last coached on, or start date>` | leaders |
//! | `action_item_overdue` | `action_item_overdue/<action item>` | its owner |
//! | `support_request_unresolved` | `support_request_unresolved/<request>` | leaders |
//! | `quality_gate_passed` | `quality_gate_passed/<rep>/<passed on>` | leaders and the rep |
//! | `plan_review_near` | `plan_review_near/<plan>/<review on>` | leaders |
//!
//! Rules look at the present, not at history: a run of misses that already
//! ended with a met period, a gate passed long ago, a closed plan raise
//! nothing, so starting the evaluator on an old log does not flood anyone.
//! A departed rep raises nothing. An occurrence nobody could act on (a team
//! without leaders) is not returned; it is raised once a leader is assigned.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use trellis_domain::alert::{AlertDetails, AlertKind, OccurrenceKey, Recipient};
use trellis_domain::rep::Owner;
use trellis_domain::{
    AlertCommand, AlertId, LeaderId, Period, PeriodKind, RepId, StandardId, TeamId,
};
use trellis_projections::growth::derive::{GrowthTimeline, RepProfile, RepStatus};

/// When the rules fire. [`Default`] holds the defaults named on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// A standard missed this many consecutive measured periods (default 2).
    pub missed_periods: u32,
    /// A rep not coached for this many days (default 14), counted from the
    /// last session, or from the start date when never coached.
    pub not_coached_days: u32,
    /// A support request still unresolved more than this many days after it
    /// was raised (default 3).
    pub support_sla_days: u32,
    /// An open improvement plan's review within this many days (default 7).
    pub plan_review_days: u32,
    /// A quality gate passed at most this many days ago still raises its
    /// alert (default 30); older passes are history.
    pub quality_gate_recent_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            missed_periods: 2,
            not_coached_days: 14,
            support_sla_days: 3,
            plan_review_days: 7,
            quality_gate_recent_days: 30,
        }
    }
}

/// One situation someone must act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub key: OccurrenceKey,
    pub team_id: TeamId,
    pub rep_id: RepId,
    /// Sorted, without duplicates, never empty.
    pub recipients: Vec<Recipient>,
    pub details: AlertDetails,
}

impl Occurrence {
    pub fn kind(&self) -> AlertKind {
        self.details.kind()
    }

    /// The alert's id: a name-based UUID of the key.
    pub fn alert_id(&self) -> AlertId {
        AlertId::for_occurrence(&self.key)
    }

    /// The command that raises it, on `raised_on`.
    pub fn command(&self, raised_on: NaiveDate) -> AlertCommand {
        AlertCommand::Raise {
            occurrence_key: self.key.clone(),
            team_id: self.team_id,
            rep_id: self.rep_id,
            recipients: self.recipients.clone(),
            details: self.details.clone(),
            raised_on,
        }
    }
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
fn days(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Builds occurrences for one rep: the key, the recipients, and drops those
/// that would reach no one.
struct For<'a> {
    profile: &'a RepProfile,
    leaders: Vec<Recipient>,
}

impl For<'_> {
    fn occurrence(
        &self,
        key: String,
        mut recipients: Vec<Recipient>,
        details: AlertDetails,
    ) -> Option<Occurrence> {
        recipients.sort();
        recipients.dedup();
        if recipients.is_empty() {
            return None;
        }
        let key = OccurrenceKey::try_from(key.as_str()).ok()?;
        Some(Occurrence {
            key,
            team_id: self.profile.team_id,
            rep_id: self.profile.rep_id,
            recipients,
            details,
        })
    }

    fn leaders(&self) -> Vec<Recipient> {
        self.leaders.clone()
    }
}

fn context<'a>(profile: &'a RepProfile, leaders: &[LeaderId]) -> Option<For<'a>> {
    (profile.status == RepStatus::Active).then(|| For {
        profile,
        leaders: leaders.iter().copied().map(Recipient::Leader).collect(),
    })
}

/// Every occurrence that holds today for one rep, in rule order.
/// `leaders` are the leaders of the rep's current team.
pub fn evaluate(
    profile: &RepProfile,
    timeline: &GrowthTimeline,
    leaders: &[LeaderId],
    today: NaiveDate,
    thresholds: &Thresholds,
) -> Vec<Occurrence> {
    let mut out = standard_missed(profile, timeline, leaders, thresholds);
    out.extend(not_coached(profile, leaders, today, thresholds));
    out.extend(action_items_overdue(profile, leaders, today));
    out.extend(support_requests_unresolved(
        profile, leaders, today, thresholds,
    ));
    out.extend(quality_gate_passed(profile, leaders, today, thresholds));
    out.extend(plan_review_near(profile, leaders, today, thresholds));
    out
}

/// A standard missed in the last `missed_periods` or more consecutive
/// measured periods (of its own period kind), the run still going: the
/// latest measured period was missed too. One occurrence per run.
pub fn standard_missed(
    profile: &RepProfile,
    timeline: &GrowthTimeline,
    leaders: &[LeaderId],
    thresholds: &Thresholds,
) -> Vec<Occurrence> {
    let Some(cx) = context(profile, leaders) else {
        return vec![];
    };
    let needed = usize::try_from(thresholds.missed_periods.max(1)).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for kind in [PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter] {
        // Per standard: the trailing run of consecutive missed periods.
        let mut runs: BTreeMap<StandardId, Vec<Period>> = BTreeMap::new();
        for row in timeline.rows(kind) {
            for standard in &row.standards {
                let Some(met) = standard.met().filter(|_| standard.applies) else {
                    continue;
                };
                let run = runs.entry(standard.standard_id).or_default();
                if met {
                    run.clear();
                } else {
                    if run.last().is_some_and(|last| last.next() != row.period) {
                        run.clear();
                    }
                    run.push(row.period);
                }
            }
        }
        for (standard_id, periods) in runs {
            if periods.len() < needed {
                continue;
            }
            let key = format!(
                "{}/{}/{}/{}",
                AlertKind::StandardMissed,
                profile.rep_id,
                standard_id,
                periods[0]
            );
            out.extend(cx.occurrence(
                key,
                cx.leaders(),
                AlertDetails::StandardMissed {
                    standard_id,
                    periods,
                },
            ));
        }
    }
    out
}

/// No coaching session for `not_coached_days` days or more (counted from the
/// start date when never coached). One occurrence per gap: a session starts
/// a new one.
pub fn not_coached(
    profile: &RepProfile,
    leaders: &[LeaderId],
    today: NaiveDate,
    thresholds: &Thresholds,
) -> Option<Occurrence> {
    let cx = context(profile, leaders)?;
    let since = profile.last_coached_on.unwrap_or(profile.start_date);
    let gap = days(since, today);
    if gap < i64::from(thresholds.not_coached_days) {
        return None;
    }
    let key = format!("{}/{}/{since}", AlertKind::NotCoached, profile.rep_id);
    cx.occurrence(
        key,
        cx.leaders(),
        AlertDetails::NotCoached {
            last_coached_on: profile.last_coached_on,
            days: clamp_u32(gap),
        },
    )
}

/// Every open action item past its due date, for its owner (the rep, or the
/// leader who owns it).
pub fn action_items_overdue(
    profile: &RepProfile,
    leaders: &[LeaderId],
    today: NaiveDate,
) -> Vec<Occurrence> {
    let Some(cx) = context(profile, leaders) else {
        return vec![];
    };
    profile
        .open_action_items
        .iter()
        .filter(|item| item.overdue_on(today))
        .filter_map(|item| {
            let owner = match item.owner {
                Owner::Rep => Recipient::Rep(profile.rep_id),
                Owner::Leader(leader_id) => Recipient::Leader(leader_id),
            };
            cx.occurrence(
                format!("{}/{}", AlertKind::ActionItemOverdue, item.action_item_id),
                vec![owner],
                AlertDetails::ActionItemOverdue {
                    action_item_id: item.action_item_id,
                    due_on: item.due_on,
                    days_overdue: clamp_u32(days(item.due_on, today)),
                },
            )
        })
        .collect()
}

/// Every support request still unresolved more than `support_sla_days`
/// after it was raised.
pub fn support_requests_unresolved(
    profile: &RepProfile,
    leaders: &[LeaderId],
    today: NaiveDate,
    thresholds: &Thresholds,
) -> Vec<Occurrence> {
    let Some(cx) = context(profile, leaders) else {
        return vec![];
    };
    profile
        .support_requests
        .iter()
        .filter(|r| r.resolved_on.is_none())
        .filter(|r| days(r.raised_on, today) > i64::from(thresholds.support_sla_days))
        .filter_map(|r| {
            cx.occurrence(
                format!("{}/{}", AlertKind::SupportRequestUnresolved, r.request_id),
                cx.leaders(),
                AlertDetails::SupportRequestUnresolved {
                    request_id: r.request_id,
                    raised_on: r.raised_on,
                    days_open: clamp_u32(days(r.raised_on, today)),
                },
            )
        })
        .collect()
}

/// The quality gate passed, at most `quality_gate_recent_days` ago: for the
/// leaders and the rep.
pub fn quality_gate_passed(
    profile: &RepProfile,
    leaders: &[LeaderId],
    today: NaiveDate,
    thresholds: &Thresholds,
) -> Option<Occurrence> {
    let cx = context(profile, leaders)?;
    let passed_on = profile.phase.quality_gate_passed_on?;
    if days(passed_on, today) > i64::from(thresholds.quality_gate_recent_days) {
        return None;
    }
    let mut recipients = cx.leaders();
    recipients.push(Recipient::Rep(profile.rep_id));
    cx.occurrence(
        format!(
            "{}/{}/{passed_on}",
            AlertKind::QualityGatePassed,
            profile.rep_id
        ),
        recipients,
        AlertDetails::QualityGatePassed { passed_on },
    )
}

/// An open improvement plan whose review is today or within
/// `plan_review_days`.
pub fn plan_review_near(
    profile: &RepProfile,
    leaders: &[LeaderId],
    today: NaiveDate,
    thresholds: &Thresholds,
) -> Vec<Occurrence> {
    let Some(cx) = context(profile, leaders) else {
        return vec![];
    };
    profile
        .plans
        .iter()
        .filter(|p| p.closed_on.is_none() && p.outcome.is_none())
        .filter_map(|plan| {
            let until = days(today, plan.review_on);
            if !(0..=i64::from(thresholds.plan_review_days)).contains(&until) {
                return None;
            }
            let mut recipients = cx.leaders();
            recipients.push(Recipient::Leader(plan.leader_id));
            cx.occurrence(
                format!(
                    "{}/{}/{}",
                    AlertKind::PlanReviewNear,
                    plan.plan_id,
                    plan.review_on
                ),
                recipients,
                AlertDetails::PlanReviewNear {
                    plan_id: plan.plan_id,
                    review_on: plan.review_on,
                    days_until: clamp_u32(until),
                },
            )
        })
        .collect()
}
