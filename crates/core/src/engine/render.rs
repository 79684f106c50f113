//! The patch: from the pod as it is to the pod as the plan leaves it. Inside app containers
//! first (current indices: nothing before shifts them), then the lists, the affinity, and
//! sidecar-kit's annotations.

use super::empty::meta_holds_only_annotations;
use super::finish::Target;
use super::placement::Placed;
use super::wiring::Additions;
use super::wiring::shim::unwrap_app;
use crate::patch::{Item, PatchOp, Slot, edit_list};
use crate::pod::{Template, escape_pointer};
use crate::status::listed;
use crate::status::{Added, DEFAULT_CONTAINER_ANNOTATION, STATUS_ANNOTATION, Status};
use crate::text::{cat, json_string};
use serde_json::{Value, json};
use std::borrow::Cow;

pub(super) fn ops(
    t: &Template<'_>,
    prev: &Added,
    adds: &Additions,
    target: Target,
    status: Option<&Status>,
) -> Vec<PatchOp> {
    let sp = &t.spec_pointer;
    // (room for an edit of each list and a few more: the usual patch never grows it)
    let mut ops = Vec::with_capacity(target.app_lists.len() + 8);
    // 1. Inside app containers.
    for e in target.app_lists {
        let keep_empty = e.was_empty(prev);
        edit_list(&mut ops, &e.pointer, e.present, e.len, e.target, keep_empty);
    }
    commands(&mut ops, t, prev, adds);
    // 2. Lists.
    let lists = target.lists;
    let empty = &target.empty;
    for (field, present, len, placed, keep_empty) in [
        (
            "containers",
            t.spec.containers_present,
            t.spec.containers.len(),
            lists.containers,
            false,
        ),
        (
            "initContainers",
            t.spec.init_containers_present,
            t.spec.init_containers.len(),
            lists.init,
            empty.init_containers,
        ),
        (
            "volumes",
            t.spec.volumes_present,
            t.spec.volumes.len(),
            lists.volumes,
            empty.volumes,
        ),
    ] {
        let pointer = cat!(sp, "/", field);
        edit_list(&mut ops, &pointer, present, len, slots(placed), keep_empty);
    }
    // 3. Affinity, replaced as one small object so that unknown fields in it survive.
    affinity(&mut ops, t, target.affinity);
    // 4. Annotations.
    let mut set: Vec<(&str, Option<Want<'_>>)> = Vec::with_capacity(2);
    set.push((STATUS_ANNOTATION, status.map(Want::Status)));
    if prev.default_container || target.default_container.is_some() {
        set.push((
            DEFAULT_CONTAINER_ANNOTATION,
            target.default_container.map(Want::Text),
        ));
    }
    annotation_ops(&mut ops, t, &set, empty.annotations, empty.metadata);
    ops
}

fn slots(placed: Placed) -> Vec<Slot> {
    placed.into_iter().map(|(_, v)| v).collect()
}

/// App commands: wrapped where this plan wraps them, unwrapped where only the earlier
/// injection did.
fn commands(ops: &mut Vec<PatchOp>, t: &Template<'_>, prev: &Added, adds: &Additions) {
    let sp = &t.spec_pointer;
    for (ci, c) in t.spec.containers.iter().enumerate() {
        if listed(&prev.containers, &c.view.name) {
            continue;
        }
        let name = &c.view.name;
        let base_cmd = if listed(&prev.app_commands, name) {
            c.view.command.as_deref().and_then(unwrap_app)
        } else {
            None
        };
        let want = adds.app_commands.get(&ci).cloned().or(base_cmd);
        if let Some(want) = want
            && c.view.command.as_ref() != Some(&want)
        {
            ops.push(PatchOp::Replace {
                path: cat!(sp, "/containers/", ci, "/command"),
                value: json!(want).into(),
            });
        }
    }
}

fn affinity(ops: &mut Vec<PatchOp>, t: &Template<'_>, target: Option<Value>) {
    let path = || format!("{}/affinity", t.spec_pointer);
    match (&t.spec.affinity, target) {
        (Some(cur), Some(new)) if *cur != new => ops.push(PatchOp::Replace {
            path: path(),
            value: new.into(),
        }),
        (Some(_), None) => ops.push(PatchOp::Remove { path: path() }),
        (None, Some(new)) => ops.push(PatchOp::Add {
            path: path(),
            value: new.into(),
        }),
        _ => {}
    }
}

/// An annotation's new value.
enum Want<'s> {
    /// The status, written straight into its escaped form for the patch.
    Status(&'s Status),
    Text(String),
}

impl Want<'_> {
    /// The value as the annotation holds it.
    fn plain(&self) -> Cow<'_, str> {
        match self {
            Want::Status(s) => Cow::Owned(s.to_json()),
            Want::Text(t) => Cow::Borrowed(t),
        }
    }

    /// The value as a JSON string literal.
    fn literal(&self) -> String {
        match self {
            Want::Status(s) => s.to_json_literal(),
            Want::Text(t) => json_string(t),
        }
    }
}

/// Sets or removes sidecar-kit's annotations. Where removing them leaves none, the map goes
/// too (and a template's metadata that held nothing else), unless it was there, empty,
/// before (`keep_empty`, `metadata_was_empty`).
fn annotation_ops(
    ops: &mut Vec<PatchOp>,
    t: &Template<'_>,
    set: &[(&str, Option<Want<'_>>)],
    keep_empty: bool,
    metadata_was_empty: bool,
) {
    let mp = &t.meta_pointer;
    match &t.meta.annotations {
        Some(cur)
            if !keep_empty
                && !cur.is_empty()
                && cur
                    .keys()
                    .all(|k| set.iter().any(|(s, v)| s == k && v.is_none())) =>
        {
            if !metadata_was_empty && meta_holds_only_annotations(t) {
                ops.push(PatchOp::Remove { path: mp.clone() });
            } else {
                ops.push(PatchOp::Remove {
                    path: cat!(mp, "/annotations"),
                });
            }
        }
        Some(cur) => {
            for (k, v) in set {
                let path = cat!(mp, "/annotations/", escape_pointer(k));
                match v {
                    Some(v) if cur.get(*k).is_none_or(|c| *c != v.plain()) => {
                        ops.push(PatchOp::Add {
                            path,
                            value: Item::written(v.literal()).into(),
                        })
                    }
                    None if cur.contains_key(*k) => ops.push(PatchOp::Remove { path }),
                    _ => {}
                }
            }
        }
        None => {
            // The annotations object, written here (the keys are sidecar-kit's, in order),
            // into a string of its final size.
            let members: Vec<(String, String)> = set
                .iter()
                .filter_map(|(k, v)| Some((json_string(k), v.as_ref()?.literal())))
                .collect();
            if members.is_empty() {
                return;
            }
            let len = members
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
            let mut map = String::with_capacity(len + 1);
            for (i, (k, v)) in members.iter().enumerate() {
                map.push(if i == 0 { '{' } else { ',' });
                map.push_str(k);
                map.push(':');
                map.push_str(v);
            }
            map.push('}');
            if t.meta_present {
                ops.push(PatchOp::Add {
                    path: cat!(mp, "/annotations"),
                    value: Item::written(map).into(),
                });
            } else {
                ops.push(PatchOp::Add {
                    path: mp.clone(),
                    value: Item::written(format!("{{\"annotations\":{map}}}")).into(),
                });
            }
        }
    }
}
