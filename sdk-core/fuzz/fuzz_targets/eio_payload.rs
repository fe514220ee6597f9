//! Engine.IO long-polling bodies: no panic; good records re-encode into a body that decodes the same,
//! and the batching rule never loses or reorders packets.
#![no_main]

use std::borrow::Cow;
use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use tidings_core::engineio::{self, Packet};

fn owned(p: Packet<'_>) -> Packet<'static> {
    match p {
        Packet::Open(h) => Packet::Open(h),
        Packet::Close => Packet::Close,
        Packet::Ping { probe } => Packet::Ping { probe },
        Packet::Pong { probe } => Packet::Pong { probe },
        Packet::Message(m) => Packet::Message(Cow::Owned(m.into_owned())),
        Packet::Binary(b) => Packet::Binary(Cow::Owned(b.into_owned())),
        Packet::Upgrade => Packet::Upgrade,
        Packet::Noop => Packet::Noop,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else { return };
    let Ok(body) = std::str::from_utf8(rest) else { return };
    let good: Vec<Packet<'static>> = engineio::decode_payload(body).filter_map(Result::ok).map(owned).collect();
    if let Some(bytes) = engineio::base64_decode(body) {
        let mut again = String::new();
        engineio::base64_encode(&bytes, &mut again);
        assert_eq!(again, body, "base64 decoding is canonical");
    }
    if good.is_empty() {
        return;
    }
    // Batch under a small maxPayload and check every packet comes back once, in order.
    let max_payload = u64::from(limit) * 4;
    let mut queue: VecDeque<_> = good.iter().cloned().collect();
    let mut back = Vec::new();
    while let Some(batch) = engineio::take_polling_batch(&mut queue, max_payload) {
        let before = back.len();
        for p in engineio::decode_payload(&batch) {
            back.push(owned(p.expect("re-encoded record decodes")));
        }
        assert!(back.len() > before, "empty batch");
    }
    assert_eq!(back, good);
});
