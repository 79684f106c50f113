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

/// The member `key` of an object: a look along its members (a container's dozen or a
/// mount's few), which costs less than hashing the key for the map's index.
pub(super) fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}
