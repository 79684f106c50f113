//! update (PUT) of an object or of its status subresource.

use axum::response::Response;
use serde_json::Value;

use super::{check_namespace, check_type};
use crate::server::Ctx;
use crate::server::negotiate::object_response;
use crate::server::route::Target;
use crate::status::ApiError;
use crate::store::{Managed, UpdateMode};

pub(in crate::server) fn update(
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
        ctx.dry_run(),
    )?;
    Ok(object_response(ctx, 200, &t.served, &stored))
}
