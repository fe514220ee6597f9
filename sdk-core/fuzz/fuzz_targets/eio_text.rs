//! Engine.IO WebSocket frames: no panic; whatever decodes re-encodes to a frame that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_core::engineio::{self, Frame, Packet};

fuzz_target!(|data: &[u8]| {
    let binary = engineio::decode_binary(data);
    assert_eq!(engineio::encode_ws(&binary), Frame::Binary(data.to_vec()));

    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(packet) = engineio::decode_text(text) else { return };
    let Frame::Text(again) = engineio::encode_ws(&packet) else { panic!("text packet encoded as binary") };
    let back = engineio::decode_text(&again).expect("re-encoded frame decodes");
    assert_eq!(back, packet);
    if !matches!(packet, Packet::Open(_)) {
        // Apart from the handshake JSON (whose spacing and key order are normalised), encoding is exact.
        assert_eq!(again, text);
    }
});
