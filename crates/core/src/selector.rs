//! Kubernetes label selectors (`matchLabels` + `matchExpressions`), evaluated on label maps.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A `metav1.LabelSelector`. An empty selector matches everything, as in Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<SelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// Read access to a label map, so that borrowed and owned maps can both be matched.
pub trait Labels {
    fn get_label(&self, key: &str) -> Option<&str>;
}

impl<K: std::borrow::Borrow<str> + Ord, V: AsRef<str>> Labels for BTreeMap<K, V> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(AsRef::as_ref)
    }
}

/// No labels at all (a pod without `metadata.labels`).
pub struct NoLabels;

impl Labels for NoLabels {
    fn get_label(&self, _key: &str) -> Option<&str> {
        None
    }
}

impl LabelSelector {
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get_label(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Checks the structural rules Kubernetes applies (`In`/`NotIn` need values,
    /// `Exists`/`DoesNotExist` take none). Returns (field, message, fix).
    pub fn validate(&self) -> Result<(), (String, String, String)> {
        for (i, r) in self.match_expressions.iter().enumerate() {
            let field = format!("matchExpressions[{i}].values");
            match r.operator {
                SelectorOperator::In | SelectorOperator::NotIn if r.values.is_empty() => {
                    return Err((
                        field,
                        format!("operator {:?} needs at least one value", r.operator),
                        "list the label values to compare with".into(),
                    ));
                }
                SelectorOperator::Exists | SelectorOperator::DoesNotExist
                    if !r.values.is_empty() =>
                {
                    return Err((
                        field,
                        format!("operator {:?} takes no values", r.operator),
                        "remove values, or use In/NotIn".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// True when no label map can satisfy both selectors (a sufficient, not necessary, test).
    pub fn disjoint(&self, other: &LabelSelector) -> bool {
        let allowed = |s: &LabelSelector, key: &str| -> Option<Option<Vec<String>>> {
            // Some(None): key must be absent; Some(Some(vals)): key must be one of vals.
            let mut set: Option<Vec<String>> = s.match_labels.get(key).map(|v| vec![v.clone()]);
            let mut absent = false;
            for r in s.match_expressions.iter().filter(|r| r.key == key) {
                match r.operator {
                    SelectorOperator::In => {
                        set = Some(match set {
                            Some(cur) => cur.into_iter().filter(|v| r.values.contains(v)).collect(),
                            None => r.values.clone(),
                        })
                    }
                    SelectorOperator::DoesNotExist => absent = true,
                    _ => {}
                }
            }
            match (absent, set) {
                (true, _) => Some(None),
                (false, Some(v)) => Some(Some(v)),
                (false, None) => None,
            }
        };
        let forbidden = |s: &LabelSelector, key: &str, value: &str| {
            s.match_expressions.iter().any(|r| {
                r.key == key
                    && r.operator == SelectorOperator::NotIn
                    && r.values.iter().any(|v| v == value)
            })
        };
        let needs_present = |s: &LabelSelector, key: &str| {
            s.match_labels.contains_key(key)
                || s.match_expressions.iter().any(|r| {
                    r.key == key
                        && matches!(r.operator, SelectorOperator::In | SelectorOperator::Exists)
                })
        };
        let keys = self
            .match_labels
            .keys()
            .chain(self.match_expressions.iter().map(|r| &r.key))
            .chain(other.match_labels.keys())
            .chain(other.match_expressions.iter().map(|r| &r.key));
        for key in keys {
            let (a, b) = (allowed(self, key), allowed(other, key));
            match (&a, &b) {
                (Some(None), _) if needs_present(other, key) => return true,
                (_, Some(None)) if needs_present(self, key) => return true,
                (Some(Some(x)), Some(Some(y))) if !x.iter().any(|v| y.contains(v)) => return true,
                _ => {}
            }
            if let Some(Some(x)) = &a
                && x.iter().all(|v| forbidden(other, key, v))
            {
                return true;
            }
            if let Some(Some(y)) = &b
                && y.iter().all(|v| forbidden(self, key, v))
            {
                return true;
            }
        }
        false
    }
}

impl SelectorRequirement {
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        let v = labels.get_label(&self.key);
        match self.operator {
            SelectorOperator::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            SelectorOperator::NotIn => v.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            SelectorOperator::Exists => v.is_some(),
            SelectorOperator::DoesNotExist => v.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(json: &str) -> LabelSelector {
        serde_json::from_str(json).unwrap()
    }
    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&NoLabels));
    }

    #[test]
    fn operators() {
        let s = sel(r#"{"matchLabels":{"app":"web"},"matchExpressions":[
            {"key":"tier","operator":"In","values":["a","b"]},
            {"key":"env","operator":"NotIn","values":["prod"]},
            {"key":"team","operator":"Exists"},
            {"key":"legacy","operator":"DoesNotExist"}]}"#);
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("team", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("team", "x"),
            ("env", "prod")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("team", "x"),
            ("legacy", "")
        ])));
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "a"), ("team", "x")])));
    }

    #[test]
    fn unknown_operator_is_rejected() {
        let e = serde_json::from_str::<LabelSelector>(
            r#"{"matchExpressions":[{"key":"a","operator":"Gt","values":["1"]}]}"#,
        );
        assert!(e.is_err());
    }

    #[test]
    fn validate_values() {
        assert!(
            sel(r#"{"matchExpressions":[{"key":"a","operator":"In"}]}"#)
                .validate()
                .is_err()
        );
        assert!(
            sel(r#"{"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]}"#)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn disjointness() {
        let web = sel(r#"{"matchLabels":{"app":"web"}}"#);
        let api = sel(r#"{"matchLabels":{"app":"api"}}"#);
        let any = LabelSelector::default();
        let no_app = sel(r#"{"matchExpressions":[{"key":"app","operator":"DoesNotExist"}]}"#);
        let not_web =
            sel(r#"{"matchExpressions":[{"key":"app","operator":"NotIn","values":["web"]}]}"#);
        let in_web_api =
            sel(r#"{"matchExpressions":[{"key":"app","operator":"In","values":["web","api"]}]}"#);
        assert!(web.disjoint(&api));
        assert!(!web.disjoint(&any));
        assert!(web.disjoint(&no_app));
        assert!(no_app.disjoint(&web));
        assert!(web.disjoint(&not_web));
        assert!(!api.disjoint(&not_web));
        assert!(!in_web_api.disjoint(&api));
        assert!(!web.disjoint(&web));
    }
}
