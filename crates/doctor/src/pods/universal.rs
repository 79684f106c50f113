//! Which copy of a universal sidecar runs it: the native copy (an init container running
//! `sidecar-shim native`) or the legacy one (its `-legacy` twin among the containers), told
//! from the shim's termination messages or, without them, from the containers' states.

use super::view::PodView;
use serde::Serialize;
use sidecar_kit_core::profile::LEGACY_SUFFIX;

/// Which copy of a universal sidecar runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UniversalCopy {
    pub sidecar: String,
    /// `native`, `legacy`, `both` or `undecided`.
    pub copy: String,
    /// How it was told: `termination message` or `container state`.
    pub from: String,
}

/// One universal sidecar of a pod, as the checks read it.
#[derive(Debug, Clone)]
pub struct UniversalRun<'a> {
    /// The native copy's name (the sidecar's).
    pub sidecar: &'a str,
    /// The legacy copy's name.
    pub legacy_name: String,
    /// `native`, `legacy`, `both` or `undecided`.
    pub copy: &'static str,
    /// `termination message` or `container state`.
    pub from: &'static str,
    /// The native copy still carries `restartPolicy: Always` (an API server with the gate
    /// off drops it at admission, and then the legacy copy runs the sidecar by design).
    pub native_field_kept: bool,
}

impl UniversalRun<'_> {
    /// As the report's data shows it.
    pub fn to_copy(&self) -> UniversalCopy {
        UniversalCopy {
            sidecar: self.sidecar.to_string(),
            copy: self.copy.into(),
            from: self.from.into(),
        }
    }
}

/// The universal sidecars of a pod (the init containers running `sidecar-shim native`), in
/// the order of the spec, and which copy runs each.
pub fn runs<'a>(pod: &PodView<'a>) -> Vec<UniversalRun<'a>> {
    pod.init_containers
        .iter()
        .filter(|c| c.shim_role == Some("native"))
        .map(|c| {
            let legacy_name = format!("{}{LEGACY_SUFFIX}", c.name);
            let (copy, from) = which_copy(pod, c.name, &legacy_name);
            UniversalRun {
                sidecar: c.name,
                legacy_name,
                copy,
                from,
                native_field_kept: c.always,
            }
        })
        .collect()
}

/// `(copy, how it was told)` for one universal sidecar.
fn which_copy(pod: &PodView, native: &str, legacy: &str) -> (&'static str, &'static str) {
    let ncs = pod.init_status(native);
    let lcs = pod.status(legacy);
    match (ncs.copy_message(), lcs.copy_message()) {
        (Some("native"), Some("legacy")) => ("both", "termination message"),
        (Some("native"), _) => ("native", "termination message"),
        (_, Some("legacy")) => ("legacy", "termination message"),
        _ => {
            let native_runs = ncs.running && ncs.started && ncs.restart_count >= 1;
            let native_done = ncs.terminated.is_some();
            if native_runs {
                ("native", "container state")
            } else if native_done && lcs.running {
                ("legacy", "container state")
            } else {
                ("undecided", "container state")
            }
        }
    }
}
