//! `/ws`'s envelope: any text a client sends decodes to a message or a typed error without
//! panicking, and a message the server accepts encodes to text it accepts again. The same
//! for server frames as the app decodes them, whose hand decoder must accept exactly what
//! serde's derive accepts.
#![no_main]

use confab_shared::native::{decode_client, decode_server, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(message) = decode_client(text) {
        let encoded = serde_json::to_string(&message).expect("an accepted message encodes");
        decode_client(&encoded).expect("an encoded message decodes");
    }
    let derived = confab_shared::decode_json::<ServerMessage>(text).ok();
    assert_eq!(
        decode_server(text).ok(),
        derived,
        "the hand decoder and the derive differ"
    );
    if let Some(message) = derived {
        let encoded = serde_json::to_string(&message).expect("a server message encodes");
        decode_server(&encoded).expect("an encoded server message decodes");
    }
});
