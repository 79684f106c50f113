//! Posts the webhook's Events (`events.k8s.io/v1`) on pods' owners: off the review path
//! through a bounded queue, at most one Event per owner and reason per window, and a global
//! rate, so a thousand-pod rollout makes a handful of Events, not a thousand.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use sidecar_kit_core::events::{EventSink, Note, SinkCounts};
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
    /// Events not queued (the queue was full).
    pub dropped: Arc<AtomicU64>,
    /// Events the API server stored.
    pub posted: Arc<AtomicU64>,
    /// Events the API server refused (or did not answer).
    pub failed: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the posting task on the current runtime. `instance` names this replica.
    pub fn start(client: kube::Client, instance: String, limits: Limits) -> Recorder {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Note>(limits.queue);
        let posted = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (posted_count, failed_count) = (posted.clone(), failed.clone());
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
                match post(&api, &note, &instance).await {
                    Ok(()) => {
                        posted_count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed_count.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            owner = %format!("{}/{}", note.regarding.kind, note.regarding.name),
                            namespace = %note.namespace,
                            reason = note.reason,
                            error = %refusal(&e),
                            "cannot post an Event"
                        );
                    }
                }
            }
        });
        Recorder {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            posted,
            failed,
        }
    }
}

/// Creates the Event; a name taken already (two replicas, one nanosecond) gets one more try
/// under a new name.
async fn post(api: &Api<Event>, note: &Note, instance: &str) -> Result<(), kube::Error> {
    let nanos = unix_nanos();
    match api
        .create(&PostParams::default(), &event(note, instance, nanos))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let again = unix_nanos().max(nanos.saturating_add(1));
            api.create(&PostParams::default(), &event(note, instance, again))
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}

/// What the API server answered, quoted: code, reason and message. Only a 403 adds the
/// permission to grant.
fn refusal(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{} {}: {} (grant create on events.k8s.io events to the webhook's ServiceAccount)",
            s.code, s.reason, s.message
        ),
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The longest name the API server accepts for an Event (an RFC 1123 subdomain).
const MAX_NAME: usize = 253;

/// `<owner>.<unix nanoseconds in hex>`, as Kubernetes' own event recorders name Events: a
/// full name, valid whatever the owner's name (cut and cleaned to an RFC 1123 subdomain).
pub fn event_name(owner: &str, nanos: u128) -> String {
    let suffix = format!("{nanos:x}");
    let room = MAX_NAME - 1 - suffix.len();
    let lowered = owner.to_ascii_lowercase();
    let cleaned: String = lowered
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    // Every dot-separated label starts and ends with an alphanumeric character.
    let mut base = cleaned
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    if base.len() > room {
        base.truncate(room);
        base = base.trim_end_matches(['-', '.']).to_string();
    }
    if base.is_empty() {
        suffix
    } else {
        format!("{base}.{suffix}")
    }
}

impl EventSink for Recorder {
    fn emit(&self, note: Note) {
        if self.tx.try_send(note).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counts(&self) -> SinkCounts {
        SinkCounts {
            posted: self.posted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

fn event(note: &Note, instance: &str, nanos: u128) -> Event {
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
            name: Some(event_name(&note.regarding.name, nanos)),
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
