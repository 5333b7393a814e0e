//! `/metrics` of `trellis serve` as a scraper sees it: on the address of
//! `--metrics-listen` (the main one answers 404), behind `--metrics-token`,
//! with what the process reads from its stores at each scrape.

mod common;

use std::time::Duration;

use trellis_tests::{Backend, Kind};

use common::{Serving, eventually, printed, request, trellis_on};

/// `serve` with `/metrics` on an address of its own: killed when dropped.
struct Scraped {
    _serving: Serving,
    /// The main listener's address.
    main: String,
    /// The `--metrics-listen` address.
    metrics: String,
}

/// Starts `serve` with `/metrics` on an address of its own behind `token`,
/// and waits until it says where both listen. On PostgreSQL its data
/// directory is `dir`.
fn serve(backend: &Backend, dir: &std::path::Path, token: &str) -> Scraped {
    let serving = Serving::spawn(trellis_on(backend, dir).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--metrics-token",
        token,
        // A signed checkpoint after the first append.
        "--checkpoint-every-events",
        "1",
    ]));
    Scraped {
        main: serving.address("serving on http://"),
        metrics: serving.address("metrics on http://"),
        _serving: serving,
    }
}

fn scrape(serving: &Scraped, token: &str) -> String {
    let bearer = format!("Bearer {token}");
    let (status, text) = request(
        &serving.metrics,
        "GET",
        "/metrics",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 200, "{text}");
    text
}

async fn metrics_are_served_apart_behind_their_token_with_what_the_stores_say(kind: Kind) {
    let backend = Backend::new(kind).await;
    let dir = trellis_tests::temp_dir();
    let token = "scrape-token-4d1e";
    let serving = serve(&backend, &dir, token);

    // Not on the main listener; not without the token.
    let (status, body) = request(&serving.main, "GET", "/metrics", &[], "");
    assert_eq!(status, 404, "{body}");
    let (status, body) = request(&serving.metrics, "GET", "/metrics", &[], "");
    assert_eq!(status, 401, "{body}");
    let (status, body) = request(
        &serving.metrics,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer another")],
        "",
    );
    assert_eq!(status, 401, "{body}");

    // One write through the main listener.
    let admin = printed(trellis_on(&backend, &dir).args(["token", "--role", "admin"]));
    let bearer = format!("Bearer {admin}");
    let (status, body) = request(
        &serving.main,
        "POST",
        "/v1/teams",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"Scraped"}"#,
    );
    assert_eq!(status, 201, "{body}");

    // The checkpoint worker signs behind the append: wait for it.
    let text = eventually("a signed checkpoint", Duration::from_secs(30), || {
        let text = scrape(&serving, token);
        if text.contains("trellis_checkpoint_age_seconds ") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    for expected in [
        "trellis_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/teams\",status=\"201\"} 1",
        "trellis_append_duration_seconds_count ",
        "trellis_group_commit_commands_count ",
        "trellis_projection_lag_events{projection=\"growth\",generation=",
        "trellis_projection_lag_seconds{projection=\"growth\",generation=",
        "trellis_webhook_queue_depth 0",
        "trellis_webhook_dead_letters 0",
        "trellis_log_guards_not_in_place 0",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let pool = [
        "trellis_db_pool_connections{state=\"in_use\"}",
        "trellis_db_pool_connections{state=\"idle\"}",
        "trellis_db_pool_connections{state=\"max\"}",
    ];
    match kind {
        Kind::Postgres => {
            for series in pool {
                assert!(text.contains(series), "{series} in {text}");
            }
            let max = text
                .lines()
                .find_map(|l| l.strip_prefix("trellis_db_pool_connections{state=\"max\"} "))
                .and_then(|v| v.parse::<f64>().ok());
            assert!(max.is_some_and(|max| max >= 1.0), "{text}");
        }
        Kind::Sqlite => assert!(!text.contains("trellis_db_pool"), "no pool: {text}"),
    }
    // Without --nats-url there is no relay to lag.
    assert!(!text.contains("trellis_relay_lag_events"), "{text}");
    // A guard of the log dropped under the running service is counted at
    // the next scrape (the embedded file's `tamper` drops the events' two).
    let (tamper, dropped) = match kind {
        Kind::Postgres => ("DROP TRIGGER events_no_delete ON events", 1),
        Kind::Sqlite => ("SELECT 1", 2),
    };
    backend.tamper(tamper).await;
    let text = scrape(&serving, token);
    assert!(
        text.contains(&format!("trellis_log_guards_not_in_place {dropped}")),
        "{text}"
    );
    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_postgres() {
    metrics_are_served_apart_behind_their_token_with_what_the_stores_say(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_embedded_store() {
    metrics_are_served_apart_behind_their_token_with_what_the_stores_say(Kind::Sqlite).await;
}
