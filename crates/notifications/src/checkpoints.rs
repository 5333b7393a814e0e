//! Signed checkpoints of the log kept outside its database: a JetStream
//! stream that refuses delete and purge, one message per checkpoint (the
//! signed note as text), deduplicated by size and signer.

use std::time::Duration;

use async_nats::jetstream;
use trellis_eventstore::note::SignedCheckpoint;

use crate::RelayError;

/// The JetStream stream checkpoints are kept in, unless configured.
pub const DEFAULT_STREAM: &str = "TRELLIS_CHECKPOINTS";

fn broker(doing: &str, e: impl std::fmt::Display) -> RelayError {
    RelayError::Broker(format!("cannot {doing}: {e}"))
}

/// The stream and subject checkpoints are published under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    pub stream: String,
    pub subject: String,
}

impl StreamNames {
    pub fn new(stream: &str) -> Self {
        StreamNames {
            stream: stream.to_owned(),
            subject: format!("{}.signed", stream.to_ascii_lowercase()),
        }
    }
}

/// Creates the checkpoint stream: kept on file, never deleted or purged.
pub async fn ensure_stream(
    js: &jetstream::Context,
    names: &StreamNames,
    replicas: usize,
) -> Result<jetstream::stream::Stream, RelayError> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: names.stream.clone(),
        subjects: vec![names.subject.clone()],
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| broker(&format!("create the JetStream stream {}", names.stream), e))
}

/// Publishes one checkpoint, waiting for JetStream to store it. Republishing
/// the same checkpoint within the duplicate window stores it once.
pub async fn publish(
    js: &jetstream::Context,
    names: &StreamNames,
    checkpoint: &SignedCheckpoint,
) -> Result<(), RelayError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!(
            "{}-{}",
            checkpoint.head.size,
            checkpoint.signers().join(",")
        )
        .as_str(),
    );
    js.publish_with_headers(
        names.subject.clone(),
        headers,
        checkpoint.text().to_owned().into(),
    )
    .await
    .map_err(|e| broker("publish a checkpoint", e))?
    .await
    .map_err(|e| broker("have JetStream store a checkpoint", e))?;
    Ok(())
}

/// Every checkpoint kept in the stream, oldest first.
pub async fn read_stream(
    js: &jetstream::Context,
    names: &StreamNames,
) -> Result<Vec<SignedCheckpoint>, RelayError> {
    use futures_util::StreamExt;
    let reading = format!("read the checkpoint stream {}", names.stream);
    let stream = js
        .get_stream(&names.stream)
        .await
        .map_err(|e| broker(&reading, e))?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| broker(&reading, e))?;
    let mut info = stream.clone();
    let total = info
        .info()
        .await
        .map_err(|e| broker(&reading, e))?
        .state
        .messages;
    let mut out = Vec::new();
    let mut messages = consumer.messages().await.map_err(|e| broker(&reading, e))?;
    while (out.len() as u64) < total {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message.map_err(|e| broker(&reading, e))?;
        let text = std::str::from_utf8(&message.payload)
            .map_err(|e| broker(&reading, format!("a kept checkpoint is not text: {e}")))?;
        out.push(
            SignedCheckpoint::parse(text)
                .map_err(|e| broker(&reading, format!("a kept checkpoint is malformed: {e}")))?,
        );
    }
    Ok(out)
}
