//! Traces over OTLP (`serve --otlp-endpoint`): every `tracing` span of the
//! process (a request's `http.request`, the store's `event_store.*`, the
//! workers') exported as an OpenTelemetry span over OTLP/HTTP with protobuf,
//! in batches from the SDK's own thread, with `service.name` `trellis`.
//!
//! Without the flag nothing is built: no layer, no exporter, no thread; a
//! request still passes its caller's W3C trace context on to the events it
//! appends (`trellis_http::trace`).

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Where spans go.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g.
    /// `http://otel-collector:4318` (spans go to `<URL>/v1/traces`; a URL
    /// that already ends in `/v1/traces` is used as it is). Without it no
    /// span is exported.
    #[arg(long, env = "TRELLIS_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<url::Url>,
}

/// How long stopping waits for the last spans to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporting pipeline while the process runs; [`Traces::shutdown`]
/// sends what is still queued.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter and the batch processor for `endpoint` (see
    /// [`TelemetryArgs::otlp_endpoint`]).
    pub fn start(endpoint: &url::Url) -> anyhow::Result<Traces> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url(endpoint))
            .build()
            .context("failed to build the OTLP span exporter")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("trellis").build())
            .build();
        Ok(Traces { provider })
    }

    /// The layer that turns the subscriber's spans into exported spans.
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("trellis"))
    }

    /// Exports the spans still queued and stops the exporter's thread: called
    /// once the process has stopped serving (after SIGTERM too), so the last
    /// requests' spans are not lost.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            eprintln!("warning: the last spans may not have reached the OTLP collector: {e}");
        }
    }
}

/// The OTLP/HTTP traces URL of a collector given by its base URL, as the
/// OpenTelemetry specification builds it from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(endpoint: &url::Url) -> String {
    let text = endpoint.as_str();
    if endpoint.path().ends_with("/v1/traces") {
        text.to_owned()
    } else {
        format!("{}/v1/traces", text.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_added_to_a_base_url_once() {
        for (given, expected) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/base/",
                "https://otel.example/base/v1/traces",
            ),
            (
                "http://collector:4318/v1/traces",
                "http://collector:4318/v1/traces",
            ),
        ] {
            assert_eq!(traces_url(&given.parse().unwrap()), expected, "{given}");
        }
    }
}
