//! Reconnect storm across nodes: Redis, three reference-server nodes (`tidings-example-server
//! --redis-url`) and HAProxy in front of them (the topology and configuration of
//! `examples/server/tests/cluster_e2e.rs`), all child processes on 127.0.0.1 ephemeral ports. C
//! Tidings clients (WebSocket, the REST feed, users of tenant `acme`, subscribed to
//! `task.created` in the tenant room) connect through the balancer while a `tidings::Publisher`
//! publishes a steady stream through it. One node is SIGKILLed; its clients reconnect to the two
//! others and catch up from the feed. Measured: the clients on the killed node, the time until
//! all of them are connected again and until all have caught up, attempts per client, connects
//! per 100 ms (seen by the clients, and by the surviving nodes' `/health` socket counts), and at
//! the end whether every client got every published event exactly once and in order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, mpsc};

const SECRET: &str = "tidings-bench-cluster-secret";
const KEY: &str = "tidings-bench-cluster-key";
const NODES: usize = 3;

/// One run's parameters.
pub struct Opts {
    /// `default` (the client's defaults: socket.io-client's backoff) or a `storm::strategy` name.
    pub strategy: String,
    pub clients: usize,
    /// Events published per second through the balancer, during the whole run.
    pub rate: u64,
    /// Publishing before the kill, and after the last client caught up.
    pub warm_ms: u64,
    pub tail_ms: u64,
}

/// The reference server binary: `BENCH_SERVER_BIN`, or `tidings-example-server` next to this
/// executable (`scripts/bench.sh` builds both into the same target directory).
fn server_bin() -> Result<PathBuf, String> {
    let p = match std::env::var_os("BENCH_SERVER_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            exe.with_file_name("tidings-example-server")
        }
    };
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build --release -p tidings-example-server` (scripts/bench.sh does), or set BENCH_SERVER_BIN",
            p.display()
        ))
    }
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("tidings-bench-{name}-{}-{n}", std::process::id()))
}

/// Polls `ok` every 20 ms for up to `t`.
async fn wait_until<F, Fut>(t: Duration, what: &str, mut ok: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + t;
    while !ok().await {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{what}: not within {t:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A child process (SIGKILLed on drop) and its scratch directory (removed on drop).
struct Proc {
    child: Option<Child>,
    dir: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, dir: PathBuf, what: &str) -> Result<Proc, String> {
        // Their stderr goes to ours (the harness shows its tail if this run fails); their stdout
        // (the nodes log there) must not mix with the result line.
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("{what}: {e} (scripts/install-cluster-tools.sh installs it)"))?;
        Ok(Proc { child: Some(child), dir })
    }

    /// SIGKILL, and wait for the process to be gone.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn redis_pong(port: u16) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    let mut buf = [0u8; 7];
    let io = async {
        s.write_all(b"PING\r\n").await?;
        s.read_exact(&mut buf).await
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), io).await, Ok(Ok(_))) && &buf == b"+PONG\r\n"
}

/// `redis-server`, append-only and fsync'd on every write as in cluster_e2e.
async fn start_redis() -> Result<(Proc, u16), String> {
    let port = free_port()?;
    let dir = temp_dir("redis");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
        .arg(&dir);
    let p = Proc::spawn(cmd, dir, "redis-server")?;
    wait_until(Duration::from_secs(10), "redis answers PING", || redis_pong(port)).await?;
    Ok((p, port))
}

/// `GET /health` of a node: (200?, sockets), or None when it does not answer.
async fn health(http: &reqwest::Client, port: u16) -> Option<(bool, u64)> {
    let r = http.get(format!("http://127.0.0.1:{port}/health")).timeout(Duration::from_secs(1)).send().await.ok()?;
    let ok = r.status().is_success();
    let v: Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
    Some((ok, v["sockets"].as_u64().unwrap_or(0)))
}

async fn start_node(bin: &Path, redis_port: u16, http: &reqwest::Client) -> Result<(Proc, u16), String> {
    let port = free_port()?;
    let dir = temp_dir("node");
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--redis-url", &format!("redis://127.0.0.1:{redis_port}")])
        .args(["--jwt-secret", SECRET, "--internal-api-key", KEY, "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .env("TIDINGS_EMIT_RATE", "off");
    let p = Proc::spawn(cmd, dir, "tidings-example-server")?;
    wait_until(Duration::from_secs(15), "a node answers /health with 200", || async {
        matches!(health(http, port).await, Some((true, _)))
    })
    .await?;
    Ok((p, port))
}

/// HAProxy as in cluster_e2e: round robin, the `SRV` cookie, `/health` checked every 200 ms,
/// the sessions of a node marked down shut.
async fn start_haproxy(nodes: &[u16], clients: usize) -> Result<(Proc, u16), String> {
    let port = free_port()?;
    let dir = temp_dir("haproxy");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let servers: String =
        nodes.iter().enumerate().map(|(i, p)| format!("  server n{i} 127.0.0.1:{p} cookie n{i}\n")).collect();
    // Two sockets per WebSocket client (in and out) plus the feed's and the publisher's requests.
    let maxconn = (4 * clients + 1000).max(4096);
    let cfg = format!(
        "global\n  maxconn {maxconn}\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 60s\n  timeout check 1s\n  option redispatch\n  retries 2\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n  cookie SRV insert indirect nocache\n  option httpchk GET /health\n  http-check expect status 200\n\
         \x20 default-server check inter 200 fall 2 rise 2 on-marked-down shutdown-sessions\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("haproxy");
    cmd.args(["-db", "-f"]).arg(&path);
    let p = Proc::spawn(cmd, dir, "haproxy")?;
    wait_until(Duration::from_secs(10), "haproxy listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await?;
    Ok((p, port))
}

/// The first line `prog arg` prints (its version).
async fn version(prog: &str, arg: &str) -> String {
    match Command::new(prog).arg(arg).output().await {
        Ok(o) => String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string(),
        Err(_) => "missing".into(),
    }
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// An HS256 JWT for `user` of tenant `acme`, as the reference server's `jwt::sign` makes them.
fn token(user: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = json!({ "sub": user, "tenantId": "acme", "name": user, "exp": now + 86_400 });
    let input = format!("{}.{}", b64url(br#"{"alg":"HS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(sig.as_ref()))
}

/// What one client received.
#[derive(Default)]
struct Log {
    /// The `n` of every `task.created`, in the order delivered.
    ns: Vec<u64>,
    /// Of those, delivered by the REST feed (the catch-up).
    from_feed: u64,
    /// Events that did not decode or had no `n`.
    bad: u64,
}

enum Ev {
    Down,
    /// A reconnection attempt, due at this time.
    Attempt(Instant),
    Connected,
    CatchingUp,
    CaughtUp,
    GaveUp,
}

/// One client's storm, from the kill on.
#[derive(Default, Clone)]
struct St {
    down: Option<Instant>,
    is_down: bool,
    connected: Option<Instant>,
    catching_up: Option<Instant>,
    caught_up: Option<Instant>,
    attempts: u32,
    downs: u32,
    gave_up: bool,
}

impl St {
    fn settled(&self) -> bool {
        !self.is_down && self.connected.is_some() && self.caught_up.is_some()
    }
}

async fn client(
    idx: usize,
    lb: String,
    reconnect: tidings::ReconnectConfig,
    ev_tx: mpsc::UnboundedSender<(usize, Ev, Instant)>,
) -> Result<(tidings::Tidings, Arc<Mutex<Log>>), String> {
    let c = tidings::Tidings::builder(&lb)
        .token(token(&format!("u{idx:05}")))
        .transports(tidings::TransportConfig::only(tidings::TransportKind::WebSocket))
        .feed(tidings::FeedConfig::new(format!("{lb}/api/polling/acme")))
        .reconnect(reconnect)
        .build()
        .map_err(|e| e.to_string())?;
    let log = Arc::new(Mutex::new(Log::default()));
    let mut events = c.on::<tidings::Envelope<Value>>("task.created");
    let l = log.clone();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            let n = e.as_ref().ok().and_then(|r| r.data.data.get("n").and_then(Value::as_u64));
            let feed = e.as_ref().is_ok_and(|r| r.source == tidings::EventSource::Feed);
            let mut l = l.lock().unwrap_or_else(|p| p.into_inner());
            match n {
                Some(n) => {
                    l.ns.push(n);
                    l.from_feed += u64::from(feed);
                }
                None => l.bad += 1,
            }
        }
    });
    let mut notices = c.notices();
    tokio::spawn(async move {
        use tidings::{ConnectionState as S, FeedStatus as F, Notice as N};
        while let Some(n) = notices.recv().await {
            let now = Instant::now();
            let ev = match n {
                N::State(S::Disconnected { .. }) => Ev::Down,
                N::State(S::Reconnecting { delay, .. }) => Ev::Attempt(now + delay),
                N::State(S::Connected { .. }) => Ev::Connected,
                N::Feed(F::CatchingUp) => Ev::CatchingUp,
                N::Feed(F::CaughtUp) => Ev::CaughtUp,
                N::Feed(F::GaveUp { .. }) => Ev::GaveUp,
                _ => continue,
            };
            if ev_tx.send((idx, ev, now)).is_err() {
                return;
            }
        }
    });
    c.wait_connected(Duration::from_secs(60)).await.map_err(|e| format!("client {idx}: initial connect: {e}"))?;
    Ok((c, log))
}

/// What the publisher did: the `n`s the server acknowledged (in order), and its counters.
struct Published {
    ok: Vec<u64>,
    failed: Vec<u64>,
    offsets_in_order: bool,
    metrics: tidings::PublisherMetrics,
}

async fn publish_stream(lb: String, rate: u64, stop: Arc<AtomicBool>) -> Result<Published, String> {
    let p = tidings::Publisher::builder(&lb).api_key(KEY).build().map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut handles = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let publication = tidings::Publication::to_room("tenant:acme", "task.created", json!({ "n": n }));
        handles.push((n, p.publish(publication).await.map_err(|e| e.to_string())?));
        n += 1;
    }
    p.flush().await;
    let (mut ok, mut failed, mut last, mut in_order) = (Vec::new(), Vec::new(), 0, true);
    for (n, h) in handles {
        match tokio::time::timeout(Duration::from_secs(60), h).await {
            Ok(Ok(published)) => {
                in_order &= published.offset > last;
                last = published.offset;
                ok.push(n);
            }
            _ => failed.push(n),
        }
    }
    Ok(Published { ok, failed, offsets_in_order: in_order, metrics: p.metrics() })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[f64], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    json!(sorted[rank - 1])
}

/// Counts per 100 ms bin from 0 to `end_ms`.
fn bin100(times_ms: &[f64], end_ms: f64) -> Vec<u64> {
    let mut bins = vec![0u64; (end_ms.max(0.0) / 100.0).floor() as usize + 1];
    for t in times_ms {
        if let Some(b) = bins.get_mut((t / 100.0).floor() as usize) {
            *b += 1;
        }
    }
    bins
}

/// How `got` differs from `expected` (every `n` once, in order).
#[derive(Default)]
struct Violations {
    clients: u64,
    missing: u64,
    duplicates: u64,
    out_of_order: u64,
    unexpected: u64,
}

impl Violations {
    fn check(&mut self, got: &[u64], expected: &[u64]) {
        if got == expected {
            return;
        }
        self.clients += 1;
        let want: HashSet<u64> = expected.iter().copied().collect();
        let mut seen = HashSet::new();
        for n in got {
            if !seen.insert(*n) {
                self.duplicates += 1;
            } else if !want.contains(n) {
                self.unexpected += 1;
            }
        }
        self.missing += want.difference(&seen).count() as u64;
        self.out_of_order += got.windows(2).filter(|w| w[1] < w[0]).count() as u64;
    }
}

pub async fn run(o: Opts) -> Result<Value, String> {
    crate::sys::raise_nofile();
    let reconnect_cfg = match o.strategy.as_str() {
        "default" => tidings::ReconnectConfig::default(),
        s => tidings::ReconnectConfig { backoff: crate::storm::strategy(s)?, ..Default::default() },
    };
    let bin = server_bin()?;
    let http = reqwest::Client::new();

    let (_redis, redis_port) = start_redis().await?;
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(start_node(&bin, redis_port, &http).await?);
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.1).collect();
    let (_lb, lb_port) = start_haproxy(&ports, o.clients).await?;
    let lb = format!("http://127.0.0.1:{lb_port}");
    // HAProxy marks a server up after `rise 2` checks: wait for the three to take connections.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // C clients through the balancer, 100 connecting at a time.
    let t_connect = Instant::now();
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(usize, Ev, Instant)>();
    let sem = Arc::new(Semaphore::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..o.clients {
        let (sem, lb, tx, rc) = (sem.clone(), lb.clone(), ev_tx.clone(), reconnect_cfg);
        tasks.spawn(async move {
            let _permit = sem.acquire().await;
            (idx, client(idx, lb, rc, tx).await)
        });
    }
    drop(ev_tx);
    let mut clients: Vec<Option<(tidings::Tidings, Arc<Mutex<Log>>)>> = (0..o.clients).map(|_| None).collect();
    while let Some(r) = tasks.join_next().await {
        let (idx, c) = r.map_err(|e| e.to_string())?;
        clients[idx] = Some(c?);
    }
    let clients: Vec<(tidings::Tidings, Arc<Mutex<Log>>)> = clients.into_iter().flatten().collect();
    let connect_all_ms = ms(t_connect.elapsed());
    // Let the last connections settle, then drop what the initial connects reported.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while ev_rx.try_recv().is_ok() {}

    let mut before = Vec::new();
    for p in &ports {
        before.push(health(&http, *p).await.map_or(0, |h| h.1));
    }
    // The victim: the node with the most clients (round robin makes them about equal).
    let victim = (0..NODES).max_by_key(|i| before[*i]).unwrap_or(0);
    let on_victim = before[victim];

    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_stream(lb.clone(), o.rate, stop.clone()));
    tokio::time::sleep(Duration::from_millis(o.warm_ms)).await;

    // The surviving nodes' socket counts, every 100 ms from just before the kill.
    let sampling = Arc::new(AtomicBool::new(true));
    let t_kill = Instant::now();
    let sampler = {
        let (http, sampling) = (http.clone(), sampling.clone());
        let survivors: Vec<u16> = ports.iter().enumerate().filter(|(i, _)| *i != victim).map(|(_, p)| *p).collect();
        tokio::spawn(async move {
            let mut samples: Vec<(f64, u64)> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while sampling.load(Ordering::Relaxed) {
                tick.tick().await;
                let t = ms(t_kill.elapsed());
                let mut sum = 0;
                for p in &survivors {
                    sum += health(&http, *p).await.map_or(0, |h| h.1);
                }
                samples.push((t, sum));
            }
            samples
        })
    };
    nodes[victim].0.kill().await;

    // Until every client that lost its node is connected again and caught up.
    let mut st = vec![St::default(); clients.len()];
    let mut attempts_ms: Vec<f64> = Vec::new();
    let mut connects_ms: Vec<f64> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let limit = Duration::from_secs(if o.clients <= 100 { 30 } else { 90 });
    let deadline = t_kill + limit;
    loop {
        let downs = st.iter().filter(|s| s.down.is_some()).count() as u64;
        let all_down = downs >= on_victim || t_kill.elapsed() > Duration::from_secs(5);
        if downs > 0 && all_down && st.iter().filter(|s| s.down.is_some()).all(St::settled) {
            break;
        }
        if Instant::now() > deadline {
            let back = st.iter().filter(|s| s.down.is_some() && s.settled()).count();
            failures.push(format!(
                "only {back} of the {downs} disconnected clients were back and caught up within {limit:?}"
            ));
            break;
        }
        let Ok(Some((idx, ev, t))) = tokio::time::timeout(Duration::from_millis(100), ev_rx.recv()).await else {
            continue;
        };
        let Some(s) = st.get_mut(idx) else { continue };
        match ev {
            Ev::Down => {
                s.down.get_or_insert(t);
                s.is_down = true;
                s.downs += 1;
                s.caught_up = None;
            }
            Ev::Attempt(at) => {
                s.attempts += 1;
                attempts_ms.push(ms(at.saturating_duration_since(t_kill)));
            }
            Ev::Connected => {
                s.is_down = false;
                s.connected = Some(t);
                connects_ms.push(ms(t - t_kill));
            }
            Ev::CatchingUp => s.catching_up = Some(t),
            Ev::CaughtUp => s.caught_up = Some(t),
            Ev::GaveUp => s.gave_up = true,
        }
    }
    let t_settled = Instant::now();
    tokio::time::sleep(Duration::from_millis(o.tail_ms)).await;
    stop.store(true, Ordering::Relaxed);
    sampling.store(false, Ordering::Relaxed);
    let published = publisher.await.map_err(|e| e.to_string())??;
    let samples = sampler.await.map_err(|e| e.to_string())?;
    // Late notices (a client that went down again after the storm) still count.
    while let Ok((idx, ev, _)) = ev_rx.try_recv() {
        if let (Some(s), Ev::Down) = (st.get_mut(idx), ev) {
            s.downs += 1;
        }
    }

    // Every client gets every acknowledged event: wait for the last ones, then for duplicates.
    let expected = &published.ok;
    let have_all = || clients.iter().all(|(_, l)| l.lock().map_or(true, |l| l.ns.len() >= expected.len()));
    let wait_end = Instant::now() + Duration::from_secs(30);
    while !have_all() && Instant::now() < wait_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut v = Violations::default();
    let (mut bad, mut from_feed) = (0, 0);
    for (_, l) in &clients {
        let l = l.lock().unwrap_or_else(|p| p.into_inner());
        v.check(&l.ns, expected);
        bad += l.bad;
        from_feed += l.from_feed;
    }
    let mut after = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        after.push(if i == victim { Value::Null } else { json!(health(&http, *p).await.map_or(0, |h| h.1)) });
    }

    let moved: Vec<&St> = st.iter().filter(|s| s.down.is_some()).collect();
    let since_kill = |t: Option<Instant>| t.map(|t| ms(t - t_kill));
    let mut reconnect: Vec<f64> = moved.iter().filter_map(|s| since_kill(s.connected)).collect();
    let mut caught: Vec<f64> = moved.iter().filter_map(|s| since_kill(s.caught_up)).collect();
    let mut catch_up: Vec<f64> = moved
        .iter()
        .filter_map(|s| Some(ms(s.caught_up?.saturating_duration_since(s.catching_up.or(s.connected)?))))
        .collect();
    let mut attempts: Vec<f64> = moved.iter().map(|s| f64::from(s.attempts)).collect();
    for x in [&mut reconnect, &mut caught, &mut catch_up, &mut attempts] {
        x.sort_by(f64::total_cmp);
    }
    let end_ms = ms(t_settled - t_kill);
    let connect_bins = bin100(&connects_ms, end_ms);
    attempts_ms.retain(|a| *a <= end_ms);
    let attempt_bins = bin100(&attempts_ms, end_ms);
    // The surviving nodes' view: the largest rise of their socket count between two samples
    // (~100 ms apart), per 100 ms.
    let node_peak = samples
        .windows(2)
        .map(|w| (w[1].1.saturating_sub(w[0].1)) as f64 * 100.0 / (w[1].0 - w[0].0).max(100.0))
        .fold(0.0, f64::max);
    let gave_up = moved.iter().filter(|s| s.gave_up).count();
    let again = moved.iter().filter(|s| s.downs > 1).count();
    let missing_down = on_victim.saturating_sub(moved.len() as u64);

    if moved.is_empty() {
        failures.push("no client lost its connection when the node was killed".into());
    }
    if missing_down > 0 {
        failures.push(format!("{on_victim} clients were on the killed node but {} disconnected", moved.len()));
    }
    if v.clients > 0 || bad > 0 {
        failures.push(format!(
            "{} clients did not get every event once and in order ({} missing, {} duplicates, {} out of order, {} unexpected, {} undecodable)",
            v.clients, v.missing, v.duplicates, v.out_of_order, v.unexpected, bad
        ));
    }
    if gave_up > 0 {
        failures.push(format!("{gave_up} clients' feed gave up"));
    }
    if !published.failed.is_empty() || !published.offsets_in_order {
        failures.push(format!(
            "publisher: {} events failed, offsets in order: {}",
            published.failed.len(),
            published.offsets_in_order
        ));
    }
    drop(clients);
    Ok(json!({
        "strategy": o.strategy,
        "backoff": format!("{:?}", reconnect_cfg.backoff),
        "clients": o.clients,
        "nodes": NODES,
        "publish_rate_per_s": o.rate,
        "connect_all_ms": connect_all_ms,
        "sockets_before_kill": before,
        "killed_node": victim,
        "clients_on_killed_node": on_victim,
        "clients_disconnected": moved.len(),
        "clients_disconnected_again": again,
        "all_reconnected_after_kill_ms": reconnect.last(),
        "all_caught_up_after_kill_ms": caught.last(),
        "reconnect_ms_p50": pct(&reconnect, 0.5),
        "reconnect_ms_p90": pct(&reconnect, 0.9),
        "caught_up_ms_p50": pct(&caught, 0.5),
        "caught_up_ms_p90": pct(&caught, 0.9),
        "catch_up_duration_ms_p50": pct(&catch_up, 0.5),
        "catch_up_duration_ms_max": catch_up.last(),
        "attempts_per_client": attempts.iter().sum::<f64>() / attempts.len().max(1) as f64,
        "attempts_max": attempts.last(),
        "peak_connects_per_100ms": connect_bins.iter().copied().max().unwrap_or(0),
        "peak_node_connects_per_100ms": node_peak,
        "peak_attempts_per_100ms": attempt_bins.iter().copied().max().unwrap_or(0),
        "connects_per_100ms": connect_bins,
        "attempts_per_100ms": attempt_bins,
        "node_sockets_samples": samples.iter().map(|(t, n)| json!([t.round(), n])).collect::<Vec<_>>(),
        "sockets_after": after,
        "events_published": published.ok.len() + published.failed.len(),
        "events_acknowledged": published.ok.len(),
        "publisher": {
            "published": published.metrics.published,
            "retried": published.metrics.retried,
            "failed": published.metrics.failed,
            "offsets_in_order": published.offsets_in_order,
        },
        "events_from_feed": from_feed,
        "events_from_feed_per_moved_client": from_feed as f64 / moved.len().max(1) as f64,
        "feed_gave_up": gave_up,
        "violations": {
            "clients": v.clients,
            "missing": v.missing,
            "duplicates": v.duplicates,
            "out_of_order": v.out_of_order,
            "unexpected": v.unexpected,
            "undecodable": bad,
        },
        "tools": { "haproxy": version("haproxy", "-v").await, "redis": version("redis-server", "--version").await },
        "failures": failures,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_without_padding() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn violations_are_counted() {
        let mut v = Violations::default();
        v.check(&[0, 1, 2], &[0, 1, 2]);
        assert_eq!(v.clients, 0);
        v.check(&[0, 2, 1, 1, 7], &[0, 1, 2, 3]);
        assert_eq!((v.clients, v.missing, v.duplicates, v.out_of_order, v.unexpected), (1, 1, 1, 1, 1));
    }
}
