//! `trellis serve --roles`: API processes beside worker processes on one
//! PostgreSQL database, each worker active in one process at a time, and a
//! standby that takes over when the active one is killed.
//!
//! Every test runs the built binary on a database of its own; the processes
//! of a test share a data directory (the development signing key) and a JWT
//! secret.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trellis_tests::{Backend, Kind};

use common::{ACTIVE, Serving, printed, serve, wait_for};

const JWT_SECRET: &str = "roles-test-secret-0123456789abcdef0123456789";

/// The worker roles the deployment files give worker processes.
const WORKERS: &str = "projector,relay,alerts,webhooks";

/// How long a standby may take to take over.
const TAKEOVER: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ processes

/// One `trellis serve` process: killed when dropped, whatever the outcome.
struct Process {
    name: &'static str,
    serving: Serving,
    address: String,
}

impl Process {
    /// Starts `trellis serve --roles <roles>` on `database` (none: the
    /// embedded store in `dir`), sharing `dir`, and waits until it says
    /// where it listens.
    fn start(name: &'static str, database: Option<&str>, dir: &Path, roles: &str) -> Process {
        let mut command = trellis();
        if let Some(database) = database {
            command.args(["--database-url", database]);
        }
        let (serving, address) = serve(
            command
                .arg("--data-dir")
                .arg(dir)
                .args(["serve", "--listen", "127.0.0.1:0", "--roles", roles])
                .args([
                    "--jwt-secret",
                    JWT_SECRET,
                    "--webhook-allow-private-targets",
                ]),
        );
        Process {
            name,
            serving,
            address,
        }
    }

    fn log(&self) -> String {
        format!("{}:\n{}", self.name, self.serving.log())
    }

    /// When it first logged a line `what` holds for.
    fn logged_at(&self, what: impl Fn(&str) -> bool) -> Option<Instant> {
        self.serving.logged_at(what)
    }

    fn logged(&self, what: impl Fn(&str) -> bool) -> bool {
        self.logged_at(what).is_some()
    }

    /// Which workers of [`ACTIVE`] this process has said it runs.
    fn active_workers(&self) -> Vec<&'static str> {
        ACTIVE
            .iter()
            .filter(|(_, says)| self.logged(says))
            .map(|(worker, _)| *worker)
            .collect()
    }

    fn kill(&mut self) {
        self.serving.kill();
    }
}

/// `trellis`, logging what the tests look for.
fn trellis() -> Command {
    let mut command = common::trellis();
    command.env("RUST_LOG", "info");
    command
}

fn admin_token() -> String {
    printed(trellis().args(["token", "--role", "admin", "--jwt-secret", JWT_SECRET]))
}

/// Forms a team through the API; its id.
fn form_team(api: &Process, token: &str, name: &str) -> String {
    let (status, body) = common::api(
        &api.address,
        "POST",
        "/v1/teams",
        token,
        Some(&json!({ "name": name })),
    );
    assert_eq!(status, 201, "{body}");
    let recorded: Value = serde_json::from_str(&body).expect("JSON");
    recorded["id"].as_str().expect("an id").to_owned()
}

/// The ids of the teams the read models hold.
fn projected_teams(api: &Process, token: &str) -> Vec<String> {
    let (status, body) = common::api(&api.address, "GET", "/v1/teams?limit=100", token, None);
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    page["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|t| t["team_id"].as_str().expect("an id").to_owned())
        .collect()
}

// ------------------------------------------------------------------ a receiver

/// A webhook receiver on loopback: answers 200 to every POST, keeping the
/// `webhook-id` of each (one per delivery attempt).
struct Receiver {
    url: String,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let ids = Arc::new(Mutex::new(Vec::new()));
        let kept = ids.clone();
        std::thread::spawn(move || {
            for connection in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || serve_connection(connection, &kept));
            }
        });
        Receiver { url, ids }
    }

    fn ids(&self) -> Vec<String> {
        self.ids.lock().expect("ids").clone()
    }
}

/// Requests on one kept-alive connection, until the sender closes it.
fn serve_connection(connection: TcpStream, ids: &Mutex<Vec<String>>) {
    let mut writer = connection.try_clone().expect("clone");
    let mut reader = BufReader::new(connection);
    loop {
        let mut length = 0;
        let mut id = None;
        let mut started = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                if started {
                    break;
                }
                continue;
            }
            started = true;
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "webhook-id" => id = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Some(id) = id {
            ids.lock().expect("ids").push(id);
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn register_webhook(api: &Process, token: &str, receiver: &Receiver) {
    let (status, body) = common::api(
        &api.address,
        "POST",
        "/v1/webhooks",
        token,
        Some(&json!({ "url": receiver.url, "categories": ["team"] })),
    );
    assert_eq!(status, 201, "{body}");
}

// ------------------------------------------------------------------ the tests

/// An `api` process records and answers, but its read models do not move
/// until a `projector` process runs beside it; that process answers its
/// probes and metrics, and 404 for the API and the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_process_runs_no_projection_and_a_projector_beside_it_brings_the_read_models_up_to_date()
 {
    let backend = Backend::new(Kind::Postgres).await;
    let (database, dir) = (backend.database().url.clone(), trellis_tests::temp_dir());
    let token = admin_token();

    let api = Process::start("api", Some(&database), &dir, "api");
    assert!(
        api.logged(|l| l.contains("trellis is serving") && l.contains("roles=api")),
        "the start names its roles:\n{}",
        api.log()
    );
    let team = form_team(&api, &token, "North");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        projected_teams(&api, &token).is_empty(),
        "no process projects, yet the read models moved"
    );
    assert!(api.active_workers().is_empty(), "{}", api.log());

    let projector = Process::start("projector", Some(&database), &dir, "projector");
    assert!(
        projector.logged(|l| l.contains("serving on http://")
            && l.contains("roles projector, /healthz, /readyz and /metrics only")),
        "{}",
        projector.log()
    );
    let took = wait_for("the projector brings the team in", TAKEOVER, || {
        projected_teams(&api, &token) == [team.clone()]
    });
    eprintln!("an api process's write reached the read models {took:?} after a projector started");
    for (path, expected) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/v1/teams", 404),
        ("/v1/webhooks", 404),
        ("/", 404),
        ("/sign-in", 404),
    ] {
        let (status, body) = common::api(&projector.address, "GET", path, &token, None);
        assert_eq!(status, expected, "GET {path} of a projector: {body}");
    }
    drop((api, projector));
    let _ = std::fs::remove_dir_all(&dir);
    backend.cleanup().await;
}

/// Two worker processes with the same roles: one does the work (the read
/// models, the checkpoints, the alert evaluator, the webhooks: one delivery
/// per event), the other stands by; killed (SIGKILL), the active one's
/// work is taken over by the other within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_is_active_in_one_process_and_its_standby_takes_over_when_it_is_killed() {
    let backend = Backend::new(Kind::Postgres).await;
    let (database, dir) = (backend.database().url.clone(), trellis_tests::temp_dir());
    let token = admin_token();
    let receiver = Receiver::start();

    let api = Process::start("api", Some(&database), &dir, "api");
    let mut first = Process::start("worker 1", Some(&database), &dir, WORKERS);
    wait_for("worker 1 runs every worker", TAKEOVER, || {
        first.active_workers().len() == ACTIVE.len()
    });
    let second = Process::start("worker 2", Some(&database), &dir, WORKERS);
    // The standby tries every second or two: give it a few tries.
    std::thread::sleep(Duration::from_secs(3));

    register_webhook(&api, &token, &receiver);
    let mut teams: Vec<String> = (0..5)
        .map(|n| form_team(&api, &token, &format!("Team {n}")))
        .collect();
    teams.sort();
    wait_for(
        "every team projected and delivered",
        Duration::from_secs(30),
        || {
            receiver.ids().len() >= teams.len() && {
                let mut projected = projected_teams(&api, &token);
                projected.sort();
                projected == teams
            }
        },
    );
    // Time for a second sender or dispatcher to deliver again, if one ran.
    std::thread::sleep(Duration::from_secs(3));
    let delivered = receiver.ids();
    let mut distinct = delivered.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        (delivered.len(), distinct.len()),
        (teams.len(), teams.len()),
        "one delivery per event: {delivered:?}"
    );
    assert_eq!(
        second.active_workers(),
        Vec::<&str>::new(),
        "the standby stands by:\n{}",
        second.log()
    );
    assert_eq!(first.active_workers().len(), ACTIVE.len());

    first.kill();
    let killed = Instant::now();
    let team = form_team(&api, &token, "After the kill");
    let mut taken_over = Vec::new();
    for (worker, says) in ACTIVE {
        wait_for(&format!("worker 2 runs the {worker}"), TAKEOVER, || {
            second.logged(says)
        });
        let at = second.logged_at(says).expect("logged");
        taken_over.push((worker, at.duration_since(killed)));
    }
    wait_for(
        "the team formed after the kill is projected and delivered",
        TAKEOVER.saturating_sub(killed.elapsed()),
        || receiver.ids().len() > teams.len() && projected_teams(&api, &token).contains(&team),
    );
    let work_resumed = killed.elapsed();
    for (worker, took) in &taken_over {
        eprintln!("takeover after SIGKILL: {worker}: {took:?}");
        assert!(*took < TAKEOVER, "{worker}: {took:?}");
    }
    eprintln!("takeover after SIGKILL: the next event projected and delivered: {work_resumed:?}");
    assert!(work_resumed < TAKEOVER, "{work_resumed:?}");
    std::thread::sleep(Duration::from_secs(2));
    let delivered = receiver.ids();
    assert_eq!(
        delivered.len(),
        teams.len() + 1,
        "one delivery per event after the takeover too: {delivered:?}"
    );
    drop((api, second));
    let _ = std::fs::remove_dir_all(&dir);
    backend.cleanup().await;
}

/// On the embedded store the roles work in one process: an API beside the
/// projector keeps its read models up to date (several processes on one
/// data directory are not supported).
#[test]
fn on_the_embedded_store_the_roles_run_in_one_process() {
    let dir = trellis_tests::temp_dir();
    let token = admin_token();
    let process = Process::start("embedded", None, &dir, "api,projector");
    assert!(
        process.logged(|l| l.contains("leaves some out") && l.contains("alerts,webhooks")),
        "it says which workers it leaves out: {}",
        process.log()
    );
    let team = form_team(&process, &token, "Embedded");
    wait_for("the team is projected", TAKEOVER, || {
        projected_teams(&process, &token) == [team.clone()]
    });
    // (The checkpoint signer's lease within one process says nothing.)
    assert_eq!(process.active_workers(), ["projector: read models"]);
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An unknown role stops `serve` before anything starts: exit code 2 (a
/// bad argument) and a message naming the valid roles, from the flag and
/// from TRELLIS_ROLES alike.
#[test]
fn an_unknown_role_is_refused_naming_the_valid_ones() {
    let dir = trellis_tests::temp_dir();
    let flag = trellis()
        .arg("--data-dir")
        .arg(&dir)
        .args(["serve", "--roles", "api,frontend"])
        .output()
        .expect("trellis runs");
    let variable = trellis()
        .arg("--data-dir")
        .arg(&dir)
        .arg("serve")
        .env("TRELLIS_ROLES", "scheduler")
        .output()
        .expect("trellis runs");
    let _ = std::fs::remove_dir_all(&dir);
    for (output, unknown) in [(flag, "frontend"), (variable, "scheduler")] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("`{unknown}` is not a role")),
            "{stderr}"
        );
        assert!(
            stderr.contains("the roles are api, projector, relay, alerts, webhooks (or all)"),
            "{stderr}"
        );
    }
}
