//! Tidings benchmark harness. `bash scripts/bench.sh` builds it and runs `tidings-bench run`.
//!
//! ```text
//! tidings-bench run [--smoke] [--out DIR] [--node-dir DIR] [--browser-dir DIR] [--only a,b]
//!                                                            every section (or those named), writes
//!                                                            DIR/results.{json,md} + PNGs
//! tidings-bench server raw|sioxide PORT                       a server (child process)
//! tidings-bench client tidings|rust_socketio|floor throughput|rtt|idle URL N
//! tidings-bench storm raw|sioxide socketio|full-jitter CLIENTS DOWN_MS
//! tidings-bench cluster-storm default|socketio|full-jitter CLIENTS RATE WARM_MS TAIL_MS
//! ```
//! Each server and client runs in its own process (the harness re-executes itself), so CPU time
//! (getrusage) and RSS are those of one client alone. The browser section runs
//! `node bench/browser/run.mjs URL N REPEATS` (headless Chromium, Tidings and socket.io-client in
//! one page). The `cluster-storm` section runs Redis, three `tidings-example-server` nodes (found
//! next to this executable, or `BENCH_SERVER_BIN`) and HAProxy as child processes of its own
//! child (src/cluster.rs). With `--only`, the sections not run are kept from the existing DIR/results.json.

mod clients;
mod cluster;
mod probe;
mod report;
mod server;
mod spawn;
mod storm;
mod sys;
mod task;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::spawn::{Server, run_client};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result: Result<(), String> = match arg(0) {
        "server" => rt().block_on(server::run(arg(1), arg(2).parse().unwrap_or(0))),
        "client" => {
            let n = arg(4).parse().unwrap_or(0);
            rt().block_on(clients::run(arg(1), arg(2), arg(3), n)).map(|v| println!("{v}"))
        }
        "storm" => {
            let c = arg(3).parse().unwrap_or(1000);
            let down = arg(4).parse().unwrap_or(2000);
            rt().block_on(storm::run(arg(1), arg(2), c, down)).map(|v| println!("{v}"))
        }
        "cluster-storm" => {
            let n = |i: usize, d: u64| arg(i).parse().unwrap_or(d);
            let o = cluster::Opts {
                strategy: arg(1).to_string(),
                clients: n(2, 1000) as usize,
                rate: n(3, 20),
                warm_ms: n(4, 2000),
                tail_ms: n(5, 2000),
            };
            rt().block_on(cluster::run(o)).map(|v| println!("{v}"))
        }
        "run" => rt().block_on(run_all(&args[1..])),
        _ => Err("usage: tidings-bench run [--smoke] [--out DIR] [--node-dir DIR] (see src/main.rs)".into()),
    };
    if let Err(e) = result {
        eprintln!("tidings-bench {}: {e}", arg(0));
        std::process::exit(1);
    }
}

/// The runtime every process uses: tokio's multi-threaded default (one worker per core), as
/// `#[tokio::main]` gives an application.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime") // cannot fail on Linux
}

/// Sizes of one run.
#[derive(Debug, Clone, serde::Serialize)]
struct Sizes {
    events: u64,
    acks: u64,
    idle_tidings: u64,
    idle_rust_socketio: u64,
    idle_node: u64,
    storm_clients: u64,
    storm_down_ms: u64,
    cluster_storm_clients: u64,
    cluster_storm_rate: u64,
    repeats: usize,
    browser_events: u64,
    browser_repeats: u64,
}

impl Sizes {
    fn new(smoke: bool) -> Sizes {
        let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        let (e, a, i, s, d, r) =
            if smoke { (2_000, 200, 100, 50, 500, 1) } else { (200_000, 10_000, 10_000, 1_000, 2_000, 3) };
        let (be, br) = if smoke { (200, 1) } else { (100_000, 5) };
        let cs = if smoke { 30 } else { 1_000 };
        Sizes {
            events: env("BENCH_EVENTS", e),
            acks: env("BENCH_ACKS", a),
            idle_tidings: env("BENCH_IDLE", i),
            idle_rust_socketio: env("BENCH_IDLE_RSIO", env("BENCH_IDLE", i)),
            idle_node: env("BENCH_IDLE_NODE", env("BENCH_IDLE", i)),
            storm_clients: env("BENCH_STORM_CLIENTS", s),
            storm_down_ms: env("BENCH_STORM_DOWN_MS", d),
            cluster_storm_clients: env("BENCH_CLUSTER_STORM_CLIENTS", cs).max(1),
            cluster_storm_rate: env("BENCH_CLUSTER_STORM_RATE", 20).max(1),
            repeats: env("BENCH_REPEATS", r as u64).max(1) as usize,
            browser_events: env("BENCH_BROWSER_EVENTS", be).max(1),
            browser_repeats: env("BENCH_BROWSER_REPEATS", br).max(1),
        }
    }
}

const CLIENTS: [&str; 4] = ["floor", "tidings", "rust_socketio", "node"];
const SERVERS: [&str; 2] = ["raw", "sioxide"];
/// The sections of a run, in order; `--only` picks some of them.
const SECTIONS: [&str; 6] = ["throughput", "rtt", "memory", "storm", "cluster-storm", "browser"];

/// The `Sizes` fields each section uses (kept together with the section when merging).
fn section_sizes(section: &str) -> &'static [&'static str] {
    match section {
        "throughput" => &["events", "repeats"],
        "rtt" => &["acks"],
        "memory" => &["idle_tidings", "idle_rust_socketio", "idle_node"],
        "storm" => &["storm_clients", "storm_down_ms"],
        "cluster-storm" => &["cluster_storm_clients", "cluster_storm_rate"],
        "browser" => &["browser_events", "browser_repeats"],
        _ => &[],
    }
}

struct Ctx {
    exe: PathBuf,
    node_dir: PathBuf,
    browser_dir: PathBuf,
    failures: Vec<String>,
}

impl Ctx {
    fn client_cmd(&self, kind: &str, mode: &str, url: &str, n: u64) -> Command {
        if kind == "node" {
            let mut c = Command::new("node");
            if mode == "idle" {
                c.arg("--expose-gc").arg("--max-old-space-size=4096");
            }
            c.arg(self.node_dir.join("client.mjs")).args([mode, url, &n.to_string()]);
            let task = serde_json::to_string(&task::TaskCreated::sample(7)).unwrap_or_default();
            c.env("BENCH_TASK_JSON", task);
            c
        } else {
            let mut c = Command::new(&self.exe);
            c.args(["client", kind, mode, url, &n.to_string()]);
            c
        }
    }

    async fn client(&mut self, label: &str, cmd: Command, timeout: Duration) -> Option<Value> {
        eprintln!("  {label} …");
        match run_client(cmd, timeout).await {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("  {label} FAILED: {e}");
                self.failures.push(format!("{label}: {e}"));
                None
            }
        }
    }
}

async fn run_all(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let out = PathBuf::from(opt("--out").unwrap_or_else(|| "bench/results".into()));
    let only = opt("--only").unwrap_or_else(|| SECTIONS.join(","));
    let selected: Vec<&str> = only.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = selected.iter().find(|s| !SECTIONS.contains(s)) {
        return Err(format!("--only: no section {bad:?} (sections: {})", SECTIONS.join(", ")));
    }
    let run = |section: &str| selected.contains(&section);
    let node_dir = PathBuf::from(opt("--node-dir").unwrap_or_else(|| "bench/node".into()));
    let browser_dir = PathBuf::from(opt("--browser-dir").unwrap_or_else(|| "bench/browser".into()));
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    sys::raise_nofile();
    let sizes = Sizes::new(smoke);
    eprintln!("tidings-bench: {sizes:?}");
    let mut ctx =
        Ctx { exe: std::env::current_exe().map_err(|e| e.to_string())?, node_dir, browser_dir, failures: Vec::new() };
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut results = json!({
        "smoke": smoke,
        "unix_time": started,
        "machine": sys::machine(),
        "sizes": sizes,
        "versions": {
            "tidings": "path ../sdk-native",
            "rust_socketio": "0.6.0 (async, websocket transport)",
            "socket.io-client": "4.8.4 (websocket transport), node ".to_string() + &node_version().await,
            "socketioxide": "0.18.9 (axum 0.8)",
            "cluster": "tidings-example-server (release, --redis-url) x3, redis-server and haproxy from the system",
            "floor": "tokio-tungstenite 0.30 + serde_json",
            "browser": "tidings npm/dist (scripts/build-wasm.sh) and socket.io-client 4.8.4 (esbuild bundle) in headless Chromium",
        },
        "run_at": {},
    });

    if run("throughput") {
        eprintln!("== receive throughput: {} events of ~330 B", sizes.events);
        let mut rows = Vec::new();
        for server_kind in SERVERS {
            let server = Server::spawn(server_kind, 0).await?;
            let url = format!("http://127.0.0.1:{}", server.port);
            for kind in CLIENTS.into_iter().chain(["cli"]) {
                let mut runs = Vec::new();
                for rep in 0..sizes.repeats {
                    let s0 = sys::proc_cpu_time(server.pid);
                    let label = format!("throughput {kind} vs {server_kind} #{rep}");
                    let cmd = ctx.client_cmd(kind, "throughput", &url, sizes.events);
                    if let Some(mut v) = ctx.client(&label, cmd, Duration::from_secs(300)).await {
                        let server_cpu = (sys::proc_cpu_time(server.pid) - s0).as_secs_f64();
                        v["server_cpu_s"] = json!(server_cpu);
                        runs.push(v);
                    }
                }
                if !runs.is_empty() {
                    rows.push(report::throughput_row(kind, server_kind, runs));
                }
            }
        }
        results["throughput"] = Value::Array(rows);
    }

    if run("rtt") {
        eprintln!("== round trip: {} sequential emit-with-ack", sizes.acks);
        let mut rows = Vec::new();
        for server_kind in SERVERS {
            let server = Server::spawn(server_kind, 0).await?;
            let url = format!("http://127.0.0.1:{}", server.port);
            for kind in CLIENTS {
                let cmd = ctx.client_cmd(kind, "rtt", &url, sizes.acks);
                if let Some(v) =
                    ctx.client(&format!("rtt {kind} vs {server_kind}"), cmd, Duration::from_secs(300)).await
                {
                    rows.push(report::rtt_row(kind, server_kind, &v));
                }
            }
        }
        results["rtt"] = Value::Array(rows);
    }

    if run("memory") {
        let mut rows = Vec::new();
        for (kind, n) in
            [("tidings", sizes.idle_tidings), ("rust_socketio", sizes.idle_rust_socketio), ("node", sizes.idle_node)]
        {
            eprintln!("== memory: {n} idle {kind} connections");
            // A fresh server per client kind, in its own process: only the client's RSS is counted.
            let server = Server::spawn("raw", 0).await?;
            let url = format!("http://127.0.0.1:{}", server.port);
            let cmd = ctx.client_cmd(kind, "idle", &url, n);
            if let Some(v) = ctx.client(&format!("idle {kind} x{n}"), cmd, Duration::from_secs(600)).await {
                rows.push(report::memory_row(kind, &v));
            }
            drop(server);
            // Let the closed connections leave the kernel before the next batch.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        results["memory"] = Value::Array(rows);
    }

    if run("storm") {
        let mut rows = Vec::new();
        for strategy in ["socketio", "full-jitter"] {
            eprintln!("== reconnect storm: {} clients, {strategy}", sizes.storm_clients);
            let mut cmd = Command::new(&ctx.exe);
            cmd.args(["storm", "raw", strategy, &sizes.storm_clients.to_string(), &sizes.storm_down_ms.to_string()]);
            if let Some(v) = ctx.client(&format!("storm {strategy}"), cmd, Duration::from_secs(300)).await {
                rows.push(v);
            }
        }
        results["storm"] = Value::Array(rows);
    }

    if run("cluster-storm") {
        let (c, rate) = (sizes.cluster_storm_clients, sizes.cluster_storm_rate);
        // Publishing before the kill and after the last client caught up.
        let (warm, tail) = if smoke { (500, 300) } else { (2_000, 2_000) };
        eprintln!("== reconnect storm across nodes: {c} clients over 3 nodes, {rate} events/s, one node killed");
        let mut rows = Vec::new();
        for strategy in ["default"] {
            let mut cmd = Command::new(&ctx.exe);
            cmd.args(["cluster-storm", strategy, &c.to_string(), &rate.to_string()]);
            cmd.args([warm.to_string(), tail.to_string()]);
            let label = format!("cluster-storm {strategy}");
            if let Some(v) = ctx.client(&label, cmd, Duration::from_secs(300)).await {
                // The run measured, but a client missed, repeated or reordered an event, or did
                // not come back: keep the row, and fail the run.
                for f in v["failures"].as_array().into_iter().flatten() {
                    let f = f.as_str().unwrap_or("");
                    eprintln!("  {label} FAILED: {f}");
                    ctx.failures.push(format!("{label}: {f}"));
                }
                rows.push(v);
            }
        }
        results["cluster-storm"] = Value::Array(rows);
    }

    if run("browser") {
        let (n, reps) = (sizes.browser_events, sizes.browser_repeats);
        eprintln!(
            "== browser: {n} `task.created` events to a JS callback in headless Chromium, {reps} runs per client"
        );
        // Generous: three clients, a warm-up and `reps` runs each, at >= 2,000 events/s.
        let timeout = Duration::from_secs(120 + 3 * n * (reps + 1) / 2_000);
        let mut rows = Vec::new();
        let mut browser = json!({});
        for server_kind in SERVERS {
            let server = Server::spawn(server_kind, 0).await?;
            let url = format!("http://127.0.0.1:{}", server.port);
            let mut cmd = Command::new("node");
            cmd.arg(ctx.browser_dir.join("run.mjs")).args([url, n.to_string(), reps.to_string()]);
            if let Some(v) = ctx.client(&format!("browser vs {server_kind}"), cmd, timeout).await {
                rows.extend(report::browser_rows(server_kind, &v));
                browser["chromium"] = v["chromium"].clone();
                browser["bundles"] = v["bundles"].clone();
            }
        }
        browser["rows"] = Value::Array(rows);
        results["browser"] = browser;
    }

    for section in SECTIONS.iter().filter(|s| run(s)) {
        results["run_at"][*section] = json!(started);
    }
    // A subset keeps the other sections (and their sizes) of the previous run in the same place.
    let json_path = out.join("results.json");
    if selected.len() < SECTIONS.len()
        && let Some(prev) =
            std::fs::read_to_string(&json_path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        merge_previous(&mut results, &prev, &selected);
    }
    results["failures"] = json!(ctx.failures);
    std::fs::write(&json_path, serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let md = report::markdown(&results);
    std::fs::write(out.join("results.md"), &md).map_err(|e| e.to_string())?;
    if let Err(e) = report::plots(&results, &out) {
        eprintln!("warning: plots not written: {e}");
    }
    println!("{md}");
    eprintln!("wrote {} and results.md", json_path.display());
    if ctx.failures.is_empty() { Ok(()) } else { Err(format!("{} client run(s) failed", ctx.failures.len())) }
}

/// Copies into `results` the sections of `prev` that this run did not measure, with their sizes
/// and the time they were run.
fn merge_previous(results: &mut Value, prev: &Value, selected: &[&str]) {
    for section in SECTIONS.iter().filter(|s| !selected.contains(s)) {
        let Some(v) = prev.get(*section) else { continue };
        results[*section] = v.clone();
        for k in section_sizes(section) {
            if let Some(size) = prev["sizes"].get(*k) {
                results["sizes"][*k] = size.clone();
            }
        }
        let when = prev["run_at"].get(*section).or_else(|| prev.get("unix_time")).cloned().unwrap_or(Value::Null);
        results["run_at"][*section] = when;
    }
}

async fn node_version() -> String {
    match Command::new("node").arg("--version").output().await {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(_) => "missing".into(),
    }
}
