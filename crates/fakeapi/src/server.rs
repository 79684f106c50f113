//! The HTTP layer: routing of API paths, authentication, RBAC denials, content
//! negotiation, and the verbs on top of the store.

use std::io::Write as _;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::metrics::{GateLine, NodeProxy, apiserver_metrics, minor_of};
use crate::resources::{self, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::store::{self, Entry, Managed, Served, UpdateMode, key_of, meta_str};
use crate::table::{self, IncludeObject};
use crate::util::Query;
use crate::watch::{self, ChannelStream, WatchRequest, WatchSignals};
use crate::{ApiMetrics, Deny, RequestRecord, Shared, managed, names, pods, seed};

/// The real server's request body limit (3 MiB).
const BODY_LIMIT: usize = 3 * 1024 * 1024;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_tx.subscribe();
    let app = Router::new().fallback(handle).with_state(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
}

/// One request, parsed.
struct Ctx {
    shared: Arc<Shared>,
    method: String,
    path: String,
    query: Query,
    user: String,
    accept: String,
    content_type: String,
    user_agent: String,
}

impl Ctx {
    /// The field manager of a write: `fieldManager`, else the client's name from its
    /// User-Agent (as the real server derives it).
    fn writer(&self, def: &ResourceDef, mode: UpdateMode) -> managed::Writer {
        let manager = match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => match self.user_agent.split('/').next().filter(|s| !s.is_empty()) {
                Some(ua) => ua.to_string(),
                None => "unknown".to_string(),
            },
        };
        managed::Writer {
            manager,
            api_version: def.api_version(),
            subresource: (mode == UpdateMode::Status).then(|| "status".to_string()),
            skip_status: def.status_subresource && mode != UpdateMode::Status,
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let token = header_str(&parts.headers, header::AUTHORIZATION)
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string());
    let user = {
        let knobs = shared.knobs();
        match &token {
            Some(t) => knobs.tokens.get(t).cloned().ok_or(()),
            None if knobs.allow_anonymous => Ok("system:anonymous".to_string()),
            None => Err(()),
        }
    };
    let record = shared.knobs().record_requests;
    let index = if record {
        let mut log = shared.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.push(RequestRecord {
            method: method.clone(),
            path: path.clone(),
            query: raw_query.clone(),
            user: user.clone().unwrap_or_default(),
            token: token.clone(),
            status: 0,
        });
        Some(log.len() - 1)
    } else {
        None
    };
    let response = match user {
        Err(()) => error(&ApiError::unauthorized()),
        Ok(user) => {
            let ctx = Ctx {
                shared: shared.clone(),
                method,
                path: path.clone(),
                query: Query::parse(&raw_query),
                user,
                accept: header_str(&parts.headers, header::ACCEPT),
                content_type: header_str(&parts.headers, header::CONTENT_TYPE),
                user_agent: header_str(&parts.headers, header::USER_AGENT),
            };
            route(&ctx, body).await
        }
    };
    if let Some(i) = index {
        let mut log = shared.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = log.get_mut(i).filter(|r| r.path == path) {
            r.status = response.status().as_u16();
        }
    }
    response
}

// === responses ===

fn respond(code: u16, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_bytes(code: u16, body: Vec<u8>) -> Response {
    respond(code, "application/json", body)
}

fn json(code: u16, v: &Value) -> Response {
    json_bytes(code, serde_json::to_vec(v).unwrap_or_default())
}

fn error(e: &ApiError) -> Response {
    json(e.code, &e.to_status())
}

// === routing ===

async fn route(ctx: &Ctx, body: Body) -> Response {
    let segs: Vec<&str> = ctx.path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => resource(ctx, "", "v1", rest, body).await,
        ["apis", g, v, rest @ ..] if !rest.is_empty() => resource(ctx, g, v, rest, body).await,
        _ => non_resource(ctx, &segs).await,
    }
}

fn denied_path(ctx: &Ctx) -> Option<ApiError> {
    let knobs = ctx.shared.knobs();
    let hit = knobs.denials.iter().any(|d| {
        d.resource.is_none()
            && d.user.as_ref().is_none_or(|u| *u == ctx.user)
            && d.verb.as_ref().is_none_or(|v| v == "*" || v == "get")
            && d.path.as_ref().is_some_and(|p| match p.strip_suffix('*') {
                Some(prefix) => ctx.path.starts_with(prefix),
                None => *p == ctx.path,
            })
    });
    hit.then(|| {
        ApiError::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{}\" cannot get path \"{}\"",
                ctx.user, ctx.path
            ),
        )
        .with_details(json!({}))
    })
}

async fn non_resource(ctx: &Ctx, segs: &[&str]) -> Response {
    if ctx.method != "GET" && ctx.method != "HEAD" {
        return error(&ApiError::method_not_allowed(&ctx.method));
    }
    if let Some(e) = denied_path(ctx) {
        return error(&e);
    }
    let server_address = ctx.shared.addr.to_string();
    let store_defs = || {
        let store = ctx.shared.store();
        store
            .served
            .iter()
            .map(|s| (*s.def).clone())
            .collect::<Vec<ResourceDef>>()
    };
    match segs {
        ["version"] => json(200, &version_doc(&ctx.shared.knobs().version)),
        ["healthz"] | ["livez"] | ["readyz"] => respond(200, "text/plain; charset=utf-8", "ok"),
        ["metrics"] => api_metrics(ctx),
        ["api"] => json(200, &resources::api_versions(&server_address)),
        ["apis"] => {
            let defs = store_defs();
            let refs: Vec<&ResourceDef> = defs.iter().collect();
            json(200, &resources::api_group_list(&refs))
        }
        ["apis", g] => {
            let defs = store_defs();
            let refs: Vec<&ResourceDef> = defs.iter().collect();
            match resources::api_group(&refs, g) {
                Some(doc) => json(200, &doc),
                None => error(&ApiError::no_route()),
            }
        }
        ["api", "v1"] | ["apis", _, _] => {
            let (g, v) = match segs {
                ["apis", g, v] => (*g, *v),
                _ => ("", "v1"),
            };
            let defs = store_defs();
            let refs: Vec<&ResourceDef> = defs.iter().collect();
            match resources::api_resource_list(&refs, g, v) {
                Some(doc) => json(200, &doc),
                None => error(&ApiError::no_route()),
            }
        }
        ["openapi", "v3"] => {
            let defs = store_defs();
            let refs: Vec<&ResourceDef> = defs.iter().collect();
            json(200, &resources::openapi_v3_index(&refs))
        }
        ["openapi", "v3", "api", v] | ["openapi", "v3", "apis", _, v] => {
            let g = match segs {
                ["openapi", "v3", "apis", g, _] => *g,
                _ => "",
            };
            let defs = store_defs();
            let refs: Vec<&ResourceDef> = defs.iter().collect();
            match resources::openapi_v3_gv(&refs, g, v) {
                Some(doc) => json(200, &doc),
                None => error(&ApiError::no_route()),
            }
        }
        ["openapi", "v2"] => openapi_v2(ctx),
        _ => error(&ApiError::no_route()),
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
        ApiMetrics::Forbidden => {
            return error(
                &ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "forbidden: User \"{}\" cannot get path \"/metrics\"",
                        ctx.user
                    ),
                )
                .with_details(json!({})),
            );
        }
    };
    respond(200, "text/plain; version=0.0.4; charset=utf-8", text)
}

// === resources ===

/// What a resource path addresses.
struct Target {
    served: Served,
    ns: Option<String>,
    name: Option<String>,
    sub: Vec<String>,
}

fn parse_target(ctx: &Ctx, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let store = ctx.shared.store();
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(served) = store.find(group, version, rest[2])
        && served.def.namespaced
    {
        return Some(Target {
            served,
            ns: Some(rest[1].to_string()),
            name: rest.get(3).map(|s| s.to_string()),
            sub: rest.iter().skip(4).map(|s| s.to_string()).collect(),
        });
    }
    let served = store.find(group, version, rest[0])?;
    Some(Target {
        served,
        ns: None,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.iter().skip(2).map(|s| s.to_string()).collect(),
    })
}

fn dry_run(ctx: &Ctx) -> bool {
    ctx.query.get("dryRun") == Some("All")
}

/// RBAC: the first denial that matches the request, rendered as the real message.
fn denied(
    ctx: &Ctx,
    verb: &str,
    def: &ResourceDef,
    sub: Option<&str>,
    ns: Option<&str>,
    name: &str,
) -> Option<ApiError> {
    let res = match sub {
        Some(s) => format!("{}/{s}", def.plural),
        None => def.plural.clone(),
    };
    let knobs = ctx.shared.knobs();
    let matches = |d: &Deny| {
        d.path.is_none()
            && d.user.as_ref().is_none_or(|u| *u == ctx.user)
            && d.verb.as_ref().is_none_or(|v| v == "*" || v == verb)
            && d.group.as_ref().is_none_or(|g| *g == def.group)
            && d.resource.as_ref().is_none_or(|r| r == "*" || *r == res)
            && d.namespace.as_ref().is_none_or(|n| Some(n.as_str()) == ns)
    };
    if !knobs.denials.iter().any(matches) {
        return None;
    }
    Some(forbidden(&ctx.user, verb, def, &res, ns, name))
}

fn forbidden(
    user: &str,
    verb: &str,
    def: &ResourceDef,
    res: &str,
    ns: Option<&str>,
    name: &str,
) -> ApiError {
    let scope = match ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let why = format!(
        "User \"{user}\" cannot {verb} resource \"{res}\" in API group \"{}\" {scope}",
        def.group
    );
    let message = if name.is_empty() {
        format!("{} is forbidden: {why}", def.qualified())
    } else {
        format!("{} \"{name}\" is forbidden: {why}", def.qualified())
    };
    ApiError::new(403, "Forbidden", message).with_details(status::details(def, name))
}

async fn resource(ctx: &Ctx, group: &str, version: &str, rest: &[&str], body: Body) -> Response {
    let Some(t) = parse_target(ctx, group, version, rest) else {
        return error(&ApiError::no_route());
    };
    let def = t.served.def.clone();
    if def.namespaced && t.ns.is_none() && t.name.is_some() {
        return error(&ApiError::no_route());
    }
    let ns = t.ns.as_deref();
    let name = t.name.as_deref().unwrap_or("");
    let sub = t.sub.first().map(String::as_str);
    let watching = ctx.query.flag("watch");
    let verb = match (ctx.method.as_str(), t.name.is_some()) {
        ("GET" | "HEAD", false) if watching => "watch",
        ("GET" | "HEAD", false) => "list",
        ("GET" | "HEAD", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return error(&ApiError::method_not_allowed(&ctx.method)),
    };
    if def.namespaced && t.ns.is_none() && verb == "create" {
        return error(&ApiError::no_route());
    }
    match sub {
        None => {}
        Some("status")
            if def.status_subresource
                && t.sub.len() == 1
                && matches!(verb, "get" | "update" | "patch") => {}
        Some("proxy") if def.plural == "nodes" && def.group.is_empty() => {
            if let Some(e) = denied(ctx, verb, &def, Some("proxy"), None, name) {
                return error(&e);
            }
            return node_proxy(ctx, &t).await;
        }
        Some(_) => return error(&ApiError::no_route()),
    }
    if !def.has_verb(verb) {
        return error(&ApiError::method_not_allowed(&ctx.method));
    }
    if let Some(e) = denied(ctx, verb, &def, sub, ns, name) {
        return error(&e);
    }
    let status_mode = if sub == Some("status") {
        UpdateMode::Status
    } else {
        UpdateMode::Main
    };
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return error(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {BODY_LIMIT}"),
            ));
        }
    };
    let result = match verb {
        "list" => list(ctx, &t),
        "watch" => return watch(ctx, &t),
        "get" => get(ctx, &t, name),
        "create" => parse_body(ctx, &bytes)
            .and_then(|obj| create(ctx, &t.served, ns.unwrap_or(""), obj, false)),
        "update" => parse_body(ctx, &bytes).and_then(|obj| update(ctx, &t, name, obj, status_mode)),
        "patch" => patch(ctx, &t, name, &bytes, status_mode),
        "delete" => delete(ctx, &t, name, &bytes),
        "deletecollection" => delete_collection(ctx, &t, &bytes),
        _ => Err(ApiError::method_not_allowed(&ctx.method)),
    };
    match result {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

fn parse_body(ctx: &Ctx, bytes: &Bytes) -> Result<Value, ApiError> {
    let ct = ctx.content_type.split(';').next().unwrap_or("").trim();
    let v: Value = match ct {
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

/// The representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum As {
    Plain,
    Table(IncludeObject),
    Metadata,
}

fn negotiate(ctx: &Ctx) -> As {
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

fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn list_response(ctx: &Ctx, served: &Served, entries: &[Entry], metadata: Value) -> Response {
    let items: Vec<Arc<Value>> = match negotiate(ctx) {
        As::Plain => Vec::new(),
        _ => entries.iter().map(|e| e.obj.clone()).collect(),
    };
    let items = &items[..];
    match negotiate(ctx) {
        As::Table(include) => json(200, &table::table(served, items, metadata, include)),
        As::Metadata => {
            let items: Vec<Value> = items.iter().map(|o| partial(o)).collect();
            json(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "items": items}),
            )
        }
        As::Plain => {
            let mut out = Vec::with_capacity(items.len() * 1024 + 256);
            let _ = write!(
                out,
                "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":",
                served.def.list_kind(),
                served.def.api_version()
            );
            let _ = serde_json::to_writer(&mut out, &metadata);
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
            json_bytes(200, out)
        }
    }
}

fn object_response(ctx: &Ctx, code: u16, served: &Served, obj: &Arc<Value>) -> Response {
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

fn selectors(ctx: &Ctx, def: &ResourceDef) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""), def)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

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

fn encode_continue(rv: u64, key: &(String, String), namespaced: bool) -> String {
    let start = if namespaced {
        format!("{}/{}\u{0}", key.0, key.1)
    } else {
        format!("{}\u{0}", key.1)
    };
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, namespaced: bool) -> Result<(u64, (String, String)), ApiError> {
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

fn list(ctx: &Ctx, t: &Target) -> Result<Response, ApiError> {
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
    let (snapshot_rv, after) = match cont {
        Some(c) => {
            let (rv, key) = decode_continue(c, def.namespaced)?;
            if rv < store.compacted {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            (rv, Some(key))
        }
        None => {
            if !rv_param.is_empty() && rv_param != "0" {
                let rv = parse_rv(rv_param)?;
                if rv > store.rv {
                    return Err(too_large(rv, store.rv));
                }
            }
            (store.rv, None)
        }
    };
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

fn get(ctx: &Ctx, t: &Target, name: &str) -> Result<Response, ApiError> {
    let obj = ctx
        .shared
        .store()
        .get(t.served.bucket, t.ns.as_deref().unwrap_or(""), name)
        .ok_or_else(|| ApiError::not_found(&t.served.def, name))?;
    Ok(object_response(ctx, 200, &t.served, &obj))
}

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

/// Create with admission: defaults, the mutation hook (pods), name generation, field
/// dropping and validation; stored unless dry-run.
fn create(
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
    let is = |g: &str, p: &str| def.group == g && def.plural == p;
    let (require_ns, gate_on, mutation) = {
        let k = ctx.shared.knobs();
        (
            k.require_namespaces,
            k.sidecar_containers,
            k.pod_mutation.clone(),
        )
    };
    if def.namespaced && require_ns {
        let store = ctx.shared.store();
        let exists = store
            .resolve("namespaces")
            .is_some_and(|n| store.get(n.bucket, "", ns).is_some());
        if !exists {
            return Err(
                ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
                    .with_details(json!({"name": ns, "kind": "namespaces"})),
            );
        }
    }
    if is("", "pods") {
        pods::apply_defaults(&mut obj);
        if let Some(f) = mutation {
            f(&mut obj);
        }
    }
    store::prepare_create(served, &mut obj, ns)?;
    let mut errs = names::validate(&def, &obj);
    if is("", "pods") {
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
    if is("", "pods") {
        pods::initial_status(&mut obj);
    } else if is("", "namespaces") {
        let name = meta_str(&obj, "name").to_string();
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
    } else if def.custom && def.status_subresource {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    } else if def.status_subresource
        && !is("", "nodes")
        && !is("apiextensions.k8s.io", "customresourcedefinitions")
    {
        obj["status"] = json!({});
    }
    let writer = ctx.writer(&def, UpdateMode::Main);
    if apply {
        obj = managed::apply(None, &obj, &writer, true).unwrap_or(obj);
    } else {
        managed::record_update(None, &mut obj, &writer);
    }
    if dry_run(ctx) {
        return Ok(object_response(ctx, 201, served, &Arc::new(obj)));
    }
    let stored = ctx.shared.store().create(served, obj)?;
    Ok(object_response(ctx, 201, served, &stored))
}

fn update(
    ctx: &Ctx,
    t: &Target,
    name: &str,
    mut obj: Value,
    mode: UpdateMode,
) -> Result<Response, ApiError> {
    let def = &t.served.def;
    check_type(def, &obj)?;
    check_namespace(def, &mut obj, t.ns.as_deref().unwrap_or(""))?;
    let writer = Managed::Record(ctx.writer(def, mode));
    let stored = ctx.shared.store().update(
        &t.served,
        t.ns.as_deref().unwrap_or(""),
        name,
        obj,
        mode,
        &writer,
        dry_run(ctx),
    )?;
    Ok(object_response(ctx, 200, &t.served, &stored))
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

fn patch(
    ctx: &Ctx,
    t: &Target,
    name: &str,
    bytes: &Bytes,
    mode: UpdateMode,
) -> Result<Response, ApiError> {
    let def = t.served.def.clone();
    let ns = t.ns.as_deref().unwrap_or("");
    let ct = ctx
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let parse_json = || -> Result<Value, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    enum Kind {
        Merge(Value),
        Json(json_patch::Patch),
        Apply(Value),
    }
    let kind = match ct.as_str() {
        "application/merge-patch+json" => Kind::Merge(parse_json()?),
        "application/strategic-merge-patch+json" => {
            let mut p = parse_json()?;
            strip_directives(&mut p);
            Kind::Merge(p)
        }
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            Kind::Json(p)
        }
        "application/apply-patch+yaml" => {
            if ctx.query.get("fieldManager").unwrap_or("").is_empty() {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    &[crate::status::FieldError::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                ));
            }
            let v: Value = match serde_json::from_slice(bytes) {
                Ok(v) => v,
                Err(_) => {
                    let text = std::str::from_utf8(bytes)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    serde_saphyr::from_str(text)
                        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
                }
            };
            Kind::Apply(v)
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let current = ctx.shared.store().get(t.served.bucket, ns, name);
    let Some(current) = current else {
        if let Kind::Apply(obj) = kind {
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
        Kind::Merge(p) => json_patch::merge(&mut doc, &p),
        Kind::Apply(p) => {
            check_type(&def, &p)?;
            let writer = ctx.writer(&def, mode);
            doc = managed::apply(Some(&current), &p, &writer, ctx.query.flag("force")).map_err(
                |c| {
                    let causes: Vec<Value> = c
                    .iter()
                    .map(|c| {
                        let who = if c.operation == "Apply" {
                            format!("conflict with \"{}\"", c.manager)
                        } else {
                            format!("conflict with \"{}\" using {}", c.manager, c.api_version)
                        };
                        json!({"reason": "FieldManagerConflict", "message": who, "field": c.field})
                    })
                    .collect();
                    ApiError::new(409, "Conflict", managed::conflict_message(&c))
                        .with_details(json!({"causes": causes}))
                },
            )?;
            applied = true;
        }
        Kind::Json(p) => json_patch::patch(&mut doc, &p)
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
            .update(&t.served, ns, name, doc, mode, &managed_by, dry_run(ctx))?;
    Ok(object_response(ctx, 200, &t.served, &stored))
}

fn delete_options(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

fn delete(ctx: &Ctx, t: &Target, name: &str, bytes: &Bytes) -> Result<Response, ApiError> {
    let def = t.served.def.clone();
    let opts = delete_options(bytes);
    let dry = dry_run(ctx)
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "All"));
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
        // The namespace controller empties a deleted namespace.
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

fn delete_collection(ctx: &Ctx, t: &Target, bytes: &Bytes) -> Result<Response, ApiError> {
    let def = &t.served.def;
    let (labels, fields) = selectors(ctx, def)?;
    let dry = dry_run(ctx)
        || delete_options(bytes)["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "All"));
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

fn watch(ctx: &Ctx, t: &Target) -> Response {
    match start_watch(ctx, t) {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        "ListOptions",
        "meta.k8s.io",
        "",
        &[crate::status::FieldError::forbidden(field, detail)],
    )
}

fn start_watch(ctx: &Ctx, t: &Target) -> Result<Response, ApiError> {
    let def = &t.served.def;
    let (labels, fields) = selectors(ctx, def)?;
    let (watch_list, bookmark_interval, default_timeout, drop_after) = {
        let k = ctx.shared.knobs();
        (
            k.watch_list,
            k.bookmark_interval,
            k.default_watch_timeout,
            k.drop_watches_after,
        )
    };
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = ctx.query.flag("sendInitialEvents");
    if send_initial {
        if !watch_list {
            return Err(list_options_invalid(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            ));
        }
        if ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(list_options_invalid(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    }
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(default_timeout);
    let rv_param = ctx.query.get("resourceVersion").unwrap_or("");
    let store = ctx.shared.store();
    let current = store.rv;
    let from_state = send_initial || rv_param.is_empty() || rv_param == "0";
    let initial = if from_state {
        let objects = store.scan(t.served.bucket, t.ns.as_deref(), None);
        Ok(objects
            .into_iter()
            .map(|o| {
                Arc::new(store::Change {
                    bucket: t.served.bucket,
                    rv: meta_str(&o, "resourceVersion").parse().unwrap_or(0),
                    kind: store::ChangeKind::Added,
                    object: o,
                    prev: None,
                })
            })
            .collect())
    } else {
        let rv = parse_rv(rv_param)?;
        if rv > current {
            Err(too_large(rv, current))
        } else {
            store.history_after(t.served.bucket, rv)
        }
    };
    let start_rv = if from_state {
        current
    } else {
        rv_param.parse().unwrap_or(current)
    };
    let rx = store.subscribe();
    drop(store);
    let req = WatchRequest {
        served: t.served.clone(),
        ns: t.ns.clone(),
        labels,
        fields,
        bookmarks,
        timeout,
        metadata_only: negotiate(ctx) == As::Metadata,
        initial,
        initial_end: send_initial.then_some(current),
        start_rv,
        rx,
    };
    let signals = WatchSignals {
        bookmark_interval,
        drop_after,
        drop_all: ctx.shared.drop_tx.subscribe(),
        shutdown: ctx.shared.shutdown_tx.subscribe(),
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(watch::run(req, signals, tx));
    Ok(respond(
        200,
        "application/json",
        Body::from_stream(ChannelStream(rx)),
    ))
}

// === node proxy ===

async fn node_proxy(ctx: &Ctx, t: &Target) -> Response {
    if ctx.method != "GET" {
        return error(&ApiError::method_not_allowed(&ctx.method));
    }
    let raw = t.name.clone().unwrap_or_default();
    // `NAME`, `NAME:10250`, `https:NAME:10250`
    let name = raw
        .strip_prefix("https:")
        .or_else(|| raw.strip_prefix("http:"))
        .unwrap_or(&raw)
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    let node = ctx.shared.store().get(t.served.bucket, "", &name);
    let Some(node) = node else {
        return error(&ApiError::not_found(&t.served.def, &name));
    };
    let path = t.sub[1..].join("/");
    let behaviour = ctx.shared.knobs().node_proxy.get(&name).cloned();
    let ip = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("10.0.0.1")
        .to_string();
    // Faults of the connection to the kubelet apply to every path.
    match &behaviour {
        Some(NodeProxy::Forbidden) => {
            return error(&forbidden(
                &ctx.user,
                "get",
                &t.served.def,
                "nodes/proxy",
                None,
                &name,
            ));
        }
        Some(NodeProxy::Unreachable) => {
            return error(&ApiError::new(
                500,
                "",
                format!("dial tcp {ip}:10250: connect: connection refused"),
            ));
        }
        Some(NodeProxy::Unavailable) => {
            return error(&ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "error trying to reach service: dial tcp {ip}:10250: connect: no route to host"
                ),
            ));
        }
        Some(NodeProxy::Hang) => {
            let mut shutdown = ctx.shared.shutdown_tx.subscribe();
            let _ = shutdown.wait_for(|s| *s).await;
            return error(&ApiError::new(
                503,
                "ServiceUnavailable",
                "the fake API server is shutting down",
            ));
        }
        _ => {}
    }
    let text = "text/plain; version=0.0.4; charset=utf-8";
    match path.as_str() {
        "metrics" => {}
        "healthz" => return respond(200, "text/plain; charset=utf-8", "ok"),
        _ => return respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
    }
    match behaviour {
        None => {
            let version = node["status"]["nodeInfo"]["kubeletVersion"]
                .as_str()
                .unwrap_or("");
            respond(200, text, ctx.shared.kubelet_body(version, None))
        }
        Some(NodeProxy::Metrics(body)) => respond(200, text, body),
        Some(NodeProxy::Delayed(delay, body)) => {
            let mut shutdown = ctx.shared.shutdown_tx.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(delay) => respond(200, text, body),
                _ = shutdown.wait_for(|s| *s) => error(&ApiError::new(503, "ServiceUnavailable", "the fake API server is shutting down")),
            }
        }
        Some(NodeProxy::Slow {
            body,
            chunk,
            interval,
        }) => {
            let (tx, rx) = mpsc::channel(4);
            let mut shutdown = ctx.shared.shutdown_tx.subscribe();
            tokio::spawn(async move {
                let chunk = chunk.max(1);
                let mut at = 0;
                while at < body.len() {
                    let end = (at + chunk).min(body.len());
                    if tx.send(Ok(body.slice(at..end))).await.is_err() {
                        return;
                    }
                    at = end;
                    if at < body.len() {
                        tokio::select! {
                            _ = tokio::time::sleep(interval) => {}
                            _ = shutdown.wait_for(|s| *s) => return,
                        }
                    }
                }
            });
            respond(200, text, Body::from_stream(ChannelStream(rx)))
        }
        Some(
            NodeProxy::Forbidden
            | NodeProxy::Unavailable
            | NodeProxy::Unreachable
            | NodeProxy::Hang,
        ) => error(&ApiError::no_route()),
    }
}
