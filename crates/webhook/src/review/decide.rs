//! Deciding about a pod CREATE: from the cache of repeated pods, else by planning with the
//! engine. A plan that fails (a pod the engine cannot read, a panic) leaves the review
//! undecided, for the failure mode to answer.

use super::decision::Decision;
use super::{Panic, ReviewContext};
use crate::cache;
use serde::Deserialize;
use sidecar_kit_core::engine::{self, Options};
use sidecar_kit_core::facts::Facts;
use sidecar_kit_core::pod::{ObjectRead, PodRead};
use std::borrow::Cow;
use std::sync::Arc;

/// The planning step of a review: the engine's `inject_read` (a field of the context, so
/// that tests can put a failing one in its place).
pub type Plan = fn(
    &str,
    Option<PodRead<'_>>,
    &sidecar_kit_core::profile::ProfileSet,
    &dyn Facts,
    &Options,
) -> Result<engine::Outcome, sidecar_kit_core::pod::ViewError>;

/// A decision, and whether it came from the cache.
pub(super) struct Decided {
    pub decision: Arc<Decision>,
    pub cached: bool,
}

/// Why no decision could be made.
pub(super) struct Undecided {
    pub reason: String,
    /// The engine panicked.
    pub panic: Option<Panic>,
}

/// Decides about the CREATE of `object` in `namespace`: a repeat of a pod the cache kept is
/// answered from it; a pod planned is kept from its second sighting on.
pub(super) fn decide(
    object: &str,
    read: Option<ObjectRead<'_>>,
    namespace: &str,
    ctx: &ReviewContext<'_>,
) -> Result<Decided, Undecided> {
    let (inputs, pod) = read.map(|r| (r.inputs, r.pod)).unzip();
    let inputs = inputs.as_ref();
    let generations = (ctx.profiles.generation, ctx.facts.generation());
    let key = ctx
        .cache
        .filter(|c| c.enabled())
        .and_then(|_| cache::key_with(inputs, object, namespace, generations));
    if let (Some(k), Some(c)) = (&key, ctx.cache)
        && let Some(hit) = c.get(k)
    {
        return Ok(Decided {
            decision: hit,
            cached: true,
        });
    }
    let decision = Arc::new(Decision::planned(&plan(
        object,
        pod.flatten(),
        namespace,
        ctx,
    )?));
    if let (Some(k), Some(c)) = (key, ctx.cache)
        && c.admit(&k)
    {
        let size = decision.size();
        c.insert_shared(k, decision.clone(), size);
    }
    Ok(Decided {
        decision,
        cached: false,
    })
}

/// The engine's plan for the pod; a panic is caught and reported.
fn plan(
    object: &str,
    pod: Option<PodRead<'_>>,
    namespace: &str,
    ctx: &ReviewContext<'_>,
) -> Result<engine::Outcome, Undecided> {
    let mut options = ctx.options.clone();
    if !namespace.is_empty() {
        options.namespace = Some(namespace.to_string());
    }
    let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (ctx.plan)(object, pod, &ctx.profiles.set, ctx.facts, &options)
    }));
    match planned {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(e)) => Err(Undecided {
            reason: format!("cannot read the pod: {e}"),
            panic: None,
        }),
        Err(payload) => Err(Undecided {
            reason: "internal error in the injection engine".to_string(),
            panic: Some(Panic {
                message: sidecar_kit_probes::panic_message(payload.as_ref()),
                pod: pod_name(object),
            }),
        }),
    }
}

/// The pod's name, else its generateName followed by '*', else empty.
fn pod_name(object: &str) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta<'a> {
        #[serde(borrow, default)]
        name: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        generate_name: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default)]
        metadata: Option<Meta<'a>>,
    }
    let Ok(Head { metadata: Some(m) }) = serde_json::from_str::<Head<'_>>(object) else {
        return String::new();
    };
    match (m.name, m.generate_name) {
        (Some(n), _) if !n.is_empty() => n.into_owned(),
        (_, Some(g)) if !g.is_empty() => format!("{g}*"),
        _ => String::new(),
    }
}
