//! `Status` objects, the API server's error (and delete) replies, with the reasons, codes
//! and messages of the real one (k8s.io/apimachinery `errors.New*`).

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

/// An error reply: HTTP code, `reason`, `message` and `details`, rendered as a `Status`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

/// `{"name":..,"group":..,"kind":<plural>}`: what the real server puts in `details` (the
/// "kind" there is the resource, e.g. `leases`, and an empty group is left out).
pub(crate) fn details(def: &ResourceDef, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !def.group.is_empty() {
        d.insert("group".into(), def.group.clone().into());
    }
    d.insert("kind".into(), def.plural.clone().into());
    Value::Object(d)
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// The Status body.
    pub(crate) fn to_status(&self) -> Value {
        let mut s = Map::new();
        s.insert("kind".into(), "Status".into());
        s.insert("apiVersion".into(), "v1".into());
        s.insert("metadata".into(), json!({}));
        s.insert("status".into(), "Failure".into());
        s.insert("message".into(), self.message.clone().into());
        if !self.reason.is_empty() {
            s.insert("reason".into(), self.reason.into());
        }
        if let Some(d) = &self.details {
            s.insert("details".into(), d.clone());
        }
        s.insert("code".into(), self.code.into());
        Value::Object(s)
    }

    /// 404 for a path that is no resource at all (the real server's NotFound handler).
    pub(crate) fn no_route() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub(crate) fn not_found(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", def.qualified()),
        )
        .with_details(details(def, name))
    }

    pub(crate) fn already_exists(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", def.qualified()),
        )
        .with_details(details(def, name))
    }

    /// The optimistic-concurrency failure of an update with a stale resourceVersion.
    pub(crate) fn conflict(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                def.qualified()
            ),
        )
        .with_details(details(def, name))
    }

    pub(crate) fn conflict_with(def: &ResourceDef, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                def.qualified()
            ),
        )
        .with_details(details(def, name))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
        .with_details(json!({}))
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    pub(crate) fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 422 Invalid, with one cause per field error (`field.Error` strings).
    pub(crate) fn invalid(kind: &str, group: &str, name: &str, causes: &[FieldError]) -> ApiError {
        let rendered: Vec<String> = causes.iter().map(FieldError::render).collect();
        let joined = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut d = Map::new();
        d.insert("name".into(), name.into());
        if !group.is_empty() {
            d.insert("group".into(), group.into());
        }
        d.insert("kind".into(), kind.into());
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| {
                        json!({"reason": c.reason, "message": c.message_with_type(), "field": c.field})
                    })
                    .collect(),
            ),
        );
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        ApiError::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {joined}"),
        )
        .with_details(Value::Object(d))
    }

    /// 410 for a watch or continue token older than the retained history.
    pub(crate) fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }
}

/// One `field.Error` of the API server's validation.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    /// `FieldValueForbidden`, `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`.
    pub(crate) reason: &'static str,
    pub(crate) detail: String,
}

impl FieldError {
    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueForbidden",
            detail: detail.into(),
        }
    }

    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueRequired",
            detail: detail.into(),
        }
    }

    /// `Invalid value: "<value>": <detail>` (the value quoted as Go's `%q` does).
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: &str,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            detail: format!("{}: {}", go_quote(value), detail.into()),
        }
    }

    pub(crate) fn not_supported(
        field: impl Into<String>,
        value: &str,
        supported: &[&str],
    ) -> FieldError {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        FieldError {
            field: field.into(),
            reason: "FieldValueNotSupported",
            detail: format!("\"{value}\": supported values: {}", list.join(", ")),
        }
    }

    fn type_text(&self) -> &'static str {
        match self.reason {
            "FieldValueForbidden" => "Forbidden",
            "FieldValueRequired" => "Required value",
            "FieldValueNotSupported" => "Unsupported value",
            _ => "Invalid value",
        }
    }

    fn message_with_type(&self) -> String {
        format!("{}: {}", self.type_text(), self.detail)
    }

    /// `spec.initContainers[0].startupProbe: Forbidden: may not be set ...`
    pub(crate) fn render(&self) -> String {
        format!("{}: {}", self.field, self.message_with_type())
    }
}

/// A string quoted as Go's `%q`: printable characters kept, the rest escaped.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The success Status of a delete whose store does not return the object.
pub(crate) fn delete_success(def: &ResourceDef, name: &str, uid: Option<&str>) -> Value {
    let mut d = details(def, name);
    if let (Some(map), Some(uid)) = (d.as_object_mut(), uid) {
        map.insert("uid".into(), uid.into());
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}
