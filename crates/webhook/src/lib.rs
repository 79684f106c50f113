//! `sidecar-kit serve`: the mutating admission webhook.
//!
//! HTTPS `POST /mutate` (rustls, TLS 1.2/1.3, HTTP/1.1 and HTTP/2) answers
//! `admission.k8s.io/v1` AdmissionReviews with the core engine's JSON Patch. `/healthz`,
//! `/readyz` and `/metrics` are served on a separate plain-HTTP probe address. Profiles and
//! the serving certificate are reloaded from their files while serving; a broken file keeps
//! the last good one in force.

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

pub mod cache;
pub mod certs;
mod config;
pub use sidecar_kit_core::events;
mod health;
mod listener;
pub mod metrics;
mod mutate;
mod observe;
pub mod review;
mod server;
pub mod sources;
mod state;
pub mod tls;

pub use config::{Adapters, Config, load_facts};
pub use health::{Check, Health};
pub use mutate::{BODY_LIMIT, INLINE_REVIEW_BYTES, bare_router, webhook_router};
pub use server::{Bound, run};
pub use state::{AppState, DEFAULT_REVIEW_CACHE_BYTES, Profiles};
