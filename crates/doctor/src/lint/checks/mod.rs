//! The lint checks, one function per check, in files named after the first part of the
//! check's id (`pod.missing-image` is [`pod::missing_image`]). Each reads a
//! [`TemplateView`] and returns its findings.

use super::view::TemplateView;
use crate::report::Finding;

mod container;
mod init;
mod job;
mod pod;
mod sidecar;
mod sidecar_kit;

/// A lint check.
pub(super) type Check = fn(&TemplateView<'_>) -> Vec<Finding>;

/// Every check, run on every template.
pub(super) const ALL: [Check; 14] = [
    pod::duplicate_container_name,
    pod::invalid_container_name,
    pod::missing_image,
    pod::mount_without_volume,
    pod::duplicate_volume_name,
    pod::invalid_restart_policy,
    init::invalid_restart_policy,
    init::probe_without_restart_policy,
    sidecar::no_startup_probe,
    sidecar::needs_1_29,
    container::restart_policy,
    job::legacy_sidecar,
    job::restart_policy_always,
    sidecar_kit::bad_status,
];

/// Runs one check on the first pod template of a document, for the checks' table tests.
#[cfg(test)]
fn run_on(check: Check, doc: &serde_json::Value) -> Vec<Finding> {
    let json = doc.to_string();
    let templates = sidecar_kit_core::pod::templates(&json).unwrap();
    check(&TemplateView::of(&templates[0], "x"))
}
