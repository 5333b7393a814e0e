//! What the standards measure: each metric and the kinds of period it is
//! measured in, the fact a measurement is decided with
//! (`RepCommand::MeasurePerformance::standard_periods`).
//!
//! Read from the standards' streams, not from a read model, so a standard
//! set a moment ago is known at once. A standard's metric and period kind
//! never change and a standard is never deleted, so what was read of them
//! stays true; a target may be raised since. The catalogue is kept, and
//! read again when it lacks what a measurement asks for or would refuse
//! its value (a new standard, a raised target, or a mistake).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use trellis_domain::{Event, MetricName, PeriodKind, StandardEvent};
use trellis_eventstore::EventStore;
use trellis_http::problem::ApiError;

use crate::scan::each_event_of;

/// Each metric a standard measures, with what its standards say of it.
pub type Catalogue = BTreeMap<MetricName, Measures>;

/// What the standards of one metric say of its measurements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measures {
    /// The kinds of period it is measured in.
    pub kinds: BTreeSet<PeriodKind>,
    /// The largest target any of them has had, revisions included.
    pub largest_target: f64,
}

/// The catalogue as last read.
#[derive(Debug, Default)]
pub struct Measured {
    known: RwLock<Arc<Catalogue>>,
}

impl Measured {
    /// A catalogue that holds every `(metric, kind, value)` of `needs` as
    /// the standards now say: the one kept, when it measures each metric in
    /// that kind of period and the value is plausible against its largest
    /// target; else read again from the log (and kept), since a standard
    /// set, or a target raised, since it was read would say otherwise.
    pub async fn covering<'a>(
        &self,
        store: &dyn EventStore,
        needs: impl IntoIterator<Item = (&'a MetricName, PeriodKind, f64)>,
    ) -> Result<Arc<Catalogue>, ApiError> {
        let known = self.known.read().expect("the catalogue").clone();
        let covered = needs.into_iter().all(|(metric, kind, value)| {
            known.get(metric).is_some_and(|measures| {
                measures.kinds.contains(&kind)
                    && trellis_domain::values::plausible(value, measures.largest_target)
            })
        });
        if covered {
            return Ok(known);
        }
        let read = Arc::new(read(store).await?);
        *self.known.write().expect("the catalogue") = read.clone();
        Ok(read)
    }
}

/// What the standards of `catalogue` say of `metric`, as a measurement of
/// it is decided with: the kinds of period it is measured in (none when no
/// standard measures it) and the largest target it has had.
pub fn measures_of(catalogue: &Catalogue, metric: &MetricName) -> (Vec<PeriodKind>, f64) {
    catalogue.get(metric).map_or((Vec::new(), 0.0), |m| {
        (m.kinds.iter().copied().collect(), m.largest_target)
    })
}

/// Every standard's metric, period kind and targets, from their streams.
async fn read(store: &dyn EventStore) -> Result<Catalogue, ApiError> {
    let mut catalogue = Catalogue::new();
    // A revision names its standard, not the metric: the standard's stream
    // says which metric it is about.
    let mut metric_of: std::collections::HashMap<String, MetricName> = Default::default();
    each_event_of(
        store,
        StandardEvent::CATEGORY,
        |stream, event| match event {
            Event::Standard(StandardEvent::Set(set)) => {
                let measures = catalogue.entry(set.metric.clone()).or_default();
                measures.kinds.insert(set.period);
                measures.largest_target = measures.largest_target.max(set.target.get());
                metric_of.insert(stream.to_string(), set.metric);
            }
            Event::Standard(StandardEvent::Revised(revised)) => {
                if let Some(measures) = metric_of
                    .get(stream.as_str())
                    .and_then(|metric| catalogue.get_mut(metric))
                {
                    measures.largest_target = measures.largest_target.max(revised.target.get());
                }
            }
            _ => {}
        },
    )
    .await?;
    Ok(catalogue)
}
