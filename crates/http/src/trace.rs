//! The W3C trace context of a request (<https://www.w3.org/TR/trace-context/>):
//! an incoming `traceparent` (and `tracestate`) header makes the request's
//! span a child of the caller's; without one, or with a malformed one (which
//! is ignored, never refused), the request starts a new trace.
//!
//! Spans become OpenTelemetry spans only when the binary installs the
//! `tracing-opentelemetry` layer (`trellis serve --otlp-endpoint`). Without
//! it there is no span to speak of and the request passes the caller's
//! context through unchanged, so the events it appends still carry the
//! caller's trace.

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use trellis_eventstore::TraceParent;

/// The trace context the events a request appends are recorded with: a
/// request extension, set by the layers every API is mounted under, on every request
/// that is part of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTrace(pub TraceParent);

impl RequestTrace {
    /// The trace context of the request these extensions belong to.
    pub fn of(extensions: &axum::http::Extensions) -> Option<TraceParent> {
        extensions.get::<RequestTrace>().map(|t| t.0.clone())
    }
}

/// Makes the caller's context in `headers`, when there is a valid one, the
/// parent of `span`, and says which context the request's work carries on:
/// `span`'s own when spans are exported, else the caller's unchanged, else
/// none.
pub(crate) fn continue_trace(span: &tracing::Span, headers: &HeaderMap) -> Option<RequestTrace> {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let remote = parent.span().span_context().clone();
    if remote.is_valid() {
        // Fails only when no layer exports spans (or the span is disabled):
        // then the caller's context is passed through below.
        let _ = span.set_parent(parent);
    }
    let own = span.context().span().span_context().clone();
    let carried = if own.is_valid() {
        &own
    } else if remote.is_valid() {
        &remote
    } else {
        return None;
    };
    traceparent(carried).map(RequestTrace)
}

fn traceparent(context: &SpanContext) -> Option<TraceParent> {
    TraceParent::from_parts(
        u128::from_be_bytes(context.trace_id().to_bytes()),
        u64::from_be_bytes(context.span_id().to_bytes()),
        context.trace_flags().to_u8(),
    )
}

/// A request's headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::continue_trace;

    fn headers(traceparent: &str) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_str(traceparent).unwrap());
        headers
    }

    #[test]
    fn without_an_exporting_layer_the_callers_context_passes_through() {
        let span = tracing::info_span!("http.request");
        let carried = continue_trace(
            &span,
            &headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        )
        .expect("a trace");
        assert_eq!(
            carried.0.as_str(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn a_malformed_or_missing_traceparent_is_no_trace_without_an_exporting_layer() {
        let span = tracing::info_span!("http.request");
        for bad in [
            "not a traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert_eq!(continue_trace(&span, &headers(bad)), None, "{bad}");
        }
        assert_eq!(continue_trace(&span, &axum::http::HeaderMap::new()), None);
    }
}
