//! Who is signed in, remembered in the browser's local storage.

use serde::{Deserialize, Serialize};

// The key predates the type's name; changing it would sign everyone out once.
const STORAGE_KEY: &str = "confab.session";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Account {
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

/// The remembered account, unless there is none or its token has expired.
pub fn load() -> Option<Account> {
    let text = storage()?.get_item(STORAGE_KEY).ok()??;
    let account: Account = confab_shared::decode_json(&text).ok()?;
    let now = (js_sys::Date::now() / 1000.0) as i64;
    (account.exp > now).then_some(account)
}

pub fn save(account: &Account) {
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(account)) {
        let _ = storage.set_item(STORAGE_KEY, &text);
    }
}

pub fn clear() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(STORAGE_KEY);
    }
}
