//! The readiness probe of a universal sidecar's legacy copy, turned into `sidecar-shim
//! ready` around the original check, so that a dormant copy never holds the pod unready.

use super::shim::SHIM_BIN;
use crate::engine::notes::Notes;
use crate::profile::LEGACY_SUFFIX;
use serde_json::{Map, Value, json};

/// Turns a readiness probe of the legacy copy into `sidecar-shim ready` around the original
/// check, so that a dormant copy never holds the pod unready.
pub(super) fn ready_probe(
    orig: &Map<String, Value>,
    container: &Map<String, Value>,
    state: &str,
    notes: &mut Notes,
) -> Value {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    let mut cmd: Vec<String> = [SHIM_BIN, "ready", "--state", state]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(t) = orig.get("timeoutSeconds").and_then(Value::as_u64) {
        cmd.extend(["--timeout".to_string(), t.to_string()]);
    }
    if let Some(exec) = orig
        .get("exec")
        .and_then(|e| e.get("command"))
        .and_then(Value::as_array)
    {
        cmd.push("--".into());
        cmd.extend(exec.iter().filter_map(|s| s.as_str().map(str::to_string)));
    } else if let Some(h) = orig.get("httpGet").and_then(Value::as_object) {
        http_get(h, container, &mut cmd, notes);
    } else if let Some(t) = orig.get("tcpSocket").and_then(Value::as_object) {
        match resolve_port(t.get("port"), container) {
            Some(port) => cmd.extend(["--tcp-socket".into(), format!("{}:{port}", host_of(t))]),
            None => notes.warn(format!("{name}{LEGACY_SUFFIX}: readiness port {:?} cannot be resolved; the check is dropped", t.get("port"))),
        }
    } else if let Some(g) = orig.get("grpc").and_then(Value::as_object)
        && let Some(port) = resolve_port(g.get("port"), container)
    {
        notes.warn(format!("{name}{LEGACY_SUFFIX}: its gRPC readiness check is replaced by a TCP check of port {port}"));
        cmd.extend(["--tcp-socket".into(), format!("127.0.0.1:{port}")]);
    }
    let mut probe = orig.clone();
    for k in ["exec", "httpGet", "tcpSocket", "grpc"] {
        probe.remove(k);
    }
    probe.insert("exec".into(), json!({"command": cmd}));
    Value::Object(probe)
}

/// The arguments of an `httpGet` check (HTTPS becomes a TCP check: the shim speaks no TLS).
fn http_get(
    h: &Map<String, Value>,
    container: &Map<String, Value>,
    cmd: &mut Vec<String>,
    notes: &mut Notes,
) {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    match resolve_port(h.get("port"), container) {
        Some(port) if h.get("scheme").and_then(Value::as_str) == Some("HTTPS") => {
            notes.warn(format!("{name}{LEGACY_SUFFIX}: its HTTPS readiness check is replaced by a TCP check of port {port} (sidecar-shim speaks no TLS)"));
            cmd.extend(["--tcp-socket".into(), format!("{}:{port}", host_of(h))]);
        }
        Some(port) => {
            let path = h.get("path").and_then(Value::as_str).unwrap_or("/");
            let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
            cmd.extend(["--http-get".into(), format!("http://{}:{port}{path}", host_of(h))]);
            for hd in h.get("httpHeaders").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(n), Some(v)) = (hd.get("name").and_then(Value::as_str), hd.get("value").and_then(Value::as_str)) {
                    cmd.extend(["--header".into(), format!("{n}:{v}")]);
                }
            }
        }
        None => notes.warn(format!("{name}{LEGACY_SUFFIX}: readiness port {:?} is not a number or a named port of the container; the check is dropped", h.get("port"))),
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
fn resolve_port(p: Option<&Value>, container: &Map<String, Value>) -> Option<u64> {
    match p? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok().or_else(|| {
            container
                .get("ports")?
                .as_array()?
                .iter()
                .find(|x| x.get("name").and_then(Value::as_str) == Some(s))?
                .get("containerPort")?
                .as_u64()
        }),
        _ => None,
    }
}

fn host_of(h: &Map<String, Value>) -> String {
    h.get("host")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("127.0.0.1")
        .to_string()
}
