//! A hostile server (docs/RELIABILITY.md, "A hostile server"): a real TCP server in this process
//! that speaks just enough HTTP and WebSocket to get a client connected, then misbehaves in one
//! way per test: a frame announcing a gigabyte, a frame that never ends, a flood of tiny packets,
//! absurd heartbeat and payload figures, truncated handshakes, an HTTP answer that trickles in
//! byte by byte (slow loris), a polling body that never ends. Each time the client reports a
//! typed error (never a panic), keeps its memory bounded, and recovers: the next connection,
//! which the server serves properly, delivers its event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::within;
use futures_util::StreamExt;
use serde_json::Value;
use tidings::{
    BackoffStrategy, ConnectionState, Fault, HttpError, Notice, Notices, ReconnectConfig, Tidings, TransportConfig,
    TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const T: Duration = Duration::from_secs(20);

/// The flood test measures the process's RSS, which every test of this binary shares: it takes a
/// write turn and runs alone; the others share read turns.
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// What the server does on one WebSocket connection after the 101.
#[derive(Clone, Copy, Debug)]
enum Ws {
    /// A proper session: handshake (300 ms + 300 ms heartbeat), CONNECT ack, `42["ok", n]` (n: the
    /// connection's number, from 1), then a ping every 300 ms.
    Serve,
    /// A proper session, then a frame header announcing 1 GiB and a few bytes of it.
    GiantFrame,
    /// A proper session, then a 1 MiB frame whose bytes come one per 100 ms: it never ends.
    EndlessFrame,
    /// A proper session, then `count` tiny events `42["t",i]` as fast as TCP takes them, then a
    /// last `42["done"]`, then pings.
    Flood(u32),
    /// This handshake text instead of a proper one, then nothing but silence.
    Handshake(&'static str),
}

/// A server whose `n`-th WebSocket connection (from 1) gets `plan(n)`.
struct Hostile {
    port: u16,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    async fn start(plan: fn(usize) -> Ws) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let _ = serve_ws(stream, n, plan(n)).await;
                });
            }
        });
        Self { port, connections, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads an HTTP request head (up to the blank line; at most 16 KiB).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 || head.len() > 16 << 10 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// A server-to-client frame (unmasked, FIN set) with this opcode and payload.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    f.extend(header_len(payload.len() as u64));
    f.extend_from_slice(payload);
    f
}

/// The length part of a frame header for an unmasked payload of `len` bytes.
fn header_len(len: u64) -> Vec<u8> {
    match len {
        0..=125 => vec![len as u8],
        126..=0xFFFF => [vec![126], (len as u16).to_be_bytes().to_vec()].concat(),
        _ => [vec![127], len.to_be_bytes().to_vec()].concat(),
    }
}

fn text(s: &str) -> Vec<u8> {
    frame(0x1, s.as_bytes())
}

const HANDSHAKE: &str = r#"0{"sid":"hostile","upgrades":[],"pingInterval":300,"pingTimeout":300,"maxPayload":1000000}"#;
const HANDSHAKE_DEFAULT_HEARTBEAT: &str =
    r#"0{"sid":"hostile","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

async fn serve_ws(mut stream: TcpStream, n: usize, act: Ws) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let key = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let accept = derive_accept_key(key.as_bytes());
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    // Whatever the client sends is read and dropped (its frames are masked; nothing here needs them).
    tokio::spawn(async move {
        let mut sink = vec![0u8; 64 << 10];
        while matches!(rd.read(&mut sink).await, Ok(k) if k > 0) {}
    });
    if let Ws::Handshake(h) = act {
        wr.write_all(&text(h)).await?;
        tokio::time::sleep(Duration::from_secs(60)).await;
        return Ok(());
    }
    // The flood's consumer is slower than the wire: socket.io's default heartbeat (25 s + 20 s),
    // so that the pings queued behind the flood arrive in time (docs/RELIABILITY.md, "The
    // heartbeat while a consumer is stalled").
    let handshake = if matches!(act, Ws::Flood(_)) { HANDSHAKE_DEFAULT_HEARTBEAT } else { HANDSHAKE };
    wr.write_all(&text(handshake)).await?;
    wr.write_all(&text(r#"40{"sid":"hostile-socket"}"#)).await?;
    wr.write_all(&text(&format!(r#"42["ok",{n}]"#))).await?;
    match act {
        Ws::Serve | Ws::Handshake(_) => {}
        Ws::GiantFrame => {
            let mut f = vec![0x81];
            f.extend(header_len(1 << 30));
            f.extend_from_slice(b"42[\"x\",\"");
            wr.write_all(&f).await?;
        }
        Ws::EndlessFrame => {
            let mut f = vec![0x81];
            f.extend(header_len(1 << 20));
            wr.write_all(&f).await?;
            loop {
                wr.write_all(b"a").await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ws::Flood(count) => {
            let mut batch = Vec::with_capacity(64 << 10);
            for i in 0..count {
                batch.extend(text(&format!(r#"42["t",{i}]"#)));
                if batch.len() > 60 << 10 {
                    wr.write_all(&batch).await?;
                    batch.clear();
                }
            }
            batch.extend(text(r#"42["done"]"#));
            wr.write_all(&batch).await?;
        }
    }
    pings(&mut wr).await
}

/// A ping every 300 ms (the announced interval), for as long as the client stays.
async fn pings(wr: &mut OwnedWriteHalf) -> std::io::Result<()> {
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        wr.write_all(&text("2")).await?;
    }
}

/// Reconnection after `ms`, every time (no growth, no jitter).
fn fixed_delay(ms: u64) -> ReconnectConfig {
    ReconnectConfig {
        backoff: BackoffStrategy::SocketIo { min_ms: ms, max_ms: ms, factor: 1.0, randomization: 0.0 },
        ..ReconnectConfig::default()
    }
}

/// A WebSocket-only client of `srv` with a short, fixed reconnection delay.
fn ws_client(url: &str) -> Tidings {
    Tidings::builder(url)
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(fixed_delay(200))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// The `ok` event's connection number: waits for the next one.
async fn next_ok(sub: &mut tidings::Subscription<Value>) -> u64 {
    let ev = within(T, "an ok event", sub.next()).await.expect("the subscription ended").expect("an ok event decodes");
    ev.data.as_u64().expect("ok carries its connection's number")
}

/// Waits for the first notice `pred` accepts; returns it and everything seen before it.
async fn until(notices: &mut Notices, what: &str, pred: impl Fn(&Notice) -> bool) -> (Notice, Vec<Notice>) {
    let mut seen = Vec::new();
    loop {
        let n = within(T, what, notices.recv())
            .await
            .unwrap_or_else(|| panic!("notices ended waiting for {what}: {seen:?}"));
        if pred(&n) {
            return (n, seen);
        }
        seen.push(n);
    }
}

#[tokio::test]
async fn a_frame_announcing_a_gigabyte_is_refused_at_its_header_and_the_client_reconnects() {
    let _turn = TURNS.read().await;
    let srv = Hostile::start(|n| if n == 1 { Ws::GiantFrame } else { Ws::Serve }).await;
    let client = ws_client(&srv.url());
    let mut notices = client.notices();
    let mut ok = client.on::<Value>("ok");
    assert_eq!(next_ok(&mut ok).await, 1);
    let started = Instant::now();
    let (fault, _) = until(&mut notices, "the fault", |n| matches!(n, Notice::Fault(_))).await;
    let Notice::Fault(Fault::WebSocket(e)) = &fault else { panic!("a WebSocket fault, got {fault:?}") };
    println!("giant frame: {e:?} after {:?}", started.elapsed());
    // Refused at the header (it says it is over the 64 MiB limit), not after reading a gigabyte
    // and not at the heartbeat.
    assert!(started.elapsed() < Duration::from_millis(500), "noticed at once: {:?}", started.elapsed());
    assert_eq!(next_ok(&mut ok).await, 2, "a new connection, served properly");
    assert_eq!(srv.connections(), 2);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_frame_that_never_ends_is_cut_by_the_heartbeat() {
    let _turn = TURNS.read().await;
    let srv = Hostile::start(|n| if n == 1 { Ws::EndlessFrame } else { Ws::Serve }).await;
    let client = ws_client(&srv.url());
    let mut notices = client.notices();
    let mut ok = client.on::<Value>("ok");
    assert_eq!(next_ok(&mut ok).await, 1);
    let started = Instant::now();
    let (n, _) = until(&mut notices, "the drop", |n| {
        matches!(n, Notice::State(ConnectionState::Disconnected { .. } | ConnectionState::Reconnecting { .. }))
    })
    .await;
    let took = started.elapsed();
    println!("endless frame: {n:?} after {took:?}");
    // The server's pings are stuck behind the endless frame: the 300 + 300 ms window expires.
    assert!(took < Duration::from_millis(1500), "within the heartbeat window: {took:?}");
    assert_eq!(next_ok(&mut ok).await, 2);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_flood_of_tiny_packets_arrives_whole_in_order_and_in_bounded_memory() {
    let _turn = TURNS.write().await;
    const N: u32 = 200_000;
    let srv = Hostile::start(|_| Ws::Flood(N)).await;
    let client = ws_client(&srv.url());
    let mut ticks = client.on::<u32>("t");
    let mut done = client.on::<Value>("done");
    let mut ok = client.on::<Value>("ok");
    assert_eq!(next_ok(&mut ok).await, 1);
    let before = rss_kib();
    let mut peak = before;
    for i in 0..N {
        let t = within(T, "a tick", ticks.next()).await.unwrap().unwrap();
        assert_eq!(t.data, i, "in order, none missing");
        if i % 10_000 == 0 {
            peak = peak.max(rss_kib());
            // A slow consumer now and then: the flood must wait in TCP, not in memory.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    within(T, "the last event", done.next()).await.unwrap().unwrap();
    let growth = peak.saturating_sub(before);
    println!("flood: {N} events in order; RSS {before} KiB, peak seen {peak} KiB (+{growth} KiB)");
    assert!(growth < 64 << 10, "memory stays bounded: +{growth} KiB");
    assert_eq!(srv.connections(), 1, "no reconnect");
    within(T, "closing", client.close()).await;
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Bad handshakes: each is refused with a typed error and the client tries again, with its
/// backoff (no busy loop), until a proper server answers.
async fn a_bad_handshake_is_refused_and_retried(bad: fn(usize) -> Ws, what: &str) {
    let srv = Hostile::start(bad).await;
    let client = ws_client(&srv.url());
    let mut notices = client.notices();
    let mut ok = client.on::<Value>("ok");
    let started = Instant::now();
    let (_, seen) = until(&mut notices, what, |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    let took = started.elapsed();
    let reported: Vec<String> = seen
        .iter()
        .filter_map(|n| match n {
            Notice::ConnectError(e) => {
                assert!(e.cause.is_some(), "{what}: a typed cause: {e:?}");
                Some(format!("{} ({:?})", e.message, e.cause))
            }
            Notice::Fault(f) => Some(f.to_string()),
            _ => None,
        })
        .collect();
    println!("{what}: {} connections, {took:?}, reported: {reported:?}", srv.connections());
    assert!(!reported.is_empty(), "{what}: the bad handshakes were reported: {seen:?}");
    assert!(srv.connections() >= 3, "{what}: the first two were refused");
    // Two refusals, each followed by the 200 ms delay: no storm.
    assert!(srv.connections() <= 4, "{what}: one attempt per backoff delay, not a storm: {}", srv.connections());
    assert!(next_ok(&mut ok).await >= 3);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn absurd_heartbeat_and_payload_figures_are_refused_and_retried() {
    let _turn = TURNS.read().await;
    // pingInterval larger than any u64, a negative pingTimeout.
    a_bad_handshake_is_refused_and_retried(
        |n| match n {
            1 => Ws::Handshake(
                r#"0{"sid":"x","upgrades":[],"pingInterval":1e300,"pingTimeout":300,"maxPayload":1000000}"#,
            ),
            2 => Ws::Handshake(r#"0{"sid":"x","upgrades":[],"pingInterval":300,"pingTimeout":-5,"maxPayload":-1}"#),
            _ => Ws::Serve,
        },
        "absurd figures",
    )
    .await;
}

#[tokio::test]
async fn truncated_and_malformed_handshakes_are_refused_and_retried() {
    let _turn = TURNS.read().await;
    a_bad_handshake_is_refused_and_retried(
        |n| match n {
            1 => Ws::Handshake(r#"0{"sid":"x","upgrades":[],"pingInt"#),
            2 => Ws::Handshake("0[]"),
            _ => Ws::Serve,
        },
        "truncated handshakes",
    )
    .await;
}

/// How the HTTP server answers every request.
#[derive(Clone, Copy)]
enum Http {
    /// Headers announcing 500 bytes of body, then one byte every 200 ms.
    SlowLoris,
    /// A chunked body of 1 MiB chunks that never ends.
    Endless,
}

/// An HTTP server for long-polling that answers every request as `how` says; counts requests.
async fn http_server(how: Http) -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_err() {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = answer(&mut stream, how).await;
            });
        }
    });
    (port, requests, task)
}

async fn answer(stream: &mut TcpStream, how: Http) -> std::io::Result<()> {
    match how {
        Http::SlowLoris => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 500\r\n\r\n").await?;
            for _ in 0..500 {
                stream.write_all(b"0").await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Http::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = [format!("{:x}\r\n", 1 << 20).into_bytes(), vec![b'4'; 1 << 20], b"\r\n".to_vec()].concat();
            loop {
                stream.write_all(&chunk).await?;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_slow_loris_polling_answer_is_abandoned_at_the_connect_timeout() {
    let _turn = TURNS.read().await;
    let (port, requests, task) = http_server(Http::SlowLoris).await;
    let client = Tidings::builder(&format!("http://127.0.0.1:{port}"))
        .transports(TransportConfig::only(TransportKind::Polling))
        .reconnect(fixed_delay(200))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut notices = client.notices();
    let started = Instant::now();
    let (n, _) = until(&mut notices, "the connect error", |n| matches!(n, Notice::ConnectError(_))).await;
    let took = started.elapsed();
    println!("slow loris: {n:?} after {took:?}");
    let Notice::ConnectError(e) = &n else { unreachable!() };
    assert_eq!((e.message.as_str(), &e.cause), ("timeout", &None));
    assert!(took < Duration::from_millis(2500), "abandoned at the 1 s connect timeout: {took:?}");
    assert!(
        within(T, "another attempt", async {
            while requests.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            true
        })
        .await
    );
    within(T, "closing", client.close()).await;
    task.abort();
}

#[tokio::test]
async fn a_polling_body_that_never_ends_is_cut_at_the_body_limit() {
    let _turn = TURNS.read().await;
    // A chunked body of 1 MiB chunks, without end: the client stops reading at its 16 MiB limit.
    let (port, requests, task) = http_server(Http::Endless).await;
    let before = rss_kib();
    let client = Tidings::builder(&format!("http://127.0.0.1:{port}"))
        .transports(TransportConfig::only(TransportKind::Polling))
        .reconnect(fixed_delay(500))
        .build()
        .unwrap();
    let mut notices = client.notices();
    let (n, _) = until(&mut notices, "the connect error", |n| matches!(n, Notice::ConnectError(_))).await;
    let Notice::ConnectError(e) = &n else { unreachable!() };
    println!("endless body: {:?} ({:?}); RSS +{} KiB", e.message, e.cause, rss_kib().saturating_sub(before));
    assert_eq!(e.message, "xhr poll error", "socket.io-client's message");
    assert_eq!(e.cause, Some(Fault::Http(HttpError::TooLarge { max_body: 16 << 20 })), "and the typed cause");
    assert!(rss_kib().saturating_sub(before) < 128 << 10, "the body was not kept whole");
    assert!(requests.load(Ordering::SeqCst) >= 1);
    within(T, "closing", client.close()).await;
    task.abort();
}
