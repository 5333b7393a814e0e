//! The dashboard's review packet page shows the packet the API serves.
//!
//! The dashboard renders its pages from the read models. A review is held on
//! a packet, and the packet's SHA-256 is recorded with the review, so the
//! page must show exactly the packet `GET /v1/reps/{id}/review-packet`
//! returns: replayed from the log, with its hash. `trellis serve` hands
//! [`ReplayedPackets`] to the dashboard as its [`trellis_dashboard::QueryHooks`];
//! given the read API's [`StreamCache`] ([`ReplayedPackets::with_stream_cache`]),
//! the page and the API replay the same decoded stream.

use std::sync::Arc;

use crate::asof::StreamCache;
use crate::packet::{packet_sha256, render, review_packet};
use chrono::NaiveDate;
use trellis_commands::auth::Claims;
use trellis_domain::RepId;
use trellis_eventstore::EventStore;
use trellis_projections::growth::GrowthSettings;
use uuid::Uuid;

/// [`trellis_dashboard::QueryHooks`] backed by the queries crate's replay.
#[derive(Debug)]
pub struct ReplayedPackets {
    store: Arc<dyn EventStore>,
    settings: GrowthSettings,
    cache: Arc<StreamCache>,
}

impl ReplayedPackets {
    /// Packets replayed from `store`, reading the rep's whole stream each
    /// time (no cache of its own, so no second copy of decoded streams).
    pub fn new(store: Arc<dyn EventStore>, settings: GrowthSettings) -> Self {
        ReplayedPackets {
            store,
            settings,
            cache: Arc::new(StreamCache::new(0)),
        }
    }

    /// Shares `cache` (the read API's, [`crate::QueryState::stream_cache`]):
    /// a packet then reads only what was appended since the stream was last
    /// decoded.
    pub fn with_stream_cache(mut self, cache: Arc<StreamCache>) -> Self {
        self.cache = cache;
        self
    }
}

#[async_trait::async_trait]
impl trellis_dashboard::QueryHooks for ReplayedPackets {
    /// The packet as the API renders it, without its title (the page has
    /// one). `None` when the rep had not joined by `to`: the page then says
    /// so from the read models. The packet leaves out private notes and
    /// private sessions' items itself, for every viewer.
    async fn review_packet(
        &self,
        _viewer: &Claims,
        rep: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<String>, String> {
        let found = review_packet(
            &*self.store,
            &self.cache,
            RepId::from_uuid(rep),
            from,
            to,
            self.settings,
        )
        .await
        .map_err(|e| e.to_string())?;
        let Some((_, Some(packet))) = found else {
            return Ok(None);
        };
        let sha256 = packet_sha256(&packet);
        let document = render::document(&packet, &sha256);
        let body = match document.split_first() {
            Some((render::Block::Heading(1, _), rest)) => rest,
            _ => &document[..],
        };
        Ok(Some(render::html_body(body)))
    }
}
