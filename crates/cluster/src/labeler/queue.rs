//! The work queue of node names to reconcile: each name queued once however often it is
//! added, and never worked on by two workers at once.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Node names to reconcile: each queued once however often it is added, and never worked
/// on by two workers at once (added again while in work, it is queued when that ends).
#[derive(Default)]
pub(super) struct WorkQueue {
    inner: Mutex<QueueInner>,
    notify: Notify,
}

#[derive(Default)]
struct QueueInner {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
}

impl WorkQueue {
    fn lock(&self) -> MutexGuard<'_, QueueInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn add(&self, name: &str) {
        let mut q = self.lock();
        if !q.dirty.insert(name.to_string()) {
            return;
        }
        if !q.processing.contains(name) {
            q.queue.push_back(name.to_string());
            drop(q);
            self.notify.notify_one();
        }
    }

    pub(super) async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut q = self.lock();
                if let Some(name) = q.queue.pop_front() {
                    q.dirty.remove(&name);
                    q.processing.insert(name.clone());
                    if !q.queue.is_empty() {
                        // Let another idle worker pick up the rest.
                        self.notify.notify_one();
                    }
                    return name;
                }
            }
            notified.await;
        }
    }

    pub(super) fn done(&self, name: &str) {
        let mut q = self.lock();
        q.processing.remove(name);
        if q.dirty.contains(name) {
            q.queue.push_back(name.to_string());
            drop(q);
            self.notify.notify_one();
        }
    }

    /// Nodes waiting or in work.
    pub(super) fn pending(&self) -> usize {
        let q = self.lock();
        q.dirty.len() + q.processing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_holds_a_name_once_and_requeues_after_work() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.pending(), 2);
        let a = q.next().await;
        assert_eq!(a, "a");
        q.add("a"); // dirty while in work: not handed out twice
        assert_eq!(q.next().await, "b");
        q.done("b");
        q.done("a");
        assert_eq!(q.next().await, "a");
        q.done("a");
        assert_eq!(q.pending(), 0);
    }
}
