//! The `/qf` channels' messages (online users, notifications, pings, party state) as the app
//! decodes them: any text gives a message or an error without panicking, the hand decoder
//! accepts exactly what serde's derive accepts, and a message encodes to text that decodes
//! again.
#![no_main]

use confab_shared::channels::{decode_channel, ChannelMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let derived = confab_shared::decode_json::<ChannelMessage>(text).ok();
    assert_eq!(
        decode_channel(text).ok(),
        derived,
        "the hand decoder and the derive differ"
    );
    if let Some(message) = derived {
        let encoded = serde_json::to_string(&message).expect("a channel message encodes");
        decode_channel(&encoded).expect("an encoded message decodes");
    }
});
