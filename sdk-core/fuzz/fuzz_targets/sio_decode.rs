//! The Socket.IO decoder driven by a sequence of text and binary inputs: no panic, and every
//! completed packet respects the decoder's promises and re-encodes to an equivalent packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_core::socketio::{self, Decoder, PacketType};

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else { return };
    let max_attachments = usize::from(config % 12);
    let mut decoder = Decoder::new(max_attachments);
    // Inputs are separated by 0xFF (never part of UTF-8). A leading 0x00 makes an input binary.
    for chunk in rest.split(|&b| b == 0xff) {
        let result = match chunk.split_first() {
            Some((0, bytes)) => decoder.binary(bytes.to_vec()),
            _ => {
                let text = String::from_utf8_lossy(chunk).into_owned();
                let _ = socketio::placeholders(&text);
                decoder.text(text)
            }
        };
        let Ok(Some(packet)) = result else { continue };
        let binary = matches!(packet.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
        assert!(binary || packet.attachments.is_empty());
        assert!(packet.attachments.len() <= max_attachments);
        assert!(packet.nsp.starts_with('/'));
        let data = packet.data.as_ref().map(|d| d.as_str());
        if binary {
            for num in socketio::placeholders(data.unwrap_or("")).expect("checked placeholders") {
                assert!((num as usize) < packet.attachments.len());
            }
        }
        if matches!(packet.kind, PacketType::Event | PacketType::Ack | PacketType::BinaryEvent | PacketType::BinaryAck)
        {
            assert!(data.is_some());
        }
        // Re-encoding gives a packet that decodes to the same header and payload (a namespace
        // containing ',' cannot be written back, and the encoder omits an empty one).
        if packet.nsp.contains(',') {
            continue;
        }
        let text = socketio::encode(packet.kind, &packet.nsp, packet.id, data, packet.attachments.len());
        let (again, announced) = socketio::decode(text, max_attachments).expect("re-encoded packet decodes");
        assert_eq!(announced, packet.attachments.len());
        assert_eq!((again.kind, &again.nsp, again.id), (packet.kind, &packet.nsp, packet.id));
        assert_eq!(again.data.as_ref().map(|d| d.as_str()), data);
    }
});
