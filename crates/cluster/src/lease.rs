//! Leader election through one `coordination.k8s.io/v1` Lease, with optimistic concurrency:
//! read the Lease, then replace it with the `resourceVersion` that was read; a 409 means
//! another replica wrote first, and the loop reads again.
//!
//! States, as in client-go's leader election:
//! - **standby**: the Lease is held by someone else. Its holder counts as alive while the
//!   Lease keeps changing; once it has not changed for `leaseDurationSeconds` (measured on
//!   our own clock, so clock skew between replicas does not matter) it is taken over. An
//!   empty holder (released on shutdown) is taken at once.
//! - **leader**: the Lease names us; we renew it every `renew_every`. When a renewal has
//!   not succeeded for two thirds of the duration we stop acting as leader before anyone
//!   else may take over.
//! - **released**: on shutdown the holder is cleared, so a standby takes over at its next
//!   look instead of waiting for the Lease to expire.
//!
//! A Lease naming our own identity is ours (a restarted container of the same pod), so
//! identities must be unique per replica: the pod name.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The field manager of every write of the label-nodes controller.
pub const FIELD_MANAGER: &str = "sidecar-kit-label-nodes";

/// Where the Lease is and how it is held.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (`holderIdentity`); unique per replica.
    pub identity: String,
    /// `leaseDurationSeconds` (whole seconds, at least 1).
    pub duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// How often a standby looks at the Lease.
    pub retry_every: Duration,
}

impl LeaseConfig {
    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// A leader that has not renewed for this long stops acting as leader.
    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// The time one API call may take.
    fn call_timeout(&self) -> Duration {
        self.renew_every
            .clamp(Duration::from_millis(500), Duration::from_secs(10))
    }
}

/// What the election says right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseStatus {
    /// We hold the Lease and renewed it within the renew deadline.
    pub leader: bool,
    /// The holder we last saw (ourselves included).
    pub holder: Option<String>,
    /// The last failure to read or write the Lease, until a call succeeds again.
    pub problem: Option<String>,
}

/// The election loop of one replica.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// The Lease as last read or written.
    last: Option<Lease>,
    /// The resourceVersion last seen and when it was first seen (our clock).
    observed: Option<(String, Instant)>,
    /// When we last renewed or acquired successfully.
    renewed: Option<Instant>,
    status: watch::Sender<LeaseStatus>,
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn holder(l: &Lease) -> Option<&str> {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

enum Outcome {
    Leader,
    Standby,
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> (Elector, watch::Receiver<LeaseStatus>) {
        let (tx, rx) = watch::channel(LeaseStatus::default());
        (
            Elector {
                api: Api::namespaced(client, &cfg.namespace),
                cfg,
                last: None,
                observed: None,
                renewed: None,
                status: tx,
            },
            rx,
        )
    }

    fn publish(&self, leader: bool, holder: Option<String>, problem: Option<String>) {
        let next = LeaseStatus {
            leader,
            holder,
            problem,
        };
        let was = self.status.borrow().clone();
        if was.leader != next.leader {
            if next.leader {
                tracing::info!(lease = %self.cfg.name, namespace = %self.cfg.namespace, identity = %self.cfg.identity, "became leader: labelling nodes");
            } else {
                tracing::info!(lease = %self.cfg.name, namespace = %self.cfg.namespace, holder = next.holder.as_deref().unwrap_or(""), "standing by: another replica leads or the Lease could not be renewed");
            }
        }
        if !was.leader && !next.leader && next.holder.is_some() && was.holder != next.holder {
            tracing::info!(lease = %self.cfg.name, namespace = %self.cfg.namespace, holder = next.holder.as_deref().unwrap_or(""), "standing by: the Lease is held by another replica");
        }
        if was.problem != next.problem
            && let Some(p) = &next.problem
        {
            tracing::warn!(lease = %self.cfg.name, namespace = %self.cfg.namespace, error = %p, "Lease call failed");
        }
        if was != next {
            self.status.send_replace(next);
        }
    }

    fn leading(&self) -> bool {
        self.status.borrow().leader
    }

    /// Runs until `stop` turns true, then releases the Lease if we hold it.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            self.step().await;
            let pause = if self.leading() {
                self.cfg.renew_every
            } else {
                self.cfg.retry_every
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.release().await;
    }

    /// One look at the Lease: renew, acquire, or stand by.
    pub async fn step(&mut self) {
        // A leader renews from the object it wrote last; anything else reads first.
        if self.leading()
            && let Some(last) = self.last.clone()
        {
            match self.write(self.renewed_lease(last, false)).await {
                Ok(Some(l)) => {
                    self.took(l);
                    return;
                }
                Ok(None) => {} // conflict: read again below
                Err(e) => {
                    self.failed(e);
                    return;
                }
            }
        }
        let current =
            match tokio::time::timeout(self.cfg.call_timeout(), self.api.get_opt(&self.cfg.name))
                .await
            {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => return self.failed(describe(&e, "get", &self.cfg)),
                Err(_) => {
                    return self.failed(format!(
                        "GET Lease {}/{}: no answer in time",
                        self.cfg.namespace, self.cfg.name
                    ));
                }
            };
        let outcome = match current {
            None => self.create().await,
            Some(l) => self.consider(l).await,
        };
        match outcome {
            Ok(Outcome::Leader) => {}
            Ok(Outcome::Standby) => {
                let h = self.last.as_ref().and_then(holder).map(String::from);
                self.renewed = None;
                self.publish(false, h, None);
            }
            Err(e) => self.failed(e),
        }
    }

    /// A successful write naming us.
    fn took(&mut self, l: Lease) {
        self.renewed = Some(Instant::now());
        self.observe(&l);
        self.last = Some(l);
        self.publish(true, Some(self.cfg.identity.clone()), None);
    }

    fn failed(&mut self, problem: String) {
        // Keep leading only while the last renewal is recent enough that no one else can
        // have taken over.
        let still = self.leading()
            && self
                .renewed
                .is_some_and(|t| t.elapsed() < self.cfg.renew_deadline());
        let h = self.status.borrow().holder.clone();
        self.publish(still, h, Some(problem));
    }

    fn observe(&mut self, l: &Lease) {
        let rv = l.metadata.resource_version.clone().unwrap_or_default();
        match &self.observed {
            Some((seen, _)) if *seen == rv => {}
            _ => self.observed = Some((rv, Instant::now())),
        }
    }

    async fn consider(&mut self, l: Lease) -> Result<Outcome, String> {
        self.observe(&l);
        let duration = l
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.cfg.duration, Duration::from_secs);
        let expired = self
            .observed
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= duration);
        let who = holder(&l).map(String::from);
        self.last = Some(l.clone());
        let ours = who.as_deref() == Some(self.cfg.identity.as_str());
        if !(ours || who.is_none() || expired) {
            return Ok(Outcome::Standby);
        }
        if !ours {
            tracing::info!(
                previous = who.as_deref().unwrap_or(""),
                released = who.is_none(),
                "taking over the Lease"
            );
        }
        match self.write(self.renewed_lease(l, !ours)).await? {
            Some(l) => {
                self.took(l);
                Ok(Outcome::Leader)
            }
            None => Ok(Outcome::Standby),
        }
    }

    async fn create(&mut self) -> Result<Outcome, String> {
        let now = now_micro();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.cfg.identity.clone()),
                lease_duration_seconds: Some(self.cfg.duration_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match tokio::time::timeout(self.cfg.call_timeout(), self.api.create(&pp, &lease)).await {
            Ok(Ok(l)) => {
                self.took(l);
                Ok(Outcome::Leader)
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Ok(Outcome::Standby),
            Ok(Err(e)) => Err(describe(&e, "create", &self.cfg)),
            Err(_) => Err(format!(
                "create Lease {}/{}: no answer in time",
                self.cfg.namespace, self.cfg.name
            )),
        }
    }

    /// `l` renewed by us now; `acquire` also sets the acquire time and counts a transition.
    fn renewed_lease(&self, mut l: Lease, acquire: bool) -> Lease {
        let now = now_micro();
        let spec = l.spec.get_or_insert_with(LeaseSpec::default);
        if acquire {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.cfg.identity.clone());
        spec.lease_duration_seconds = Some(self.cfg.duration_seconds());
        spec.renew_time = Some(now);
        l.metadata.managed_fields = None;
        l
    }

    /// Replaces the Lease with the resourceVersion it carries. `Ok(None)`: someone else
    /// wrote first (409).
    async fn write(&self, l: Lease) -> Result<Option<Lease>, String> {
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match tokio::time::timeout(
            self.cfg.call_timeout(),
            self.api.replace(&self.cfg.name, &pp, &l),
        )
        .await
        {
            Ok(Ok(l)) => Ok(Some(l)),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Ok(None),
            Ok(Err(e)) => Err(describe(&e, "update", &self.cfg)),
            Err(_) => Err(format!(
                "update Lease {}/{}: no answer in time",
                self.cfg.namespace, self.cfg.name
            )),
        }
    }

    /// Clears the holder if it is us, so a standby takes over at once.
    pub async fn release(&mut self) {
        let was_leader = self.leading();
        // Stop acting as leader before the Lease says so.
        let seen = self.status.borrow().holder.clone();
        self.publish(false, seen, None);
        if !was_leader {
            return;
        }
        if let Err(e) = self.clear_holder().await {
            tracing::warn!(
                lease = %self.cfg.name,
                namespace = %self.cfg.namespace,
                error = %e,
                "cannot release the Lease; a standby takes over once it expires"
            );
        }
    }

    /// Writes the Lease without a holder, re-reading it after a conflict (three tries).
    async fn clear_holder(&mut self) -> Result<(), String> {
        for _ in 0..3 {
            let Some(mut l) = self.last.clone() else {
                return Err(format!(
                    "Lease {}/{} not found",
                    self.cfg.namespace, self.cfg.name
                ));
            };
            if holder(&l) != Some(self.cfg.identity.as_str()) {
                // Someone else holds it already: nothing of ours to release.
                return Ok(());
            }
            if let Some(spec) = l.spec.as_mut() {
                spec.holder_identity = None;
            }
            l.metadata.managed_fields = None;
            if self.write(l).await?.is_some() {
                tracing::info!(lease = %self.cfg.name, namespace = %self.cfg.namespace, "Lease released");
                self.publish(false, None, None);
                return Ok(());
            }
            // Changed under us: read it again and retry if it still names us.
            self.last = match tokio::time::timeout(
                self.cfg.call_timeout(),
                self.api.get_opt(&self.cfg.name),
            )
            .await
            {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => return Err(describe(&e, "get", &self.cfg)),
                Err(_) => {
                    return Err(format!(
                        "GET Lease {}/{}: no answer in time",
                        self.cfg.namespace, self.cfg.name
                    ));
                }
            };
        }
        Err(format!(
            "update Lease {}/{}: changed by someone else at each of three tries",
            self.cfg.namespace, self.cfg.name
        ))
    }
}

/// A Lease call's error, naming the permission a 403 lacks.
fn describe(e: &kube::Error, verb: &str, cfg: &LeaseConfig) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{verb} Lease {}/{}: forbidden ({}); grant {verb} on leases.coordination.k8s.io in namespace {}",
            cfg.namespace, cfg.name, s.message, cfg.namespace
        ),
        kube::Error::Api(s) if s.code == 404 && verb == "create" => format!(
            "create Lease {}/{}: {} (create the namespace, or give --namespace)",
            cfg.namespace, cfg.name, s.message
        ),
        _ => format!("{verb} Lease {}/{}: {e}", cfg.namespace, cfg.name),
    }
}
