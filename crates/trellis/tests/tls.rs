//! Encrypted connections: PostgreSQL over TLS under each `sslmode`, and NATS
//! with a CA, credentials and a server that comes up after `serve` started.
//!
//! Every test makes its own CA (rcgen) and starts its own servers (a
//! PostgreSQL cluster made with `initdb`, or a nats-server with a config
//! file) on spare ports in directories of its own, stopped on drop. The
//! shared servers are not touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{CommandMeta, EventStore, ExpectedVersion, NewEvent};
use trellis_notifications::LeaseConfig;
use trellis_notifications::lease::Lease;
use trellis_tests::temp_dir;

use common::pg::{as_server_user, give_to_server_user, pg_bin};
use common::{Serving, spare_port, trellis, wait_for};

// ---------------------------------------------------------------- certificates

struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let certificate = params.self_signed(&key).expect("a CA certificate");
        TestCa {
            pem: certificate.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Writes the CA (`ca.pem`) and a server certificate for localhost and
    /// 127.0.0.1 (`server.crt`, `server.key`) into `dir`.
    fn write(&self, dir: &Path) {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = rcgen::CertificateParams::new(names).expect("valid names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("a server key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        std::fs::write(dir.join("ca.pem"), &self.pem).unwrap();
        std::fs::write(dir.join("server.crt"), certificate.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("server.key"), PermissionsExt::from_mode(0o600)).unwrap();
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// A PostgreSQL cluster of the test's own with `ssl=on` and a certificate
/// from `ca`, on a spare port; stopped and removed on drop.
struct TlsPostgres {
    dir: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn start(ca: &TestCa) -> TlsPostgres {
        let dir = temp_dir();
        ca.write(&dir);
        give_to_server_user(&dir);
        let data = dir.join("data");
        let output = as_server_user(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(output.status.success(), "initdb: {output:?}");
        let port = spare_port();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on \
             -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key -c fsync=off",
            dir = dir.display()
        );
        let output = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-o", &options, "-w", "start"])
            .output()
            .expect("pg_ctl runs");
        let server = TlsPostgres { dir, port };
        assert!(
            output.status.success(),
            "pg_ctl start: {output:?}\n{}",
            std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()
        );
        server
    }

    fn ca(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// A URL to the cluster's `postgres` database through `host`.
    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(url: &str) -> Result<PostgresStore, trellis_eventstore::Error> {
    let mut config = PostgresConfig::new(url);
    config.pool_size = 2;
    PostgresStore::connect(&config).await
}

/// Appends one event, and says whether the pooled connection is encrypted.
async fn append_over(store: &PostgresStore) -> bool {
    let stream = trellis_tests::stream("tls");
    store
        .append(
            &stream,
            ExpectedVersion::Exact(0),
            &CommandMeta::new("leader-1", Utc::now()),
            &[NewEvent::new(
                "Noted",
                1,
                json!({ "over": "tls" }),
                Utc::now(),
            )],
        )
        .await
        .expect("an append over TLS");
    let client = store.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_and_a_wrong_ca_is_refused() {
    let ca = TestCa::new("Trellis test CA");
    let server = TlsPostgres::start(&ca);
    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", server.ca()),
    );
    let store = connect(&url)
        .await
        .expect("verify-full with the server's CA");
    assert!(append_over(&store).await, "the connection is encrypted");

    // The lease of the relay and the alert publisher connects the same way.
    let lease = tokio::time::timeout(
        Duration::from_secs(20),
        Lease::acquire(
            &LeaseConfig::Postgres { url: url.clone() },
            "TLS_TEST",
            Duration::from_millis(100),
        ),
    )
    .await
    .expect("the lease is taken over TLS");
    drop(lease);

    // The CA file given apart (as --database-ca-file does), verify-full by default.
    let apart = trellis_eventstore::postgres::tls::with_root_cert(
        &server.url("127.0.0.1", "application_name=tls-test"),
        Path::new(&server.ca()),
    );
    assert!(append_over(&connect(&apart).await.unwrap()).await);

    let other = temp_dir();
    TestCa::new("Another CA").write(&other);
    let wrong = server.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            other.join("ca.pem").display()
        ),
    );
    let error = connect(&wrong)
        .await
        .expect_err("a certificate from another CA")
        .to_string();
    assert!(
        error.contains("certificate") && error.contains("UnknownIssuer"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(other);
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let ca = TestCa::new("Trellis test CA");
    let server = TlsPostgres::start(&ca);
    // The server's certificate names localhost and 127.0.0.1, not this name.
    let wrong_name = |mode: &str| {
        server.url(
            "db.not-in-the-certificate.test",
            &format!(
                "hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
                server.ca()
            ),
        )
    };
    let error = connect(&wrong_name("verify-full"))
        .await
        .expect_err("a name the certificate does not carry")
        .to_string();
    assert!(
        error.contains("certificate not valid for name \"db.not-in-the-certificate.test\""),
        "{error}"
    );
    let store = connect(&wrong_name("verify-ca"))
        .await
        .expect("verify-ca checks the chain only");
    assert!(append_over(&store).await);
}

#[tokio::test]
async fn require_encrypts_without_a_ca_and_disable_does_not() {
    let ca = TestCa::new("Trellis test CA");
    let server = TlsPostgres::start(&ca);
    let store = connect(&server.url("127.0.0.1", "sslmode=require"))
        .await
        .expect("require without a CA");
    assert!(append_over(&store).await, "require encrypts");
    let store = connect(&server.url("127.0.0.1", "sslmode=disable"))
        .await
        .unwrap();
    assert!(!append_over(&store).await, "disable does not");
}

// ---------------------------------------------------------------- NATS

const NATS_USER: &str = "trellis";
const NATS_PASSWORD: &str = "s3cret-test-password";

/// A nats-server of the test's own with TLS (a certificate from its own CA),
/// a user and a password, and JetStream in its own directory; killed on drop.
struct TlsNats {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl TlsNats {
    fn prepare() -> TlsNats {
        let dir = temp_dir();
        TestCa::new("Trellis NATS test CA").write(&dir);
        let port = spare_port();
        // A second user, known by its nkey only.
        let nkey = nkeys::KeyPair::new_user();
        let d = dir.display();
        std::fs::write(
            dir.join("nats.conf"),
            format!(
                "listen: 127.0.0.1:{port}\n\
                 jetstream {{ store_dir: \"{d}/js\" }}\n\
                 tls {{ cert_file: \"{d}/server.crt\", key_file: \"{d}/server.key\", timeout: 5 }}\n\
                 authorization {{ users = [\n\
                   {{ user: {NATS_USER}, password: \"{NATS_PASSWORD}\" }}\n\
                   {{ nkey: {public} }}\n\
                 ] }}\n",
                public = nkey.public_key(),
            ),
        )
        .unwrap();
        std::fs::write(dir.join("user.nk"), nkey.seed().unwrap()).unwrap();
        TlsNats {
            dir,
            port,
            child: None,
        }
    }

    fn start(&mut self) {
        let binary =
            std::env::var("TRELLIS_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        self.child = Some(
            Command::new(binary)
                .arg("-c")
                .arg(self.dir.join("nats.conf"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("failed to start nats-server (set TRELLIS_TEST_NATS_SERVER)"),
        );
        wait_for("nats-server listens", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// Whether the server has the checkpoint stream `serve` makes.
    async fn has_checkpoint_stream(&self) -> bool {
        let client = async_nats::ConnectOptions::new()
            .user_and_password(NATS_USER.into(), NATS_PASSWORD.into())
            .add_root_certificates(self.ca().into())
            .require_tls(true)
            .connect(self.url())
            .await
            .expect("the test connects with the CA and the credentials");
        async_nats::jetstream::new(client)
            .get_stream(trellis_notifications::checkpoints::DEFAULT_STREAM)
            .await
            .is_ok()
    }
}

impl Drop for TlsNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `serve` on an embedded store of its own (removed when it is dropped)
/// with NATS at `urls`, the test CA, and the user and `password`.
fn serve_with_password(nats: &TlsNats, urls: &str, password: &str) -> Serving {
    serve_with(nats, urls, &["--nats-user", NATS_USER], password)
}

/// `serve` on an embedded store of its own (removed when it is dropped)
/// with NATS at `urls`, the test CA, and `credentials`.
fn serve_with(nats: &TlsNats, urls: &str, credentials: &[&str], password: &str) -> Serving {
    let data_dir = temp_dir();
    let mut command = trellis();
    if !password.is_empty() {
        command.env("TRELLIS_NATS_PASSWORD", password);
    }
    Serving::spawn(
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--nats-url", urls, "--nats-ca-file", &nats.ca()])
            .args(credentials)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )
    .removing(data_dir)
}

#[tokio::test]
async fn serve_reaches_nats_over_tls_with_a_password_and_refuses_a_wrong_one() {
    let mut nats = TlsNats::prepare();
    nats.start();

    // Several servers, one of them down.
    let urls = format!("nats://127.0.0.1:{},{}", spare_port(), nats.url());
    let serving = serve_with_password(&nats, &urls, NATS_PASSWORD);
    let seen = serving.wait_for_line("serving on http://", Duration::from_secs(60));
    assert!(seen.is_ok(), "serve did not start: {seen:?}");
    assert!(nats.has_checkpoint_stream().await);
    assert!(
        !seen.unwrap().contains(NATS_PASSWORD),
        "the password is not logged"
    );
    drop(serving);

    let mut refused = serve_with_password(&nats, &nats.url(), "not-the-password");
    let status = refused.exited(Duration::from_secs(60));
    let seen = refused.log();
    assert!(
        status.is_some_and(|s| !s.success()),
        "a wrong password fails the start: {seen}"
    );
    assert!(seen.contains("authorization violation"), "{seen}");
    assert!(!seen.contains("not-the-password"), "{seen}");
}

#[tokio::test]
async fn serve_started_before_nats_waits_for_it() {
    let mut nats = TlsNats::prepare();
    let serving = serve_with_password(&nats, &nats.url(), NATS_PASSWORD);
    let seen = serving.wait_for_line("cannot reach NATS yet", Duration::from_secs(60));
    assert!(seen.is_ok(), "serve warns that NATS is down: {seen:?}");

    let seen = serving.wait_for_line("serving on http://", Duration::from_secs(60));
    assert!(seen.is_ok(), "serve starts without NATS: {seen:?}");

    // It reaches NATS in the background once it is up, whenever its next
    // try comes.
    nats.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !nats.has_checkpoint_stream().await {
        assert!(
            Instant::now() < deadline,
            "serve did not reach NATS once it was up:\n{}",
            serving.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_reaches_nats_with_an_nkey() {
    let mut nats = TlsNats::prepare();
    nats.start();
    let seed = nats.dir.join("user.nk").display().to_string();
    let serving = serve_with(&nats, &nats.url(), &["--nats-nkey-file", &seed], "");
    let seen = serving.wait_for_line("serving on http://", Duration::from_secs(60));
    assert!(seen.is_ok(), "serve did not start: {seen:?}");
    assert!(nats.has_checkpoint_stream().await);
}
