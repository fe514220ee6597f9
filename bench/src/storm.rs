//! Reconnect storm: C Tidings clients connected to a server child process that is killed
//! (SIGKILL) and respawned on the same port after `down_ms`. Records, per client, every
//! reconnection attempt (the time a `Reconnecting { delay }` notice says the attempt will start)
//! and every successful reconnection, and reports the time until all are back and the attempts
//! per 100 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::spawn::Server;

enum Ev {
    Attempt(Instant),
    Connected(Instant),
}

pub fn strategy(name: &str) -> Result<tidings::BackoffStrategy, String> {
    match name {
        // socket.io-client's defaults (reconnectionDelay 1000, reconnectionDelayMax 5000, randomizationFactor 0.5).
        "socketio" => {
            Ok(tidings::BackoffStrategy::SocketIo { min_ms: 1000, max_ms: 5000, factor: 2.0, randomization: 0.5 })
        }
        // The same envelope with full jitter: uniform in [0, min(5000, 1000 * 2^attempt)].
        "full-jitter" => Ok(tidings::BackoffStrategy::FullJitter { min_ms: 1000, max_ms: 5000, factor: 2.0 }),
        other => Err(format!("unknown strategy {other}")),
    }
}

pub async fn run(server_kind: &str, strategy_name: &str, clients: usize, down_ms: u64) -> Result<Value, String> {
    crate::sys::raise_nofile();
    let backoff = strategy(strategy_name)?;
    let mut server = Server::spawn(server_kind, 0).await?;
    let port = server.port;
    let url = format!("http://127.0.0.1:{port}");

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(usize, Ev)>();
    let sem = Arc::new(Semaphore::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..clients {
        let (sem, url) = (sem.clone(), url.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire().await;
            let c = tidings::Tidings::builder(&url)
                .transports(tidings::TransportConfig::only(tidings::TransportKind::WebSocket))
                .reconnect(tidings::ReconnectConfig { backoff, ..Default::default() })
                .auth(json!({ "mode": "idle" }))
                .connect()
                .await;
            (idx, c)
        });
    }
    let mut handles = Vec::with_capacity(clients);
    while let Some(r) = tasks.join_next().await {
        let (idx, c) = r.map_err(|e| e.to_string())?;
        let c = c.map_err(|e| format!("initial connect: {e}"))?;
        let mut notices = c.notices();
        let tx = ev_tx.clone();
        tokio::spawn(async move {
            while let Some(n) = notices.recv().await {
                let now = Instant::now();
                let ev = match n {
                    tidings::Notice::State(tidings::ConnectionState::Reconnecting { delay, .. }) => {
                        Ev::Attempt(now + delay)
                    }
                    tidings::Notice::State(tidings::ConnectionState::Connected { .. }) => Ev::Connected(now),
                    _ => continue,
                };
                if tx.send((idx, ev)).is_err() {
                    return;
                }
            }
        });
        handles.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let t_kill = Instant::now();
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(down_ms)).await;
    let server2 = Server::spawn(server_kind, port).await?;
    let t_up = Instant::now();

    let mut back = vec![false; clients];
    let mut n_back = 0;
    let mut attempts: Vec<f64> = Vec::new();
    let mut connects: Vec<f64> = Vec::new();
    let mut last_connect = t_kill;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while n_back < clients {
        let Ok(Some((idx, ev))) = tokio::time::timeout_at(deadline, ev_rx.recv()).await else {
            return Err(format!("only {n_back} of {clients} clients reconnected within 90 s"));
        };
        match ev {
            Ev::Attempt(t) if t >= t_kill => attempts.push((t - t_kill).as_secs_f64() * 1e3),
            Ev::Connected(t) if t > t_kill => {
                connects.push((t - t_kill).as_secs_f64() * 1e3);
                if let Some(b) = back.get_mut(idx).filter(|b| !**b) {
                    *b = true;
                    n_back += 1;
                    last_connect = t;
                }
            }
            _ => {}
        }
    }
    // Attempts already scheduled but not yet due are not in the storm any more: all are back.
    let last_ms = (last_connect - t_kill).as_secs_f64() * 1e3;
    attempts.retain(|a| *a <= last_ms);
    attempts.sort_by(f64::total_cmp);
    connects.sort_by(f64::total_cmp);
    let bins = bin100(&attempts, last_ms);
    let up_ms = (t_up - t_kill).as_secs_f64() * 1e3;
    let peak_after_up = bins.iter().enumerate().filter(|(i, _)| (*i as f64) * 100.0 >= up_ms).map(|(_, c)| *c).max();
    drop(handles);
    drop(server2);
    Ok(json!({
        "strategy": strategy_name,
        "backoff": format!("{backoff:?}"),
        "server": server_kind,
        "clients": clients,
        "down_ms": down_ms,
        "restart_at_ms": up_ms,
        "all_back_after_kill_ms": last_ms,
        "all_back_after_restart_ms": last_ms - up_ms,
        "attempts_total": attempts.len(),
        "attempts_per_client": attempts.len() as f64 / clients as f64,
        "peak_attempts_per_100ms": bins.iter().copied().max().unwrap_or(0),
        "peak_attempts_per_100ms_after_restart": peak_after_up.unwrap_or(0),
        "peak_connects_per_100ms": bin100(&connects, last_ms).iter().copied().max().unwrap_or(0),
        "attempts_per_100ms": bins,
    }))
}

/// Counts per 100 ms bin from 0 to `end_ms`.
fn bin100(times_ms: &[f64], end_ms: f64) -> Vec<u64> {
    let mut bins = vec![0u64; (end_ms / 100.0).floor() as usize + 1];
    for t in times_ms {
        if let Some(b) = bins.get_mut((t / 100.0).floor() as usize) {
            *b += 1;
        }
    }
    bins
}
