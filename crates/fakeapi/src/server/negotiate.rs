//! Content negotiation: the representation the `Accept` header asks for (the object, a
//! `meta.k8s.io` Table, or PartialObjectMetadata; protobuf and other media types are
//! refused, so JSON is answered), the media type of a request body, and objects and
//! lists rendered in the negotiated form.

use std::io::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Ctx, json, json_bytes};
use crate::status::ApiError;
use crate::store::{Entry, Served, meta_str};
use crate::table::{self, IncludeObject};
use crate::watch;

/// The representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum As {
    Plain,
    Table(IncludeObject),
    Metadata,
}

/// The first `Accept` entry the fake serves: JSON (or `*/*`), plain or with
/// `as=Table` / `as=PartialObjectMetadata(List)` of `g=meta.k8s.io`. Entries of other
/// media types (protobuf) and unknown `as=` are passed over; plain JSON when none is left.
pub(super) fn negotiate(ctx: &Ctx) -> As {
    for entry in ctx.accept.split(',') {
        let entry = entry.trim();
        let media = entry.split(';').next().unwrap_or("").trim();
        if media != "application/json" && media != "*/*" && !media.is_empty() {
            continue;
        }
        let params: Vec<&str> = entry.split(';').skip(1).map(str::trim).collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        let group = params.iter().find_map(|p| p.strip_prefix("g="));
        match (as_, group) {
            (None, _) => return As::Plain,
            (Some("Table"), Some("meta.k8s.io")) => {
                return As::Table(IncludeObject::parse(ctx.query.get("includeObject")));
            }
            (Some("PartialObjectMetadataList" | "PartialObjectMetadata"), Some("meta.k8s.io")) => {
                return As::Metadata;
            }
            _ => continue,
        }
    }
    As::Plain
}

/// The media type of the request body (`Content-Type` without parameters).
pub(super) fn body_media_type(ctx: &Ctx) -> &str {
    ctx.content_type.split(';').next().unwrap_or("").trim()
}

/// The object of a create or update body, JSON or YAML.
pub(super) fn parse_body(ctx: &Ctx, bytes: &Bytes) -> Result<Value, ApiError> {
    let v: Value = match body_media_type(ctx) {
        "" | "application/json" | "*/*" => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?,
        "application/yaml" => {
            let text =
                std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other:?})"
                ),
            ));
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    }
    Ok(v)
}

fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// A list (of `entries`, with list `metadata`) in the negotiated form.
pub(super) fn list_response(
    ctx: &Ctx,
    served: &Served,
    entries: &[Entry],
    metadata: Value,
) -> Response {
    let as_ = negotiate(ctx);
    let items: Vec<Arc<Value>> = match as_ {
        As::Plain => Vec::new(),
        _ => entries.iter().map(|e| e.obj.clone()).collect(),
    };
    let items = &items[..];
    match as_ {
        As::Table(include) => json(200, &table::table(served, items, metadata, include)),
        As::Metadata => {
            let items: Vec<Value> = items.iter().map(|o| partial(o)).collect();
            json(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "items": items}),
            )
        }
        As::Plain => json_bytes(200, plain_list(served, entries, &metadata)),
    }
}

/// A plain list, written from the stored items' serialised bytes.
fn plain_list(served: &Served, entries: &[Entry], metadata: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 1024 + 256);
    let _ = write!(
        out,
        "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":",
        served.def.list_kind(),
        served.def.api_version()
    );
    let _ = serde_json::to_writer(&mut out, metadata);
    out.extend_from_slice(b",\"items\":[");
    let want = served.def.api_version();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if served.def.custom && e.obj["apiVersion"].as_str() != Some(want.as_str()) {
            // Another served version of the same custom resource.
            let _ = serde_json::to_writer(&mut out, &watch::present(&e.obj, served, false));
        } else {
            out.extend_from_slice(&e.item);
        }
    }
    out.extend_from_slice(b"]}");
    out
}

/// One object in the negotiated form.
pub(super) fn object_response(ctx: &Ctx, code: u16, served: &Served, obj: &Arc<Value>) -> Response {
    match negotiate(ctx) {
        As::Table(include) => {
            let rv = meta_str(obj, "resourceVersion").to_string();
            json(
                code,
                &table::table(
                    served,
                    std::slice::from_ref(obj),
                    json!({"resourceVersion": rv}),
                    include,
                ),
            )
        }
        As::Metadata => json(code, &partial(obj)),
        As::Plain => json(code, &watch::present(obj, served, false)),
    }
}
