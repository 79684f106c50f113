//! Posts the webhook's Events (`events.k8s.io/v1`) on pods' owners: off the review path
//! through a bounded queue, at most one Event per owner and reason per window, and a global
//! rate, so a thousand-pod rollout makes a handful of Events, not a thousand.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use sidecar_kit_core::events::{EventSink, Note};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Rate limits of the recorder.
#[derive(Debug, Clone)]
pub struct Limits {
    /// One Event per (owner, reason) per window.
    pub per_owner: Duration,
    /// Events per second over all owners.
    pub per_second: u32,
    /// Queue length; Events beyond it are dropped (and counted).
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_owner: Duration::from_secs(60),
            per_second: 10,
            queue: 1024,
        }
    }
}

/// Sends Events to the API in a background task.
pub struct Recorder {
    tx: tokio::sync::mpsc::Sender<Note>,
    pub dropped: Arc<AtomicU64>,
    pub posted: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the posting task on the current runtime. `instance` names this replica.
    pub fn start(client: kube::Client, instance: String, limits: Limits) -> Recorder {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Note>(limits.queue);
        let posted = Arc::new(AtomicU64::new(0));
        let counter = posted.clone();
        tokio::spawn(async move {
            let mut last: HashMap<(String, &'static str), Instant> = HashMap::new();
            let mut window = Instant::now();
            let mut in_window = 0u32;
            while let Some(note) = rx.recv().await {
                let key = (note.regarding.uid.clone(), note.reason);
                if last
                    .get(&key)
                    .is_some_and(|t| t.elapsed() < limits.per_owner)
                {
                    continue;
                }
                if window.elapsed() >= Duration::from_secs(1) {
                    window = Instant::now();
                    in_window = 0;
                }
                if in_window >= limits.per_second {
                    continue;
                }
                in_window += 1;
                last.insert(key, Instant::now());
                if last.len() > 10_000 {
                    last.retain(|_, t| t.elapsed() < limits.per_owner);
                }
                let api: Api<Event> = Api::namespaced(client.clone(), &note.namespace);
                match api
                    .create(&PostParams::default(), &event(&note, &instance))
                    .await
                {
                    Ok(_) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, owner = %note.regarding.name, "cannot post an Event (grant create on events.k8s.io events)")
                    }
                }
            }
        });
        Recorder {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            posted,
        }
    }
}

impl EventSink for Recorder {
    fn emit(&self, note: Note) {
        if self.tx.try_send(note).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn event(note: &Note, instance: &str) -> Event {
    let mut message = note.message.clone();
    if message.len() > 1024 {
        let mut end = 1021;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", note.regarding.name)),
            namespace: Some(note.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        action: Some("Admit".into()),
        reason: Some(note.reason.into()),
        note: Some(message),
        type_: Some(note.kind.into()),
        reporting_controller: Some("sidecar-kit.io/webhook".into()),
        reporting_instance: Some(instance.into()),
        regarding: Some(ObjectReference {
            api_version: Some(note.regarding.api_version.clone()),
            kind: Some(note.regarding.kind.clone()),
            name: Some(note.regarding.name.clone()),
            namespace: Some(note.namespace.clone()),
            uid: Some(note.regarding.uid.clone()),
            ..ObjectReference::default()
        }),
        ..Event::default()
    }
}
