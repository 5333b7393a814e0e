//! Traces of `trellis serve` as a collector sees them: with
//! `--otlp-endpoint`, a request's span is exported over OTLP/HTTP as a child
//! of the caller's W3C `traceparent` (a new trace when the header is
//! malformed), the spans still queued reach the collector when the process
//! stops on SIGTERM, and the events the request appends carry the request
//! span's context; without the flag nothing is exported and the events carry
//! the caller's context unchanged.
//!
//! The collector is a fake inside the test: an axum route that decodes each
//! `ExportTraceServiceRequest` and keeps the spans.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;
use trellis_tests::{Backend, Kind};

use common::{Serving, printed, request, trellis_on};

/// The caller's trace and span (the W3C specification's example ids).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

fn callers_traceparent() -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
}

/// One span as the collector received it, ids in lowercase hex.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    service_name: Option<String>,
}

/// A fake OTLP/HTTP collector: what it was sent, and how many export
/// requests came.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Exported>>>,
    requests: Arc<Mutex<usize>>,
}

impl Collector {
    /// Serves `POST /v1/traces` on a spare loopback port; its base URL.
    async fn start(&self) -> String {
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(collect))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the collector");
        let address = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("the collector");
        });
        format!("http://{address}")
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().expect("spans").clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("requests")
    }
}

async fn collect(State(collector): State<Collector>, body: Bytes) -> impl IntoResponse {
    *collector.requests.lock().expect("requests") += 1;
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let mut kept = collector.spans.lock().expect("spans");
    for resource_spans in export.resource_spans {
        let service_name = resource_spans.resource.as_ref().and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
        });
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                kept.push(Exported {
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// `serve` on the embedded store of `backend`, with `extra` arguments.
fn serve(backend: &Backend, dir: &std::path::Path, extra: &[&str]) -> (Serving, String) {
    let mut command = trellis_on(backend, dir);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra);
    common::serve(&mut command)
}

/// Forms a team as an admin, sending `traceparent` (and a `tracestate`):
/// the team's id.
fn form_team(backend: &Backend, dir: &std::path::Path, address: &str, traceparent: &str) -> String {
    let admin = printed(trellis_on(backend, dir).args(["token", "--role", "admin"]));
    let bearer = format!("Bearer {admin}");
    let (status, body) = request(
        address,
        "POST",
        "/v1/teams",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("traceparent", traceparent),
            ("tracestate", "vendor=opaque"),
        ],
        r#"{"name":"Traced"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    created["id"].as_str().expect("the team's id").to_owned()
}

/// Stops `serving` with SIGTERM and waits for a clean exit.
fn terminate(serving: &mut Serving) {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &serving.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = serving
        .exited(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("serve did not stop on SIGTERM:\n{}", serving.log()));
    assert!(status.success(), "{status:?}:\n{}", serving.log());
}

/// The `traceparent` the log holds for the event of `stream_id`, as
/// `trellis log` prints it.
fn logged_traceparent(backend: &Backend, dir: &std::path::Path, stream_id: &str) -> Option<String> {
    let log = printed(trellis_on(backend, dir).arg("log"));
    let event = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .find(|event| event["stream_id"] == stream_id)
        .unwrap_or_else(|| panic!("no event of {stream_id} in the log:\n{log}"));
    event["traceparent"].as_str().map(str::to_owned)
}

/// The request spans (`http.request`) the collector received.
fn request_spans(collector: &Collector) -> Vec<Exported> {
    collector
        .spans()
        .into_iter()
        .filter(|span| span.name == "http.request")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_span_is_exported_as_the_callers_child_on_sigterm_and_its_event_continues_it() {
    let backend = Backend::new(Kind::Sqlite).await;
    let dir = trellis_tests::temp_dir();
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let (mut serving, address) = serve(&backend, &dir, &["--otlp-endpoint", &endpoint]);

    let team = form_team(&backend, &dir, &address, &callers_traceparent());
    // The batch exporter has not necessarily sent anything yet: stopping
    // must flush it.
    terminate(&mut serving);

    let spans = request_spans(&collector);
    let ours: Vec<&Exported> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    assert_eq!(
        ours.len(),
        1,
        "one request span in the caller's trace: {spans:#?}"
    );
    let span = ours[0];
    assert_eq!(span.parent_span_id, CALLER_SPAN_ID, "{span:?}");
    assert_eq!(span.service_name.as_deref(), Some("trellis"), "{span:?}");
    assert_ne!(
        span.span_id, CALLER_SPAN_ID,
        "the request has a span of its own"
    );

    // The event carries the request span's context: the caller's trace,
    // with the request span as the parent of whatever reads the event.
    assert_eq!(
        logged_traceparent(&backend, &dir, &format!("team-{team}")),
        Some(format!("00-{TRACE_ID}-{}-01", span.span_id))
    );
    let _ = std::fs::remove_dir_all(&dir);
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_is_ignored_and_the_request_starts_a_new_trace() {
    let backend = Backend::new(Kind::Sqlite).await;
    let dir = trellis_tests::temp_dir();
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let (mut serving, address) = serve(&backend, &dir, &["--otlp-endpoint", &endpoint]);

    // Uppercase hex is not W3C trace context.
    let malformed = callers_traceparent().to_uppercase();
    let team = form_team(&backend, &dir, &address, &malformed);
    terminate(&mut serving);

    let logged = logged_traceparent(&backend, &dir, &format!("team-{team}"))
        .expect("the request's own trace is recorded");
    let (trace_id, span_id) = (&logged[3..35], &logged[36..52]);
    assert_ne!(trace_id, TRACE_ID);
    let spans = request_spans(&collector);
    let span = spans
        .iter()
        .find(|s| s.span_id == span_id)
        .unwrap_or_else(|| panic!("the request span {span_id} was exported: {spans:#?}"));
    assert_eq!(span.trace_id, trace_id, "{span:?}");
    assert_eq!(
        span.parent_span_id, "",
        "a new trace has no parent: {span:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_otlp_endpoint_nothing_is_exported_and_the_event_keeps_the_callers_context() {
    let backend = Backend::new(Kind::Sqlite).await;
    let dir = trellis_tests::temp_dir();
    let collector = Collector::default();
    let endpoint = collector.start().await;
    // The OpenTelemetry variables do not turn exporting on: only the flag does.
    let mut command = trellis_on(&backend, &dir);
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let (mut serving, address) = common::serve(&mut command);

    let team = form_team(&backend, &dir, &address, &callers_traceparent());
    terminate(&mut serving);

    assert_eq!(collector.requests(), 0, "{:#?}", collector.spans());
    assert_eq!(
        logged_traceparent(&backend, &dir, &format!("team-{team}")),
        Some(callers_traceparent()),
        "passed through unchanged"
    );
    let _ = std::fs::remove_dir_all(&dir);
    backend.cleanup().await;
}
