//! Non-resource URLs: `/version`, the health checks, the API server's `/metrics`,
//! discovery (`/api`, `/apis`, a group, a group version) and the OpenAPI documents.

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Ctx, error, json, rbac, respond};
use crate::ApiMetrics;
use crate::metrics::{GateLine, apiserver_metrics, minor_of};
use crate::resources::{self, ResourceDef};
use crate::status::ApiError;

/// Answers a GET of a non-resource URL (`segs`: its path segments).
pub(super) fn serve(ctx: &Ctx, segs: &[&str]) -> Response {
    if ctx.method != "GET" && ctx.method != "HEAD" {
        return error(&ApiError::method_not_allowed(&ctx.method));
    }
    if let Some(e) = rbac::denied_path(ctx) {
        return error(&e);
    }
    let server_address = ctx.shared.addr.to_string();
    match segs {
        ["version"] => json(200, &version_doc(&ctx.shared.knobs().version)),
        ["healthz"] | ["livez"] | ["readyz"] => respond(200, "text/plain; charset=utf-8", "ok"),
        ["metrics"] => api_metrics(ctx),
        ["api"] => json(200, &resources::api_versions(&server_address)),
        ["apis"] => json(200, &with_defs(ctx, resources::api_group_list)),
        ["apis", g] => found(with_defs(ctx, |defs| resources::api_group(defs, g))),
        ["api", "v1"] | ["apis", _, _] => {
            let (g, v) = match segs {
                ["apis", g, v] => (*g, *v),
                _ => ("", "v1"),
            };
            found(with_defs(ctx, |defs| {
                resources::api_resource_list(defs, g, v)
            }))
        }
        ["openapi", "v3"] => json(200, &with_defs(ctx, resources::openapi_v3_index)),
        ["openapi", "v3", "api", v] | ["openapi", "v3", "apis", _, v] => {
            let g = match segs {
                ["openapi", "v3", "apis", g, _] => *g,
                _ => "",
            };
            found(with_defs(ctx, |defs| resources::openapi_v3_gv(defs, g, v)))
        }
        ["openapi", "v2"] => openapi_v2(ctx),
        _ => error(&ApiError::no_route()),
    }
}

/// A discovery document built from the resources served now (taken out of the store
/// first, so that building it does not hold the lock).
fn with_defs<T>(ctx: &Ctx, build: impl FnOnce(&[&ResourceDef]) -> T) -> T {
    let defs: Vec<ResourceDef> = {
        let store = ctx.shared.store();
        store.served.iter().map(|s| (*s.def).clone()).collect()
    };
    let refs: Vec<&ResourceDef> = defs.iter().collect();
    build(&refs)
}

/// The document, or 404 when the group (version) is not served.
fn found(doc: Option<Value>) -> Response {
    match doc {
        Some(doc) => json(200, &doc),
        None => error(&ApiError::no_route()),
    }
}

/// An OpenAPI v2 document without definitions. kubectl reads it (as protobuf) for
/// client-side validation of kinds the v3 document does not cover, such as a custom
/// resource whose CRD is missing: with no definitions every kind is "unknown" and skipped,
/// so kubectl goes on to report the missing kind as against a real server.
fn openapi_v2(ctx: &Ctx) -> Response {
    let version = ctx.shared.knobs().version.clone();
    if ctx.accept.contains("protobuf") {
        fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
            out.push(tag);
            // Lengths here are far below 128: one varint byte.
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        let mut info = Vec::new();
        field(&mut info, 0x0a, b"Kubernetes");
        field(&mut info, 0x12, version.as_bytes());
        let mut doc = Vec::new();
        field(&mut doc, 0x0a, b"2.0");
        field(&mut doc, 0x12, &info);
        return respond(
            200,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            doc,
        );
    }
    json(
        200,
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": version}, "paths": {}, "definitions": {}}),
    )
}

fn version_doc(version: &str) -> Value {
    let minor = minor_of(version).unwrap_or(0).to_string();
    let mut v = Map::new();
    v.insert("major".into(), "1".into());
    v.insert("minor".into(), minor.clone().into());
    if minor_of(version).unwrap_or(0) >= 33 {
        v.insert("emulationMajor".into(), "1".into());
        v.insert("emulationMinor".into(), minor.into());
        v.insert("minCompatibilityMajor".into(), "1".into());
        let prev = minor_of(version).unwrap_or(1).saturating_sub(1).to_string();
        v.insert("minCompatibilityMinor".into(), prev.into());
    }
    v.insert("gitVersion".into(), version.into());
    v.insert(
        "gitCommit".into(),
        "32cc146f75aad04beaaa245a7157eb35063a9f99".into(),
    );
    v.insert("gitTreeState".into(), "clean".into());
    v.insert("buildDate".into(), "2025-03-11T19:52:21Z".into());
    v.insert("goVersion".into(), "go1.23.6".into());
    v.insert("compiler".into(), "gc".into());
    v.insert("platform".into(), "linux/amd64".into());
    Value::Object(v)
}

fn api_metrics(ctx: &Ctx) -> Response {
    let knobs = ctx.shared.knobs();
    let minor = minor_of(&knobs.version).unwrap_or(0);
    let gate = GateLine::for_minor(minor, knobs.sidecar_containers);
    let text = match &knobs.metrics {
        ApiMetrics::Generated => apiserver_metrics(&knobs.version, gate),
        ApiMetrics::WithoutSidecarLine => apiserver_metrics(&knobs.version, None),
        ApiMetrics::Text(t) => t.clone(),
        ApiMetrics::Forbidden => return error(&rbac::forbidden_path(&ctx.user, "/metrics")),
    };
    respond(200, "text/plain; version=0.0.4; charset=utf-8", text)
}
