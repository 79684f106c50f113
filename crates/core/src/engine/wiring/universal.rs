//! Universal mode: each sidecar twice, both under sidecar-shim: a native copy (an init
//! container, with the shim's detection probe where the API server keeps `restartPolicy`)
//! and a legacy copy (a regular container); on each node the shim keeps one of them
//! running, the other dormant.

use super::probe::ready_probe;
use super::shim::{SHIM_BIN, set_command, shim_mount, state_dir, strings};
use super::{Additions, ProfileWiring};
use crate::engine::json::push_to;
use crate::engine::notes::Notes;
use crate::profile::{ContainerSpec, LEGACY_SUFFIX};
use serde_json::{Map, Value, json};

impl ProfileWiring<'_> {
    pub(super) fn universal(&mut self, c: &ContainerSpec, adds: &mut Additions, notes: &mut Notes) {
        let cmd = c.command.as_deref().unwrap_or_default();
        let state = state_dir(&c.name);
        let native = self.native_copy(c, cmd, &state, notes);
        self.init(&c.name, Value::Object(native));
        adds.native_first.get_or_insert_with(|| c.name.clone());

        let legacy_name = format!("{}{LEGACY_SUFFIX}", c.name);
        let legacy = self.legacy_copy(c, &legacy_name, cmd, &state, notes);
        self.container(adds, legacy_name, Value::Object(legacy));
    }

    fn native_copy(
        &self,
        c: &ContainerSpec,
        cmd: &[String],
        state: &str,
        notes: &mut Notes,
    ) -> Map<String, Value> {
        let mut native = c.raw.clone();
        let mut n_cmd: Vec<String> = [SHIM_BIN, "native", "--state", state, "--"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        n_cmd.extend(cmd.iter().cloned());
        set_command(&mut native, n_cmd);
        push_to(&mut native, "volumeMounts", shim_mount());
        if self.probe {
            native.insert("restartPolicy".into(), json!("Always"));
            if native.contains_key("startupProbe") {
                notes.warn(format!(
                    "{}: its startupProbe is replaced by sidecar-shim's detection probe",
                    c.name
                ));
            }
            native.insert(
                "startupProbe".into(),
                json!({
                    "exec": {"command": strings(&[SHIM_BIN, "probe", "--state", state])},
                    "periodSeconds": 1,
                    "failureThreshold": 60
                }),
            );
        } else {
            for k in [
                "startupProbe",
                "livenessProbe",
                "readinessProbe",
                "lifecycle",
            ] {
                if native.remove(k).is_some() {
                    notes.warn(format!("{}: {k} removed from the native copy: the API server drops restartPolicy, and a plain init container may not have it", c.name));
                }
            }
        }
        native
    }

    /// The legacy copy: no liveness or startup probe, no host ports (the native copy holds
    /// them), its readiness check through the shim.
    fn legacy_copy(
        &self,
        c: &ContainerSpec,
        legacy_name: &str,
        cmd: &[String],
        state: &str,
        notes: &mut Notes,
    ) -> Map<String, Value> {
        let mut legacy = c.raw.clone();
        legacy.insert("name".into(), json!(legacy_name));
        set_command(&mut legacy, self.shim_command(&c.name, cmd));
        legacy.remove("livenessProbe");
        legacy.remove("startupProbe");
        if let Some(Value::Array(ports)) = legacy.get_mut("ports") {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("hostPort");
            }
        }
        if let Some(Value::Object(rp)) = c.raw.get("readinessProbe") {
            let probe = ready_probe(rp, &c.raw, state, notes);
            legacy.insert("readinessProbe".into(), probe);
        }
        self.shim_volume_and_env(&mut legacy);
        legacy
    }
}
