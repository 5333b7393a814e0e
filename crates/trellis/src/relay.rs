//! Starts the notification relay for `trellis serve`.

use trellis_notifications::{Relay, RelayConfig};

use crate::store::{Backend, Stores};

/// The relay publishing the log to `TRELLIS_EVENTS`, as a background task.
/// On PostgreSQL exactly one relay across processes is active (an advisory
/// lock); the others stand by and take over when it stops.
pub fn spawn(
    stores: &Stores,
    client: async_nats::Client,
    replicas: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut config = RelayConfig {
        replicas,
        ..RelayConfig::default()
    };
    if let Backend::Postgres { url, .. } = &stores.backend {
        config = config.with_postgres_lease(url.clone());
    }
    let relay = Relay::new(stores.log.clone(), client, config);
    tokio::spawn(async move {
        if let Err(e) = relay.run(shutdown).await {
            tracing::error!(error = %e, "the relay stopped");
        }
    })
}
