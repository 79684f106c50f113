//! What the API server does to a Pod on create besides storing it: defaulting, dropping
//! `restartPolicy` of init containers where the SidecarContainers gate is off, and the
//! validation rules around it (`validateInitContainers`).

use serde_json::{Map, Value, json};

use crate::status::FieldError;

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) {
        map.insert(key.into(), value);
    }
}

fn default_probe(probe: &mut Value) {
    if let Some(p) = probe.as_object_mut() {
        set_default(p, "timeoutSeconds", json!(1));
        set_default(p, "periodSeconds", json!(10));
        set_default(p, "successThreshold", json!(1));
        set_default(p, "failureThreshold", json!(3));
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let last = image.rsplit('/').next().unwrap_or_default();
    let pull = if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) {
        "IfNotPresent"
    } else {
        "Always"
    };
    set_default(m, "resources", json!({}));
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    set_default(m, "imagePullPolicy", json!(pull));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe) {
            default_probe(p);
        }
    }
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// The defaults the API server (and its default admission plugins) fill in on decode.
pub(crate) fn apply_defaults(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "serviceAccountName", json!("default"));
    set_default(spec, "serviceAccount", json!("default"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(
        spec,
        "tolerations",
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ]),
    );
    set_default(spec, "priority", json!(0));
    set_default(spec, "enableServiceLinks", json!(true));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// An API server without the SidecarContainers gate (or older than 1.28) does not know
/// the field and drops it from every init container.
pub(crate) fn drop_init_restart_policy(pod: &mut Value) {
    if let Some(cs) = pod["spec"]
        .get_mut("initContainers")
        .and_then(Value::as_array_mut)
    {
        for c in cs {
            if let Some(m) = c.as_object_mut() {
                m.remove("restartPolicy");
            }
        }
    }
}

/// The validation errors the real server reports for these fields, in its order.
pub(crate) fn validate(pod: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required("spec.containers", ""));
    }
    if let Some(inits) = spec["initContainers"].as_array() {
        for (i, c) in inits.iter().enumerate() {
            let path = format!("spec.initContainers[{i}]");
            if c["image"].as_str().unwrap_or_default().is_empty() {
                errs.push(FieldError::required(format!("{path}.image"), ""));
            }
            match c["restartPolicy"].as_str() {
                Some("Always") => {}
                Some(other) => errs.push(FieldError::not_supported(
                    format!("{path}.restartPolicy"),
                    other,
                    &["Always"],
                )),
                None => {
                    for field in [
                        "lifecycle",
                        "livenessProbe",
                        "readinessProbe",
                        "startupProbe",
                    ] {
                        if !c[field].is_null() {
                            errs.push(FieldError::forbidden(
                                format!("{path}.{field}"),
                                "may not be set for init containers without restartPolicy=Always",
                            ));
                        }
                    }
                }
            }
        }
    }
    for (i, c) in containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        if c["image"].as_str().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(format!("{path}.image"), ""));
        }
        if !c["restartPolicy"].is_null() {
            errs.push(FieldError::forbidden(
                format!("{path}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs
}

/// The status a new Pod gets.
pub(crate) fn initial_status(pod: &mut Value) {
    let guaranteed_or_burstable = ["initContainers", "containers"].iter().any(|l| {
        pod["spec"][l].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["resources"]["requests"].is_object() || c["resources"]["limits"].is_object()
            })
        })
    });
    let qos = if guaranteed_or_burstable {
        "Burstable"
    } else {
        "BestEffort"
    };
    if let Some(m) = pod.as_object_mut() {
        m.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": qos}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "proxy", "image": "envoy:1.30", "restartPolicy": "Always",
                                     "startupProbe": {"exec": {"command": ["true"]}}}],
                "containers": [{"name": "app", "image": "nginx"}]
            }
        })
    }

    #[test]
    fn defaults_keep_sidecar_field() {
        let mut p = pod();
        apply_defaults(&mut p);
        assert_eq!(p["spec"]["initContainers"][0]["restartPolicy"], "Always");
        assert_eq!(
            p["spec"]["initContainers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["initContainers"][0]["startupProbe"]["periodSeconds"],
            10
        );
        assert!(validate(&p).is_empty());
    }

    #[test]
    fn gate_off_drops_field_then_rejects_probe() {
        let mut p = pod();
        drop_init_restart_policy(&mut p);
        let errs = validate(&p);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].render(),
            "spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
        );
    }
}
