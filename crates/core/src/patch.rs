//! RFC 6902 JSON Patch operations, as the engine emits them.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Add { path: String, value: Value },
    Remove { path: String },
    Replace { path: String, value: Value },
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

/// Serialises a patch as the JSON array the admission API and `kubectl patch --type=json` take.
pub fn to_json(ops: &[PatchOp]) -> Vec<u8> {
    serde_json::to_vec(ops).unwrap_or_else(|_| b"[]".to_vec())
}

/// One item of a list as an edit leaves it.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The current item at this index, kept.
    Keep(usize),
    /// A new value, inserted.
    Insert(Value),
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
    let kept: Vec<usize> = target
        .iter()
        .filter_map(|t| match t {
            Slot::Keep(i) => Some(*i),
            Slot::Insert(_) => None,
        })
        .collect();
    let removed: Vec<usize> = (0..current_len).filter(|i| !kept.contains(i)).collect();
    if target.is_empty() {
        if present && current_len > 0 {
            ops.push(if keep_empty {
                PatchOp::Replace {
                    path: pointer.to_string(),
                    value: Value::Array(Vec::new()),
                }
            } else {
                PatchOp::Remove {
                    path: pointer.to_string(),
                }
            });
        }
        return;
    }
    if kept.is_empty() && (!present || current_len == removed.len()) {
        let values: Vec<Value> = target
            .into_iter()
            .filter_map(|t| match t {
                Slot::Insert(v) => Some(v),
                Slot::Keep(_) => None,
            })
            .collect();
        if present {
            ops.push(PatchOp::Replace {
                path: pointer.to_string(),
                value: Value::Array(values),
            });
        } else {
            ops.push(PatchOp::Add {
                path: pointer.to_string(),
                value: Value::Array(values),
            });
        }
        return;
    }
    for i in removed.iter().rev() {
        ops.push(PatchOp::Remove {
            path: format!("{pointer}/{i}"),
        });
    }
    for (pos, t) in target.into_iter().enumerate() {
        if let Slot::Insert(v) = t {
            ops.push(PatchOp::Add {
                path: format!("{pointer}/{pos}"),
                value: v,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
                Slot::Insert(json!("N")),
                Slot::Keep(0),
                Slot::Keep(2),
                Slot::Insert(json!("M")),
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
            vec![Slot::Insert(json!(1))],
            false,
        );
        assert_eq!(apply(&json!({}), &ops), json!({"l": [1]}));
        let mut ops = Vec::new();
        edit_list(&mut ops, "/l", true, 2, vec![], false);
        assert_eq!(apply(&json!({"l": [1, 2]}), &ops), json!({}));
        let mut ops = Vec::new();
        edit_list(&mut ops, "/l", true, 1, vec![Slot::Insert(json!(3))], false);
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
                value: json!(1),
            },
            PatchOp::Remove { path: "/b".into() },
        ];
        assert_eq!(
            String::from_utf8(to_json(&ops)).unwrap(),
            r#"[{"op":"add","path":"/a","value":1},{"op":"remove","path":"/b"}]"#
        );
    }
}
