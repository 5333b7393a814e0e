//! The evaluator: runs the rules over every rep's read models and records each
//! new occurrence in the log.
//!
//! Recording is the guarantee: an occurrence's stream is
//! `alert-<uuid v5 of its key>` and the evaluator appends its `AlertRaised`
//! expecting version 0 (with the alert id as the command id). A conflict
//! means the occurrence was raised already (by this process before a
//! restart, or by another process), so nothing is ever raised twice, and
//! every alert is in the log with its hash chain, auditable like any fact.
//!
//! The evaluator learns which reps exist, and which alerts were raised, by
//! reading the log from the start once and then following it; the rules read
//! the `growth` read models (profiles, timelines, teams). It runs on a
//! schedule ([`EvaluatorConfig::interval`], a minute by default) because the
//! time-based rules change with the date alone, and is also woken by appends
//! (after [`EvaluatorConfig::settle`], to let the projection catch up).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use trellis_domain::alert::AlertRaised;
use trellis_domain::{
    Aggregate, AlertAggregate, AlertEvent, AlertId, AlertState, Event, LeaderId, RepId, TeamId,
};
use trellis_eventstore::{
    Checkpoint, CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use trellis_projections::query::ReadModels;

use crate::Error;
use crate::rules::{self, Occurrence, Thresholds};

/// What "today" is. The default reads the clock (UTC).
#[derive(Clone)]
pub struct Today(Arc<dyn Fn() -> NaiveDate + Send + Sync>);

impl Today {
    /// The UTC date of the system clock.
    pub fn system() -> Self {
        Today(Arc::new(|| Utc::now().date_naive()))
    }

    /// Any source of dates (tests pin one).
    pub fn from_fn(f: impl Fn() -> NaiveDate + Send + Sync + 'static) -> Self {
        Today(Arc::new(f))
    }

    pub fn get(&self) -> NaiveDate {
        (self.0)()
    }
}

impl fmt::Debug for Today {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Today").field(&self.get()).finish()
    }
}

/// How the evaluator runs.
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    pub thresholds: Thresholds,
    /// How often the rules run without any append (default a minute).
    pub interval: Duration,
    /// After an append wakes the evaluator, how long it waits before
    /// evaluating, so the read models have caught up (default 1 s).
    pub settle: Duration,
    /// The actor recorded on every `AlertRaised` (default `system:alerts`).
    pub actor: String,
    /// Events read per page when following the log.
    pub batch: usize,
    pub today: Today,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        EvaluatorConfig {
            thresholds: Thresholds::default(),
            interval: Duration::from_secs(60),
            settle: Duration::from_secs(1),
            actor: "system:alerts".into(),
            batch: 1000,
            today: Today::system(),
        }
    }
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// The alerts this evaluation recorded, in the order it recorded them.
    pub raised: Vec<AlertRaised>,
    /// Occurrences found that were raised before (known, or a conflict on append).
    pub already_raised: usize,
    /// Reps evaluated.
    pub reps: usize,
}

/// Runs the rules and records new occurrences. Keeps what it learnt from the
/// log between evaluations.
#[derive(Debug)]
pub struct Evaluator {
    store: Arc<dyn EventStore>,
    read: ReadModels,
    config: EvaluatorConfig,
    checkpoint: Checkpoint,
    reps: BTreeSet<RepId>,
    raised: BTreeSet<AlertId>,
}

impl Evaluator {
    pub fn new(store: Arc<dyn EventStore>, read: ReadModels, config: EvaluatorConfig) -> Self {
        Evaluator {
            store,
            read,
            config,
            checkpoint: Checkpoint::START,
            reps: BTreeSet::new(),
            raised: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &EvaluatorConfig {
        &self.config
    }

    /// Reads what is new in the log: reps (streams of category `rep`) and
    /// raised alerts (streams of category `alert`). Only stream ids matter
    /// here, so payloads are left unparsed (the first evaluation after a
    /// start reads the whole log).
    async fn follow_log(&mut self) -> Result<(), Error> {
        loop {
            let batch = self
                .store
                .read_all_json(self.checkpoint, self.config.batch.max(1))
                .await?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            self.checkpoint = last.checkpoint;
            for event in &batch {
                let Some(uuid) = event.stream_id.entity_uuid() else {
                    continue;
                };
                match event.stream_id.category() {
                    "rep" => {
                        self.reps.insert(RepId::from_uuid(uuid));
                    }
                    "alert" => {
                        self.raised.insert(AlertId::from_uuid(uuid));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every occurrence that holds on `today`, whether raised or not, by rep.
    pub async fn occurrences(&mut self, today: NaiveDate) -> Result<Vec<Occurrence>, Error> {
        self.follow_log().await?;
        let mut leaders: BTreeMap<TeamId, Vec<LeaderId>> = BTreeMap::new();
        let mut out = Vec::new();
        for &rep_id in &self.reps {
            let (Some(profile), Some(timeline)) = (
                self.read.stored_profile(rep_id).await?,
                self.read.stored_timeline(rep_id).await?,
            ) else {
                // Not projected yet: the next evaluation will see it.
                continue;
            };
            let team_leaders = match leaders.get(&profile.team_id) {
                Some(l) => l.clone(),
                None => {
                    let l: Vec<LeaderId> = self
                        .read
                        .team(profile.team_id)
                        .await?
                        .map(|t| t.leaders.keys().copied().collect())
                        .unwrap_or_default();
                    leaders.insert(profile.team_id, l.clone());
                    l
                }
            };
            out.extend(rules::evaluate(
                &profile,
                &timeline,
                &team_leaders,
                today,
                &self.config.thresholds,
            ));
        }
        Ok(out)
    }

    /// Runs the rules for `today` and records each occurrence not raised before.
    #[tracing::instrument(name = "alerts.evaluate", skip(self), err)]
    pub async fn evaluate(&mut self, today: NaiveDate) -> Result<Evaluation, Error> {
        let occurrences = self.occurrences(today).await?;
        let mut evaluation = Evaluation {
            reps: self.reps.len(),
            ..Evaluation::default()
        };
        for occurrence in occurrences {
            let alert_id = occurrence.alert_id();
            if self.raised.contains(&alert_id) {
                evaluation.already_raised += 1;
                continue;
            }
            match self.record(&occurrence, today).await? {
                Some(alert) => {
                    tracing::info!(
                        alert = %alert_id,
                        kind = %alert.kind(),
                        team = %alert.team_id,
                        "alert raised"
                    );
                    evaluation.raised.push(alert);
                }
                None => evaluation.already_raised += 1,
            }
            self.raised.insert(alert_id);
        }
        Ok(evaluation)
    }

    /// Appends the occurrence's `AlertRaised` on its own stream, expecting it
    /// empty. `None` when it was raised already.
    async fn record(
        &self,
        occurrence: &Occurrence,
        today: NaiveDate,
    ) -> Result<Option<AlertRaised>, Error> {
        let alert_id = occurrence.alert_id();
        let events = AlertAggregate::decide(&AlertState::NotRaised, occurrence.command(today))
            .map_err(|rejection| Error::Rejected(rejection.to_string()))?;
        let Some(AlertEvent::Raised(alert)) = events.into_iter().next() else {
            return Ok(None);
        };
        let event: Event = alert.clone().into();
        let stream = StreamId::new(alert_id.stream_id())?;
        let new = NewEvent::new(
            event.event_type(),
            event.schema_version(),
            event.to_payload(),
            today
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or_else(Utc::now),
        );
        let mut meta = CommandMeta::new(self.config.actor.clone(), Utc::now());
        // The alert id as the command id: a retried append (answer lost)
        // replays instead of conflicting with itself.
        meta.command_id = alert_id.as_uuid();
        meta.correlation_id = alert_id.as_uuid();
        match self
            .store
            .append(&stream, ExpectedVersion::Exact(0), &meta, &[new])
            .await
        {
            Ok(outcome) if outcome.replayed => Ok(None),
            Ok(_) => Ok(Some(alert)),
            Err(trellis_eventstore::Error::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs the evaluator until `shutdown` completes: every
/// [`EvaluatorConfig::interval`], and soon after anything is appended.
/// Failures (store or read models unavailable) are logged and retried at the
/// next tick; nothing is lost, since the rules are evaluated from the state
/// of the read models, not from what happened since the last run.
pub async fn run_evaluator(
    store: Arc<dyn EventStore>,
    read: ReadModels,
    config: EvaluatorConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut appended = store.appended();
    let mut evaluator = Evaluator::new(store, read, config);
    tokio::pin!(shutdown);
    loop {
        appended.borrow_and_update();
        let today = evaluator.config.today.get();
        match evaluator.evaluate(today).await {
            Ok(e) if !e.raised.is_empty() => {
                tracing::debug!(raised = e.raised.len(), reps = e.reps, "alerts evaluated");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "alert evaluation failed; retrying at the next tick")
            }
        }
        let interval = evaluator.config.interval;
        let settle = evaluator.config.settle;
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
            changed = appended.changed() => {
                if changed.is_err() {
                    // The store's signal is gone: the schedule alone drives us.
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(interval) => {}
                    }
                } else {
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(settle) => {}
                    }
                }
            }
        }
    }
}
