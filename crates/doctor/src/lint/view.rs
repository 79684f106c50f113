//! A pod template as the lint checks read it: its containers as JSON, its volumes, its
//! restart policy and sidecar-kit's annotation, and the object the findings name.

use crate::report::{Finding, Severity};
use serde_json::Value;
use sidecar_kit_core::pod::Template;
use sidecar_kit_core::status::STATUS_ANNOTATION;

/// One pod template, read once for every check.
pub(super) struct TemplateView<'t> {
    /// What the findings name: the document, and the template's place in it.
    object: &'t str,
    /// Kind of the object that holds the template (Pod, Deployment, Job, ...).
    pub kind: &'t str,
    pub init: Vec<Value>,
    pub regular: Vec<Value>,
    /// Volume names in the order written, repeats kept.
    pub volumes: Vec<&'t str>,
    /// The pod's restartPolicy (Always when not written).
    pub restart_policy: &'t str,
    /// sidecar-kit's status annotation, as written.
    pub status: Option<&'t str>,
    /// A SidecarProfile's containers as they would be injected, not a pod: app containers
    /// follow, and the pod's volumes are not known.
    pub profile: bool,
}

impl<'t> TemplateView<'t> {
    pub fn of(t: &'t Template<'_>, object: &'t str) -> TemplateView<'t> {
        TemplateView {
            object,
            kind: &t.kind,
            init: t.spec.init_containers.iter().map(|c| c.value()).collect(),
            regular: t.spec.containers.iter().map(|c| c.value()).collect(),
            volumes: t.spec.volumes.iter().map(|v| &*v.name).collect(),
            restart_policy: t.spec.restart_policy.as_deref().unwrap_or("Always"),
            status: t.meta.annotation(STATUS_ANNOTATION),
            profile: false,
        }
    }

    /// The view of a SidecarProfile, linted as the pod template [`crate::lint`] built
    /// from it.
    pub fn of_profile(t: &'t Template<'_>, object: &'t str) -> TemplateView<'t> {
        TemplateView {
            kind: "SidecarProfile",
            profile: true,
            ..TemplateView::of(t, object)
        }
    }

    /// A Job's or CronJob's template.
    pub fn of_job(&self) -> bool {
        self.kind == "Job" || self.kind == "CronJob"
    }

    /// Whether the pod is meant to finish: a Job's, or one that does not restart.
    pub fn runs_to_completion(&self) -> bool {
        self.restart_policy != "Always" || self.of_job()
    }

    /// Every container with the list it is in: init containers first.
    pub fn containers(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        let init = self.init.iter().map(|c| ("initContainers", c));
        init.chain(self.regular.iter().map(|c| ("containers", c)))
    }

    /// How many init containers are native sidecars (`restartPolicy: Always`).
    pub fn sidecars(&self) -> usize {
        self.init
            .iter()
            .filter(|c| restart_policy(c) == Some("Always"))
            .count()
    }

    /// What the findings name.
    pub fn object(&self) -> &'t str {
        self.object
    }

    /// A finding about this template.
    pub fn finding(&self, check: &str, severity: Severity, message: String, fix: &str) -> Finding {
        Finding::new(
            check,
            severity,
            Some(self.object.to_string()),
            message,
            Some(fix.to_string()),
        )
    }
}

/// A container's name ("" without one).
pub(super) fn name(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

/// A container's restartPolicy, when it is a string.
pub(super) fn restart_policy(c: &Value) -> Option<&str> {
    c.get("restartPolicy").and_then(Value::as_str)
}
