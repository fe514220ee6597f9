//! Vectors for the Engine.IO v4 codec, named after PROTOCOL.md §1 (engine.io-protocol README):
//! captured frames, every packet type both ways, long-polling payloads and the client batching rule.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::collections::VecDeque;

use tidings_core::engineio::{
    Error, Frame, Handshake, Packet, SEPARATOR, base64_decode, base64_encode, decode_binary, decode_payload,
    decode_text, encode_polling_record, encode_ws, take_polling_batch,
};

const OPEN: &str =
    r#"0{"sid":"5ZTbAAAC","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;

fn text(p: &Packet<'_>) -> String {
    let mut out = String::new();
    encode_polling_record(p, &mut out);
    out
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))] // used by the property tests only
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

fn msg(s: &str) -> Packet<'static> {
    Packet::Message(Cow::Owned(s.to_string()))
}

#[test]
fn eio_1_handshake_open_packet() {
    let Ok(Packet::Open(h)) = decode_text(OPEN) else { panic!("not an open packet") };
    assert_eq!(
        h,
        Handshake {
            sid: "5ZTbAAAC".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 300,
            ping_timeout: 200,
            max_payload: 1_000_000,
        }
    );
    // Encoding writes the same JSON back.
    assert_eq!(text(&Packet::Open(h)), OPEN);
}

#[test]
fn eio_1_handshake_websocket_only_has_no_upgrades() {
    let frame = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":100000}"#;
    let Ok(Packet::Open(h)) = decode_text(frame) else { panic!() };
    assert!(h.upgrades.is_empty());
    assert_eq!((h.ping_interval, h.ping_timeout, h.max_payload), (25000, 20000, 100_000));
}

#[test]
fn eio_1_handshake_tolerates_extra_keys_order_and_escapes() {
    let frame = r#"0 { "maxPayload":1, "extra":{"x":[1,2]}, "pingTimeout":0, "sid":"a\u0062c", "upgrades":["websocket","webtransport"], "pingInterval":2 } "#;
    let Ok(Packet::Open(h)) = decode_text(frame) else { panic!() };
    assert_eq!(h.sid, "abc");
    assert_eq!(h.upgrades, ["websocket", "webtransport"]);
    assert_eq!((h.ping_interval, h.ping_timeout, h.max_payload), (2, 0, 1));
    // Duplicate keys: the last one wins, as with JSON.parse.
    let dup = r#"0{"sid":1,"sid":"x","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1}"#;
    assert!(matches!(decode_text(dup), Ok(Packet::Open(h)) if h.sid == "x"));
}

#[test]
fn eio_1_handshake_rejects_missing_or_mistyped_keys() {
    let base = [
        ("sid", r#""abc""#),
        ("upgrades", r#"["websocket"]"#),
        ("pingInterval", "300"),
        ("pingTimeout", "200"),
        ("maxPayload", "1000000"),
    ];
    let build = |skip: &str, replace: Option<&str>| {
        let members: Vec<String> = base
            .iter()
            .filter(|(k, _)| replace.is_some() || *k != skip)
            .map(|(k, v)| format!("\"{k}\":{}", if *k == skip { replace.unwrap_or(v) } else { v }))
            .collect();
        format!("0{{{}}}", members.join(","))
    };
    for (key, _) in base {
        assert!(matches!(decode_text(&build(key, None)), Err(Error::BadHandshake(_))), "missing {key}");
    }
    let wrong = [
        ("sid", "1"),
        ("sid", "null"),
        ("upgrades", r#""websocket""#),
        ("upgrades", "[1]"),
        ("upgrades", r#"["websocket",null]"#),
        ("pingInterval", "-1"),
        ("pingInterval", "1.5"),
        ("pingInterval", r#""300""#),
        ("pingTimeout", "1e3"),
        ("maxPayload", "18446744073709551616"),
        ("maxPayload", "true"),
    ];
    for (key, value) in wrong {
        assert!(matches!(decode_text(&build(key, Some(value))), Err(Error::BadHandshake(_))), "{key}={value}");
    }
    for bad in ["0", "0{}", "0[]", "0\"x\"", "0{", r#"0{"sid":"a"} x"#, "0null"] {
        assert!(matches!(decode_text(bad), Err(Error::BadHandshake(_))), "{bad:?}");
    }
}

#[test]
fn eio_1_packet_types_all_seven() {
    assert!(matches!(decode_text(OPEN), Ok(Packet::Open(_))));
    assert_eq!(decode_text("1"), Ok(Packet::Close));
    assert_eq!(decode_text("2"), Ok(Packet::Ping { probe: false }));
    assert_eq!(decode_text("3"), Ok(Packet::Pong { probe: false }));
    assert_eq!(decode_text("4hello"), Ok(Packet::Message(Cow::Borrowed("hello"))));
    assert_eq!(decode_text("5"), Ok(Packet::Upgrade));
    assert_eq!(decode_text("6"), Ok(Packet::Noop));
    for (p, t) in [
        (Packet::Close, "1"),
        (Packet::Ping { probe: false }, "2"),
        (Packet::Pong { probe: false }, "3"),
        (msg("hello"), "4hello"),
        (Packet::Upgrade, "5"),
        (Packet::Noop, "6"),
    ] {
        assert_eq!(encode_ws(&p), Frame::Text(t.into()));
        assert_eq!(text(&p), t);
    }
}

#[test]
fn eio_1_packet_types_unknown_or_empty() {
    assert_eq!(decode_text(""), Err(Error::Empty));
    assert_eq!(decode_text("7"), Err(Error::UnknownType(b'7')));
    assert_eq!(decode_text("999"), Err(Error::UnknownType(b'9')));
    assert_eq!(decode_text("a"), Err(Error::UnknownType(b'a')));
    assert_eq!(decode_text("é"), Err(Error::UnknownType(0xc3)));
    // A `b` record is binary only inside a polling payload; on a WebSocket text frame it is unknown.
    assert_eq!(decode_text("bAQID"), Err(Error::UnknownType(b'b')));
}

#[test]
fn eio_1_packet_types_without_payload_refuse_one() {
    for bad in ["1x", "1 ", "2foo", "2probe ", "2PROBE", "3x", "3probes", "5x", "6x", "6probe"] {
        assert_eq!(decode_text(bad), Err(Error::UnexpectedPayload), "{bad:?}");
    }
}

#[test]
fn eio_1_heartbeat_ping_pong() {
    // v4: the server pings, the client answers `3` at once.
    assert_eq!(decode_text("2"), Ok(Packet::Ping { probe: false }));
    assert_eq!(encode_ws(&Packet::Pong { probe: false }), Frame::Text("3".into()));
}

#[test]
fn eio_1_upgrade_probe_and_upgrade() {
    assert_eq!(encode_ws(&Packet::Ping { probe: true }), Frame::Text("2probe".into()));
    assert_eq!(decode_text("3probe"), Ok(Packet::Pong { probe: true }));
    assert_eq!(decode_text("2probe"), Ok(Packet::Ping { probe: true }));
    assert_eq!(encode_ws(&Packet::Pong { probe: true }), Frame::Text("3probe".into()));
    // The pending GET returns noop, then the client sends upgrade.
    assert_eq!(decode_payload("6").collect::<Vec<_>>(), [Ok(Packet::Noop)]);
    assert_eq!(encode_ws(&Packet::Upgrade), Frame::Text("5".into()));
}

#[test]
fn eio_1_message_text_and_empty() {
    assert_eq!(decode_text("4"), Ok(Packet::Message(Cow::Borrowed(""))));
    assert_eq!(decode_text("42[\"hi\"]"), Ok(Packet::Message(Cow::Borrowed("2[\"hi\"]"))));
    assert_eq!(decode_text("4é\u{1e}x"), Ok(Packet::Message(Cow::Borrowed("é\u{1e}x"))));
    // Borrowed: zero-copy.
    assert!(matches!(decode_text("4abc"), Ok(Packet::Message(Cow::Borrowed(_)))));
}

#[test]
fn eio_1_websocket_binary_is_raw_frame() {
    // EIO4: no 0x04 prefix (EIO3 had one).
    assert_eq!(encode_ws(&Packet::Binary(Cow::Owned(vec![1, 2, 3]))), Frame::Binary(vec![1, 2, 3]));
    assert_eq!(decode_binary(&[0x61, 0x73, 0x64, 0x66]), Packet::Binary(Cow::Borrowed(b"asdf".as_slice())));
    assert_eq!(decode_binary(&[]), Packet::Binary(Cow::Borrowed(&[][..])));
    assert_eq!(decode_binary(&[4, 1]), Packet::Binary(Cow::Borrowed(&[4, 1][..])));
}

#[test]
fn eio_1_long_polling_payload_captured() {
    let got: Vec<_> = decode_payload("4hello\u{1e}bAQIDBA==").collect();
    assert_eq!(got, [Ok(msg("hello")), Ok(Packet::Binary(Cow::Owned(vec![1, 2, 3, 4])))]);
    // Binary from the server over polling: announce packet then its attachment.
    let got: Vec<_> = decode_payload("451-[\"doge\",{\"_placeholder\":true,\"num\":0}]\u{1e}bYXNkZmFzZGY=").collect();
    assert_eq!(
        got,
        [
            Ok(msg("51-[\"doge\",{\"_placeholder\":true,\"num\":0}]")),
            Ok(Packet::Binary(Cow::Owned(b"asdfasdf".to_vec())))
        ]
    );
    // The first GET of a session.
    assert!(matches!(decode_payload(OPEN).collect::<Vec<_>>()[..], [Ok(Packet::Open(_))]));
    let got: Vec<_> = decode_payload("40{\"sid\":\"X\"}\u{1e}42[\"auth\",{}]\u{1e}2\u{1e}6").collect();
    assert_eq!(
        got,
        [Ok(msg("0{\"sid\":\"X\"}")), Ok(msg("2[\"auth\",{}]")), Ok(Packet::Ping { probe: false }), Ok(Packet::Noop)]
    );
    // An empty binary record.
    assert_eq!(decode_payload("b").collect::<Vec<_>>(), [Ok(Packet::Binary(Cow::Owned(vec![])))]);
}

#[test]
fn eio_1_long_polling_bad_records_are_errors_in_place() {
    let got: Vec<_> = decode_payload("4a\u{1e}\u{1e}7\u{1e}b!!!!\u{1e}4b").collect();
    assert_eq!(
        got,
        [Ok(msg("a")), Err(Error::Empty), Err(Error::UnknownType(b'7')), Err(Error::BadBase64), Ok(msg("b"))]
    );
    assert_eq!(decode_payload("").collect::<Vec<_>>(), [Err(Error::Empty)]);
    assert_eq!(decode_payload("4a\u{1e}").collect::<Vec<_>>(), [Ok(msg("a")), Err(Error::Empty)]);
}

#[test]
fn eio_1_long_polling_base64_is_strict() {
    for bad in [
        "AQI",
        "AQIDB",
        "A===",
        "====",
        "AQ=A",
        "A=QI",
        "AQ==AQID",
        "AQI-",
        "AQI_",
        "AQ I",
        "AQI\n",
        "AR==",
        "AQJ=",
        "AQIDBA=",
        "AQIDBA===",
        "é===",
    ] {
        assert_eq!(base64_decode(bad), None, "{bad:?}");
        assert_eq!(decode_payload(&format!("b{bad}")).collect::<Vec<_>>(), [Err(Error::BadBase64)]);
    }
}

#[test]
fn eio_1_long_polling_base64_rfc4648_vectors() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        let mut out = String::new();
        base64_encode(plain.as_bytes(), &mut out);
        assert_eq!(out, coded);
        assert_eq!(base64_decode(coded).as_deref(), Some(plain.as_bytes()));
    }
    assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    assert_eq!(text(&Packet::Binary(Cow::Owned(vec![1, 2, 3]))), "bAQID");
}

#[test]
fn eio_1_long_polling_encode_joins_with_separator() {
    let mut q: VecDeque<Packet<'static>> =
        [msg("0"), msg("2[\"x\"]"), Packet::Binary(Cow::Owned(vec![1, 2, 3, 4])), Packet::Pong { probe: false }].into();
    let body = take_polling_batch(&mut q, 1_000_000).unwrap();
    assert_eq!(body, "40\u{1e}42[\"x\"]\u{1e}bAQIDBA==\u{1e}3");
    assert!(q.is_empty());
    assert_eq!(take_polling_batch(&mut q, 1_000_000), None);
    assert_eq!(SEPARATOR, '\u{1e}');
}

#[test]
fn eio_1_long_polling_batching_rule_splits_under_max_payload() {
    // Three 40-byte records (`4` + 39 bytes of data) under maxPayload 100:
    // 1 + 39 = 40, +2, +39 = 81 <= 100, +2, +39 = 122 > 100: the third waits.
    let m = "x".repeat(39);
    let mut q: VecDeque<_> = [msg(&m), msg(&m), msg(&m)].into();
    let first = take_polling_batch(&mut q, 100).unwrap();
    assert_eq!(first, format!("4{m}\u{1e}4{m}"));
    assert_eq!(q.len(), 1);
    assert_eq!(take_polling_batch(&mut q, 100).unwrap(), format!("4{m}"));
    assert_eq!(take_polling_batch(&mut q, 100), None);
}

#[test]
fn eio_1_long_polling_batching_rule_edges() {
    // A single oversize packet is still sent, alone.
    let big = "y".repeat(500);
    let mut q: VecDeque<_> = [msg(&big), msg("a")].into();
    assert_eq!(take_polling_batch(&mut q, 100).unwrap(), format!("4{big}"));
    assert_eq!(take_polling_batch(&mut q, 100).unwrap(), "4a");

    // Exactly at the limit is allowed: 1 + 48 + 2 + 49 = 100.
    let mut q: VecDeque<_> = [msg(&"a".repeat(48)), msg(&"b".repeat(49)), msg("c")].into();
    let body = take_polling_batch(&mut q, 100).unwrap();
    assert_eq!(body.split('\u{1e}').count(), 2);
    assert_eq!(q.len(), 1);
    let mut q: VecDeque<_> = [msg(&"a".repeat(48)), msg(&"b".repeat(50))].into();
    take_polling_batch(&mut q, 100).unwrap();
    assert_eq!(q.len(), 1);

    // UTF-8 byte length counts, not chars: "é" is 2 bytes.
    let mut q: VecDeque<_> = [msg(&"é".repeat(20)), msg(&"é".repeat(20))].into();
    take_polling_batch(&mut q, 80).unwrap();
    assert_eq!(q.len(), 1, "1 + 40 + 2 + 40 = 83 > 80");

    // Packets without data count only their 2 bytes: 1, +2 = 3, +2 = 5, then 5 > 4.
    let mut q: VecDeque<_> = [Packet::Pong { probe: false }, Packet::Noop, Packet::Close].into();
    assert_eq!(take_polling_batch(&mut q, 4).unwrap(), "3\u{1e}6");
    let mut q: VecDeque<_> = [Packet::Pong { probe: false }, Packet::Noop, Packet::Close].into();
    assert_eq!(take_polling_batch(&mut q, 5).unwrap(), "3\u{1e}6\u{1e}1");

    // Binary counts ceil(len * 1.33): 100 bytes -> 133 (JS double arithmetic).
    let mut q: VecDeque<_> = [msg(""), Packet::Binary(Cow::Owned(vec![0; 100]))].into();
    take_polling_batch(&mut q, 135).unwrap();
    assert_eq!(q.len(), 1, "1 + 0 + 2 + 133 = 136 > 135");
    let mut q: VecDeque<_> = [msg(""), Packet::Binary(Cow::Owned(vec![0; 100]))].into();
    take_polling_batch(&mut q, 136).unwrap();
    assert!(q.is_empty());

    // maxPayload 0 means no limit, as in engine.io-client.
    let mut q: VecDeque<_> = [msg(&big), msg(&big)].into();
    take_polling_batch(&mut q, 0).unwrap();
    assert!(q.is_empty());
}

/// `_getWritablePackets` transcribed literally from engine.io-client, on record sizes.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))] // used by the property tests only
fn reference_batch_len(queue: &[Packet<'static>], max_payload: u64) -> usize {
    if queue.len() <= 1 || max_payload == 0 {
        return queue.len();
    }
    let mut payload_size = 1f64;
    for (i, p) in queue.iter().enumerate() {
        let data_len = match p {
            Packet::Message(t) => t.len() as f64,
            Packet::Binary(b) => (b.len() as f64 * 1.33).ceil(),
            Packet::Ping { probe: true } | Packet::Pong { probe: true } => 5.0,
            _ => 0.0,
        };
        payload_size += data_len;
        if i > 0 && payload_size > max_payload as f64 {
            return i;
        }
        payload_size += 2.0;
    }
    queue.len()
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn packet() -> impl Strategy<Value = Packet<'static>> {
        prop_oneof![
            Just(Packet::Close),
            any::<bool>().prop_map(|probe| Packet::Ping { probe }),
            any::<bool>().prop_map(|probe| Packet::Pong { probe }),
            any::<String>().prop_map(|s| Packet::Message(Cow::Owned(s))),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Packet::Binary(Cow::Owned(b))),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
            (
                "[a-zA-Z0-9_-]{0,20}",
                prop::collection::vec("[a-z\"é\\\\]{0,8}", 0..3),
                any::<u64>(),
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(|(sid, upgrades, ping_interval, ping_timeout, max_payload)| Packet::Open(
                    Handshake { sid, upgrades, ping_interval, ping_timeout, max_payload }
                )),
        ]
    }

    proptest! {
        #[test]
        fn prop_ws_roundtrip(p in packet()) {
            let back = match encode_ws(&p) {
                Frame::Text(t) => decode_text(&t).map(owned),
                Frame::Binary(b) => Ok(Packet::Binary(Cow::Owned(b))),
            };
            prop_assert_eq!(back, Ok(p));
        }

        #[test]
        fn prop_polling_roundtrip(packets in prop::collection::vec(packet(), 1..8)) {
            // Messages containing the separator cannot ride in a polling payload.
            let packets: Vec<_> = packets.into_iter().filter(|p| !matches!(p, Packet::Message(m) if m.contains('\u{1e}'))).collect();
            prop_assume!(!packets.is_empty());
            let mut q: VecDeque<_> = packets.clone().into();
            let body = take_polling_batch(&mut q, 0).unwrap();
            let back: Vec<_> = decode_payload(&body).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(back, packets);
        }

        #[test]
        fn prop_batching_matches_reference(sizes in prop::collection::vec(prop_oneof![
                (0usize..120).prop_map(|n| msg(&"z".repeat(n))),
                (0usize..120).prop_map(|n| Packet::Binary(Cow::Owned(vec![7; n]))),
                any::<bool>().prop_map(|probe| Packet::Ping { probe }),
                Just(Packet::Noop),
            ], 0..12), max_payload in 0u64..400) {
            let mut q: VecDeque<_> = sizes.clone().into();
            let mut rest = &sizes[..];
            while let Some(body) = take_polling_batch(&mut q, max_payload) {
                let n = reference_batch_len(rest, max_payload);
                prop_assert!(n >= 1);
                let mut expected = String::new();
                for (i, p) in rest[..n].iter().enumerate() {
                    if i > 0 { expected.push('\u{1e}'); }
                    encode_polling_record(p, &mut expected);
                }
                prop_assert_eq!(body, expected);
                rest = &rest[n..];
                prop_assert_eq!(q.len(), rest.len());
            }
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn prop_base64_roundtrip(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = String::new();
            base64_encode(&data, &mut out);
            prop_assert_eq!(out.len(), data.len().div_ceil(3) * 4);
            prop_assert_eq!(base64_decode(&out), Some(data));
        }

        #[test]
        fn prop_base64_decode_is_canonical(text in "[A-Za-z0-9+/=]{0,12}") {
            // Whatever decodes must re-encode to exactly the same text.
            if let Some(data) = base64_decode(&text) {
                let mut out = String::new();
                base64_encode(&data, &mut out);
                prop_assert_eq!(out, text);
            }
        }

        #[test]
        fn prop_decoders_never_panic(text in any::<String>(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_text(&text);
            let _ = decode_payload(&text).count();
            let _ = decode_binary(&bytes);
            let _ = base64_decode(&text);
            for prefix in ["0", "b", "2", "4", "0{\"sid\":"] {
                let t = format!("{prefix}{text}");
                let _ = decode_text(&t);
                let _ = decode_payload(&t).count();
            }
        }
    }
}
