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
pub use sidecar_kit_core::events;
pub mod metrics;
mod mutate;
mod observe;
pub mod review;
pub mod sources;
pub mod tls;

use mutate::text;
pub use mutate::{BODY_LIMIT, INLINE_REVIEW_BYTES, bare_router, webhook_router};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use metrics::Metrics;
use review::FailureMode;
use sidecar_kit_core::engine::{Options, SYSTEM_NAMESPACES};
use sidecar_kit_core::facts::{FactsSource, StaticFacts};
use sidecar_kit_core::profile::ProfileSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Default memory for cached answers.
pub const DEFAULT_REVIEW_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Configuration of the server, validated by the CLI.
#[derive(Debug, Clone)]
pub struct Config {
    pub profiles_dir: PathBuf,
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

/// A profile set and the generation it was swapped in as, read and replaced as one value:
/// an answer planned from `set` is cached under `generation`, so a reload between reading
/// the set and reading the generation cannot file an old set's answer under the new one.
#[derive(Debug, Default)]
pub struct Profiles {
    /// Bumped on every swap, so cached answers of an older set miss.
    pub generation: u64,
    pub set: ProfileSet,
}

/// State shared by the handlers.
pub struct AppState {
    /// The profile set in force, with its generation.
    profiles: RwLock<Arc<Profiles>>,
    /// Cluster facts: each review decides from one snapshot of them.
    pub facts: Box<dyn FactsSource>,
    pub options: Options,
    pub failure: FailureMode,
    pub metrics: Metrics,
    pub health: Health,
    pub in_flight: AtomicUsize,
    pub cache: cache::Cache<review::Decision>,
    /// Where Events about decisions go (none: no Events).
    pub events: Option<Arc<dyn events::EventSink>>,
    /// Plans each injection: `engine::inject` (tests may replace it).
    pub plan: review::Plan,
    /// Large reviews planned at once (on the blocking pool), at most half the cores: a burst
    /// of them waits its turn instead of taking every core from the small ones.
    pub(crate) large_reviews: Arc<tokio::sync::Semaphore>,
}

/// What `/readyz` reports.
#[derive(Default)]
pub struct Health {
    pub profiles: RwLock<Check>,
    pub certificate: RwLock<Check>,
    pub listener: RwLock<Check>,
    pub facts: RwLock<String>,
    pub shutting_down: AtomicBool,
    /// Why the probe listener stopped serving, when it did so unasked.
    pub probe_failure: RwLock<Option<String>>,
}

#[derive(Default, Clone)]
pub struct Check {
    /// Loaded at least once (for the listener: bound).
    pub ok: bool,
    pub detail: String,
}

impl Health {
    fn set(slot: &RwLock<Check>, ok: bool, detail: String) {
        if let Ok(mut c) = slot.write() {
            *c = Check { ok, detail };
        }
    }
    fn get(slot: &RwLock<Check>) -> Check {
        slot.read().map(|c| c.clone()).unwrap_or_default()
    }
    pub fn ready(&self) -> bool {
        !self.shutting_down.load(Ordering::SeqCst)
            && self.live().is_ok()
            && Health::get(&self.profiles).ok
            && Health::get(&self.certificate).ok
            && Health::get(&self.listener).ok
    }
    /// Alive unless the probe listener died.
    pub fn live(&self) -> Result<(), String> {
        match self.probe_failure.read().map(|f| f.clone()) {
            Ok(Some(why)) => Err(why),
            _ => Ok(()),
        }
    }
    pub fn report(&self) -> serde_json::Value {
        let c = |slot: &RwLock<Check>| {
            let c = Health::get(slot);
            serde_json::json!({"ok": c.ok, "detail": c.detail})
        };
        serde_json::json!({
            "ready": self.ready(),
            "shuttingDown": self.shutting_down.load(Ordering::SeqCst),
            "profiles": c(&self.profiles),
            "certificate": c(&self.certificate),
            "listener": c(&self.listener),
            "clusterFacts": self.facts.read().map(|s| s.clone()).unwrap_or_default(),
            "probeListener": self.live().err(),
        })
    }
}

impl AppState {
    pub fn new(
        profiles: ProfileSet,
        facts: Box<dyn FactsSource>,
        options: Options,
        failure: FailureMode,
    ) -> AppState {
        let metrics = Metrics::new();
        metrics.profiles_loaded.set(profiles.len() as i64);
        AppState {
            profiles: RwLock::new(Arc::new(Profiles {
                generation: 0,
                set: profiles,
            })),
            facts,
            options,
            failure,
            metrics,
            health: Health::default(),
            in_flight: AtomicUsize::new(0),
            cache: cache::Cache::new(DEFAULT_REVIEW_CACHE_BYTES),
            events: None,
            plan: sidecar_kit_core::engine::inject,
            large_reviews: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
        }
    }

    /// Updates the readiness detail and the metric about cluster facts.
    pub fn refresh_facts_health(&self) {
        let facts = self.facts.snapshot();
        let known = facts.availability() == sidecar_kit_core::facts::Availability::Known;
        self.metrics.facts_synced.set(i64::from(known));
        if let Ok(mut f) = self.health.facts.write() {
            *f = facts.describe();
        }
    }

    /// The profile set in force and its generation, in one read.
    pub fn profiles(&self) -> Arc<Profiles> {
        self.profiles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a new profile set under the next generation; returns that generation. Once
    /// this returns, every review that starts plans from the new set.
    pub fn set_profiles(&self, set: ProfileSet) -> u64 {
        self.metrics.profiles_loaded.set(set.len() as i64);
        let mut p = self.profiles.write().unwrap_or_else(|e| e.into_inner());
        let generation = p.generation + 1;
        *p = Arc::new(Profiles { generation, set });
        generation
    }
}

impl sidecar_kit_probes::Probed for AppState {
    fn live(&self) -> Result<(), String> {
        self.health.live()
    }

    fn readiness(&self) -> (bool, String) {
        self.refresh_facts_health();
        (self.health.ready(), self.health.report().to_string())
    }

    fn metrics(&self) -> String {
        self.metrics.encode()
    }

    /// The kubelet's probes get no answer any more: liveness, readiness and
    /// `sidecar_kit_probe_listener_up` say so.
    fn listener_stopped(&self, detail: String) {
        self.metrics.probe_listener_up.set(0);
        self.metrics.ready.set(0);
        if let Ok(mut f) = self.health.probe_failure.write() {
            *f = Some(detail);
        }
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

/// Addresses the server bound, reported once both listeners are up.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub webhook: SocketAddr,
    pub probe: SocketAddr,
}

/// Runs the server until `shutdown` completes, then drains in-flight reviews within
/// `config.shutdown_timeout`.
pub async fn run(
    config: Config,
    adapters: Adapters,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    bound: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), String> {
    let options = Options {
        excluded_namespaces: config.excluded_namespaces(),
        ..Options::default()
    };
    let Adapters {
        facts,
        events,
        profiles: feed,
    } = adapters;
    let mut app_state = AppState::new(ProfileSet::default(), facts, options, config.failure);
    app_state.cache = cache::Cache::new(config.review_cache_bytes);
    if let Some(sink) = &events {
        app_state.metrics.watch_events(sink.clone());
    }
    app_state.events = events;
    let state = Arc::new(app_state);
    state.refresh_facts_health();

    // Probe listener first: the kubelet can see why we are not ready yet.
    let probe_listener = tokio::net::TcpListener::bind(config.probe_listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} (--probe-listen): {e}",
                config.probe_listen
            )
        })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The probe listener outlives the webhook listener: through the shutdown delay it tells
    // the kubelet (and Prometheus) that this replica is going away.
    state.metrics.probe_listener_up.set(1);
    let probes = sidecar_kit_probes::Server::start(probe_listener, state.clone())
        .map_err(|e| format!("the probe listener on {}: {e}", config.probe_listen))?;

    // Profiles: the first good load is required before serving reviews.
    let profiles =
        sources::ProfileWatcher::new(config.profiles_dir.clone(), config.shim_image.clone(), feed);
    let certs = sources::CertWatcher::new(
        config.tls_cert.clone(),
        config.tls_key.clone(),
        config.client_ca.clone(),
    );
    let mut stop_wait = stop_rx.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    tokio::spawn(shutdown);
    let mut tick = tokio::time::interval(config.reload_interval);
    let (mut profiles, mut certs) = (profiles, certs);
    let tls_config = loop {
        profiles.poll(&state);
        if let Some(c) = certs.poll(&state, None) {
            if Health::get(&state.health.profiles).ok {
                break c;
            }
            certs.pending = Some(c);
        } else if let Some(c) = certs
            .pending
            .take_if(|_| Health::get(&state.health.profiles).ok)
        {
            break c;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut stop_wait) => {
                tracing::info!("stopped before the webhook was ready");
                probes.stop().await;
                return Ok(());
            }
        }
    };

    let rustls_config = axum_server::tls_rustls::RustlsConfig::from_config(tls_config);
    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_config.clone())
        .handshake_timeout(config.request_timeout);
    let mut server = axum_server::bind(config.listen)
        .acceptor(acceptor)
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.request_timeout);
    server
        .http_builder()
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        // The API server multiplexes many reviews over one connection: windows large enough
        // that responses never wait for a WINDOW_UPDATE round trip.
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .max_concurrent_streams(1000);
    let app = if config.bare_allow {
        bare_router()
    } else {
        webhook_router(state.clone())
    };
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            request_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            close_when_draining,
        ));
    let serve_task = tokio::spawn(async move { server.serve(app.into_make_service()).await });
    let Some(webhook_addr) = handle.listening().await else {
        let err = match serve_task.await {
            Ok(Err(e)) => e.to_string(),
            _ => "unknown error".into(),
        };
        return Err(format!(
            "cannot listen on {} (--listen): {err}",
            config.listen
        ));
    };
    Health::set(
        &state.health.listener,
        true,
        format!("HTTPS on {webhook_addr}"),
    );
    state.metrics.ready.set(i64::from(state.health.ready()));
    tracing::info!(address = %webhook_addr, profiles = state.profiles().set.len(), "webhook listening (POST /mutate)");
    if let Some(tx) = bound {
        let _ = tx.send(Bound {
            webhook: webhook_addr,
            probe: probes.address(),
        });
    }

    // Reload loop until shutdown.
    loop {
        tokio::select! {
            _ = tick.tick() => {
                profiles.poll(&state);
                if let Some(c) = certs.poll(&state, Some(&rustls_config)) {
                    rustls_config.reload_from_config(c);
                }
                state.metrics.ready.set(i64::from(state.health.ready()));
                state.refresh_facts_health();
            }
            _ = stopped(&mut stop_wait) => break,
        }
    }
    state.health.shutting_down.store(true, Ordering::SeqCst);
    state.metrics.ready.set(0);
    if !config.shutdown_delay.is_zero() {
        tracing::info!(
            delay_seconds = config.shutdown_delay.as_secs_f64(),
            "SIGTERM: not ready any more; still serving while endpoints drop this pod"
        );
        tokio::time::sleep(config.shutdown_delay).await;
    }
    let in_flight = state.in_flight.load(Ordering::SeqCst);
    tracing::info!(
        in_flight,
        timeout_seconds = config.shutdown_timeout.as_secs_f64(),
        "SIGTERM: no new connections; finishing in-flight reviews"
    );
    handle.graceful_shutdown(Some(config.shutdown_timeout));
    let _ = serve_task.await;
    probes.stop().await;
    tracing::info!(
        unfinished = state.in_flight.load(Ordering::SeqCst),
        "stopped"
    );
    Ok(())
}

/// Resolves once shutdown was asked for (without holding the channel's lock).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}

/// Bounds the time to read and answer one request, so slow clients cannot hold a worker.
/// Once shutting down, every HTTP/1.x answer carries `Connection: close`, so the connection
/// ends right after it. The API server calls webhooks over HTTP/1.1 with a pool of keep-alive
/// connections per Service; a pooled connection that this replica closed while idle can be
/// written to at that very moment, and the API server does not retry that failure (EPIPE):
/// with failurePolicy Ignore the pod would be admitted without its sidecar, with Fail refused.
/// Closed by us after an answer instead, each connection used during the shutdown delay
/// leaves the pool cleanly and the next review dials a current endpoint.
async fn close_when_draining(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let http1 = req.version() < axum::http::Version::HTTP_2;
    let mut resp = next.run(req).await;
    if http1 && state.health.shutting_down.load(Ordering::SeqCst) {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

async fn request_deadline(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => text(
            StatusCode::REQUEST_TIMEOUT,
            "request not completed in time\n".into(),
        ),
    }
}
