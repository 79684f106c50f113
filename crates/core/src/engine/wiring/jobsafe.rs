//! Job safety: how the shim of a legacy sidecar learns that a Job's apps are done, so that
//! the Job completes: tombstones the wrapped apps leave on exit, or the API.

use super::Additions;
use super::apps::AppContainer;
use super::shim::{SHIM_MOUNT, shim_mount, wrap_app};
use crate::engine::applists::{AppAdd, AppList};
use crate::engine::notes::Notes;
use crate::profile::{JobCompletion, Profile};
use crate::status::{Added, AppItem};

/// How the shim of a legacy sidecar learns that a Job's apps are done.
#[derive(Clone)]
pub(super) enum JobSafe {
    None,
    Tombstones(Vec<String>),
    Api(Vec<String>),
}

/// The Job-safe wiring of a profile whose sidecars run as legacy containers in a pod that
/// does not restart them; none (with a warning) where it cannot work.
pub(super) fn choose(
    p: &Profile,
    windows: bool,
    apps: &[AppContainer<'_, '_>],
    notes: &mut Notes,
) -> JobSafe {
    if windows {
        notes.warn(format!("profile {}: Job-safe wiring skipped: Windows pods cannot run sidecar-shim; the Job will not complete while the sidecar runs", p.name));
        return JobSafe::None;
    }
    if let Some(c) = p.spec.containers.iter().find(|c| c.command.is_none()) {
        notes.warn(format!("profile {}: Job-safe wiring skipped: sidecar {:?} has no command to wrap; the Job will not complete while it runs", p.name, c.name));
        return JobSafe::None;
    }
    let names: Vec<String> = apps.iter().map(|a| a.c.view.name.to_string()).collect();
    match p.spec.job_completion {
        JobCompletion::Api => JobSafe::Api(names),
        JobCompletion::Tombstone => match apps.iter().find(|a| a.base_command.is_none()) {
            Some(a) => {
                notes.warn(format!("profile {}: Job-safe wiring skipped: app container {:?} has no explicit command, so it cannot be wrapped to record its exit (the webhook cannot read image entrypoints); give it a command, or use jobCompletion: api", p.name, a.c.view.name));
                JobSafe::None
            }
            None => JobSafe::Tombstones(names),
        },
    }
}

/// Wraps every app command in `sidecar-shim app`, which leaves a tombstone on exit, and
/// mounts the shim's volume where the app does not already mount its own there.
pub(super) fn wrap_apps(
    apps: &[AppContainer<'_, '_>],
    prev: &Added,
    adds: &mut Additions,
    added: &mut Added,
) {
    for a in apps {
        let Some(cmd) = &a.base_command else {
            continue;
        };
        let name = &a.c.view.name;
        adds.app_commands.insert(a.index, wrap_app(name, cmd));
        added.app_commands.push(name.to_string());
        let mounts = AppList::Mounts;
        if !mounts
            .keys(&a.c.view)
            .any(|k| k == SHIM_MOUNT && !mounts.is_ours(prev, name, SHIM_MOUNT))
        {
            adds.app_mounts.push(AppAdd {
                index: a.index,
                key: SHIM_MOUNT.to_string(),
                value: shim_mount().into(),
            });
            added.app_mounts.push(AppItem {
                container: name.to_string(),
                name: SHIM_MOUNT.to_string(),
            });
        }
    }
}
