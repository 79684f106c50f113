//! The gate book: what the controller knows of each node's `SidecarContainers` gate and of
//! its permission to read it (readings, failing and refusing nodes, patch retries, the
//! node-proxy permission and its generation), kept behind one lock; its transitions are
//! plain methods, with the time passed in.

use super::reconcile::Evidence;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// A node's gate as last read.
#[derive(Debug, Clone)]
struct Reading {
    /// The kubelet version it was read for.
    version: String,
    evidence: Evidence,
    /// When to read again.
    due: Instant,
}

/// Whether the node proxy may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Permission {
    Disabled,
    Unknown,
    Permitted,
    Forbidden {
        since: Instant,
        message: String,
        probing: bool,
    },
}

/// What to do for a node's gate, as the book sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Known without a read: a current reading, or the version (reads disabled, or
    /// forbidden and not yet due for a probe).
    Known(Evidence),
    /// The permission was judged gone an interval ago: probe it with a read of this node.
    Probe,
    /// Read the gate; the evidence of the earlier reading for this kubelet version, if any.
    Read(Option<Evidence>),
}

/// A read under way: whose, and what it may fall back to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt<'a> {
    pub(super) name: &'a str,
    /// The kubelet version read for.
    pub(super) version: &'a str,
    /// The earlier reading for that version.
    pub(super) previous: Option<Evidence>,
    /// The book's generation when the read began.
    pub(super) generation: usize,
}

/// What an outcome changed that the logs (and the queue) hear of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Turns {
    /// The permission was judged gone just now: readings dropped, every node to look at.
    pub(super) permission_gone: bool,
    /// The permission is back after it was judged gone.
    pub(super) permission_back: bool,
    /// The first node whose read failed (none was failing before).
    pub(super) first_failure: bool,
    /// The last failing node was read again.
    pub(super) all_readable: bool,
}

pub(super) struct GateBook {
    readings: HashMap<String, Reading>,
    /// Nodes whose last read failed, with the error.
    failing: BTreeMap<String, String>,
    /// Nodes whose reads were refused (403) since the last successful read: one such node is
    /// that node's problem (its kubelet's authorization, a per-node rule); two different ones
    /// mean the permission is gone.
    refused: HashSet<String>,
    /// Nodes whose failed patch is to be retried, and when.
    retries: HashMap<String, Instant>,
    permission: Permission,
    /// Bumped when the permission is judged gone, so that a failed read finishing after that
    /// does not put back a reading the judgement cleared.
    generation: usize,
}

impl GateBook {
    /// An empty book; `node_metrics` false: reads are disabled.
    pub(super) fn new(node_metrics: bool) -> GateBook {
        GateBook {
            readings: HashMap::new(),
            failing: BTreeMap::new(),
            refused: HashSet::new(),
            retries: HashMap::new(),
            permission: if node_metrics {
                Permission::Unknown
            } else {
                Permission::Disabled
            },
            generation: 0,
        }
    }

    pub(super) fn permission(&self) -> &Permission {
        &self.permission
    }

    /// Nodes whose last read failed, with the error.
    pub(super) fn failing(&self) -> &BTreeMap<String, String> {
        &self.failing
    }

    pub(super) fn generation(&self) -> usize {
        self.generation
    }

    // --- before a read ---

    /// What to do for the gate of node `name` at kubelet `version`: a reading of the same
    /// version not yet due stands; forbidden or disabled, the version decides, except that
    /// once an `interval` after the judgement one read probes the permission again.
    pub(super) fn plan(
        &mut self,
        name: &str,
        version: &str,
        now: Instant,
        interval: Duration,
    ) -> Plan {
        let previous = self.readings.get(name).filter(|r| r.version == version);
        if let Some(r) = previous
            && r.due > now
        {
            return Plan::Known(r.evidence);
        }
        let previous = previous.map(|r| r.evidence);
        match &mut self.permission {
            Permission::Disabled => Plan::Known(Evidence::Version),
            Permission::Forbidden { since, probing, .. } => {
                if *probing || now.duration_since(*since) < interval {
                    return Plan::Known(Evidence::Version);
                }
                *probing = true;
                Plan::Probe
            }
            Permission::Unknown | Permission::Permitted => Plan::Read(previous),
        }
    }

    /// Keeps `evidence` as the reading of node `name` at kubelet `version`, due again at `due`.
    pub(super) fn remember(&mut self, name: &str, version: &str, evidence: Evidence, due: Instant) {
        self.readings.insert(
            name.to_string(),
            Reading {
                version: version.to_string(),
                evidence,
                due,
            },
        );
    }

    /// Whether node metrics may be read now (enabled, and not forbidden within `interval`).
    pub(super) fn may_read(&self, now: Instant, interval: Duration) -> bool {
        match &self.permission {
            Permission::Disabled => false,
            Permission::Forbidden { since, .. } => now.duration_since(*since) >= interval,
            Permission::Unknown | Permission::Permitted => true,
        }
    }

    /// Whether the gate of node `name` at kubelet `version` is due for a (re-)read: no
    /// reading of that version, or one whose time has come.
    pub(super) fn read_due(&self, name: &str, version: &str, now: Instant) -> bool {
        !self
            .readings
            .get(name)
            .is_some_and(|r| r.version == version && r.due > now)
    }

    // --- the outcome of a read ---

    /// The kubelet answered (with or without the gate line): refusals are forgotten, the
    /// permission is granted, the node is no longer failing, and `evidence` is its reading
    /// until `due`. An answer to a read that began before the permission was judged gone is
    /// older than that judgement: it changes nothing, and the version decides.
    pub(super) fn read_answered(
        &mut self,
        read: &Attempt<'_>,
        evidence: Evidence,
        due: Instant,
    ) -> (Evidence, Turns) {
        if self.generation != read.generation {
            return (Evidence::Version, Turns::default());
        }
        self.refused.clear();
        let permission_back = matches!(self.permission, Permission::Forbidden { .. });
        if matches!(
            self.permission,
            Permission::Unknown | Permission::Forbidden { .. }
        ) {
            self.permission = Permission::Permitted;
        }
        let all_readable = self.failing.remove(read.name).is_some() && self.failing.is_empty();
        self.remember(read.name, read.version, evidence, due);
        let turns = Turns {
            permission_back,
            all_readable,
            ..Turns::default()
        };
        (evidence, turns)
    }

    /// The read was refused (403). A second distinct node refused since the last answer:
    /// the permission is gone and the version decides. Else it is this node's problem: it
    /// is failing, and keeps its earlier reading (if any) until `due`.
    pub(super) fn read_refused(
        &mut self,
        read: &Attempt<'_>,
        message: &str,
        now: Instant,
        due: Instant,
    ) -> (Evidence, Turns) {
        self.refused.insert(read.name.to_string());
        if self.refused.len() >= 2 {
            let permission_gone = self.forbid(message, now);
            let turns = Turns {
                permission_gone,
                ..Turns::default()
            };
            return (Evidence::Version, turns);
        }
        let first_failure = self.fail(read.name, message);
        let evidence = self.keep_earlier(read, due);
        let turns = Turns {
            first_failure,
            ..Turns::default()
        };
        (evidence, turns)
    }

    /// The read failed for another reason than a 403: the node is failing and keeps its
    /// earlier reading (if any) until `due`; a permission probe ends undecided (forbidden
    /// from `now`, probed again an interval later).
    pub(super) fn read_failed(
        &mut self,
        read: &Attempt<'_>,
        error: &str,
        now: Instant,
        due: Instant,
    ) -> (Evidence, Turns) {
        let first_failure = self.fail(read.name, error);
        if let Permission::Forbidden { since, probing, .. } = &mut self.permission {
            *since = now;
            *probing = false;
        }
        let evidence = self.keep_earlier(read, due);
        let turns = Turns {
            first_failure,
            ..Turns::default()
        };
        (evidence, turns)
    }

    /// Node `name` failed a read with `error`; true: it is the only one failing.
    fn fail(&mut self, name: &str, error: &str) -> bool {
        let first = self.failing.is_empty();
        self.failing.insert(name.to_string(), error.to_string());
        first
    }

    /// After a failed read: an earlier reading for this version is better than none (else
    /// the version decides); read again at `due`. Nothing is kept when the permission was
    /// judged gone since the read began.
    fn keep_earlier(&mut self, read: &Attempt<'_>, due: Instant) -> Evidence {
        if self.generation != read.generation {
            return Evidence::Version;
        }
        let evidence = read.previous.unwrap_or(Evidence::Version);
        self.remember(read.name, read.version, evidence, due);
        evidence
    }

    /// The permission is judged gone (again) as of `now`. True: it was not judged gone
    /// before, so readings from metrics are dropped (a new generation).
    fn forbid(&mut self, message: &str, now: Instant) -> bool {
        let was_forbidden = matches!(self.permission, Permission::Forbidden { .. });
        self.permission = Permission::Forbidden {
            since: now,
            message: message.to_string(),
            probing: false,
        };
        if was_forbidden {
            return false;
        }
        self.generation += 1;
        self.readings.clear();
        true
    }

    // --- patch retries ---

    /// Node `name`'s failed patch is retried at `at`.
    pub(super) fn retry(&mut self, name: &str, at: Instant) {
        self.retries.insert(name.to_string(), at);
    }

    /// Takes the nodes whose patch retry is due by `now` into `due`.
    pub(super) fn retries_due(&mut self, now: Instant, due: &mut Vec<String>) {
        self.retries.retain(|n, at| {
            if *at <= now {
                due.push(n.clone());
                false
            } else {
                true
            }
        });
    }

    // --- nodes coming and going ---

    /// Drops the readings of nodes that `keep` says are gone (after a relist).
    pub(super) fn keep_readings(&mut self, keep: impl Fn(&str) -> bool) {
        self.readings.retain(|n, _| keep(n));
    }

    /// Forgets a deleted node's reading and failure.
    pub(super) fn forget(&mut self, name: &str) {
        self.readings.remove(name);
        self.failing.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_kit_core::version::GateState;

    const V: &str = "v1.31.2";
    const HOUR: Duration = Duration::from_secs(3600);
    const ON: Evidence = Evidence::Metrics(GateState::Enabled);
    const OFF: Evidence = Evidence::Metrics(GateState::Disabled);

    fn attempt<'a>(book: &GateBook, name: &'a str, previous: Option<Evidence>) -> Attempt<'a> {
        Attempt {
            name,
            version: V,
            previous,
            generation: book.generation(),
        }
    }

    fn first_failure() -> Turns {
        Turns {
            first_failure: true,
            ..Turns::default()
        }
    }

    fn forbidden(since: Instant, message: &str) -> Permission {
        Permission::Forbidden {
            since,
            message: message.into(),
            probing: false,
        }
    }

    #[test]
    fn two_distinct_nodes_refusing_is_the_permission_gone() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        let (ev, turns) = b.read_refused(&attempt(&b, "a", None), "a: no", t0, t0 + HOUR);
        assert_eq!((ev, turns), (Evidence::Version, first_failure()));
        assert_eq!(b.permission(), &Permission::Unknown);
        // The same node again is still that node's problem.
        let (_, turns) = b.read_refused(&attempt(&b, "a", None), "a: no", t0, t0 + HOUR);
        assert_eq!(turns, Turns::default());
        assert_eq!(b.permission(), &Permission::Unknown);

        let (ev, turns) = b.read_refused(&attempt(&b, "b", Some(ON)), "b: no", t0, t0 + HOUR);
        assert_eq!(ev, Evidence::Version, "no earlier reading stands");
        let gone = Turns {
            permission_gone: true,
            ..Turns::default()
        };
        assert_eq!(turns, gone);
        assert_eq!(b.permission(), &forbidden(t0, "b: no"));
        assert_eq!(b.plan("b", V, t0, HOUR), Plan::Known(Evidence::Version));
        assert!(!b.may_read(t0, HOUR));

        // Refused again while judged gone: a later judgement, nothing new to tell.
        let t1 = t0 + Duration::from_secs(1);
        let (ev, turns) = b.read_refused(&attempt(&b, "c", Some(ON)), "c: no", t1, t1 + HOUR);
        assert_eq!((ev, turns), (Evidence::Version, Turns::default()));
        assert_eq!(b.permission(), &forbidden(t1, "c: no"));
    }

    #[test]
    fn an_answer_older_than_the_judgement_changes_nothing() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        // A read of "c" begins, then two other nodes refuse: the permission is gone.
        let c = attempt(&b, "c", None);
        b.read_refused(&attempt(&b, "a", None), "a: no", t0, t0 + HOUR);
        b.read_refused(&attempt(&b, "b", None), "b: no", t0, t0 + HOUR);
        assert_eq!(b.permission(), &forbidden(t0, "b: no"));
        // Its answer, processed after the judgement, neither grants the permission back nor
        // leaves a reading from metrics behind.
        let (ev, turns) = b.read_answered(&c, ON, t0 + HOUR);
        assert_eq!((ev, turns), (Evidence::Version, Turns::default()));
        assert_eq!(b.permission(), &forbidden(t0, "b: no"));
        assert_eq!(b.plan("c", V, t0, HOUR), Plan::Known(Evidence::Version));
        // A read that began after the judgement (a probe) does grant it back.
        let t1 = t0 + HOUR;
        assert_eq!(b.plan("c", V, t1, HOUR), Plan::Probe);
        let (ev, turns) = b.read_answered(&attempt(&b, "c", None), ON, t1 + HOUR);
        assert_eq!(ev, ON);
        assert!(turns.permission_back);
        assert_eq!(b.permission(), &Permission::Permitted);
    }

    #[test]
    fn one_refusal_is_that_nodes_problem() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.read_answered(&attempt(&b, "a", None), ON, t0);
        b.read_answered(&attempt(&b, "b", None), OFF, t0 + HOUR);
        assert_eq!(b.plan("a", V, t0, HOUR), Plan::Read(Some(ON)), "due");

        let (ev, turns) = b.read_refused(&attempt(&b, "a", Some(ON)), "a: no", t0, t0 + HOUR);
        assert_eq!(ev, ON, "its earlier reading stands");
        assert_eq!(turns, first_failure());
        assert_eq!(b.permission(), &Permission::Permitted);
        assert_eq!(b.failing().get("a").map(String::as_str), Some("a: no"));
        assert_eq!(
            b.plan("a", V, t0, HOUR),
            Plan::Known(ON),
            "until the interval"
        );
        assert_eq!(
            b.plan("b", V, t0, HOUR),
            Plan::Known(OFF),
            "others untouched"
        );
        assert!(b.may_read(t0, HOUR));
        assert!(b.read_due("a", V, t0 + HOUR));
    }

    #[test]
    fn an_answer_clears_refusals_and_permits() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.read_refused(&attempt(&b, "a", None), "a: no", t0, t0 + HOUR);
        let (_, turns) = b.read_answered(&attempt(&b, "b", None), ON, t0 + HOUR);
        assert_eq!(turns, Turns::default(), "a is still failing");
        assert_eq!(b.permission(), &Permission::Permitted);
        assert_eq!(b.plan("b", V, t0, HOUR), Plan::Known(ON));
        // Refusals are counted afresh: one more node refusing is its own problem.
        let (_, turns) = b.read_refused(&attempt(&b, "c", None), "c: no", t0, t0 + HOUR);
        assert_eq!(turns, Turns::default());
        assert_eq!(b.permission(), &Permission::Permitted);
        // The failing nodes answer: the last one makes every node readable.
        let (_, turns) = b.read_answered(&attempt(&b, "c", None), ON, t0 + HOUR);
        assert_eq!(turns, Turns::default(), "a is still failing");
        let (_, turns) = b.read_answered(&attempt(&b, "a", None), ON, t0 + HOUR);
        let all_readable = Turns {
            all_readable: true,
            ..Turns::default()
        };
        assert_eq!(turns, all_readable);
        assert!(b.failing().is_empty());
    }

    #[test]
    fn the_answer_to_a_probe_brings_the_permission_back() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.read_refused(&attempt(&b, "a", None), "a: no", t0, t0 + HOUR);
        b.read_refused(&attempt(&b, "b", None), "b: no", t0, t0 + HOUR);
        let t1 = t0 + HOUR;
        assert_eq!(b.plan("a", V, t1, HOUR), Plan::Probe);
        let (_, turns) = b.read_answered(&attempt(&b, "a", None), ON, t1 + HOUR);
        let back = Turns {
            permission_back: true,
            all_readable: true,
            ..Turns::default()
        };
        assert_eq!(turns, back, "a was the only failing node");
        assert_eq!(b.permission(), &Permission::Permitted);
        assert_eq!(b.plan("a", V, t1, HOUR), Plan::Known(ON));
        assert_eq!(b.plan("b", V, t1, HOUR), Plan::Read(None));
    }

    #[test]
    fn a_failure_is_undecided() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        // Failures are not refusals: any number of them leave the permission as it was.
        for n in ["a", "b", "c"] {
            b.read_failed(&attempt(&b, n, None), "timeout", t0, t0 + HOUR);
        }
        assert_eq!(b.permission(), &Permission::Unknown);
        assert_eq!(b.failing().len(), 3);
        let (ev, turns) = b.read_failed(&attempt(&b, "d", Some(OFF)), "503", t0, t0 + HOUR);
        assert_eq!(
            (ev, turns),
            (OFF, Turns::default()),
            "the earlier reading stands"
        );
        assert_eq!(b.plan("d", V, t0, HOUR), Plan::Known(OFF));
        assert_eq!(b.plan("d", V, t0 + HOUR, HOUR), Plan::Read(Some(OFF)));

        // A probe of a forbidden permission that fails: still forbidden, probed again an
        // interval after the failure.
        b.read_refused(&attempt(&b, "e", None), "no", t0, t0 + HOUR);
        b.read_refused(&attempt(&b, "f", None), "no", t0, t0 + HOUR);
        assert!(matches!(b.permission(), Permission::Forbidden { .. }));
        let t1 = t0 + HOUR;
        assert_eq!(b.plan("a", V, t1, HOUR), Plan::Probe);
        assert_eq!(
            b.plan("b", V, t1, HOUR),
            Plan::Known(Evidence::Version),
            "one probe at a time"
        );
        b.read_failed(&attempt(&b, "a", None), "timeout", t1, t1 + HOUR);
        assert_eq!(b.permission(), &forbidden(t1, "no"));
        assert_eq!(b.plan("a", V, t1, HOUR), Plan::Known(Evidence::Version));
        assert!(!b.may_read(t1, HOUR));
        assert!(b.may_read(t1 + HOUR, HOUR));
        assert_eq!(b.plan("a", V, t1 + HOUR, HOUR), Plan::Probe);
    }

    #[test]
    fn readings_stand_for_their_kubelet_version_only() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.remember("a", "v1.28.5", ON, t0 + HOUR);
        assert_eq!(b.plan("a", "v1.28.5", t0, HOUR), Plan::Known(ON));
        assert!(!b.read_due("a", "v1.28.5", t0));
        assert_eq!(b.plan("a", "v1.28.6", t0, HOUR), Plan::Read(None));
        assert!(b.read_due("a", "v1.28.6", t0));
        assert!(b.read_due("a", "v1.28.5", t0 + HOUR), "due at its time");
        assert!(b.read_due("b", "v1.28.5", t0), "never read");
    }

    #[test]
    fn readings_are_dropped_when_the_permission_is_judged_gone() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.remember("a", V, ON, t0 + HOUR);
        b.remember("b", V, OFF, t0);
        // A read of b begins, then two other nodes refuse.
        let read_b = attempt(&b, "b", Some(OFF));
        b.read_refused(&attempt(&b, "c", None), "no", t0, t0 + HOUR);
        b.read_refused(&attempt(&b, "d", None), "no", t0, t0 + HOUR);
        assert_eq!(b.generation(), read_b.generation + 1);
        assert!(b.read_due("a", V, t0), "a's reading is gone");
        // b's read fails after the judgement: its earlier reading is not put back.
        let (ev, _) = b.read_failed(&read_b, "timeout", t0, t0 + HOUR);
        assert_eq!(ev, Evidence::Version);
        assert!(b.read_due("b", V, t0));
        // Permitted again (a probe answers): nothing of before stands.
        b.read_answered(&attempt(&b, "c", None), ON, t0 + HOUR);
        assert_eq!(b.plan("a", V, t0, HOUR), Plan::Read(None));
        assert_eq!(b.plan("b", V, t0, HOUR), Plan::Read(None));
    }

    #[test]
    fn disabled_reads_nothing() {
        let mut b = GateBook::new(false);
        let t0 = Instant::now();
        assert_eq!(b.permission(), &Permission::Disabled);
        assert_eq!(b.plan("a", V, t0, HOUR), Plan::Known(Evidence::Version));
        assert!(!b.may_read(t0 + HOUR, HOUR));
    }

    #[test]
    fn patch_retries_fall_due_once() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.retry("a", t0);
        b.retry("b", t0 + HOUR);
        let mut due = Vec::new();
        b.retries_due(t0, &mut due);
        assert_eq!(due, ["a"]);
        due.clear();
        b.retries_due(t0, &mut due);
        assert!(due.is_empty());
        b.retries_due(t0 + HOUR, &mut due);
        assert_eq!(due, ["b"]);
    }

    #[test]
    fn a_deleted_or_unlisted_node_is_forgotten() {
        let mut b = GateBook::new(true);
        let t0 = Instant::now();
        b.remember("a", V, ON, t0 + HOUR);
        b.remember("b", V, ON, t0 + HOUR);
        b.read_failed(&attempt(&b, "c", None), "timeout", t0, t0 + HOUR);
        b.forget("c");
        assert!(b.failing().is_empty());
        assert!(b.read_due("c", V, t0), "nor its reading");
        b.keep_readings(|n| n == "a");
        assert!(!b.read_due("a", V, t0));
        assert!(b.read_due("b", V, t0));
    }
}
