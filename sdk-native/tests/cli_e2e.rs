//! The `tidings` CLI as a black box against a real Node socket.io server: output format and exit codes.
//! Every run of the CLI is bounded: one that never exits is killed and fails its test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{NodeServer, output_within, stderr_line, wait_with_output_within, wait_within};
use serde_json::{Value, json};

/// How long a run of the CLI may take: longer than any `--timeout` below (20 s), but the
/// burst's, which has a bound of its own.
const T: Duration = Duration::from_secs(30);

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
}

/// Runs the CLI with `args` to its end, at most [`T`].
fn run(args: &[&str]) -> Output {
    output_within(cli().args(args), T, &format!("tidings {}", args.join(" ")))
}

#[test]
fn usage_errors_exit_2_with_a_helpful_message() {
    let out = run(&["listen"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen needs a URL"));
    let out = run(&["emit", "http://127.0.0.1:1", "ev", "{bad"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let out = run(&["listen", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    // A timeout no Duration can hold is a usage error, not a panic.
    let out = run(&["listen", "http://127.0.0.1:1", "--timeout", "1e20"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
    let out = run(&["listen", "http://127.0.0.1:1", "--since", "42"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --feed FEED_URL too"));
}

#[test]
fn emit_with_ack_prints_the_ack_arguments() {
    let srv = NodeServer::start("s0");
    let out = run(&["emit", &srv.url(), "echo", r#"{"a":1}"#, "2", "--ack", "--timeout", "5000"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, json!([{"a": 1}, 2]));
}

#[test]
fn connect_error_exits_3_with_message_and_data() {
    let srv = NodeServer::start("s0");
    let out = run(&["emit", &format!("{}/no", srv.url()), "x"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not authorized") && err.contains("42"), "{err}");
}

#[test]
fn emit_goes_to_the_fallback_server_when_the_url_is_down() {
    let srv = NodeServer::start("s0");
    // Nothing listens on port 1: the first attempt fails and the next one goes to --fallback.
    let out =
        run(&["emit", "http://127.0.0.1:1", "echo", "[1]", "--fallback", &srv.url(), "--ack", "--timeout", "5000"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([[1]]));
    let out = run(&["emit", "http://127.0.0.1:1", "x", "--fallback", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2), "a bad --fallback is a usage error");
}

#[test]
fn ack_timeout_exits_4() {
    let srv = NodeServer::start("s0");
    let out = run(&["emit", &srv.url(), "nothing-acks", "--ack", "--timeout", "300"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ack"));
}

#[test]
fn listen_times_out_with_5_before_count() {
    let srv = NodeServer::start("s0");
    let out = run(&["listen", &srv.url(), "--event", "never", "--count", "1", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(out.stdout.is_empty());
}

#[test]
fn listen_prints_events_binary_and_states_then_exits_0() {
    let srv = NodeServer::start("s0");
    let mut child = cli()
        .args([
            "listen",
            &srv.url(),
            "--token",
            "abc",
            "--event",
            "news",
            "--event",
            "doge",
            "--count",
            "3",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait for the connected state on stderr
    let connected = stderr_line(&mut child, r#""state":"connected""#, T, "listen's connected line");
    let v: Value = serde_json::from_str(&connected).unwrap();
    assert_eq!(v["recovered"], json!(false));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        srv.emit("/", "news", json!(["hello", {"n": 1}])).await;
        srv.emit("/", "doge", json!([{"$base64": "YXNkZmFzZGY="}, 7])).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    // The third event is broadcast by the server when another CLI process emits `bcast`: this
    // checks that `tidings emit` (no ack) is delivered before it disconnects.
    let out = run(&["emit", &srv.url(), "bcast", r#""x""#]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wait_with_output_within(child, T, "tidings listen");
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], json!({"event": "news", "args": ["hello", {"n": 1}], "namespace": "/", "offset": null}));
    assert_eq!(lines[1]["event"], json!("doge"));
    assert_eq!(lines[1]["args"], json!([{"$binary": "YXNkZmFzZGY="}, 7]), "binary attachments print as base64");
    assert_eq!(lines[2]["event"], json!("news"));
    assert_eq!(lines[2]["args"], json!(["x"]));
}

#[test]
fn listen_prints_every_event_of_a_large_burst_in_order_to_a_file() {
    let srv = NodeServer::start_quiet("s0", &["--ping-interval", "25000", "--ping-timeout", "20000"]);
    let n = 100_000u64;
    let dir = std::env::temp_dir().join(format!("tidings-cli-burst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let mut child = cli()
        .args(["listen", &srv.url(), "--transport", "websocket", "--event", "tick", "--count", &n.to_string()])
        .args(["--timeout", "120"])
        .stdout(Stdio::from(file))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    stderr_line(&mut child, "\"connected\"", T, "listen's connected line");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(srv.burst("tick", n, 0));
    let status = wait_within(&mut child, Duration::from_secs(150), "tidings listen (its --timeout is 120 s)");
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&path).unwrap();
    let got: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["event"], "tick");
            v["args"][0]["i"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(got.len() as u64, n, "every event printed");
    assert!(got.iter().copied().eq(0..n), "in order");
    let _ = std::fs::remove_dir_all(&dir);
}
