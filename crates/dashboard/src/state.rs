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
}

impl DashboardState {
    /// Pages over the read side `reads`: its read models, and its log,
    /// stream cache and settings for every question the read API answers
    /// too; its token key and clock.
    pub fn new(reads: QueryState) -> Self {
        DashboardState {
            inner: Arc::new(Inner { reads }),
        }
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
