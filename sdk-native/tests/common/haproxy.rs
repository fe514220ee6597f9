//! HAProxy (scripts/install-cluster-tools.sh installs it) on an ephemeral 127.0.0.1 port in front
//! of servers on 127.0.0.1, with the `SRV` cookie that keeps a long-polling session on its server
//! (docs/DEPLOYMENT.md). Killed, and its directory removed, on drop.
//!
//! Shared by the load-balancer tests here and the reference server's cluster tests
//! (`examples/server/tests`, through `#[path]`): it needs nothing from the module around it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the backend checks its servers.
pub enum Checks {
    /// A TCP connect every 200 ms, one failure marks a server down.
    Tcp,
    /// `GET /health` every 200 ms expecting 200 (two failures mark a server down, two successes
    /// bring it back), and the sessions of a server marked down are shut.
    Health,
}

pub struct Haproxy {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl Haproxy {
    /// Round robin over `ports`; `extra`: more lines for the backend (e.g. `http-reuse never`).
    pub fn start(ports: &[u16], checks: Checks, extra: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tidings-haproxy-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (check, server_check) = match checks {
            Checks::Tcp => ("", "check inter 200 fall 1 rise 1"),
            Checks::Health => (
                "  option httpchk GET /health\n  http-check expect status 200\n",
                "check inter 200 fall 2 rise 2 on-marked-down shutdown-sessions",
            ),
        };
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server s{i} 127.0.0.1:{p} cookie s{i} {server_check}\n"))
            .collect();
        let cfg = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 60s\n  timeout check 1s\n  option redispatch\n  retries 2\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  balance roundrobin\n  cookie SRV insert indirect nocache\n{check}{extra}{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let mut child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haproxy must be installed (bash scripts/install-cluster-tools.sh)");
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[haproxy] {line}");
                }
            });
        }
        let t = Duration::from_secs(10);
        let mut tries = t.as_millis() / 20;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            tries = tries.checked_sub(1).unwrap_or_else(|| panic!("haproxy did not listen on {port} within {t:?}"));
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy { port, child, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
