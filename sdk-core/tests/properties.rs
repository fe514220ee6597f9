//! Property tests of the client state machine over random fault schedules: a seeded link with
//! random latency, jitter and loss, random drops, partitions, WebSocket blocking, silent servers,
//! forced closes and offline/online flips, interleaved with random emits from both sides. After
//! the faults heal, the invariants below must hold for every schedule.
//!
//! - No event is delivered twice, and (when the server replays exactly what was missed) events
//!   arrive in the order the server emitted them.
//! - Every accepted emit settles exactly once. An `Ok` carries the server's echo of that very emit
//!   (so the server did receive it); an ack that reaches the client before the emit settled makes
//!   it settle `Ok`. With retries on, the only failure is a timeout after every try, and the
//!   server first sees the emits in the order they were made (one in flight).
//! - Events count as received when the application has them, not when they were decoded: with a
//!   consumer that holds events for a while (a slow handler), a recovering CONNECT asks for what
//!   followed the last event the application got, and nothing held is lost or duplicated. When
//!   recovery is on and every reconnect recovered, every event the server emitted arrives.
//! - No panic, no busy loop (the harness asserts progress), no protocol violation seen by the
//!   strict fake server.
//! - Bounded memory: the send buffer never exceeds its configured limit while no engine is open;
//!   pending acks never exceed the unsettled emits; the de-duplication window stays within its
//!   size; everything drains once the connection is healthy, and the client ends connected on
//!   WebSocket.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tidings_core::config::TransportConfig;
use tidings_core::{BackoffStrategy, EmitError, EmitId, EmitRefused, EmitRequest, Input};
use tidings_harness::*;

const MAX_PACKETS: usize = 8;
const DEDUP_WINDOW: usize = 64;
const RETRIES: u32 = 3;
const ACK_TIMEOUT: u64 = 2_000;

#[derive(Debug, Clone)]
enum Act {
    ServerEmit,
    ClientEmit,
    Drop,
    Partition(u64),
    BlockWs(bool),
    Pinging(bool),
    ServerClose,
    Online,
    Offline,
    /// The application stops taking events (they queue in the driver).
    Hold,
    /// The application takes this many queued events.
    Release(usize),
}

#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    latency: u64,
    jitter: u64,
    loss_per_mille: u32,
    polling_first: bool,
    recovery: bool,
    replay_overlap: usize,
    reliable: bool,
    ack_drop_percent: u32,
    steps: Vec<(u64, Act)>,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        5 => Just(Act::ServerEmit),
        5 => Just(Act::ClientEmit),
        1 => Just(Act::Drop),
        1 => (100u64..5_000).prop_map(Act::Partition),
        1 => any::<bool>().prop_map(Act::BlockWs),
        1 => any::<bool>().prop_map(Act::Pinging),
        1 => Just(Act::ServerClose),
        1 => Just(Act::Online),
        1 => Just(Act::Offline),
        1 => Just(Act::Hold),
        1 => (0usize..6).prop_map(Act::Release),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        (any::<u64>(), 1u64..120, 0u64..40, 0u32..8),
        (any::<bool>(), any::<bool>(), 0usize..4, any::<bool>(), 0u32..30),
        prop::collection::vec((0u64..1_500, act()), 1..60),
    )
        .prop_map(
            |(
                (seed, latency, jitter, loss_per_mille),
                (polling_first, recovery, replay_overlap, reliable, ack_drop_percent),
                steps,
            )| Plan {
                seed,
                latency,
                jitter,
                loss_per_mille,
                polling_first,
                recovery,
                replay_overlap,
                reliable,
                ack_drop_percent,
                steps,
            },
        )
}

struct Outcome {
    world: World,
    /// Accepted emits: id -> tag number.
    emits: BTreeMap<EmitId, u64>,
    /// Emit tag numbers in the order they were accepted.
    order: Vec<u64>,
}

fn run(plan: &Plan) -> Outcome {
    let mut cfg = config();
    cfg.seed = plan.seed;
    if plan.polling_first {
        cfg.transports = TransportConfig::polling_first();
    }
    cfg.retries = if plan.reliable { RETRIES } else { 0 };
    cfg.ack_timeout = Some(Duration::from_millis(ACK_TIMEOUT));
    cfg.send_buffer.max_packets = MAX_PACKETS;
    cfg.dedup_window = DEDUP_WINDOW;
    cfg.transports.reprobe_every = Duration::from_secs(20);
    cfg.reconnect.backoff = BackoffStrategy::SocketIo { min_ms: 200, max_ms: 2_000, factor: 2.0, randomization: 0.5 };
    let server = ServerConfig {
        ping_interval: 1_000,
        ping_timeout: 500,
        recovery: plan.recovery,
        replay_overlap: plan.replay_overlap,
        ..ServerConfig::default()
    };
    let link = LinkConfig { latency: plan.latency, jitter: plan.jitter, loss: f64::from(plan.loss_per_mille) / 1000.0 };
    let mut w = World::new(cfg, server, link, plan.seed);
    w.tracing = false;
    w.server.ack_drop_rate = f64::from(plan.ack_drop_percent) / 100.0;
    w.connect();

    let mut emits = BTreeMap::new();
    let mut order = Vec::new();
    let (mut server_n, mut client_n) = (0u64, 0u64);
    for (gap, act) in &plan.steps {
        w.run_for(*gap);
        match act {
            Act::ServerEmit => {
                server_n += 1;
                w.server_emit("tick", &format!("\"e{server_n}\""));
            }
            Act::ClientEmit => {
                client_n += 1;
                let req = EmitRequest::new("msg", args(&format!("[\"m{client_n}\"]"))).with_ack();
                match w.emit(req) {
                    Ok(id) => {
                        emits.insert(id, client_n);
                        order.push(client_n);
                    }
                    Err(EmitRefused::Failed(EmitError::SendBufferFull)) => {}
                    Err(e) => panic!("emit refused with {e:?}"),
                }
            }
            Act::Drop => w.drop_transports(),
            Act::Partition(len) => w.partition(w.now, w.now + len),
            Act::BlockWs(b) => w.link.ws_blocked = *b,
            Act::Pinging(p) => w.server.pinging = *p,
            Act::ServerClose => w.server_close_transports(),
            Act::Online => w.input(Input::Online),
            Act::Offline => w.input(Input::Offline),
            Act::Hold => w.hold(),
            Act::Release(n) => w.release(*n),
        }
        check_running(&w, &emits);
    }
    // Heal: faults end, the network is quiet and reliable again.
    w.link.ws_blocked = false;
    w.link.cfg.loss = 0.0;
    w.server.pinging = true;
    w.input(Input::Online);
    let healed = w.link.partitions.iter().map(|p| p.1).max().unwrap_or(0).max(w.now);
    w.run_until(healed + 30_000);
    w.release_all();
    w.run_until(healed + 60_000);
    Outcome { world: w, emits, order }
}

/// Invariants that hold at every step.
fn check_running(w: &World, emits: &BTreeMap<EmitId, u64>) {
    let b = w.client.buffered();
    let (acks, dedup) = (b.pending_acks, b.dedup_keys);
    let settled: BTreeSet<EmitId> = w.app.settled.iter().map(|s| s.1).collect();
    let unsettled = emits.keys().filter(|e| !settled.contains(e)).count();
    assert!(acks <= unsettled, "{acks} pending acks for {unsettled} unsettled emits");
    assert!(dedup <= DEDUP_WINDOW);
    assert!(w.max_buffered_closed <= MAX_PACKETS, "send buffer grew to {}", w.max_buffered_closed);
}

/// The `n` of a delivered `43<id>["m<n>"]` ack record.
fn ack_tag(record: &str) -> Option<u64> {
    let rest = record.strip_prefix("43")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.strip_prefix("[\"m")?.strip_suffix("\"]")?.parse().ok()
}

fn check_final(plan: &Plan, out: &Outcome) {
    let w = &out.world;
    let ctx = || format!("{plan:?}");

    // No protocol violation, and the client is back, on WebSocket.
    assert!(w.server.violations.is_empty(), "server violations {:?} for {}", w.server.violations, ctx());
    assert!(w.violations.is_empty(), "harness violations {:?} for {}", w.violations, ctx());
    assert!(w.connected(), "not connected after healing: {}", ctx());
    assert_eq!(w.server.transport(), Some("websocket"), "{}", ctx());
    assert!(w.client.engine_sid().is_some());

    // Events: never twice; in emission order when the server replays exactly what was missed.
    let tags: Vec<u64> = w
        .app
        .events
        .iter()
        .map(|(_, e)| e.args.get(0).unwrap().trim_matches('"').trim_start_matches('e').parse::<u64>().unwrap())
        .collect();
    let unique: BTreeSet<u64> = tags.iter().copied().collect();
    assert_eq!(unique.len(), tags.len(), "an event was delivered twice: {tags:?} for {}", ctx());
    if plan.replay_overlap == 0 {
        assert!(tags.windows(2).all(|p| p[0] < p[1]), "events out of order: {tags:?} for {}", ctx());
    }
    let logged = w.server.log.len() as u64;
    assert!(tags.iter().all(|t| (1..=logged).contains(t)));
    // A recovering CONNECT names the offset of an event the application already had then.
    for (t, record) in &w.sent {
        let Some(offset) = record.strip_prefix("40").and_then(|c| c.split("\"offset\":\"").nth(1)) else { continue };
        let offset = offset.split('"').next().unwrap_or_default();
        assert!(
            w.app.events.iter().any(|(at, e)| at <= t && e.offset.as_deref() == Some(offset)),
            "CONNECT at {t} recovers from {offset}, which the application did not have yet: {}",
            ctx()
        );
    }
    // Recovery on and every reconnect recovered: nothing emitted since the first connection is
    // missing.
    let later = w.server.connections.iter().skip(1);
    if plan.recovery
        && let Some(first) = w.server.connections.first()
        && later.clone().all(|c| c.recovered)
    {
        let all: BTreeSet<u64> = w.server.log.iter().filter(|e| e.at >= first.at).map(|e| e.seq).collect();
        let missing: Vec<_> = all.difference(&unique).collect();
        assert!(missing.is_empty(), "events {missing:?} missing although every reconnect recovered: {}", ctx());
    }

    // Emits: each settles exactly once.
    let mut settled: BTreeMap<EmitId, Vec<(u64, bool)>> = BTreeMap::new();
    for (t, id, r) in &w.app.settled {
        let n = out.emits[id];
        match r {
            Ok(a) => assert_eq!(a.to_json_array(), format!("[\"m{n}\"]"), "ack of m{n} is someone else's"),
            Err(EmitError::Timeout) => {}
            Err(EmitError::Disconnected) if !plan.reliable => {}
            Err(e) => panic!("m{n} failed with {e:?} for {}", ctx()),
        }
        settled.entry(*id).or_default().push((*t, r.is_ok()));
    }
    for (id, n) in &out.emits {
        let s = settled.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(s.len(), 1, "m{n} settled {} times for {}", s.len(), ctx());
    }
    let received: BTreeSet<String> = w.server.received.iter().map(|r| r.args.clone()).collect();
    let by_tag: BTreeMap<u64, (u64, bool)> = out.emits.iter().map(|(id, n)| (*n, settled[id][0])).collect();
    for (n, (_, ok)) in &by_tag {
        if *ok {
            assert!(received.contains(&format!("[\"m{n}\"]")), "m{n} acked but never received");
        }
    }
    // An ack that reached the client while its emit was pending settles it Ok.
    for (t, record) in &w.delivered {
        if let Some(n) = ack_tag(record)
            && let Some((settled_at, ok)) = by_tag.get(&n)
            && settled_at >= t
        {
            assert!(ok, "the ack of m{n} arrived at {t} but the emit failed at {settled_at}: {}", ctx());
        }
    }
    if plan.reliable {
        // Failures come only after every try; first receipts keep the emit order.
        for (n, (_, ok)) in &by_tag {
            if !ok {
                let tries = w.sent.iter().filter(|(_, r)| r.ends_with(&format!("[\"msg\",\"m{n}\"]"))).count();
                assert!(tries > RETRIES as usize, "m{n} failed after {tries} tries: {}", ctx());
            }
        }
        let mut first = Vec::new();
        for r in &w.server.received {
            let n: u64 = r.args.trim_start_matches("[\"m").trim_end_matches("\"]").parse().unwrap();
            if !first.contains(&n) {
                first.push(n);
            }
        }
        let pos: BTreeMap<u64, usize> = out.order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        assert!(first.windows(2).all(|p| pos[&p[0]] < pos[&p[1]]), "reordered: {first:?} for {}", ctx());
    }

    // Memory: everything drained; buffers stayed within their limits.
    let b = w.client.buffered();
    let (p, a, d) = (b.packets, b.pending_acks, b.dedup_keys);
    assert_eq!((p, a), (0, 0), "left over after healing for {}", ctx());
    assert!(d <= DEDUP_WINDOW && w.max_buffered.2 <= DEDUP_WINDOW);
    assert!(w.max_buffered_closed <= MAX_PACKETS);
}

/// 96 random schedules in the test command; `PROPTEST_CASES=N` for a longer run
/// (`scripts/reliability.sh`).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules_keep_the_invariants(plan in plan()) {
        let out = run(&plan);
        check_final(&plan, &out);
    }
}

/// A fixed, long and nasty schedule: makes sure the properties are not vacuous (faults really
/// happen, emits really fail and retry, events really get replayed).
#[test]
fn the_fault_model_bites() {
    let mut steps = Vec::new();
    let acts = [
        Act::ServerEmit,
        Act::ClientEmit,
        Act::Drop,
        Act::ServerEmit,
        Act::ClientEmit,
        Act::Partition(3_000),
        Act::ServerEmit,
        Act::ClientEmit,
        Act::BlockWs(true),
        Act::ServerClose,
        Act::ServerEmit,
        Act::ClientEmit,
        Act::Pinging(false),
        Act::ClientEmit,
        Act::Pinging(true),
        Act::Offline,
        Act::ServerEmit,
        Act::Online,
        Act::BlockWs(false),
        Act::ClientEmit,
        Act::Hold,
        Act::ServerEmit,
        Act::Drop,
        Act::ServerEmit,
        Act::Release(1),
        Act::ServerEmit,
        Act::Release(10),
    ];
    for (i, a) in acts.iter().cycle().take(120).enumerate() {
        steps.push((300 + (i as u64 * 137) % 900, a.clone()));
    }
    let plan = Plan {
        seed: 42,
        latency: 40,
        jitter: 20,
        loss_per_mille: 3,
        polling_first: false,
        recovery: true,
        replay_overlap: 0,
        reliable: true,
        ack_drop_percent: 20,
        steps,
    };
    let out = run(&plan);
    check_final(&plan, &out);
    let w = &out.world;
    let recovered = w.server.connections.iter().filter(|c| c.recovered).count();
    let reconnects = w.server.connections.len();
    let retried = w.server.received.len() > out.emits.len();
    let oks = w.app.settled.iter().filter(|s| s.2.is_ok()).count();
    assert!(reconnects > 5, "{reconnects} connections");
    assert!(recovered > 0, "no recovery happened");
    assert!(retried, "no emit was retried");
    assert!(oks > 10, "{oks} emits acked");
    assert!(w.app.events.len() > 10);
}
