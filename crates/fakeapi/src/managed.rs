//! Field ownership (`metadata.managedFields`), enough for server-side apply to detect the
//! conflicts leader election relies on: a manager that applies a field another manager
//! owns with a different value gets 409 Conflict unless it forces.
//!
//! Simplifications: lists are atomic (owned as a whole; the real server merges
//! `containers` by name), and fields are compared by value only.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::util;

pub(crate) type Path = Vec<String>;

/// Metadata the server owns itself; never in managedFields.
const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

#[derive(Debug, Clone, PartialEq)]
struct Owner {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: BTreeSet<Path>,
}

fn leaves(v: &Value, prefix: &mut Path, top: bool, skip_status: bool, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if top && (k == "apiVersion" || k == "kind" || (skip_status && k == "status")) {
                    continue;
                }
                if prefix.len() == 1 && prefix[0] == "metadata" && SYSTEM_META.contains(&k.as_str())
                {
                    continue;
                }
                prefix.push(k.clone());
                leaves(child, prefix, false, skip_status, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// Every leaf field of an object (lists and empty objects are leaves).
pub(crate) fn leaf_paths(v: &Value, skip_status: bool) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    leaves(v, &mut Vec::new(), true, skip_status, &mut out);
    out
}

fn value_at<'a>(v: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

fn remove_at(v: &mut Value, path: &Path) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(seg)) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

fn fields_from(tree: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(m) = tree.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(prefix.clone());
            continue;
        }
        let seg = k.strip_prefix("f:").unwrap_or(k);
        prefix.push(seg.to_string());
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(prefix.clone());
        } else {
            fields_from(child, prefix, out);
        }
        prefix.pop();
    }
}

fn read(obj: &Value) -> Vec<Owner> {
    let Some(entries) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|e| {
            let mut fields = BTreeSet::new();
            fields_from(&e["fieldsV1"], &mut Vec::new(), &mut fields);
            Owner {
                manager: e["manager"].as_str().unwrap_or_default().to_string(),
                operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                subresource: e["subresource"].as_str().map(String::from),
                fields,
            }
        })
        .collect()
}

fn tree(fields: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in fields {
        let mut cur = &mut root;
        for seg in p {
            let entry = cur
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Some(next) = entry.as_object_mut() else {
                break;
            };
            cur = next;
        }
    }
    Value::Object(root)
}

fn write(obj: &mut Value, owners: &[Owner]) {
    let entries: Vec<Value> = owners
        .iter()
        .filter(|o| !o.fields.is_empty())
        .map(|o| {
            let mut e = json!({
                "manager": o.manager,
                "operation": o.operation,
                "apiVersion": o.api_version,
                "time": o.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree(&o.fields),
            });
            if let Some(s) = &o.subresource {
                e["subresource"] = s.clone().into();
            }
            e
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// Who writes, for the managedFields entry.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    pub(crate) manager: String,
    pub(crate) api_version: String,
    pub(crate) subresource: Option<String>,
    pub(crate) skip_status: bool,
}

fn entry<'a>(owners: &'a mut Vec<Owner>, w: &Writer, operation: &str) -> &'a mut Owner {
    let pos = owners.iter().position(|o| {
        o.manager == w.manager && o.operation == operation && o.subresource == w.subresource
    });
    match pos {
        Some(i) => &mut owners[i],
        None => {
            owners.push(Owner {
                manager: w.manager.clone(),
                operation: operation.into(),
                api_version: w.api_version.clone(),
                time: String::new(),
                subresource: w.subresource.clone(),
                fields: BTreeSet::new(),
            });
            let last = owners.len() - 1;
            &mut owners[last]
        }
    }
}

/// Records a create, PUT or non-apply PATCH: the fields it set or changed now belong to
/// `writer` (operation Update); fields it removed belong to nobody.
pub(crate) fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer) {
    let mut owners = old.map(read).unwrap_or_default();
    let before = old
        .map(|o| leaf_paths(o, w.skip_status))
        .unwrap_or_default();
    let after = leaf_paths(new, w.skip_status);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|p| old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .cloned()
        .collect();
    let removed: BTreeSet<Path> = before.difference(&after).cloned().collect();
    for o in owners.iter_mut() {
        o.fields
            .retain(|p| !removed.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let e = entry(&mut owners, w, "Update");
        e.fields.extend(changed);
        e.time = util::rfc3339(util::now_secs());
        e.api_version = w.api_version.clone();
    }
    write(new, &owners);
}

/// One field another manager owns with a different value.
#[derive(Debug, Clone)]
pub(crate) struct Conflict {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) field: String,
}

impl Conflict {
    /// `conflict with "manager"` (`... using apiVersion` when it did not apply).
    pub(crate) fn who(&self) -> String {
        if self.operation == "Apply" {
            format!("conflict with \"{}\"", self.manager)
        } else {
            format!(
                "conflict with \"{}\" using {}",
                self.manager, self.api_version
            )
        }
    }
}

/// Server-side apply of `applied` by `writer` onto `current` (None: create). Returns the
/// new object (with managedFields) or the conflicts when not forced.
pub(crate) fn apply(
    current: Option<&Value>,
    applied: &Value,
    w: &Writer,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut owners = current.map(read).unwrap_or_default();
    let wanted = leaf_paths(applied, w.skip_status);
    let mine = |o: &Owner| {
        o.manager == w.manager && o.operation == "Apply" && o.subresource == w.subresource
    };
    let mut conflicts = Vec::new();
    let mut taken: BTreeSet<Path> = BTreeSet::new();
    if let Some(cur) = current {
        for o in owners.iter().filter(|o| !mine(o)) {
            // Ownership is per field: owning a map does not own its entries.
            for q in o.fields.iter().filter(|p| wanted.contains(*p)) {
                if value_at(cur, q) != value_at(applied, q) {
                    taken.insert(q.clone());
                    conflicts.push(Conflict {
                        manager: o.manager.clone(),
                        operation: o.operation.clone(),
                        api_version: o.api_version.clone(),
                        field: format!(".{}", q.join(".")),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut merged = current.cloned().unwrap_or_else(|| json!({}));
    let mut patch = applied.clone();
    strip_nulls(&mut patch);
    json_patch::merge(&mut merged, &patch);
    // Fields this manager applied before and no longer names go, unless someone else
    // owns them too.
    let previous: BTreeSet<Path> = owners
        .iter()
        .filter(|o| mine(o))
        .flat_map(|o| o.fields.iter().cloned())
        .collect();
    for p in previous.iter().filter(|p| !wanted.contains(*p)) {
        let shared = owners.iter().any(|o| !mine(o) && o.fields.contains(p));
        if !shared {
            remove_at(&mut merged, p);
        }
    }
    for o in owners.iter_mut().filter(|o| !mine(o)) {
        o.fields.retain(|p| !taken.contains(p));
    }
    let e = entry(&mut owners, w, "Apply");
    e.fields = wanted;
    e.time = util::rfc3339(util::now_secs());
    e.api_version = w.api_version.clone();
    write(&mut merged, &owners);
    Ok(merged)
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        m.values_mut().for_each(strip_nulls);
    }
}

/// The message of the 409 the real server answers (`Apply failed with N conflicts: ...`).
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        let c = &conflicts[0];
        return format!("Apply failed with 1 conflict: {}: {}", c.who(), c.field);
    }
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{}: {}", c.who(), c.field))
        .collect();
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(m: &str) -> Writer {
        Writer {
            manager: m.into(),
            api_version: "coordination.k8s.io/v1".into(),
            subresource: None,
            skip_status: false,
        }
    }

    fn lease(holder: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
    }

    #[test]
    fn second_applier_conflicts_unless_forced_or_same_value() {
        let a = apply(None, &lease("a"), &writer("mgr-a"), false).unwrap();
        assert_eq!(
            a["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:holderIdentity"],
            json!({})
        );
        let err = apply(Some(&a), &lease("b"), &writer("mgr-b"), false).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.holderIdentity"
        );
        // Same value: shared ownership, no conflict.
        let shared = apply(Some(&a), &lease("a"), &writer("mgr-b"), false).unwrap();
        assert_eq!(
            shared["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // Forced: taken over.
        let b = apply(Some(&a), &lease("b"), &writer("mgr-b"), true).unwrap();
        assert_eq!(b["spec"]["holderIdentity"], "b");
        // Once the field is removed (released), anyone may apply.
        let mut released = a.clone();
        released["spec"]
            .as_object_mut()
            .unwrap()
            .remove("holderIdentity");
        record_update(Some(&a), &mut released, &writer("mgr-a"));
        assert!(apply(Some(&released), &lease("b"), &writer("mgr-b"), false).is_ok());
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let mut created = lease("a");
        record_update(None, &mut created, &writer("kubectl-create"));
        let mut changed = created.clone();
        changed["spec"]["holderIdentity"] = "b".into();
        record_update(Some(&created), &mut changed, &writer("other"));
        let owners = read(&changed);
        assert_eq!(owners.len(), 2);
        assert!(
            owners[1]
                .fields
                .contains(&vec!["spec".to_string(), "holderIdentity".to_string()])
        );
        assert!(
            !owners[0]
                .fields
                .contains(&vec!["spec".to_string(), "holderIdentity".to_string()])
        );
        let err = apply(Some(&changed), &lease("c"), &writer("applier"), false).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"other\" using coordination.k8s.io/v1: .spec.holderIdentity"
        );
    }
}
