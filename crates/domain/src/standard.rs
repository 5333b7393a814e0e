//! Standard: a benchmark a rep is held to. Stream category `standard`.
//!
//! A standard's metric, kind, direction, unit and period length are fixed when it
//! is set. Its target, roles and ramp change by revision: each revision is a new
//! version that takes effect on a later date, and every version is kept, so a
//! measurement is always judged against [`Standard::version_in_force`] for its
//! period — revising a standard re-projects the future without rewriting the past.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::ids::{StandardId, stream_id};
use crate::payload::event_enum;
use crate::period::PeriodKind;
use crate::rejection::Rejection;
use crate::values::{MetricName, MetricValue, Name, NonEmptyText, Role, Target};

/// What a standard is about: how the work is done, how much, or a habit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardKind {
    Quality,
    Quantity,
    Behaviour,
}

/// Whether the actual value should reach the target or stay under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    AtLeast,
    AtMost,
}

/// A new hire's reduced target for their Nth period since starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RampStep {
    /// 1-based: the rep's Nth period since their start date (see [`crate::Period::ordinal_since`]).
    pub period_index: u32,
    /// The share of the full target expected in that period, in percent (above zero).
    pub percent_of_target: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardSet {
    pub standard_id: StandardId,
    pub name: Name,
    pub metric: MetricName,
    pub kind: StandardKind,
    pub direction: Direction,
    pub unit: Name,
    pub period: PeriodKind,
    pub target: Target,
    pub roles: Vec<Role>,
    pub effective_from: NaiveDate,
    pub ramp: Vec<RampStep>,
    /// Always 1.
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardRevised {
    pub standard_id: StandardId,
    /// The previous latest version plus one.
    pub version: u32,
    pub target: Target,
    pub effective_from: NaiveDate,
    /// New roles, or `None` to keep the previous version's.
    pub roles: Option<Vec<Role>>,
    /// A new ramp, or `None` to keep the previous version's.
    pub ramp: Option<Vec<RampStep>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardRetired {
    pub standard_id: StandardId,
    pub effective_from: NaiveDate,
    pub reason: NonEmptyText,
}

event_enum! {
    /// Everything that can happen to a standard.
    pub enum StandardEvent in "standard" {
        Set(StandardSet) = ("StandardSet", v 1),
        Revised(StandardRevised) = ("StandardRevised", v 1),
        Retired(StandardRetired) = ("StandardRetired", v 1),
    }
}

impl StandardId {
    /// This standard's stream, `standard-<uuid>`.
    pub fn stream_id(&self) -> String {
        stream_id(StandardEvent::CATEGORY, self.as_uuid())
    }
}

/// The highest attainment an at-most standard shows: ten times under the
/// ceiling, or nothing at all (an actual of 0), is as good as it gets.
pub const MAX_AT_MOST_ATTAINMENT: f64 = 10.0;

/// How well `actual` meets `target`: `actual ÷ target` for at-least standards,
/// `target ÷ actual` for at-most ones. 1.0 means exactly on target; above 1.0 is better.
///
/// The target of an at-most standard is a ceiling, so the lower the actual
/// the better, and an actual of 0 (no incomplete CRM record at all) is the
/// best period there is: it is met, with [`MAX_AT_MOST_ATTAINMENT`], where
/// `target ÷ 0` has no value. Below a tenth of the ceiling every period shows
/// that same figure, so one quiet week cannot swamp a mean. `None` only
/// when a ratio is not a number.
pub fn attainment(direction: Direction, actual: MetricValue, target: Target) -> Option<f64> {
    let ratio = match direction {
        Direction::AtLeast => actual.get() / target.get(),
        Direction::AtMost if actual.get() <= 0.0 => MAX_AT_MOST_ATTAINMENT,
        Direction::AtMost => (target.get() / actual.get()).min(MAX_AT_MOST_ATTAINMENT),
    };
    ratio.is_finite().then_some(ratio)
}

/// The target for a rep's `period_index`-th period since they started: the ramp
/// step for that period scales the target, and periods past the ramp get the full target.
pub fn ramp_adjusted_target(target: Target, ramp: &[RampStep], period_index: u32) -> Target {
    match ramp.iter().find(|step| step.period_index == period_index) {
        Some(step) => Target::clamped(target.get() * f64::from(step.percent_of_target) / 100.0),
        None => target,
    }
}

/// One version of a standard's target, roles and ramp. The read models keep
/// it as it is (its serialized form is their document's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardVersion {
    pub version: u32,
    pub target: Target,
    pub roles: Vec<Role>,
    pub ramp: Vec<RampStep>,
    pub effective_from: NaiveDate,
}

impl StandardVersion {
    /// The first version, as the standard was set.
    pub fn set(e: &StandardSet) -> StandardVersion {
        StandardVersion {
            version: e.version,
            target: e.target,
            roles: e.roles.clone(),
            ramp: e.ramp.clone(),
            effective_from: e.effective_from,
        }
    }

    /// The version a revision makes of `previous`: the roles and the ramp
    /// carry over unless the revision names new ones.
    pub fn revised(previous: &StandardVersion, e: &StandardRevised) -> StandardVersion {
        StandardVersion {
            version: e.version,
            target: e.target,
            roles: e.roles.clone().unwrap_or_else(|| previous.roles.clone()),
            ramp: e.ramp.clone().unwrap_or_else(|| previous.ramp.clone()),
            effective_from: e.effective_from,
        }
    }

    /// The version in force on `date` among `versions` (oldest first): the
    /// latest one whose `effective_from` is on or before `date`. `None`
    /// before the first takes effect and from `retired_from` on.
    pub fn in_force(
        versions: &[StandardVersion],
        retired_from: Option<NaiveDate>,
        date: NaiveDate,
    ) -> Option<&StandardVersion> {
        if retired_from.is_some_and(|from| from <= date) {
            return None;
        }
        versions.iter().rev().find(|v| v.effective_from <= date)
    }

    /// The target for a rep's `period_index`-th period, ramp included.
    pub fn target_for(&self, period_index: u32) -> Target {
        ramp_adjusted_target(self.target, &self.ramp, period_index)
    }

    /// Whether a rep's `period_index`-th period is still on the ramp: at or
    /// before the ramp's last step (a step-less ramp has none).
    pub fn ramps(&self, period_index: u32) -> bool {
        self.ramp
            .iter()
            .map(|step| step.period_index)
            .max()
            .is_some_and(|last| period_index <= last)
    }
}

/// A standard that has been set, with every version it ever had.
#[derive(Debug, Clone, PartialEq)]
pub struct Standard {
    pub standard_id: StandardId,
    pub name: Name,
    pub metric: MetricName,
    pub kind: StandardKind,
    pub direction: Direction,
    pub unit: Name,
    pub period: PeriodKind,
    /// Oldest first; never empty; `effective_from` strictly increasing.
    pub versions: Vec<StandardVersion>,
    /// When the standard stops applying, and why.
    pub retired: Option<(NaiveDate, NonEmptyText)>,
}

impl Standard {
    /// The latest version (which may not be in force yet).
    pub fn latest(&self) -> &StandardVersion {
        self.versions
            .last()
            .expect("a set standard has at least one version")
    }

    /// The version in force on `date`: the latest one whose `effective_from` is on
    /// or before `date`. `None` before the first version takes effect and from the
    /// day the standard is retired.
    pub fn version_in_force(&self, date: NaiveDate) -> Option<&StandardVersion> {
        let retired_from = self.retired.as_ref().map(|(from, _)| *from);
        StandardVersion::in_force(&self.versions, retired_from, date)
    }

    /// One of `roles` that this standard holds reps to on some day from
    /// `from` on, if any: a version of it whose days in force (from its
    /// `effective_from` to the next version's, or to the retirement) reach
    /// past `from` names it.
    pub fn holds_from(&self, from: NaiveDate, roles: &[Role]) -> Option<&Role> {
        let retired_from = self.retired.as_ref().map(|(on, _)| *on);
        self.versions.iter().enumerate().find_map(|(i, version)| {
            let next = self.versions.get(i + 1).map(|v| v.effective_from);
            let until = next.into_iter().chain(retired_from).min();
            let in_force_from_then =
                until.is_none_or(|until| until > from && until > version.effective_from);
            in_force_from_then
                .then(|| version.roles.iter().find(|role| roles.contains(role)))
                .flatten()
        })
    }
}

/// Refuses a standard (`own`, measuring `metric` in periods of `period`)
/// that would judge reps of `roles` from `from` on while another of
/// `others` measuring the same metric in the same kind of period does:
/// each measurement would be judged twice, against two targets. `others`
/// may hold every standard; only those compete. `on_revision` says which
/// refusal: a revision's roles, or a new standard's metric.
fn check_no_overlap(
    (own, metric, period): (StandardId, &MetricName, PeriodKind),
    others: &[Standard],
    from: NaiveDate,
    roles: &[Role],
    on_revision: bool,
) -> Result<(), Rejection> {
    let competing = others
        .iter()
        .filter(|o| o.standard_id != own && &o.metric == metric && o.period == period);
    for other in competing {
        if let Some(role) = other.holds_from(from, roles) {
            let (other_name, metric, role, period) = (
                other.name.to_string(),
                other.metric.clone(),
                role.clone(),
                other.period,
            );
            return Err(if on_revision {
                Rejection::RevisionOverlapsStandard {
                    other: other_name,
                    metric,
                    period,
                    role,
                }
            } else {
                Rejection::StandardOverlaps {
                    other: other_name,
                    metric,
                    period,
                    role,
                }
            });
        }
    }
    Ok(())
}

/// A standard as a rep's stream needs to know it; the caller reads it from the
/// standard's stream and puts it into `AcknowledgeExpectations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardStatus {
    Unknown,
    Active { latest_version: u32 },
    Retired { on: NaiveDate },
}

/// What a standard aggregate remembers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum StandardState {
    #[default]
    NotSet,
    Set(Standard),
}

impl StandardState {
    /// The version in force on `date`, if the standard exists and applies then.
    pub fn version_in_force(&self, date: NaiveDate) -> Option<&StandardVersion> {
        match self {
            StandardState::NotSet => None,
            StandardState::Set(standard) => standard.version_in_force(date),
        }
    }

    /// What other aggregates need to know about this standard.
    pub fn status(&self) -> StandardStatus {
        match self {
            StandardState::NotSet => StandardStatus::Unknown,
            StandardState::Set(Standard {
                retired: Some((on, _)),
                ..
            }) => StandardStatus::Retired { on: *on },
            StandardState::Set(standard) => StandardStatus::Active {
                latest_version: standard.latest().version,
            },
        }
    }
}

/// What can be asked of a standard.
#[derive(Debug, Clone, PartialEq)]
pub enum StandardCommand {
    /// `others`: the other standards as the caller read them (every one
    /// will do: the domain picks those measuring `metric` in periods of
    /// the same kind).
    SetStandard {
        standard_id: StandardId,
        name: Name,
        metric: MetricName,
        kind: StandardKind,
        direction: Direction,
        unit: Name,
        period: PeriodKind,
        target: Target,
        roles: Vec<Role>,
        effective_from: NaiveDate,
        ramp: Vec<RampStep>,
        others: Vec<Standard>,
    },
    /// A new version; `None` keeps the previous version's roles or ramp.
    /// `others`: as for [`StandardCommand::SetStandard`].
    ReviseStandard {
        target: Target,
        effective_from: NaiveDate,
        roles: Option<Vec<Role>>,
        ramp: Option<Vec<RampStep>>,
        others: Vec<Standard>,
    },
    RetireStandard {
        effective_from: NaiveDate,
        reason: NonEmptyText,
    },
}

/// The standard aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardAggregate;

impl Aggregate for StandardAggregate {
    const CATEGORY: &'static str = StandardEvent::CATEGORY;
    type State = StandardState;
    type Command = StandardCommand;
    type Event = StandardEvent;

    fn decide(
        state: &StandardState,
        command: StandardCommand,
    ) -> Result<Vec<StandardEvent>, Rejection> {
        decide(state, command)
    }

    fn evolve(state: StandardState, event: &StandardEvent) -> StandardState {
        evolve(state, event)
    }
}

fn check_roles(roles: &[Role]) -> Result<(), Rejection> {
    if roles.is_empty() {
        Err(Rejection::NoRoles)
    } else {
        Ok(())
    }
}

/// A ramp lists periods 1, 2, 3… in order, each with a percentage above zero
/// and at most 100: it eases a new rep in, never holds them to more.
fn check_ramp(ramp: &[RampStep]) -> Result<(), Rejection> {
    for (position, (step, expected)) in ramp.iter().zip(1u32..).enumerate() {
        if step.period_index != expected {
            return Err(Rejection::RampOutOfOrder {
                position: position + 1,
                expected,
                found: step.period_index,
            });
        }
        if step.percent_of_target == 0 {
            return Err(Rejection::RampPercentZero {
                period_index: step.period_index,
            });
        }
        if step.percent_of_target > 100 {
            return Err(Rejection::RampPercentAboveFull {
                period_index: step.period_index,
                percent: step.percent_of_target,
            });
        }
    }
    Ok(())
}

pub fn decide(
    state: &StandardState,
    command: StandardCommand,
) -> Result<Vec<StandardEvent>, Rejection> {
    use StandardCommand::*;
    let standard = match state {
        StandardState::NotSet => return set_standard(command),
        StandardState::Set(standard) => standard,
    };
    let latest = standard.latest();
    match (command, &standard.retired) {
        (SetStandard { .. }, _) => Err(Rejection::StandardAlreadySet),
        (_, Some((on, _))) => Err(Rejection::StandardRetired { on: *on }),
        (
            ReviseStandard {
                target,
                effective_from,
                roles,
                ramp,
                others,
            },
            None,
        ) => {
            if effective_from <= latest.effective_from {
                return Err(Rejection::RevisionNotAfterLatest {
                    given: effective_from,
                    latest: latest.effective_from,
                });
            }
            if let Some(roles) = &roles {
                check_roles(roles)?;
                let measures = (standard.standard_id, &standard.metric, standard.period);
                check_no_overlap(measures, &others, effective_from, roles, true)?;
            }
            if let Some(ramp) = &ramp {
                check_ramp(ramp)?;
            }
            let version = latest.version + 1;
            Ok(vec![
                StandardRevised {
                    standard_id: standard.standard_id,
                    version,
                    target,
                    effective_from,
                    roles,
                    ramp,
                }
                .into(),
            ])
        }
        (
            RetireStandard {
                effective_from,
                reason,
            },
            None,
        ) => {
            if effective_from < latest.effective_from {
                return Err(Rejection::RetirementBeforeLatest {
                    given: effective_from,
                    latest: latest.effective_from,
                });
            }
            Ok(vec![
                StandardRetired {
                    standard_id: standard.standard_id,
                    effective_from,
                    reason,
                }
                .into(),
            ])
        }
    }
}

/// Decides a command on a standard that has not been set yet.
fn set_standard(command: StandardCommand) -> Result<Vec<StandardEvent>, Rejection> {
    let StandardCommand::SetStandard {
        standard_id,
        name,
        metric,
        kind,
        direction,
        unit,
        period,
        target,
        roles,
        effective_from,
        ramp,
        others,
    } = command
    else {
        return Err(Rejection::StandardNotFound);
    };
    check_roles(&roles)?;
    check_ramp(&ramp)?;
    check_no_overlap(
        (standard_id, &metric, period),
        &others,
        effective_from,
        &roles,
        false,
    )?;
    let set = StandardSet {
        standard_id,
        name,
        metric,
        kind,
        direction,
        unit,
        period,
        target,
        roles,
        effective_from,
        ramp,
        version: 1,
    };
    Ok(vec![set.into()])
}

pub fn evolve(state: StandardState, event: &StandardEvent) -> StandardState {
    match (state, event) {
        (StandardState::NotSet, StandardEvent::Set(e)) => StandardState::Set(Standard {
            standard_id: e.standard_id,
            name: e.name.clone(),
            metric: e.metric.clone(),
            kind: e.kind,
            direction: e.direction,
            unit: e.unit.clone(),
            period: e.period,
            versions: vec![StandardVersion::set(e)],
            retired: None,
        }),
        (StandardState::Set(mut standard), StandardEvent::Revised(e)) => {
            let version = StandardVersion::revised(standard.latest(), e);
            standard.versions.push(version);
            StandardState::Set(standard)
        }
        (StandardState::Set(mut standard), StandardEvent::Retired(e)) => {
            standard.retired = Some((e.effective_from, e.reason.clone()));
            StandardState::Set(standard)
        }
        (state, _) => state,
    }
}
