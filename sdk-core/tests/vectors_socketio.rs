//! Vectors for the Socket.IO v5 codec, named after PROTOCOL.md §2 (socket.io-protocol Readme):
//! the captured frames, socket.io-parser's `test/parser.js` invalid payloads, binary reassembly,
//! and encode/decode properties.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use tidings_core::engineio::{self, Packet as EioPacket};
use tidings_core::socketio::{
    DEFAULT_MAX_ATTACHMENTS, Decoder, Error, Packet, PacketType, RESERVED_EVENTS, decode, encode, placeholders,
};

fn dec(text: &str) -> Result<(Packet, usize), Error> {
    decode(text.to_string(), DEFAULT_MAX_ATTACHMENTS)
}

/// Decodes a complete (non-binary or zero-attachment) packet: kind, nsp, id, data text.
fn full(text: &str) -> (PacketType, String, Option<u64>, Option<String>) {
    let p = Decoder::new(DEFAULT_MAX_ATTACHMENTS).text(text.to_string()).unwrap().expect("complete packet");
    (p.kind, p.nsp, p.id, p.data.map(|d| d.as_str().to_string()))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn sio_2_packet_format_types() {
    assert_eq!(full("0"), (PacketType::Connect, "/".into(), None, None));
    assert_eq!(full("1"), (PacketType::Disconnect, "/".into(), None, None));
    assert_eq!(full("2[\"a\"]"), (PacketType::Event, "/".into(), None, some("[\"a\"]")));
    assert_eq!(full("3[]"), (PacketType::Ack, "/".into(), None, some("[]")));
    assert_eq!(full("4\"x\""), (PacketType::ConnectError, "/".into(), None, some("\"x\"")));
    assert_eq!(full("50-[\"a\"]"), (PacketType::BinaryEvent, "/".into(), None, some("[\"a\"]")));
    assert_eq!(full("60-[]"), (PacketType::BinaryAck, "/".into(), None, some("[]")));
    for kind in [0u8, 1, 2, 3, 4, 5, 6] {
        assert_eq!(PacketType::from_u8(kind).map(PacketType::as_u8), Some(kind));
    }
}

#[test]
fn sio_2_connect_main_namespace() {
    assert_eq!(full("0"), (PacketType::Connect, "/".into(), None, None));
    assert_eq!(encode(PacketType::Connect, "/", None, None, 0), "0");
    let ack = r#"0{"sid":"OcrhKt8JRMflu4EiAAAG"}"#;
    assert_eq!(full(ack), (PacketType::Connect, "/".into(), None, some(r#"{"sid":"OcrhKt8JRMflu4EiAAAG"}"#)));
    // With connection state recovery the ack gains a pid.
    assert_eq!(full(r#"0{"sid":"a","pid":"b"}"#).3, some(r#"{"sid":"a","pid":"b"}"#));
}

#[test]
fn sio_2_connect_with_auth() {
    assert_eq!(encode(PacketType::Connect, "/", None, Some(r#"{"token":"abc"}"#), 0), r#"0{"token":"abc"}"#);
    assert_eq!(full(r#"0{"token":"abc"}"#).3, some(r#"{"token":"abc"}"#));
    let recover = r#"0{"pid":"Gz9l","offset":"Q8EnilA","token":"t1"}"#;
    assert_eq!(encode(PacketType::Connect, "/", None, Some(&recover[1..]), 0), recover);
}

#[test]
fn sio_2_connect_custom_namespace() {
    assert_eq!(encode(PacketType::Connect, "/custom", None, Some(r#"{"token":"x"}"#), 0), r#"0/custom,{"token":"x"}"#);
    assert_eq!(
        full(r#"0/custom,{"sid":"FT0H"}"#),
        (PacketType::Connect, "/custom".into(), None, some(r#"{"sid":"FT0H"}"#))
    );
    assert_eq!(encode(PacketType::Connect, "/custom", None, None, 0), "0/custom,");
    assert_eq!(full("0/custom,"), (PacketType::Connect, "/custom".into(), None, None));
}

#[test]
fn sio_2_connect_error_middleware() {
    let (kind, nsp, id, data) = full(r#"4/no,{"message":"not authorized","data":{"code":42}}"#);
    assert_eq!((kind, nsp.as_str(), id), (PacketType::ConnectError, "/no", None));
    assert_eq!(data, some(r#"{"message":"not authorized","data":{"code":42}}"#));
    assert_eq!(full(r#"4/random,{"message":"Invalid namespace"}"#).1, "/random");
    assert_eq!(full(r#"4"Unauthorized""#).3, some(r#""Unauthorized""#));
    // socket.io-parser accepts a CONNECT_ERROR without payload.
    assert_eq!(full("4/no,").3, None);
}

#[test]
fn sio_2_event() {
    let frame = r#"2["message",1,"2",{"3":[true]}]"#;
    assert_eq!(full(frame), (PacketType::Event, "/".into(), None, some(&frame[1..])));
    assert_eq!(encode(PacketType::Event, "/", None, Some(&frame[1..]), 0), frame);
    // Integer event names are allowed (parser.js "encodes an event (with an integer as event name)").
    assert_eq!(full(r#"2[1,"a",{}]"#).3, some(r#"[1,"a",{}]"#));
    // Whitespace around the JSON is tolerated (JSON.parse); the data range excludes it.
    assert_eq!(full("2 [ \"a\" ] ").3, some("[ \"a\" ]"));
    // The offset appended by connection state recovery is just another argument.
    assert_eq!(full(r#"2["news","one","Q8EnilA"]"#).3, some(r#"["news","one","Q8EnilA"]"#));
}

#[test]
fn sio_2_event_with_ack() {
    assert_eq!(full(r#"21["echo",{"a":1}]"#), (PacketType::Event, "/".into(), Some(1), some(r#"["echo",{"a":1}]"#)));
    assert_eq!(full(r#"31[{"a":1}]"#), (PacketType::Ack, "/".into(), Some(1), some(r#"[{"a":1}]"#)));
    assert_eq!(encode(PacketType::Event, "/", Some(0), Some(r#"["echo",{"a":1}]"#), 0), r#"20["echo",{"a":1}]"#);
    assert_eq!(full(r#"2/test,1["a",1,{}]"#), (PacketType::Event, "/test".into(), Some(1), some(r#"["a",1,{}]"#)));
    assert_eq!(full("3123[\"a\",1,{}]").2, Some(123));
    assert_eq!(full("3/admin,18446744073709551615[]").2, Some(u64::MAX));
}

#[test]
fn sio_2_server_event_with_ack() {
    assert_eq!(full(r#"21["ask",1]"#).2, Some(1));
    assert_eq!(encode(PacketType::Ack, "/", Some(1), Some(r#"["yes"]"#), 0), r#"31["yes"]"#);
    assert_eq!(encode(PacketType::Ack, "/custom", Some(12), Some("[]"), 0), "3/custom,12[]");
}

#[test]
fn sio_2_binary_from_server() {
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    assert_eq!(d.text(r#"51-["doge",{"_placeholder":true,"num":0}]"#.to_string()), Ok(None));
    assert!(d.is_pending());
    let p = d.binary(b"asdfasdf".to_vec()).unwrap().unwrap();
    assert_eq!(p.kind, PacketType::BinaryEvent);
    assert_eq!(p.data.unwrap().as_str(), r#"["doge",{"_placeholder":true,"num":0}]"#);
    assert_eq!(p.attachments, [b"asdfasdf".to_vec()]);
    assert!(!d.is_pending());
}

#[test]
fn sio_2_binary_from_server_over_polling() {
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    let mut out = Vec::new();
    for eio in engineio::decode_payload("451-[\"doge\",{\"_placeholder\":true,\"num\":0}]\u{1e}bYXNkZmFzZGY=") {
        let r = match eio.unwrap() {
            EioPacket::Message(m) => d.text(m.into_owned()),
            EioPacket::Binary(b) => d.binary(b.into_owned()),
            other => panic!("{other:?}"),
        };
        out.extend(r.unwrap());
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attachments, [b"asdfasdf".to_vec()]);
}

#[test]
fn sio_2_binary_event_with_ack() {
    let text = r#"51-7["echo",{"_placeholder":true,"num":0}]"#;
    assert_eq!(encode(PacketType::BinaryEvent, "/", Some(7), Some(&text[4..]), 1), text);
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    assert_eq!(d.text(text.to_string()), Ok(None));
    let p = d.binary(vec![1, 2, 3]).unwrap().unwrap();
    assert_eq!((p.kind, p.id, p.attachments), (PacketType::BinaryEvent, Some(7), vec![vec![1, 2, 3]]));

    let ack = r#"61-7[{"_placeholder":true,"num":0}]"#;
    assert_eq!(encode(PacketType::BinaryAck, "/", Some(7), Some(&ack[4..]), 1), ack);
    assert_eq!(d.text(ack.to_string()), Ok(None));
    let p = d.binary(vec![1, 2, 3]).unwrap().unwrap();
    assert_eq!((p.kind, p.id, p.nsp.as_str()), (PacketType::BinaryAck, Some(7), "/"));

    let custom = r#"51-/custom,0["echo",{"_placeholder":true,"num":0}]"#;
    assert_eq!(encode(PacketType::BinaryEvent, "/custom", Some(0), Some(&custom[12..]), 1), custom);
    assert_eq!(dec(custom).map(|(p, n)| (p.nsp, p.id, n)), Ok(("/custom".to_string(), Some(0), 1)));
}

#[test]
fn sio_2_binary_two_attachments_in_order() {
    let text = r#"52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    assert_eq!(d.text(text.to_string()), Ok(None));
    assert_eq!(d.binary(vec![0]), Ok(None));
    let p = d.binary(vec![1]).unwrap().unwrap();
    assert_eq!(p.attachments, [vec![0], vec![1]]);
    assert_eq!(placeholders(p.data.unwrap().as_str()), Ok(vec![0, 1]));
}

#[test]
fn sio_2_binary_zero_attachments_completes_at_once() {
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    let p = d.text(r#"50-["a"]"#.to_string()).unwrap().unwrap();
    assert_eq!((p.kind, p.attachments.len()), (PacketType::BinaryEvent, 0));
    assert!(!d.is_pending());
    // And the decoder is free for the next text (socket.io-parser would wrongly still reconstruct).
    assert!(d.text(r#"2["b"]"#.to_string()).unwrap().is_some());
    // A placeholder with nothing announced points nowhere.
    assert_eq!(d.text(r#"50-["a",{"_placeholder":true,"num":0}]"#.to_string()), Err(Error::BadPlaceholder));
}

#[test]
fn a_binary_packet_naming_one_attachment_twice_is_refused_before_its_attachments_arrive() {
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    let twice = r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#;
    assert_eq!(d.text(twice.to_string()), Err(Error::RepeatedPlaceholder));
    assert!(!d.is_pending(), "nothing waits for the attachments");
    // Each attachment once, in any order, is fine.
    let once = r#"52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#;
    assert_eq!(d.text(once.to_string()), Ok(None));
    assert_eq!(d.binary(vec![1]), Ok(None));
    assert!(d.binary(vec![2]).unwrap().is_some());
}

#[test]
fn sio_2_disconnect() {
    assert_eq!(full("1"), (PacketType::Disconnect, "/".into(), None, None));
    assert_eq!(full("1/custom,"), (PacketType::Disconnect, "/custom".into(), None, None));
    assert_eq!(encode(PacketType::Disconnect, "/", None, None, 0), "1");
    assert_eq!(encode(PacketType::Disconnect, "/custom", None, None, 0), "1/custom,");
    // socket.io-parser reads a namespace up to ',' or the end of the packet.
    assert_eq!(full("1/custom"), (PacketType::Disconnect, "/custom".into(), None, None));
}

#[test]
fn sio_2_namespace_reading_follows_socket_io_parser() {
    // Only a leading '/' starts a namespace; everything up to the first ',' belongs to it.
    assert_eq!(full("0/a/b?x=1,").1, "/a/b?x=1");
    assert_eq!(full("0/é,").1, "/é");
    assert_eq!(full("0/,").1, "/");
    // No comma: the namespace runs to the end, swallowing what would have been the payload.
    assert_eq!(full(r#"0/custom{"a":1}"#), (PacketType::Connect, r#"/custom{"a":1}"#.into(), None, None));
    // Not a namespace: no leading slash.
    assert!(matches!(dec("0custom,{}"), Err(Error::BadJson(_))));
}

#[test]
fn sio_2_encode_header_rules() {
    // The `<n>-` count only for the binary types; the namespace omitted for "/" and "".
    assert_eq!(encode(PacketType::Event, "", None, Some("[\"a\"]"), 0), "2[\"a\"]");
    assert_eq!(encode(PacketType::Event, "/", None, Some("[\"a\"]"), 3), "2[\"a\"]");
    assert_eq!(encode(PacketType::BinaryEvent, "/", None, Some("[\"a\"]"), 0), "50-[\"a\"]");
    assert_eq!(encode(PacketType::BinaryEvent, "/x", Some(3), Some("[]"), 12), "512-/x,3[]");
    assert_eq!(encode(PacketType::Ack, "/x", Some(u64::MAX), Some("[]"), 0), "3/x,18446744073709551615[]");
}

/// socket.io-parser `test/parser.js` "throw an error upon parsing error" and "decodes a bad binary packet".
#[test]
fn sio_2_decoder_validity_parser_js_invalid_payloads() {
    let invalid_payload = [
        r#"0/admin,"invalid""#,
        "0[]",
        "1/admin,{}",
        "2/admin,{}",
        r#"2[{"toString":"foo"}]"#,
        r#"2[true,"foo"]"#,
        r#"2[null,"bar"]"#,
        r#"2["connect"]"#,
        r#"2["disconnect","123"]"#,
    ];
    for text in invalid_payload {
        assert!(matches!(dec(text), Err(Error::InvalidPayload(_))), "{text:?}: {:?}", dec(text));
    }
    // Not JSON at all (socket.io-parser's tryParse fails, then "invalid payload").
    for text in [r#"442["some","data""#, r#"2/admin,"invalid"#] {
        assert!(matches!(dec(text), Err(Error::BadJson(_))), "{text:?}: {:?}", dec(text));
    }
    assert_eq!(dec("999"), Err(Error::UnknownType));
    assert_eq!(dec("5"), Err(Error::BadAttachments));
}

#[test]
fn sio_2_decoder_validity_type_rules() {
    let ok = [
        "0",
        "0{}",
        "0/admin,{}",
        "1",
        "1/admin,",
        r#"2["a"]"#,
        r#"2[1]"#,
        r#"2[-1.5e3,null]"#,
        r#"2["connects"]"#,
        r#"2["Connect"]"#,
        "3[]",
        "3[null]",
        r#"4"x""#,
        "4{}",
        "4",
        r#"51-["a",{"_placeholder":true,"num":0}]"#,
        "61-[]",
    ];
    for text in ok {
        assert!(dec(text).is_ok(), "{text:?}: {:?}", dec(text));
    }
    let bad = [
        ("0\"x\"", "CONNECT string"),
        ("0-1", "CONNECT number"),
        ("0null", "CONNECT null"),
        ("1[]", "DISCONNECT with data"),
        ("1\"x\"", "DISCONNECT with data"),
        ("2", "EVENT without data"),
        ("2/admin,", "EVENT without data"),
        ("2[]", "EVENT without name"),
        ("2{}", "EVENT object"),
        ("2\"a\"", "EVENT string"),
        (r#"2[["a"]]"#, "EVENT array name"),
        (r#"2[{"a":1}]"#, "EVENT object name"),
        (r#"2[false]"#, "EVENT bool name"),
        ("3", "ACK without data"),
        ("3{}", "ACK object"),
        ("3\"a\"", "ACK string"),
        ("4[]", "CONNECT_ERROR array"),
        ("4/admin,[]", "CONNECT_ERROR array"),
        ("4null", "CONNECT_ERROR null"),
        ("40", "CONNECT_ERROR number (0 is the ack id, then no payload?)"),
        ("51-", "BINARY_EVENT without data"),
        ("61-", "BINARY_ACK without data"),
        ("51-{}", "BINARY_EVENT object"),
        ("61-{}", "BINARY_ACK object"),
    ];
    for (text, why) in bad {
        if text == "40" {
            // `40` as a Socket.IO text is CONNECT_ERROR with ack id 0 and no payload: accepted.
            assert!(dec(text).is_ok());
            continue;
        }
        assert!(matches!(dec(text), Err(Error::InvalidPayload(_))), "{text:?} ({why}): {:?}", dec(text));
    }
    for name in RESERVED_EVENTS {
        assert!(matches!(dec(&format!("2[\"{name}\",1]")), Err(Error::InvalidPayload(_))), "{name}");
        assert!(matches!(dec(&format!("51-[\"{name}\"]")), Err(Error::InvalidPayload(_))), "{name}");
    }
    // Reserved names are compared after unescaping, as after JSON.parse.
    assert!(matches!(dec(r#"2["conn\u0065ct"]"#), Err(Error::InvalidPayload(_))));
}

#[test]
fn sio_2_decoder_validity_header_errors() {
    assert_eq!(dec(""), Err(Error::Empty));
    for text in ["7", "9[]", "a", "-1", " 2[\"a\"]", "é"] {
        assert_eq!(dec(text), Err(Error::UnknownType), "{text:?}");
    }
    for text in
        ["5-", "5-[\"a\"]", "5x-[\"a\"]", "51[\"a\"]", "5 1-[\"a\"]", "5+1-[\"a\"]", "6", "6-[]", "51", "5/nsp,1-[]"]
    {
        assert_eq!(dec(text), Err(Error::BadAttachments), "{text:?}");
    }
    assert_eq!(dec("599999999999999999999999999-[]"), Err(Error::BadAttachments));
    // Ack ids are bounded.
    assert_eq!(dec("318446744073709551616[]"), Err(Error::BadAckId));
    assert_eq!(dec("2/admin,99999999999999999999999[\"a\"]"), Err(Error::BadAckId));
    // Trailing garbage after the JSON.
    assert!(matches!(dec(r#"2["a"]x"#), Err(Error::BadJson(_))));
    assert!(matches!(dec(r#"2["a"]["b"]"#), Err(Error::BadJson(_))));
    assert!(matches!(dec("2abc"), Err(Error::BadJson(_))));
    // Only JSON whitespace around the payload (no form feed, as with JSON.parse).
    assert!(matches!(dec("2[\"a\"]\u{c}"), Err(Error::BadJson(_))));
    assert!(matches!(dec("2\u{c}[\"a\"]"), Err(Error::BadJson(_))));
    assert!(dec("2\r\n\t [\"a\"] \n").is_ok());
}

#[test]
fn sio_2_decoder_validity_protocol_suite_closes() {
    // The protocol test suite sends these as Engine.IO messages; each must be refused.
    for frame in ["4abc", "42{}", r#"42["disconnect"]"#, r#"42abc["a"]"#] {
        let Ok(EioPacket::Message(m)) = engineio::decode_text(frame) else { panic!("{frame}") };
        let r = Decoder::new(DEFAULT_MAX_ATTACHMENTS).text(m.into_owned());
        assert!(r.is_err(), "{frame:?} was accepted: {r:?}");
    }
    assert_eq!(dec("abc"), Err(Error::UnknownType));
    assert!(matches!(dec("2{}"), Err(Error::InvalidPayload(_))));
    // As bare Socket.IO texts these would read differently: `4abc` is a CONNECT_ERROR with bad JSON.
    assert!(matches!(dec("4abc"), Err(Error::BadJson(_))));
}

#[test]
fn sio_2_max_attachments() {
    let placeholders: Vec<String> = (0..11).map(|n| format!(r#"{{"_placeholder":true,"num":{n}}}"#)).collect();
    let eleven = format!("511-[\"a\",{}]", placeholders.join(","));
    assert_eq!(dec(&eleven).map(|_| ()), Err(Error::TooManyAttachments { announced: 11, max: 10 }));
    let ten = format!("510-[\"a\",{}]", placeholders[..10].join(","));
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    assert_eq!(d.text(ten.clone()), Ok(None));
    for i in 0..9 {
        assert_eq!(d.binary(vec![i]), Ok(None));
    }
    assert_eq!(d.binary(vec![9]).unwrap().unwrap().attachments.len(), 10);
    // A configured cap.
    assert_eq!(Decoder::new(2).text(ten).map(|_| ()), Err(Error::TooManyAttachments { announced: 10, max: 2 }));
    assert!(Decoder::new(0).text(r#"50-["a"]"#.to_string()).is_ok());
    assert_eq!(
        Decoder::new(0).text(r#"51-["a"]"#.to_string()),
        Err(Error::TooManyAttachments { announced: 1, max: 0 })
    );
}

#[test]
fn sio_2_placeholder_out_of_range_or_malformed() {
    for text in [
        r#"51-["a",{"_placeholder":true,"num":1}]"#,
        r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":2}]"#,
        r#"51-["a",{"_placeholder":true,"num":-1}]"#,
        r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
        r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
        r#"51-["a",{"_placeholder":true,"num":null}]"#,
        r#"51-["a",{"_placeholder":true}]"#,
        r#"51-["a",{"_placeholder":true,"num":99999999999999999999999}]"#,
        r#"51-["a",{"x":[{"_placeholder":true,"num":1}]}]"#,
        r#"61-[{"_placeholder":true,"num":3}]"#,
    ] {
        let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
        assert_eq!(d.text(text.to_string()), Err(Error::BadPlaceholder), "{text}");
        assert!(!d.is_pending());
    }
}

#[test]
fn sio_2_placeholders_found_in_document_order() {
    let p = |s: &str| placeholders(s);
    assert_eq!(p("[]"), Ok(vec![]));
    assert_eq!(p(r#"{"_placeholder":true,"num":3}"#), Ok(vec![3]));
    assert_eq!(
        p(r#"["a",{"x":{"_placeholder":true,"num":1}},[{"_placeholder":true,"num":0}],{"num":2,"_placeholder":true}]"#),
        Ok(vec![1, 0, 2])
    );
    // `_placeholder` must be exactly true; otherwise it is an ordinary object and is searched.
    assert_eq!(p(r#"[{"_placeholder":false,"num":1}]"#), Ok(vec![]));
    assert_eq!(p(r#"[{"_placeholder":"true","num":1,"in":{"_placeholder":true,"num":4}}]"#), Ok(vec![4]));
    // The last duplicate wins, as after JSON.parse.
    assert_eq!(p(r#"[{"_placeholder":true,"num":1,"_placeholder":false}]"#), Ok(vec![]));
    assert_eq!(p(r#"[{"_placeholder":false,"_placeholder":true,"num":"x","num":5}]"#), Ok(vec![5]));
    // Escaped keys count.
    assert_eq!(p(r#"[{"_placeholde\u0072":true,"n\u0075m":6}]"#), Ok(vec![6]));
    // A placeholder replaces its whole value: what is inside is not searched.
    assert_eq!(p(r#"[{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9}}]"#), Ok(vec![0]));
    assert_eq!(p(r#"[{"_placeholder":true,"num":0,"x":{"_placeholder":true}}]"#), Ok(vec![0]));
    // Malformed.
    assert_eq!(p(r#"[{"_placeholder":true,"num":-1}]"#), Err(Error::BadPlaceholder));
    assert_eq!(p(r#"[{"_placeholder":true,"num":1e0}]"#), Err(Error::BadPlaceholder));
    assert_eq!(p(r#"[{"_placeholder":true,"num":{"a":1}}]"#), Err(Error::BadPlaceholder));
    assert!(matches!(p("[1,"), Err(Error::BadJson(_))));
    assert!(matches!(p("[1] 2"), Err(Error::BadJson(_))));
}

#[test]
fn sio_2_decoder_state_machine() {
    let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
    // Binary with nothing pending.
    assert_eq!(d.binary(vec![1]), Err(Error::UnexpectedBinary));
    // Text while a binary packet waits: error, and the partial packet is dropped.
    assert_eq!(d.text(r#"52-["a",{"_placeholder":true,"num":0}]"#.to_string()), Ok(None));
    assert_eq!(d.binary(vec![1]), Ok(None));
    assert_eq!(d.text(r#"2["b"]"#.to_string()), Err(Error::IncompleteBinary));
    assert!(!d.is_pending());
    assert_eq!(d.binary(vec![2]), Err(Error::UnexpectedBinary));
    // parser.js "should resume decoding after calling destroy()".
    assert_eq!(d.text(r#"51-["hello"]"#.to_string()), Ok(None));
    d.reset();
    let p = d.text(r#"2["hello"]"#.to_string()).unwrap().unwrap();
    assert_eq!(p.data.unwrap().as_str(), r#"["hello"]"#);
    // A decode error leaves the decoder usable.
    assert!(d.text("2{}".to_string()).is_err());
    assert!(d.text(r#"2["ok"]"#.to_string()).unwrap().is_some());
}

#[test]
fn sio_2_payload_is_zero_copy_slice() {
    let (p, _) = dec(r#"2/chat,5 ["msg",{"a":"é"}] "#).unwrap();
    let data = p.data.unwrap();
    assert_eq!(data.as_str(), r#"["msg",{"a":"é"}]"#);
    let (text, range) = data.into_parts();
    assert_eq!(text, r#"2/chat,5 ["msg",{"a":"é"}] "#);
    assert_eq!(range, 9..text.len() - 1);
}

#[test]
fn sio_2_errors_display() {
    assert_eq!(Error::UnexpectedBinary.to_string(), "got binary data when not reconstructing a packet");
    assert_eq!(
        Error::TooManyAttachments { announced: 11, max: 10 }.to_string(),
        "too many attachments: 11 announced, at most 10 allowed"
    );
    let e = dec("2[").unwrap_err();
    assert!(std::error::Error::source(&e).is_some(), "{e}");
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn kind_and_data() -> impl Strategy<Value = (PacketType, Option<String>)> {
        let name = prop_oneof![
            "[a-zA-Z_ é]{0,10}"
                .prop_filter("reserved", |s| !RESERVED_EVENTS.contains(&s.as_str()))
                .prop_map(|s| serde_json::to_string(&s).unwrap()),
            any::<i32>().prop_map(|n| n.to_string()),
        ];
        let arg = prop_oneof![
            Just("null".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just(r#"{"a":[1,{"b":null}]}"#.to_string()),
        ];
        let args = prop::collection::vec(arg, 0..4);
        let object = prop::collection::btree_map("[a-z]{1,5}", any::<String>(), 0..4)
            .prop_map(|m| serde_json::to_string(&m).unwrap());
        prop_oneof![
            prop::option::of(object.clone()).prop_map(|d| (PacketType::Connect, d)),
            Just((PacketType::Disconnect, None)),
            (name.clone(), args.clone()).prop_map(|(n, a)| (
                PacketType::Event,
                Some(format!("[{}]", std::iter::once(n).chain(a).collect::<Vec<_>>().join(",")))
            )),
            args.clone().prop_map(|a| (PacketType::Ack, Some(format!("[{}]", a.join(","))))),
            prop_oneof![object, any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap())]
                .prop_map(|d| (PacketType::ConnectError, Some(d))),
            (name, args.clone()).prop_map(|(n, a)| (
                PacketType::BinaryEvent,
                Some(format!("[{}]", std::iter::once(n).chain(a).collect::<Vec<_>>().join(",")))
            )),
            args.prop_map(|a| (PacketType::BinaryAck, Some(format!("[{}]", a.join(","))))),
        ]
    }

    proptest! {
        #[test]
        fn prop_encode_decode_roundtrip(
            (kind, data) in kind_and_data(),
            nsp in prop_oneof![Just("/".to_string()), "/[a-z0-9/_é-]{0,8}"],
            id in prop::option::of(any::<u64>()),
            n in 0usize..=10,
        ) {
            let n = if kind.as_u8() >= 5 { n } else { 0 };
            // Give every announced attachment a placeholder (appended as extra arguments).
            let data = data.map(|d| if n > 0 {
                let ph: Vec<String> = (0..n).map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#)).collect();
                format!("{}{}{}]", &d[..d.len() - 1], if d == "[]" { "" } else { "," }, ph.join(","))
            } else { d });
            let text = encode(kind, &nsp, id, data.as_deref(), n);
            let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
            let mut got = d.text(text.clone()).unwrap();
            for i in 0..n {
                prop_assert!(got.is_none());
                got = d.binary(vec![i as u8]).unwrap();
            }
            let p = got.unwrap();
            prop_assert_eq!(p.kind, kind);
            prop_assert_eq!(&p.nsp, &nsp);
            prop_assert_eq!(p.id, id);
            prop_assert_eq!(p.data.as_ref().map(|d| d.as_str()), data.as_deref());
            prop_assert_eq!(p.attachments.len(), n);
            // Re-encoding the decoded packet gives the same text.
            prop_assert_eq!(encode(p.kind, &p.nsp, p.id, p.data.as_ref().map(|d| d.as_str()), p.attachments.len()), text);
        }

        #[test]
        fn prop_decoders_never_panic(text in any::<String>(), prefix in "[0-6]?[0-9]{0,2}-?(/[a-z]{0,3},)?[0-9]{0,3}") {
            let t = format!("{prefix}{text}");
            let _ = decode(t.clone(), DEFAULT_MAX_ATTACHMENTS);
            let _ = placeholders(&text);
            let mut d = Decoder::new(DEFAULT_MAX_ATTACHMENTS);
            let _ = d.text(t);
            let _ = d.binary(text.into_bytes());
        }

        #[test]
        fn prop_decoder_sequence_never_panics(steps in prop::collection::vec(prop_oneof![
                "[0-6][0-9]{0,2}-?(/a,)?[0-9]?\\[(\"x\"|1|\\{\"_placeholder\":true,\"num\":[0-3]\\})(,\\{\"_placeholder\":true,\"num\":[0-3]\\}){0,3}\\]".prop_map(Ok),
                prop::collection::vec(any::<u8>(), 0..4).prop_map(Err),
            ], 0..16)) {
            let mut d = Decoder::new(3);
            for step in steps {
                let r = match step {
                    Ok(text) => d.text(text),
                    Err(bytes) => d.binary(bytes),
                };
                if let Ok(Some(p)) = r {
                    let n = p.attachments.len();
                    if let Some(data) = &p.data {
                        for num in placeholders(data.as_str()).unwrap() {
                            prop_assert!((num as usize) < n.max(1) || n == 0 && p.kind.as_u8() < 5);
                        }
                    }
                }
            }
        }
    }
}
