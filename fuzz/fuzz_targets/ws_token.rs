//! The `/qf` token parser: any token string is refused without panicking, and any payload
//! under a valid MAC (which only the server can make) is read or refused without panicking.
//! The first byte picks which of the two is tried.
#![no_main]

use confab_server::auth::ws_token::WsTokens;
use libfuzzer_sys::fuzz_target;

const NOW_SECS: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let tokens = WsTokens::new(b"fuzzing secret", 60);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode.is_multiple_of(2) {
        if let Ok(token) = std::str::from_utf8(rest) {
            // A token nobody signed never verifies (the MAC is 256 bits).
            assert!(tokens.verify(Some(token), NOW_SECS).is_err());
        }
    } else {
        let _ = tokens.verify(Some(&tokens.sign(rest)), NOW_SECS);
    }
});
