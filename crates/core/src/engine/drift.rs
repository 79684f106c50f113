//! Drift: whether the pod already holds every planned addition (position aside: another
//! webhook may have moved them, and fighting over order helps nobody), with a warning for
//! what was changed or removed after injection (it is put back).

use super::affinity::required_terms;
use super::applists::AppList;
use super::finish::Target;
use super::notes::Notes;
use super::placement::Placed;
use super::wiring::Additions;
use crate::pod::{ContainerRef, Template};
use crate::resources::parse_quantity;
use crate::status::DEFAULT_CONTAINER_ANNOTATION;
use serde_json::Value;

/// Is everything in `want` present in `have`? Extra fields in `have` (defaults set by the
/// API server) are fine; quantities compare by value.
pub fn covers(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| covers(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| covers(a, b))
        }
        (Value::String(h), Value::String(w)) => {
            h == w
                || matches!((parse_quantity(h), parse_quantity(w)), (Some(a), Some(b)) if (a - b).abs() <= f64::EPSILON * a.abs().max(1.0))
        }
        (Value::Number(h), Value::String(w)) | (Value::String(w), Value::Number(h)) => h
            .as_f64()
            .zip(parse_quantity(w))
            .is_some_and(|(a, b)| a == b),
        (h, w) => h == w,
    }
}

/// Whether the object already carries every planned addition.
pub(super) fn satisfied(
    t: &Template<'_>,
    adds: &Additions,
    target: &Target,
    notes: &mut Notes,
) -> bool {
    let mut ok = init_containers(t, &target.lists.init, notes);
    ok &= containers(t, &target.lists.containers, notes);
    ok &= volumes(t, &target.lists.volumes);
    ok &= app_lists(t, adds);
    for (ci, cmd) in &adds.app_commands {
        ok &= t.spec.containers[*ci].view.command.as_ref() == Some(cmd);
    }
    ok &= affinity(t, adds, target.affinity.as_ref(), notes);
    if let Some(d) = &target.default_container {
        ok &= t.meta.annotation(DEFAULT_CONTAINER_ANNOTATION) == Some(d.as_str());
    }
    ok
}

/// The inserted items of a placed list: name and value.
fn inserted(list: &Placed) -> impl Iterator<Item = (&String, &Value)> {
    list.iter()
        .filter_map(|(n, v)| v.inserted().map(|v| (n, v)))
}

fn find(list: &[ContainerRef<'_>], n: &str) -> Option<Value> {
    list.iter()
        .find(|c| c.view.name == n)
        .map(ContainerRef::value)
}

fn init_containers(t: &Template<'_>, init: &Placed, notes: &mut Notes) -> bool {
    let mut ok = true;
    for (name, v) in inserted(init) {
        match find(&t.spec.init_containers, name) {
            Some(have) if covers(&have, v) => {}
            Some(have) => {
                ok = false;
                if v.get("restartPolicy").is_some() && have.get("restartPolicy").is_none() {
                    notes.warn(format!("init container {name}: restartPolicy: Always was removed after sidecar-kit injected it (a later mutating webhook that re-serialises pods?); put back"));
                } else {
                    notes.warn(format!(
                        "init container {name} was changed after injection; put back"
                    ));
                }
            }
            None => {
                ok = false;
                notes.warn(format!(
                    "init container {name} was removed after injection; put back"
                ));
            }
        }
    }
    ok
}

fn containers(t: &Template<'_>, containers: &Placed, notes: &mut Notes) -> bool {
    let mut ok = true;
    for (name, v) in inserted(containers) {
        if !find(&t.spec.containers, name).is_some_and(|have| covers(&have, v)) {
            ok = false;
            notes.warn(format!(
                "container {name} was changed or removed after injection; put back"
            ));
        }
    }
    ok
}

fn volumes(t: &Template<'_>, volumes: &Placed) -> bool {
    let mut ok = true;
    for (name, v) in inserted(volumes) {
        let have = t
            .spec
            .volumes
            .iter()
            .find(|x| &x.name == name)
            .and_then(|x| serde_json::from_str::<Value>(x.raw).ok());
        if !have.is_some_and(|h| covers(&h, v)) {
            ok = false;
        }
    }
    ok
}

/// The mounts and env added to app containers.
fn app_lists(t: &Template<'_>, adds: &Additions) -> bool {
    let mut ok = true;
    for list in AppList::ALL {
        for a in list.planned(adds) {
            let c = &t.spec.containers[a.index];
            let present = c
                .value()
                .get(list.field())
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    items.iter().any(|x| {
                        x.get(list.key()).and_then(Value::as_str) == Some(a.key.as_str())
                            && covers(x, &a.value)
                    })
                });
            ok &= present;
        }
    }
    ok
}

/// Every required term still has the expressions sidecar-kit added, and no term was added
/// or removed.
fn affinity(t: &Template<'_>, adds: &Additions, aff: Option<&Value>, notes: &mut Notes) -> bool {
    if adds.affinity.is_empty() {
        return true;
    }
    let terms = required_terms(aff);
    let cur_terms = required_terms(t.spec.affinity.as_ref());
    let has_all = |terms: Option<&Vec<Value>>| {
        terms.is_some_and(|ts| {
            !ts.is_empty()
                && ts.iter().all(|t| {
                    adds.affinity.iter().all(|e| {
                        t.get("matchExpressions")
                            .and_then(Value::as_array)
                            .is_some_and(|es| es.iter().any(|x| covers(x, e)))
                    })
                })
        })
    };
    if !has_all(cur_terms) || terms.map(Vec::len) != cur_terms.map(Vec::len) {
        notes.warn("the node affinity sidecar-kit added was changed after injection; put back");
        return false;
    }
    true
}
