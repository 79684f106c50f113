//! The `SidecarProfile` CustomResourceDefinition, its OpenAPI schema generated from the very
//! types that parse profiles (so files and the CRD accept the same fields). The Kubernetes
//! objects inside a profile are kept as given: in the schema they preserve unknown fields,
//! so the API server never prunes fields newer than sidecar-kit's types.

use crate::profile::{API_VERSION, KIND, RawSpec};
use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

pub const GROUP: &str = "sidecar-kit.io";
pub const PLURAL: &str = "sidecarprofiles";
pub const CRD_NAME: &str = "sidecarprofiles.sidecar-kit.io";

/// Schema of a list of Kubernetes objects kept as given (containers, volumes, mounts, env).
pub fn objects_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// Schema of `position`: a word or a one-key object.
pub fn position_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Where native sidecars go among the pod's init containers: first, last, {before: NAME} or {after: NAME}.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Rewrites a JSON schema into a Kubernetes structural schema: no `$schema`, titles or
/// `additionalProperties: false` (the API server prunes instead), nullable types as
/// `nullable: true`.
fn structural(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("$schema");
            m.remove("title");
            if m.get("default") == Some(&Value::Null) {
                m.remove("default");
            }
            if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                m.remove("additionalProperties");
            }
            if let Some(Value::Array(types)) = m.get("type").cloned() {
                let non_null: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
                if let [one] = non_null.as_slice() {
                    m.insert("type".into(), one.clone());
                    m.insert("nullable".into(), Value::Bool(true));
                }
            }
            if let Some(Value::Array(any)) = m.get("anyOf").cloned()
                && any.len() == 2
                && any.iter().any(|s| s.get("type") == Some(&json!("null")))
            {
                m.remove("anyOf");
                if let Some(Value::Object(inner)) = any
                    .into_iter()
                    .find(|s| s.get("type") != Some(&json!("null")))
                {
                    for (k, x) in inner {
                        m.entry(k).or_insert(x);
                    }
                }
                m.insert("nullable".into(), Value::Bool(true));
            }
            if let Some(Value::Array(e)) = m.get_mut("enum") {
                e.retain(|x| !x.is_null());
            }
            for x in m.values_mut() {
                structural(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(structural),
        _ => {}
    }
}

/// The OpenAPI schema of `spec`.
pub fn spec_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut v = generator.into_root_schema_for::<RawSpec>().to_value();
    structural(&mut v);
    if let Value::Object(m) = &mut v {
        m.remove("components");
        m.insert(
            "description".into(),
            json!("What to inject into the pods the selectors match, and how."),
        );
    }
    v
}

fn condition_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "lastTransitionTime": {"type": "string", "format": "date-time"}
        }
    })
}

/// The CustomResourceDefinition, as `sidecar-kit crd` prints it.
pub fn sidecar_profile_crd() -> Value {
    let version = API_VERSION.rsplit('/').next().unwrap_or("v1alpha1");
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/name": "sidecar-kit", "app.kubernetes.io/part-of": "sidecar-kit"}},
        "spec": {
            "group": GROUP,
            "names": {"kind": KIND, "listKind": format!("{KIND}List"), "plural": PLURAL, "singular": "sidecarprofile", "shortNames": ["scp"], "categories": ["sidecar-kit"]},
            "scope": "Cluster",
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "description": "Injection mode (default auto)"},
                    {"name": "Fallback", "type": "string", "jsonPath": ".spec.fallback", "description": "What auto does on mixed nodes"},
                    {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"},
                    {"name": "Valid", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Valid\")].status"},
                    {"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Valid\")].message", "priority": 1},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A sidecar to inject, where, and in which mode (see the sidecar-kit README).",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(),
                        "status": {
                            "type": "object",
                            "properties": {
                                "observedGeneration": {"type": "integer", "format": "int64"},
                                "hash": {"type": "string", "description": "Content hash of the profile in force"},
                                "conditions": {"type": "array", "items": condition_schema(), "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
                            }
                        }
                    }
                }}
            }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node of a structural schema has a type, unless it preserves unknown fields.
    fn check_structural(v: &Value, path: &str) {
        let Value::Object(m) = v else { return };
        let preserves = m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        assert!(
            m.contains_key("type") || preserves,
            "{path} has no type: {v}"
        );
        assert!(
            !m.contains_key("$ref") && !m.contains_key("anyOf") && !m.contains_key("oneOf"),
            "{path}: not structural: {v}"
        );
        assert!(
            !(m.contains_key("properties") && m.contains_key("additionalProperties")),
            "{path}: properties with additionalProperties"
        );
        for key in ["properties"] {
            if let Some(Value::Object(props)) = m.get(key) {
                for (k, p) in props {
                    check_structural(p, &format!("{path}.{k}"));
                }
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(x @ Value::Object(_)) = m.get(key) {
                check_structural(x, &format!("{path}[]"));
            }
        }
    }

    #[test]
    fn the_schema_is_structural_and_covers_every_field() {
        let spec = spec_schema();
        check_structural(&spec, "spec");
        let props = spec["properties"].as_object().unwrap();
        for f in [
            "selector",
            "namespaceSelector",
            "mode",
            "fallback",
            "position",
            "containers",
            "initContainers",
            "volumes",
            "appContainers",
            "priority",
            "shim",
            "jobCompletion",
        ] {
            assert!(props.contains_key(f), "spec.{f} is in the schema");
        }
        assert_eq!(spec["required"], json!(["containers"]));
        assert!(
            !spec.to_string().contains("\"default\":null"),
            "no null defaults"
        );
        assert_eq!(
            props["containers"]["items"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(
            props["appContainers"]["properties"]["env"]["items"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(
            props["mode"]["enum"],
            json!(["native", "legacy", "affinity", "universal", "auto"])
        );
        assert_eq!(
            props["selector"]["properties"]["matchExpressions"]["items"]["properties"]["operator"]
                ["enum"],
            json!(["In", "NotIn", "Exists", "DoesNotExist"])
        );
        let crd = sidecar_profile_crd();
        check_structural(
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            "root",
        );
    }
}
