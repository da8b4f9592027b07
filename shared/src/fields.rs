//! Reading a message's fields from a parsed `Value` by hand, with the rules serde's derive
//! applies: a missing field is an error unless it is an `Option` (or has a default), a
//! `null` is `None` for an `Option` and an error for anything else, numbers must fit.
//! The crate root says why the app reads what it receives this way; the app reads its own
//! stored types with these too.

use serde_json::{Map, Value};

/// Why a message could not be read: the field at fault.
pub type Result<T> = std::result::Result<T, String>;

/// The fields of one JSON object.
pub struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value, what: &str) -> Result<Self> {
        value
            .as_object()
            .map(Fields)
            .ok_or_else(|| format!("{what}: expected an object"))
    }

    pub fn get(&self, name: &str) -> Result<&'a Value> {
        self.0
            .get(name)
            .ok_or_else(|| format!("missing field `{name}`"))
    }

    /// A field that may be absent or `null`.
    pub fn optional(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    pub fn text(&self, name: &str) -> Result<String> {
        text(self.get(name)?, name)
    }

    pub fn optional_text(&self, name: &str) -> Result<Option<String>> {
        self.optional(name)
            .map(|value| text(value, name))
            .transpose()
    }

    /// A string that defaults to empty when absent.
    pub fn text_or_empty(&self, name: &str) -> Result<String> {
        self.0
            .get(name)
            .map_or(Ok(String::new()), |value| text(value, name))
    }

    pub fn u64(&self, name: &str) -> Result<u64> {
        unsigned(self.get(name)?, name)
    }

    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>> {
        self.optional(name).map(|v| unsigned(v, name)).transpose()
    }

    pub fn usize(&self, name: &str) -> Result<usize> {
        usize::try_from(self.u64(name)?).map_err(|_| format!("`{name}` out of range"))
    }

    pub fn u32(&self, name: &str) -> Result<u32> {
        u32::try_from(self.u64(name)?).map_err(|_| format!("`{name}` out of range"))
    }

    pub fn i64(&self, name: &str) -> Result<i64> {
        self.get(name)?
            .as_i64()
            .ok_or_else(|| format!("`{name}`: expected an integer"))
    }

    pub fn flag(&self, name: &str) -> Result<bool> {
        flag(self.get(name)?, name)
    }

    /// A `bool` that defaults to `false` when absent.
    pub fn flag_or_false(&self, name: &str) -> Result<bool> {
        self.0
            .get(name)
            .map_or(Ok(false), |value| flag(value, name))
    }

    pub fn list<T>(&self, name: &str, item: fn(&Value) -> Result<T>) -> Result<Vec<T>> {
        match self.get(name)? {
            Value::Array(items) => items.iter().map(item).collect(),
            _ => Err(format!("`{name}`: expected an array")),
        }
    }
}

pub fn text(value: &Value, name: &str) -> Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{name}`: expected a string"))
}

pub fn unsigned(value: &Value, name: &str) -> Result<u64> {
    value
        .as_u64()
        .ok_or_else(|| format!("`{name}`: expected an unsigned integer"))
}

pub fn flag(value: &Value, name: &str) -> Result<bool> {
    value
        .as_bool()
        .ok_or_else(|| format!("`{name}`: expected a boolean"))
}

/// Every way a field can go wrong, at every depth, in every message: each field left out,
/// or replaced by a value of each JSON kind. The tests feed these to a hand decoder and to
/// the derive it follows.
#[cfg(test)]
pub fn variants_of(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let mut without = fields.clone();
                without.remove(name);
                out.push(Value::Object(without));
                for replacement in [
                    Value::Null,
                    serde_json::json!(true),
                    serde_json::json!(-1),
                    serde_json::json!(4_294_967_296u64),
                    serde_json::json!(1.5),
                    serde_json::json!("lobby"),
                    serde_json::json!([]),
                    serde_json::json!({}),
                ] {
                    let mut changed = fields.clone();
                    changed.insert(name.clone(), replacement);
                    out.push(Value::Object(changed));
                }
                for inner in variants_of(field) {
                    let mut changed = fields.clone();
                    changed.insert(name.clone(), inner);
                    out.push(Value::Object(changed));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                for inner in variants_of(item) {
                    let mut changed = items.clone();
                    changed[i] = inner;
                    out.push(Value::Array(changed));
                }
            }
        }
        _ => {}
    }
    out
}

/// Holds a hand decoder to the derive it follows: each message decodes to itself, and each of
/// its [`variants_of`] decodes through both to the same message or fails in both.
#[cfg(test)]
pub fn assert_decodes_as_derived<T>(messages: &[T], decode: fn(&str) -> serde_json::Result<T>)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut checked = 0;
    for message in messages {
        let value = serde_json::to_value(message).unwrap();
        assert_eq!(
            decode(&value.to_string()).ok().as_ref(),
            Some(message),
            "{value}"
        );
        for variant in variants_of(&value) {
            let text = variant.to_string();
            let derived = crate::decode_json::<T>(&text).ok();
            assert_eq!(decode(&text).ok(), derived, "{text}");
            checked += 1;
        }
    }
    // Each field of a message gives at least nine variants.
    assert!(checked >= 9 * messages.len(), "only {checked} variants");
}
