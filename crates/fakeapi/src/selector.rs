//! Label and field selectors with the grammar of k8s.io/apimachinery `labels.Parse` and
//! `fields.ParseSelector`.

use serde_json::Value;

use crate::resources::ResourceDef;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    NotExists,
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed `labelSelector`; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

impl LabelSelector {
    /// Parses the query parameter; the error is the message of the 400 reply.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for part in split_top(s) {
            reqs.push(parse_requirement(part.trim())?);
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj["metadata"]["labels"].as_object();
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| {
            let v = get(&r.key);
            match &r.op {
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => v.is_none_or(|v| !xs.iter().any(|x| x == v)),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

fn parse_requirement(p: &str) -> Result<Requirement, String> {
    let err = |m: String| format!("unable to parse requirement: {m}");
    if p.is_empty() {
        return Err(err("found '', expected: identifier".into()));
    }
    if let Some(key) = p.strip_prefix('!') {
        let key = key.trim();
        if !valid_key(key) {
            return Err(err(format!("invalid label key {key:?}")));
        }
        return Ok(Requirement {
            key: key.into(),
            op: Op::NotExists,
        });
    }
    let key_end = p
        .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '<' | '>' | '('))
        .unwrap_or(p.len());
    let key = &p[..key_end];
    if !valid_key(key) {
        return Err(err(format!("invalid label key {key:?}")));
    }
    let rest = p[key_end..].trim_start();
    let value = |v: &str| -> Result<String, String> {
        let v = v.trim();
        if valid_value(v) {
            Ok(v.to_string())
        } else {
            Err(err(format!(
                "values[0][{key}]: Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
            )))
        }
    };
    let set = |rest: &str| -> Result<Vec<String>, String> {
        let rest = rest.trim();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| err(format!("found {rest:?}, expected: '('")))?;
        inner.split(',').map(value).collect()
    };
    let op = if rest.is_empty() {
        Op::Exists
    } else if let Some(v) = rest.strip_prefix("==") {
        Op::Eq(value(v)?)
    } else if let Some(v) = rest.strip_prefix("!=") {
        Op::NotEq(value(v)?)
    } else if let Some(v) = rest.strip_prefix('=') {
        Op::Eq(value(v)?)
    } else if let Some(v) = rest.strip_prefix('>') {
        Op::Gt(
            v.trim()
                .parse()
                .map_err(|_| err(format!("invalid integer {v:?}")))?,
        )
    } else if let Some(v) = rest.strip_prefix('<') {
        Op::Lt(
            v.trim()
                .parse()
                .map_err(|_| err(format!("invalid integer {v:?}")))?,
        )
    } else if let Some(v) = rest.strip_prefix("notin") {
        Op::NotIn(set(v)?)
    } else if let Some(v) = rest.strip_prefix("in") {
        Op::In(set(v)?)
    } else {
        return Err(err(format!(
            "found {rest:?}, expected: in, notin, =, ==, !=, gt, lt"
        )));
    };
    Ok(Requirement {
        key: key.into(),
        op,
    })
}

/// A parsed `fieldSelector` (`=`, `==`, `!=`, joined by commas).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses and checks the field labels the resource supports; the error is the message
    /// of the 400 reply.
    pub fn parse(s: &str, def: &ResourceDef) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for part in s.split(',') {
            let part = part.trim();
            let (key, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let key = key.trim();
            let supported = key == "metadata.name"
                || (key == "metadata.namespace" && def.namespaced)
                || def.field_labels.iter().any(|f| f == key);
            if !supported {
                return Err(format!("field label not supported: {key}"));
            }
            reqs.push((key.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether the object's fields match.
    pub fn matches(&self, obj: &Value, def: &ResourceDef) -> bool {
        self.reqs
            .iter()
            .all(|(k, eq, v)| (field_value(obj, k, def) == *v) == *eq)
    }
}

/// The string the API server compares for a field label (Go's zero value when absent).
fn field_value(obj: &Value, key: &str, def: &ResourceDef) -> String {
    let path: String = match (def.group.as_str(), key) {
        ("events.k8s.io", k) if k.starts_with("involvedObject.") => {
            k.replacen("involvedObject.", "regarding.", 1)
        }
        ("events.k8s.io", "reportingComponent") => "reportingController".into(),
        ("events.k8s.io", "source") => "deprecatedSource.component".into(),
        ("", "source") => "source.component".into(),
        (_, k) => k.into(),
    };
    let mut cur = obj;
    for seg in path.split('.') {
        cur = &cur[seg];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null if matches!(key, "spec.unschedulable" | "spec.hostNetwork") => "false".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app!=web"));
        assert!(m("missing!=x"));
        assert!(m("tier in (front, back)"));
        assert!(!m("tier notin (front)"));
        assert!(m("missing notin (front)"));
        assert!(m("app"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("app=web,tier in (front),!missing"));
        assert!(m("n>4"));
        assert!(!m("n<4"));
        assert!(m(""));
        assert!(LabelSelector::parse("app in front").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn field_selectors() {
        let defs = crate::resources::builtin();
        let nodes = defs.iter().find(|d| d.plural == "nodes").unwrap();
        let n = json!({"metadata": {"name": "n1"}, "spec": {}});
        let f = |s: &str| FieldSelector::parse(s, nodes).unwrap().matches(&n, nodes);
        assert!(f("metadata.name=n1"));
        assert!(!f("metadata.name!=n1"));
        assert!(f("spec.unschedulable=false"));
        assert!(FieldSelector::parse("metadata.namespace=x", nodes).is_err());
        assert_eq!(
            FieldSelector::parse("spec.foo=1", nodes).unwrap_err(),
            "field label not supported: spec.foo"
        );
    }
}
