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
    /// Sign-in: accounts, sessions, links and the identity provider. None:
    /// only bearer tokens open pages.
    access: Option<trellis_access::Access>,
    /// Whether the public URL is https: cookies are then always `Secure`.
    https: bool,
    /// How long a form that recorded waits, at most, for the read models to
    /// show it before the browser is sent to the page. None: it does not.
    shown_within: Option<std::time::Duration>,
    /// The forms recorded lately: one sent again asks first.
    sent: Arc<crate::sent::Sent>,
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
                access: None,
                https: false,
                shown_within: None,
                sent: Arc::default(),
            }),
        }
    }

    /// The same, with forms that record through `writes` (the write API's
    /// router, `trellis_commands::api` under `trellis_http::app`).
    pub fn with_writes(self, writes: axum::Router) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                writes: Some(writes),
                ..self.unwrap()
            }),
        }
    }

    /// The same, signing people in with `access` (sessions, one-time links,
    /// the identity provider); `https`: the public URL is https, so every
    /// cookie is `Secure`.
    pub fn with_access(self, access: trellis_access::Access, https: bool) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                access: Some(access),
                https,
                ..self.unwrap()
            }),
        }
    }

    /// The same, with forms that wait, at most `max`, after recording until
    /// the read models have applied it, so that the page a form leads to
    /// shows what was just recorded (the projector runs behind the log).
    pub fn showing_writes_within(self, max: std::time::Duration) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                shown_within: Some(max),
                ..self.unwrap()
            }),
        }
    }

    /// How long a form waits for the read models to show what it recorded.
    pub(crate) fn shown_within(&self) -> Option<std::time::Duration> {
        self.inner.shown_within
    }

    fn unwrap(self) -> Inner {
        Inner {
            reads: self.inner.reads.clone(),
            writes: self.inner.writes.clone(),
            access: self.inner.access.clone(),
            https: self.inner.https,
            shown_within: self.inner.shown_within,
            sent: self.inner.sent.clone(),
        }
    }

    /// Sign-in, when set up.
    pub(crate) fn access(&self) -> Option<&trellis_access::Access> {
        self.inner.access.as_ref()
    }

    pub(crate) fn https(&self) -> bool {
        self.inner.https
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

    /// The forms recorded lately ([`crate::sent`]).
    pub(crate) fn sent(&self) -> &crate::sent::Sent {
        &self.inner.sent
    }

    pub(crate) fn now_secs(&self) -> i64 {
        self.http().clock().now().timestamp()
    }
}
