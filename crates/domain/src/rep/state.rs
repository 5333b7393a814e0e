//! What the rep aggregate remembers to make decisions: only what some rule needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::ids::{
    ActionItemId, FeedbackId, MeasurementId, PlanId, RepId, SessionId, StandardId,
    SupportRequestId, TeamId,
};
use crate::period::Period;
use crate::values::{MetricName, MetricValue, PersonName, Role};

use super::events::{CoachingSessionHeld, Correction, Owner, RepEvent, Visibility};

/// A rep's stream, folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RepState {
    /// No `RepJoined` yet.
    #[default]
    NotJoined,
    Joined(Box<Rep>),
}

/// A rep who has joined (and may have departed since).
#[derive(Debug, Clone, PartialEq)]
pub struct Rep {
    pub rep_id: RepId,
    pub name: PersonName,
    /// The names the rep had before, oldest first: still theirs to erase,
    /// so an erasure's reason, which stays readable, may name none of them.
    pub former_names: Vec<PersonName>,
    pub role: Role,
    pub team_id: TeamId,
    pub start_date: NaiveDate,
    pub departed_on: Option<NaiveDate>,
    /// When the rep's personal data was erased: nothing more is recorded.
    pub erased_on: Option<NaiveDate>,
    /// Standard versions the rep has acknowledged.
    pub acknowledged_expectations: BTreeSet<(StandardId, u32)>,
    pub feedback: BTreeMap<FeedbackId, FeedbackRecord>,
    pub action_items: BTreeMap<ActionItemId, ActionItemRecord>,
    pub support_requests: BTreeMap<SupportRequestId, SupportStatus>,
    /// The day each support request was raised: nothing about it happens
    /// before.
    pub(super) raised_on: BTreeMap<SupportRequestId, NaiveDate>,
    pub open_plan: Option<PlanId>,
    /// The day the open plan started: nothing about it happens before.
    pub(super) open_plan_started_on: Option<NaiveDate>,
    /// Records that a `FactCorrected` may supersede, by id, except
    /// measurements: [`Rep::fact`] answers for both.
    facts: BTreeMap<Uuid, Fact>,
    /// Every measurement, in the order recorded, with its value after
    /// corrections. Measurements are most of a rep's history, and the
    /// states of thousands of reps are kept between commands, so they are
    /// kept in one flat list of small records rather than in maps by id
    /// (which held each about three times over). A command looks one up
    /// by id, or by metric and period, with a scan: once per command, over
    /// a few hundred records, never per event folded.
    measurements: Vec<Measurement>,
    /// Every metric the rep was measured on, each once. A measurement names
    /// its metric by its place here: measurements are most of a rep's
    /// history, and the states of thousands of reps are kept between
    /// commands, so a name is not stored with each of them.
    metrics: Vec<MetricName>,
    /// The ids recorded in this stream that are not a fact's, a
    /// measurement's or an action item's (support requests, plans,
    /// reviews). With those, every id recorded, so none is used twice
    /// ([`Rep::id_used`]).
    pub used_ids: BTreeSet<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackRecord {
    pub visibility: Visibility,
    pub acknowledged: bool,
}

/// Whether an action item due on `due_on` and still open is overdue on
/// `day`: once its due day has passed (due today is not late yet). Every
/// count, alert and tag of overdue items asks this.
pub fn overdue_on(due_on: NaiveDate, day: NaiveDate) -> bool {
    due_on < day
}

/// Whether an action item due on `due_on` and completed on `done_on` was
/// done on time: by its due day.
pub fn done_on_time(done_on: NaiveDate, due_on: NaiveDate) -> bool {
    done_on <= due_on
}

/// An action item as the rep's state keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionItemRecord {
    pub status: ActionItemStatus,
    /// Who owes it: a rep may close only the items they owe.
    pub owner: Owner,
    /// The coaching session it was agreed in: when that session is
    /// retracted, the item no longer counts.
    pub session_id: SessionId,
    /// The day of that session: nothing happens to the item before it.
    pub agreed_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionItemStatus {
    Open,
    Completed,
    Dropped,
}

impl fmt::Display for ActionItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionItemStatus::Open => "open",
            ActionItemStatus::Completed => "completed",
            ActionItemStatus::Dropped => "dropped",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportStatus {
    Raised,
    Acknowledged,
    Resolved { on: NaiveDate },
}

/// What kind of record a correctable fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    Assessment,
    Measurement,
    Feedback,
    CoachingSession,
    Training,
}

impl fmt::Display for FactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FactKind::Assessment => "skill assessment",
            FactKind::Measurement => "measurement",
            FactKind::Feedback => "feedback",
            FactKind::CoachingSession => "coaching session",
            FactKind::Training => "training",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fact {
    pub kind: FactKind,
    pub retracted: bool,
}

/// A measurement as the rep's state keeps it (40 bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub measurement_id: MeasurementId,
    /// Its metric, by its place among the rep's ([`Rep::metric`]).
    pub metric: MetricSlot,
    pub period: Period,
    /// The value after corrections.
    pub value: MetricValue,
    pub retracted: bool,
}

/// One of the metrics a rep was measured on, by its place among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricSlot(u32);

impl RepState {
    /// The rep, if they have joined.
    pub fn rep(&self) -> Option<&Rep> {
        match self {
            RepState::NotJoined => None,
            RepState::Joined(rep) => Some(rep),
        }
    }
}

impl Rep {
    fn record_fact(&mut self, id: Uuid, kind: FactKind) {
        self.facts.insert(
            id,
            Fact {
                kind,
                retracted: false,
            },
        );
    }

    fn close_action_item(&mut self, id: ActionItemId, status: ActionItemStatus) {
        if let Some(item) = self.action_items.get_mut(&id) {
            item.status = status;
        }
    }

    /// Whether `id` was recorded in this stream already, as any record's.
    pub fn id_used(&self, id: Uuid) -> bool {
        self.facts.contains_key(&id)
            || self.used_ids.contains(&id)
            || self.action_items.contains_key(&ActionItemId::from_uuid(id))
            || self.measurement(MeasurementId::from_uuid(id)).is_some()
    }

    /// The correctable record with this id (feedback, a coaching session,
    /// a measurement, ...): its kind and whether it was retracted.
    pub fn fact(&self, id: Uuid) -> Option<Fact> {
        self.facts.get(&id).copied().or_else(|| {
            self.measurement(MeasurementId::from_uuid(id))
                .map(|m| Fact {
                    kind: FactKind::Measurement,
                    retracted: m.retracted,
                })
        })
    }

    /// The measurement with this id. Were an id recorded twice, the later
    /// record, as a map by id would keep.
    pub fn measurement(&self, id: MeasurementId) -> Option<&Measurement> {
        self.measurements
            .iter()
            .rev()
            .find(|m| m.measurement_id == id)
    }

    fn measurement_mut(&mut self, id: MeasurementId) -> Option<&mut Measurement> {
        self.measurements
            .iter_mut()
            .rev()
            .find(|m| m.measurement_id == id)
    }

    /// Every measurement, in the order recorded, retracted ones included.
    pub fn measurements(&self) -> &[Measurement] {
        &self.measurements
    }

    /// The name of a measurement's metric.
    pub fn metric(&self, slot: MetricSlot) -> &MetricName {
        &self.metrics[slot.0 as usize]
    }

    /// The live (not retracted) measurement of `metric` in `period`.
    /// The latest measurement of a metric and period counts; once it is
    /// retracted the period has none until another is recorded.
    pub fn live_measurement(&self, metric: &MetricName, period: Period) -> Option<&Measurement> {
        let slot = self.slot_of(metric)?;
        self.measurements
            .iter()
            .rev()
            .find(|m| m.metric == slot && m.period == period)
            .filter(|m| !m.retracted)
    }

    /// The place of `metric` among the rep's metrics (a rep is measured on
    /// a handful, so a scan).
    fn slot_of(&self, metric: &MetricName) -> Option<MetricSlot> {
        let at = self.metrics.iter().position(|m| m == metric)?;
        Some(MetricSlot(
            u32::try_from(at).expect("fewer than 2^32 metrics"),
        ))
    }

    /// The place of `metric`, added if it is new.
    fn slot(&mut self, metric: &MetricName) -> MetricSlot {
        self.slot_of(metric).unwrap_or_else(|| {
            self.metrics.push(metric.clone());
            MetricSlot(u32::try_from(self.metrics.len() - 1).expect("fewer than 2^32 metrics"))
        })
    }

    /// Whether the record with this id (feedback, a coaching session, a
    /// measurement, ...) was retracted.
    pub fn is_retracted(&self, record: Uuid) -> bool {
        self.fact(record).is_some_and(|f| f.retracted)
    }

    /// Whether `feedback_id` is feedback the rep can see: shared and not retracted.
    pub fn sees_feedback(&self, feedback_id: FeedbackId) -> bool {
        let shared = self
            .feedback
            .get(&feedback_id)
            .is_some_and(|f| f.visibility == Visibility::Shared);
        shared && !self.is_retracted(feedback_id.as_uuid())
    }

    /// Whether the rep can see a coaching session held with them and the
    /// action items agreed in it: shared and not retracted (a retracted
    /// session does not count, and neither do its items).
    pub fn sees_coaching_session(&self, session: &CoachingSessionHeld) -> bool {
        session.visibility == Visibility::Shared && !self.is_retracted(session.session_id.as_uuid())
    }
}

/// The ids of the records whose content a rep may not read, from the rep's
/// events and `rep`, their folded state: feedback [`Rep::sees_feedback`]
/// refuses (private, or retracted since), and coaching sessions
/// [`Rep::sees_coaching_session`] refuses (private, or retracted since) with
/// their action items. Leaders and auditors read everything; every view of
/// a rep's own record (the read API, the dashboard) withholds these.
pub fn hidden_from_rep<'a>(
    rep: Option<&Rep>,
    events: impl IntoIterator<Item = &'a RepEvent>,
) -> BTreeSet<Uuid> {
    let mut hidden = BTreeSet::new();
    for event in events {
        match event {
            RepEvent::FeedbackGiven(e) if !rep.is_some_and(|r| r.sees_feedback(e.feedback_id)) => {
                hidden.insert(e.feedback_id.as_uuid());
            }
            RepEvent::CoachingSessionHeld(e)
                if !rep.is_some_and(|r| r.sees_coaching_session(e)) =>
            {
                hidden.insert(e.session_id.as_uuid());
                hidden.extend(e.action_items.iter().map(|a| a.action_item_id.as_uuid()));
            }
            _ => {}
        }
    }
    hidden
}

pub fn evolve(state: RepState, event: &RepEvent) -> RepState {
    let mut rep = match (state, event) {
        (RepState::NotJoined, RepEvent::Joined(e)) => {
            return RepState::Joined(Box::new(Rep {
                rep_id: e.rep_id,
                name: e.name.clone(),
                former_names: Vec::new(),
                role: e.role.clone(),
                team_id: e.team_id,
                start_date: e.start_date,
                departed_on: None,
                erased_on: None,
                acknowledged_expectations: BTreeSet::new(),
                feedback: BTreeMap::new(),
                action_items: BTreeMap::new(),
                support_requests: BTreeMap::new(),
                raised_on: BTreeMap::new(),
                open_plan: None,
                open_plan_started_on: None,
                facts: BTreeMap::new(),
                measurements: Vec::new(),
                metrics: Vec::new(),
                used_ids: BTreeSet::new(),
            }));
        }
        (RepState::NotJoined, _) => return RepState::NotJoined,
        (RepState::Joined(rep), _) => rep,
    };
    match event {
        RepEvent::Joined(_) => {}
        RepEvent::MovedTeam(e) => rep.team_id = e.to,
        RepEvent::RoleChanged(e) => rep.role = e.to.clone(),
        RepEvent::Departed(e) => rep.departed_on = Some(e.on),
        RepEvent::Renamed(e) => {
            let former = std::mem::replace(&mut rep.name, e.name.clone());
            rep.former_names.push(former);
        }
        RepEvent::PersonalDataErased(e) => {
            rep.erased_on = Some(e.on);
            rep.name = PersonName::erased();
            rep.former_names.clear();
        }
        RepEvent::ExpectationsAcknowledged(e) => {
            rep.acknowledged_expectations
                .insert((e.standard_id, e.standard_version));
        }
        RepEvent::FeedbackGiven(e) => {
            rep.record_fact(e.feedback_id.as_uuid(), FactKind::Feedback);
            rep.feedback.insert(
                e.feedback_id,
                FeedbackRecord {
                    visibility: e.visibility,
                    acknowledged: false,
                },
            );
        }
        RepEvent::FeedbackAcknowledged(e) => {
            if let Some(feedback) = rep.feedback.get_mut(&e.feedback_id) {
                feedback.acknowledged = true;
            }
        }
        RepEvent::SkillAssessed(e) => {
            rep.record_fact(e.assessment_id.as_uuid(), FactKind::Assessment)
        }
        RepEvent::CoachingSessionHeld(e) => {
            rep.record_fact(e.session_id.as_uuid(), FactKind::CoachingSession);
            for item in &e.action_items {
                rep.action_items.insert(
                    item.action_item_id,
                    ActionItemRecord {
                        status: ActionItemStatus::Open,
                        owner: item.owner,
                        session_id: e.session_id,
                        agreed_on: e.held_on,
                    },
                );
            }
        }
        RepEvent::ActionItemCompleted(e) => {
            rep.close_action_item(e.action_item_id, ActionItemStatus::Completed)
        }
        RepEvent::ActionItemDropped(e) => {
            rep.close_action_item(e.action_item_id, ActionItemStatus::Dropped)
        }
        RepEvent::TrainingCompleted(e) => {
            rep.record_fact(e.training_id.as_uuid(), FactKind::Training)
        }
        RepEvent::PerformanceMeasured(e) => {
            let metric = rep.slot(&e.metric);
            rep.measurements.push(Measurement {
                measurement_id: e.measurement_id,
                metric,
                period: e.period,
                value: e.value,
                retracted: false,
            });
        }
        RepEvent::SupportRequested(e) => {
            rep.used_ids.insert(e.request_id.as_uuid());
            rep.support_requests
                .insert(e.request_id, SupportStatus::Raised);
            rep.raised_on.insert(e.request_id, e.raised_on);
        }
        RepEvent::SupportAcknowledged(e) => {
            if let Some(status @ SupportStatus::Raised) =
                rep.support_requests.get_mut(&e.request_id)
            {
                *status = SupportStatus::Acknowledged;
            }
        }
        RepEvent::SupportResolved(e) => {
            rep.support_requests
                .insert(e.request_id, SupportStatus::Resolved { on: e.on });
        }
        RepEvent::ImprovementPlanStarted(e) => {
            rep.used_ids.insert(e.plan_id.as_uuid());
            rep.open_plan = Some(e.plan_id);
            rep.open_plan_started_on = Some(e.started_on);
        }
        RepEvent::PlanCheckpointRecorded(_) => {}
        RepEvent::ImprovementPlanClosed(e) => {
            if rep.open_plan == Some(e.plan_id) {
                rep.open_plan = None;
                rep.open_plan_started_on = None;
            }
        }
        RepEvent::FactCorrected(e) => apply_correction(&mut rep, e.fact_id, &e.correction),
        RepEvent::ReviewHeld(e) => {
            rep.used_ids.insert(e.review_id.as_uuid());
        }
    }
    RepState::Joined(rep)
}

fn apply_correction(rep: &mut Rep, fact_id: Uuid, correction: &Correction) {
    let measurement_id = MeasurementId::from_uuid(fact_id);
    match correction {
        Correction::SkillLevel { .. } => {}
        Correction::MeasuredValue { value } => {
            if let Some(measurement) = rep.measurement_mut(measurement_id) {
                measurement.value = *value;
            }
        }
        Correction::Retracted => {
            if let Some(fact) = rep.facts.get_mut(&fact_id) {
                fact.retracted = true;
            } else if let Some(measurement) = rep.measurement_mut(measurement_id) {
                measurement.retracted = true;
            }
        }
    }
}
