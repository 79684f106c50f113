//! Pods per node class, as the in-cluster webhook injects them: `auto` per pool, the
//! affinity fallback, universal, Jobs, `doctor pods` on refused and stuck pods, and the
//! Events on the workloads.

use super::install::{PROFILE, PROFILE_AFFINITY, injected_mode, pod};
use super::{Class, Ctx, POD_TIMEOUT, SIDECAR_UP, UNTIL_TERM};
use serde_json::{Value, json};
use sidecar_kit_e2e::{eventually, eventually_or_stop, finding_ids};

pub fn run(ctx: &mut Ctx) {
    auto_per_pool(ctx);
    affinity_fallback(ctx);
    universal(ctx);
    jobs(ctx);
    doctor_pods(ctx);
}

fn get(ctx: &Ctx, name: &str) -> Result<Value, String> {
    ctx.k
        .get("pod", name, Some(&ctx.ns))?
        .ok_or_else(|| format!("pod {name} is gone"))
}

/// Waits until every regular container of pod `name` runs; stops early if it failed.
fn running(ctx: &Ctx, name: &str) -> Result<Value, String> {
    eventually_or_stop(&format!("pod {name} running"), POD_TIMEOUT, || {
        let p = get(ctx, name)?;
        if p["status"]["phase"] == "Failed" {
            return Ok(Some(Err(format!("pod {name} failed: {}", p["status"]))));
        }
        let all = p["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|c| {
                !c.is_empty() && c.iter().all(|c| c["state"].get("running").is_some())
            });
        Ok(all.then_some(Ok(p)))
    })
}

fn create(ctx: &mut Ctx, obj: &Value) -> Option<Value> {
    match ctx.k.create(obj) {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.check(false, format!("create {}: {e}", obj["metadata"]["name"]));
            None
        }
    }
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Capable => "capable",
        Class::Rejecting => "rejecting",
        Class::Unaware => "unaware",
    }
}

/// Creates pod `PREFIX-CLASS` of the e2e profile (annotation `mode`, if any) pinned to the
/// first node of `class`; its node, name and stored object, or None (skipped for want of such a node, or
/// a failed check).
fn create_pinned(
    ctx: &mut Ctx,
    class: Class,
    prefix: &str,
    mode: Option<&str>,
) -> Option<(String, String, Value)> {
    let what = format!("{prefix} on a {class:?} node");
    let node = ctx.node(class, &what)?;
    let name = format!("{prefix}-{}", class_name(class));
    let p = pod(ctx, &name, PROFILE, mode, Some(&node), UNTIL_TERM, "Always");
    let stored = create(ctx, &p)?;
    Some((node, name, stored))
}

/// `auto` decides per pool: native where the pod can only land on capable nodes, the
/// profile's fallback (legacy) elsewhere; each pod runs.
fn auto_per_pool(ctx: &mut Ctx) {
    for class in [Class::Capable, Class::Rejecting, Class::Unaware] {
        let Some((node, name, stored)) = create_pinned(ctx, class, "auto", None) else {
            continue;
        };
        let want = if class == Class::Capable {
            "native"
        } else {
            "legacy"
        };
        let mode = injected_mode(&stored);
        ctx.check(
            mode == want,
            format!("{name} on {node}: auto chose {mode}, expected {want}"),
        );
        match running(ctx, &name) {
            Ok(_) => ctx.note(format!("auto on {node} ({class:?}): {mode}, running")),
            Err(e) => ctx.check(false, e),
        }
    }
}

/// The ReplicaSet or Job that owns pod `p`.
fn owner(p: &Value) -> Option<(String, String)> {
    let o = &p["metadata"]["ownerReferences"][0];
    Some((
        o["kind"].as_str()?.to_lowercase(),
        o["name"].as_str()?.to_string(),
    ))
}

/// `kubectl events --for KIND/NAME`: the reasons and messages of sidecar-kit's Events.
fn events_for(ctx: &Ctx, kind: &str, name: &str) -> Vec<(String, String)> {
    ctx.get_json(&["events", "-n", &ctx.ns, "--for", &format!("{kind}/{name}")])
        .ok()
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        // The webhook reports as sidecar-kit.io/webhook (events.k8s.io/v1
        // reportingController).
        .filter(|e| e["reportingComponent"] == "sidecar-kit.io/webhook")
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Checks that `kubectl events --for KIND/NAME` shows an injection Event.
fn check_events(ctx: &mut Ctx, kind: &str, name: &str) {
    let found = eventually(
        &format!("an Event on {kind}/{name}"),
        std::time::Duration::from_secs(30),
        || {
            let ev = events_for(ctx, kind, name);
            Ok(ev.iter().find(|(r, _)| r == "Injected").cloned())
        },
    );
    match found {
        Ok((reason, msg)) => ctx.note(format!(
            "kubectl events --for {kind}/{name}: {reason}: {msg}"
        )),
        Err(e) => {
            let all = events_for(ctx, kind, name);
            ctx.check(false, format!("{e}; sidecar-kit's Events there: {all:?}"));
        }
    }
}

/// With fallback `affinity`, an unpinned pod of a mixed cluster gets native sidecars and
/// node affinity that keeps it on capable nodes.
fn affinity_fallback(ctx: &mut Ctx) {
    if ctx.node(Class::Capable, "the affinity fallback").is_none() {
        return;
    }
    let capable: Vec<String> = ctx
        .nodes
        .iter()
        .filter(|n| n.class == Class::Capable)
        .map(|n| n.name.clone())
        .collect();
    let template = pod(ctx, "x", PROFILE_AFFINITY, None, None, UNTIL_TERM, "Always");
    let replicas = 3;
    let dep = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-affinity", "namespace": ctx.ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web-affinity"}},
            "template": {
                "metadata": {"labels": {"app": "web-affinity", "e2e-profile": PROFILE_AFFINITY}},
                "spec": template["spec"]
            }
        }
    });
    if create(ctx, &dep).is_none() {
        return;
    }
    let ns = ctx.ns.clone();
    let pods = eventually("web-affinity pods running", POD_TIMEOUT, || {
        let list = ctx.get_json(&["get", "pods", "-n", &ns, "-l", "app=web-affinity"])?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let up = items.len() == replicas
            && items.iter().all(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|c| c.iter().all(|c| c["state"].get("running").is_some()))
            });
        Ok(up.then_some(items))
    });
    let pods = match pods {
        Ok(p) => p,
        Err(e) => return ctx.check(false, format!("affinity fallback: {e}")),
    };
    let placed: Vec<String> = pods
        .iter()
        .map(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let modes: Vec<String> = pods.iter().map(injected_mode).collect();
    ctx.check(
        placed.iter().all(|n| capable.contains(n)),
        format!("affinity fallback: pods on {placed:?}, expected only capable nodes {capable:?}"),
    );
    ctx.check(
        modes.iter().all(|m| m == "affinity"),
        format!("affinity fallback: modes {modes:?}, expected affinity"),
    );
    ctx.note(format!(
        "auto with fallback affinity, unpinned: {replicas} pods ({modes:?}) on {placed:?}"
    ));
    if let Some((kind, name)) = owner(&pods[0]) {
        check_events(ctx, &kind, &name);
    }
}

/// Which containers of pod `name` logged `SIDECAR_UP`.
fn ran_sidecar(ctx: &Ctx, name: &str) -> Vec<String> {
    ["shipper", "shipper-legacy"]
        .iter()
        .filter(|c| {
            ctx.k
                .logs(&ctx.ns, name, c, false)
                .unwrap_or_default()
                .iter()
                .any(|(_, l)| l.contains(SIDECAR_UP))
        })
        .map(|c| c.to_string())
        .collect()
}

/// The copy the shim's state file says runs the sidecar (`native-running` or
/// `legacy-running`), read in the legacy copy, which mounts it on every node class. For
/// clusters where a pod's logs can be gone while it runs: kubelets older than 1.29 ignore
/// `podLogsDir`, and two of them on one host clean up each other's `/var/log/pods`.
fn copy_by_state(ctx: &Ctx, name: &str) -> Option<String> {
    let state = ctx
        .k
        .run(
            &[
                "exec",
                "-n",
                &ctx.ns,
                name,
                "-c",
                "shipper-legacy",
                "--",
                "sh",
                "-c",
                "cat /sidecar-kit/state/shipper/state",
            ],
            None,
        )
        .ok()?;
    match state.trim() {
        "native-running" | "native-confirmed" => Some("shipper".into()),
        "legacy-running" => Some("shipper-legacy".into()),
        _ => None,
    }
}

/// Universal: exactly one copy runs the sidecar (native on capable, legacy on unaware
/// nodes), and a pod pinned to a rejecting node is never scheduled there.
fn universal(ctx: &mut Ctx) {
    for (class, copy) in [
        (Class::Capable, "shipper"),
        (Class::Unaware, "shipper-legacy"),
    ] {
        let Some((node, name, _)) = create_pinned(ctx, class, "universal", Some("universal"))
        else {
            continue;
        };
        if let Err(e) = running(ctx, &name) {
            ctx.check(false, e);
            continue;
        }
        // The sidecar's first line may take a moment to reach the log.
        let ran = eventually(
            &format!("{name}'s sidecar output"),
            std::time::Duration::from_secs(30),
            || {
                let r = ran_sidecar(ctx, &name);
                Ok((!r.is_empty()).then_some(r))
            },
        )
        .unwrap_or_default();
        let ran = if ran.is_empty() {
            match copy_by_state(ctx, &name) {
                Some(c) => {
                    ctx.note(format!(
                        "universal on {node} ({class:?}): no sidecar output in the logs (gone from the node?); the shim's state file names {c}"
                    ));
                    vec![c]
                }
                None => ran,
            }
        } else {
            ran
        };
        ctx.check(
            ran == [copy],
            format!(
                "universal on {node} ({class:?}): the sidecar ran in {ran:?}, expected only {copy}"
            ),
        );
        ctx.note(format!(
            "universal on {node} ({class:?}): sidecar ran in {ran:?}"
        ));
    }
    if let Some(node) = ctx.node(Class::Rejecting, "universal on a rejecting node") {
        let name = "universal-rejecting";
        let p = pod(
            ctx,
            name,
            PROFILE,
            Some("universal"),
            Some(&node),
            UNTIL_TERM,
            "Always",
        );
        if create(ctx, &p).is_none() {
            return;
        }
        let r = eventually(
            "the scheduler to refuse universal-rejecting",
            POD_TIMEOUT,
            || {
                let p = get(ctx, name)?;
                let refused = p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["type"] == "PodScheduled"
                            && c["status"] == "False"
                            && c["reason"] == "Unschedulable"
                    });
                Ok(refused.then_some(p))
            },
        );
        match r {
            Ok(p) => {
                ctx.check(
                    p["spec"]["nodeName"].is_null(),
                    format!("universal-rejecting landed on {}", p["spec"]["nodeName"]),
                );
                ctx.note(format!(
                    "universal pinned to {node} (rejecting): Unschedulable, never lands there"
                ));
            }
            Err(e) => {
                let p = get(ctx, name).unwrap_or_default();
                ctx.check(
                    false,
                    format!(
                        "{e}: node {}, status {}",
                        p["spec"]["nodeName"], p["status"]
                    ),
                );
            }
        }
    }
}

/// A Job with a legacy sidecar completes on an unaware node; one with a native sidecar on a
/// capable node.
fn jobs(ctx: &mut Ctx) {
    for (class, mode) in [(Class::Unaware, "legacy"), (Class::Capable, "native")] {
        let Some(node) = ctx.node(class, &format!("the {mode} Job")) else {
            continue;
        };
        let name = format!("job-{mode}");
        let template = pod(
            ctx,
            "x",
            PROFILE,
            Some(mode),
            Some(&node),
            "echo done; sleep 2",
            "Never",
        );
        let meta = &template["metadata"];
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": ctx.ns},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
                    "spec": template["spec"]
                }
            }
        });
        if create(ctx, &job).is_none() {
            continue;
        }
        let ns = ctx.ns.clone();
        let k = ctx.k.clone();
        let done = eventually_or_stop(&format!("Job {name} to complete"), POD_TIMEOUT, || {
            let j = k.get("job", &name, Some(&ns))?.unwrap_or_default();
            let cond = |t: &str| {
                j["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            if cond("Failed") {
                return Ok(Some(Err(format!("Job {name} failed: {}", j["status"]))));
            }
            Ok(cond("Complete").then_some(Ok(j)))
        });
        match done {
            Ok(j) => {
                let secs = sidecar_kit_e2e::rfc3339_secs(
                    j["status"]["completionTime"].as_str().unwrap_or(""),
                )
                .zip(sidecar_kit_e2e::rfc3339_secs(
                    j["status"]["startTime"].as_str().unwrap_or(""),
                ))
                .map(|(a, b)| a - b);
                ctx.note(format!(
                    "Job {name} ({mode} sidecar) on {node}: Complete after {} s",
                    secs.map_or("?".into(), |s| format!("{s:.0}"))
                ));
                check_events(ctx, "job", &name);
            }
            Err(e) => ctx.check(false, e),
        }
    }
}

/// `doctor pods` explains a native pod forced onto a rejecting node (refused) and onto an
/// unaware node (stuck in Init).
fn doctor_pods(ctx: &mut Ctx) {
    for (class, want) in [
        (Class::Rejecting, "pods.rejected-by-node"),
        (Class::Unaware, "pods.stuck-in-init"),
    ] {
        let Some((node, name, _)) = create_pinned(ctx, class, "native", Some("native")) else {
            continue;
        };
        // Refused: the pod fails. Unaware: the sidecar runs as a plain init container.
        let settled = eventually(&format!("{name} to settle"), POD_TIMEOUT, || {
            let p = get(ctx, &name)?;
            let sidecar_running = p["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == "shipper" && c["state"].get("running").is_some());
            Ok((p["status"]["phase"] == "Failed" || sidecar_running).then_some(p))
        });
        let p = match settled {
            Ok(p) => p,
            Err(e) => {
                ctx.check(false, e);
                continue;
            }
        };
        match sidecar_kit_e2e::doctor(&ctx.bin, &ctx.kubeconfig, &["pods", &name, "-n", &ctx.ns]) {
            Ok((_, report)) => {
                let ids = finding_ids(&report);
                ctx.check(
                    ids.iter().any(|i| i == want),
                    format!("doctor pods {name} on {node} ({class:?}, phase {}): findings {ids:?}, expected {want}", p["status"]["phase"]),
                );
                ctx.note(format!(
                    "native pod forced onto {node} ({class:?}): phase {}, doctor pods {ids:?}",
                    p["status"]["phase"]
                ));
            }
            Err(e) => ctx.check(false, e),
        }
    }
}
