//! The controller's timers: the periodic resync of every node, and the sweep that queues
//! nodes whose patch retry or gate (re-)read has fallen due.

use super::Labeler;
use super::gate_read::gate_matters;
use std::time::Instant;
use tokio::time::MissedTickBehavior;

impl Labeler {
    pub(super) async fn schedule(self) {
        let mut resync = tokio::time::interval(self.cfg().resync_interval);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        resync.tick().await;
        let mut sweep = tokio::time::interval(self.cfg().sweep_every());
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = resync.tick() => {
                    if self.leading() {
                        tracing::debug!("periodic resync");
                        self.enqueue_all();
                    }
                }
                _ = sweep.tick() => {
                    if self.leading() {
                        self.sweep();
                    }
                }
            }
        }
    }

    /// Queues nodes whose failed patch is due for a retry, and nodes whose gate is due
    /// for a (re-)read.
    fn sweep(&self) {
        let now = Instant::now();
        let interval = self.cfg().node_metrics_interval;
        let mut due: Vec<String> = Vec::new();
        {
            let cache = self.nodes();
            let mut book = self.book();
            book.retries_due(now, &mut due);
            if book.may_read(now, interval) {
                for (name, entry) in &cache.nodes {
                    if gate_matters(&entry.version) && book.read_due(name, &entry.version, now) {
                        due.push(name.clone());
                    }
                }
            }
        }
        for n in &due {
            self.shared.queue.add(n);
        }
    }
}
