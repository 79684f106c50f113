//! Routing: which resource (and object, subresource) an API path addresses (`Target`),
//! the Kubernetes verb a request method and query make (`Verb`), and the dispatch of a
//! resource request to its verb's handler after the scope, subresource and RBAC checks.

use std::fmt;

use axum::body::{Body, Bytes};
use axum::response::Response;

use super::negotiate::parse_body;
use super::{Ctx, error, node_proxy, non_resource, rbac, verbs};
use crate::status::ApiError;
use crate::store::{Served, UpdateMode};

/// The real server's request body limit (3 MiB).
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// A Kubernetes verb, as RBAC rules and discovery name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// The verb of a request on a resource path, from its method, whether the path names
    /// one object, and the `watch` query parameter (as the API server's RequestInfo
    /// derives it); None: the method is not allowed there.
    pub(super) fn of(method: &str, named: bool, watch: bool) -> Option<Verb> {
        let verb = match (method, named) {
            ("GET" | "HEAD", false) if watch => Verb::Watch,
            ("GET" | "HEAD", false) => Verb::List,
            ("GET" | "HEAD", true) => Verb::Get,
            ("POST", false) => Verb::Create,
            ("PUT", true) => Verb::Update,
            ("PATCH", true) => Verb::Patch,
            ("DELETE", true) => Verb::Delete,
            ("DELETE", false) => Verb::DeleteCollection,
            _ => return None,
        };
        Some(verb)
    }

    /// `get`, `list`, ..., `deletecollection`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a resource path addresses.
pub(super) struct Target {
    pub(super) served: Served,
    pub(super) ns: Option<String>,
    pub(super) name: Option<String>,
    pub(super) sub: Vec<String>,
}

pub(super) async fn route(ctx: &Ctx, body: Body) -> Response {
    let segs: Vec<&str> = ctx.path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => resource(ctx, "", "v1", rest, body).await,
        ["apis", g, v, rest @ ..] if !rest.is_empty() => resource(ctx, g, v, rest, body).await,
        _ => non_resource::serve(ctx, &segs),
    }
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
    let Some(verb) = Verb::of(&ctx.method, t.name.is_some(), ctx.query.flag("watch")) else {
        return error(&ApiError::method_not_allowed(&ctx.method));
    };
    if def.namespaced && t.ns.is_none() && verb == Verb::Create {
        return error(&ApiError::no_route());
    }
    match sub {
        None => {}
        Some("status")
            if def.status_subresource
                && t.sub.len() == 1
                && matches!(verb, Verb::Get | Verb::Update | Verb::Patch) => {}
        Some("proxy") if def.plural == "nodes" && def.group.is_empty() => {
            if let Some(e) = rbac::denied(ctx, verb, &def, Some("proxy"), None, name) {
                return error(&e);
            }
            return node_proxy::serve(ctx, &t).await;
        }
        Some(_) => return error(&ApiError::no_route()),
    }
    if !def.has_verb(verb.as_str()) {
        return error(&ApiError::method_not_allowed(&ctx.method));
    }
    if let Some(e) = rbac::denied(ctx, verb, &def, sub, ns, name) {
        return error(&e);
    }
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
    match dispatch(ctx, &t, verb, &bytes) {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

/// Runs the handler of a verb.
fn dispatch(ctx: &Ctx, t: &Target, verb: Verb, bytes: &Bytes) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    let mode = if t.sub.first().is_some_and(|s| s == "status") {
        UpdateMode::Status
    } else {
        UpdateMode::Main
    };
    match verb {
        Verb::List => verbs::list(ctx, t),
        Verb::Watch => verbs::watch(ctx, t),
        Verb::Get => verbs::get(ctx, t, name),
        Verb::Create => parse_body(ctx, bytes).and_then(|obj| {
            verbs::create(ctx, &t.served, t.ns.as_deref().unwrap_or(""), obj, false)
        }),
        Verb::Update => {
            parse_body(ctx, bytes).and_then(|obj| verbs::update(ctx, t, name, obj, mode))
        }
        Verb::Patch => verbs::patch(ctx, t, name, bytes, mode),
        Verb::Delete => verbs::delete(ctx, t, name, bytes),
        Verb::DeleteCollection => verbs::delete_collection(ctx, t, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::Verb;

    #[test]
    fn methods_map_to_verbs() {
        let cases = [
            ("GET", false, false, Some(Verb::List)),
            ("GET", false, true, Some(Verb::Watch)),
            ("HEAD", false, true, Some(Verb::Watch)),
            ("HEAD", false, false, Some(Verb::List)),
            ("GET", true, false, Some(Verb::Get)),
            ("GET", true, true, Some(Verb::Get)),
            ("POST", false, false, Some(Verb::Create)),
            ("POST", true, false, None),
            ("PUT", true, false, Some(Verb::Update)),
            ("PUT", false, false, None),
            ("PATCH", true, false, Some(Verb::Patch)),
            ("PATCH", false, false, None),
            ("DELETE", true, false, Some(Verb::Delete)),
            ("DELETE", false, false, Some(Verb::DeleteCollection)),
            ("OPTIONS", false, false, None),
        ];
        for (method, named, watch, want) in cases {
            assert_eq!(
                Verb::of(method, named, watch),
                want,
                "{method} named={named} watch={watch}"
            );
        }
    }

    #[test]
    fn verbs_are_named_as_rbac_names_them() {
        let all = [
            Verb::Get,
            Verb::List,
            Verb::Watch,
            Verb::Create,
            Verb::Update,
            Verb::Patch,
            Verb::Delete,
            Verb::DeleteCollection,
        ];
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
                "deletecollection"
            ]
        );
    }
}
