//! The `/qf` channels' messages (online users, notifications, pings, party state) as the app
//! decodes them: any text gives a message or an error without panicking, and a message
//! encodes to text that decodes again.
#![no_main]

use confab_shared::channels::ChannelMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(message) = serde_json::from_str::<ChannelMessage>(text) {
        let encoded = serde_json::to_string(&message).expect("a channel message encodes");
        serde_json::from_str::<ChannelMessage>(&encoded).expect("an encoded message decodes");
    }
});
