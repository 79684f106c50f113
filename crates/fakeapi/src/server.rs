//! The HTTP layer: the router, what one request carries (`Ctx`), and the response helpers
//! every handler answers with. Each concept of the API server lives in a submodule.

mod auth;
mod negotiate;
mod node_proxy;
mod non_resource;
mod rbac;
mod request_log;
mod route;
mod verbs;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::resources::ResourceDef;
use crate::status::ApiError;
use crate::store::UpdateMode;
use crate::util::Query;
use crate::{Shared, managed};

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

    /// `dryRun=All` in the query.
    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
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
    let token = auth::bearer_token(&parts.headers);
    let user = auth::user_of(&shared, token.as_deref());
    let index = request_log::record(
        &shared,
        &method,
        &path,
        &raw_query,
        user.as_deref(),
        token.as_deref(),
    );
    let response = match user {
        None => error(&ApiError::unauthorized()),
        Some(user) => {
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
            route::route(&ctx, body).await
        }
    };
    request_log::answered(&shared, index, &path, response.status());
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
