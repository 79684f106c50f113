//! Effective resource requests of the pod before and after the plan, for `explain`.

use super::outcome::ResourceChange;
use super::placement::{Lists, Placed};
use crate::patch::Slot;
use crate::pod::{ContainerRef, Template};
use crate::resources::{InitEntry, Requests, effective};
use serde_json::Value;

pub(super) fn change(t: &Template<'_>, lists: &Lists) -> ResourceChange {
    let before = requests_of(
        t,
        &t.spec
            .init_containers
            .iter()
            .map(|c| {
                (
                    c.value(),
                    c.view.restart_policy.as_deref() == Some("Always"),
                )
            })
            .collect::<Vec<_>>(),
        &t.spec
            .containers
            .iter()
            .map(ContainerRef::value)
            .collect::<Vec<_>>(),
    );
    let init_after: Vec<(Value, bool)> = resolve(&lists.init, &t.spec.init_containers)
        .into_iter()
        .map(|v| {
            let sidecar = v.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            (v, sidecar)
        })
        .collect();
    let after = requests_of(
        t,
        &init_after,
        &resolve(&lists.containers, &t.spec.containers),
    );
    ResourceChange { before, after }
}

/// The containers of a placed list, as values.
fn resolve(list: &Placed, cur: &[ContainerRef<'_>]) -> Vec<Value> {
    list.iter()
        .map(|(_, v)| match v {
            Slot::Keep(i) => cur[*i].value(),
            Slot::Insert(v) => Value::clone(v),
        })
        .collect()
}

fn requests_of(t: &Template<'_>, init: &[(Value, bool)], regular: &[Value]) -> Requests {
    let init: Vec<InitEntry> = init
        .iter()
        .map(|(v, sidecar)| InitEntry {
            requests: Requests::of_container(v),
            sidecar: *sidecar,
        })
        .collect();
    let regular: Vec<Requests> = regular.iter().map(Requests::of_container).collect();
    effective(&init, &regular, &t.spec.overhead)
}
