//! Tokens for tests, signed like an identity provider would.

use confab_server::config::TEST_JWT_SECRET;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token with the test secret carrying `claims`.
pub fn hs256(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A token for `user_id` named `username`, valid for an hour.
pub fn token_for(user_id: &str, username: &str) -> String {
    hs256(json!({
        "sub": user_id,
        "username": username,
        "image_url": format!("https://img.example/{user_id}.png"),
        "email": format!("{user_id}@example.com"),
        "iss": "https://issuer.example",
        "exp": now_secs() + 3600,
    }))
}
