//! Small edits of JSON objects shared by the wiring and the affinity.

use serde_json::{Map, Value};

/// Appends `v` to the list `key` of `map`, creating the list where missing.
pub(super) fn push_to(map: &mut Map<String, Value>, key: &str, v: Value) {
    match map.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            map.insert(key.to_string(), Value::Array(vec![v]));
        }
    }
}
