//! Prometheus metrics of the webhook (OpenMetrics text on `/metrics`).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sidecar_kit_core::events::EventSink;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// injected, unchanged, removed, skipped, passed, error-allowed, error-denied, bad-request
    pub result: String,
    /// The injection mode, or "none".
    pub mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabel {
    pub reason: String,
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
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "Admission reviews answered, by result and injection mode",
            reviews.clone(),
        );
        let skips = Family::<SkipLabel, Counter>::default();
        registry.register(
            "admission_skips",
            "Pods not injected, by reason",
            skips.clone(),
        );
        // 50 µs .. ~1.6 s
        let duration = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "admission_review_duration_seconds",
            "Time from request received to response ready",
            duration.clone(),
        );
        let profile_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "profile_reloads",
            "Profile set reloads, by result (success, failure)",
            profile_reloads.clone(),
        );
        let certificate_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads, by result (success, failure)",
            certificate_reloads.clone(),
        );
        let review_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "review_cache_lookups",
            "Pod CREATE reviews answered from the cache of repeated pods (hit) or planned (miss)",
            review_cache.clone(),
        );
        let profiles_loaded = Gauge::default();
        registry.register(
            "profiles_loaded",
            "Profiles in the set in force",
            profiles_loaded.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when profiles and certificate are loaded and the listener is bound",
            ready.clone(),
        );
        let facts_synced = Gauge::default();
        registry.register("cluster_facts_synced", "1 when auto mode decides from live cluster facts; 0 while it uses the profiles' fallback", facts_synced.clone());
        let engine_panics = Counter::default();
        registry.register(
            "engine_panics",
            "Reviews whose planning panicked (answered by the failure mode; the log has the panic message)",
            engine_panics.clone(),
        );
        let probe_listener_up = Gauge::default();
        registry.register(
            "probe_listener_up",
            "1 while the probe listener (/healthz, /readyz, /metrics) serves; 0 once it stopped unasked (the log says why)",
            probe_listener_up.clone(),
        );
        let cluster_profiles_invalid = Gauge::default();
        registry.register(
            "cluster_profiles_invalid",
            "SidecarProfile objects in the cluster left out because they are invalid (the log and their status say why)",
            cluster_profiles_invalid.clone(),
        );
        Metrics {
            registry,
            reviews,
            skips,
            duration,
            profile_reloads,
            certificate_reloads,
            profiles_loaded,
            review_cache,
            ready,
            facts_synced,
            engine_panics,
            probe_listener_up,
            cluster_profiles_invalid,
        }
    }

    pub fn review(&self, result: &str, mode: &str) {
        self.reviews
            .get_or_create(&ReviewLabels {
                result: result.to_string(),
                mode: mode.to_string(),
            })
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
            let label = ResultLabel {
                result: result.into(),
            };
            ConstCounter::new(n).encode(family.encode_family(&label)?)?;
        }
        Ok(())
    }
}
