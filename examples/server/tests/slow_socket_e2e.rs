//! A socket that cannot take an event is cut off (its transport closed, no Socket.IO
//! DISCONNECT), so its client reconnects and catches up from the feed; other sockets are not
//! affected. Raw Engine.IO clients, so that one can stop reading.
//!
//! Every wait is bounded ([`within`]): a server that never answers fails the test, it does not
//! hang the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use common::*;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::Envelope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Polls a long-polling session until its Socket.IO CONNECT ack arrives, answering pings. The
/// first poll may hold only the server's first ping: the CONNECT handler (which checks the
/// token) may finish after that poll was answered.
async fn poll_until_connected(c: &reqwest::Client, session: &str) {
    for _ in 0..20 {
        let packets = within("a poll", async { c.get(session).send().await.unwrap().text().await.unwrap() }).await;
        let packets: Vec<&str> = packets.split('\x1e').collect();
        if packets.contains(&"2") {
            let pong = within("a pong", c.post(session).body("3").send()).await.unwrap();
            assert_eq!(pong.status(), 200);
        }
        if packets.iter().any(|p| p.starts_with("40{\"sid\"")) {
            return;
        }
        assert!(packets.iter().all(|p| *p == "2" || *p == "6"), "unexpected {packets:?}");
    }
    panic!("no CONNECT ack after 20 polls");
}

/// A WebSocket client that reads only when asked to.
struct RawWs(TcpStream);

impl RawWs {
    /// Opens `/socket.io/` as a WebSocket with a small receive buffer and connects with `token`.
    async fn connect(addr: std::net::SocketAddr, token: &str) -> RawWs {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let s = within("connecting", socket.connect(addr)).await.unwrap();
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut ws = RawWs::handshake(s, &req).await;
        assert!(ws.next("the open packet").await.starts_with("0{"), "the Engine.IO open packet");
        ws.send(&format!("40{}", json!({ "token": token }))).await;
        loop {
            let f = ws.next("the CONNECT ack").await;
            match f.as_str() {
                "2" => ws.send("3").await,
                ack if ack.starts_with("40{\"sid\"") => return ws,
                other => panic!("unexpected {other}"),
            }
        }
    }

    /// Opens a long-polling session, connects with `token`, then upgrades it to a WebSocket (with
    /// a small receive buffer), as socket.io clients do by default.
    async fn upgrade(addr: std::net::SocketAddr, token: &str) -> RawWs {
        let eio = format!("http://{addr}/socket.io/?EIO=4&transport=polling");
        let c = reqwest::Client::new();
        let open = within("the open packet", async { c.get(&eio).send().await.unwrap().text().await.unwrap() }).await;
        let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
        let sid = open["sid"].as_str().unwrap().to_string();
        let session = format!("{eio}&sid={sid}");
        within("the CONNECT", c.post(&session).body(format!("40{}", json!({ "token": token }))).send()).await.unwrap();
        poll_until_connected(&c, &session).await;
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let s = within("connecting", socket.connect(addr)).await.unwrap();
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket&sid={sid} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut ws = RawWs::handshake(s, &req).await;
        ws.send("2probe").await;
        assert_eq!(ws.next("the probe's answer").await, "3probe");
        ws.send("5").await;
        ws
    }

    /// Sends the upgrade request `req` and reads the `101` answer.
    async fn handshake(mut s: TcpStream, req: &str) -> RawWs {
        within("the upgrade request", s.write_all(req.as_bytes())).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(within("the upgrade answer", s.read_u8()).await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        RawWs(s)
    }

    /// The next text frame, which must come within [`T`].
    async fn next(&mut self, what: &str) -> String {
        within(what, self.frame()).await.unwrap_or_else(|| panic!("{what}: the connection ended"))
    }

    async fn send(&mut self, text: &str) {
        // Client frames are masked; a zero key leaves the payload as it is.
        let len = text.len();
        let mut frame = vec![0x81u8];
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text.as_bytes());
        within("a write", self.0.write_all(&frame)).await.unwrap();
    }

    /// The next text frame, or None when the connection ends (EOF or reset).
    async fn frame(&mut self) -> Option<String> {
        let mut h = [0u8; 2];
        self.0.read_exact(&mut h).await.ok()?;
        let len = match h[1] & 0x7f {
            126 => u64::from(self.0.read_u16().await.ok()?),
            127 => self.0.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        self.0.read_exact(&mut payload).await.ok()?;
        match h[0] & 0x0f {
            0x1 => Some(String::from_utf8(payload).unwrap()),
            0x8 => None,
            _ => Some(String::new()),
        }
    }
}

async fn sockets(url: &str) -> u64 {
    let (_, v, _) = within("/health", http("GET", &format!("{url}/health"), &[], None)).await;
    v["sockets"].as_u64().unwrap()
}

fn small_buffer(dir: &std::path::Path) -> tidings_example_server::Config {
    let mut c = tidings_example_server::Config::new(dir, SECRET, KEY);
    c.socket_buffer = 4;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_cannot_keep_up_is_cut_and_catches_up_from_the_feed() {
    slow_websocket(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_after_an_upgrade_from_long_polling() {
    slow_websocket(true).await;
}

/// The tests of this file run one at a time: each floods its server, and in parallel on a
/// 2-core machine one test's flood once starved the next one's first connection past [`T`].
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn slow_websocket(upgrade: bool) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir(if upgrade { "slow-upgrade" } else { "slow-ws" });
    let (url, server) = start_with(small_buffer(&dir)).await;
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let bob = client(&url, "bob", "acme").await;
    // Bob keeps up: he reads as events come (a client that does not read is cut, like alice).
    let mut bob_events = bob.on::<Envelope<Value>>("big.event");
    let (bob_tx, mut bob_got) = tokio::sync::mpsc::unbounded_channel();
    let bob_reader = tokio::spawn(async move {
        while let Some(Ok(e)) = bob_events.next().await {
            if bob_tx.send(e.data.id).is_err() {
                break;
            }
        }
    });
    let mut alice = if upgrade {
        RawWs::upgrade(addr, &token("alice", "acme")).await
    } else {
        RawWs::connect(addr, &token("alice", "acme")).await
    };
    assert_eq!(sockets(&url).await, 2);

    // Alice stops reading. Large events fill the TCP buffers, then her socket's buffer.
    let filler = "x".repeat(56 << 10);
    let mut ids = vec![String::new()];
    let mut cut_after = None;
    for n in 1..=300u64 {
        let body =
            json!({ "to": { "room": "tenant:acme" }, "event": "big.event", "data": { "n": n, "filler": filler } });
        let (s, v, _) = within("an emit", emit(&url, body)).await;
        assert_eq!((s, v["offset"].as_u64()), (200, Some(n)), "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
        if sockets(&url).await == 1 {
            cut_after = Some(n);
            break;
        }
    }
    let cut_after = cut_after.expect("the slow socket was never cut");
    // One more event after the cut: only bob gets it live.
    let last = json!({ "to": { "room": "tenant:acme" }, "event": "big.event", "data": { "n": cut_after + 1 } });
    let (_, v, _) = within("an emit", emit(&url, last)).await;
    ids.push(v["id"].as_str().unwrap().to_string());
    let total = cut_after + 1;

    // Alice reads what reached her, then the connection ends: a transport close, no DISCONNECT.
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(T, alice.frame()).await.expect("the connection was not closed") {
            Some(f) if f.starts_with("42[\"big.event\"") => {
                let args: Value = serde_json::from_str(&f[2..]).unwrap();
                got.push(args[1]["id"].as_str().unwrap().to_string());
            }
            Some(f) => assert!(!f.starts_with("41"), "a Socket.IO DISCONNECT would stop the client from reconnecting"),
            None => break,
        }
    }
    assert!((got.len() as u64) < total, "alice missed events ({} of {total})", got.len());
    assert_eq!(got, ids[1..=got.len()], "what she got is in order, without gaps");

    // Her client catches up from the feed, from the last event it got: nothing is missing.
    let since = got.last().map_or("0".to_string(), Clone::clone);
    let (s, page) =
        within("the feed", feed(&url, "acme", &token("alice", "acme"), &format!("since={since}&limit=1000"))).await;
    assert_eq!(s, 200);
    let rest: Vec<String> =
        page["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().into()).collect();
    assert_eq!([got, rest].concat(), ids[1..], "every event once, in order");

    // Bob, who kept up, got every event live and is still connected.
    for (n, id) in ids.iter().enumerate().skip(1) {
        let got = within("bob's events", bob_got.recv()).await.expect("bob's subscription ended");
        assert_eq!(&got, id, "event {n}");
    }
    assert_eq!(sockets(&url).await, 1);
    // A new connection (what alice's client does next) works.
    let _again = RawWs::connect(addr, &token("alice", "acme")).await;
    assert_eq!(sockets(&url).await, 2);
    within("bob's close", bob.close()).await;
    bob_reader.abort();
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_long_polling_session_that_stops_polling_is_refused_once_it_missed_an_event() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir("slow-poll");
    let (url, server) = start_with(small_buffer(&dir)).await;
    let eio = format!("{url}/socket.io/?EIO=4&transport=polling");
    let c = reqwest::Client::new();
    let open = within("the open packet", async { c.get(&eio).send().await.unwrap().text().await.unwrap() }).await;
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let session = format!("{eio}&sid={}", open["sid"].as_str().unwrap());
    let connect = format!("40{}", json!({ "token": token("alice", "acme") }));
    let res = within("the CONNECT", c.post(&session).body(connect).send()).await.unwrap();
    assert_eq!(res.status(), 200);
    // The CONNECT ack, and the first ping, which gets its pong.
    poll_until_connected(&c, &session).await;

    // No more polls: the fifth event finds the buffer (4 packets) full.
    for n in 1..=5 {
        let body = json!({ "to": { "users": ["alice"] }, "event": "x.y", "tenantId": "acme", "data": n });
        let (s, _, _) = within("an emit", emit(&url, body)).await;
        assert_eq!(s, 200);
    }
    let res = within("a poll", c.get(&session).send()).await.unwrap();
    assert_eq!(res.status(), 400, "the session is refused: the client reconnects");
    let body: Value = serde_json::from_str(&within("a poll's body", res.text()).await.unwrap()).unwrap();
    assert_eq!(body, json!({ "code": 1, "message": "Session ID unknown" }));
    // The events are all in the feed.
    let (_, page) = within("the feed", feed(&url, "acme", &token("alice", "acme"), "since=0")).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
