//! The whole `Client` state machine driven by arbitrary inputs, as a driver would feed them: time
//! steps, WebSocket frames (raw, or well-formed handshakes, CONNECT acks and events with fuzzed
//! contents), HTTP answers (raw bodies, statuses, failures), and every command (emit, ack, join,
//! leave, delivered, auth, namespaces, network changes), in any order and for any id the client
//! handed out, current or stale.
//!
//! Invariants: no panic; every drain ends (with `Output::Wait`); outputs only name sockets and
//! requests the client opened; the de-duplication window and the events in flight stay within
//! their bounds; time never runs backwards for a deadline.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tidings_core::config::{AuthMode, FeedConfig, SendBufferConfig};
use tidings_core::{
    AckRequest, Args, AuthRequestId, Client, Config, ConnId, DeliveryId, EmitRequest, HttpError, Input, Instant, Output,
    RequestId, TransportConfig, TransportKind,
};

/// The fuzz input, read a byte or a slice at a time (zeros once it runs out).
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// A length-prefixed slice (up to 255 bytes, or up to 64 KiB when the prefix is 255).
    fn chunk(&mut self) -> &'a [u8] {
        let n = match self.byte() {
            255 => usize::from(u16::from_le_bytes([self.byte(), self.byte()])),
            n => usize::from(n),
        };
        self.take(n)
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        if from.is_empty() {
            return None;
        }
        let i = usize::from(self.byte()) % from.len();
        from.get(i).copied()
    }

    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the client handed out so far (a driver only ever names these).
#[derive(Default)]
struct Seen {
    conns: Vec<ConnId>,
    requests: Vec<RequestId>,
    auths: Vec<AuthRequestId>,
    deliveries: Vec<DeliveryId>,
    acks: Vec<AckRequest>,
}

const DEDUP_WINDOW: usize = 64;

fn drain(client: &mut Client, seen: &mut Seen, now: Instant) {
    for _ in 0..1_000_000 {
        match client.poll_output() {
            Output::Wait(deadline) => {
                // A deadline in the past is fine (the driver fires at once), but never absurd.
                if let Some(d) = deadline {
                    assert!(d.as_millis() < now.as_millis() + 10 * 3_600_000, "a deadline more than 10 h away");
                }
                let b = client.buffered();
                assert!(b.dedup_keys <= DEDUP_WINDOW, "the de-duplication window grew past its bound");
                assert_eq!(b.undelivered, client.undelivered());
                return;
            }
            Output::OpenWebSocket { conn, url } => {
                assert!(url.starts_with("ws://127.0.0.1:3000/socket.io/?"), "{url}");
                seen.conns.push(conn);
            }
            Output::SendWebSocket { conn, .. } | Output::CloseWebSocket(conn) => {
                assert!(seen.conns.contains(&conn), "a socket the client never opened");
            }
            Output::Http(req) => {
                assert!(!seen.requests.contains(&req.id), "a request id used twice");
                seen.requests.push(req.id);
            }
            Output::AbortHttp(id) => assert!(seen.requests.contains(&id), "a request the client never made"),
            Output::NeedAuth { request, .. } => seen.auths.push(request),
            Output::Event(ev) => {
                seen.deliveries.push(ev.delivery);
                if let Some(ack) = ev.ack {
                    seen.acks.push(ack);
                }
            }
            _ => {}
        }
        keep_recent(seen);
    }
    panic!("the client produced a million outputs without waiting");
}

/// Ids the fuzzer may name: the recent ones, so memory stays small.
fn keep_recent(seen: &mut Seen) {
    fn trim<T>(v: &mut Vec<T>) {
        if v.len() > 64 {
            v.drain(..32);
        }
    }
    trim(&mut seen.conns);
    trim(&mut seen.requests);
    trim(&mut seen.auths);
    trim(&mut seen.deliveries);
    trim(&mut seen.acks);
}

fn config(b: &mut Bytes<'_>) -> Config {
    let flags = b.byte();
    let mut c = Config::new("http://127.0.0.1:3000/").expect("a valid URL");
    c.seed = u64::from(b.byte());
    c.transports = match flags % 3 {
        0 => TransportConfig::default(),
        1 => TransportConfig::polling_first(),
        _ => TransportConfig::only(TransportKind::WebSocket),
    };
    c.retries = u32::from(flags >> 2 & 3);
    c.dedup_window = DEDUP_WINDOW;
    c.send_buffer = SendBufferConfig { max_packets: 8, max_bytes: 4096, ..SendBufferConfig::default() };
    if flags & 0x10 != 0 {
        c.feed = Some(FeedConfig::new("http://127.0.0.1:3000/api"));
    }
    if flags & 0x20 != 0 {
        c.auth = AuthMode::Provider;
    } else if flags & 0x40 != 0 {
        c.auth = AuthMode::Static(r#"{"token":"t"}"#.to_string());
    }
    c.ack_timeout = (flags & 0x80 != 0).then(|| Duration::from_millis(500));
    c
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut client = match Client::new(config(&mut b)) {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut seen = Seen::default();
    let mut now = Instant::from_millis(0);
    client.connect(now);
    drain(&mut client, &mut seen, now);
    let namespaces = ["/", "/chat"];
    while !b.done() {
        let op = b.byte();
        let ns = namespaces[usize::from(op >> 7)];
        match op % 20 {
            0 => {
                let step = u64::from(b.byte()) * u64::from(b.byte()) * 10;
                now = now.plus_millis(step);
                client.handle_input(now, Input::Timeout);
            }
            1 => {
                if let Some(c) = b.pick(&seen.conns) {
                    client.handle_input(now, Input::WsOpened(c));
                }
            }
            2 => {
                if let Some(c) = b.pick(&seen.conns) {
                    let t = b.text();
                    client.handle_input(now, Input::WsText(c, t));
                }
            }
            3 => {
                // A well-formed handshake with fuzzed figures.
                if let Some(c) = b.pick(&seen.conns) {
                    let (pi, pt, mp) = (b.byte(), b.byte(), b.byte());
                    let upgrades = if pi & 1 == 0 { r#"["websocket"]"# } else { "[]" };
                    let t = format!(
                        r#"0{{"sid":"s{pi}","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
                        u32::from(pi) * 100,
                        u32::from(pt) * 100,
                        u32::from(mp) * 1000
                    );
                    client.handle_input(now, Input::WsText(c, t));
                }
            }
            4 => {
                // A CONNECT ack, with or without a recovery pid.
                if let Some(c) = b.pick(&seen.conns) {
                    let pid = b.byte();
                    let nsp = if ns == "/" { String::new() } else { format!("{ns},") };
                    let t = match pid % 3 {
                        0 => format!(r#"40{nsp}{{"sid":"x{pid}"}}"#),
                        1 => format!(r#"40{nsp}{{"sid":"x{pid}","pid":"p"}}"#),
                        _ => format!(r#"44{nsp}{{"message":"nope {pid}"}}"#),
                    };
                    client.handle_input(now, Input::WsText(c, t));
                }
            }
            5 => {
                // An event with fuzzed arguments: maybe an offset, maybe an ack id, maybe binary.
                if let Some(c) = b.pick(&seen.conns) {
                    let kind = b.byte();
                    let body = b.text();
                    let nsp = if ns == "/" { String::new() } else { format!("{ns},") };
                    let t = match kind % 4 {
                        0 => format!(r#"42{nsp}["e",{body}]"#),
                        1 => format!(r#"42{nsp}["e",{body},"{kind}"]"#),
                        2 => format!(r#"42{nsp}{kind}["e",{body}]"#),
                        _ => format!(r#"451-{nsp}["e",{{"_placeholder":true,"num":0}},{body}]"#),
                    };
                    client.handle_input(now, Input::WsText(c, t));
                }
            }
            6 => {
                if let Some(c) = b.pick(&seen.conns) {
                    let bytes = b.chunk().to_vec();
                    client.handle_input(now, Input::WsBinary(c, bytes));
                }
            }
            7 => {
                if let Some(conn) = b.pick(&seen.conns) {
                    let how = b.byte();
                    let code = (how & 1 != 0).then_some(1000 + u16::from(how));
                    let error = (how & 2 != 0).then(|| "reset".to_string());
                    if how & 4 != 0 {
                        // Frames the driver never wrote, as the native driver reports them (any
                        // text, including our own event packets, and binary).
                        let frames = vec![
                            tidings_core::engineio::Frame::Text(format!(r#"42["e",{}]"#, b.text())),
                            tidings_core::engineio::Frame::Text(b.text()),
                            tidings_core::engineio::Frame::Binary(b.chunk().to_vec()),
                        ];
                        client.handle_input(now, Input::WsUnsent { conn, frames });
                    }
                    client.handle_input(now, Input::WsClosed { conn, code, error });
                }
            }
            8 | 9 => {
                if let Some(id) = b.pick(&seen.requests) {
                    let status = [200, 200, 200, 400, 404, 500, 503][usize::from(b.byte()) % 7];
                    let body = if op % 20 == 9 {
                        // A well-formed polling payload: a handshake or packets.
                        let pi = b.byte();
                        let rest = b.text();
                        format!(
                            "0{{\"sid\":\"p{pi}\",\"upgrades\":[\"websocket\"],\"pingInterval\":{},\"pingTimeout\":5000,\"maxPayload\":100000}}\u{1e}{rest}",
                            u32::from(pi) * 100
                        )
                        .into_bytes()
                    } else {
                        b.chunk().to_vec()
                    };
                    client.handle_input(now, Input::HttpResponse { id, status, body });
                }
            }
            10 => {
                if let Some(id) = b.pick(&seen.requests) {
                    let error = if b.byte() & 1 == 0 {
                        HttpError::TooLarge { max_body: 1024 }
                    } else {
                        HttpError::Network("refused".to_string())
                    };
                    client.handle_input(now, Input::HttpFailed { id, error });
                }
            }
            11 | 12 => {
                let flags = b.byte();
                let json = b.text();
                let args = Args::from_json_array(format!("[{json}]"), Vec::new())
                    .unwrap_or_else(|_| Args::from_json_array("[1]".to_string(), Vec::new()).expect("valid"));
                let mut req = EmitRequest::new(if flags & 8 != 0 { "connect" } else { "e" }, args).namespace(ns);
                if flags & 1 != 0 {
                    req = req.with_ack();
                }
                if flags & 2 != 0 {
                    req = req.volatile();
                }
                if flags & 4 != 0 {
                    req = req.new_idempotency_key();
                }
                let _ = client.emit(now, req);
            }
            13 => {
                let room = format!("r{}", b.byte() % 4);
                let _ = if b.byte() & 1 == 0 { client.join(now, ns, &room) } else { client.leave(now, ns, &room) };
            }
            14 => {
                if let Some(id) = b.pick(&seen.deliveries) {
                    client.delivered(now, id);
                }
            }
            15 => {
                if let Some(id) = b.pick(&seen.auths) {
                    let _ = match b.byte() % 3 {
                        0 => client.provide_auth(now, id, Some(r#"{"token":"fresh"}"#.to_string())),
                        1 => client.provide_auth(now, id, Some(b.text())),
                        _ => client.auth_failed(now, id, "provider down"),
                    };
                }
            }
            16 => {
                let input = match b.byte() % 4 {
                    0 => Input::Online,
                    1 => Input::Offline,
                    2 => Input::Visible,
                    _ => Input::Hidden,
                };
                client.handle_input(now, input);
            }
            17 => {
                let i = usize::from(b.byte());
                if let Some(req) = seen.acks.get(i % seen.acks.len().max(1)).cloned() {
                    let _ = client.ack(now, &req, Args::empty());
                }
            }
            18 => match b.byte() % 4 {
                0 => client.disconnect(now),
                1 => client.connect(now),
                2 => {
                    let _ = client.disconnect_namespace(now, ns);
                }
                _ => {
                    let _ = client.open_namespace(now, "/chat", AuthMode::None);
                }
            },
            _ => {
                // Time passes a little, as between two frames.
                now = now.plus_millis(u64::from(b.byte()));
            }
        }
        drain(&mut client, &mut seen, now);
    }
});
