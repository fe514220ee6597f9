//! The core's share of the receive path, without IO: decodes `N` `task.created` WebSocket frames
//! (the payload of the benchmarks in docs/BENCHMARKS.md) and reports each delivered, as a driver
//! would, five times. A profiling aid (`cargo run --release -p tidings-core --example receive_path [N]`),
//! not a benchmark of record.

// A program that measures, not the library: it may read the clock and stop on a broken setup.
#![allow(clippy::expect_used, clippy::disallowed_methods)]

use std::time::Instant as Clock;

use tidings_core::config::TransportConfig;
use tidings_core::{Client, Config, Input, Instant, Output, TransportKind};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let mut config = Config::new("http://127.0.0.1:1").expect("a valid URL");
    config.transports = TransportConfig::only(TransportKind::WebSocket);
    let mut client = Client::new(config).expect("a valid configuration");
    let now = Instant::from_millis(0);
    client.connect(now);
    let mut conn = None;
    loop {
        match client.poll_output() {
            Output::OpenWebSocket { conn: c, .. } => conn = Some(c),
            Output::Wait(_) => break,
            _ => {}
        }
    }
    let conn = conn.expect("the client opens a WebSocket");
    client.handle_input(now, Input::WsOpened(conn));
    let open = r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    client.handle_input(now, Input::WsText(conn, open.to_string()));
    client.handle_input(now, Input::WsText(conn, r#"40{"sid":"n"}"#.to_string()));
    while !matches!(client.poll_output(), Output::Wait(_)) {}

    let frames: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"42["task.created",{{"id":"task_01HZX3K9QGJ8F7Y2M4{i:08}","projectId":"proj_7f3a9c2e","title":"Update the onboarding checklist for new enterprise tenants","description":"Add SSO setup, SCIM provisioning and audit-log export steps; link the runbook.","status":"todo","priority":{},"assigneeId":"user_4821","labels":["onboarding","enterprise"],"createdAt":"2026-11-24T10:15:30.123Z","seq":{i}}}]"#,
                i % 4
            )
        })
        .collect();
    // The best of five rounds: the first one also pays for the allocator's first touch of memory.
    let mut best = f64::MAX;
    for _ in 0..5 {
        let frames = frames.clone();
        let started = Clock::now();
        let mut events = 0usize;
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            for f in frames.by_ref().take(32) {
                client.handle_input(now, Input::WsText(conn, f));
            }
            let mut last = None;
            loop {
                match client.poll_output() {
                    Output::Event(ev) => {
                        events += 1;
                        last = Some(ev.delivery);
                    }
                    Output::Wait(_) => break,
                    _ => {}
                }
            }
            if let Some(id) = last {
                client.delivered(now, id);
            }
        }
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(events, n, "every event was delivered");
    }
    println!("{n} events: {:.0} ns per event (best of 5 rounds)", best * 1e9 / n as f64);
}
