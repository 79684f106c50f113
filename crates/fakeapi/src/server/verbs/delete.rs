//! delete and deletecollection, with DeleteOptions (preconditions, dryRun) and the
//! namespace controller's emptying of a deleted namespace.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::selectors;
use crate::server::negotiate::{list_response, object_response};
use crate::server::route::Target;
use crate::server::{Ctx, json};
use crate::status::{self, ApiError};
use crate::store::{self, Entry, Inner, Served, key_of, meta_str};

/// The DeleteOptions of a request body (Null when there are none).
fn delete_options(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// `dryRun=All` in the query or in the DeleteOptions.
fn dry_run(ctx: &Ctx, opts: &Value) -> bool {
    ctx.dry_run()
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "All"))
}

pub(in crate::server) fn delete(
    ctx: &Ctx,
    t: &Target,
    name: &str,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let def = t.served.def.clone();
    let opts = delete_options(bytes);
    let dry = dry_run(ctx, &opts);
    let ns = t.ns.as_deref().unwrap_or("");
    let mut store = ctx.shared.store();
    let gone = store.delete(
        &t.served,
        ns,
        name,
        opts["preconditions"]["resourceVersion"].as_str(),
        opts["preconditions"]["uid"].as_str(),
        dry,
    )?;
    if def.group.is_empty() && def.plural == "namespaces" && !dry {
        empty_namespace(&mut store, name);
    }
    drop(store);
    let returns_object = def.custom
        || (def.group.is_empty() && matches!(def.plural.as_str(), "pods" | "namespaces"));
    if returns_object {
        Ok(object_response(ctx, 200, &t.served, &gone))
    } else {
        Ok(json(
            200,
            &status::delete_success(&def, name, Some(meta_str(&gone, "uid"))),
        ))
    }
}

/// The namespace controller empties a deleted namespace.
fn empty_namespace(store: &mut Inner, name: &str) {
    let buckets: Vec<Served> = store
        .served
        .iter()
        .filter(|s| s.def.namespaced)
        .cloned()
        .collect();
    for s in buckets {
        for obj in store.scan(s.bucket, Some(name), None) {
            let (ons, oname) = key_of(&obj);
            let _ = store.delete(&s, &ons, &oname, None, None, false);
        }
    }
}

pub(in crate::server) fn delete_collection(
    ctx: &Ctx,
    t: &Target,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let def = &t.served.def;
    let (labels, fields) = selectors(ctx, def)?;
    let dry = dry_run(ctx, &delete_options(bytes));
    let mut store = ctx.shared.store();
    let victims: Vec<Arc<Value>> = store
        .scan(t.served.bucket, t.ns.as_deref(), None)
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o, def))
        .collect();
    let mut gone = Vec::new();
    for v in victims {
        let (ns, name) = key_of(&v);
        let obj = store.delete(&t.served, &ns, &name, None, None, dry)?;
        let item = store::item_bytes(&obj, t.served.def.custom);
        gone.push(Entry { obj, item });
    }
    let rv = store.rv;
    drop(store);
    Ok(list_response(
        ctx,
        &t.served,
        &gone,
        json!({"resourceVersion": rv.to_string()}),
    ))
}
