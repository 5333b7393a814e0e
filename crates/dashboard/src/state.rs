//! What a page needs.

use std::sync::Arc;

use chrono::NaiveDate;
use trellis_http::HttpState;
use trellis_projections::query::ReadModels;
use trellis_queries::QueryState;

/// Everything a page needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DashboardState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    reads: QueryState,
    /// The write API, for the forms: every write a page makes goes through
    /// the same command handling as `/v1`. None: the pages only show.
    writes: Option<axum::Router>,
}

impl DashboardState {
    /// Pages over the read side `reads`: its read models, and its log,
    /// stream cache and settings for every question the read API answers
    /// too; its token key and clock.
    pub fn new(reads: QueryState) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                reads,
                writes: None,
            }),
        }
    }

    /// The same, with forms that record through `writes` (the write API's
    /// router, `trellis_commands::api` under `trellis_http::app`).
    pub fn with_writes(self, writes: axum::Router) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                reads: self.inner.reads.clone(),
                writes: Some(writes),
            }),
        }
    }

    /// The write API, when the pages may record.
    pub(crate) fn writes(&self) -> Option<&axum::Router> {
        self.inner.writes.as_ref()
    }

    /// The read side: its functions answer the pages' questions.
    pub(crate) fn reads(&self) -> &QueryState {
        &self.inner.reads
    }

    pub(crate) fn http(&self) -> &HttpState {
        &self.inner.reads.http
    }

    /// The read models.
    pub(crate) fn models(&self) -> &ReadModels {
        &self.inner.reads.read
    }

    /// Today, from the service's clock.
    pub(crate) fn today(&self) -> NaiveDate {
        self.http().clock().now().date_naive()
    }

    pub(crate) fn now_secs(&self) -> i64 {
        self.http().clock().now().timestamp()
    }
}
