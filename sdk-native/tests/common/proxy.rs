//! A TCP proxy that injects network faults between a client and a real server (docs/RELIABILITY.md,
//! "Fault injection"): pass through, add latency (fixed, or with jitter), blackhole (connections stay open, no RST,
//! nothing is forwarded, so each side sees only silence, and TCP backpressure once its buffers
//! fill), limit the bandwidth, reset every connection (RST) mid-stream, and reset every WebSocket
//! handshake (an upgrade that never works).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward at once.
    Pass,
    /// Forward each chunk after this delay (each direction on its own).
    Latency(Duration),
    /// Forward each chunk after `base` plus a random part of `spread` (each direction on its
    /// own; order kept: a chunk waits for the one before it).
    Jitter { base: Duration, spread: Duration },
    /// Forward nothing and stop reading; connections stay open (a half-open network).
    Blackhole,
    /// At most this many bytes per second, each direction on its own (a slow link): reads are
    /// small and each is followed by the time its bytes take at that rate.
    Bandwidth(u32),
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    /// Bumped to reset every open connection.
    resets: watch::Sender<u64>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// While set, a connection whose first request asks for a WebSocket is reset at once.
    cut_upgrades: Arc<std::sync::atomic::AtomicBool>,
    /// WebSocket handshakes reset so far.
    cut: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1 (ephemeral port) in front of `upstream_port` on 127.0.0.1.
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (resets, resets_rx) = watch::channel(0u64);
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let cut_upgrades = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut = cut_upgrades.clone();
        let cut_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cuts = cut_count.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (mode, resets, cut, cuts) = (mode_rx.clone(), resets_rx.clone(), cut.clone(), cuts.clone());
                tokio::spawn(async move {
                    // The first chunk of the request: reset a WebSocket handshake while cutting.
                    let mut first = vec![0u8; 4096];
                    let n = match client.read(&mut first).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let upgrade = first[..n].windows(19).any(|w| w == b"transport=websocket");
                    if upgrade && cut.load(std::sync::atomic::Ordering::SeqCst) {
                        cuts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let (_, w) = client.into_split();
                        return reset(w);
                    }
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    if server.write_all(&first[..n]).await.is_err() {
                        return;
                    }
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pump(cr, sw, mode.clone(), resets.clone()));
                    let down = tokio::spawn(pump(sr, cw, mode, resets));
                    let _ = tokio::join!(up, down);
                });
            }
        });
        FaultProxy { port, mode, resets, accepted, cut_upgrades, cut: cut_count, task }
    }

    /// The proxied server's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Resets (RST) every connection open now.
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// While `cut`, every WebSocket handshake (a connection whose request names
    /// `transport=websocket`) is reset before it reaches the server: an upgrade that never
    /// works, as behind a proxy that does not pass WebSockets.
    pub fn cut_websocket_upgrades(&self, cut: bool) {
        self.cut_upgrades.store(cut, std::sync::atomic::Ordering::SeqCst);
    }

    /// WebSocket handshakes reset so far.
    pub fn upgrades_cut(&self) -> usize {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset_all();
    }
}

/// Copies `from` to `to` under the proxy's mode until either side ends or a reset.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    mut resets: watch::Receiver<u64>,
) {
    resets.borrow_and_update();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Under a bandwidth limit, read 50 ms worth at a time so the link stays smooth.
        let cap = match *mode.borrow() {
            Mode::Bandwidth(rate) => (rate as usize / 20).clamp(256, buf.len()),
            _ => buf.len(),
        };
        let n = tokio::select! {
            r = from.read(&mut buf[..cap]) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = resets.changed() => return reset(to),
        };
        // Hold the chunk while blackholed; delay it under latency.
        loop {
            let m = *mode.borrow_and_update();
            match m {
                Mode::Pass => break,
                Mode::Bandwidth(rate) => {
                    let d = Duration::from_secs_f64(n as f64 / f64::from(rate.max(1)));
                    tokio::select! {
                        () = tokio::time::sleep(d) => break,
                        _ = resets.changed() => return reset(to),
                    }
                }
                Mode::Latency(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => break,
                        _ = resets.changed() => return reset(to),
                    }
                }
                Mode::Jitter { base, spread } => {
                    let d = base + spread.mul_f64(rand::random::<f64>());
                    tokio::select! {
                        () = tokio::time::sleep(d) => break,
                        _ = resets.changed() => return reset(to),
                    }
                }
                Mode::Blackhole => {
                    tokio::select! {
                        r = mode.changed() => if r.is_err() { return },
                        _ = resets.changed() => return reset(to),
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Closes with an RST instead of a FIN.
fn reset(to: OwnedWriteHalf) {
    // Deprecated because a non-zero linger blocks the thread on drop; a zero one never does.
    #[allow(deprecated)]
    let _ = to.as_ref().set_linger(Some(Duration::ZERO));
    drop(to);
}
