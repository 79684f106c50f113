//! RBAC: the denial rules tests add ([`crate::Deny`]), matched against a request on a
//! resource or a non-resource path, and rendered as the real server's 403 Forbidden.

use serde_json::json;

use super::Ctx;
use super::route::Verb;
use crate::Deny;
use crate::resources::ResourceDef;
use crate::status::{self, ApiError};

/// A denial of a non-resource URL (such as `/metrics`), which is always a `get`.
pub(super) fn denied_path(ctx: &Ctx) -> Option<ApiError> {
    let knobs = ctx.shared.knobs();
    let hit = knobs.denials.iter().any(|d| {
        d.resource.is_none()
            && d.user.as_ref().is_none_or(|u| *u == ctx.user)
            && d.verb
                .as_ref()
                .is_none_or(|v| v == "*" || v == Verb::Get.as_str())
            && d.path.as_ref().is_some_and(|p| match p.strip_suffix('*') {
                Some(prefix) => ctx.path.starts_with(prefix),
                None => *p == ctx.path,
            })
    });
    hit.then(|| forbidden_path(&ctx.user, &ctx.path))
}

/// The 403 of a non-resource URL.
pub(super) fn forbidden_path(user: &str, path: &str) -> ApiError {
    ApiError::new(
        403,
        "Forbidden",
        format!("forbidden: User \"{user}\" cannot get path \"{path}\""),
    )
    .with_details(json!({}))
}

/// The first denial that matches a request on a resource, rendered as the real message.
pub(super) fn denied(
    ctx: &Ctx,
    verb: Verb,
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
            && d.verb
                .as_ref()
                .is_none_or(|v| v == "*" || v == verb.as_str())
            && d.group.as_ref().is_none_or(|g| *g == def.group)
            && d.resource.as_ref().is_none_or(|r| r == "*" || *r == res)
            && d.namespace.as_ref().is_none_or(|n| Some(n.as_str()) == ns)
    };
    if !knobs.denials.iter().any(matches) {
        return None;
    }
    Some(forbidden(&ctx.user, verb, def, &res, ns, name))
}

/// The 403 of a request on a resource.
pub(super) fn forbidden(
    user: &str,
    verb: Verb,
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
