//! Starts a real Node `socket.io` server (testing/node-server) on 127.0.0.1 with an ephemeral port.
//!
//! Every wait here is bounded, and [`within`] bounds a test's own (its file's `T`): a server,
//! client or process that never answers fails the test with what it was waiting for, it does
//! not hang the run.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

pub mod haproxy;
pub mod proxy;
pub mod redis;

/// How long the helpers here wait for the Node server: to start, and to answer a control
/// request (a burst of 100,000 events is emitted before its answer).
const SERVER_T: Duration = Duration::from_secs(30);

/// `f`, or a failure naming `what` if it takes longer than `t` (the test file's `T`).
pub async fn within<F: Future>(t: Duration, what: &str, f: F) -> F::Output {
    tokio::time::timeout(t, f).await.unwrap_or_else(|_| panic!("{what}: nothing within {t:?}"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running Node socket.io server. Killed on drop (closing its stdin also stops it).
pub struct NodeServer {
    pub port: u16,
    pub control: u16,
    child: Child,
    _stdin: Option<ChildStdin>,
    frames: Arc<Mutex<Vec<Value>>>,
}

impl NodeServer {
    pub fn start(setup: &str) -> Self {
        Self::start_with(setup, &[])
    }

    pub fn start_with(setup: &str, extra: &[&str]) -> Self {
        Self::spawn(setup, extra, true)
    }

    /// Without the frame log (for bursts of many events: the log would cost more than they do).
    pub fn start_quiet(setup: &str, extra: &[&str]) -> Self {
        Self::spawn(setup, extra, false)
    }

    fn spawn(setup: &str, extra: &[&str], log_frames: bool) -> Self {
        let script = repo_root().join("testing/node-server/tidings-test-server.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--setup", setup])
            .args(log_frames.then_some("--log-frames"))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node must be installed (the test command installs the server's npm packages)");
        // Its first line names its ports; read on a thread of its own, so that a server that
        // never prints it fails the test instead of hanging it.
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let line = match rx.recv_timeout(SERVER_T) {
            Ok(line) => line.expect("server prints its port"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the Node server did not print its port within {SERVER_T:?}");
            }
        };
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("bad server line {line:?}: {e}"));
        let port = v["port"].as_u64().expect("port") as u16;
        let control = v.get("control").and_then(Value::as_u64).map_or(port, |c| c as u16);
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped");
        let sink = frames.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v.get("dir").is_some() => sink.lock().unwrap().push(v),
                    _ => eprintln!("[node] {line}"),
                }
            }
        });
        let stdin = child.stdin.take();
        Self { port, control, child, _stdin: stdin, frames }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Freezes the server process (SIGSTOP): its sockets stay open and the kernel still accepts
    /// connections, but nothing is read, answered or sent, as with a process stuck in a GC pause
    /// or a debugger.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGTERM, as an orchestrator stops a server, and waits for the exit: the server closes
    /// (`io.close()`: each socket ends with "server shutting down", no DISCONNECT packet is sent,
    /// and with connection state recovery its session is stored) and exits 0.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        wait_within(&mut self.child, SERVER_T, "the Node server's exit after SIGTERM")
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig} failed");
    }

    /// Engine.IO frames the server received from clients (`dir == "in"`), in their text encoding
    /// (`42[…]`, `3`; binary as `b<base64>`).
    pub fn received(&self) -> Vec<String> {
        self.frames_dir("in")
    }

    /// Frames the server received, with the transport each came over (`polling`/`websocket`).
    pub fn received_with_transport(&self) -> Vec<(String, String)> {
        self.sync_frames();
        self.frames
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f["dir"] == "in")
            .map(|f| {
                (
                    f["frame"].as_str().unwrap_or_default().to_string(),
                    f["transport"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Frames the server sent.
    pub fn sent(&self) -> Vec<String> {
        self.frames_dir("out")
    }

    fn frames_dir(&self, dir: &str) -> Vec<String> {
        self.sync_frames();
        self.frames
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f["dir"] == dir)
            .map(|f| match &f["frame"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    /// Waits until the frame log holds every frame the server logged so far: asks the server to
    /// write a marker line (blocking HTTP, so it works inside and outside a runtime) and waits
    /// for the reader thread to see it.
    fn sync_frames(&self) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.control));
        let mut conn = std::net::TcpStream::connect_timeout(&addr, SERVER_T).expect("control port");
        conn.set_read_timeout(Some(SERVER_T)).expect("a read timeout");
        conn.set_write_timeout(Some(SERVER_T)).expect("a write timeout");
        let req = format!(
            "POST /control/mark?id={id} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        conn.write_all(req.as_bytes()).expect("mark request");
        let mut resp = String::new();
        let _ = conn.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 200"), "mark failed: {resp}");
        for _ in 0..5_000 {
            if self.frames.lock().unwrap().iter().any(|f| f["dir"] == "mark" && f["id"] == id.as_str()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("frame log marker {id} never arrived");
    }

    pub fn clear_frames(&self) {
        self.sync_frames();
        self.frames.lock().unwrap().clear();
    }

    /// A control request; its answer must come within [`SERVER_T`].
    pub async fn control(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}/control/{path_and_query}", self.control);
        let client = reqwest::Client::new();
        let req = match method {
            "GET" => client.get(&url),
            _ => client.post(&url),
        };
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(b.to_string()),
            None => req,
        };
        let text = within(SERVER_T, &format!("control {method} {path_and_query}"), async {
            req.send().await.expect("control request").text().await.expect("control body")
        })
        .await;
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// `io.of(ns).emit(event, ...args)` on the server.
    pub async fn emit(&self, ns: &str, event: &str, args: Value) -> Value {
        self.control("POST", &format!("emit?ns={}&event={event}", urlenc(ns)), Some(args)).await
    }

    /// `io.to(room).emit(event, ...args)`.
    pub async fn to_room(&self, room: &str, event: &str, args: Value) -> Value {
        self.control("POST", &format!("to?room={}&event={event}", urlenc(room)), Some(args)).await
    }

    /// `count` events `event` of `{"i":k}` (plus `pad` bytes of padding) in one synchronous loop.
    pub async fn burst(&self, event: &str, count: u64, pad: usize) -> Value {
        self.control("POST", &format!("burst?event={event}&count={count}&pad={pad}"), None).await
    }

    /// Sends `text` to every client as one Engine.IO message, as is (a hostile server).
    pub async fn raw_message(&self, text: &str) -> Value {
        let url = format!("http://127.0.0.1:{}/control/raw-message", self.control);
        let req = reqwest::Client::new().post(&url).body(text.to_string());
        let answer = within(SERVER_T, "control raw-message", async {
            req.send().await.expect("control request").text().await.expect("control body")
        })
        .await;
        serde_json::from_str(&answer).expect("control answer is JSON")
    }

    /// Closes every client's transport (a network drop; recovery sessions are kept).
    pub async fn kill_transports(&self) -> Value {
        self.control("POST", "kill-transports", None).await
    }
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeServer {
    /// The rooms of each connected socket.
    pub async fn rooms_of_sockets(&self) -> Vec<Vec<String>> {
        let sockets = self.control("GET", "sockets", None).await;
        sockets
            .as_array()
            .map(|a| a.iter().map(|s| serde_json::from_value(s["rooms"].clone()).unwrap_or_default()).collect())
            .unwrap_or_default()
    }

    /// Whether a socket is in `room` (asked until `timeout` passes).
    pub async fn has_member_in(&self, room: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.rooms_of_sockets().await.iter().any(|r| r.iter().any(|r| r == room)) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// The next state change that matches `pred` (10 s at most).
pub async fn next_state(
    n: &mut tidings::Notices,
    pred: impl Fn(&tidings::ConnectionState) -> bool,
) -> tidings::ConnectionState {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), n.recv())
            .await
            .expect("state change in time")
            .expect("client alive")
        {
            tidings::Notice::State(s) if pred(&s) => return s,
            _ => {}
        }
    }
}

/// Waits for `child` to exit, at most `t`; past it the child is killed and the test fails
/// naming `what`.
pub fn wait_within(child: &mut Child, t: Duration, what: &str) -> ExitStatus {
    let step = Duration::from_millis(10);
    for _ in 0..=t.as_millis() / step.as_millis() {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        std::thread::sleep(step);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what}: the process did not exit within {t:?}");
}

/// [`Child::wait_with_output`], at most `t`: its piped stdout and stderr (those not taken) are
/// read meanwhile; past `t` the child is killed and the test fails naming `what`.
pub fn wait_with_output_within(mut child: Child, t: Duration, what: &str) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = wait_within(&mut child, t, what);
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// [`Command::output`], at most `t`: past it the process is killed and the test fails naming
/// `what`.
pub fn output_within(cmd: &mut Command, t: Duration, what: &str) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    wait_with_output_within(child, t, what)
}

/// Reads `child`'s (piped) stderr on a thread of its own until a line contains `needle`, and
/// returns that line; the later lines are read and dropped. If none comes within `t` (or
/// stderr ends first), the child is killed and the test fails naming `what`.
pub fn stderr_line(child: &mut Child, needle: &str, t: Duration, what: &str) -> String {
    let stderr = child.stderr.take().expect("stderr is piped");
    let needle = needle.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
        let _ = tx.send(lines.by_ref().find(|l| l.contains(&needle)));
        lines.for_each(drop);
    });
    let failure = match rx.recv_timeout(t) {
        Ok(Some(line)) => return line,
        Ok(None) => "stderr ended first (the process exited?)".to_string(),
        Err(_) => format!("no such line within {t:?}"),
    };
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what}: {failure}");
}
