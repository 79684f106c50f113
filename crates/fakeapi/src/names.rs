//! Object names as the real API server checks them on create (k8s.io/apimachinery
//! `ValidateObjectMeta` with each kind's name rule): `metadata.generateName` as a prefix
//! (a trailing '-' masked first), then the name given or generated from it. Messages,
//! fields and reasons are the real server's, so clients see the same 422.

use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::FieldError;
use crate::util;

/// The longest prefix the name generator keeps (63 minus the random part), as the real
/// `SimpleNameGenerator`.
const MAX_GENERATED_PREFIX: usize = 58;

/// A name of `prefix`, cut to 58 bytes, with 5 random characters appended.
pub(crate) fn generate(prefix: &str) -> String {
    let mut end = prefix.len().min(MAX_GENERATED_PREFIX);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &prefix[..end], util::name_suffix())
}

/// How a kind's names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// RFC 1123 subdomain, at most 253 characters: most kinds.
    Subdomain,
    /// RFC 1123 label, at most 63: Namespaces.
    Label,
    /// RFC 1035 label (starts with a letter), at most 63: Services.
    Dns1035,
    /// Anything a URL path segment can carry: RBAC roles and bindings.
    PathSegment,
}

fn rule(group: &str, kind: &str) -> Rule {
    match (group, kind) {
        ("", "Namespace") => Rule::Label,
        ("", "Service") => Rule::Dns1035,
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => Rule::PathSegment,
        _ => Rule::Subdomain,
    }
}

const LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `msg (e.g. 'a' or 'b', regex used for validation is 'fmt')`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "{msg} (e.g. {}, regex used for validation is '{fmt}')",
        examples.join(" or ")
    )
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && b.iter().all(|c| edge(c) || *c == b'-')
        }
        _ => false,
    }
}

fn is_subdomain(s: &str) -> bool {
    s.split('.').all(is_label)
}

fn is_dns1035(s: &str) -> bool {
    is_label(s) && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// A prefix may end with '-': the real server replaces its last two bytes with "a" before
/// checking (so the length allowance is one byte more than the name's).
fn mask_trailing_dash(prefix: &str) -> String {
    if !prefix.ends_with('-') {
        return prefix.to_string();
    }
    let b = prefix.as_bytes();
    let mut masked = b[..b.len().saturating_sub(2)].to_vec();
    masked.push(b'a');
    String::from_utf8_lossy(&masked).into_owned()
}

/// What is wrong with `value` under `rule` (`prefix`: a generateName).
fn problems(rule: Rule, value: &str, prefix: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if rule == Rule::PathSegment {
        if !prefix && (value == "." || value == "..") {
            return vec![format!("may not be '{value}'")];
        }
        for bad in ["/", "%"] {
            if value.contains(bad) {
                errs.push(format!("may not contain '{bad}'"));
            }
        }
        return errs;
    }
    let value = if prefix {
        mask_trailing_dash(value)
    } else {
        value.to_string()
    };
    match rule {
        Rule::Subdomain => {
            if value.len() > 253 {
                errs.push(max_len(253));
            }
            if !is_subdomain(&value) {
                errs.push(regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                    SUBDOMAIN_FMT,
                    &["example.com"],
                ));
            }
        }
        Rule::Label => {
            if value.len() > 63 {
                errs.push(max_len(63));
            }
            if !is_label(&value) {
                if is_subdomain(&value) {
                    errs.push("must not contain dots".into());
                } else {
                    errs.push(regex_error(
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                        LABEL_FMT,
                        &["my-name", "123-abc"],
                    ));
                }
            }
        }
        Rule::Dns1035 => {
            if value.len() > 63 {
                errs.push(max_len(63));
            }
            if !is_dns1035(&value) {
                errs.push(regex_error(
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
                    DNS1035_FMT,
                    &["my-name", "abc-123"],
                ));
            }
        }
        Rule::PathSegment => {}
    }
    errs
}

/// The kind's own name rule: the generic one, plus a CRD's `<plural>.<group>` and a
/// CronJob's 52-character limit (its Jobs get an 11-character suffix).
fn kind_problems(def: &ResourceDef, obj: &Value, value: &str, prefix: bool) -> Vec<String> {
    let mut errs = problems(rule(&def.group, &def.kind), value, prefix);
    if def.group == "apiextensions.k8s.io" && def.kind == "CustomResourceDefinition" {
        let required = format!(
            "{}.{}",
            obj["spec"]["names"]["plural"].as_str().unwrap_or(""),
            obj["spec"]["group"].as_str().unwrap_or("")
        );
        if value != required {
            errs.push("must be spec.names.plural+\".\"+spec.group".into());
        }
    }
    errs
}

/// The errors of `metadata.generateName` and `metadata.name` of an object about to be
/// created (its name already generated), in the real server's order.
pub(crate) fn validate(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let meta = &obj["metadata"];
    let mut errs = Vec::new();
    if let Some(prefix) = meta["generateName"].as_str().filter(|p| !p.is_empty()) {
        for msg in kind_problems(def, obj, prefix, true) {
            errs.push(FieldError::invalid("metadata.generateName", prefix, msg));
        }
    }
    match meta["name"].as_str().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            for msg in kind_problems(def, obj, name, false) {
                errs.push(FieldError::invalid("metadata.name", name, msg));
            }
            if def.group == "batch" && def.kind == "CronJob" && name.len() > 52 {
                errs.push(FieldError::invalid(
                    "metadata.name",
                    name,
                    "must be no more than 52 characters",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn def(group: &str, kind: &str) -> ResourceDef {
        crate::resources::builtin()
            .into_iter()
            .find(|d| d.group == group && d.kind == kind)
            .unwrap_or_else(|| {
                let mut d = crate::resources::builtin().remove(0);
                d.group = group.into();
                d.kind = kind.into();
                d
            })
    }

    fn errors(group: &str, kind: &str, meta: Value) -> Vec<String> {
        validate(&def(group, kind), &json!({ "metadata": meta }))
            .iter()
            .map(FieldError::render)
            .collect()
    }

    #[test]
    fn rbac_names_are_path_segments() {
        let rbac = "rbac.authorization.k8s.io";
        for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
            assert!(
                errors(rbac, kind, json!({"name": "system:auth-delegator"})).is_empty(),
                "{kind}"
            );
            assert!(errors(rbac, kind, json!({"name": "Upper_Case.x"})).is_empty());
        }
        assert_eq!(
            errors(rbac, "ClusterRole", json!({"name": ".."})),
            ["metadata.name: Invalid value: \"..\": may not be '..'"]
        );
        assert_eq!(
            errors(rbac, "Role", json!({"name": "a/b%c"})),
            [
                "metadata.name: Invalid value: \"a/b%c\": may not contain '/'",
                "metadata.name: Invalid value: \"a/b%c\": may not contain '%'"
            ]
        );
        // A prefix may be '.' (a suffix follows), not contain '/'.
        assert!(errors(rbac, "Role", json!({"generateName": ".", "name": ".x"})).is_empty());
    }

    #[test]
    fn namespaces_are_labels_and_services_dns1035_labels() {
        assert_eq!(
            errors("", "Namespace", json!({"name": "shop.eu"})),
            ["metadata.name: Invalid value: \"shop.eu\": must not contain dots"]
        );
        assert!(errors("", "Namespace", json!({"name": "1shop"})).is_empty());
        let long = "a".repeat(64);
        assert_eq!(
            errors("", "Namespace", json!({ "name": long })),
            [format!(
                "metadata.name: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
        assert_eq!(
            errors("", "Service", json!({"name": "1web"})),
            [
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert!(errors("", "Service", json!({"name": "web"})).is_empty());
    }

    #[test]
    fn prefixes_mask_a_trailing_dash_only() {
        assert!(
            errors(
                "",
                "Pod",
                json!({"generateName": "web-", "name": "web-x2b4z"})
            )
            .is_empty()
        );
        assert_eq!(
            errors(
                "",
                "Pod",
                json!({"generateName": "web.", "name": "web.x2b4z"})
            )
            .len(),
            1
        );
        // The mask takes two bytes off: 253 bytes and a '-' still fit.
        let prefix = format!("{}-", "a".repeat(253));
        assert!(
            errors(
                "",
                "ConfigMap",
                json!({"generateName": prefix, "name": "a"})
            )
            .is_empty()
        );
    }

    #[test]
    fn a_crd_is_named_plural_dot_group() {
        let d = def("apiextensions.k8s.io", "CustomResourceDefinition");
        let crd = |name: &str| json!({"metadata": {"name": name}, "spec": {"group": "example.com", "names": {"plural": "widgets"}}});
        assert!(validate(&d, &crd("widgets.example.com")).is_empty());
        let errs: Vec<String> = validate(&d, &crd("widget.example.com"))
            .iter()
            .map(FieldError::render)
            .collect();
        assert_eq!(
            errs,
            [
                "metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group"
            ]
        );
    }

    #[test]
    fn generated_names_keep_58_bytes_of_the_prefix() {
        let long = "p".repeat(80);
        let name = generate(&long);
        assert_eq!(name.len(), 63);
        assert!(name.starts_with(&"p".repeat(58)));
        assert_eq!(generate("web-").len(), 9);
    }
}
