//! `sidecar-kit.*`: sidecar-kit's own annotation on a template.

use crate::lint::view::TemplateView;
use crate::report::{Finding, Severity};
use sidecar_kit_core::status::{STATUS_ANNOTATION, Status};

/// `sidecar-kit.bad-status`: the status annotation can be read, or sidecar-kit cannot
/// update or remove what it injected.
pub(super) fn bad_status(t: &TemplateView<'_>) -> Vec<Finding> {
    let Some(Err(e)) = t.status.map(Status::parse) else {
        return Vec::new();
    };
    vec![t.finding("sidecar-kit.bad-status", Severity::Warning, format!("annotation {STATUS_ANNOTATION} cannot be read ({e}): sidecar-kit cannot update or remove what it injected"), "remove the annotation and what it describes, then inject again")]
}
