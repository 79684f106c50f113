//! Legacy mode: each sidecar becomes a regular container, run under `sidecar-shim legacy`
//! where the pod is a Job's (Job-safe wiring).

use super::jobsafe::JobSafe;
use super::shim::{legacy_shim_command, pod_downward_env, set_command, shim_mount};
use super::{Additions, ProfileWiring};
use crate::engine::json::push_to;
use crate::profile::ContainerSpec;
use serde_json::{Map, Value};

impl ProfileWiring<'_> {
    pub(super) fn legacy(&mut self, c: &ContainerSpec, adds: &mut Additions) {
        if matches!(self.job, JobSafe::None) {
            self.container(adds, c.name.clone(), c.prepared.clone());
            return;
        }
        let mut v = c.raw.clone();
        let cmd = c.command.as_deref().unwrap_or_default();
        set_command(&mut v, self.shim_command(&c.name, cmd));
        self.shim_volume_and_env(&mut v);
        self.container(adds, c.name.clone(), Value::Object(v));
    }

    /// The command that runs sidecar `name` under `sidecar-shim legacy`.
    pub(super) fn shim_command(&self, name: &str, cmd: &[String]) -> Vec<String> {
        legacy_shim_command(name, self.restart_policy, &self.job, cmd)
    }

    /// What a sidecar under `sidecar-shim legacy` needs: the shim's volume and, for
    /// `jobCompletion: api`, the pod's name and namespace.
    pub(super) fn shim_volume_and_env(&self, v: &mut Map<String, Value>) {
        push_to(v, "volumeMounts", shim_mount());
        if matches!(self.job, JobSafe::Api(_)) {
            pod_downward_env(v);
        }
    }
}
