//! Health: what `/readyz` reports (profiles, certificate, listener, cluster facts, shutdown)
//! and what `/healthz` fails on (a probe listener that stopped unasked).

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

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
    pub(crate) fn set(slot: &RwLock<Check>, ok: bool, detail: String) {
        if let Ok(mut c) = slot.write() {
            *c = Check { ok, detail };
        }
    }
    pub(crate) fn get(slot: &RwLock<Check>) -> Check {
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
