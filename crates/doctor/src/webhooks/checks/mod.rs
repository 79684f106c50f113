//! The checks of `doctor webhooks`, one per file, each from what was gathered (the chain,
//! the API server's answer, a namespace, a probe) to findings.

mod apiserver_drops;
mod namespace_missing;
mod not_reinvoked;
mod probe_refused;
mod stripped;
mod suspect;

pub(super) use apiserver_drops::check as apiserver_drops;
pub(super) use namespace_missing::check as namespace_missing;
pub(super) use not_reinvoked::check as not_reinvoked;
pub(super) use probe_refused::check as probe_refused;
pub(super) use stripped::{LostProbe, check as restart_policy_stripped};
pub(super) use suspect::check as suspects;
