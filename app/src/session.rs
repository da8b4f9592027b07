//! Who is signed in, remembered in the browser's local storage.

use serde::{Deserialize, Serialize};

const STORAGE_KEY: &str = "confab.session";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub username: String,
    pub image_url: String,
    /// Unix seconds.
    pub exp: i64,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The remembered session, unless there is none or its token has expired.
pub fn load() -> Option<Session> {
    let text = storage()?.get_item(STORAGE_KEY).ok()??;
    let session: Session = serde_json::from_str(&text).ok()?;
    let now = (js_sys::Date::now() / 1000.0) as i64;
    (session.exp > now).then_some(session)
}

pub fn save(session: &Session) {
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(session)) {
        let _ = storage.set_item(STORAGE_KEY, &text);
    }
}

pub fn clear() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(STORAGE_KEY);
    }
}
