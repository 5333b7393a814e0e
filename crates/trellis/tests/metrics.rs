//! `/metrics` of `trellis serve` as a scraper sees it: on the address of
//! `--metrics-listen` (the main one answers 404), behind `--metrics-token`,
//! with what the process reads from its stores at each scrape.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trellis_tests::{Backend, Kind};

/// A `trellis serve` child, killed when dropped whatever the test's outcome.
struct Serving {
    child: Child,
    /// The main listener's address.
    main: String,
    /// The `--metrics-listen` address.
    metrics: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `trellis` over `backend`'s store. On PostgreSQL the data directory is
/// `dir` (where `serve` and `token` keep the JWT secret they share).
fn trellis(backend: &Backend, dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    match backend.kind {
        Kind::Postgres => command
            .args(["--database-url", &backend.database().url])
            .arg("--data-dir")
            .arg(dir),
        Kind::Sqlite => command.args(["--data-dir", backend.data_dir().to_str().expect("utf-8")]),
    };
    command
        .env_remove("TRELLIS_DATABASE_URL")
        .env_remove("TRELLIS_NATS_URL")
        .env_remove("TRELLIS_METRICS_LISTEN")
        .env_remove("TRELLIS_METRICS_TOKEN");
    command
}

/// Starts `serve` with `/metrics` on an address of its own behind `token`,
/// and waits until it says where both listen.
fn serve(backend: &Backend, dir: &std::path::Path, token: &str) -> Serving {
    let mut child = trellis(backend, dir)
        .args([
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
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("trellis serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (found, addresses) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for (what, marker) in [
                ("main", "serving on http://"),
                ("metrics", "metrics on http://"),
            ] {
                if let Some(rest) = line.split(marker).nth(1) {
                    let address = rest.split(['/', ' ']).next().unwrap_or("").to_owned();
                    let _ = found.send((what, address));
                }
            }
        }
    });
    let mut serving = Serving {
        child,
        main: String::new(),
        metrics: String::new(),
    };
    while serving.main.is_empty() || serving.metrics.is_empty() {
        let (what, address) = addresses
            .recv_timeout(Duration::from_secs(60))
            .expect("serve says where it listens");
        match what {
            "main" => serving.main = address,
            _ => serving.metrics = address,
        }
    }
    serving
}

/// `(status, body)` of a request to `address`.
fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut http = std::net::TcpStream::connect(address).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(http, "{head}\r\n{body}").expect("send");
    let mut answer = String::new();
    http.read_to_string(&mut answer).expect("the answer");
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn scrape(serving: &Serving, token: &str) -> String {
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
    let admin = trellis(&backend, &dir)
        .args(["token", "--role", "admin"])
        .output()
        .expect("trellis token runs");
    assert!(admin.status.success(), "{admin:?}");
    let admin = String::from_utf8_lossy(&admin.stdout).trim().to_owned();
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
    let started = Instant::now();
    let text = loop {
        let text = scrape(&serving, token);
        if text.contains("trellis_checkpoint_age_seconds ") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no signed checkpoint after 30 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for expected in [
        "trellis_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/teams\",status=\"201\"} 1",
        "trellis_append_duration_seconds_count ",
        "trellis_projection_lag_events{projection=\"growth\",generation=",
        "trellis_projection_lag_seconds{projection=\"growth\",generation=",
        "trellis_webhook_queue_depth 0",
        "trellis_webhook_dead_letters 0",
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
