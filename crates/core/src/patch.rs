//! RFC 6902 JSON Patch operations, as the engine emits them.

use crate::text::cat;
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Add { path: String, value: Json },
    Remove { path: String },
    Replace { path: String, value: Json },
}

/// A value a patch adds: built for this patch, or prepared once (a profile's container or
/// volume, serialised when the profile is loaded) and shared by every patch that adds it,
/// which then costs neither a copy nor serialising it again.
#[derive(Debug, Clone)]
pub enum Item {
    Built(Value),
    Prepared(Arc<Prepared>),
    /// JSON text the engine wrote itself (an annotation's string literal, escaped as it was
    /// written), read back into a value only when something asks for it.
    Written(Arc<Written>),
}

/// JSON text written by the engine, and its value once asked for.
#[derive(Debug)]
pub struct Written {
    text: String,
    value: std::sync::OnceLock<Value>,
}

/// A value with its JSON text, written once.
#[derive(Debug)]
pub struct Prepared {
    value: Value,
    text: Box<RawValue>,
}

impl Item {
    /// `value` with its text written now, to be shared.
    pub fn prepare(value: Value) -> Item {
        match serde_json::value::to_raw_value(&value) {
            Ok(text) => Item::Prepared(Arc::new(Prepared { value, text })),
            // (A Value always serialises; were it not to, it is written with each patch.)
            Err(_) => Item::Built(value),
        }
    }

    /// `text`, which must be one JSON value (the engine's own writing: a string literal,
    /// an object of them).
    pub(crate) fn written(text: String) -> Item {
        Item::Written(Arc::new(Written {
            text,
            value: std::sync::OnceLock::new(),
        }))
    }

    pub fn into_value(self) -> Value {
        match self {
            Item::Built(v) => v,
            item => Value::clone(&item),
        }
    }

    /// The length of the item's JSON text, where it is written already.
    fn text_len(&self) -> Option<usize> {
        match self {
            Item::Built(_) => None,
            Item::Prepared(p) => Some(p.text.get().len()),
            Item::Written(w) => Some(w.text.len()),
        }
    }

    /// Appends the item's JSON text.
    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            // (writing a Value into memory cannot fail)
            Item::Built(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Item::Prepared(p) => out.extend_from_slice(p.text.get().as_bytes()),
            Item::Written(w) => out.extend_from_slice(w.text.as_bytes()),
        }
    }
}

impl std::ops::Deref for Item {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            Item::Built(v) => v,
            Item::Prepared(p) => &p.value,
            Item::Written(w) => w
                .value
                .get_or_init(|| serde_json::from_str(&w.text).unwrap_or(Value::Null)),
        }
    }
}

impl From<Value> for Item {
    fn from(v: Value) -> Item {
        Item::Built(v)
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        **self == **other
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Built(v) => v.serialize(s),
            Item::Prepared(p) => p.text.serialize(s),
            Item::Written(_) => (**self).serialize(s),
        }
    }
}

/// The value of an operation: one item, or a new list of them.
#[derive(Debug, Clone)]
pub enum Json {
    One(Item),
    List(Vec<Item>),
}

impl Json {
    /// The value; one item is borrowed, a list is built.
    pub fn value(&self) -> Cow<'_, Value> {
        match self {
            Json::One(i) => Cow::Borrowed(i),
            Json::List(items) => Cow::Owned(Value::Array(
                items.iter().map(|i| Value::clone(i)).collect(),
            )),
        }
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Json {
        Json::One(Item::Built(v))
    }
}

impl From<Item> for Json {
    fn from(i: Item) -> Json {
        Json::One(i)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::One(i) => i.serialize(s),
            Json::List(items) => items.serialize(s),
        }
    }
}

impl PatchOp {
    pub fn path(&self) -> &str {
        match self {
            PatchOp::Add { path, .. }
            | PatchOp::Remove { path }
            | PatchOp::Replace { path, .. } => path,
        }
    }
}

/// Serialises a patch as the JSON array the admission API and `kubectl patch --type=json` take
/// (the text `serde_json::to_vec` writes of the ops; prepared and written items go in as
/// they are).
pub fn to_json(ops: &[PatchOp]) -> Vec<u8> {
    // (sized for the whole text where the values' texts are known, which they are but for
    // values built for this patch: those are guessed small)
    let size = |i: &Item| i.text_len().unwrap_or(64) + 1;
    let len = ops
        .iter()
        .map(|op| match op {
            PatchOp::Remove { path } => 32 + path.len(),
            PatchOp::Add { path, value } | PatchOp::Replace { path, value } => {
                48 + path.len()
                    + match value {
                        Json::One(item) => size(item),
                        Json::List(items) => 2 + items.iter().map(size).sum::<usize>(),
                    }
            }
        })
        .sum::<usize>();
    let mut out = Vec::with_capacity(len + 2);
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (name, path, value) = match op {
            PatchOp::Add { path, value } => ("add", path, Some(value)),
            PatchOp::Remove { path } => ("remove", path, None),
            PatchOp::Replace { path, value } => ("replace", path, Some(value)),
        };
        out.extend_from_slice(b"{\"op\":\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\",\"path\":");
        crate::text::push_json_string(&mut out, path);
        if let Some(value) = value {
            out.extend_from_slice(b",\"value\":");
            match value {
                Json::One(item) => item.write_to(&mut out),
                Json::List(items) => {
                    out.push(b'[');
                    for (j, item) in items.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        item.write_to(&mut out);
                    }
                    out.push(b']');
                }
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

/// One item of a list as an edit leaves it.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The current item at this index, kept.
    Keep(usize),
    /// A new value, inserted.
    Insert(Item),
}

impl Slot {
    /// The new value, if this slot inserts one.
    pub fn inserted(&self) -> Option<&Value> {
        match self {
            Slot::Insert(v) => Some(v),
            Slot::Keep(_) => None,
        }
    }
}

/// Edits a list (containers, volumes, mounts...) whose retained items keep their order:
/// removes the flagged items (highest index first), then adds the new ones at their final
/// positions (lowest first). `target` is the final list: `Keep(i)` is current item `i`,
/// `Insert(v)` a new value. `present` says whether the field exists at all; a list emptied by
/// the edit is removed, unless `keep_empty` (it was an empty list before anything was added).
pub fn edit_list(
    ops: &mut Vec<PatchOp>,
    pointer: &str,
    present: bool,
    current_len: usize,
    target: Vec<Slot>,
    keep_empty: bool,
) {
    let keep = |t: &Slot| match t {
        Slot::Keep(i) => Some(*i),
        Slot::Insert(_) => None,
    };
    // Kept items in their order (as every caller keeps them): the removed ones are found
    // along the list without building the two index lists.
    let mut last = None;
    let in_order = target.iter().filter_map(keep).all(|i| {
        let next = i < current_len && last.is_none_or(|l| l < i);
        last = Some(i);
        next
    });
    // (kept items out of their order, which no caller gives: the removed ones listed)
    let removed_list: Option<Vec<usize>> = (!in_order).then(|| {
        let kept: Vec<usize> = target.iter().filter_map(keep).collect();
        (0..current_len).filter(|i| !kept.contains(i)).collect()
    });
    let kept = target.iter().filter_map(keep).count();
    let removed = match &removed_list {
        Some(list) => list.len(),
        None => current_len.saturating_sub(kept),
    };
    if target.is_empty() {
        if present && current_len > 0 {
            ops.push(if keep_empty {
                PatchOp::Replace {
                    path: pointer.to_string(),
                    value: Value::Array(Vec::new()).into(),
                }
            } else {
                PatchOp::Remove {
                    path: pointer.to_string(),
                }
            });
        }
        return;
    }
    if kept == 0 && (!present || current_len == removed) {
        let values: Vec<Item> = target
            .into_iter()
            .filter_map(|t| match t {
                Slot::Insert(v) => Some(v),
                Slot::Keep(_) => None,
            })
            .collect();
        let value = Json::List(values);
        if present {
            ops.push(PatchOp::Replace {
                path: pointer.to_string(),
                value,
            });
        } else {
            ops.push(PatchOp::Add {
                path: pointer.to_string(),
                value,
            });
        }
        return;
    }
    let remove = |i: usize| PatchOp::Remove {
        path: cat!(pointer, "/", i),
    };
    match removed_list {
        Some(list) => ops.extend(list.into_iter().rev().map(remove)),
        None if removed > 0 => {
            let mut kept_from_end = target.iter().rev().filter_map(keep).peekable();
            for i in (0..current_len).rev() {
                if kept_from_end.next_if_eq(&i).is_none() {
                    ops.push(remove(i));
                }
            }
        }
        None => {}
    }
    for (pos, t) in target.into_iter().enumerate() {
        if let Slot::Insert(v) = t {
            ops.push(PatchOp::Add {
                path: cat!(pointer, "/", pos),
                value: v.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kept_items_out_of_their_order_remove_only_the_others() {
        let mut ops = Vec::new();
        edit_list(
            &mut ops,
            "/l",
            true,
            3,
            vec![Slot::Keep(2), Slot::Keep(0)],
            false,
        );
        assert_eq!(
            ops,
            vec![PatchOp::Remove {
                path: "/l/1".into()
            }]
        );
    }

    mod edits_against_json_patch {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any edit that keeps items in their order: applied, the patch leaves exactly the
            /// target list.
            #[test]
            fn leaves_the_target(
                len in 0usize..6,
                keep in proptest::collection::vec(any::<bool>(), 6),
                inserts in proptest::collection::vec((0usize..8, 0u8..100), 0..4),
                present in any::<bool>(),
                keep_empty in any::<bool>(),
            ) {
                let len = if present { len } else { 0 };
                let mut target: Vec<Slot> = (0..len).filter(|i| keep[*i]).map(Slot::Keep).collect();
                for (at, v) in &inserts {
                    let at = (*at).min(target.len());
                    target.insert(at, Slot::Insert(json!(format!("new-{v}")).into()));
                }
                let want: Vec<Value> = target
                    .iter()
                    .map(|t| match t {
                        Slot::Keep(i) => json!(format!("old-{i}")),
                        Slot::Insert(v) => Value::clone(v),
                    })
                    .collect();
                let doc = if present {
                    json!({"l": (0..len).map(|i| format!("old-{i}")).collect::<Vec<_>>()})
                } else {
                    json!({})
                };
                let mut ops = Vec::new();
                edit_list(&mut ops, "/l", present, len, target, keep_empty);
                let after = apply(&doc, &ops);
                match after.get("l") {
                    Some(l) => prop_assert_eq!(l, &Value::Array(want)),
                    None => prop_assert!(want.is_empty()),
                }
            }
        }
    }

    fn apply(doc: &Value, ops: &[PatchOp]) -> Value {
        let mut d = doc.clone();
        let p: json_patch::Patch = serde_json::from_slice(&to_json(ops)).unwrap();
        json_patch::patch(&mut d, &p).unwrap();
        d
    }

    #[test]
    fn edits_keep_order_and_positions() {
        let doc = json!({"l": ["a", "X", "b", "Y"]});
        let mut ops = Vec::new();
        edit_list(
            &mut ops,
            "/l",
            true,
            4,
            vec![
                Slot::Insert(json!("N").into()),
                Slot::Keep(0),
                Slot::Keep(2),
                Slot::Insert(json!("M").into()),
            ],
            false,
        );
        assert_eq!(apply(&doc, &ops), json!({"l": ["N", "a", "b", "M"]}));
    }

    #[test]
    fn creates_and_removes_whole_lists() {
        let mut ops = Vec::new();
        edit_list(
            &mut ops,
            "/l",
            false,
            0,
            vec![Slot::Insert(json!(1).into())],
            false,
        );
        assert_eq!(apply(&json!({}), &ops), json!({"l": [1]}));
        let mut ops = Vec::new();
        edit_list(&mut ops, "/l", true, 2, vec![], false);
        assert_eq!(apply(&json!({"l": [1, 2]}), &ops), json!({}));
        let mut ops = Vec::new();
        edit_list(
            &mut ops,
            "/l",
            true,
            1,
            vec![Slot::Insert(json!(3).into())],
            false,
        );
        assert_eq!(apply(&json!({"l": [1]}), &ops), json!({"l": [3]}));
        let mut ops = Vec::new();
        edit_list(&mut ops, "/l", true, 0, vec![], false);
        assert!(ops.is_empty());
        // A list that was empty before anything was added is left empty, not removed.
        let mut ops = Vec::new();
        edit_list(&mut ops, "/l", true, 2, vec![], true);
        assert_eq!(apply(&json!({"l": [1, 2]}), &ops), json!({"l": []}));
    }

    #[test]
    fn wire_format() {
        let ops = [
            PatchOp::Add {
                path: "/a".into(),
                value: json!(1).into(),
            },
            PatchOp::Remove { path: "/b".into() },
        ];
        assert_eq!(
            String::from_utf8(to_json(&ops)).unwrap(),
            r#"[{"op":"add","path":"/a","value":1},{"op":"remove","path":"/b"}]"#
        );
    }

    #[test]
    fn prepared_items_are_written_as_built_ones() {
        let container =
            json!({"name": "proxy", "image": "r/p:1", "env": [{"name": "A", "value": "q\"uote"}]});
        let prepared = Item::prepare(container.clone());
        assert!(matches!(prepared, Item::Prepared(_)));
        assert_eq!(*prepared, container);
        let built = |value: Value| PatchOp::Add {
            path: "/spec/initContainers".into(),
            value: value.into(),
        };
        let mixed = PatchOp::Add {
            path: "/spec/initContainers".into(),
            value: Json::List(vec![prepared.clone(), json!({"name": "b"}).into()]),
        };
        assert_eq!(
            to_json(std::slice::from_ref(&mixed)),
            to_json(&[built(json!([container, {"name": "b"}]))]),
            "a list mixing prepared and built items"
        );
        assert_eq!(mixed, built(json!([container, {"name": "b"}])));
        let one = PatchOp::Add {
            path: "/spec/initContainers/0".into(),
            value: prepared.into(),
        };
        assert_eq!(
            String::from_utf8(to_json(&[one])).unwrap(),
            r#"[{"op":"add","path":"/spec/initContainers/0","value":{"name":"proxy","image":"r/p:1","env":[{"name":"A","value":"q\"uote"}]}}]"#
        );
    }

    #[test]
    fn the_patch_text_is_serdes() {
        let ops = vec![
            PatchOp::Add {
                path: "/metadata/annotations/sidecar-kit.io~1status".into(),
                value: Item::written(r#""{\"v\":1,\"a\":\"\\n\"}""#.into()).into(),
            },
            PatchOp::Replace {
                path: "/spec/x\"y".into(),
                value: Json::List(vec![
                    Item::prepare(json!({"name": "a", "env": [{"value": "\u{1}"}]})),
                    json!(2.5).into(),
                    Item::written("{\"k\":[true,null]}".into()),
                ]),
            },
            PatchOp::Remove {
                path: "/spec/volumes/3".into(),
            },
            PatchOp::Add {
                path: "/a".into(),
                value: json!("caf\u{e9}").into(),
            },
        ];
        assert_eq!(to_json(&ops), serde_json::to_vec(&ops).unwrap());
        assert_eq!(
            ops[0],
            PatchOp::Add {
                path: "/metadata/annotations/sidecar-kit.io~1status".into(),
                value: json!("{\"v\":1,\"a\":\"\\n\"}").into(),
            },
            "a written item reads back as its value"
        );
        assert_eq!(to_json(&[]), b"[]");
    }
}
