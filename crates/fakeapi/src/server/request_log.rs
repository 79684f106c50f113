//! The request log tests read ([`crate::FakeApi::requests`]): one [`RequestRecord`] per
//! request, its status filled in once answered.

use std::sync::PoisonError;

use axum::http::StatusCode;

use crate::{RequestRecord, Shared};

/// Logs a request (when the log is on); returns its place for [`answered`].
pub(super) fn record(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &str,
    user: Option<&str>,
    token: Option<&str>,
) -> Option<usize> {
    if !shared.knobs().record_requests {
        return None;
    }
    let mut log = shared.log.lock().unwrap_or_else(PoisonError::into_inner);
    log.push(RequestRecord {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        user: user.unwrap_or_default().to_string(),
        token: token.map(String::from),
        status: 0,
    });
    Some(log.len() - 1)
}

/// Fills in the status of a logged request (unless the log was cleared meanwhile).
pub(super) fn answered(shared: &Shared, index: Option<usize>, path: &str, status: StatusCode) {
    if let Some(i) = index {
        let mut log = shared.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = log.get_mut(i).filter(|r| r.path == path) {
            r.status = status.as_u16();
        }
    }
}
