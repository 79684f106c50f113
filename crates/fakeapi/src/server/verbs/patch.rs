//! patch: JSON merge, strategic merge (as a merge patch), JSON patch and server-side
//! apply, with the optimistic concurrency of the real server.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::check_type;
use super::create::create;
use crate::managed::{self, Conflict};
use crate::server::Ctx;
use crate::server::negotiate::{body_media_type, object_response};
use crate::server::route::Target;
use crate::status::{ApiError, FieldError};
use crate::store::{Managed, UpdateMode, meta_str};

/// A patch body, by its media type.
enum PatchKind {
    Merge(Value),
    Json(json_patch::Patch),
    Apply(Value),
}

pub(in crate::server) fn patch(
    ctx: &Ctx,
    t: &Target,
    name: &str,
    bytes: &Bytes,
    mode: UpdateMode,
) -> Result<Response, ApiError> {
    let def = t.served.def.clone();
    let ns = t.ns.as_deref().unwrap_or("");
    let kind = parse_patch(ctx, bytes)?;
    let current = ctx.shared.store().get(t.served.bucket, ns, name);
    let Some(current) = current else {
        if let PatchKind::Apply(obj) = kind {
            // Server-side apply of an absent object creates it.
            if mode == UpdateMode::Status {
                return Err(ApiError::not_found(&def, name));
            }
            let mut obj = obj;
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("name".into(), name.into());
            }
            return create(ctx, &t.served, ns, obj, true);
        }
        return Err(ApiError::not_found(&def, name));
    };
    let mut doc = (*current).clone();
    let mut applied = false;
    match kind {
        PatchKind::Merge(p) => json_patch::merge(&mut doc, &p),
        PatchKind::Apply(p) => {
            check_type(&def, &p)?;
            let writer = ctx.writer(&def, mode);
            doc = managed::apply(Some(&current), &p, &writer, ctx.query.flag("force"))
                .map_err(|c| apply_conflict(&c))?;
            applied = true;
        }
        PatchKind::Json(p) => json_patch::patch(&mut doc, &p)
            .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?,
    }
    let current_rv = meta_str(&current, "resourceVersion").to_string();
    let patched_rv = meta_str(&doc, "resourceVersion").to_string();
    if !patched_rv.is_empty() && patched_rv != current_rv {
        return Err(ApiError::conflict(&def, name));
    }
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), current_rv.into());
        meta.insert("name".into(), name.into());
    }
    let managed_by = if applied {
        Managed::Precomputed
    } else {
        Managed::Record(ctx.writer(&def, mode))
    };
    let stored =
        ctx.shared
            .store()
            .update(&t.served, ns, name, doc, mode, &managed_by, ctx.dry_run())?;
    Ok(object_response(ctx, 200, &t.served, &stored))
}

/// The patch of a request body, by its Content-Type.
fn parse_patch(ctx: &Ctx, bytes: &Bytes) -> Result<PatchKind, ApiError> {
    let parse_json = || -> Result<Value, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    let kind = match body_media_type(ctx) {
        "application/merge-patch+json" => PatchKind::Merge(parse_json()?),
        "application/strategic-merge-patch+json" => {
            let mut p = parse_json()?;
            strip_directives(&mut p);
            PatchKind::Merge(p)
        }
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            PatchKind::Json(p)
        }
        "application/apply-patch+yaml" => {
            if ctx.query.get("fieldManager").unwrap_or("").is_empty() {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    &[FieldError::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                ));
            }
            PatchKind::Apply(parse_apply(bytes)?)
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(kind)
}

/// An apply configuration: JSON, else YAML.
fn parse_apply(bytes: &Bytes) -> Result<Value, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(_) => {
            let text =
                std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
    }
}

/// Strategic merge patch directives (`$patch`, `$setElementOrder/...`, `$retainKeys`)
/// are dropped: the rest is applied as a JSON merge patch.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// The 409 of an apply that would take fields another manager owns.
fn apply_conflict(conflicts: &[Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": c.who(), "field": c.field}))
        .collect();
    ApiError::new(409, "Conflict", managed::conflict_message(conflicts))
        .with_details(json!({"causes": causes}))
}
