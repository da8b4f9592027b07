//! Who is signed in, remembered in the browser's local storage.

use confab_shared::{fields::Fields, FromJson};
use serde::Serialize;
use serde_json::Value;

// The key predates the type's name; changing it would sign everyone out once.
const STORAGE_KEY: &str = "confab.session";

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
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

impl FromJson for Account {
    fn from_json(value: &Value) -> confab_shared::fields::Result<Self> {
        let f = Fields::of(value, "account")?;
        Ok(Account {
            token: f.text("token")?,
            user_id: f.text("user_id")?,
            username: f.text("username")?,
            image_url: f.text("image_url")?,
            exp: f.i64("exp")?,
        })
    }
}

/// The remembered account, unless there is none or its token has expired.
pub fn load() -> Option<Account> {
    let text = storage()?.get_item(STORAGE_KEY).ok()??;
    let account: Account = confab_shared::decode(&text).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_account_reads_back_and_a_damaged_one_does_not() {
        let account = Account {
            token: "eyJ.x.y".into(),
            user_id: "u1".into(),
            username: "Ana".into(),
            image_url: String::new(),
            exp: 1_700_000_000,
        };
        let saved = serde_json::to_value(&account).unwrap();
        assert_eq!(
            confab_shared::decode::<Account>(&saved.to_string()).ok(),
            Some(account)
        );
        for field in ["token", "user_id", "username", "image_url", "exp"] {
            let mut missing = saved.clone();
            missing.as_object_mut().unwrap().remove(field);
            assert!(confab_shared::decode::<Account>(&missing.to_string()).is_err());
            let mut wrong = saved.clone();
            wrong[field] = serde_json::json!(1.5);
            assert!(confab_shared::decode::<Account>(&wrong.to_string()).is_err());
        }
        assert!(confab_shared::decode::<Account>("not json").is_err());
    }
}
