//! The verbs on top of the store, one submodule per family, and the checks they share:
//! selectors and resourceVersions of reads, kind and namespace of written objects.

mod create;
mod delete;
mod patch;
mod read;
mod update;
mod watch;

use serde_json::{Value, json};

pub(super) use create::create;
pub(super) use delete::{delete, delete_collection};
pub(super) use patch::patch;
pub(super) use read::{get, list};
pub(super) use update::update;
pub(super) use watch::watch;

use super::Ctx;
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::meta_str;

/// `labelSelector` and `fieldSelector` of a list, watch or deletecollection.
fn selectors(ctx: &Ctx, def: &ResourceDef) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""), def)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// A read from a resourceVersion the store has not reached yet.
fn too_large(rv: u64, current: u64) -> ApiError {
    ApiError::new(
        504,
        "Timeout",
        format!("Too large resource version: {rv}, current: {current}"),
    )
    .with_details(json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1
    }))
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))
}

/// A written object's `kind` and `apiVersion` (when given) must be the resource's.
fn check_type(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let kind = obj["kind"].as_str().unwrap_or("");
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    if !kind.is_empty() && kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the kind of the resource ({})",
            def.kind
        )));
    }
    if !api_version.is_empty() && api_version != def.api_version() {
        let same_group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("") == def.group;
        if !(def.custom && same_group) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                def.api_version()
            )));
        }
    }
    Ok(())
}

/// A written namespaced object's namespace is the request's (set when left out).
fn check_namespace(def: &ResourceDef, obj: &mut Value, ns: &str) -> Result<(), ApiError> {
    if !def.namespaced {
        return Ok(());
    }
    let sent = meta_str(obj, "namespace");
    if !sent.is_empty() && sent != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), ns.into());
    }
    Ok(())
}
