//! Authentication: the bearer token of a request and the user it stands for
//! (`system:anonymous` without one, when anonymous requests are allowed).

use axum::http::{HeaderMap, header};

use super::header_str;
use crate::Shared;

/// The token of an `Authorization: Bearer ...` header.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    header_str(headers, header::AUTHORIZATION)
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

/// The user a request authenticates as; None: 401 (an unknown token, or no token when
/// anonymous requests are not allowed).
pub(super) fn user_of(shared: &Shared, token: Option<&str>) -> Option<String> {
    let knobs = shared.knobs();
    match token {
        Some(t) => knobs.tokens.get(t).cloned(),
        None if knobs.allow_anonymous => Some("system:anonymous".to_string()),
        None => None,
    }
}
