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
    /// Each node's monitoring port (`/jsz`).
    monitors: Vec<u16>,
    children: Vec<Child>,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = trellis_tests::temp_dir();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (spare_port(), spare_port())).collect();
        let monitors: Vec<u16> = (0..3).map(|_| spare_port()).collect();
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
                    .args(["-m", &monitors[i].to_string()])
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
            monitors,
            children,
        };
        for port in &cluster.ports {
            wait_for("a nats-server listens", Duration::from_secs(30), || {
                std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok()
            });
        }
        // Listening is not ready: until JetStream's meta group has a leader
        // and all three peers, creating a replicated stream fails ("no
        // suitable peers for placement") and a worker that tried gives its
        // lease up to a standby.
        for monitor in &cluster.monitors {
            wait_for(
                "JetStream's meta group has a leader and three current peers",
                Duration::from_secs(30),
                || meta_group_ready(*monitor),
            );
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

/// Whether the node monitored on `port` knows a meta leader, a cluster of
/// three, and every other peer as current.
fn meta_group_ready(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    use std::io::{Read, Write};
    let asked = stream.write_all(b"GET /jsz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut response = String::new();
    if asked.is_err() || stream.read_to_string(&mut response).is_err() {
        return false;
    }
    let Some((_, body)) = response.split_once("\r\n\r\n") else {
        return false;
    };
    let Ok(jsz) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    // Only the leader lists the other peers (`replicas`).
    let meta = &jsz["meta_cluster"];
    let peers_current = meta["replicas"]
        .as_array()
        .is_none_or(|peers| peers.len() == 2 && peers.iter().all(|p| p["current"] == true));
    meta["leader"].as_str().is_some_and(|l| !l.is_empty())
        && meta["cluster_size"] == 3
        && peers_current
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
