//! Seeds the demo into a fresh embedded store and serves the dashboard (and
//! the API) on 127.0.0.1:PORT (default 8480), printing a sign-in link per
//! role. For looking at the pages during development; `trellis demo` is the
//! real thing.
//!
//!     cargo run -p trellis-dashboard --example demo [PORT]

use std::sync::Arc;

use trellis_commands::auth::TokenKey;
use trellis_commands::{AppState, CommandsConfig, SystemClock};
use trellis_dashboard::{DashboardState, demo, routes};
use trellis_eventstore::sqlite::SqliteStore;
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::store::sqlite::SqliteReadStore;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8480);
    let dir = std::env::temp_dir().join(format!("trellis-demo-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a data dir");
    let store = Arc::new(SqliteStore::open(&dir).await.expect("the embedded store"));
    let key = TokenKey::new(b"trellis-dashboard-demo-example-secret".to_vec()).expect("a key");
    let app = AppState::new(
        store.clone(),
        key,
        Arc::new(SystemClock),
        CommandsConfig::default(),
    );
    let today = chrono::Utc::now().date_naive();
    let org = demo::seed(&app, 42, today).await.expect("the demo seeds");
    let read = Arc::new(
        SqliteReadStore::open(dir.join(trellis_eventstore::sqlite::FILE_NAME))
            .await
            .expect("the read store"),
    );
    Engine::new(store, read.clone())
        .catch_up(&Growth::new(GrowthSettings::default()))
        .await
        .expect("catch up");
    let router = trellis_commands::router_with(app.clone(), routes(DashboardState::new(app, read)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    #[allow(clippy::print_stdout)]
    {
        println!("Trellis demo ({} requests) at {base}", org.requests);
        for (who, link) in org.sign_in_links(&base) {
            println!("  {who}: {link}");
        }
        for rep in &org.reps {
            println!("  rep {} ({}): {base}/reps/{}", rep.name, rep.story, rep.id);
        }
    }
    axum::serve(listener, router).await.expect("serve");
}
