//! Rotation through the kubelet's real volume updates: a re-issued serving certificate (the
//! Secret changes) and an edited profiles ConfigMap, each applied with `kubectl apply -k`;
//! every replica, asked at its pod IP, serves the new one without a restart. Meanwhile pods
//! created through the API server (server-side dry run) must keep getting their sidecar.

use super::install::{Install, PROFILE, REV_ENV, Replica, has_sidecar, pod, webhook_pods};
use super::{Ctx, SERVER_NAME, UNTIL_TERM};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use sidecar_kit_e2e::probe;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a rotation may take: the kubelet refreshes projected volumes on its sync period
/// (a minute by default) plus its cache's TTL.
const ROTATION_TIMEOUT: Duration = Duration::from_secs(240);

pub fn run(ctx: &mut Ctx, inst: &Install) {
    let before: Vec<Replica> = webhook_pods(&ctx.k)
        .into_iter()
        .filter(|r| r.ready && !r.terminating)
        .collect();
    if before.len() != 2 {
        return ctx.check(
            false,
            format!("rotation: {} ready replicas, expected 2", before.len()),
        );
    }
    certificate(ctx, inst, &before);
    profiles(ctx, inst, &before);
    let after = webhook_pods(&ctx.k);
    for r in &before {
        let now = after.iter().find(|a| a.uid == r.uid);
        ctx.check(
            now.is_some_and(|a| a.restarts == r.restarts && !a.terminating),
            format!(
                "replica {} was restarted or replaced by the rotations (restarts {} -> {:?})",
                r.name,
                r.restarts,
                now.map(|a| a.restarts)
            ),
        );
    }
}

fn addr(r: &Replica) -> Option<SocketAddr> {
    format!("{}:8443", r.ip).parse().ok()
}

/// Polls until `done(replica)` holds for every replica; returns the seconds after `t0` at
/// which each first did (None: never within the timeout). Between rounds, creates a pod
/// through the API server (dry run) and counts those that came back without the sidecar.
fn until_all(
    ctx: &Ctx,
    replicas: &[Replica],
    t0: Instant,
    mut done: impl FnMut(SocketAddr) -> bool,
) -> (Vec<Option<f64>>, usize, usize) {
    let mut at: Vec<Option<f64>> = vec![None; replicas.len()];
    let (mut canaries, mut bare) = (0, 0);
    let canary = pod(
        ctx,
        "rotation-canary",
        PROFILE,
        Some("legacy"),
        None,
        UNTIL_TERM,
        "Always",
    );
    while at.iter().any(Option::is_none) && t0.elapsed() < ROTATION_TIMEOUT {
        for (i, r) in replicas.iter().enumerate() {
            if at[i].is_none() && addr(r).is_some_and(&mut done) {
                at[i] = Some(t0.elapsed().as_secs_f64());
            }
        }
        let stored = ctx
            .k
            .run(
                &["create", "--dry-run=server", "-o", "json", "-f", "-"],
                Some(&canary.to_string()),
            )
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok());
        canaries += 1;
        if !stored.as_ref().is_some_and(has_sidecar) {
            bare += 1;
        }
        // The next round: the kubelet updates volumes on its own schedule; 0.5 s resolution
        // is plenty against a minute-long wait.
        std::thread::sleep(Duration::from_millis(500));
    }
    (at, canaries, bare)
}

fn report(
    ctx: &mut Ctx,
    what: &str,
    replicas: &[Replica],
    at: &[Option<f64>],
    canaries: usize,
    bare: usize,
) {
    let per: Vec<String> = replicas
        .iter()
        .zip(at)
        .map(|(r, t)| match t {
            Some(t) => format!("{} {t:.1} s", r.name),
            None => format!("{} never", r.name),
        })
        .collect();
    ctx.check(
        at.iter().all(Option::is_some),
        format!(
            "{what}: not every replica within {} s: {}",
            ROTATION_TIMEOUT.as_secs(),
            per.join(", ")
        ),
    );
    ctx.check(
        bare == 0,
        format!(
            "{what}: {bare} of {canaries} pods created meanwhile came back without their sidecar"
        ),
    );
    ctx.note(format!(
        "rotation, {what}: served by every replica after {} ({canaries} pods created meanwhile, {bare} without sidecar)",
        per.join(", ")
    ));
}

fn certificate(ctx: &mut Ctx, inst: &Install, replicas: &[Replica]) {
    if let Err(e) = inst.certs(true) {
        return ctx.check(false, e);
    }
    let path = inst.overlay().join("tls/tls.crt");
    let new = match CertificateDer::from_pem_file(&path) {
        Ok(c) => c.to_vec(),
        Err(e) => return ctx.check(false, format!("{}: {e}", path.display())),
    };
    if let Err(e) = inst.apply_dir(&inst.overlay()) {
        return ctx.check(false, format!("apply -k after `certs --force`: {e}"));
    }
    let t0 = Instant::now();
    let (at, canaries, bare) = until_all(ctx, replicas, t0, |a| {
        probe::served_certificate(a, SERVER_NAME).is_ok_and(|c| c == new)
    });
    report(
        ctx,
        "serving certificate (sidecar-kit certs --force; kubectl apply -k)",
        replicas,
        &at,
        canaries,
        bare,
    );
}

/// The value of env var `name` anywhere in a JSON Patch's values.
fn env_value(v: &Value, name: &str) -> Option<String> {
    match v {
        Value::Object(m) => {
            if m.get("name").and_then(Value::as_str) == Some(name) {
                return m.get("value").and_then(Value::as_str).map(str::to_string);
            }
            m.values().find_map(|x| env_value(x, name))
        }
        Value::Array(a) => a.iter().find_map(|x| env_value(x, name)),
        _ => None,
    }
}

fn profiles(ctx: &mut Ctx, inst: &Install, replicas: &[Replica]) {
    inst.write_profiles(&ctx.shell, 2);
    if let Err(e) = inst.apply_dir(&inst.overlay()) {
        return ctx.check(false, format!("apply -k after editing the profiles: {e}"));
    }
    let t0 = Instant::now();
    let probe_pod = pod(
        ctx,
        "rotation-probe",
        PROFILE,
        Some("legacy"),
        None,
        UNTIL_TERM,
        "Always",
    );
    let ns = ctx.ns.clone();
    let (at, canaries, bare) = until_all(ctx, replicas, t0, |a| {
        probe::review(a, SERVER_NAME, &ns, &probe_pod)
            .is_ok_and(|ops| env_value(&Value::Array(ops), REV_ENV).as_deref() == Some("2"))
    });
    report(
        ctx,
        "profiles ConfigMap (edited profile; kubectl apply -k)",
        replicas,
        &at,
        canaries,
        bare,
    );
}
