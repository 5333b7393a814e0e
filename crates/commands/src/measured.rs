//! What the standards measure: each metric and the kinds of period it is
//! measured in, the fact a measurement is decided with
//! (`RepCommand::MeasurePerformance::standard_periods`).
//!
//! Read from the standards' streams, not from a read model, so a standard
//! set a moment ago is known at once. A standard's metric and period kind
//! never change and a standard is never deleted, so what was read stays
//! true: the catalogue is kept, and read again only when it lacks what a
//! measurement asks for (a new standard, or a mistake).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use trellis_domain::{Event, MetricName, PeriodKind, StandardEvent};
use trellis_eventstore::EventStore;
use trellis_http::problem::ApiError;

use crate::scan::each_event_of;

/// Each metric a standard measures, with the kinds of period it is measured in.
pub type Catalogue = BTreeMap<MetricName, BTreeSet<PeriodKind>>;

/// The catalogue as last read.
#[derive(Debug, Default)]
pub struct Measured {
    known: RwLock<Arc<Catalogue>>,
}

impl Measured {
    /// A catalogue that holds every `(metric, kind)` of `needs` that the
    /// standards measure: the one kept, when it holds them all; else read
    /// again from the log (and kept).
    pub async fn covering<'a>(
        &self,
        store: &dyn EventStore,
        needs: impl IntoIterator<Item = (&'a MetricName, PeriodKind)>,
    ) -> Result<Arc<Catalogue>, ApiError> {
        let known = self.known.read().expect("the catalogue").clone();
        let covered = needs
            .into_iter()
            .all(|(metric, kind)| known.get(metric).is_some_and(|kinds| kinds.contains(&kind)));
        if covered {
            return Ok(known);
        }
        let read = Arc::new(read(store).await?);
        *self.known.write().expect("the catalogue") = read.clone();
        Ok(read)
    }
}

/// The kinds of period in which the standards of `catalogue` measure `metric`.
pub fn periods_of(catalogue: &Catalogue, metric: &MetricName) -> Vec<PeriodKind> {
    catalogue
        .get(metric)
        .map(|kinds| kinds.iter().copied().collect())
        .unwrap_or_default()
}

/// Every standard's metric and period kind, from their streams.
async fn read(store: &dyn EventStore) -> Result<Catalogue, ApiError> {
    let mut catalogue = Catalogue::new();
    each_event_of(store, StandardEvent::CATEGORY, |_, event| {
        if let Event::Standard(StandardEvent::Set(set)) = event {
            catalogue.entry(set.metric).or_default().insert(set.period);
        }
    })
    .await?;
    Ok(catalogue)
}
