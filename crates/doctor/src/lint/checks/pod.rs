//! `pod.*`: what the API server rejects in any pod: container names, images, volumes and
//! the pod's restartPolicy.

use crate::lint::view::{TemplateView, name};
use crate::report::{Finding, Severity};
use serde_json::Value;
use sidecar_kit_core::profile::is_dns_label;
use std::collections::{BTreeMap, BTreeSet};

/// `pod.duplicate-container-name`: names are unique across init and regular containers.
pub(super) fn duplicate_container_name(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for (list, c) in t.containers() {
        let name = name(c);
        if let Some(first) = seen.insert(name, list) {
            out.push(t.finding(
                "pod.duplicate-container-name",
                Severity::Error,
                format!("container name {name:?} is used in {first} and in {list}"),
                "give every container of a pod a unique name (the API server rejects duplicates)",
            ));
        }
    }
    out
}

/// `pod.invalid-container-name`: every name is a DNS label.
pub(super) fn invalid_container_name(t: &TemplateView<'_>) -> Vec<Finding> {
    t.containers()
        .map(|(_, c)| name(c))
        .filter(|name| !is_dns_label(name))
        .map(|name| {
            t.finding(
                "pod.invalid-container-name",
                Severity::Error,
                format!("container name {name:?} is not a DNS-1123 label"),
                "use at most 63 lowercase letters, digits and '-'",
            )
        })
        .collect()
}

/// `pod.missing-image`: a Pod's containers have an image (workload templates may get
/// theirs later, e.g. from a policy).
pub(super) fn missing_image(t: &TemplateView<'_>) -> Vec<Finding> {
    if t.kind != "Pod" {
        return Vec::new();
    }
    t.containers()
        .map(|(_, c)| c)
        .filter(|c| {
            c.get("image")
                .and_then(Value::as_str)
                .is_none_or(|i| i.trim().is_empty())
        })
        .map(|c| {
            t.finding(
                "pod.missing-image",
                Severity::Error,
                format!("container {:?} has no image", name(c)),
                "give the image",
            )
        })
        .collect()
}

/// `pod.mount-without-volume`: every mount names a volume of the pod (not checked on
/// profiles: `profiles validate` and injection do, against the pod).
pub(super) fn mount_without_volume(t: &TemplateView<'_>) -> Vec<Finding> {
    if t.profile {
        // A profile's sidecars may mount the app pod's volumes.
        return Vec::new();
    }
    let volumes: BTreeSet<&str> = t.volumes.iter().copied().collect();
    let mut out = Vec::new();
    for (_, c) in t.containers() {
        let name = name(c);
        for m in c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let v = m.get("name").and_then(Value::as_str).unwrap_or("");
            if !volumes.contains(v) {
                out.push(t.finding(
                    "pod.mount-without-volume",
                    Severity::Error,
                    format!(
                        "container {name:?} mounts volume {v:?}, which the pod does not define"
                    ),
                    "add the volume to spec.volumes, or fix the name",
                ));
            }
        }
    }
    out
}

/// `pod.duplicate-volume-name`: volume names are unique.
pub(super) fn duplicate_volume_name(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut seen = BTreeSet::new();
    t.volumes
        .iter()
        .filter(|v| !seen.insert(**v))
        .map(|v| {
            t.finding(
                "pod.duplicate-volume-name",
                Severity::Error,
                format!("volume {v:?} is defined twice"),
                "remove or rename one",
            )
        })
        .collect()
}

/// `pod.invalid-restart-policy`: the pod's restartPolicy is one of the three.
pub(super) fn invalid_restart_policy(t: &TemplateView<'_>) -> Vec<Finding> {
    let policy = t.restart_policy;
    if ["Always", "OnFailure", "Never"].contains(&policy) {
        return Vec::new();
    }
    vec![t.finding(
        "pod.invalid-restart-policy",
        Severity::Error,
        format!("restartPolicy {policy:?} is not Always, OnFailure or Never"),
        "use one of them",
    )]
}
