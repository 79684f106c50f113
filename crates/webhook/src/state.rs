//! The state the handlers share: the profile set in force (swapped whole on reload), the
//! cluster facts, the cache of decisions, metrics, health and the Event sink; and what the
//! probe server asks of it.

use crate::health::Health;
use crate::metrics::Metrics;
use crate::review::{self, FailureMode};
use crate::{cache, events};
use sidecar_kit_core::engine::Options;
use sidecar_kit_core::facts::FactsSource;
use sidecar_kit_core::profile::ProfileSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

/// Default memory for cached answers.
pub const DEFAULT_REVIEW_CACHE_BYTES: usize = 8 * 1024 * 1024;

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
            plan: sidecar_kit_core::engine::inject_read,
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
