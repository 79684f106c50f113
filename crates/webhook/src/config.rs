//! What `serve` is given: its configuration (validated by the CLI) and the adapters to the
//! cluster (facts, Events, SidecarProfile objects).

use crate::events;
use crate::review::FailureMode;
use sidecar_kit_core::engine::SYSTEM_NAMESPACES;
use sidecar_kit_core::facts::{FactsSource, StaticFacts};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Configuration of the server, validated by the CLI.
#[derive(Debug, Clone)]
pub struct Config {
    /// SidecarProfile files and directories, watched.
    pub profiles: Vec<PathBuf>,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub listen: SocketAddr,
    pub probe_listen: SocketAddr,
    pub failure: FailureMode,
    /// The webhook's own namespace (never injected unless allowed).
    pub own_namespace: Option<String>,
    /// System or own namespaces to inject into after all.
    pub allow_namespaces: Vec<String>,
    pub shim_image: Option<String>,
    /// How often profile and certificate files are checked for changes.
    pub reload_interval: Duration,
    /// How long in-flight reviews may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// How long to keep accepting and serving after SIGTERM, with `/readyz` failing, before
    /// the listener closes: the time endpoints need to drop this pod, so that reviews the API
    /// server still sends here are answered, not refused.
    pub shutdown_delay: Duration,
    /// Time allowed to read a request (headers and body) and to complete a TLS handshake.
    pub request_timeout: Duration,
    /// Benchmark ceiling: answer every review with a bare `allowed`, skipping the engine.
    pub bare_allow: bool,
    /// Bytes of memory for cached answers to repeated pods (0 disables the cache).
    pub review_cache_bytes: usize,
}

impl Config {
    /// Namespaces the engine must skip.
    pub fn excluded_namespaces(&self) -> Vec<String> {
        SYSTEM_NAMESPACES
            .iter()
            .map(|s| s.to_string())
            .chain(self.own_namespace.clone())
            .filter(|n| !self.allow_namespaces.contains(n))
            .collect()
    }
}

/// Loads the facts file, or none.
pub fn load_facts(path: Option<&PathBuf>) -> Result<StaticFacts, String> {
    match path {
        Some(p) => sidecar_kit_manifests::load_facts(&p.display().to_string())
            .map(StaticFacts::new)
            .map_err(|e| e.to_string()),
        None => Ok(StaticFacts::none()),
    }
}

/// What the cluster adapter supplies: facts for auto mode, a sink for Events, and profiles
/// from the SidecarProfile CRD. Without a cluster: no facts, no Events, files only.
pub struct Adapters {
    pub facts: Box<dyn FactsSource>,
    pub events: Option<Arc<dyn events::EventSink>>,
    pub profiles: Option<Arc<dyn sidecar_kit_core::profile::ProfileFeed>>,
}

impl Adapters {
    /// No cluster: no facts, no Events, profiles from files only.
    pub fn none() -> Adapters {
        Adapters {
            facts: Box::new(Arc::new(StaticFacts::none())),
            events: None,
            profiles: None,
        }
    }
}
