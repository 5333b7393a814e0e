//! Folding events into the facts: one function per event, no clock, no I/O.

use trellis_domain::competency::CompetencyEvent;
use trellis_domain::leader::LeaderEvent;
use trellis_domain::rep::{Correction, RepEvent};
use trellis_domain::standard::StandardEvent;
use trellis_domain::team::TeamEvent;
use trellis_domain::{
    AssessmentId, Event, FeedbackId, MeasurementId, RepId, SessionId, TrainingId,
};

use super::model::*;
use super::{Growth, rep_of};
use crate::projection::Envelope;

impl Growth {
    pub(super) fn fold(&mut self, envelope: &Envelope) {
        match &envelope.event {
            Event::Team(e) => self.fold_team(e),
            Event::Competency(e) => self.fold_competency(e),
            Event::Standard(e) => self.fold_standard(e),
            Event::Rep(e) => {
                if let Some(rep_id) = rep_of(envelope) {
                    self.fold_rep(rep_id, envelope.stream_version, e);
                }
            }
            // Alerts are about the facts, not facts themselves.
            Event::Alert(_) => {}
            Event::Leader(e) => self.fold_leader(e),
        }
    }

    /// A leader's name reads as erased from their erasure on, exactly as a
    /// replay (which reads every `LeaderAssigned` naming them as erased)
    /// folds it: replay equals live.
    fn fold_leader(&mut self, event: &LeaderEvent) {
        match event {
            LeaderEvent::Erased(e) => {
                for team in self.teams.values_mut() {
                    if let Some(name) = team.leaders.get_mut(&e.leader_id) {
                        *name = trellis_domain::PersonName::erased();
                        self.dirty.teams.insert(team.team_id);
                    }
                }
                if self.leaders.contains_key(&e.leader_id) {
                    self.leader(e.leader_id).name = Some(trellis_domain::PersonName::erased());
                }
            }
        }
    }

    fn fold_team(&mut self, event: &TeamEvent) {
        match event {
            TeamEvent::Formed(e) => {
                self.teams.entry(e.team_id).or_insert_with(|| TeamDoc {
                    team_id: e.team_id,
                    name: e.name.clone(),
                    leaders: Default::default(),
                    reps: Default::default(),
                });
                self.dirty.teams.insert(e.team_id);
            }
            TeamEvent::LeaderAssigned(e) => {
                if let Some(team) = self.teams.get_mut(&e.team_id) {
                    team.leaders.insert(e.leader_id, e.leader_name.clone());
                    self.dirty.teams.insert(e.team_id);
                }
                let leader = self.leader(e.leader_id);
                leader.name = Some(e.leader_name.clone());
                leader.teams.insert(e.team_id);
            }
            TeamEvent::Renamed(e) => {
                if let Some(team) = self.teams.get_mut(&e.team_id) {
                    team.name = e.name.clone();
                    self.dirty.teams.insert(e.team_id);
                }
            }
        }
    }

    fn fold_competency(&mut self, event: &CompetencyEvent) {
        let (id, name, retired) = match event {
            CompetencyEvent::Defined(e) => (e.competency_id, Some(e.name.clone()), false),
            CompetencyEvent::Revised(e) => (e.competency_id, Some(e.name.clone()), false),
            CompetencyEvent::Retired(e) => (e.competency_id, None, true),
        };
        match (self.competencies.get_mut(&id), name) {
            (Some(doc), name) => {
                if let Some(name) = name {
                    doc.name = name;
                }
                doc.retired |= retired;
            }
            (None, Some(name)) => {
                self.competencies.insert(
                    id,
                    CompetencyDoc {
                        competency_id: id,
                        name,
                        retired,
                    },
                );
            }
            (None, None) => return,
        }
        self.dirty.competencies.insert(id);
    }

    fn fold_standard(&mut self, event: &StandardEvent) {
        let id = match event {
            StandardEvent::Set(e) => {
                self.standards.insert(
                    e.standard_id,
                    StandardDoc {
                        standard_id: e.standard_id,
                        name: e.name.clone(),
                        metric: e.metric.clone(),
                        kind: e.kind,
                        direction: e.direction,
                        unit: e.unit.clone(),
                        period: e.period,
                        versions: vec![StandardVersionDoc::set(e)],
                        retired_from: None,
                    },
                );
                e.standard_id
            }
            StandardEvent::Revised(e) => {
                let Some(standard) = self.standards.get_mut(&e.standard_id) else {
                    return;
                };
                let Some(previous) = standard.versions.last() else {
                    return;
                };
                let version = StandardVersionDoc::revised(previous, e);
                standard.versions.push(version);
                e.standard_id
            }
            StandardEvent::Retired(e) => {
                let Some(standard) = self.standards.get_mut(&e.standard_id) else {
                    return;
                };
                standard.retired_from = Some(e.effective_from);
                e.standard_id
            }
        };
        self.dirty.standards.insert(id);
        // A standard judges every rep's periods: re-derive them all.
        self.dirty.all_reps = true;
    }

    fn fold_rep(&mut self, rep_id: RepId, seq: u64, event: &RepEvent) {
        if let RepEvent::Joined(e) = event {
            if self.reps.contains_key(&rep_id) {
                return;
            }
            self.reps.insert(
                rep_id,
                RepFacts {
                    rep_id,
                    name: e.name.clone(),
                    start_date: e.start_date,
                    roles: vec![Dated {
                        from: e.start_date,
                        value: e.role.clone(),
                    }],
                    teams: vec![Dated {
                        from: e.start_date,
                        value: e.team_id,
                    }],
                    departed_on: None,
                    erased_on: None,
                    acknowledged: Default::default(),
                    assessments: Default::default(),
                    measurements: Default::default(),
                    feedback: Default::default(),
                    sessions: Default::default(),
                    action_items: Default::default(),
                    trainings: Default::default(),
                    support_requests: Default::default(),
                    plans: Default::default(),
                    reviews_held: Default::default(),
                },
            );
            self.join_team(e.team_id, rep_id);
            self.dirty.reps.insert(rep_id);
            return;
        }
        let Some(rep) = self.reps.get_mut(&rep_id) else {
            return;
        };
        let mut moved_to = None;
        match event {
            RepEvent::Joined(_) => {}
            RepEvent::MovedTeam(e) => {
                rep.teams.push(Dated {
                    from: e.on,
                    value: e.to,
                });
                moved_to = Some(e.to);
            }
            RepEvent::RoleChanged(e) => rep.roles.push(Dated {
                from: e.on,
                value: e.to.clone(),
            }),
            RepEvent::Departed(e) => rep.departed_on = Some(e.on),
            RepEvent::Renamed(e) => rep.name = e.name.clone(),
            RepEvent::ExpectationsAcknowledged(e) => {
                rep.acknowledged
                    .insert(format!("{}/v{}", e.standard_id, e.standard_version), e.on);
            }
            RepEvent::FeedbackGiven(e) => {
                rep.feedback.insert(
                    e.feedback_id,
                    FeedbackFact {
                        leader_id: e.leader_id,
                        competency_id: e.competency_id,
                        kind: e.kind,
                        visibility: e.visibility,
                        given_on: e.given_on,
                        acknowledged_on: None,
                    },
                );
            }
            RepEvent::FeedbackAcknowledged(e) => {
                if let Some(feedback) = rep.feedback.get_mut(&e.feedback_id) {
                    feedback.acknowledged_on = Some(e.on);
                }
            }
            RepEvent::SkillAssessed(e) => {
                rep.assessments.insert(
                    e.assessment_id,
                    AssessmentFact {
                        leader_id: e.leader_id,
                        competency_id: e.competency_id,
                        level: e.level,
                        assessed_on: e.assessed_on,
                        seq,
                        corrected: false,
                    },
                );
            }
            RepEvent::CoachingSessionHeld(e) => {
                rep.sessions.insert(
                    e.session_id,
                    SessionFact {
                        leader_id: e.leader_id,
                        held_on: e.held_on,
                        minutes: e.duration_minutes,
                        focus: e.focus.clone(),
                        visibility: e.visibility,
                    },
                );
                for item in &e.action_items {
                    rep.action_items.insert(
                        item.action_item_id,
                        ActionItemFact {
                            session_id: e.session_id,
                            description: item.description.clone(),
                            owner: item.owner,
                            due_on: item.due_on,
                            visibility: e.visibility,
                            status: ItemStatus::Open,
                        },
                    );
                }
            }
            RepEvent::ActionItemCompleted(e) => {
                if let Some(item) = rep.action_items.get_mut(&e.action_item_id) {
                    item.status = ItemStatus::Completed(e.on);
                }
            }
            RepEvent::ActionItemDropped(e) => {
                if let Some(item) = rep.action_items.get_mut(&e.action_item_id) {
                    item.status = ItemStatus::Dropped(e.on);
                }
            }
            RepEvent::TrainingCompleted(e) => {
                rep.trainings.insert(
                    e.training_id,
                    TrainingFact {
                        title: e.title.clone(),
                        competency_id: e.competency_id,
                        completed_on: e.completed_on,
                    },
                );
            }
            RepEvent::PerformanceMeasured(e) => {
                rep.measurements.insert(
                    e.measurement_id,
                    MeasurementFact {
                        metric: intern(&mut self.metrics, &e.metric),
                        period: e.period,
                        value: e.value,
                        source: e.source,
                        seq,
                        corrected: false,
                    },
                );
            }
            RepEvent::SupportRequested(e) => {
                rep.support_requests.insert(
                    e.request_id,
                    SupportFact {
                        category: e.category,
                        description: e.description.clone(),
                        raised_on: e.raised_on,
                        acknowledged: None,
                        resolved: None,
                    },
                );
            }
            RepEvent::SupportAcknowledged(e) => {
                if let Some(request) = rep.support_requests.get_mut(&e.request_id) {
                    request.acknowledged.get_or_insert((e.leader_id, e.on));
                }
            }
            RepEvent::SupportResolved(e) => {
                if let Some(request) = rep.support_requests.get_mut(&e.request_id) {
                    request.resolved = Some((e.leader_id, e.on));
                }
            }
            RepEvent::ImprovementPlanStarted(e) => {
                rep.plans.insert(
                    e.plan_id,
                    PlanFact {
                        leader_id: e.leader_id,
                        targets: e.targets.clone(),
                        started_on: e.started_on,
                        review_on: e.review_on,
                        checkpoints: vec![],
                        closed: None,
                    },
                );
            }
            RepEvent::PlanCheckpointRecorded(e) => {
                if let Some(plan) = rep.plans.get_mut(&e.plan_id) {
                    plan.checkpoints.push(e.on);
                }
            }
            RepEvent::ImprovementPlanClosed(e) => {
                if let Some(plan) = rep.plans.get_mut(&e.plan_id) {
                    plan.closed = Some((e.outcome, e.on));
                }
            }
            RepEvent::FactCorrected(e) => correct(rep, e.fact_id, &e.correction),
            RepEvent::ReviewHeld(e) => rep.reviews_held.push(e.on),
            // Every personal string the facts hold reads as erased from
            // now on, exactly as a replay (which reads the rep's earlier
            // events as erased) folds it: replay equals live.
            RepEvent::PersonalDataErased(e) => {
                rep.erased_on = Some(e.on);
                let erased = || {
                    trellis_domain::Note::try_from(trellis_domain::personal::ERASED_TEXT)
                        .expect("the erased marker is a valid note")
                };
                rep.name = trellis_domain::PersonName::erased();
                for item in rep.action_items.values_mut() {
                    item.description = erased();
                }
                for request in rep.support_requests.values_mut() {
                    request.description = erased();
                }
                for plan in rep.plans.values_mut() {
                    for target in &mut plan.targets {
                        target.description = erased();
                    }
                }
            }
        }
        self.dirty.reps.insert(rep_id);
        if let Some(team) = moved_to {
            self.join_team(team, rep_id);
        }
    }

    fn join_team(&mut self, team_id: trellis_domain::TeamId, rep_id: RepId) {
        if let Some(team) = self.teams.get_mut(&team_id) {
            team.reps.insert(rep_id);
            self.dirty.teams.insert(team_id);
        }
    }
}

/// A correction replaces what it corrects; a retraction removes the record
/// (and, for a coaching session, the action items agreed in it).
fn correct(rep: &mut RepFacts, fact_id: uuid::Uuid, correction: &Correction) {
    match correction {
        Correction::SkillLevel { level, .. } => {
            if let Some(a) = rep.assessments.get_mut(&AssessmentId::from_uuid(fact_id)) {
                a.level = *level;
                a.corrected = true;
            }
        }
        Correction::MeasuredValue { value } => {
            if let Some(m) = rep.measurements.get_mut(&MeasurementId::from_uuid(fact_id)) {
                m.value = *value;
                m.corrected = true;
            }
        }
        Correction::Retracted => {
            rep.assessments.remove(&AssessmentId::from_uuid(fact_id));
            rep.measurements.remove(&MeasurementId::from_uuid(fact_id));
            rep.feedback.remove(&FeedbackId::from_uuid(fact_id));
            rep.trainings.remove(&TrainingId::from_uuid(fact_id));
            let session_id = SessionId::from_uuid(fact_id);
            if rep.sessions.remove(&session_id).is_some() {
                rep.action_items
                    .retain(|_, item| item.session_id != session_id);
            }
        }
    }
}
