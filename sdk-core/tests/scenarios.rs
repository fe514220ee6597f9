//! Timelines of the client against the fake server (PROTOCOL.md §7), in virtual time: each test
//! reads as "at t=… this happens, then the client does …" and runs in well under a millisecond
//! of real time per simulated minute.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::time::Duration;

use tidings_core::config::{AuthMode, FeedConfig, TransportConfig};
use tidings_core::{
    BackoffStrategy, ConnectionState, DisconnectReason, EmitError, EmitRefused, EmitRequest, EventSource, FeedStatus,
    HttpRequest, Input, RequestPurpose, TransportKind,
};
use tidings_harness::*;

/// S0 of PROTOCOL.md §7: pingInterval 300, pingTimeout 200.
fn s0() -> ServerConfig {
    ServerConfig { ping_interval: 300, ping_timeout: 200, ..ServerConfig::default() }
}

fn connected_state(w: &World) -> Option<(TransportKind, bool, String)> {
    match w.last_state("/") {
        Some(ConnectionState::Connected { transport, recovered, sid }) => Some((transport, recovered, sid)),
        _ => None,
    }
}

/// (time, attempt, delay ms) of every `Reconnecting` state on `/`.
fn reconnects(w: &World) -> Vec<(u64, u32, u64)> {
    w.states("/")
        .into_iter()
        .filter_map(|(t, s)| match s {
            ConnectionState::Reconnecting { attempt, delay } => Some((t, attempt, delay.as_millis() as u64)),
            _ => None,
        })
        .collect()
}

/// (time, reason) of every `Disconnected` state on `/`.
fn disconnects(w: &World) -> Vec<(u64, DisconnectReason)> {
    w.states("/")
        .into_iter()
        .filter_map(|(t, s)| match s {
            ConnectionState::Disconnected { reason } => Some((t, reason)),
            _ => None,
        })
        .collect()
}

/// Resets the connection and runs until the client has noticed, then until it is connected again.
fn drop_and_reconnect(w: &mut World) {
    w.drop_transports();
    w.run_for(5);
    assert!(!w.connected());
    assert!(w.run_until_cond(20_000, World::connected), "{}", w.dump());
}

fn names(w: &World) -> Vec<String> {
    w.app.events.iter().map(|(_, e)| e.args.get(0).unwrap_or_default().trim_matches('"').to_string()).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// socket.io-client's backoff range for attempt `n` (from 1) with delay `min`, max `max`, jitter 0.5.
fn backoff_range(n: u32, min: u64, max: u64) -> (u64, u64) {
    let ms = min * 2u64.pow(n - 1);
    ((ms / 2).min(max), (ms + ms / 2).min(max))
}

// ---------------------------------------------------------------------------------- connecting

#[test]
fn websocket_connect_receives_events_and_answers_pings() {
    let mut w = World::with(config(), s0());
    // t=0: connect straight over WebSocket.
    w.connect();
    assert_eq!(w.ws_opens[0].1, "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket");
    w.run_until(100);
    // t=20 the open packet with "upgrades":[], t=40 `40`, t=60 the CONNECT ack.
    assert_eq!(w.sent_starting("4"), vec![(40, "40".to_string())]);
    let (transport, recovered, sid) = connected_state(&w).expect("connected");
    assert_eq!((transport, recovered), (TransportKind::WebSocket, false));
    assert_eq!(Some(sid), w.server.socket_sid("/"));
    // t=100..: the server emits; the recovery offset is stripped from the args and exposed.
    w.server_emit("news", r#""one",{"n":1}"#);
    w.run_for(5);
    w.server_emit("news", r#""two""#);
    w.run_until(1_100);
    assert_eq!(w.events(), vec![("news".into(), r#"["one",{"n":1}]"#.into()), ("news".into(), r#"["two"]"#.into())]);
    assert_eq!(w.app.events[0].1.offset.as_deref(), Some("o1"));
    assert_eq!(w.app.events[1].1.source, EventSource::Socket);
    // Idle for 3 s: every `2` is answered with `3`, the client never pings, and stays connected.
    w.run_until(4_100);
    let pings = w.delivered.iter().filter(|(_, r)| r == "2").count();
    let pongs = w.sent.iter().filter(|(_, r)| r == "3").count();
    assert!(pings >= 10, "{pings} pings");
    assert_eq!(pings, pongs);
    assert!(w.sent.iter().all(|(_, r)| r != "2"));
    assert!(w.connected());
    assert_eq!(w.server.handshakes.len(), 1);
    w.assert_clean();
}

#[test]
fn auth_and_second_namespace_share_one_engine() {
    let mut cfg = config();
    cfg.auth = AuthMode::Static(r#"{"token":"abc"}"#.into());
    let mut server = s0();
    server.namespaces.insert("/custom".into(), NsRule { token: Some("x".into()), refuse: None });
    let mut w = World::with(cfg, server);
    w.connect();
    w.run_until(100);
    assert_eq!(w.sent_starting("40"), vec![(40, r#"40{"token":"abc"}"#.to_string())]);
    // t=100: open /custom with its own auth on the same engine session.
    w.client.open_namespace(w.at(), "/custom", AuthMode::Static(r#"{"token":"x"}"#.into())).unwrap();
    w.run_until(200);
    assert!(w.client.is_connected("/custom"));
    assert_eq!(w.sent_starting("40/custom").len(), 1);
    assert_eq!(w.sent_starting("40/custom")[0].1, r#"40/custom,{"token":"x"}"#);
    assert_eq!(w.server.handshakes.len(), 1);
    w.server_emit_to("/custom", "hello", r#""c""#);
    w.run_until(300);
    assert_eq!(w.app.events[0].1.namespace, "/custom");
    // t=300: leaving /custom sends `41/custom,`; `/` keeps working.
    w.client.disconnect_namespace(w.at(), "/custom").unwrap();
    w.run_until(400);
    assert_eq!(w.sent_starting("41").iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), vec!["41/custom,"]);
    assert!(w.connected() && !w.client.is_connected("/custom"));
    w.server_emit("news", r#""still here""#);
    w.run_until(500);
    assert_eq!(names(&w), strs(&["c", "still here"]));
    w.assert_clean();
}

#[test]
fn server_ack_request_is_answered() {
    let mut w = World::with(config(), s0());
    w.auto_ack = true;
    w.connect();
    w.run_until(100);
    let id = w.server_emit_with_ack("ask", "1").unwrap();
    w.run_until(200);
    let ev = &w.app.events[0].1;
    assert_eq!((ev.name.as_str(), ev.ack.as_ref().map(|a| a.id)), ("ask", Some(id)));
    // Acks carry no offset, and the client's answer is `43<id>["ok"]`.
    assert_eq!(ev.offset, None);
    assert_eq!(w.server.client_acks, vec![(140, id, r#"["ok"]"#.to_string())]);
    w.assert_clean();
}

// ---------------------------------------------------------------------------------- heartbeat

#[test]
fn silent_server_ping_timeout_then_backoff_within_socketio_ranges() {
    let mut w = World::with(config(), s0());
    w.connect();
    // Pings at 320, 660, ... (server side), each reaches the client 20 ms later.
    w.run_until(900);
    assert!(w.connected());
    // t=900: the server stops pinging (and stays silent on every later session too).
    w.server.pinging = false;
    let last_ping = w.delivered.iter().filter(|(_, r)| r == "2").map(|(t, _)| *t).max().unwrap();
    w.run_until(30_000);
    let downs = disconnects(&w);
    // Closed with "ping timeout" exactly pingInterval + pingTimeout after the last ping.
    assert_eq!(downs[0], (last_ping + 500, DisconnectReason::PingTimeout));
    assert!(downs.iter().all(|(_, r)| *r == DisconnectReason::PingTimeout));
    // Each short-lived session counts as a failed attempt: the delays grow within backo2's ranges,
    // and the next WebSocket opens exactly when the announced delay is over.
    let rec = reconnects(&w);
    assert!(rec.len() >= 5, "{rec:?}");
    for (i, (t, attempt, delay)) in rec.iter().enumerate() {
        assert_eq!(*attempt, i as u32 + 1);
        let (lo, hi) = backoff_range(*attempt, 1000, 5000);
        assert!((lo..=hi).contains(delay), "attempt {attempt}: {delay} not in {lo}..={hi}");
        if t + delay <= 30_000 {
            assert!(w.ws_opens.iter().any(|(o, _)| *o == t + delay), "no open at {}", t + delay);
        }
    }
    // A reconnected session that never hears a ping times out again 500 ms after its handshake.
    let h2 = w.server.handshakes[1].0;
    assert_eq!(downs[1].0, h2 + 20 + 500);
    // t=30 s: pings resume; the connection becomes stable (5 s), so the next drop starts over at attempt 1.
    w.server.pinging = true;
    w.run_until(30_000 + 7_000);
    assert!(w.run_until_cond(6_000, World::connected));
    w.run_for(6_000);
    let before = reconnects(&w).len();
    w.drop_transports();
    w.run_for(100);
    let rec = reconnects(&w);
    assert_eq!(rec.len(), before + 1);
    let (_, attempt, delay) = rec[before];
    assert_eq!(attempt, 1);
    assert!((500..=1500).contains(&delay));
    w.assert_clean();
}

#[test]
fn reconnect_gives_up_after_max_attempts() {
    // PROTOCOL.md §7 #22: closed port, reconnectionAttempts 3, delay 100, max 500.
    let mut cfg = config();
    cfg.reconnect.max_attempts = Some(3);
    cfg.reconnect.backoff = BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 };
    let mut w = World::with(cfg, s0());
    w.server.engine_down = true;
    w.connect();
    w.run_until(10_000);
    // One first try and three reconnection attempts, each reported as connect_error (after two
    // WebSocket failures the client falls back to polling).
    let tries = w.open_attempts();
    assert_eq!(tries.len(), 4);
    let errors: Vec<(String, bool, bool)> =
        w.app.connect_errors.iter().map(|(_, _, e)| (e.message.clone(), e.will_retry, e.fallback_pending)).collect();
    let expected = [
        ("websocket error", true, true),
        ("websocket error", true, true),
        ("xhr poll error", true, false),
        ("xhr poll error", false, false),
    ];
    assert_eq!(errors, expected.iter().map(|(m, r, f)| (m.to_string(), *r, *f)).collect::<Vec<_>>());
    let gaps: Vec<u64> = tries.windows(2).map(|p| p[1] - p[0] - 40).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let (lo, hi) = backoff_range(i as u32 + 1, 100, 500);
        assert!((lo..=hi).contains(gap), "gap {i}: {gap} not in {lo}..={hi}");
    }
    assert_eq!(w.last_state("/"), Some(ConnectionState::Disconnected { reason: DisconnectReason::ReconnectFailed }));
    assert_eq!(w.client.reconnect_in(), None);
}

// ---------------------------------------------------------------------------------- recovery

#[test]
fn transport_drop_recovers_missed_events_once_in_order() {
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(100);
    let (_, _, sid) = connected_state(&w).unwrap();
    w.server_emit("news", r#""e1""#);
    w.run_until(200);
    w.server_emit("news", r#""e2""#);
    w.run_until(300);
    // t=300: the connection resets; both ends notice.
    w.drop_transports();
    w.run_until(400);
    assert!(!w.connected());
    assert!(disconnects(&w)[0].1.reconnects());
    // t=400, 500: the server keeps emitting into the void (its log keeps them).
    w.server_emit("news", r#""e3""#);
    w.run_until(500);
    w.server_emit("news", r#""e4""#);
    assert!(w.run_until_cond(10_000, World::connected));
    // The CONNECT carries pid then offset; the server replays e3 and e4 before its ack.
    let connects = w.sent_starting("40");
    assert_eq!(connects[1].1, r#"40{"pid":"P3","offset":"o2"}"#);
    let (_, recovered, sid2) = connected_state(&w).unwrap();
    assert!(recovered);
    assert_eq!(sid2, sid);
    let connected_at = w.states("/").last().unwrap().0;
    assert!(w.app.events[2..].iter().all(|(t, _)| *t <= connected_at));
    w.server_emit("news", r#""e5""#);
    w.run_for(1_000);
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4", "e5"]));
    assert!(w.server.connections[1].recovered);
    w.assert_clean();
}

#[test]
fn recovery_asks_for_what_followed_the_last_delivered_event_and_drops_the_replay_of_queued_ones() {
    // A slow application: e2 and e3 are decoded but still queued when the connection drops.
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(100);
    w.server_emit("news", r#""e1""#);
    w.run_until(200);
    w.hold();
    w.server_emit("news", r#""e2""#);
    w.run_for(5);
    w.server_emit("news", r#""e3""#);
    w.run_until(300);
    assert_eq!(w.client.undelivered(), 2);
    w.drop_transports();
    w.run_until(400);
    w.server_emit("news", r#""e4""#);
    assert!(w.run_until_cond(10_000, World::connected));
    // Recovery starts after e1, the last event the application had; the server replays e2..e4,
    // and the replay of e2 and e3 (still queued) is recognised by offset and dropped.
    let connects = w.sent_starting("40");
    assert_eq!(connects[1].1, r#"40{"pid":"P3","offset":"o1"}"#);
    assert!(connected_state(&w).unwrap().1, "recovered");
    w.release_all();
    w.server_emit("news", r#""e5""#);
    w.run_for(1_000);
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4", "e5"]));
    assert_eq!(w.client.undelivered(), 0);
    w.assert_clean();
}

#[test]
fn the_feed_token_never_appears_in_debug_output() {
    let mut cfg = config();
    cfg.auth = tidings_core::AuthMode::Static(r#"{"token":"s3cret-feed-token"}"#.into());
    cfg.feed = Some(tidings_core::FeedConfig::new("http://127.0.0.1:3000/feed"));
    let mut w = World::with(cfg, ServerConfig::default());
    w.connect();
    w.run_until(100);
    assert!(w.connected());
    let dump = format!("{:?}", w.client);
    assert!(!dump.contains("s3cret-feed-token"), "the token leaked into Debug output");
    assert!(dump.contains("<redacted>"), "the feed holds the token (redacted): {dump}");
}

#[test]
fn an_offset_that_repeats_outside_a_recovery_replay_is_not_a_duplicate() {
    // A volatile event's last string argument looks like an offset; the same one twice is two
    // events, and both keep their data (docs/PROTOCOL.md, "Offsets").
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(100);
    w.server_raw_event("/", r#"["vol","x"]"#);
    w.run_for(10);
    w.server_raw_event("/", r#"["vol","x"]"#);
    w.run_for(100);
    let vols: Vec<_> =
        w.app.events.iter().filter(|(_, e)| e.name == "vol").map(|(_, e)| e.wire_args().to_json_array()).collect();
    assert_eq!(vols, vec![r#"["x"]"#.to_string(), r#"["x"]"#.to_string()]);
    w.assert_clean();
}

#[test]
fn recovery_without_offset_gets_a_new_session() {
    // PROTOCOL.md §7 #25: no event received before the drop: `40{"pid":P}` and a fresh sid.
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(100);
    let (_, _, sid) = connected_state(&w).unwrap();
    drop_and_reconnect(&mut w);
    assert_eq!(w.sent_starting("40")[1].1, r#"40{"pid":"P3"}"#);
    let (_, recovered, sid2) = connected_state(&w).unwrap();
    assert!(!recovered);
    assert_ne!(sid, sid2);
}

#[test]
fn overlapping_replay_is_deduplicated() {
    // An at-least-once adapter replays 3 events the client already has: each is delivered once.
    let server = ServerConfig { replay_overlap: 3, ..ServerConfig::default() };
    let mut w = World::with(config(), server);
    w.connect();
    w.run_until(100);
    for e in ["e1", "e2", "e3"] {
        w.server_emit("news", &format!("\"{e}\""));
        w.run_for(10);
    }
    w.drop_transports();
    w.run_for(10);
    w.server_emit("news", r#""e4""#);
    assert!(w.run_until_cond(10_000, World::connected));
    w.run_for(100);
    let replayed = w.delivered.iter().filter(|(_, r)| r.contains(r#""e2""#)).count();
    assert_eq!(replayed, 2, "the server did send e2 twice");
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4"]));
}

#[test]
fn partition_is_noticed_by_heartbeat_and_recovered_after() {
    let mut w = World::with(config(), s0());
    w.connect();
    w.run_until(500);
    w.server_emit("news", r#""e1""#);
    // t=1000..4000: the network black-holes everything; nobody is told.
    w.partition(1_000, 4_000);
    w.run_until(2_000);
    // The heartbeat noticed within pingInterval + pingTimeout (+ one ping period).
    let (t_down, reason) = disconnects(&w)[0];
    assert_eq!(reason, DisconnectReason::PingTimeout);
    assert!((1_000..=1_000 + 340 + 500).contains(&t_down), "{t_down}");
    w.server_emit("news", r#""e2""#);
    w.run_until(3_000);
    w.server_emit("news", r#""e3""#);
    assert!(w.run_until_cond(20_000, World::connected));
    assert!(w.now >= 4_000);
    // Attempts made during the partition failed.
    assert!(w.app.connect_errors.iter().all(|(t, _, _)| *t < 4_100));
    let (_, recovered, _) = connected_state(&w).unwrap();
    assert!(recovered);
    w.server_emit("news", r#""e4""#);
    w.run_for(1_000);
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4"]));
    w.assert_clean();
}

// ---------------------------------------------------------------------------------- rooms

#[test]
fn unrecoverable_reconnect_rejoins_rooms() {
    let server = ServerConfig { recovery: false, ..ServerConfig::default() };
    let mut w = World::with(config(), server);
    w.connect();
    w.run_until(100);
    w.join("a");
    w.join("b");
    w.run_until(200);
    assert_eq!(w.server.rooms("/"), ["a", "b"].iter().map(|s| s.to_string()).collect());
    assert_eq!(w.app.rooms.iter().filter(|r| r.result.is_ok()).count(), 2);
    let sid = w.server.socket_sid("/").unwrap();
    drop_and_reconnect(&mut w);
    w.run_for(200);
    // A new socket on the server: the client sent both joins again and got both acks.
    assert_ne!(w.server.socket_sid("/").unwrap(), sid);
    assert_eq!(w.server.rooms("/"), ["a", "b"].iter().map(|s| s.to_string()).collect());
    assert_eq!(w.sent_starting("42").iter().filter(|(_, t)| t.contains("room:join")).count(), 4);
    assert_eq!(w.app.rooms.iter().filter(|r| r.join && r.result.is_ok()).count(), 4);
    assert_eq!(w.client.rooms("/"), vec!["a".to_string(), "b".to_string()]);
    w.assert_clean();
}

#[test]
fn expired_recovery_session_rejoins_rooms() {
    let server = ServerConfig { max_disconnection: 100, ..ServerConfig::default() };
    let mut w = World::with(config(), server);
    w.connect();
    w.run_until(100);
    w.join("a");
    w.server_emit("news", r#""e1""#);
    w.run_until(200);
    // The reconnect comes after at least 500 ms: the session is gone.
    drop_and_reconnect(&mut w);
    w.run_for(200);
    assert!(!connected_state(&w).unwrap().1);
    assert!(w.sent_starting("40")[1].1.contains(r#""offset":"o1""#), "the client did try to recover");
    assert_eq!(w.server.rooms("/"), ["a"].iter().map(|s| s.to_string()).collect());
    w.assert_clean();
}

#[test]
fn recovered_reconnect_sends_only_room_changes_made_while_away() {
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(100);
    w.join("a");
    w.join("b");
    w.server_emit("news", r#""e1""#);
    w.run_until(200);
    w.drop_transports();
    w.run_for(10);
    // While away: leave a, join c.
    w.leave("a");
    w.join("c");
    assert!(w.run_until_cond(10_000, World::connected));
    w.run_for(200);
    assert!(connected_state(&w).unwrap().1, "recovered");
    let after: Vec<String> = w.sent_starting("42").into_iter().filter(|(t, _)| *t > 300).map(|(_, s)| s).collect();
    assert_eq!(after, vec![r#"422["room:leave","a"]"#.to_string(), r#"423["room:join","c"]"#.to_string()]);
    assert_eq!(w.server.rooms("/"), ["b", "c"].iter().map(|s| s.to_string()).collect());
    w.assert_clean();
}

#[test]
fn every_room_request_made_while_disconnected_is_answered() {
    let server = ServerConfig { recovery: false, ..ServerConfig::default() };
    let mut w = World::with(config(), server);
    w.connect();
    w.run_until(100);
    w.join("a");
    w.run_until(200);
    w.drop_transports();
    w.run_for(10);
    let answered = |w: &World, room: &str, join: bool| {
        w.app.rooms.iter().filter(|r| r.room == room && r.join == join && r.result.is_ok()).count()
    };
    // While away: leave a; leave a room never joined; join b twice; join c then leave it.
    let mut requests = vec![w.leave("a"), w.leave("never"), w.join("b"), w.join("b"), w.join("c"), w.leave("c")];
    // Nothing to send for "never" and "c": answered at once.
    assert_eq!((answered(&w, "never", false), answered(&w, "c", true), answered(&w, "c", false)), (1, 1, 1));
    assert!(w.run_until_cond(10_000, World::connected));
    w.run_for(200);
    assert!(!connected_state(&w).unwrap().1, "a new session");
    // The new session is in no room: the leave of a is done; b is joined (one join sent, one
    // ack, which answers both requests).
    assert_eq!(answered(&w, "a", false), 1);
    assert_eq!(answered(&w, "b", true), 2);
    assert_eq!(w.server.rooms("/"), ["b"].iter().map(|s| s.to_string()).collect());
    // Every request got exactly one answer, carrying its id.
    let mut answers: Vec<_> = w.app.rooms.iter().filter_map(|r| r.request).collect();
    answers.retain(|id| requests.contains(id));
    answers.sort_by_key(|id| id.get());
    requests.sort_by_key(|id| id.get());
    assert_eq!(answers, requests);
    w.assert_clean();
}

#[test]
fn room_requests_waiting_for_a_connection_fail_when_the_namespace_is_disconnected() {
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(100);
    w.drop_transports();
    w.run_for(10);
    w.join("a");
    w.disconnect();
    let failed: Vec<_> =
        w.app.rooms.iter().filter(|r| r.result == Err(EmitError::Disconnected)).map(|r| r.room.clone()).collect();
    assert_eq!(failed, vec!["a".to_string()]);
}

// ---------------------------------------------------------------------------------- emits

fn reliable_config(retries: u32, ack_timeout: u64) -> tidings_core::Config {
    let mut cfg = config();
    cfg.retries = retries;
    cfg.ack_timeout = Some(Duration::from_millis(ack_timeout));
    cfg
}

#[test]
fn reliable_emits_survive_dropped_acks_one_in_flight_in_order() {
    let mut w = World::with(reliable_config(3, 500), ServerConfig::default());
    w.connect();
    w.run_until(100);
    // The server loses the acks of the next two events.
    w.server.drop_next_acks = 2;
    let a = w.emit_ack("a", "[1]");
    let b = w.emit_ack("b", "[2]");
    let c = w.emit_ack("c", "[3]");
    w.run_until(3_000);
    // a is tried three times (a new ack id each time), b and c only go after a is acked.
    let wire: Vec<String> = w.sent_starting("42").into_iter().map(|(_, s)| s).collect();
    assert_eq!(wire, strs(&[r#"420["a",1]"#, r#"421["a",1]"#, r#"422["a",1]"#, r#"423["b",2]"#, r#"424["c",3]"#]));
    let times: Vec<u64> = w.sent_starting("42").into_iter().map(|(t, _)| t).collect();
    assert_eq!(&times[..3], &[100, 600, 1_100]);
    let settled: Vec<_> = w.app.settled.iter().map(|(_, e, r)| (*e, r.as_ref().map(|a| a.to_json_array()))).collect();
    assert_eq!(settled, vec![(a, Ok("[1]".into())), (b, Ok("[2]".into())), (c, Ok("[3]".into()))]);
    // A drop while d is in flight: d is sent again on the new connection, e waits behind it.
    let d = w.emit_ack("d", "[4]");
    let e = w.emit_ack("e", "[5]");
    drop_and_reconnect(&mut w);
    w.run_for(500);
    let events: Vec<String> = w.server.received.iter().map(|r| r.event.clone()).collect();
    assert_eq!(events, strs(&["a", "a", "a", "b", "c", "d", "e"]));
    assert_eq!(w.settlements(d).len(), 1);
    assert_eq!(w.settlements(e).len(), 1);
    assert!(w.settlements(d)[0].is_ok() && w.settlements(e)[0].is_ok());
    let (_, d_at, _) = w.app.settled.iter().find(|s| s.1 == d).unwrap();
    let (_, e_at, _) = w.app.settled.iter().find(|s| s.1 == e).unwrap();
    assert!(d_at <= e_at);
    assert_eq!(w.client.buffered().packets, 0);
    w.assert_clean();
}

#[test]
fn reliable_emit_fails_after_retries_then_the_next_goes() {
    // PROTOCOL.md §7 #19: retries 2, ackTimeout 100: 20, 21, 22 about 100 ms apart, an error, then 23.
    let mut w = World::with(reliable_config(2, 100), ServerConfig::default());
    w.server.drop_acks_for.insert("nothing-acks".into());
    w.connect();
    w.run_until(100);
    let lost = w.emit_ack("nothing-acks", "[1]");
    let echo = w.emit_ack("echo", "[2]");
    w.run_until(1_000);
    let wire: Vec<(u64, String)> = w.sent_starting("42");
    assert_eq!(
        wire,
        vec![
            (100, r#"420["nothing-acks",1]"#.to_string()),
            (200, r#"421["nothing-acks",1]"#.to_string()),
            (300, r#"422["nothing-acks",1]"#.to_string()),
            (400, r#"423["echo",2]"#.to_string()),
        ]
    );
    assert_eq!(w.settlements(lost), vec![&Err(EmitError::Timeout)]);
    assert_eq!(w.settlements(echo).len(), 1);
    assert_eq!(w.settlements(echo)[0].as_ref().unwrap().to_json_array(), "[2]");
    w.assert_clean();
}

#[test]
fn reliable_emit_uses_its_own_timeout_per_try() {
    // retries 1, ackTimeout 100 for the client, 250 for this emit: tries 250 ms apart.
    let mut w = World::with(reliable_config(1, 100), ServerConfig::default());
    w.server.drop_acks_for.insert("nothing-acks".into());
    w.connect();
    w.run_until(100);
    let req = EmitRequest::new("nothing-acks", tidings_core::Args::from_json_array("[1]".into(), vec![]).unwrap())
        .with_ack()
        .timeout(Duration::from_millis(250));
    let lost = w.emit(req).unwrap();
    w.run_until(1_000);
    let times: Vec<u64> = w.sent_starting("42").into_iter().map(|(t, _)| t).collect();
    assert_eq!(times, vec![100, 350]);
    assert_eq!(w.settlements(lost), vec![&Err(EmitError::Timeout)]);
    w.assert_clean();
}

#[test]
fn ack_timeout_without_retries() {
    // PROTOCOL.md §7 #18: timeout(50).emit("unknown") -> "operation has timed out".
    let mut w = World::with(config(), ServerConfig::default());
    w.server.drop_acks_for.insert("unknown".into());
    w.connect();
    w.run_until(100);
    let id = w.emit(EmitRequest::new("unknown", args("[]")).timeout(Duration::from_millis(50))).unwrap();
    w.run_until(149);
    assert!(w.settlements(id).is_empty());
    w.run_until(150);
    assert_eq!(w.settlements(id), vec![&Err(EmitError::Timeout)]);
    assert_eq!(w.client.buffered().pending_acks, 0);
}

#[test]
fn send_buffer_flushes_after_the_connect_ack_never_with_it() {
    // PROTOCOL.md §7 #16, over polling so that batching could put them together.
    let mut cfg = config();
    cfg.transports = TransportConfig { upgrade: false, ..TransportConfig::polling_first() };
    let mut w = World::with(cfg, ServerConfig::default());
    let early1 = w.emit(EmitRequest::new("early", args("[1]"))).unwrap();
    let early2 = w.emit_ack("early", "[2]");
    assert_eq!(w.client.buffered().packets, 2);
    w.run_until(100);
    assert!(w.http.is_empty(), "nothing is sent before connect()");
    w.connect();
    w.run_until(500);
    let posts: Vec<String> = w
        .http
        .iter()
        .filter(|(_, r)| r.purpose == RequestPurpose::PollSend)
        .filter_map(|(_, r)| r.body.clone())
        .collect();
    let with_connect = posts.iter().find(|b| b.starts_with("40")).unwrap();
    assert!(!with_connect.contains("42"), "{posts:?}");
    let received: Vec<String> = w.server.received.iter().map(|r| r.args.clone()).collect();
    assert_eq!(received, strs(&["[1]", "[2]"]));
    assert!(w.server.received[0].at >= w.server.connections[0].at);
    assert_eq!(w.settlements(early2).len(), 1);
    assert!(w.settlements(early1).is_empty(), "no ack was asked");
    // While disconnected: a timed emit leaves the buffer at its timeout, the other is flushed later.
    w.drop_transports();
    w.run_for(10);
    let timed = w.emit(EmitRequest::new("late", args("[3]")).timeout(Duration::from_millis(200))).unwrap();
    let kept = w.emit_ack("late", "[4]");
    w.run_for(250);
    assert_eq!(w.settlements(timed), vec![&Err(EmitError::Timeout)]);
    assert_eq!(w.client.buffered().packets, 1);
    assert!(w.run_until_cond(10_000, World::connected));
    w.run_for(500);
    let late: Vec<String> = w.server.received_named("late").iter().map(|r| r.args.clone()).collect();
    assert_eq!(late, strs(&["[4]"]));
    assert_eq!(w.settlements(kept).len(), 1);
    w.assert_clean();
}

#[test]
fn volatile_emit_is_dropped_while_disconnected() {
    let mut w = World::with(config(), ServerConfig::default());
    let r = w.emit(EmitRequest::new("v", args("[1]")).volatile());
    assert_eq!(r, Err(EmitRefused::Failed(EmitError::VolatileDropped)));
    w.connect();
    w.run_until(100);
    w.emit(EmitRequest::new("v", args("[2]")).volatile()).unwrap();
    w.run_until(200);
    assert_eq!(w.server.received.len(), 1);
    assert_eq!(w.server.received[0].args, "[2]");
}

// ---------------------------------------------------------------------------------- transports

#[test]
fn websocket_blocked_falls_back_to_polling_then_moves_back() {
    let mut w = World::with(config(), s0());
    // A proxy refuses WebSocket upgrades.
    w.link.ws_blocked = true;
    w.connect();
    assert!(w.run_until_cond(20_000, World::connected));
    // Two WebSocket failures (fallback_after = 2), then a polling handshake and a failed probe.
    let errors: Vec<String> = w.app.connect_errors.iter().map(|e| e.2.message.clone()).collect();
    assert_eq!(errors, strs(&["websocket error", "websocket error"]));
    assert!(w.app.connect_errors.iter().all(|e| e.2.will_retry && e.2.fallback_pending), "the fallback is pending");
    assert_eq!(w.server.handshakes.iter().map(|h| h.1).collect::<Vec<_>>(), vec!["polling"]);
    let (transport, _, _) = connected_state(&w).unwrap();
    assert_eq!(transport, TransportKind::Polling);
    let probe_at = w.ws_opens.last().unwrap().0;
    assert!(w.ws_opens.last().unwrap().1.contains("&sid=E"));
    // Events flow over polling.
    w.server_emit("news", r#""over polling""#);
    w.run_for(200);
    assert_eq!(names(&w), strs(&["over polling"]));
    // The proxy is fixed; the WebSocket is probed again 30 s after the failed probe.
    w.link.ws_blocked = false;
    w.run_until(probe_at + 20 + 30_000 - 1);
    assert_eq!(w.server.transport(), Some("polling"));
    w.run_until(probe_at + 20 + 30_000 + 200);
    assert_eq!(w.ws_opens.last().unwrap().0, probe_at + 20 + 30_000);
    assert_eq!(w.server.transport(), Some("websocket"));
    assert_eq!(connected_state(&w).unwrap().0, TransportKind::WebSocket);
    w.server_emit("news", r#""over websocket""#);
    w.run_for(200);
    assert_eq!(names(&w), strs(&["over polling", "over websocket"]));
    // Back on WebSocket for good: after a drop the client reconnects over WebSocket directly.
    drop_and_reconnect(&mut w);
    assert_eq!(w.server.handshakes.last().unwrap().1, "websocket");
    w.assert_clean();
}

#[test]
fn polling_first_upgrades_without_losing_or_reordering() {
    let mut cfg = config();
    cfg.transports = TransportConfig::polling_first();
    let mut w = World::new(cfg, s0(), LinkConfig { latency: 15, jitter: 10, loss: 0.0 }, 3);
    w.connect();
    assert!(w.http[0].1.url.starts_with("http://127.0.0.1:3000/socket.io/?EIO=4&transport=polling&t="));
    // Emits from both sides every 7 ms, across the upgrade.
    let mut sent = Vec::new();
    let mut n = 0;
    while w.now < 400 {
        if w.connected() {
            n += 1;
            w.server_emit("tick", &n.to_string());
            sent.push(w.emit_ack("tock", &format!("[{n}]")));
        }
        w.run_for(7);
    }
    w.run_until(1_000);
    assert_eq!(w.server.upgrades.len(), 1);
    let up = w.server.upgrades[0];
    assert!(n > 10 && w.server.received.iter().any(|r| r.at < up) && w.server.received.iter().any(|r| r.at > up));
    let got: Vec<String> = w.app.events.iter().map(|(_, e)| e.args.get(0).unwrap().to_string()).collect();
    assert_eq!(got, (1..=n).map(|i| i.to_string()).collect::<Vec<_>>());
    let recv: Vec<String> = w.server.received.iter().map(|r| r.args.clone()).collect();
    assert_eq!(recv, (1..=n).map(|i| format!("[{i}]")).collect::<Vec<_>>());
    assert!(sent.iter().all(|s| w.settlements(*s).len() == 1));
    // The probe: 2probe, 3probe, 5; then no more polling.
    assert!(w.sent.iter().any(|(_, r)| r == "2probe") && w.sent.iter().any(|(_, r)| r == "5"));
    let last_poll = w.http.iter().map(|(t, _)| *t).max().unwrap();
    assert!(last_poll <= up, "polled at {last_poll} after the upgrade at {up}");
    assert_eq!(connected_state(&w).unwrap().0, TransportKind::WebSocket);
    let transports: Vec<TransportKind> = w
        .states("/")
        .into_iter()
        .filter_map(|(_, s)| match s {
            ConnectionState::Connected { transport, .. } => Some(transport),
            _ => None,
        })
        .collect();
    assert_eq!(transports, vec![TransportKind::Polling, TransportKind::WebSocket]);
    w.assert_clean();
}

// ---------------------------------------------------------------------------------- terminal cases

#[test]
fn io_server_disconnect_does_not_reconnect() {
    let mut w = World::with(config(), s0());
    w.connect();
    w.run_until(100);
    let (_, _, sid) = connected_state(&w).unwrap();
    w.server_emit("news", r#""e1""#);
    w.run_until(200);
    w.server_disconnect("/");
    w.run_until(60_000);
    assert_eq!(disconnects(&w), vec![(220, DisconnectReason::IoServerDisconnect)]);
    assert!(reconnects(&w).is_empty());
    assert_eq!(w.ws_opens.len(), 1);
    assert_eq!(w.server.session_count(), 0, "the engine was closed");
    // The application reconnects by hand: a new socket, and no recovery attempt (no pid).
    w.connect();
    assert!(w.run_until_cond(1_000, World::connected));
    assert_ne!(connected_state(&w).unwrap().2, sid);
    assert_eq!(w.sent_starting("40").last().unwrap().1, "40");
    w.assert_clean();
}

#[test]
fn client_disconnect_sends_41_and_stays_down() {
    let mut w = World::with(config(), s0());
    w.connect();
    w.run_until(100);
    w.disconnect();
    w.run_until(10_000);
    assert_eq!(w.sent_starting("41"), vec![(100, "41".to_string())]);
    assert_eq!(disconnects(&w), vec![(100, DisconnectReason::IoClientDisconnect)]);
    assert_eq!(w.ws_opens.len(), 1);
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.server.disconnects[0].3, "client namespace disconnect");
}

#[test]
fn client_disconnect_over_polling_posts_41_then_1() {
    // PROTOCOL.md §7 #23 over polling: the DISCONNECT and the close go out in order, then nothing.
    let mut cfg = config();
    cfg.transports = TransportConfig::only(TransportKind::Polling);
    let mut w = World::with(cfg, s0());
    w.connect();
    w.run_until(200);
    assert!(w.connected());
    w.disconnect();
    assert!(w.client.is_flushing());
    w.run_until(10_000);
    assert!(!w.client.is_flushing());
    let tail: Vec<String> = w.sent.iter().rev().take(2).rev().map(|(_, r)| r.clone()).collect();
    assert_eq!(tail, strs(&["41", "1"]));
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.open_attempts().len(), 1);
    w.assert_clean();
}

#[test]
fn a_polling_request_cut_after_the_server_answered_ends_the_session_so_the_next_one_recovers() {
    // The server answers the pending GET with e2 and the answer is lost with its connection: the
    // server has no request pending, so it does not notice, and its session would live on until
    // its heartbeat ended it; meanwhile socket.io restores no session whose socket is still
    // connected. Leaving a polling session on a failed request, the client POSTs `1` to it, as
    // socket.io-client does: the server ends it (keeping it for recovery), and the next
    // connection recovers e2.
    let mut cfg = config();
    cfg.transports = TransportConfig::only(TransportKind::Polling);
    let mut w = World::with(cfg, ServerConfig::default());
    w.connect();
    w.run_until(200);
    assert!(w.connected());
    w.server_emit("news", r#""e1""#);
    w.run_until(300);
    w.server_emit("news", r#""e2""#);
    w.run_for(5);
    w.drop_transports();
    w.run_for(5);
    assert!(!w.connected());
    assert!(w.run_until_cond(10_000, World::connected), "{}", w.dump());
    assert!(connected_state(&w).unwrap().1, "recovered: {}", w.dump());
    w.run_for(1_000);
    assert_eq!(names(&w), strs(&["e1", "e2"]));
    assert_eq!(w.server.disconnects[0].3, "transport close", "ended by the client's goodbye");
    w.assert_clean();
}

#[test]
fn emits_queued_behind_a_polling_post_go_out_on_the_next_connection_when_the_session_is_lost() {
    // Over long-polling one POST is in flight at a time; emits made meanwhile wait in the
    // session's queue. The connection drops: those were never written, so they go back to the
    // send buffer and are sent once after the next CONNECT ack, in order. The one in the POST
    // that was lost in transit is not sent again (the client cannot know whether the server got
    // it: an emit without an ack is at most once, docs/RELIABILITY.md "Guarantees").
    let mut cfg = config();
    cfg.transports = TransportConfig::only(TransportKind::Polling);
    let mut w = World::with(cfg, ServerConfig::default());
    w.connect();
    w.run_until(300);
    assert!(w.connected());
    for n in ["a", "b", "c"] {
        w.emit(EmitRequest::new("say", tidings_core::Args::from_json_array(format!(r#"["{n}"]"#), vec![]).unwrap()))
            .unwrap();
    }
    w.run_for(1);
    w.drop_transports();
    assert!(w.run_until_cond(10_000, |w| w.connected() && w.server.received.len() >= 2), "{}", w.dump());
    w.run_for(1_000);
    let got: Vec<&str> = w.server.received.iter().map(|r| r.args.as_str()).collect();
    assert_eq!(got, [r#"["b"]"#, r#"["c"]"#], "b and c once, in order; a was lost with its POST: {}", w.dump());
    w.assert_clean();
}

#[test]
fn frames_a_driver_never_wrote_to_a_failed_websocket_go_out_on_the_next_connection() {
    // The native driver keeps its own queue of frames to write; when the socket fails (here: the
    // peer stopped reading), what is still in it was never sent. Reported with `WsUnsent`, the
    // emits among those frames are sent once after the next CONNECT ack, before later emits; an
    // ack request among them is not (its ack fails with Disconnected, as every unanswered one).
    let mut w = World::with(config(), ServerConfig::default());
    w.connect();
    w.run_until(300);
    assert!(w.connected());
    let conn = w.last_ws().expect("a WebSocket");
    let unsent = vec![
        tidings_core::engineio::Frame::Text(r#"42["say","b"]"#.to_string()),
        tidings_core::engineio::Frame::Text(r#"421["ask","q"]"#.to_string()),
        tidings_core::engineio::Frame::Text(r#"42["say","c"]"#.to_string()),
    ];
    w.input(Input::WsUnsent { conn, frames: unsent });
    w.input(Input::WsClosed { conn, code: None, error: Some("the peer stopped reading".into()) });
    w.emit(EmitRequest::new("say", tidings_core::Args::from_json_array(r#"["d"]"#.to_string(), vec![]).unwrap()))
        .unwrap();
    assert!(w.run_until_cond(10_000, |w| w.server.received.len() >= 3), "{}", w.dump());
    w.run_for(1_000);
    let got: Vec<(&str, &str)> = w.server.received.iter().map(|r| (r.event.as_str(), r.args.as_str())).collect();
    assert_eq!(got, [("say", r#"["b"]"#), ("say", r#"["c"]"#), ("say", r#"["d"]"#)], "{}", w.dump());
}

fn binary_emit(kind: TransportKind) {
    let mut cfg = config();
    cfg.transports = TransportConfig::only(kind);
    let mut w = World::with(cfg, s0());
    w.connect();
    w.run_until(200);
    let att = tidings_core::Args::from_json_array(
        r#"["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#.to_string(),
        vec![vec![1, 2, 3], b"asdfasdf".to_vec()],
    )
    .unwrap();
    let id = w.emit(EmitRequest::new("upload", att).with_ack()).unwrap();
    w.run_until(400);
    // BINARY_EVENT (never BINARY_ACK) with two attachments, reassembled by the server in order.
    let header = w.sent_starting("45");
    assert_eq!(header.len(), 1);
    assert!(header[0].1.starts_with(r#"452-0["upload","a",{"_placeholder":true"#), "{}", header[0].1);
    let r = &w.server.received[0];
    assert_eq!(r.attachments, vec![vec![1, 2, 3], b"asdfasdf".to_vec()]);
    assert_eq!(w.settlements(id)[0].as_ref().unwrap().to_json_array(), "[3,8]");
    if kind == TransportKind::Polling {
        // PROTOCOL.md §7 #15: the header and its attachments (`b<base64>` records) in one
        // text/plain POST body.
        let records: Vec<&str> =
            w.sent.iter().map(|(_, r)| r.as_str()).skip_while(|r| !r.starts_with("452-")).collect();
        assert_eq!(&records[1..3], &["bAQID", "bYXNkZmFzZGY="]);
        let posts: Vec<&HttpRequest> =
            w.http.iter().filter(|(_, r)| r.purpose == RequestPurpose::PollSend).map(|(_, r)| r).collect();
        let binary_post = posts.iter().find(|r| r.body.as_deref().is_some_and(|b| b.starts_with("452-"))).unwrap();
        let body = binary_post.body.as_deref().unwrap();
        assert!(body.ends_with("\u{1e}bAQID\u{1e}bYXNkZmFzZGY="), "{body:?}");
        assert!(posts.iter().all(|r| r.content_type == Some("text/plain;charset=UTF-8")));
    }
    w.assert_clean();
}

#[test]
fn binary_emit_over_websocket() {
    binary_emit(TransportKind::WebSocket);
}

#[test]
fn binary_emit_over_polling() {
    binary_emit(TransportKind::Polling);
}

#[test]
fn connect_error_from_middleware_is_terminal() {
    // PROTOCOL.md §7 #8.
    let mut server = s0();
    server.namespaces.insert("/".into(), NsRule { token: None, refuse: Some("not authorized".into()) });
    let mut cfg = config();
    cfg.auth = AuthMode::Static(r#"{"token":"t"}"#.into());
    let mut w = World::with(cfg, server);
    w.connect();
    w.run_until(30_000);
    assert_eq!(w.app.connect_errors.len(), 1);
    let e = &w.app.connect_errors[0].2;
    assert_eq!(
        (e.message.as_str(), e.data.as_deref(), e.will_retry),
        ("not authorized", Some(r#"{"code":42}"#), false)
    );
    assert_eq!(w.last_state("/"), Some(ConnectionState::Disconnected { reason: DisconnectReason::ConnectError }));
    assert_eq!(w.ws_opens.len(), 1);
}

#[test]
fn connect_error_auth_asks_for_fresh_auth_once() {
    let mut server = s0();
    server.namespaces.insert("/".into(), NsRule { token: Some("good".into()), refuse: None });
    let mut cfg = config();
    cfg.auth = AuthMode::Provider;
    let mut w = World::with(cfg.clone(), server.clone());
    w.auth_tokens = [Some(r#"{"token":"expired"}"#.into()), Some(r#"{"token":"good"}"#.into())].into();
    w.connect();
    w.run_until(1_000);
    assert_eq!(w.app.need_auth.len(), 2);
    assert_eq!(w.app.connect_errors.len(), 1);
    assert!(w.app.connect_errors[0].2.will_retry);
    assert_eq!(w.app.connect_errors[0].2.message, "invalid token");
    assert!(w.connected());
    assert_eq!(w.server.connections[0].auth.as_deref(), Some(r#"{"token":"good"}"#));
    assert_eq!(w.server.handshakes.len(), 1, "the refresh reuses the engine session");

    // A refreshed token that fails too is final: no third request, no reconnect.
    let mut w = World::with(cfg, server);
    w.auth_tokens = [Some(r#"{"token":"expired"}"#.into()), Some(r#"{"token":"also-bad"}"#.into())].into();
    w.connect();
    w.run_until(30_000);
    assert_eq!(w.app.need_auth.len(), 2);
    let retry: Vec<bool> = w.app.connect_errors.iter().map(|e| e.2.will_retry).collect();
    assert_eq!(retry, vec![true, false]);
    assert_eq!(w.last_state("/"), Some(ConnectionState::Disconnected { reason: DisconnectReason::ConnectError }));
    assert_eq!(w.ws_opens.len(), 1);
    w.assert_clean();
}

#[test]
fn a_failing_auth_provider_is_asked_again_after_the_backoff_and_never_bypassed() {
    let mut server = s0();
    server.namespaces.insert("/".into(), NsRule { token: Some("good".into()), refuse: None });
    let mut cfg = config();
    cfg.auth = AuthMode::Provider;
    let mut w = World::with(cfg.clone(), server.clone());
    w.auth_failures = 2;
    w.auth_tokens = [Some(r#"{"token":"good"}"#.into())].into();
    w.connect();
    w.run_until(30_000);
    assert!(w.connected());
    let asked: Vec<u64> = w.app.need_auth.iter().map(|(t, _)| *t).collect();
    assert_eq!(asked.len(), 3);
    // The reconnect backoff between the requests (1 s first delay, randomization 0.5).
    assert!(asked[1] - asked[0] >= 500 && asked[2] - asked[1] >= 1_000, "{asked:?}");
    let errors: Vec<(bool, bool)> = w
        .app
        .connect_errors
        .iter()
        .map(|e| (e.2.will_retry, e.2.message == "the auth provider failed: token service unavailable"))
        .collect();
    assert_eq!(errors, vec![(true, true), (true, true)]);
    // No CONNECT went out without auth, and the engine session stayed open meanwhile.
    assert_eq!(w.server.connections.len(), 1);
    assert_eq!(w.server.connections[0].auth.as_deref(), Some(r#"{"token":"good"}"#));
    assert_eq!(w.server.handshakes.len(), 1);
    w.assert_clean();

    // A provider value that is not a JSON object counts as a failure too.
    let mut w = World::with(cfg.clone(), server.clone());
    w.auth_tokens = [Some(r#""just a string""#.into()), Some(r#"{"token":"good"}"#.into())].into();
    w.connect();
    w.run_until(30_000);
    assert!(w.connected());
    let messages: Vec<&str> = w.app.connect_errors.iter().map(|e| e.2.message.as_str()).collect();
    assert_eq!(messages, ["the auth provider failed: it gave something that is not a JSON object"]);
    assert_eq!(w.server.connections[0].auth.as_deref(), Some(r#"{"token":"good"}"#));

    // Without reconnection the first failure is final.
    cfg.reconnect.enabled = false;
    let mut w = World::with(cfg, server);
    w.auth_failures = 1;
    w.connect();
    w.run_until(10_000);
    assert_eq!(w.app.need_auth.len(), 1);
    assert_eq!(w.app.connect_errors.iter().map(|e| e.2.will_retry).collect::<Vec<_>>(), vec![false]);
    assert_eq!(w.last_state("/"), Some(ConnectionState::Disconnected { reason: DisconnectReason::ConnectError }));
    assert!(w.server.connections.is_empty());
}

#[test]
fn a_malformed_packet_closes_the_connection_with_its_cause_then_reconnects() {
    let mut w = World::with(config(), s0());
    w.connect();
    w.run_until(100);
    // Invalid JSON in an EVENT: the codec's own error is the fault, then "parse error".
    w.server_raw_event("/", r#"["news",{"a":tru}]"#);
    w.run_for(100);
    assert_eq!(w.app.faults.len(), 1);
    let fault = &w.app.faults[0].1;
    assert!(
        matches!(fault, tidings_core::Fault::Socket(tidings_core::socketio::Error::BadJson(e)) if e.reason == "invalid literal"),
        "{fault:?}"
    );
    assert_eq!(fault.to_string(), "bad Socket.IO packet: invalid payload: invalid JSON: invalid literal at byte 14");
    assert_eq!(disconnects(&w).last().map(|d| d.1), Some(DisconnectReason::ParseError));
    assert!(w.run_until_cond(10_000, World::connected), "socket.io-client reconnects after a parse error");
    assert!(w.app.events.is_empty(), "nothing was delivered from the bad packet");
}

#[test]
fn the_state_query_says_what_the_last_state_output_said() {
    let mut w = World::with(config(), s0());
    // Opened, not asked to connect yet: the core says so (no driver invents a state).
    assert_eq!(w.client.state("/"), Some(&ConnectionState::NOT_CONNECTED));
    w.connect();
    w.run_until(100);
    assert_eq!(w.client.state("/"), w.last_state("/").as_ref());
    assert!(matches!(w.client.state("/"), Some(ConnectionState::Connected { .. })));
    w.disconnect();
    assert_eq!(
        w.client.state("/"),
        Some(&ConnectionState::Disconnected { reason: DisconnectReason::IoClientDisconnect })
    );
    assert_eq!(w.client.state("/never-opened"), None);
}

#[test]
fn online_and_visible_retry_at_once() {
    let mut w = World::with(config(), s0());
    w.connect();
    w.run_until(100);
    // The server goes away; the transport drops.
    w.server.engine_down = true;
    w.drop_transports();
    w.run_for(10);
    let (t1, _, d1) = reconnects(&w)[0];
    assert!(d1 >= 500);
    // t1+100: the page says the network is back: the attempt is made at once, not at t1+d1.
    w.run_until(t1 + 100);
    w.input(Input::Online);
    assert_eq!(w.ws_opens.last().unwrap().0, t1 + 100);
    w.run_for(50);
    let (t2, attempt, _) = *reconnects(&w).last().unwrap();
    assert_eq!(attempt, 2);
    // Visible does the same.
    w.run_until(t2 + 100);
    w.input(Input::Visible);
    assert_eq!(w.ws_opens.last().unwrap().0, t2 + 100);
    w.server.engine_down = false;
    w.run_for(50);
    w.input(Input::Online);
    assert!(w.run_until_cond(200, World::connected));
    // Offline closes a live connection at once ("transport close"), and it comes back by itself.
    w.input(Input::Offline);
    assert_eq!(disconnects(&w).last().unwrap(), &(w.now, DisconnectReason::TransportClose));
    assert!(w.run_until_cond(10_000, World::connected));
}

// ---------------------------------------------------------------------------------- REST feed

#[test]
fn rest_feed_bridges_an_outage_without_duplicates() {
    let mut cfg = config();
    cfg.auth = AuthMode::Static(r#"{"token":"t1"}"#.into());
    let mut feed = FeedConfig::new("http://127.0.0.1:3000/api/feed");
    feed.after = Duration::from_secs(2);
    feed.interval = Duration::from_secs(1);
    feed.min_interval = Duration::from_secs(1);
    feed.max_interval = Duration::from_secs(5);
    cfg.feed = Some(feed);
    let mut w = World::with(cfg, ServerConfig::default());
    w.connect();
    w.run_until(100);
    w.server_emit("news", r#""e1""#);
    w.run_until(200);
    // t=200: the Socket.IO endpoint goes down (the feed stays up).
    w.server.engine_down = true;
    w.drop_transports();
    w.run_for(10);
    let down_at = disconnects(&w)[0].0;
    w.server_emit("news", r#""e2""#);
    w.server_emit("news", r#""e3""#);
    // Nothing polls the feed before the threshold.
    w.run_until(down_at + 1_999);
    assert!(w.server.feed_polls.is_empty());
    w.run_until(down_at + 2_100);
    let polls: Vec<&tidings_core::HttpRequest> =
        w.http.iter().filter(|(_, r)| r.purpose == RequestPurpose::FeedPoll).map(|(_, r)| r).collect();
    assert_eq!(w.http.iter().find(|(_, r)| r.purpose == RequestPurpose::FeedPoll).unwrap().0, down_at + 2_000);
    assert_eq!(polls[0].url, "http://127.0.0.1:3000/api/feed/events?limit=100");
    assert_eq!(polls[0].authorization.as_deref(), Some("Bearer t1"));
    assert_eq!(w.app.feed[0].1, FeedStatus::Polling);
    // e1 came over the socket already; e2 and e3 come from the feed and are acknowledged.
    assert_eq!(names(&w), strs(&["e1", "e2", "e3"]));
    assert_eq!(w.app.events[1].1.source, EventSource::Feed);
    assert_eq!(w.server.feed_acked, strs(&["evt_1", "evt_2", "evt_3"]));
    // The next poll continues from the cursor.
    w.server_emit("news", r#""e4""#);
    w.run_for(1_000);
    assert_eq!(w.server.feed_polls[1].1, "http://127.0.0.1:3000/api/feed/events?limit=100&since=o3");
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4"]));
    // The socket comes back and recovers: the replayed e2..e4 are not delivered again; the feed stops.
    w.server.engine_down = false;
    assert!(w.run_until_cond(10_000, World::connected));
    assert!(connected_state(&w).unwrap().1, "recovered");
    assert_eq!(w.app.feed.last().unwrap().1, FeedStatus::Stopped);
    let polls_then = w.server.feed_polls.len();
    w.server_emit("news", r#""e5""#);
    w.run_for(10_000);
    assert_eq!(w.server.feed_polls.len(), polls_then);
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4", "e5"]));
    assert_eq!(w.app.events[4].1.source, EventSource::Socket);
    w.assert_clean();
}

/// An event carrying a Tidings envelope whose id is the harness feed's id for log entry `seq`.
fn envelope(seq: u64) -> String {
    format!(r#"{{"id":"evt_{seq}","type":"news","data":{seq}}}"#)
}

/// The `data` of every delivered event's envelope, with where it came from.
fn enveloped(w: &World) -> Vec<(u64, EventSource)> {
    w.app
        .events
        .iter()
        .map(|(_, e)| {
            let arg = e.args.get(0).unwrap();
            let data = arg.rsplit("\"data\":").next().unwrap().trim_end_matches('}');
            (data.parse().unwrap(), e.source)
        })
        .collect()
}

/// A server without recovery (socketioxide, or a socket.io node that lost the session): after
/// the reconnect the client reads what it missed from the feed, page after page and at once, not
/// after the fallback's delay, while the socket's new events wait; then those follow. Every
/// event once, in order.
#[test]
fn an_unrecovered_reconnect_catches_up_from_the_feed_before_the_sockets_new_events() {
    let mut cfg = config();
    let mut feed = FeedConfig::new("http://127.0.0.1:3000/api/feed");
    feed.after = Duration::from_secs(30);
    feed.limit = 2;
    cfg.feed = Some(feed);
    let server = ServerConfig { recovery: false, ..ServerConfig::default() };
    let mut w = World::with(cfg, server);
    w.connect();
    assert!(w.run_until_cond(5_000, World::connected));
    // The first connect has nothing to resume from: no catch-up.
    w.run_for(100);
    assert!(w.server.feed_polls.is_empty());
    w.server_emit("news", &envelope(1));
    w.server_emit("news", &envelope(2));
    w.run_for(100);
    // The server drops the connection; five events are published while the client is away.
    w.server_close_transports();
    w.run_for(50);
    assert!(!w.connected());
    for seq in 3..=7 {
        w.server_emit("news", &envelope(seq));
    }
    assert!(w.run_until_cond(10_000, World::connected));
    assert!(!connected_state(&w).unwrap().1, "not recovered");
    // Live events right after the reconnect, before the feed has answered.
    w.server_emit("news", &envelope(8));
    w.server_emit("news", &envelope(9));
    w.run_for(2_000);
    let polls: Vec<&str> = w.server.feed_polls.iter().map(|(_, u, _)| u.as_str()).collect();
    assert_eq!(
        polls,
        [
            "http://127.0.0.1:3000/api/feed/events?limit=2&since=evt_2",
            "http://127.0.0.1:3000/api/feed/events?limit=2&since=o4",
            "http://127.0.0.1:3000/api/feed/events?limit=2&since=o6",
            "http://127.0.0.1:3000/api/feed/events?limit=2&since=o8",
        ],
        "from the last delivered envelope, page after page until there is no more"
    );
    use EventSource::{Feed, Socket};
    assert_eq!(
        enveloped(&w),
        [(1, Socket), (2, Socket), (3, Feed), (4, Feed), (5, Feed), (6, Feed), (7, Feed), (8, Feed), (9, Feed)],
        "the feed read past the seam, so the waiting socket copies of 8 and 9 were dropped as duplicates"
    );
    let statuses: Vec<&FeedStatus> = w.app.feed.iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, [&FeedStatus::CatchingUp, &FeedStatus::CaughtUp]);
    assert_eq!(w.client.cursor(), Some("o9"), "the position of the last delivered event: the feed's offset");
    // Then live again, over the socket.
    w.server_emit("news", &envelope(10));
    w.run_for(100);
    assert_eq!(enveloped(&w).last(), Some(&(10, Socket)));
    assert_eq!(w.client.cursor(), Some("evt_10"), "a socket event's envelope id");
    w.assert_clean();
}

/// The socket's events that arrive after the feed's last page go out after it; the feed failing
/// for good releases them too, and says what may be missing.
#[test]
fn events_that_waited_for_a_catch_up_follow_it_or_its_failure() {
    let mut cfg = config();
    let mut feed = FeedConfig::new("http://127.0.0.1:3000/api/feed");
    feed.after = Duration::from_secs(30);
    feed.max_failures = 2;
    feed.interval = Duration::from_secs(1);
    feed.min_interval = Duration::from_secs(1);
    cfg.feed = Some(feed);
    let server = ServerConfig { recovery: false, ..ServerConfig::default() };
    let mut w = World::with(cfg, server);
    w.connect();
    assert!(w.run_until_cond(5_000, World::connected));
    w.server_emit("news", &envelope(1));
    w.run_for(100);
    w.server_close_transports();
    w.run_for(50);
    assert!(!w.connected());
    w.server_emit("news", &envelope(2));
    w.server.feed_status = Some(503);
    assert!(w.run_until_cond(10_000, World::connected));
    w.server_emit("news", &envelope(3));
    w.run_for(5_000);
    use EventSource::Socket;
    assert_eq!(enveloped(&w), [(1, Socket), (3, Socket)], "2 could not be read: reported below, 3 not held back");
    assert!(
        matches!(&w.app.feed.last().unwrap().1, FeedStatus::GaveUp { error } if error.contains("503")),
        "{:?}",
        w.app.feed
    );
}

/// A feed polled from 1 s after the drop, every 1-2 s, that gives up after 3 failures; the
/// Engine.IO server is down.
fn world_with_failing_feed(tune: impl FnOnce(&mut FeedConfig)) -> World {
    let mut cfg = config();
    let mut feed = FeedConfig::new("http://127.0.0.1:3000/api/feed");
    feed.after = Duration::from_secs(1);
    feed.interval = Duration::from_secs(1);
    feed.min_interval = Duration::from_secs(1);
    feed.max_interval = Duration::from_secs(2);
    feed.max_failures = 3;
    tune(&mut feed);
    cfg.feed = Some(feed);
    let mut w = World::with(cfg, ServerConfig::default());
    w.server.engine_down = true;
    w
}

#[test]
fn rest_feed_gives_up_after_consecutive_failures() {
    let mut w = world_with_failing_feed(|_| {});
    w.server.feed_status = Some(503);
    w.connect();
    w.run_until(30_000);
    // 1 s threshold, then polls backing off x1.5 (capped at 2 s); the third failure gives up.
    let times: Vec<u64> =
        w.http.iter().filter(|(_, r)| r.purpose == RequestPurpose::FeedPoll).map(|(t, _)| *t).collect();
    assert_eq!(times, vec![1_000, 1_000 + 40 + 1_500, 1_000 + 40 + 1_500 + 40 + 2_000]);
    assert!(matches!(&w.app.feed.last().unwrap().1, FeedStatus::GaveUp { error } if error.contains("503")));
}

#[test]
fn a_feed_page_over_the_body_limit_is_asked_again_smaller_and_nothing_is_skipped() {
    let mut w = world_with_failing_feed(|f| f.max_body = 2_000);
    let big = "x".repeat(300);
    for i in 0..10 {
        w.server_emit("news", &format!(r#""{i}{big}""#));
    }
    w.connect();
    w.run_until(30_000);
    // Each feed entry is ~370 bytes: 100, 50, 25, 12 and 6 at once are too large, 3 fit; the page
    // grows back after each page that fits and shrinks again when it does not.
    let limits: Vec<String> = w
        .http
        .iter()
        .filter(|(_, r)| r.purpose == RequestPurpose::FeedPoll)
        .filter_map(|(_, r)| r.url.split("limit=").nth(1).map(|l| l.split('&').next().unwrap_or("").to_string()))
        .collect();
    assert_eq!(limits[..6], strs(&["100", "50", "25", "12", "6", "3"])[..]);
    let got: Vec<String> = w.app.events.iter().map(|(_, e)| e.args.get(0).unwrap()[1..2].to_string()).collect();
    assert_eq!(got, (0..10).map(|i| i.to_string()).collect::<Vec<_>>(), "every event once, in order");
    assert!(!w.app.feed.iter().any(|(_, s)| matches!(s, FeedStatus::GaveUp { .. })));

    // One event alone larger than the limit is reported, never skipped.
    w.server_emit("news", &format!(r#""{}""#, "y".repeat(3_000)));
    w.run_for(60_000);
    assert_eq!(w.app.events.len(), 10);
    assert!(
        matches!(&w.app.feed.last().unwrap().1, FeedStatus::GaveUp { error } if error.contains("larger than FeedConfig::max_body (2000 bytes)")),
        "{:?}",
        w.app.feed.last()
    );
}

#[test]
fn a_feed_that_never_answers_times_out_each_poll_and_gives_up() {
    let mut w = world_with_failing_feed(|f| f.request_timeout = Duration::from_secs(5));
    w.feed_silent = true;
    w.connect();
    w.run_until(60_000);
    // Each poll is aborted after 5 s and counts as a failure; the third gives up.
    let polls: Vec<(u64, u64)> =
        w.http.iter().filter(|(_, r)| r.purpose == RequestPurpose::FeedPoll).map(|(t, r)| (*t, r.id.get())).collect();
    let times: Vec<u64> = polls.iter().map(|p| p.0).collect();
    assert_eq!(times, vec![1_000, 6_000 + 1_500, 6_000 + 1_500 + 5_000 + 2_000]);
    let aborted = w.trace.iter().filter(|l| l.contains("ABORT")).count();
    assert_eq!(aborted, 3, "every silent poll was aborted");
    assert!(
        matches!(&w.app.feed.last().unwrap().1, FeedStatus::GaveUp { error } if error.contains("no answer within 5000 ms"))
    );
}

#[test]
fn an_absurd_ping_interval_from_the_server_is_clamped_to_an_hour() {
    let server = ServerConfig { ping_interval: u64::MAX / 4, ping_timeout: u64::MAX / 4, ..ServerConfig::default() };
    let mut w = World::with(config(), server);
    w.connect();
    w.run_until(100);
    assert!(w.connected());
    // The server goes silent: the client gives up after an hour, not never.
    w.server.pinging = false;
    w.run_until(3_600_000 + 1_000);
    assert!(disconnects(&w).iter().any(|d| d.1 == DisconnectReason::PingTimeout), "{:?}", disconnects(&w));
}

// ---------------------------------------------------------------------------------- several servers

/// The host of every engine opening (handshakes and WebSocket opens without a sid), in order.
fn opened_hosts(w: &World) -> Vec<String> {
    let host = |url: &str| url.split_once("://").map_or("", |(_, r)| r).split('/').next().unwrap_or("").to_string();
    let mut opens: Vec<(u64, String)> = w.ws_opens.iter().filter(|(_, u)| !u.contains("&sid=")).cloned().collect();
    opens.extend(
        w.http
            .iter()
            .filter(|(_, r)| r.purpose == RequestPurpose::PollReceive && !r.url.contains("&sid="))
            .map(|(t, r)| (*t, r.url.clone())),
    );
    opens.sort();
    opens.iter().map(|(_, u)| host(u)).collect()
}

#[test]
fn a_dead_server_is_left_for_the_next_one_with_recovery_and_the_next_series_starts_at_the_preferred() {
    let mut cfg = config();
    cfg.fallback_urls = vec![
        tidings_core::url::ServerUrl::parse("http://127.0.0.2:3000").unwrap(),
        tidings_core::url::ServerUrl::parse("http://127.0.0.3:3000").unwrap(),
    ];
    cfg.validate().unwrap();
    let mut w = World::with(cfg, ServerConfig::default());
    w.connect();
    assert!(w.run_until_cond(1_000, World::connected));
    assert_eq!(w.client.server().host, "127.0.0.1");
    w.server_emit("news", r#""e1""#);
    w.run_for(100);
    // The preferred server dies after a stable connection: it is tried once more, then the next.
    w.run_for(10_000);
    w.link.down_hosts = vec!["127.0.0.1:3000".into()];
    w.drop_transports();
    w.run_for(5);
    assert!(!w.connected());
    w.server_emit("news", r#""e2""#);
    assert!(w.run_until_cond(20_000, World::connected), "{}", w.dump());
    assert_eq!(opened_hosts(&w), strs(&["127.0.0.1:3000", "127.0.0.1:3000", "127.0.0.2:3000"]));
    assert_eq!(w.client.server().host, "127.0.0.2");
    // The session is recovered there (a cluster that shares its recovery state): nothing missed.
    assert!(connected_state(&w).unwrap().1, "recovered");
    w.server_emit("news", r#""e3""#);
    w.run_for(500);
    assert_eq!(names(&w), strs(&["e1", "e2", "e3"]));
    // The preferred server is back; a healthy connection to the fallback is kept...
    w.link.down_hosts.clear();
    w.run_for(60_000);
    assert_eq!(w.client.server().host, "127.0.0.2");
    assert_eq!(opened_hosts(&w).len(), 3);
    // ...until it is lost: the next series starts at the preferred server.
    drop_and_reconnect(&mut w);
    assert_eq!(opened_hosts(&w).last().map(String::as_str), Some("127.0.0.1:3000"));
    assert_eq!(w.client.server().host, "127.0.0.1");
    w.server_emit("news", r#""e4""#);
    w.run_for(500);
    assert_eq!(names(&w), strs(&["e1", "e2", "e3", "e4"]));
    w.assert_clean();
}

#[test]
fn with_every_server_down_the_attempts_walk_the_list_with_backoff_and_wrap_around() {
    let mut cfg = config();
    cfg.fallback_urls = vec![tidings_core::url::ServerUrl::parse("http://127.0.0.2:3000/").unwrap()];
    cfg.transports = TransportConfig { fallback_after: 0, ..TransportConfig::default() };
    let mut w = World::with(cfg, s0());
    w.link.down_hosts = vec!["127.0.0.1:3000".into(), "127.0.0.2:3000".into()];
    w.connect();
    w.run_until(20_000);
    let hosts = opened_hosts(&w);
    assert!(hosts.len() >= 5, "{hosts:?}");
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(h, if i % 2 == 0 { "127.0.0.1:3000" } else { "127.0.0.2:3000" }, "attempt {i}: {hosts:?}");
    }
    // The backoff grows across the servers, as with one server.
    let r = reconnects(&w);
    assert!(r.windows(2).all(|p| p[1].1 == p[0].1 + 1));
    // A fallback naming another namespace is refused.
    let mut bad = config();
    bad.fallback_urls = vec![tidings_core::url::ServerUrl::parse("http://127.0.0.2:3000/admin").unwrap()];
    assert!(bad.validate().is_err());
}
