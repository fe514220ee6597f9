//! The real binary: where it refuses to start, and that the loopback demo still starts as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{http, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_tidings-example-server");

/// Starts the binary with `args` and no `TIDINGS_*` variables from the environment.
fn spawn(args: &[&str], dir: &std::path::Path) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(dir).env("RUST_LOG", "info").env_remove("TIDINGS_LOG_FORMAT");
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits for the process to exit (panics after 30 s): (exit code, stderr + stdout).
fn exits(mut child: Child) -> (i32, String) {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            return (status.code().unwrap_or(-1), out);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the server did not exit");
}

/// Waits for the "listening" log line and returns the address it names.
fn listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("listening")) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("no \"listening\" log line")
}

#[test]
fn a_public_address_without_real_secrets_is_refused() {
    let dir = temp_dir("startup-refused");
    let dev_secrets =
        ["--jwt-secret", "tidings-dev-jwt-secret-change-me", "--internal-api-key", "tidings-dev-internal-key"];
    let cases: [&[&str]; 4] = [
        &["--bind", "0.0.0.0:0"],
        &["--bind", "0.0.0.0:0", "--dev-login"],
        &["--bind", "0.0.0.0:0", dev_secrets[0], dev_secrets[1], dev_secrets[2], dev_secrets[3]],
        &["--bind", "[::]:0", "--jwt-secret", "short", "--internal-api-key", "also-short"],
    ];
    for args in cases {
        let (code, out) = exits(spawn(args, &dir));
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(out.contains("refusing to listen on"), "{args:?}: {out}");
        assert!(out.contains("TIDINGS_JWT_SECRET"), "the message says what to set: {out}");
        assert!(!out.contains("listening"), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn real_secrets_start_on_a_public_address_with_dev_login_off() {
    let dir = temp_dir("startup-public");
    let mut child = spawn(
        &["--bind", "0.0.0.0:0", "--jwt-secret", "a-real-jwt-secret-0123", "--internal-api-key", "a-real-key-0123456"],
        &dir,
    );
    let addr = listening(&mut child);
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (s, _, _) = http("GET", &format!("{url}/health"), &[], None).await;
    assert_eq!(s, 200);
    let (s, v, _) = http("POST", &format!("{url}/api/dev/login"), &[], Some(r#"{"userId":"alice"}"#.into())).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("dev_login_disabled")));
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_loopback_demo_starts_without_secrets_as_before() {
    let dir = temp_dir("startup-demo");
    // As scripts/demo.sh runs it: only the (DEV) internal key, on 127.0.0.1.
    let mut child = spawn(&["--bind", "127.0.0.1:0", "--internal-api-key", "tidings-dev-internal-key"], &dir);
    let addr = listening(&mut child);
    let url = format!("http://{addr}");
    let (s, v, _) = http("POST", &format!("{url}/api/dev/login"), &[], Some(r#"{"userId":"alice"}"#.into())).await;
    assert_eq!(s, 200, "{v}");
    let body = r#"{"to":{"room":"tenant:acme"},"event":"task.created","data":{}}"#;
    let (s, v, _) = http(
        "POST",
        &format!("{url}/internal/emit"),
        &[("x-internal-api-key", "tidings-dev-internal-key")],
        Some(body.into()),
    )
    .await;
    assert_eq!((s, v["offset"].as_u64()), (200, Some(1)), "{v}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
