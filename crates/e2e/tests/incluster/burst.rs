//! A rolling restart of the webhook (`kubectl rollout restart`) during a burst of pod
//! creations in an opted-in namespace, with the default `failurePolicy: Ignore` and with
//! `components/fail-closed`: every creation must succeed and every pod must carry its
//! sidecar. The pods name a scheduler that does not exist, so they stay Pending and cost the
//! nodes nothing: what is measured is admission alone.

use super::install::{
    Install, PROFILE, has_sidecar, wait_rollout, wait_service_account, webhook_pods,
};
use super::{Ctx, NS, POD_TIMEOUT, RUN_LABEL, WEBHOOK};
use serde_json::{Value, json};
use sidecar_kit_e2e::{Kubectl, eventually, say};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Parallel `kubectl create` streams (each one connection, one pod after the other).
const STREAMS: usize = 4;
/// Pods per `kubectl create`.
const CHUNK: usize = 25;
/// The restart starts when this share of the burst is created.
const RESTART_AT: f64 = 0.1;

pub fn run(ctx: &mut Ctx, inst: &Install, n: usize, rate: f64) {
    burst(ctx, n, rate, "ignore");
    let overlay = inst.fail_closed_overlay();
    if let Err(e) = inst.apply_dir(&overlay) {
        return ctx.check(false, format!("apply -k with components/fail-closed: {e}"));
    }
    if let Err(e) = wait_rollout(ctx, WEBHOOK) {
        return ctx.check(false, format!("rollout after fail-closed: {e}"));
    }
    let mwc = ctx
        .k
        .get("mutatingwebhookconfiguration", WEBHOOK, None)
        .ok()
        .flatten()
        .unwrap_or_default();
    ctx.check(
        mwc["webhooks"][0]["failurePolicy"] == "Fail",
        format!(
            "fail-closed: failurePolicy {}",
            mwc["webhooks"][0]["failurePolicy"]
        ),
    );
    burst(ctx, n, rate, "fail-closed");
}

/// When the restart was over: every replica from a new ReplicaSet, ready, none terminating.
/// Seconds after `t0`, or None if not within the timeout.
fn watch_rollout(k: Kubectl, old: BTreeSet<String>, t0: Instant) -> Option<f64> {
    eventually("the restart to be over", POD_TIMEOUT, || {
        let pods = webhook_pods(&k);
        let done = pods.len() == 2
            && pods
                .iter()
                .all(|p| p.ready && !p.terminating && !old.contains(&p.hash));
        Ok(done.then(|| t0.elapsed().as_secs_f64()))
    })
    .ok()
}

fn burst(ctx: &mut Ctx, n: usize, rate: f64, label: &str) {
    let ns = format!("{}-burst-{label}", ctx.ns);
    if let Err(e) = ctx.k.create(&json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {RUN_LABEL: ctx.id, "sidecar-kit.io/inject": "enabled"}}
    })) {
        return ctx.check(false, format!("burst namespace: {e}"));
    }
    wait_service_account(ctx, &ns);
    // Chunks of pods, each a List for one `kubectl create`.
    let pod = |i: usize| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("b-{i}"), "namespace": ns, "labels": {"e2e-profile": PROFILE}},
            "spec": {
                "schedulerName": "sidecar-kit-e2e-no-scheduler",
                "automountServiceAccountToken": false,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532},
                "containers": [{"name": "app", "image": ctx.shell, "command": ["sh", "-c", "true"]}]
            }
        })
    };
    let mut chunks = Vec::new();
    for (c, start) in (0..n).step_by(CHUNK).enumerate() {
        let items: Vec<Value> = (start..(start + CHUNK).min(n)).map(pod).collect();
        let f = ctx.work.join(format!("burst-{label}-{c}.json"));
        std::fs::write(
            &f,
            json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
        )
        .unwrap();
        chunks.push((start, f));
    }
    let old: BTreeSet<String> = webhook_pods(&ctx.k).into_iter().map(|p| p.hash).collect();
    let t0 = Instant::now();
    // An open loop: chunk c of the burst is sent at c * CHUNK / rate seconds (or as soon as a
    // stream is free), so that the burst lasts n / rate seconds whatever the machine, and
    // covers the restart.
    let streams: Vec<_> = (0..STREAMS)
        .map(|s| {
            let mine: Vec<(usize, std::path::PathBuf)> =
                chunks.iter().skip(s).step_by(STREAMS).cloned().collect();
            let k = ctx.k.clone();
            std::thread::spawn(move || {
                let (mut created, mut errors) = (0usize, Vec::new());
                for (start, f) in mine {
                    let due = Duration::from_secs_f64(start as f64 / rate);
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let out = Command::new(&k.bin)
                        .arg("--kubeconfig")
                        .arg(&k.kubeconfig)
                        .args(["create", "-o", "name", "-f"])
                        .arg(&f)
                        .stdin(Stdio::null())
                        .output()
                        .unwrap();
                    created += String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .filter(|l| l.starts_with("pod/"))
                        .count();
                    errors.extend(
                        String::from_utf8_lossy(&out.stderr)
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_string),
                    );
                }
                (created, errors)
            })
        })
        .collect();
    // Restart once the burst is under way.
    let started = eventually("the burst to get going", Duration::from_secs(120), || {
        let out = ctx.k.run(&["get", "pods", "-n", &ns, "-o", "name"], None)?;
        Ok((out.lines().count() as f64 >= RESTART_AT * n as f64).then_some(()))
    });
    let restart_at = t0.elapsed().as_secs_f64();
    let watcher = match started.and_then(|()| {
        ctx.k.run(
            &[
                "rollout",
                "restart",
                &format!("deployment/{WEBHOOK}"),
                "-n",
                NS,
            ],
            None,
        )
    }) {
        Ok(_) => {
            let k = ctx.k.clone();
            Some(std::thread::spawn(move || watch_rollout(k, old, t0)))
        }
        Err(e) => {
            ctx.check(false, format!("burst {label}: rollout restart: {e}"));
            None
        }
    };
    let (mut created, mut errors) = (0usize, Vec::new());
    for s in streams {
        let (c, e) = s.join().unwrap();
        created += c;
        errors.extend(e);
    }
    let burst_secs = t0.elapsed().as_secs_f64();
    let done_at = watcher.and_then(|w| w.join().ok().flatten());
    // What the API server stored.
    let list: Value = ctx
        .k
        .run(&["get", "pods", "-n", &ns, "-o", "json"], None)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let pods = list["items"].as_array().cloned().unwrap_or_default();
    let bare: Vec<&str> = pods
        .iter()
        .filter(|p| !has_sidecar(p))
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    let failed = n - created.min(n);
    ctx.check(
        created == n && pods.len() == n,
        format!("burst {label}: {created} of {n} creations succeeded, {} pods stored; first errors: {:?}", pods.len(), errors.iter().take(5).collect::<Vec<_>>()),
    );
    ctx.check(
        bare.is_empty(),
        format!(
            "burst {label}: {} pods admitted without their sidecar: {:?}",
            bare.len(),
            bare.iter().take(10).collect::<Vec<_>>()
        ),
    );
    let covered = done_at.is_some_and(|d| d <= burst_secs);
    ctx.check(
        covered,
        format!("burst {label}: the restart (begun at {restart_at:.1} s) ended at {done_at:?} s, after the burst ({burst_secs:.1} s): the burst did not cover it; send it longer: raise SIDECAR_KIT_E2E_BURST or lower SIDECAR_KIT_E2E_BURST_RATE"),
    );
    ctx.note(format!(
        "burst {label}: {n} pod creations in {burst_secs:.1} s ({:.0}/s offered {rate:.0}/s); rollout restart at {restart_at:.1} s, both new replicas serving and the old ones gone at {} s; {failed} failed creations, {} pods without their sidecar",
        n as f64 / burst_secs,
        done_at.map_or("never".into(), |d| format!("{d:.1}")),
        bare.len()
    ));
    // Thousands of pods go with their namespace, in the background.
    if let Err(e) = ctx
        .k
        .run(&["delete", "namespace", &ns, "--wait=false"], None)
    {
        say(&format!("e2e: deleting {ns}: {e}"));
    }
}
