//! create, with the admission of the real server: defaults, the Pod mutation hook, name
//! generation, the SidecarContainers gate, validation and the fields the server sets.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::{check_namespace, check_type};
use crate::resources::ResourceDef;
use crate::server::Ctx;
use crate::server::negotiate::object_response;
use crate::status::ApiError;
use crate::store::{self, Served, UpdateMode, meta_str};
use crate::{managed, names, pods, seed};

/// Create with admission: defaults, the mutation hook (pods), name generation, field
/// dropping and validation; stored unless dry-run. `apply`: a server-side apply of an
/// absent object.
pub(in crate::server) fn create(
    ctx: &Ctx,
    served: &Served,
    ns: &str,
    mut obj: Value,
    apply: bool,
) -> Result<Response, ApiError> {
    let def = served.def.clone();
    check_type(&def, &obj)?;
    if obj.get("metadata").is_none_or(Value::is_null) {
        obj["metadata"] = json!({});
    }
    check_namespace(&def, &mut obj, ns)?;
    let (require_ns, gate_on, mutation) = {
        let k = ctx.shared.knobs();
        (
            k.require_namespaces,
            k.sidecar_containers,
            k.pod_mutation.clone(),
        )
    };
    if def.namespaced && require_ns {
        namespace_exists(ctx, ns)?;
    }
    let pod = is(&def, "", "pods");
    if pod {
        pods::apply_defaults(&mut obj);
        if let Some(f) = mutation {
            f(&mut obj);
        }
    }
    store::prepare_create(served, &mut obj, ns)?;
    let mut errs = names::validate(&def, &obj);
    if pod {
        if !gate_on {
            pods::drop_init_restart_policy(&mut obj);
        }
        errs.extend(pods::validate(&obj));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            &def.kind,
            &def.group,
            meta_str(&obj, "name"),
            &errs,
        ));
    }
    server_fields(&def, &mut obj);
    let writer = ctx.writer(&def, UpdateMode::Main);
    if apply {
        obj = managed::apply(None, &obj, &writer, true).unwrap_or(obj);
    } else {
        managed::record_update(None, &mut obj, &writer);
    }
    if ctx.dry_run() {
        return Ok(object_response(ctx, 201, served, &Arc::new(obj)));
    }
    let stored = ctx.shared.store().create(served, obj)?;
    Ok(object_response(ctx, 201, served, &stored))
}

fn is(def: &ResourceDef, group: &str, plural: &str) -> bool {
    def.group == group && def.plural == plural
}

/// The namespace of a namespaced create must exist (the NamespaceLifecycle admission).
fn namespace_exists(ctx: &Ctx, ns: &str) -> Result<(), ApiError> {
    let store = ctx.shared.store();
    let exists = store
        .resolve("namespaces")
        .is_some_and(|n| store.get(n.bucket, "", ns).is_some());
    if exists {
        return Ok(());
    }
    Err(
        ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"})),
    )
}

/// What the server sets on a new object: a Pod's initial status, a Namespace's name
/// label, finalizer and phase, an empty status where there is a status subresource.
fn server_fields(def: &ResourceDef, obj: &mut Value) {
    if is(def, "", "pods") {
        pods::initial_status(obj);
    } else if is(def, "", "namespaces") {
        namespace_fields(obj);
    } else if def.custom && def.status_subresource {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    } else if def.status_subresource
        && !is(def, "", "nodes")
        && !is(def, "apiextensions.k8s.io", "customresourcedefinitions")
    {
        obj["status"] = json!({});
    }
}

fn namespace_fields(obj: &mut Value) {
    let name = meta_str(obj, "name").to_string();
    let labels: Vec<(String, String)> = obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let refs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let fresh = seed::namespace(&name, &refs);
    obj["metadata"]["labels"] = fresh["metadata"]["labels"].clone();
    obj["spec"] = fresh["spec"].clone();
    obj["status"] = fresh["status"].clone();
}
