//! What a write handler needs.

use std::sync::Arc;

use axum::extract::FromRef;
use trellis_eventstore::EventStore;
use trellis_eventstore::vault::{ForgetsPeople, KeyStore};
use trellis_http::HttpState;

use crate::cache::StateCache;
use crate::measured::Measured;
use crate::metrics::WriteMetrics;

/// Settings of the command service.
#[derive(Debug, Clone)]
pub struct CommandsConfig {
    /// The most rows one measurement import may carry.
    pub max_import_rows: usize,
    /// How people are erased: `POST /v1/people/{id}/erasure` destroys their
    /// key in `keys` (the log's vault must read through the same keys) and
    /// has every holder forget them. `None`: that route answers 503.
    pub erasure: Option<Erasure>,
    /// The most events the aggregate states kept between commands may
    /// have been folded from, in all ([`StateCache`]): what bounds that
    /// cache's memory. A command on a stream whose state is not kept reads
    /// the stream's whole history first.
    pub state_cache_events: u64,
}

/// The default of [`CommandsConfig::state_cache_events`]: every rep's state
/// of an organisation of 5,000 reps with two years of history (about
/// 3,000,000 events), with room to grow. About 130 bytes of resident
/// memory per event (`trellis-bench org`: 320–450 MB for those 5,000 reps),
/// so some 520 MB when full.
pub const STATE_CACHE_EVENTS: u64 = 4_000_000;

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            max_import_rows: 50_000,
            erasure: None,
            state_cache_events: STATE_CACHE_EVENTS,
        }
    }
}

/// Everything a write handler needs: what every API shares, and the write
/// side's own settings, metrics and folded states. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandState {
    http: HttpState,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CommandsConfig,
    metrics: WriteMetrics,
    state_cache: StateCache,
    measured: Measured,
}

/// What erasing a person destroys: their data key, and what other
/// components hold about them in the clear; and who the leaders are.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub keys: Arc<dyn KeyStore>,
    pub holders: Vec<Arc<dyn ForgetsPeople>>,
    /// Tells a leader's id from a made-up one (a rep's stream says whether
    /// they are a rep). `None`: only reps can be erased.
    pub leaders: Option<Arc<dyn Leaders>>,
}

/// Who the leaders are. A leader has no stream of their own until they are
/// erased: only the teams' `LeaderAssigned` name them, so the read models
/// answer (a leader assigned a moment ago may not be known yet).
#[async_trait::async_trait]
pub trait Leaders: Send + Sync + std::fmt::Debug {
    /// The names teams have given `person` as their leader: none when no
    /// team has had them as a leader.
    async fn leader_names(&self, person: uuid::Uuid) -> Result<Vec<String>, String>;
}

/// The most aggregate states kept between commands (their events, not
/// their count, bound the memory: a state grows with its history).
const STATE_CACHE_STATES: usize = 50_000;

impl CommandState {
    /// The write side over `http`; its metrics join `http`'s `/metrics`.
    pub fn new(http: HttpState, config: CommandsConfig) -> Self {
        let metrics = WriteMetrics::new(http.metrics());
        let state_cache_events = config.state_cache_events;
        CommandState {
            http,
            inner: Arc::new(Inner {
                config,
                metrics,
                state_cache: StateCache::new(STATE_CACHE_STATES, state_cache_events),
                measured: Measured::default(),
            }),
        }
    }

    /// How people are erased, when this service may.
    pub fn erasure(&self) -> Option<&Erasure> {
        self.inner.config.erasure.as_ref()
    }

    pub fn http(&self) -> &HttpState {
        &self.http
    }

    pub fn store(&self) -> &dyn EventStore {
        self.http.store()
    }

    pub fn config(&self) -> &CommandsConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &WriteMetrics {
        &self.inner.metrics
    }

    /// Aggregate states folded by this process, to spare re-reading streams.
    pub fn state_cache(&self) -> &StateCache {
        &self.inner.state_cache
    }

    /// What the standards measure, as this process last read it.
    pub fn measured(&self) -> &Measured {
        &self.inner.measured
    }
}

impl FromRef<CommandState> for HttpState {
    fn from_ref(state: &CommandState) -> HttpState {
        state.http.clone()
    }
}
