//! A three-node NATS cluster with JetStream of a test's own, on spare ports
//! in directories of its own, killed and removed on drop. The shared server
//! is not touched.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{spare_port, wait_for};

fn nats_server() -> String {
    std::env::var("TRELLIS_TEST_NATS_SERVER").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".to_owned()
        } else {
            "nats-server".to_owned()
        }
    })
}

/// Three nats-server processes routed to one another.
pub struct NatsCluster {
    dir: PathBuf,
    ports: Vec<u16>,
    children: Vec<Child>,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = trellis_tests::temp_dir();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (spare_port(), spare_port())).collect();
        let name = format!("trellis-test-{}", std::process::id());
        let children = ports
            .iter()
            .enumerate()
            .map(|(i, (client, cluster))| {
                let routes = ports
                    .iter()
                    .filter(|(_, other)| other != cluster)
                    .map(|(_, other)| format!("nats://127.0.0.1:{other}"))
                    .collect::<Vec<_>>()
                    .join(",");
                Command::new(nats_server())
                    .args(["-a", "127.0.0.1", "-p", &client.to_string(), "-js"])
                    .arg("-sd")
                    .arg(dir.join(format!("js{i}")))
                    .arg("-l")
                    .arg(dir.join(format!("n{i}.log")))
                    .args(["-n", &format!("{name}-n{i}")])
                    .args(["--cluster", &format!("nats://127.0.0.1:{cluster}")])
                    .args(["--routes", &routes, "--cluster_name", &name])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("failed to start nats-server (set TRELLIS_TEST_NATS_SERVER)")
            })
            .collect();
        let cluster = NatsCluster {
            dir,
            ports: ports.iter().map(|(client, _)| *client).collect(),
            children,
        };
        for port in &cluster.ports {
            wait_for("a nats-server listens", Duration::from_secs(30), || {
                std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok()
            });
        }
        cluster
    }

    /// Every node's URL, comma-separated (as `--nats-url` takes them).
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
