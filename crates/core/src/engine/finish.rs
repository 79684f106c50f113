//! From the planned additions to the outcome: the pod as the plan leaves it (lists,
//! affinity, default container, what was empty before), the status to record, whether the
//! pod already holds it all, and the patch.

use super::applists::{self, ListEdit};
use super::empty::EmptyBefore;
use super::outcome::{TemplateOutcome, TemplateResult};
use super::placement::{self, Lists};
use super::plan::{Context, Plan};
use super::wiring::Additions;
use super::{affinity, drift, render, requests};
use crate::patch::PatchOp;
use crate::pod::Template;
use crate::status::{Added, DEFAULT_CONTAINER_ANNOTATION, Injection, Status};
use serde_json::Value;

/// The pod as the plan leaves it.
pub(super) struct Target {
    pub lists: Lists,
    /// The `volumeMounts` and `env` of every app container.
    pub app_lists: Vec<ListEdit>,
    pub affinity: Option<Value>,
    /// The container `kubectl.kubernetes.io/default-container` names, where sidecar-kit sets it.
    pub default_container: Option<String>,
    pub empty: EmptyBefore,
}

pub(super) fn finish(mut cx: Context<'_, '_, '_>, plan: Plan) -> (TemplateOutcome, Vec<PatchOp>) {
    let Plan {
        prev_added,
        prev,
        mut records,
        mut adds,
    } = plan;
    let t = cx.t;
    let removing = records.is_empty();
    let lists = placement::lists(t, &prev_added, &mut adds, &mut cx.notes);
    let affinity = affinity::target(t, &prev_added, &adds.affinity, &mut records);
    let default_container = default_container(t, &prev_added, &mut adds, removing, &mut records);
    let app_lists = applists::edits(t, &prev_added, &adds);
    let empty = EmptyBefore::of(t, &prev_added, lists.base_init);
    if let Some(r) = records.first_mut() {
        r.added.was_empty = empty.keys(&app_lists, &prev_added);
    }
    let status = (!removing).then_some(Status {
        v: 1,
        injections: records,
    });
    let target = Target {
        lists,
        app_lists,
        affinity,
        default_container,
        empty,
    };

    // Is the object already exactly this?
    let unchanged = match (&prev, &status) {
        (Some(p), Some(s)) if p == s => drift::satisfied(t, &adds, &target, &mut cx.notes),
        _ => false,
    };
    let resources = cx
        .opts
        .resources
        .then(|| requests::change(t, &target.lists));
    let ops = if unchanged {
        Vec::new()
    } else {
        render::ops(t, &prev_added, &adds, target, status.as_ref())
    };

    let result = match status {
        Some(status) => TemplateResult::Injected {
            status,
            changed: !ops.is_empty(),
        },
        None => TemplateResult::Removed {
            previous: prev.unwrap_or(Status {
                v: 1,
                injections: vec![],
            }),
        },
    };
    (cx.outcome(result, resources), ops)
}

/// The first app container becomes the pod's default container, unless the pod names one
/// itself (or the injection is removed). The first record notes it.
fn default_container(
    t: &Template<'_>,
    prev: &Added,
    adds: &mut Additions,
    removing: bool,
    records: &mut [Injection],
) -> Option<String> {
    let set_by_pod =
        t.meta.annotation(DEFAULT_CONTAINER_ANNOTATION).is_some() && !prev.default_container;
    if set_by_pod || removing {
        return None;
    }
    let name = adds.default_container.take()?;
    if let Some(r) = records.first_mut() {
        r.added.default_container = true;
    }
    Some(name)
}
