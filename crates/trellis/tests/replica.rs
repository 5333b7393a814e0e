//! `serve --read-database-url`: reads from a PostgreSQL streaming replica,
//! and a client that reads right after its own write sees it.
//!
//! Each test starts its own primary (`initdb`) and hot standby
//! (`pg_basebackup`) on spare ports. The standby applies commits only after
//! a delay (`recovery_min_apply_delay`), so a read that reached it without
//! waiting would miss a write made a moment before: that is how the test
//! tells which server answered.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use common::pg::LocalPostgres;
use common::{Serving, exchange, printed, serve};

const JWT_SECRET: &str = "replica-test-secret-0123456789abcdef0123456789";
/// How long the standby holds each commit back.
const APPLY_DELAY_MS: u64 = 3_000;

fn trellis() -> Command {
    let mut command = common::trellis();
    command.env("RUST_LOG", "info");
    command
}

fn admin_token() -> String {
    printed(trellis().args(["token", "--role", "admin", "--jwt-secret", JWT_SECRET]))
}

/// `trellis serve` on `primary`, reading from `replica`, waiting at most
/// `max_wait_ms` for the replica.
fn serve_reading_from(
    primary: &LocalPostgres,
    replica: &LocalPostgres,
    roles: &str,
    max_wait_ms: u64,
    dir: &std::path::Path,
) -> (Serving, String) {
    serve(
        trellis()
            .args(["--database-url", &primary.url()])
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--roles", roles])
            .args(["--jwt-secret", JWT_SECRET])
            .args(["--read-database-url", &replica.url()])
            .args(["--read-replica-max-wait-ms", &max_wait_ms.to_string()]),
    )
}

/// One request: the status, the `Trellis-Read-After` header (if any) and the body.
fn call(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, Option<String>, String) {
    let bearer = format!("Bearer {token}");
    let mut all = vec![
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    all.extend_from_slice(headers);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let answer = exchange(address, method, path, &all, &body);
    let (head, rest) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let read_after = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("trellis-read-after:")
            .map(|v| v.trim().to_owned())
    });
    (status, read_after, rest.to_owned())
}

/// Forms a team through `address` as the holder of `token`: its id, and
/// the position the write answered with (`Trellis-Read-After`).
fn form_team(address: &str, token: &str, name: &str) -> (String, String) {
    let (status, read_after, body) = call(
        address,
        "POST",
        "/v1/teams",
        token,
        &[],
        Some(json!({ "name": name })),
    );
    assert_eq!(status, 201, "{body}");
    let team = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let read_after = read_after.expect("a write answers with Trellis-Read-After");
    assert!(read_after.parse::<u64>().is_ok(), "{read_after}");
    (team, read_after)
}

/// How many reads this process served from the replica and from the
/// primary, by its `/metrics`.
fn served_by(address: &str) -> (u64, u64) {
    let body = common::fetch(address, "/metrics");
    let count = |by: &str| {
        body.lines()
            .find(|l| {
                l.starts_with("trellis_read_replica_requests_total")
                    && l.contains(&format!("served_by=\"{by}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<f64>().ok())
            .map_or(0, |n| n as u64)
    };
    (count("replica"), count("primary"))
}

#[test]
fn reads_come_from_the_replica_and_a_client_sees_its_own_write_at_once() {
    let primary = LocalPostgres::primary(&[]);
    let replica = LocalPostgres::replica_of(
        &primary,
        &[&format!("recovery_min_apply_delay={APPLY_DELAY_MS}")],
    );
    let dir = trellis_tests::temp_dir();
    let (code, out) = common::run(
        trellis()
            .args(["--database-url", &primary.url()])
            .arg("--data-dir")
            .arg(&dir)
            .arg("migrate"),
    );
    assert_eq!(code, 0, "{out}");
    replica.caught_up_with(&primary, Duration::from_secs(60));

    // A patient process (waits up to 10 s for the replica) running every
    // role, and an impatient API process (100 ms) beside it.
    let (_patient, patient) = serve_reading_from(&primary, &replica, "all", 10_000, &dir);
    let (_impatient, impatient) = serve_reading_from(&primary, &replica, "api", 100, &dir);
    let (writer, other) = (admin_token(), admin_token());

    let written = Instant::now();
    let (team, _) = form_team(&patient, &writer, "Replicated");

    // Another client, which wrote nothing, reads the replica as it stands:
    // the standby holds the commit back, so the team is not there yet.
    let (status, _, feed) = call(&patient, "GET", "/v1/events?limit=1000", &other, &[], None);
    assert_eq!(status, 200, "{feed}");
    let after = written.elapsed();
    // (On a machine so busy that the delay passed meanwhile, the replica
    // may have applied it: then the counts alone tell.)
    if after < Duration::from_millis(APPLY_DELAY_MS) {
        assert!(
            !feed.contains(&team),
            "a read with nothing to wait for came from the replica, which has not applied the \
             write yet ({after:?} after it)"
        );
    }
    assert_eq!(served_by(&patient), (1, 0), "it read the replica");

    // The writer reads at once and sees its write: the process waited for
    // the replica to replay it.
    let (status, _, feed) = call(&patient, "GET", "/v1/events?limit=1000", &writer, &[], None);
    assert_eq!(status, 200, "{feed}");
    assert!(
        feed.contains(&team),
        "the writer's own write is missing: {feed}"
    );
    let waited = written.elapsed();
    assert!(
        waited >= Duration::from_millis(APPLY_DELAY_MS),
        "it was read from the replica, after it applied the write ({waited:?})"
    );
    assert_eq!(served_by(&patient), (2, 0));

    // The other client, on another API process, carrying the position the
    // write answered with: that process waits 100 ms only, then reads the
    // primary. (A new write, so the replica lags again.)
    let second_written = Instant::now();
    let (second, read_after) = form_team(&patient, &writer, "Second");
    let (status, _, feed) = call(
        &impatient,
        "GET",
        "/v1/events?limit=1000",
        &other,
        &[("Trellis-Read-After", &read_after)],
        None,
    );
    assert_eq!(status, 200, "{feed}");
    assert!(
        feed.contains(&second),
        "the position carried along was not honoured: {feed}"
    );
    if second_written.elapsed() < Duration::from_millis(APPLY_DELAY_MS) {
        assert_eq!(served_by(&impatient), (0, 1), "it read the primary");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The replica dies: reads carry on from the primary, none fails, and the
/// process says so in its metrics.
#[test]
fn when_the_replica_dies_reads_go_to_the_primary_without_an_error() {
    let primary = LocalPostgres::primary(&[]);
    let replica = LocalPostgres::replica_of(&primary, &[]);
    let dir = trellis_tests::temp_dir();
    let (_serving, address) = serve_reading_from(&primary, &replica, "all", 500, &dir);
    let token = admin_token();
    let (team, _) = form_team(&address, &token, "Before the replica died");
    let (status, _, feed) = call(&address, "GET", "/v1/events?limit=1000", &token, &[], None);
    assert_eq!((status, feed.contains(&team)), (200, true), "{feed}");
    let (on_replica, on_primary) = served_by(&address);
    assert_eq!((on_replica, on_primary), (1, 0));

    replica.stop();
    for _ in 0..3 {
        let (status, _, feed) = call(&address, "GET", "/v1/events?limit=1000", &token, &[], None);
        assert_eq!(status, 200, "a read while the replica is down: {feed}");
        assert!(feed.contains(&team), "{feed}");
    }
    let (_, on_primary) = served_by(&address);
    assert!(
        on_primary >= 2,
        "after the replica failed a read, the next ones went to the primary ({on_primary})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A position past anything the primary wrote (made up, or garbled) is
/// read as the primary's own: the read neither waits nor leaves the replica.
#[test]
fn a_made_up_position_neither_holds_a_read_up_nor_sends_it_to_the_primary() {
    let primary = LocalPostgres::primary(&[]);
    let replica = LocalPostgres::replica_of(&primary, &[]);
    let dir = trellis_tests::temp_dir();
    // Patience enough that a read waiting for the made-up position would
    // show in the counts only after a long wait; then it reads the primary.
    let (_serving, address) = serve_reading_from(&primary, &replica, "api", 2_000, &dir);
    replica.caught_up_with(&primary, Duration::from_secs(60));
    let token = admin_token();
    let made_up = u64::MAX.to_string();
    for _ in 0..2 {
        let (status, _, body) = call(
            &address,
            "GET",
            "/v1/events",
            &token,
            &[("Trellis-Read-After", &made_up)],
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        served_by(&address),
        (2, 0),
        "both reads came from the replica"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_read_replica_needs_the_log_on_postgresql() {
    let dir = trellis_tests::temp_dir();
    let (code, out) = common::run(
        trellis()
            .arg("--data-dir")
            .arg(&dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args([
                "--read-database-url",
                "postgres://postgres@127.0.0.1:1/none",
            ]),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("--read-database-url needs the log on PostgreSQL (--database-url)"),
        "{out}"
    );
}
