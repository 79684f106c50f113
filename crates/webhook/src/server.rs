//! Running `serve`: [`run`] and its steps, in order: build the state, start the probe
//! listener, load profiles and the certificate, serve HTTPS, reload until shutdown is asked
//! for, and shut down gracefully.

use crate::listener::Listener;
use crate::sources::{CertWatcher, ProfileWatcher};
use crate::{Adapters, AppState, Config, Health, cache, events};
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use sidecar_kit_core::engine::Options;
use sidecar_kit_core::facts::FactsSource;
use sidecar_kit_core::profile::{ProfileFeed, ProfileSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    let Adapters {
        facts,
        events,
        profiles: feed,
    } = adapters;
    let state = Arc::new(app_state(&config, facts, events));
    state.refresh_facts_health();
    // Probe listener first: the kubelet can see why we are not ready yet.
    let probes = start_probes(&config, &state).await?;
    let mut sources = Sources::new(&config, feed);
    let mut stop = Stop::on(shutdown);
    let Some(tls) = sources.first_load(&state, &mut stop).await else {
        tracing::info!("stopped before the webhook was ready");
        probes.stop().await;
        return Ok(());
    };
    let webhook = Listener::start(&config, &state, tls).await?;
    announce(&state, webhook.address, probes.address(), bound);
    sources.reload(&state, &webhook.tls, &mut stop).await;
    shut_down(&config, &state, webhook, probes).await;
    Ok(())
}

/// The state of a server starting: no profiles yet, the configured cache, Events counted.
fn app_state(
    config: &Config,
    facts: Box<dyn FactsSource>,
    events: Option<Arc<dyn events::EventSink>>,
) -> AppState {
    let options = Options {
        excluded_namespaces: config.excluded_namespaces(),
        ..Options::default()
    };
    let mut app_state = AppState::new(ProfileSet::default(), facts, options, config.failure);
    app_state.cache = cache::Cache::new(config.review_cache_bytes);
    if let Some(sink) = &events {
        app_state.metrics.watch_events(sink.clone());
    }
    app_state.events = events;
    app_state
}

/// Binds `config.probe_listen` and serves `/healthz`, `/readyz` and `/metrics` on it.
async fn start_probes(
    config: &Config,
    state: &Arc<AppState>,
) -> Result<sidecar_kit_probes::Server, String> {
    let listener = tokio::net::TcpListener::bind(config.probe_listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} (--probe-listen): {e}",
                config.probe_listen
            )
        })?;
    // The probe listener outlives the webhook listener: through the shutdown delay it tells
    // the kubelet (and Prometheus) that this replica is going away.
    state.metrics.probe_listener_up.set(1);
    sidecar_kit_probes::Server::start(listener, state.clone())
        .map_err(|e| format!("the probe listener on {}: {e}", config.probe_listen))
}

/// Whether shutdown was asked for, for every step that waits.
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Asked for once `shutdown` completes.
    fn on(shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Stop {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        Stop(stop_rx)
    }

    /// Resolves once shutdown was asked for (without holding the channel's lock).
    async fn asked(&mut self) {
        let _ = self.0.wait_for(|v| *v).await.map(|_| ());
    }
}

/// The profile directory (and feed) and the certificate files, polled on one timer from the
/// first load until shutdown.
struct Sources {
    profiles: ProfileWatcher,
    certs: CertWatcher,
    tick: tokio::time::Interval,
}

impl Sources {
    fn new(config: &Config, feed: Option<Arc<dyn ProfileFeed>>) -> Sources {
        Sources {
            profiles: ProfileWatcher::new(config.profiles.clone(), config.shim_image.clone(), feed),
            certs: CertWatcher::new(
                config.tls_cert.clone(),
                config.tls_key.clone(),
                config.client_ca.clone(),
            ),
            tick: tokio::time::interval(config.reload_interval),
        }
    }

    /// Polls until profiles and a certificate are loaded, and returns the TLS configuration;
    /// `None` if shutdown is asked for first. The first good load of profiles is required
    /// before serving reviews.
    async fn first_load(&mut self, state: &AppState, stop: &mut Stop) -> Option<Arc<ServerConfig>> {
        loop {
            self.profiles.poll(state);
            if let Some(c) = self.certs.poll(state, None) {
                if Health::get(&state.health.profiles).ok {
                    return Some(c);
                }
                self.certs.pending = Some(c);
            } else if let Some(c) = self
                .certs
                .pending
                .take_if(|_| Health::get(&state.health.profiles).ok)
            {
                return Some(c);
            }
            tokio::select! {
                _ = self.tick.tick() => {}
                _ = stop.asked() => return None,
            }
        }
    }

    /// Reloads what changed, into the state and into `tls`, until shutdown is asked for.
    async fn reload(&mut self, state: &AppState, tls: &RustlsConfig, stop: &mut Stop) {
        loop {
            tokio::select! {
                _ = self.tick.tick() => {
                    self.profiles.poll(state);
                    if let Some(c) = self.certs.poll(state, Some(tls)) {
                        tls.reload_from_config(c);
                    }
                    state.metrics.ready.set(i64::from(state.health.ready()));
                    state.refresh_facts_health();
                }
                _ = stop.asked() => break,
            }
        }
    }
}

/// The webhook listener is bound: readiness, the log line, and the addresses to `bound`.
fn announce(
    state: &AppState,
    webhook: SocketAddr,
    probe: SocketAddr,
    bound: Option<tokio::sync::oneshot::Sender<Bound>>,
) {
    Health::set(&state.health.listener, true, format!("HTTPS on {webhook}"));
    state.metrics.ready.set(i64::from(state.health.ready()));
    tracing::info!(address = %webhook, profiles = state.profiles().set.len(), "webhook listening (POST /mutate)");
    if let Some(tx) = bound {
        let _ = tx.send(Bound { webhook, probe });
    }
}

/// Not ready any more; serves on through the shutdown delay, then stops accepting, gives
/// in-flight reviews the shutdown timeout, and stops the probe listener last.
async fn shut_down(
    config: &Config,
    state: &AppState,
    webhook: Listener,
    probes: sidecar_kit_probes::Server,
) {
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
    webhook.shut_down(config.shutdown_timeout).await;
    probes.stop().await;
    tracing::info!(
        unfinished = state.in_flight.load(Ordering::SeqCst),
        "stopped"
    );
}
