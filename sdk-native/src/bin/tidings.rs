//! `tidings`: listen to and emit Socket.IO events, and publish through a server's internal API,
//! from the command line.
//!
//! Events go to stdout as JSON lines, connection states and errors to stderr as JSON lines.
//! Exit codes: 0 success, 2 usage error, 3 could not connect or CONNECT_ERROR, 4 ack timeout,
//! 5 listen timed out before `--count` events.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tidings::event_pattern_matches;
use tidings::{ConnectionState, Error, Notice, Payload, Tidings, TransportConfig, TransportKind};

const USAGE: &str = "\
usage:
  tidings listen URL [--fallback URL]... [--namespace NS] [--auth JSON | --token T] [--join ROOM]...
                     [--transport websocket|polling|auto|upgrade] [--event NAME_OR_PREFIX]...
                     [--count N] [--timeout SECS] [--feed FEED_URL [--since CURSOR]]
  tidings emit URL EVENT [JSON_ARG]... [--fallback URL]... [--namespace NS] [--auth JSON | --token T]
                     [--transport websocket|polling|auto|upgrade] [--ack] [--timeout MS] [--linger MS]
  tidings publish URL EVENT [JSON_DATA] (--room ROOM | --user ID...) [--tenant T] [--api-key K]
                     [--idempotency-key KEY] [--correlation-id ID] [--timeout SECS]

Events are printed to stdout as JSON lines; connection states to stderr.
--fallback names another server, tried when URL fails (repeatable, in order; every reconnection
starts at URL again).
--feed is the REST feed's base URL (e.g. http://HOST/api/polling/acme; the token goes to it as a
Bearer token): it bridges outages and, after a reconnect that did not recover, listen prints what
was missed before the new live events. --since starts from a stored position (an offset, a cursor
or the envelope id of the last event handled): history from there, then live, with no gap or
duplicate between them.
publish sends through the server's internal API (POST URL/internal/emit, docs/PUBLISHING.md),
retrying transient failures with the same idempotency key until --timeout (default 30 s); the
key is also read from TIDINGS_API_KEY. It prints the id, offset, replayed flag and key as JSON.
Without --ack, emit stays connected --linger ms (default 250) after sending: a Socket.IO server
ignores an event that arrives in the same read as the client's disconnect.
Exit codes: 0 ok, 2 usage error, 3 could not connect, 4 ack timeout, 5 listen timed out,
6 the server refused the publication.";

struct Usage(String);

#[derive(Default)]
struct Common {
    url: String,
    namespace: Option<String>,
    auth: Option<Value>,
    token: Option<String>,
    transport: Option<TransportConfig>,
    fallbacks: Vec<String>,
}

fn take_value(args: &mut std::vec::IntoIter<String>, flag: &str) -> Result<String, Usage> {
    args.next().ok_or_else(|| Usage(format!("{flag} needs a value")))
}

fn common_flag(c: &mut Common, flag: &str, args: &mut std::vec::IntoIter<String>) -> Result<bool, Usage> {
    match flag {
        "--namespace" | "-n" => c.namespace = Some(take_value(args, flag)?),
        "--auth" => {
            let raw = take_value(args, flag)?;
            let v: Value = serde_json::from_str(&raw).map_err(|e| {
                Usage(format!("--auth is not valid JSON ({e}); pass an object like '{{\"token\":\"…\"}}'"))
            })?;
            if !v.is_object() {
                return Err(Usage("--auth must be a JSON object, like '{\"token\":\"…\"}'".into()));
            }
            c.auth = Some(v);
        }
        "--token" => c.token = Some(take_value(args, flag)?),
        "--fallback" => {
            let url = take_value(args, flag)?;
            tidings_url_check(&url)?;
            c.fallbacks.push(url);
        }
        "--transport" => {
            c.transport = Some(match take_value(args, flag)?.as_str() {
                "websocket" => TransportConfig::only(TransportKind::WebSocket),
                "polling" => TransportConfig::only(TransportKind::Polling),
                "auto" => TransportConfig::default(),
                "upgrade" => TransportConfig::polling_first(),
                other => {
                    return Err(Usage(format!("unknown transport {other:?}; use websocket, polling, auto or upgrade")));
                }
            })
        }
        _ => return Ok(false),
    }
    if c.auth.is_some() && c.token.is_some() {
        return Err(Usage("give either --auth or --token, not both".into()));
    }
    Ok(true)
}

fn builder(c: &Common) -> Result<tidings::ClientBuilder, Usage> {
    tidings_url_check(&c.url)?;
    let mut b = Tidings::builder(&c.url);
    if let Some(ns) = &c.namespace {
        b = b.namespace(ns);
    }
    if let Some(a) = &c.auth {
        b = b.auth(a.clone());
    }
    if let Some(t) = &c.token {
        b = b.token(t.clone());
    }
    if let Some(t) = c.transport {
        b = b.transports(t);
    }
    for url in &c.fallbacks {
        b = b.fallback_url(url);
    }
    Ok(b)
}

fn tidings_url_check(url: &str) -> Result<(), Usage> {
    tidings_core_url(url).map_err(|e| Usage(format!("{e}; expected something like http://127.0.0.1:3000")))
}

fn tidings_core_url(url: &str) -> Result<(), String> {
    tidings::parse_url(url).map(|_| ()).map_err(|e| e.to_string())
}

fn err_line(v: Value) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{v}");
}

fn state_json(s: &ConnectionState) -> Value {
    match s {
        ConnectionState::Connecting => json!({"state": "connecting"}),
        ConnectionState::Connected { transport, recovered, sid } => {
            json!({"state": "connected", "transport": transport.as_str(), "recovered": recovered, "sid": sid})
        }
        ConnectionState::Reconnecting { attempt, delay } => {
            json!({"state": "reconnecting", "attempt": attempt, "delay_ms": delay.as_millis() as u64})
        }
        ConnectionState::Disconnected { reason } => json!({"state": "disconnected", "reason": reason.as_str()}),
    }
}

fn notice_json(n: &Notice) -> Value {
    match n {
        Notice::State(s) => state_json(s),
        Notice::ConnectError(e) => json!({
            "connect_error": {
                "message": e.message,
                "data": e.data.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
                "will_retry": e.will_retry,
                "fallback_pending": e.fallback_pending,
                "cause": e.cause.as_ref().map(ToString::to_string),
            }
        }),
        Notice::Feed(f) => json!({"feed": format!("{f:?}")}),
        Notice::Fault(f) => json!({"fault": f.to_string()}),
        Notice::Invalid(i) => json!({"invalid": {"event": i.event, "problems": i.problems}}),
    }
}

/// Writes one event as a JSON line: `{"event":…,"args":[…],"namespace":…,"offset":…}`. `args`
/// are the arguments as the server sent them (a recovery offset included, last, as
/// socket.io-client hands them to listeners); `offset` repeats the one that may be the offset.
/// The arguments' JSON text is copied as received when it has no attachments and no line
/// break (socket.io never sends one), so nothing is parsed twice.
fn write_event(out: &mut impl Write, ev: &tidings::Received<Payload>, ns: &str) -> std::io::Result<()> {
    let p = &ev.data;
    // Two single-byte searches (memchr) instead of one for either character, which goes char by char.
    let raw_ok = p.attachment_count() == 0
        && (0..p.len()).all(|i| p.raw(i).is_some_and(|r| !r.contains('\n') && !r.contains('\r')));
    out.write_all(b"{\"event\":")?;
    serde_json::to_writer(&mut *out, &ev.event)?;
    out.write_all(b",\"args\":[")?;
    if raw_ok {
        for i in 0..p.len() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(p.raw(i).unwrap_or("null").as_bytes())?;
        }
    } else {
        let values = p.to_values().unwrap_or_default();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, v)?;
        }
    }
    if let Some(o) = &ev.offset {
        if !p.is_empty() {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, o)?;
    }
    out.write_all(b"],\"namespace\":")?;
    serde_json::to_writer(&mut *out, ns)?;
    out.write_all(b",\"offset\":")?;
    serde_json::to_writer(&mut *out, &ev.offset)?;
    out.write_all(b"}\n")
}

async fn listen(mut args: std::vec::IntoIter<String>) -> Result<ExitCode, Usage> {
    let mut c = Common { url: args.next().ok_or_else(|| Usage("listen needs a URL".into()))?, ..Common::default() };
    let (mut joins, mut patterns, mut count, mut timeout) = (Vec::new(), Vec::new(), None, None);
    let (mut feed, mut since) = (None, None);
    while let Some(flag) = args.next() {
        if common_flag(&mut c, &flag, &mut args)? {
            continue;
        }
        match flag.as_str() {
            "--join" => joins.push(take_value(&mut args, &flag)?),
            "--feed" => {
                let url = take_value(&mut args, &flag)?;
                tidings_url_check(&url)?;
                feed = Some(url);
            }
            "--since" => since = Some(take_value(&mut args, &flag)?),
            "--event" => patterns.push(take_value(&mut args, &flag)?),
            "--count" => {
                count = Some(
                    take_value(&mut args, &flag)?
                        .parse::<u64>()
                        .map_err(|_| Usage("--count needs a whole number".into()))?,
                )
            }
            "--timeout" => {
                let s = take_value(&mut args, &flag)?
                    .parse::<f64>()
                    .map_err(|_| Usage("--timeout needs a number of seconds".into()))?;
                // `try_from` refuses what no Duration holds (1e20 s) instead of panicking.
                timeout = Some(Duration::try_from_secs_f64(s).map_err(|_| {
                    Usage("--timeout needs a non-negative number of seconds, at most about 5.8e11".into())
                })?);
            }
            other => return Err(Usage(format!("unknown option {other:?} for listen"))),
        }
    }
    let mut b = builder(&c)?;
    match (feed, since) {
        (Some(url), since) => {
            let mut f = tidings::FeedConfig::new(url);
            f.since = since;
            b = b.feed(f);
        }
        (None, Some(_)) => return Err(Usage("--since reads from the feed: give --feed FEED_URL too".into())),
        (None, None) => {}
    }
    let client = b.build().map_err(|e| Usage(e.to_string()))?;
    let mut notices = client.notices();
    let mut events = client.on_any();
    for room in &joins {
        let (client, room) = (client.clone(), room.clone());
        tokio::spawn(async move {
            match client.join(&room).await {
                Ok(p) => err_line(json!({"joined": room, "ack": p.to_values().unwrap_or_default()})),
                Err(e) => err_line(json!({"join_failed": room, "error": e.to_string()})),
            }
        });
    }
    let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let mut printed = 0u64;
    let mut ever_connected = false;
    let ns = client_namespace(&c);
    if count == Some(0) {
        client.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    // Buffered: a burst is written in large blocks; what is written reaches the reader as soon as
    // no further event is ready (at once, line by line, on a terminal).
    let stdout = std::io::stdout();
    let line_buffered = stdout.is_terminal();
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
    let code = loop {
        tokio::select! {
            n = notices.recv() => match n {
                Some(n) => {
                    err_line(notice_json(&n));
                    match n {
                        Notice::State(ConnectionState::Connected { .. }) => ever_connected = true,
                        Notice::ConnectError(e) if (!ever_connected && !e.fallback_pending) || !e.will_retry => {
                            eprintln!("could not connect to {}: {}{}", c.url, e.message, if e.will_retry { " (is the server running and reachable?)" } else { "" });
                            break 3;
                        }
                        _ => {}
                    }
                }
                None => break 3,
            },
            ev = events.next() => {
                let mut next = ev;
                let mut done = None;
                // This event and every one already waiting, then one flush.
                loop {
                    match next {
                        Some(Ok(ev)) => {
                            if patterns.is_empty() || patterns.iter().any(|p| event_pattern_matches(p, &ev.event)) {
                                if write_event(&mut out, &ev, &ns).is_err() {
                                    // The reader went away (a closed pipe): nothing more to do.
                                    done = Some(0);
                                    break;
                                }
                                printed += 1;
                                if line_buffered {
                                    let _ = out.flush();
                                }
                                if count.is_some_and(|n| printed >= n) {
                                    done = Some(0);
                                    break;
                                }
                            }
                        }
                        Some(Err(e)) => err_line(json!({"error": e.to_string()})),
                        None => {
                            done = Some(3);
                            break;
                        }
                    }
                    match events.next().now_or_never() {
                        Some(n) => next = n,
                        None => break,
                    }
                }
                let _ = out.flush();
                if let Some(code) = done {
                    break code;
                }
            },
            () = &mut sleep => {
                break if count.is_some() {
                    eprintln!("timed out after {printed} of {} events", count.unwrap_or(0));
                    5
                } else { 0 };
            }
        }
    };
    client.close().await;
    Ok(ExitCode::from(code))
}

fn client_namespace(c: &Common) -> String {
    match &c.namespace {
        Some(ns) => tidings_core::url::namespace_path(ns),
        None => tidings::parse_url(&c.url).map(|u| u.namespace).unwrap_or_else(|_| "/".into()),
    }
}

async fn emit(mut args: std::vec::IntoIter<String>) -> Result<ExitCode, Usage> {
    let mut c =
        Common { url: args.next().ok_or_else(|| Usage("emit needs a URL and an EVENT".into()))?, ..Common::default() };
    let event = args.next().ok_or_else(|| Usage("emit needs an EVENT name after the URL".into()))?;
    let (mut values, mut ack, mut timeout) = (Vec::new(), false, Duration::from_millis(10_000));
    let mut linger = Duration::from_millis(250);
    while let Some(a) = args.next() {
        if common_flag(&mut c, &a, &mut args)? {
            continue;
        }
        match a.as_str() {
            "--ack" => ack = true,
            "--timeout" => {
                timeout = Duration::from_millis(
                    take_value(&mut args, &a)?
                        .parse::<u64>()
                        .map_err(|_| Usage("--timeout needs milliseconds".into()))?,
                )
            }
            "--linger" => {
                linger = Duration::from_millis(
                    take_value(&mut args, &a)?
                        .parse::<u64>()
                        .map_err(|_| Usage("--linger needs milliseconds".into()))?,
                )
            }
            flag if flag.starts_with("--") => return Err(Usage(format!("unknown option {flag:?} for emit"))),
            json_arg => values.push(serde_json::from_str::<Value>(json_arg).map_err(|e| {
                Usage(format!("argument {json_arg:?} is not valid JSON ({e}); quote strings like '\"text\"'"))
            })?),
        }
    }
    let client = match builder(&c)?.connect_timeout(timeout.max(Duration::from_secs(1))).connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("could not connect to {}: {e}", c.url);
            return Ok(ExitCode::from(3));
        }
    };
    let b = client.emit_builder(&event).args(&values);
    let code = if ack {
        match b.timeout(timeout).ack().await {
            Ok(p) => {
                println!("{}", Value::Array(p.to_values().unwrap_or_default()));
                0
            }
            Err(Error::Emit(tidings::EmitError::Timeout)) => {
                eprintln!(
                    "no ack for {event:?} within {} ms; does the server call the ack callback?",
                    timeout.as_millis()
                );
                4
            }
            Err(e) => {
                eprintln!("emit failed: {e}");
                3
            }
        }
    } else {
        match b.send().await {
            Ok(()) => {
                // socket.io dispatches an event on the next tick and drops it if the socket was
                // disconnected meanwhile: a `41` in the same read would swallow it.
                tokio::time::sleep(linger).await;
                0
            }
            Err(e) => {
                eprintln!("emit failed: {e}");
                3
            }
        }
    };
    client.close().await;
    Ok(ExitCode::from(code))
}

async fn publish(mut args: std::vec::IntoIter<String>) -> Result<ExitCode, Usage> {
    let url = args.next().ok_or_else(|| Usage("publish needs a URL and an EVENT".into()))?;
    let event = args.next().ok_or_else(|| Usage("publish needs an EVENT name after the URL".into()))?;
    let (mut data, mut room, mut users) = (None, None, Vec::new());
    let (mut tenant, mut key, mut idempotency, mut correlation) =
        (None, std::env::var("TIDINGS_API_KEY").ok(), None, None);
    let mut timeout = Duration::from_secs(30);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--room" => room = Some(take_value(&mut args, &a)?),
            "--user" => users.push(take_value(&mut args, &a)?),
            "--tenant" => tenant = Some(take_value(&mut args, &a)?),
            "--api-key" => key = Some(take_value(&mut args, &a)?),
            "--idempotency-key" => idempotency = Some(take_value(&mut args, &a)?),
            "--correlation-id" => correlation = Some(take_value(&mut args, &a)?),
            "--timeout" => {
                let secs = take_value(&mut args, &a)?
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| Usage("--timeout needs seconds (0 < SECS <= 86400)".into()))?;
                timeout = Duration::from_secs_f64(secs);
            }
            flag if flag.starts_with("--") => return Err(Usage(format!("unknown option {flag:?} for publish"))),
            json if data.is_none() => {
                data = Some(serde_json::from_str::<Value>(json).map_err(|e| {
                    Usage(format!("data {json:?} is not valid JSON ({e}); quote strings like '\"text\"'"))
                })?)
            }
            extra => return Err(Usage(format!("publish takes one JSON data argument; {extra:?} is one too many"))),
        }
    }
    let key = key.ok_or_else(|| Usage("publish needs --api-key K (or TIDINGS_API_KEY)".into()))?;
    let data = data.unwrap_or(Value::Null);
    let mut p = match (room, users.is_empty()) {
        (Some(r), true) => tidings::Publication::to_room(r, event, data),
        (None, false) => tidings::Publication::to_users(users, event, data),
        _ => return Err(Usage("publish needs either --room ROOM or one or more --user ID".into())),
    };
    if let Some(t) = tenant {
        p = p.tenant(t);
    }
    if let Some(k) = idempotency {
        p = p.idempotency_key(k);
    }
    if let Some(c) = correlation {
        p = p.correlation_id(c);
    }
    let publisher = match tidings::Publisher::builder(&url).api_key(key).build() {
        Ok(p) => p,
        Err(e) => return Err(Usage(e.to_string())),
    };
    let outcome = match publisher.publish(p).await {
        Ok(handle) => tokio::time::timeout(timeout, handle).await.unwrap_or(Err(Error::Timeout)),
        Err(e) => Err(e),
    };
    let code = match outcome {
        Ok(done) => {
            let line = json!({
                "id": done.id,
                "offset": done.offset,
                "replayed": done.replayed,
                "idempotencyKey": done.idempotency_key,
            });
            println!("{line}");
            0
        }
        Err(e @ Error::Rejected { .. }) => {
            eprintln!("publish failed: {e}");
            6
        }
        Err(e) => {
            eprintln!("publish failed within {} s: {e}", timeout.as_secs_f64());
            3
        }
    };
    let _ = publisher.close(Duration::from_millis(100)).await;
    Ok(ExitCode::from(code))
}

fn main() -> ExitCode {
    if let Ok(filter) = std::env::var("TIDINGS_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return if args.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    }
    let cmd = args.remove(0);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cmd.as_str() {
            "listen" => listen(args.into_iter()).await,
            "emit" => emit(args.into_iter()).await,
            "publish" => publish(args.into_iter()).await,
            other => Err(Usage(format!("unknown command {other:?}; use listen, emit or publish"))),
        }
    });
    match result {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("tidings: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
