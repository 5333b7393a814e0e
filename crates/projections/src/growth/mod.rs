//! The `growth` projection: one fold over the log that keeps each rep's facts
//! and the catalogue, and derives from them the rep profiles, growth
//! timelines, team documents and leader activity.
//!
//! One projection rather than one per read model because every read model
//! here is derived from the same facts: splitting them would fold and store
//! those facts several times over. The team view and leader scorecard are
//! assembled at query time from these documents ([`crate::query`]).
//!
//! A rebuild may fold it in shards by rep ([`Projection::shardable`]): a
//! rep's events go to the rep's shard, the catalogue's (teams,
//! competencies, standards) to every shard. A rep's documents follow from
//! its own stream and the catalogue alone; what several reps contribute to
//! (a team's reps, a leader's activity per rep) is merged by union.
//!
//! Document kinds (the `kind` column of `read_models`):
//!
//! | kind | key | what | restored on start |
//! | --- | --- | --- | --- |
//! | `rep_facts` | rep id | [`RepFacts`]: the log about the rep, corrections applied | yes |
//! | `standard` | standard id | [`StandardDoc`]: every version | yes |
//! | `team` | team id | [`TeamDoc`]: name, leaders, every rep ever on it | yes |
//! | `competency` | competency id | [`CompetencyDoc`]: name | yes |
//! | `leader` | leader id | [`LeaderHeader`]: name, teams, the reps with a share | yes |
//! | `leader_rep` | `{leader id}/{rep id}` | [`LeaderShare`]: what the leader did for the rep | yes |
//! | `rep_profile` | rep id | [`RepProfile`] | no (derived) |
//! | `rep_feedback` | rep id | [`RepFeedback`]: apart from the profile, which many pages read by the team | no (derived) |
//! | `growth_timeline` | rep id | [`GrowthTimeline`] | no (derived) |
//! | `recent_timeline` | rep id | [`GrowthTimeline::recent`]: its last rows only, for the team pages | no (derived) |

use std::any::Any;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde::de::DeserializeOwned;
use trellis_domain::{CompetencyId, Event, LeaderId, MetricName, RepId, StandardId, TeamId};

use crate::projection::{DocChange, Envelope, Projection, Route};

pub mod derive;
mod fold;
pub mod model;

pub use derive::{
    GrowthTimeline, PeriodRow, RepFeedback, RepProfile, StandardRow, Standing, StandingKind, Tail,
};
pub use model::*;

/// The projection's name (`trellis replay --projection growth`).
pub const NAME: &str = "growth";

/// Bumped whenever the documents' shape or a rule changes. 5: documents
/// are `json` on PostgreSQL (projection migration 0004), kept as the fold
/// writes them; the rebuild this forces replaces what the migration
/// converted (printed the way `jsonb` prints). 6: a leader's activity is
/// stored per rep (`leader_rep`), the `leader` document keeps the rest.
/// 7: each rep's `current_timeline` (the last week, month and quarter).
/// 8: a rep's feedback is its own document (`rep_feedback`), out of the
/// profile. 9: a standing's reasons give attainment rounded down, so a
/// period missed by a hair never reads 100%. 10: a timeline longer than
/// it keeps keeps its latest periods, not its first.
const CODE_VERSION: u32 = 10;

pub mod kinds {
    pub const REP_FACTS: &str = "rep_facts";
    pub const STANDARD: &str = "standard";
    pub const TEAM: &str = "team";
    pub const COMPETENCY: &str = "competency";
    pub const LEADER: &str = "leader";
    pub const LEADER_REP: &str = "leader_rep";
    pub const REP_PROFILE: &str = "rep_profile";
    pub const REP_FEEDBACK: &str = "rep_feedback";
    pub const GROWTH_TIMELINE: &str = "growth_timeline";
    pub const RECENT_TIMELINE: &str = "recent_timeline";
    pub const CURRENT_TIMELINE: &str = "current_timeline";
}

/// Settings that shape the documents (changing one rebuilds the projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowthSettings {
    /// N: the quality gate is passed once every quality standard applying to
    /// the rep's role has been met for N consecutive periods.
    pub quality_gate_periods: u32,
}

impl Default for GrowthSettings {
    fn default() -> Self {
        GrowthSettings {
            quality_gate_periods: 3,
        }
    }
}

#[derive(Debug, Default)]
struct Dirty {
    reps: BTreeSet<RepId>,
    all_reps: bool,
    standards: BTreeSet<StandardId>,
    teams: BTreeSet<TeamId>,
    competencies: BTreeSet<CompetencyId>,
    leaders: BTreeSet<LeaderId>,
}

/// A digest of a [`LeaderShare`] document as written (64 bits of SipHash,
/// kept in memory only: two different shares of one leader for one rep
/// agree by chance once in 2^64).
///
/// What the fold keeps of each share: a share is derived again from its
/// rep's facts whenever the rep changes, so keeping the shares themselves
/// would hold every rep's activity in memory twice; the digest is enough
/// to tell whether a share changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareDigest(u64);

impl ShareDigest {
    fn of(doc: &str) -> ShareDigest {
        use std::hash::{DefaultHasher, Hasher};
        let mut hasher = DefaultHasher::new();
        hasher.write(doc.as_bytes());
        ShareDigest(hasher.finish())
    }
}

/// The growth projection's state.
#[derive(Debug, Default)]
pub struct Growth {
    settings: GrowthSettings,
    reps: BTreeMap<RepId, RepFacts>,
    standards: BTreeMap<StandardId, StandardDoc>,
    teams: BTreeMap<TeamId, TeamDoc>,
    competencies: BTreeMap<CompetencyId, CompetencyDoc>,
    leaders: BTreeMap<LeaderId, LeaderDoc<ShareDigest>>,
    /// One copy of each metric's name, shared by the measurements.
    metrics: BTreeSet<MetricName>,
    dirty: Dirty,
}

impl Growth {
    pub fn new(settings: GrowthSettings) -> Self {
        Growth {
            settings,
            ..Growth::default()
        }
    }

    /// A leader whose header (`leader` document) is about to change.
    fn leader(&mut self, leader_id: LeaderId) -> &mut LeaderDoc<ShareDigest> {
        self.dirty.leaders.insert(leader_id);
        self.restored_leader(leader_id)
    }

    /// A leader, not marked dirty (restoring, or only a share changes).
    fn restored_leader(&mut self, leader_id: LeaderId) -> &mut LeaderDoc<ShareDigest> {
        self.leaders.entry(leader_id).or_insert_with(|| LeaderDoc {
            leader_id,
            name: None,
            teams: BTreeSet::new(),
            reps: BTreeMap::new(),
        })
    }

    /// The facts of a rep, for tests and tools.
    pub fn rep(&self, rep_id: RepId) -> Option<&RepFacts> {
        self.reps.get(&rep_id)
    }

    /// The profile and timeline of a rep as they stand now in memory.
    pub fn derive(&self, rep_id: RepId) -> Option<(RepProfile, GrowthTimeline)> {
        let facts = self.reps.get(&rep_id)?;
        let timeline = derive::timeline(facts, &self.standards);
        let profile = derive::profile(
            facts,
            &timeline,
            &self.standards,
            self.settings.quality_gate_periods,
        );
        Some((profile, timeline))
    }

    /// The feedback a rep was given, as it stands now in memory.
    pub fn feedback(&self, rep_id: RepId) -> Option<RepFeedback> {
        self.reps.get(&rep_id).map(derive::feedback)
    }

    /// Re-derives what follows from one rep's facts: the leaders' activity.
    /// The shares that changed go to `changes` (a share that is gone, as a
    /// removal); a leader whose set of reps changed is marked dirty.
    fn refresh_leaders(&mut self, rep_id: RepId, changes: &mut Vec<DocChange>) {
        let activity = self
            .reps
            .get(&rep_id)
            .map(derive::leader_activity)
            .unwrap_or_default();
        let stale: Vec<LeaderId> = self
            .leaders
            .iter()
            .filter(|(id, l)| l.reps.contains_key(&rep_id) && !activity.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.leader(id).reps.remove(&rep_id);
            changes.push(DocChange {
                kind: kinds::LEADER_REP,
                key: leader_share_key(id, rep_id),
                doc: None,
            });
        }
        for (id, activity) in activity {
            let share = LeaderShare {
                leader_id: id,
                rep_id,
                activity,
            };
            let doc = to_doc(&share);
            let digest = ShareDigest::of(&doc);
            let known = self.leaders.get(&id).and_then(|l| l.reps.get(&rep_id));
            if known == Some(&digest) {
                continue;
            }
            let leader = if known.is_some() {
                // Only the share changed: the header stays as it is.
                self.leaders.get_mut(&id).expect("the leader is known")
            } else {
                self.leader(id)
            };
            leader.reps.insert(rep_id, digest);
            changes.push(DocChange {
                kind: kinds::LEADER_REP,
                key: leader_share_key(id, rep_id),
                doc: Some(doc),
            });
        }
    }
}

fn to_doc<T: Serialize>(value: &T) -> String {
    // Document structs hold strings, numbers, dates and string-keyed maps only.
    serde_json::to_string(value).expect("documents always serialize to JSON")
}

fn change<T: Serialize>(kind: &'static str, key: impl ToString, doc: &T) -> DocChange {
    DocChange {
        kind,
        key: key.to_string(),
        doc: Some(to_doc(doc)),
    }
}

fn parse<T: DeserializeOwned>(doc: &str) -> Result<T, String> {
    serde_json::from_str(doc).map_err(|e| e.to_string())
}

impl Projection for Growth {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fingerprint(&self) -> String {
        format!(
            "{NAME}/v{CODE_VERSION} gate={}",
            self.settings.quality_gate_periods
        )
    }

    fn fresh(&self) -> Box<dyn Projection> {
        Box::new(Growth::new(self.settings))
    }

    fn state_kinds(&self) -> &'static [&'static str] {
        &[
            kinds::REP_FACTS,
            kinds::STANDARD,
            kinds::TEAM,
            kinds::COMPETENCY,
            kinds::LEADER,
            kinds::LEADER_REP,
        ]
    }

    fn restore(&mut self, kind: &str, _key: &str, doc: &str) -> Result<(), String> {
        match kind {
            kinds::REP_FACTS => {
                let mut facts: RepFacts = parse(doc)?;
                for measurement in facts.measurements.values_mut() {
                    measurement.metric = intern(&mut self.metrics, &measurement.metric);
                }
                self.reps.insert(facts.rep_id, facts);
            }
            kinds::STANDARD => {
                let standard: StandardDoc = parse(doc)?;
                self.standards.insert(standard.standard_id, standard);
            }
            kinds::TEAM => {
                let team: TeamDoc = parse(doc)?;
                self.teams.insert(team.team_id, team);
            }
            kinds::COMPETENCY => {
                let competency: CompetencyDoc = parse(doc)?;
                self.competencies
                    .insert(competency.competency_id, competency);
            }
            kinds::LEADER => {
                // The shares fill in `reps`, before or after.
                let header: LeaderHeader = parse(doc)?;
                let leader = self.restored_leader(header.leader_id);
                leader.name = header.name;
                leader.teams = header.teams;
            }
            kinds::LEADER_REP => {
                // The digest of the share as this code writes it, which
                // may differ in its bytes from what an older one wrote.
                let share: LeaderShare = parse(doc)?;
                let digest = ShareDigest::of(&to_doc(&share));
                self.restored_leader(share.leader_id)
                    .reps
                    .insert(share.rep_id, digest);
            }
            other => return Err(format!("{other} is not a state kind of {NAME}")),
        }
        Ok(())
    }

    fn apply(&mut self, event: &Envelope) {
        self.fold(event);
    }

    fn pending(&self) -> usize {
        if self.dirty.all_reps {
            self.reps.len()
        } else {
            self.dirty.reps.len()
        }
    }

    fn take_changes(&mut self) -> Vec<DocChange> {
        let (mut changes, _) = self.take_changes_part(usize::MAX);
        changes.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        changes
    }

    /// Derives the documents of up to `limit` dirty reps (in rep order),
    /// with the leaders' shares of each; the catalogue and leader headers
    /// come with the last part, once every rep's activity has been folded
    /// into its leaders.
    fn take_changes_part(&mut self, limit: usize) -> (Vec<DocChange>, bool) {
        let (mut changes, more) = self.take_rep_part(limit);
        if !more {
            changes.extend(self.take_shared());
        }
        (changes, more)
    }

    /// Reps are independent of one another: a rep's facts, profile and
    /// timeline follow from the rep's own stream and the catalogue (teams,
    /// competencies, standards), which every shard folds whole. What a shard
    /// folds into the shared documents — the reps on each team, each
    /// leader's activity per rep — is kept apart per rep, so merging is a
    /// union.
    fn shardable(&self) -> bool {
        true
    }

    fn route(&self, event: &Envelope) -> Route {
        match &event.event {
            Event::Rep(_) => match rep_of(event) {
                Some(rep_id) => {
                    let (high, low) = rep_id.as_uuid().as_u64_pair();
                    Route::Shard(high ^ low)
                }
                None => Route::Skip,
            },
            Event::Team(_) | Event::Competency(_) | Event::Standard(_) | Event::Leader(_) => {
                Route::Every
            }
            Event::Alert(_) => Route::Skip,
        }
    }

    fn take_own_part(&mut self, limit: usize) -> (Vec<DocChange>, bool) {
        self.take_rep_part(limit)
    }

    fn merge(&mut self, shard: Box<dyn Projection>) -> Result<(), String> {
        let shard: Box<dyn Any> = shard;
        let shard = shard
            .downcast::<Growth>()
            .map_err(|_| format!("only a {NAME} shard merges into {NAME}"))?;
        let Growth {
            settings,
            reps,
            standards,
            teams,
            competencies,
            leaders,
            metrics,
            dirty,
        } = *shard;
        if settings != self.settings {
            return Err(format!("a {NAME} shard with other settings"));
        }
        if dirty.all_reps || !dirty.reps.is_empty() {
            return Err(format!("a {NAME} shard merged before its reps were taken"));
        }
        self.reps.extend(reps);
        self.metrics.extend(metrics);
        // The catalogue: every shard folded all of it, the same.
        for (id, standard) in standards {
            self.standards.entry(id).or_insert(standard);
        }
        for (id, competency) in competencies {
            self.competencies.entry(id).or_insert(competency);
        }
        for (id, team) in teams {
            match self.teams.entry(id) {
                Entry::Vacant(slot) => {
                    slot.insert(team);
                }
                Entry::Occupied(mut slot) => {
                    let ours = slot.get_mut();
                    ours.leaders.extend(team.leaders);
                    ours.reps.extend(team.reps);
                }
            }
        }
        for (id, leader) in leaders {
            match self.leaders.entry(id) {
                Entry::Vacant(slot) => {
                    slot.insert(leader);
                }
                Entry::Occupied(mut slot) => {
                    let ours = slot.get_mut();
                    if ours.name.is_none() {
                        ours.name = leader.name;
                    }
                    ours.teams.extend(leader.teams);
                    ours.reps.extend(leader.reps);
                }
            }
        }
        self.dirty.standards.extend(dirty.standards);
        self.dirty.teams.extend(dirty.teams);
        self.dirty.competencies.extend(dirty.competencies);
        self.dirty.leaders.extend(dirty.leaders);
        Ok(())
    }
}

impl Growth {
    /// The documents of up to `limit` dirty reps (in rep order), each rep's
    /// activity folded into its leaders on the way (the shares that changed
    /// among them); whether reps remain.
    fn take_rep_part(&mut self, limit: usize) -> (Vec<DocChange>, bool) {
        if std::mem::take(&mut self.dirty.all_reps) {
            self.dirty.reps.extend(self.reps.keys().copied());
        }
        let mut changes = Vec::new();
        let mut taken = 0usize;
        while taken < limit.max(1) {
            let Some(rep_id) = self.dirty.reps.pop_first() else {
                break;
            };
            taken += 1;
            self.refresh_leaders(rep_id, &mut changes);
            let Some(facts) = self.reps.get(&rep_id) else {
                continue;
            };
            let (profile, timeline) = self.derive(rep_id).expect("the rep exists");
            changes.push(change(kinds::REP_FACTS, rep_id, facts));
            changes.push(change(kinds::REP_PROFILE, rep_id, &profile));
            changes.push(change(
                kinds::REP_FEEDBACK,
                rep_id,
                &derive::feedback(facts),
            ));
            changes.push(change(kinds::RECENT_TIMELINE, rep_id, &timeline.recent()));
            changes.push(change(
                kinds::CURRENT_TIMELINE,
                rep_id,
                &timeline.tail(Tail::CURRENT),
            ));
            changes.push(change(kinds::GROWTH_TIMELINE, rep_id, &timeline));
        }
        let more = !self.dirty.reps.is_empty();
        (changes, more)
    }

    /// The documents of the dirty catalogue entries and leaders.
    fn take_shared(&mut self) -> Vec<DocChange> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes = Vec::new();
        for id in &dirty.standards {
            changes.extend(
                self.standards
                    .get(id)
                    .map(|d| change(kinds::STANDARD, id, d)),
            );
        }
        for id in &dirty.teams {
            changes.extend(self.teams.get(id).map(|d| change(kinds::TEAM, id, d)));
        }
        for id in &dirty.competencies {
            changes.extend(
                self.competencies
                    .get(id)
                    .map(|d| change(kinds::COMPETENCY, id, d)),
            );
        }
        for id in &dirty.leaders {
            match self.leaders.get(id) {
                // A leader no team names whose every record was retracted:
                // nothing is left of them, and a rebuild would not have
                // made them, so their header goes.
                Some(d) if d.name.is_none() && d.teams.is_empty() && d.reps.is_empty() => {
                    self.leaders.remove(id);
                    changes.push(DocChange {
                        kind: kinds::LEADER,
                        key: id.to_string(),
                        doc: None,
                    });
                }
                Some(d) => changes.push(change(kinds::LEADER, id, &d.header())),
                None => {}
            }
        }
        changes
    }
}

/// The rep a rep event is about: the one who joins, else the stream's.
fn rep_of(envelope: &Envelope) -> Option<RepId> {
    match &envelope.event {
        Event::Rep(trellis_domain::rep::RepEvent::Joined(joined)) => Some(joined.rep_id),
        Event::Rep(_) => envelope.stream_uuid().map(RepId::from_uuid),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
