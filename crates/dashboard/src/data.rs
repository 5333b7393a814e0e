//! Loading what the pages show: documents of the `growth` projection's
//! active generation, and the entries of a rep's coaching-and-feedback
//! timeline from their stream (for the words of notes, which the read models
//! do not keep). Time travel, packets and audit trails are the read side's
//! (`trellis_queries`), not this module's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use trellis_domain::rep::{
    self, Correction, FeedbackKind, Owner, RepEvent, RepState, Visibility, evolve,
};
use trellis_domain::{LeaderId, RepId, StandardId, TeamId};
use trellis_projections::growth::derive::{GrowthTimeline, RepProfile};
use trellis_projections::growth::{CompetencyDoc, LeaderDoc, StandardDoc, TeamDoc, kinds};

use crate::error::PageError;
use crate::html::outcome;
use crate::state::DashboardState;

/// Documents of one kind by key; missing keys are left out.
pub(crate) async fn docs<T: DeserializeOwned>(
    state: &DashboardState,
    kind: &str,
    keys: &[String],
) -> Result<Vec<T>, PageError> {
    Ok(state.models().docs(kind, keys).await?)
}

pub(crate) async fn doc<T: DeserializeOwned>(
    state: &DashboardState,
    kind: &str,
    key: impl ToString,
) -> Result<Option<T>, PageError> {
    Ok(state.models().doc(kind, key).await?)
}

/// Every team (few enough to list).
pub(crate) async fn all_teams(state: &DashboardState) -> Result<Vec<TeamDoc>, PageError> {
    Ok(state.models().teams().await?)
}

pub(crate) async fn team(state: &DashboardState, id: TeamId) -> Result<Option<TeamDoc>, PageError> {
    doc(state, kinds::TEAM, id).await
}

pub(crate) async fn leader(
    state: &DashboardState,
    id: LeaderId,
) -> Result<Option<LeaderDoc>, PageError> {
    Ok(state.models().leader(id).await?)
}

pub(crate) async fn profiles(
    state: &DashboardState,
    reps: impl IntoIterator<Item = RepId>,
) -> Result<Vec<RepProfile>, PageError> {
    let keys: Vec<String> = reps.into_iter().map(|r| r.to_string()).collect();
    docs(state, kinds::REP_PROFILE, &keys).await
}

/// The competencies that may be used for new records, by name.
pub(crate) async fn active_competencies(
    state: &DashboardState,
) -> Result<Vec<CompetencyDoc>, PageError> {
    let mut all: Vec<CompetencyDoc> = state.models().all(kinds::COMPETENCY).await?;
    all.retain(|c| !c.retired);
    all.sort_by_key(|c| c.name.to_string());
    Ok(all)
}

/// Competency names by id.
pub(crate) async fn competency_names(
    state: &DashboardState,
    ids: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<String, String>, PageError> {
    let keys: Vec<String> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let docs: Vec<CompetencyDoc> = docs(state, kinds::COMPETENCY, &keys).await?;
    Ok(docs
        .into_iter()
        .map(|c| (c.competency_id.to_string(), c.name.to_string()))
        .collect())
}

/// The standards a timeline mentions.
pub(crate) async fn standards_of(
    state: &DashboardState,
    timeline: &GrowthTimeline,
) -> Result<BTreeMap<StandardId, StandardDoc>, PageError> {
    let ids: BTreeSet<String> = timeline
        .weeks
        .iter()
        .chain(&timeline.months)
        .chain(&timeline.quarters)
        .flat_map(|r| r.standards.iter().map(|s| s.standard_id.to_string()))
        .collect();
    let keys: Vec<String> = ids.into_iter().collect();
    let docs: Vec<StandardDoc> = docs(state, kinds::STANDARD, &keys).await?;
    Ok(docs.into_iter().map(|d| (d.standard_id, d)).collect())
}

/// The standards in force today for the rep's role whose current version
/// the rep has not acknowledged yet, by name.
pub(crate) async fn standards_to_acknowledge(
    state: &DashboardState,
    decoded: &[&RepEvent],
    profile: &RepProfile,
) -> Result<Vec<StandardDoc>, PageError> {
    let acknowledged: BTreeSet<(StandardId, u32)> = decoded
        .iter()
        .filter_map(|e| match e {
            RepEvent::ExpectationsAcknowledged(a) => Some((a.standard_id, a.standard_version)),
            _ => None,
        })
        .collect();
    let today = state.today();
    let mut all: Vec<StandardDoc> = state.models().all(kinds::STANDARD).await?;
    all.retain(|s| {
        s.version_in_force(today)
            .is_some_and(|v| v.roles.contains(&profile.role))
            && s.versions
                .last()
                .is_some_and(|latest| !acknowledged.contains(&(s.standard_id, latest.version)))
    });
    all.sort_by_key(|s| s.name.to_string());
    Ok(all)
}

/// Leader names of every team, by leader id.
pub(crate) async fn leader_names(
    state: &DashboardState,
) -> Result<BTreeMap<String, String>, PageError> {
    Ok(all_teams(state)
        .await?
        .into_iter()
        .flat_map(|t| {
            t.leaders
                .into_iter()
                .map(|(id, name)| (id.to_string(), name.to_string()))
        })
        .collect())
}

/// Who may have recorded an event, by the actor id the log records: every
/// team's leaders by name, and the admins and auditors who sign in with an
/// account, by its name and role ("Dana Reyes, admin"), since their actor
/// is their account's id. Without sign-in accounts, or when they cannot be
/// read (the page still shows, with those actors' ids), the leaders alone.
pub(crate) async fn actor_names(
    state: &DashboardState,
) -> Result<BTreeMap<String, String>, PageError> {
    let mut names = leader_names(state).await?;
    if let Some(access) = state.access() {
        // Admins' and auditors' names only: no rep's is looked up anew.
        let accounts = match access.store().accounts().await {
            Ok(accounts) => accounts,
            Err(e) => {
                tracing::warn!(error = %e, "the sign-in accounts could not be read to name actors");
                Vec::new()
            }
        };
        for account in accounts {
            let role = match account.role {
                trellis_http::auth::Role::Admin => "admin",
                trellis_http::auth::Role::Auditor => "auditor",
                _ => continue,
            };
            names.insert(
                account.person.to_string(),
                format!("{}, {role}", account.name),
            );
        }
    }
    Ok(names)
}

/// The ids (as text) of the records a rep may not see the content of: the
/// domain's [`rep::hidden_from_rep`] over the rep's stream.
pub(crate) fn hidden_from_rep<'a>(
    decoded: impl IntoIterator<Item = &'a RepEvent> + Clone,
) -> BTreeSet<String> {
    let state = decoded
        .clone()
        .into_iter()
        .fold(RepState::default(), evolve);
    rep::hidden_from_rep(state.rep(), decoded)
        .into_iter()
        .map(|id| id.to_string())
        .collect()
}

/// One entry of a rep's coaching-and-feedback timeline.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub on: NaiveDate,
    /// CSS class: coaching, feedback-praise, feedback-constructive, plan, support, correction, other.
    pub class: &'static str,
    pub title: String,
    pub text: Option<String>,
    pub extra: Vec<String>,
    pub private: bool,
    pub by: Option<LeaderId>,
    /// Superseded by a later correction (with its reason).
    pub corrected: Option<String>,
    /// The id of the record, for a correction to name, and how it may be
    /// corrected: `retract`, or `level` for an assessment.
    pub fact: Option<(String, &'static str)>,
}

/// The rep's timeline from their stream: coaching, feedback, assessments,
/// training, support, plans, corrections and changes of team and role.
/// Unless `private` is true (a leader's view), what the rep may not see is
/// left out: private notes, what came out of private sessions, and feedback
/// and sessions retracted since (the domain's [`rep::hidden_from_rep`]).
pub(crate) fn timeline_entries<'a>(
    decoded: impl IntoIterator<Item = &'a RepEvent>,
    competencies: &BTreeMap<String, String>,
    private: bool,
) -> Vec<Entry> {
    let name = |id: &dyn ToString| {
        competencies
            .get(&id.to_string())
            .cloned()
            .unwrap_or_else(|| "a competency".to_owned())
    };
    let decoded: Vec<&RepEvent> = decoded.into_iter().collect();
    // What a rep may see, by the domain's rules: the rep's state once.
    let state = decoded.iter().copied().fold(RepState::default(), evolve);
    // What a rep may not see; a leader sees it all, private and retracted
    // records labelled as such.
    let hidden: BTreeSet<String> = if private {
        BTreeSet::new()
    } else {
        rep::hidden_from_rep(state.rep(), decoded.iter().copied())
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    };
    // When the rep acknowledged each feedback.
    let acknowledged: BTreeMap<String, NaiveDate> = decoded
        .iter()
        .filter_map(|e| match e {
            RepEvent::FeedbackAcknowledged(a) => Some((a.feedback_id.to_string(), a.on)),
            _ => None,
        })
        .collect();
    // What later corrections say about earlier facts.
    let mut corrections: BTreeMap<String, String> = BTreeMap::new();
    for event in &decoded {
        if let RepEvent::FactCorrected(c) = *event {
            let what = match &c.correction {
                Correction::SkillLevel { level, .. } => {
                    format!("corrected to level {}", level.get())
                }
                Correction::MeasuredValue { value } => format!("corrected to {}", value.get()),
                Correction::Retracted => "retracted".to_owned(),
            };
            // Every correction, in the order recorded: a level corrected
            // twice says both.
            let said = format!("{what}: {}", c.reason);
            corrections
                .entry(c.fact_id.to_string())
                .and_modify(|earlier| *earlier = format!("{earlier}; then {said}"))
                .or_insert(said);
        }
    }
    let mut items: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let mut requests: BTreeMap<String, NaiveDate> = BTreeMap::new();
    let mut out = vec![];
    for event in decoded {
        let mut entry = |on, class, title: String, text: Option<String>, is_private, by| {
            out.push(Entry {
                on,
                class,
                title,
                text,
                extra: vec![],
                private: is_private,
                by,
                corrected: None,
                fact: None,
            });
        };
        match event {
            RepEvent::Joined(e) => entry(
                e.start_date,
                "other",
                format!("Joined as {}", e.role),
                None,
                false,
                None,
            ),
            RepEvent::MovedTeam(e) => {
                entry(
                    e.on,
                    "other",
                    "Moved to another team".into(),
                    None,
                    false,
                    None,
                );
            }
            RepEvent::RoleChanged(e) => {
                entry(
                    e.on,
                    "other",
                    format!("Role changed to {}", e.to),
                    None,
                    false,
                    None,
                );
            }
            RepEvent::Departed(e) => entry(
                e.on,
                "other",
                "Departed".into(),
                Some(e.reason.to_string()),
                false,
                None,
            ),
            RepEvent::FeedbackGiven(e) => {
                let is_private = e.visibility == Visibility::Private;
                if hidden.contains(&e.feedback_id.to_string()) {
                    continue;
                }
                let (class, kind) = match e.kind {
                    FeedbackKind::Praise => ("feedback-praise", "Praise"),
                    FeedbackKind::Constructive => {
                        ("feedback-constructive", "Constructive feedback")
                    }
                };
                entry(
                    e.given_on,
                    class,
                    format!("{kind} on {}", name(&e.competency_id)),
                    Some(e.note.to_string()),
                    is_private,
                    Some(e.leader_id),
                );
                if let Some(last) = out.last_mut() {
                    let id = e.feedback_id.to_string();
                    // Feedback the rep does not see (private, or retracted
                    // since) is not theirs to acknowledge.
                    if state.rep().is_some_and(|r| r.sees_feedback(e.feedback_id)) {
                        let who = if private { " by the rep" } else { "" };
                        last.extra.push(acknowledged.get(&id).map_or_else(
                            || format!("Not acknowledged{who} yet"),
                            |on| format!("Acknowledged{who} on {on}"),
                        ));
                    }
                    last.corrected = corrections.get(&id).cloned();
                    last.fact = Some((id, "retract"));
                }
            }
            RepEvent::SkillAssessed(e) => {
                entry(
                    e.assessed_on,
                    "other",
                    format!(
                        "{} assessed at level {}",
                        name(&e.competency_id),
                        e.level.get()
                    ),
                    Some(e.evidence.to_string()),
                    false,
                    Some(e.leader_id),
                );
                if let Some(last) = out.last_mut() {
                    last.corrected = corrections.get(&e.assessment_id.to_string()).cloned();
                    last.fact = Some((e.assessment_id.to_string(), "level"));
                }
            }
            RepEvent::CoachingSessionHeld(e) => {
                let is_private = e.visibility == Visibility::Private;
                for item in &e.action_items {
                    items.insert(
                        item.action_item_id.to_string(),
                        (item.description.to_string(), is_private),
                    );
                }
                if hidden.contains(&e.session_id.to_string()) {
                    continue;
                }
                let focus: Vec<String> = e.focus.iter().map(|c| name(c)).collect();
                entry(
                    e.held_on,
                    "coaching",
                    format!(
                        "Coaching session, {} min{}",
                        e.duration_minutes,
                        if focus.is_empty() {
                            String::new()
                        } else {
                            format!(" — focus: {}", focus.join(", "))
                        }
                    ),
                    Some(e.notes.to_string()),
                    is_private,
                    Some(e.leader_id),
                );
                if let Some(last) = out.last_mut() {
                    last.extra = e
                        .action_items
                        .iter()
                        .map(|i| {
                            format!(
                                "Action item for {}: {} (due {})",
                                match i.owner {
                                    Owner::Rep => "the rep",
                                    Owner::Leader(_) => "the leader",
                                },
                                i.description,
                                i.due_on
                            )
                        })
                        .collect();
                    last.corrected = corrections.get(&e.session_id.to_string()).cloned();
                    last.fact = Some((e.session_id.to_string(), "retract"));
                }
            }
            RepEvent::ActionItemCompleted(e) => {
                out.extend(closed_item(&items, &hidden, e.action_item_id, e.on, None));
            }
            RepEvent::ActionItemDropped(e) => {
                let reason = Some(e.reason.to_string());
                out.extend(closed_item(&items, &hidden, e.action_item_id, e.on, reason));
            }
            RepEvent::TrainingCompleted(e) => {
                entry(
                    e.completed_on,
                    "other",
                    format!("Training completed: {}", e.title),
                    None,
                    false,
                    None,
                );
                if let Some(last) = out.last_mut() {
                    last.corrected = corrections.get(&e.training_id.to_string()).cloned();
                    last.fact = Some((e.training_id.to_string(), "retract"));
                }
            }
            RepEvent::SupportRequested(e) => {
                requests.insert(e.request_id.to_string(), e.raised_on);
                entry(
                    e.raised_on,
                    "support",
                    format!(
                        "Support request raised ({})",
                        serde_json::to_value(e.category)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ),
                    Some(e.description.to_string()),
                    false,
                    None,
                );
            }
            RepEvent::SupportResolved(e) => {
                let days = requests
                    .get(&e.request_id.to_string())
                    .map(|raised| (e.on - *raised).num_days());
                entry(
                    e.on,
                    "support",
                    match days.and_then(|d| u64::try_from(d).ok()) {
                        Some(d) => format!(
                            "Support request resolved after {}",
                            trellis_queries::export::plural(d, "day", "days")
                        ),
                        None => "Support request resolved".to_owned(),
                    },
                    Some(e.resolution.to_string()),
                    false,
                    Some(e.leader_id),
                );
            }
            RepEvent::ImprovementPlanStarted(e) => {
                entry(
                    e.started_on,
                    "plan",
                    format!("Improvement plan started, review on {}", e.review_on),
                    None,
                    false,
                    Some(e.leader_id),
                );
                if let Some(last) = out.last_mut() {
                    last.extra = e
                        .targets
                        .iter()
                        .map(|t| format!("Target: {}", t.description))
                        .collect();
                }
            }
            RepEvent::PlanCheckpointRecorded(e) => entry(
                e.on,
                "plan",
                "Improvement plan checkpoint".into(),
                Some(e.note.to_string()),
                false,
                None,
            ),
            RepEvent::ImprovementPlanClosed(e) => entry(
                e.on,
                "plan",
                format!("Improvement plan closed: {}", outcome(e.outcome)),
                Some(e.note.to_string()),
                false,
                None,
            ),
            RepEvent::FactCorrected(_) => {
                // Corrections have no business date of their own: shown with
                // the record they correct (see `corrected`), so not at all
                // with a record the viewer does not see.
            }
            RepEvent::ReviewHeld(e) => entry(
                e.on,
                "other",
                format!(
                    "Performance review held ({} to {})",
                    e.period_from, e.period_to
                ),
                None,
                false,
                None,
            ),
            RepEvent::PersonalDataErased(e) => entry(
                e.on,
                "other",
                "Personal data erased".into(),
                Some(e.reason.to_string()),
                false,
                None,
            ),
            // A name has no business date: the page is headed by the
            // name the rep had on the day it shows, and the audit trail
            // dates each change.
            RepEvent::ExpectationsAcknowledged(_)
            | RepEvent::Renamed(_)
            | RepEvent::FeedbackAcknowledged(_)
            | RepEvent::PerformanceMeasured(_)
            | RepEvent::SupportAcknowledged(_) => {}
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.on));
    out
}

/// The entry of an action item closed on `on`: done, or dropped with its
/// reason; none for an item of a record the viewer does not see (`hidden`).
/// `items` holds each item's description and whether its session was private.
fn closed_item(
    items: &BTreeMap<String, (String, bool)>,
    hidden: &BTreeSet<String>,
    item: trellis_domain::ActionItemId,
    on: NaiveDate,
    dropped_because: Option<String>,
) -> Option<Entry> {
    let id = item.to_string();
    if hidden.contains(&id) {
        return None;
    }
    let (description, private) = items
        .get(&id)
        .cloned()
        .unwrap_or_else(|| ("an action item".to_owned(), false));
    let verb = if dropped_because.is_some() {
        "dropped"
    } else {
        "done"
    };
    Some(Entry {
        on,
        class: "coaching",
        title: format!("Action item {verb}: {description}"),
        text: dropped_because,
        extra: vec![],
        private,
        by: None,
        corrected: None,
        fact: None,
    })
}
