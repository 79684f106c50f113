//! get and list: a list's resourceVersion semantics and its pages, with the continue
//! tokens of the real server.

use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{parse_rv, selectors, too_large};
use crate::server::Ctx;
use crate::server::negotiate::{list_response, object_response};
use crate::server::route::Target;
use crate::status::ApiError;
use crate::store::{Entry, Inner, Key, key_of};

pub(in crate::server) fn get(ctx: &Ctx, t: &Target, name: &str) -> Result<Response, ApiError> {
    let obj = ctx
        .shared
        .store()
        .get(t.served.bucket, t.ns.as_deref().unwrap_or(""), name)
        .ok_or_else(|| ApiError::not_found(&t.served.def, name))?;
    Ok(object_response(ctx, 200, &t.served, &obj))
}

pub(in crate::server) fn list(ctx: &Ctx, t: &Target) -> Result<Response, ApiError> {
    let def = &t.served.def;
    let (labels, fields) = selectors(ctx, def)?;
    let limit: usize = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map(|l| l as usize)
        .unwrap_or(0);
    let cont = ctx.query.get("continue").filter(|c| !c.is_empty());
    let rv_param = ctx.query.get("resourceVersion").unwrap_or("");
    if cont.is_some() && !rv_param.is_empty() {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let store = ctx.shared.store();
    let (snapshot_rv, after) = snapshot(&store, cont, rv_param, def.namespaced)?;
    let all = store.scan_entries(t.served.bucket, t.ns.as_deref(), after.as_ref());
    drop(store);
    let selected: Vec<Entry> = if labels.is_empty() && fields.is_empty() {
        all
    } else {
        all.into_iter()
            .filter(|e| labels.matches(&e.obj) && fields.matches(&e.obj, def))
            .collect()
    };
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), snapshot_rv.to_string().into());
    let page: &[Entry] = if limit > 0 && selected.len() > limit {
        let last = key_of(&selected[limit - 1].obj);
        metadata.insert(
            "continue".into(),
            encode_continue(snapshot_rv, &last, def.namespaced).into(),
        );
        if labels.is_empty() && fields.is_empty() {
            metadata.insert("remainingItemCount".into(), (selected.len() - limit).into());
        }
        &selected[..limit]
    } else {
        &selected
    };
    Ok(list_response(ctx, &t.served, page, Value::Object(metadata)))
}

/// The resourceVersion a list is served at, and the key it continues after.
fn snapshot(
    store: &Inner,
    cont: Option<&str>,
    rv_param: &str,
    namespaced: bool,
) -> Result<(u64, Option<Key>), ApiError> {
    match cont {
        Some(c) => {
            let (rv, key) = decode_continue(c, namespaced)?;
            if rv < store.compacted {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            Ok((rv, Some(key)))
        }
        None => {
            if !rv_param.is_empty() && rv_param != "0" {
                let rv = parse_rv(rv_param)?;
                if rv > store.rv {
                    return Err(too_large(rv, store.rv));
                }
            }
            Ok((store.rv, None))
        }
    }
}

fn encode_continue(rv: u64, key: &Key, namespaced: bool) -> String {
    let start = if namespaced {
        format!("{}/{}\u{0}", key.0, key.1)
    } else {
        format!("{}\u{0}", key.1)
    };
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, namespaced: bool) -> Result<(u64, Key), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("could not decode"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad("server does not recognize this encoding"));
    }
    let rv = v["rv"].as_u64().ok_or_else(|| bad("no resourceVersion"))?;
    let start = v["start"].as_str().ok_or_else(|| bad("no start key"))?;
    let start = start.trim_end_matches('\u{0}');
    let key = if namespaced {
        let (ns, name) = start.split_once('/').ok_or_else(|| bad("bad start key"))?;
        (ns.to_string(), name.to_string())
    } else {
        (String::new(), start.to_string())
    };
    Ok((rv, key))
}
