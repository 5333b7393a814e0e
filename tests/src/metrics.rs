//! `/metrics`: request durations by route template (never a path with an
//! id in it), the append latency, the webhook backlog, and who may read
//! them (`--metrics-token`, `--metrics-listen`). What `trellis serve` reads
//! from the stores at a scrape (projection lag, the pool, the checkpoint's
//! age) is checked on the binary, in `crates/trellis/tests/metrics.rs`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::Method;
use trellis_commands::{CommandState, CommandsConfig};
use trellis_eventstore::Checkpoint;
use trellis_http::auth::TokenKey;
use trellis_http::{HttpState, SystemClock};
use trellis_tests::Kind;
use trellis_webhooks::store::{AttemptOutcome, NewDelivery};
use trellis_webhooks::{Attempt, DeliveryStatus, Secret, Subscription};
use uuid::Uuid;

use crate::http::{
    Resp, SECRET, TestApp, both_backends, build_request, feedback_body, on_each_backend,
};

both_backends!(
    requests_are_timed_by_route_template_never_by_their_path,
    an_append_is_timed,
);

on_each_backend!(the_webhook_backlog_is_read_at_each_scrape);

/// The value of the sample `series` (name and labels, as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn requests_are_timed_by_route_template_never_by_their_path(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let feedback = format!("/v1/reps/{rep}/feedback");
    app.post_json(
        &feedback,
        &app.admin(),
        &feedback_body(&world, "2026-02-02"),
    )
    .await
    .expect(201);
    app.post_json(&feedback, "", &serde_json::json!({}))
        .await
        .expect(401);
    let stray = Uuid::now_v7();
    app.get(&format!("/no/such/{stray}")).await.expect(404);

    let text = app.get("/metrics").await.expect(200).text();
    assert!(
        text.contains("# TYPE trellis_http_request_duration_seconds histogram"),
        "{text}"
    );
    let labels = |status: u16| {
        format!("method=\"POST\",route=\"/v1/reps/{{rep_id}}/feedback\",status=\"{status}\"")
    };
    for status in [201, 401] {
        let count = format!(
            "trellis_http_request_duration_seconds_count{{{}}}",
            labels(status)
        );
        assert_eq!(sample(&text, &count), Some(1.0), "{count} in {text}");
        let bucket = format!(
            "trellis_http_request_duration_seconds_bucket{{{},le=\"+Inf\"}}",
            labels(status)
        );
        assert_eq!(sample(&text, &bucket), Some(1.0), "{bucket} in {text}");
    }
    let unmatched = "trellis_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\",status=\"404\"}";
    assert_eq!(sample(&text, unmatched), Some(1.0), "{text}");
    for id in [rep, stray] {
        assert!(!text.contains(&id.to_string()), "an id in a label: {text}");
    }
}

async fn an_append_is_timed(app: &TestApp) {
    let before = app.get("/metrics").await.text();
    let count = "trellis_append_duration_seconds_count";
    let appended = sample(&before, count).unwrap_or(0.0);
    app.form_team("Timed").await;
    let text = app.get("/metrics").await.text();
    assert!(
        text.contains("# TYPE trellis_append_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(sample(&text, count), Some(appended + 1.0), "{text}");
    assert_eq!(
        sample(&text, "trellis_append_duration_seconds_bucket{le=\"+Inf\"}"),
        Some(appended + 1.0),
        "{text}"
    );
    assert!(sample(&text, "trellis_append_duration_seconds_sum").is_some_and(|s| s > 0.0));
    assert_eq!(sample(&text, "trellis_version_conflicts_total"), Some(0.0));
}

/// The write API over `app`'s store, with `/metrics` as `protect` sets it.
fn served(app: &TestApp, protect: impl FnOnce(HttpState) -> HttpState) -> (HttpState, Router) {
    let key = TokenKey::new(SECRET.to_vec()).expect("a 32-byte secret");
    let http = protect(HttpState::new(
        app.store.clone(),
        key,
        Arc::new(SystemClock),
    ));
    let writes = CommandState::new(http.clone(), CommandsConfig::default());
    let router = trellis_http::app(http.clone(), [trellis_commands::api(writes)]);
    (http, router)
}

async fn scrape(router: &Router, authorization: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("authorization", value))
        .into_iter()
        .collect();
    TestApp::send_via(
        router,
        build_request(Method::GET, "/metrics", "", None, Bytes::new(), &headers),
    )
    .await
}

#[tokio::test]
async fn with_a_metrics_token_metrics_need_it() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let token = "scrape-me-9f4c1d";
    let (_, router) = served(&app, |http| http.with_metrics_token(token));
    TestApp::send_via(
        &router,
        build_request(Method::GET, "/healthz", "", None, Bytes::new(), &[]),
    )
    .await
    .expect(200);

    for refused in [
        None,
        Some("Bearer not-the-token"),
        Some("Bearer scrape-me-9f4c1"),
        Some("Basic c2NyYXBlLW1lLTlmNGMxZA=="),
        Some(token),
    ] {
        let r = scrape(&router, refused).await;
        r.expect_problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{refused:?}");
        assert!(r.text().contains("--metrics-token"), "{}", r.text());
        assert!(!r.text().contains(token), "the token is never echoed");
    }
    let r = scrape(&router, Some(&format!("Bearer {token}"))).await;
    r.expect(200);
    assert!(
        r.text().contains(
            "trellis_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{}",
        r.text()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn with_a_listener_of_their_own_metrics_are_served_there_and_not_on_the_main_one() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let (http, main) = served(&app, HttpState::with_metrics_elsewhere);
    let own = trellis_http::metrics_app(http);
    TestApp::send_via(
        &main,
        build_request(Method::GET, "/healthz", "", None, Bytes::new(), &[]),
    )
    .await
    .expect(200);
    scrape(&main, None).await.expect_problem(404, "not-found");

    let r = scrape(&own, None).await;
    r.expect(200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    // The main listener's requests, the refused scrape among them.
    let text = r.text();
    assert!(
        text.contains(
            "trellis_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "{text}"
    );
    // Only /metrics there.
    TestApp::send_via(
        &own,
        build_request(Method::GET, "/healthz", "", None, Bytes::new(), &[]),
    )
    .await
    .expect_problem(404, "not-found");

    // Both: the token is asked on the listener of their own.
    let (http, _) = served(&app, |http| {
        http.with_metrics_token("both-ways")
            .with_metrics_elsewhere()
    });
    let own = trellis_http::metrics_app(http);
    scrape(&own, None).await.expect(401);
    scrape(&own, Some("Bearer both-ways")).await.expect(200);
    app.cleanup().await;
}

async fn the_webhook_backlog_is_read_at_each_scrape(kind: Kind) {
    let app = TestApp::spawn(kind).await;
    let hooks = crate::http::webhooks(&app.backend, crate::http::local_receivers()).await;
    let (http, router) = served(&app, |http| http);
    http.add_metrics_source(Arc::new(trellis_webhooks::metrics::BacklogMetrics::new(
        hooks.clone(),
    )));
    let backlog = |text: &str| {
        (
            sample(text, "trellis_webhook_queue_depth"),
            sample(text, "trellis_webhook_dead_letters"),
        )
    };
    let text = scrape(&router, None).await.expect(200).text();
    assert_eq!(backlog(&text), (Some(0.0), Some(0.0)), "{text}");
    assert!(
        text.contains("# TYPE trellis_webhook_queue_depth gauge"),
        "{text}"
    );

    let store = hooks.store();
    let webhook = Uuid::now_v7();
    store
        .create_subscription(&Subscription {
            id: webhook,
            url: "http://127.0.0.1:9/hook".to_owned(),
            event_types: Vec::new(),
            categories: Vec::new(),
            secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            start: Checkpoint::START,
            created_at: chrono::Utc::now(),
            created_by: "admin".to_owned(),
            paused_at: None,
            disabled: None,
        })
        .await
        .expect("stored");
    let queued: Vec<NewDelivery> = (1..=3)
        .map(|n| NewDelivery {
            id: Uuid::now_v7(),
            subscription_id: webhook,
            event_id: Uuid::now_v7(),
            event_type: "TeamFormed".to_owned(),
            stream_id: format!("team-{}", Uuid::now_v7()),
            global_position: n,
            body: "{}".to_owned(),
            traceparent: None,
            created_at: chrono::Utc::now(),
        })
        .collect();
    assert_eq!(store.enqueue(&queued).await.expect("queued"), 3);
    let text = scrape(&router, None).await.text();
    assert_eq!(backlog(&text), (Some(3.0), Some(0.0)), "{text}");

    let now = chrono::Utc::now();
    let claimed = store
        .claim_due(now, now + chrono::Duration::seconds(60), 1)
        .await
        .expect("claimed");
    let dead = AttemptOutcome {
        attempt: Attempt {
            attempted_at: now,
            status_code: Some(500),
            error: Some("the receiver answered 500".to_owned()),
            duration_ms: 1,
        },
        status: DeliveryStatus::Dead,
        next_attempt_at: now,
        disable: None,
    };
    store
        .record_attempt(claimed[0].id, &dead)
        .await
        .expect("recorded");
    let text = scrape(&router, None).await.text();
    assert_eq!(backlog(&text), (Some(2.0), Some(1.0)), "{text}");

    // A deleted subscription's deliveries are no one's backlog.
    assert!(
        store
            .delete_subscription(webhook, chrono::Utc::now())
            .await
            .expect("deleted")
    );
    let text = scrape(&router, None).await.text();
    assert_eq!(backlog(&text), (Some(0.0), Some(0.0)), "{text}");
    drop(hooks);
    app.cleanup().await;
}
