//! `trellis log`: the log in global order as JSON lines, optionally following it.

use std::io::Write;
use std::process::ExitCode;

use trellis_eventstore::{Checkpoint, Follower, RecordedEvent};

use crate::store::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Start after this checkpoint (as printed in each line's "checkpoint").
    #[arg(long, default_value = "0.0")]
    after: String,
    /// Keep running and print new events as they are appended.
    #[arg(long)]
    follow: bool,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<u64>,
}

fn to_json(event: &RecordedEvent) -> serde_json::Value {
    serde_json::json!({
        "checkpoint": event.checkpoint.to_string(),
        "global_position": event.global_position,
        "event_id": event.event_id,
        "stream_id": event.stream_id.as_str(),
        "stream_version": event.stream_version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": event.metadata.occurred_at,
        "recorded_at": event.metadata.recorded_at,
        "actor": event.metadata.actor,
        "command_id": event.metadata.command_id,
        "correlation_id": event.metadata.correlation_id,
        "causation_id": event.metadata.causation_id,
        "traceparent": event.metadata.traceparent.as_ref().map(|t| t.as_str()),
        "payload": event.payload,
        "hash": event.hash.to_string(),
    })
}

pub async fn run(store_args: &StoreArgs, args: LogArgs) -> anyhow::Result<ExitCode> {
    let after: Checkpoint = args
        .after
        .parse()
        .map_err(|e| anyhow::anyhow!("--after: {e}"))?;
    let store = store_args.open().await?;
    let mut checkpoint = after;
    let mut follower = args
        .follow
        .then(|| Follower::new(store.clone(), after, 1000));
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    while printed < limit {
        let batch = match &mut follower {
            Some(follower) => follower.next_batch().await?,
            None => store.read_all(checkpoint, 1000).await?,
        };
        let Some(last) = batch.last() else { break };
        checkpoint = last.checkpoint;
        for event in &batch {
            if printed == limit {
                break;
            }
            serde_json::to_writer(&mut out, &to_json(event))?;
            out.write_all(b"\n")?;
            printed += 1;
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
