//! Child processes: the harness re-executes itself for servers and clients, so that each has
//! its own CPU and memory accounting.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A server child process (`tidings-bench server KIND PORT`), killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub pid: u32,
}

impl Server {
    /// Starts a server on `port` (0: any free port) and waits until it listens.
    pub async fn spawn(kind: &str, port: u16) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut last_err = String::new();
        // A port just freed by a killed server can take a moment to be bindable again.
        for _ in 0..50 {
            let mut child = Command::new(&exe)
                .args(["server", kind, &port.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("spawn server: {e}"))?;
            let pid = child.id().unwrap_or(0);
            let stdout = child.stdout.take().ok_or("no server stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
                Ok(Ok(Some(l))) if l.starts_with("LISTENING ") => {
                    let port = l["LISTENING ".len()..].trim().parse().map_err(|_| format!("bad line {l}"))?;
                    // Keep draining stdout so the child never blocks on a full pipe.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok(Server { child, port, pid });
                }
                other => {
                    last_err = format!("server did not start: {other:?}");
                    let _ = child.kill().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(last_err)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs a client child (`tidings-bench client …` or `node bench/node/client.mjs …`) and
/// returns the JSON object of its last stdout line.
pub async fn run_client(mut cmd: Command, timeout: Duration) -> Result<serde_json::Value, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("spawn client: {e}"))?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| e.to_string())?,
        Err(_) => return Err(format!("client timed out after {timeout:?}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: String =
            stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        return Err(format!("client failed ({}): {tail}", out.status));
    }
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).ok_or("client printed no result")?;
    serde_json::from_str(last).map_err(|e| format!("bad result line: {e}"))
}
