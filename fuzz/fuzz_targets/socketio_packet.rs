//! What a Socket.IO client sends: socketioxide's packet decoder (which the server runs on
//! every text and binary frame), the event payload as Confab's handlers take it, and the
//! recovery fields of a handshake (`pid`, `offset`). Nothing panics, and no pid the server
//! did not issue verifies.
#![no_main]

use confab_server::dialects::socketio::{
    recovery::{Offset, Pids},
    Namespace,
};
use libfuzzer_sys::fuzz_target;
use socketioxide_core::{
    packet::PacketData,
    parser::{Parse, ParseConfig, ParserState},
    Str,
};
use socketioxide_parser_common::CommonParser;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = ParseConfig::default();
    let state = ParserState::default();
    let packet = if mode.is_multiple_of(2) {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        if mode.is_multiple_of(4) {
            // The handshake's recovery fields are plain strings.
            let pids = Pids::new(b"fuzzing secret");
            assert!(!pids.verify(text, Namespace::Default, "ana"));
            let _ = Offset::parse(text);
            return;
        }
        CommonParser.decode_str(&config, &state, Str::from(text.to_owned()))
    } else {
        CommonParser.decode_bin(&config, &state, rest.to_vec().into())
    };
    // What the server then does with a packet: route an event by its name and hand its
    // arguments to the handler as JSON; read a CONNECT's auth payload.
    match packet.map(|packet| packet.inner) {
        Ok(PacketData::Event(mut value, _) | PacketData::BinaryEvent(mut value, _)) => {
            if CommonParser.read_event(&value).is_ok() {
                let _ = CommonParser.decode_value::<serde_json::Value>(&mut value, true);
            }
        }
        Ok(PacketData::Connect(auth)) => {
            let _ = CommonParser.decode_default::<serde_json::Value>(auth.as_ref());
        }
        _ => {}
    }
});
