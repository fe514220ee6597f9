//! A real `redis-server` for the cluster tests (scripts/install-cluster-tools.sh installs it), on
//! 127.0.0.1 with an ephemeral port, in a temporary directory of its own: no snapshots on a timer
//! (`--save ''`), no append-only file. Killed, and its directory removed, on drop.
//!
//! [`RedisServer::stop`] shuts it down with a snapshot (`SHUTDOWN SAVE`), so that
//! [`RedisServer::restart`] brings it back on the same port with the same data; [`RedisServer::kill`]
//! is a crash (SIGKILL): what was written since the last snapshot is lost, unless it was started
//! with [`RedisServer::start_durable`] (an append-only file fsync'd on every write).
//!
//! Shared by the Node cluster tests here and the reference server's (`examples/server/tests`,
//! through `#[path]`): it needs nothing from the module around it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long Redis may take to start answering, and to shut down.
const REDIS_T: Duration = Duration::from_secs(10);
/// Ports tried before giving up (another process may take a port between its pick and its use).
const PORT_TRIES: usize = 5;

/// A running (or stopped) `redis-server`.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    durable: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts Redis on a free port; panics if it cannot (`redis-server` missing, no port).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// The same with an append-only file fsync'd on every write (`--appendfsync always`): a
    /// [`RedisServer::kill`] then loses nothing Redis acknowledged.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tidings-redis-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for Redis");
        let mut last = String::new();
        for _ in 0..PORT_TRIES {
            let port = free_port();
            match spawn(port, &dir, durable) {
                Ok(child) => return Self { port, dir, durable, child: Some(child) },
                Err(e) => last = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("redis-server did not start in {PORT_TRIES} tries: {last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one inline command (`DBSIZE`, `GET key`, ...) and returns its answer: the reply
    /// line as is (`:2\r\n`, `+OK\r\n`), or a bulk string's text. Not for array replies.
    pub fn command(&self, cmd: &str) -> String {
        command(self.port, cmd).unwrap_or_else(|e| panic!("redis {cmd}: {e}"))
    }

    /// Shuts Redis down cleanly, saving its data to its directory (`SHUTDOWN SAVE`); waits for
    /// the process to exit. Does nothing if it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // The connection ends when Redis exits; its answer (none, or an error) does not matter.
        let _ = command(self.port, "SHUTDOWN SAVE");
        let step = Duration::from_millis(20);
        for _ in 0..REDIS_T.as_millis() / step.as_millis() {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(step);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not exit within {REDIS_T:?} of SHUTDOWN SAVE");
    }

    /// A crash: SIGKILL, nothing saved since the last [`RedisServer::stop`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops Redis (cleanly, with its data) if it runs, and starts it again on the same port and
    /// directory: the data saved by the stop is loaded. Retries for a few seconds if the port is
    /// still busy.
    pub fn restart(&mut self) {
        self.stop();
        let mut last = String::new();
        for _ in 0..20 {
            match spawn(self.port, &self.dir, self.durable) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("redis-server did not start again on port {}: {last}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port that was free a moment ago (bound to port 0, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().expect("its address").port()
}

/// Starts `redis-server` on `port` and waits until it answers PING; an error (and no process
/// left) if it exits first (a busy port) or does not answer in time.
fn spawn(port: u16, dir: &std::path::Path, durable: bool) -> Result<Child, String> {
    let aof: &[&str] =
        if durable { &["--appendonly", "yes", "--appendfsync", "always"] } else { &["--appendonly", "no"] };
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""])
        .args(aof)
        .args(["--protected-mode", "no", "--loglevel", "warning"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-server must be installed (bash scripts/install-cluster-tools.sh)");
    // Its log, read on threads of their own (a full pipe would block Redis); kept for errors.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as _),
    ]
    .into_iter()
    .flatten()
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                if log.len() < 64 * 1024 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
    }
    let step = Duration::from_millis(20);
    for _ in 0..REDIS_T.as_millis() / step.as_millis() {
        if let Some(status) = child.try_wait().expect("redis-server's status") {
            std::thread::sleep(Duration::from_millis(50)); // the rest of its log
            return Err(format!("redis-server on port {port} exited ({status}): {}", log.lock().unwrap()));
        }
        // This process's answer, not another Redis's that took the port first.
        let pid = format!("process_id:{}\r\n", child.id());
        if command(port, "INFO server").is_ok_and(|r| r.contains(&pid)) {
            return Ok(child);
        }
        std::thread::sleep(step);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("redis-server on port {port} did not answer PING within {REDIS_T:?}: {}", log.lock().unwrap()))
}

/// Sends one inline command and returns its answer: one line, or a bulk string's text.
fn command(port: u16, cmd: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    conn.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    match line.strip_prefix('$').and_then(|n| n.trim().parse::<usize>().ok()) {
        Some(len) => {
            let mut bulk = vec![0; len];
            reader.read_exact(&mut bulk)?;
            Ok(String::from_utf8_lossy(&bulk).into_owned())
        }
        None => Ok(line),
    }
}
