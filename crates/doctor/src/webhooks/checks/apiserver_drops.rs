//! `webhooks.apiserver-drops-restart-policy`: the API server itself drops the field, so
//! every pod loses it whatever the webhooks do.

use crate::report::{Finding, Severity};
use sidecar_kit_core::version::FieldKept;

pub(in crate::webhooks) fn check(kept: &FieldKept) -> Option<Finding> {
    let FieldKept::No(reason) = kept else {
        return None;
    };
    Some(Finding::new(
        "webhooks.apiserver-drops-restart-policy",
        Severity::Error,
        Some("API server".into()),
        format!("{reason}: every pod loses restartPolicy, whatever the webhooks do"),
        Some("turn the SidecarContainers gate on for the API server, or upgrade it (see doctor cluster)".into()),
    ))
}
