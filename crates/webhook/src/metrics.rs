//! Prometheus metrics of the webhook (OpenMetrics text on `/metrics`).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use sidecar_kit_core::events::EventSink;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// injected, unchanged, removed, skipped, passed, error-allowed, error-denied, bad-request
    pub result: &'static str,
    /// The injection mode, or "none".
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabel {
    pub reason: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    pub reviews: Family<ReviewLabels, Counter>,
    pub skips: Family<SkipLabel, Counter>,
    pub duration: Histogram,
    pub profile_reloads: Family<ResultLabel, Counter>,
    pub certificate_reloads: Family<ResultLabel, Counter>,
    pub profiles_loaded: Gauge,
    pub review_cache: Family<ResultLabel, Counter>,
    pub ready: Gauge,
    pub facts_synced: Gauge,
    pub engine_panics: Counter,
    pub probe_listener_up: Gauge,
    pub cluster_profiles_invalid: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sidecar_kit");
        let mut r = Registrar(&mut registry);
        // Registered (and so listed on /metrics) in this order.
        Metrics {
            reviews: r.add("admission_reviews", "Admission reviews answered, by result and injection mode"),
            skips: r.add("admission_skips", "Pods not injected, by reason"),
            // 50 µs .. ~1.6 s
            duration: r.add_as("admission_review_duration_seconds", "Time from request received to response ready", Histogram::new(exponential_buckets(0.000_05, 2.0, 16))),
            profile_reloads: r.add("profile_reloads", "Profile set reloads, by result (success, failure)"),
            certificate_reloads: r.add("certificate_reloads", "Serving certificate reloads, by result (success, failure)"),
            review_cache: r.add("review_cache_lookups", "Pod CREATE reviews answered from the cache of repeated pods (hit) or planned (miss)"),
            profiles_loaded: r.add("profiles_loaded", "Profiles in the set in force"),
            ready: r.add("ready", "1 when profiles and certificate are loaded and the listener is bound"),
            facts_synced: r.add("cluster_facts_synced", "1 when auto mode decides from live cluster facts; 0 while it uses the profiles' fallback"),
            engine_panics: r.add("engine_panics", "Reviews whose planning panicked (answered by the failure mode; the log has the panic message)"),
            probe_listener_up: r.add("probe_listener_up", "1 while the probe listener (/healthz, /readyz, /metrics) serves; 0 once it stopped unasked (the log says why)"),
            cluster_profiles_invalid: r.add("cluster_profiles_invalid", "SidecarProfile objects in the cluster left out because they are invalid (the log and their status say why)"),
            registry,
        }
    }

    pub fn review(&self, result: &'static str, mode: &'static str) {
        self.reviews
            .get_or_create(&ReviewLabels { result, mode })
            .inc();
    }

    /// Exposes what the Event sink did (`events_total` by result: posted, dropped, failed).
    pub fn watch_events(&mut self, sink: Arc<dyn EventSink>) {
        self.registry
            .register_collector(Box::new(EventCounts(sink)));
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

/// Registers metrics and hands back a handle to each.
struct Registrar<'r>(&'r mut Registry);

impl Registrar<'_> {
    /// A new metric of its kind's default, registered under `name` with `help`.
    fn add<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M {
        self.add_as(name, help, M::default())
    }

    /// `metric`, registered under `name` with `help`.
    fn add_as<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }
}

/// The Event sink's counts, read at each scrape.
struct EventCounts(Arc<dyn EventSink>);

impl std::fmt::Debug for EventCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EventCounts")
            .field(&self.0.counts())
            .finish()
    }
}

impl Collector for EventCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.counts();
        let mut family = encoder.encode_descriptor(
            "events",
            "Events about decisions, by result: posted (stored by the API server), dropped (queue full), failed (refused by the API server; see the log)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (result, n) in [
            ("posted", counts.posted),
            ("dropped", counts.dropped),
            ("failed", counts.failed),
        ] {
            let label = ResultLabel { result };
            ConstCounter::new(n).encode(family.encode_family(&label)?)?;
        }
        Ok(())
    }
}
