//! sidecar-shim in the pod: where its volume is mounted, the install container that copies
//! it there, and the command lines that run sidecars and apps under it (contract:
//! "Universal wiring").

use super::jobsafe::JobSafe;
use crate::engine::json::push_to;
use crate::profile::{INSTALL_CONTAINER, SHIM_VOLUME};
use serde_json::{Map, Value, json};

/// Where the shim's volume is mounted, and the paths under it (contract: "Universal wiring").
pub const SHIM_MOUNT: &str = "/sidecar-kit";
pub const SHIM_BIN: &str = "/sidecar-kit/bin/sidecar-shim";
pub const TOMBSTONES: &str = "/sidecar-kit/tombstones";

pub fn state_dir(sidecar: &str) -> String {
    format!("{SHIM_MOUNT}/state/{sidecar}")
}

/// The user and group of the install container, whatever `USER` the shim image declares
/// (contract: "Universal wiring", security context).
pub const INSTALL_USER: u32 = 65532;

/// The install container's security context: `restricted`, with an explicit non-root user so
/// that it runs whatever user the shim image declares. Only the install container gets it:
/// the shim-wrapped copies run the profile's own image and keep the profile container's
/// `securityContext` exactly (a root image with `runAsNonRoot` added is refused by the
/// kubelet: `CreateContainerConfigError`).
fn install_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "runAsUser": INSTALL_USER,
        "runAsGroup": INSTALL_USER,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

pub(in crate::engine) fn shim_mount() -> Value {
    json!({"name": SHIM_VOLUME, "mountPath": SHIM_MOUNT})
}

pub(super) fn install_container(image: &str) -> Value {
    json!({
        "name": INSTALL_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sidecar-shim", "install", format!("{SHIM_MOUNT}/bin")],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": install_security(),
        "volumeMounts": [shim_mount()]
    })
}

pub(super) fn shim_volume() -> Value {
    json!({"name": SHIM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
}

pub(super) fn strings(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| Value::String((*s).to_string())).collect()
}

/// `[shim, app, --tombstones, DIR, --name, NAME, --] + cmd`
pub(super) fn wrap_app(name: &str, cmd: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        SHIM_BIN,
        "app",
        "--tombstones",
        TOMBSTONES,
        "--name",
        name,
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(cmd.iter().cloned());
    v
}

/// Undoes [`wrap_app`]; `None` when the command is not wrapped.
pub(in crate::engine) fn unwrap_app(cmd: &[String]) -> Option<Vec<String>> {
    if cmd.first().map(String::as_str) != Some(SHIM_BIN)
        || cmd.get(1).map(String::as_str) != Some("app")
    {
        return None;
    }
    let sep = cmd.iter().position(|s| s == "--")?;
    Some(cmd[sep + 1..].to_vec())
}

/// `[shim, legacy, --state, DIR, --pod-restart-policy, POLICY, (Job-safe flags), --] + cmd`
pub(super) fn legacy_shim_command(
    name: &str,
    restart_policy: &str,
    job: &JobSafe,
    cmd: &[String],
) -> Vec<String> {
    let state = state_dir(name);
    let mut v: Vec<String> = [
        SHIM_BIN,
        "legacy",
        "--state",
        &state,
        "--pod-restart-policy",
        restart_policy,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match job {
        JobSafe::None => {}
        JobSafe::Tombstones(apps) => v.extend([
            "--tombstones".into(),
            TOMBSTONES.into(),
            "--wait-for".into(),
            apps.join(","),
        ]),
        JobSafe::Api(apps) => v.extend([
            "--job-completion".into(),
            "api".into(),
            "--wait-for".into(),
            apps.join(","),
        ]),
    }
    v.push("--".into());
    v.extend(cmd.iter().cloned());
    v
}

pub(super) fn set_command(c: &mut Map<String, Value>, cmd: Vec<String>) {
    c.insert(
        "command".into(),
        Value::Array(cmd.into_iter().map(Value::String).collect()),
    );
}

/// `POD_NAME` and `POD_NAMESPACE` from the downward API (`jobCompletion: api`).
pub(super) fn pod_downward_env(c: &mut Map<String, Value>) {
    for (n, f) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        push_to(
            c,
            "env",
            json!({"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}}),
        );
    }
}
