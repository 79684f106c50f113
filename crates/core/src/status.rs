//! The `sidecar-kit.io/status` annotation: exactly what was injected, so that re-injection
//! and `uninject` remove precisely that.

use crate::profile::Mode;
use serde::{Deserialize, Serialize};

pub const STATUS_ANNOTATION: &str = "sidecar-kit.io/status";
pub const INJECT_KEY: &str = "sidecar-kit.io/inject";
pub const PROFILES_ANNOTATION: &str = "sidecar-kit.io/profiles";
pub const MODE_ANNOTATION: &str = "sidecar-kit.io/mode";
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";
pub const NODE_LABEL: &str = "sidecar-kit.io/native-sidecars";
pub const NODE_REASON_ANNOTATION: &str = "sidecar-kit.io/native-sidecars-reason";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub v: u32,
    pub injections: Vec<Injection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    pub profile: String,
    pub hash: String,
    pub mode: Mode,
    pub reason: String,
    pub added: Added,
}

/// A volume mount or env var added to one app container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppItem {
    pub container: String,
    /// The mountPath (mounts) or the variable name (env).
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    #[serde(default)]
    pub init_containers: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub app_mounts: Vec<AppItem>,
    #[serde(default)]
    pub app_env: Vec<AppItem>,
    /// App containers whose command was wrapped by `sidecar-shim app` (Job-safe wiring).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_commands: Vec<String>,
    #[serde(default)]
    pub affinity: bool,
    /// Pointer (relative to the pod spec) of the affinity object created whole, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_created: Option<String>,
    #[serde(default)]
    pub default_container: bool,
    /// Fields that were present but empty before the injection (`annotations`,
    /// `initContainers`, `volumes`, `containers/NAME/env`, `containers/NAME/volumeMounts`,
    /// `metadata`): emptied again, they stay as `{}`/`[]`. Every other field left empty by
    /// uninject is removed, as it was absent before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub was_empty: Vec<String>,
}

impl Status {
    pub fn parse(s: &str) -> Result<Status, String> {
        let st: Status = serde_json::from_str(s).map_err(|e| e.to_string())?;
        if st.v != 1 {
            return Err(format!(
                "version {} is not understood by this sidecar-kit (expects 1)",
                st.v
            ));
        }
        Ok(st)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Everything added, over all injections.
    pub fn all_added(&self) -> Added {
        let mut a = Added::default();
        for i in &self.injections {
            let b = &i.added;
            a.init_containers.extend(b.init_containers.iter().cloned());
            a.containers.extend(b.containers.iter().cloned());
            a.volumes.extend(b.volumes.iter().cloned());
            a.app_mounts.extend(b.app_mounts.iter().cloned());
            a.app_env.extend(b.app_env.iter().cloned());
            a.app_commands.extend(b.app_commands.iter().cloned());
            a.affinity |= b.affinity;
            if a.affinity_created.is_none() {
                a.affinity_created.clone_from(&b.affinity_created);
            }
            a.default_container |= b.default_container;
            a.was_empty.extend(b.was_empty.iter().cloned());
        }
        a
    }
}
