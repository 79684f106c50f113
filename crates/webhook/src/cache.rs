//! A bounded cache of review answers. Pods created from one template (a Deployment scaling
//! up, a Job's completions) carry the same labels, annotations and spec, and the engine's
//! answer depends on nothing else of the object: the cache serves those repeats without
//! planning again. The key holds the exact bytes the answer depends on (compared in full on
//! a hit, so a hash collision cannot serve a wrong answer) and the generations of the
//! profile set and the cluster facts, so a reload or a fact change misses.

use sidecar_kit_core::pod::AnswerInputs;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The bytes an answer depends on, hashed once for every look-up of one review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    bytes: Vec<u8>,
    hash: u64,
}

/// The keys' hasher: foldhash, seeded at random once per process. A key is 1–3 KB of a
/// pod's text; SipHash (the standard library's) took 4k instructions a review for it,
/// foldhash reads 16 bytes a step. Keys come from users' pods, so the seed is random (a
/// fixed hash could be steered into one bucket), and a hit compares the bytes in full.
static KEY_HASHER: std::sync::LazyLock<foldhash::fast::RandomState> =
    std::sync::LazyLock::new(foldhash::fast::RandomState::default);

impl Key {
    pub fn new(bytes: Vec<u8>) -> Key {
        Key {
            hash: KEY_HASHER.hash_one(bytes.as_slice()),
            bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The key of the answer about `object`, or `None` when the object cannot be read (no
/// caching).
pub fn key(object: &str, request_namespace: &str, generations: (u64, u64)) -> Option<Key> {
    let inputs = sidecar_kit_core::pod::answer_inputs(object)?;
    Some(key_of(&inputs, request_namespace, generations))
}

/// [`key`], from the object's inputs where the review's reader took them already.
pub fn key_with(
    inputs: Option<&AnswerInputs<'_>>,
    object: &str,
    request_namespace: &str,
    generations: (u64, u64),
) -> Option<Key> {
    match inputs {
        Some(i) => Some(key_of(i, request_namespace, generations)),
        None => key(object, request_namespace, generations),
    }
}

fn key_of(inputs: &AnswerInputs<'_>, request_namespace: &str, generations: (u64, u64)) -> Key {
    let parts = [
        Some(request_namespace),
        inputs.kind,
        inputs.api_version,
        inputs.metadata.then_some(""),
        inputs.labels,
        inputs.annotations,
        inputs.namespace,
        inputs.spec,
    ];
    // (sized exactly: a length before each part)
    let len = 16
        + parts
            .iter()
            .map(|p| 8 + p.map_or(0, str::len))
            .sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.extend_from_slice(&generations.0.to_le_bytes());
    k.extend_from_slice(&generations.1.to_le_bytes());
    for p in parts {
        match p {
            Some(s) => {
                k.extend_from_slice(&(s.len() as u64 + 1).to_le_bytes());
                k.extend_from_slice(s.as_bytes());
            }
            None => k.extend_from_slice(&0u64.to_le_bytes()),
        }
    }
    Key::new(k)
}

/// A map from key bytes to answers, bounded in bytes; the oldest entry goes first.
pub struct Cache<V> {
    /// Budget in bytes (keys plus the sizes given at insert); 0 disables the cache.
    capacity: usize,
    inner: Mutex<Inner<V>>,
    /// The recent share of lookups that hit, out of [`HIT_SCALE`] (a moving average over
    /// about the last 16 lookups).
    hit_share: AtomicU32,
}

/// The scale of [`Cache::likely_hit`]'s moving average.
const HIT_SCALE: u32 = 1 << 16;

/// Entries under one hash: (key bytes, answer, cost in bytes).
type Bucket<V> = Vec<(Vec<u8>, Arc<V>, usize)>;

struct Inner<V> {
    map: HashMap<u64, Bucket<V>>,
    order: VecDeque<u64>,
    len: usize,
    bytes: usize,
    /// Hashes of keys seen once: an answer is stored only when its key comes back, so a
    /// stream of all-different pods costs no memory (a doorkeeper, as in TinyLFU).
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
}

/// Keys remembered by the doorkeeper.
const SEEN: usize = 4096;

impl<V> Cache<V> {
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                len: 0,
                bytes: 0,
                seen: HashSet::new(),
                seen_order: VecDeque::new(),
            }),
            hit_share: AtomicU32::new(0),
        }
    }

    /// Whether most recent lookups hit (a pod storm): then reading a pod for the engine
    /// while reading its key is likely work for nothing. A hint only: concurrent lookups
    /// may each update the average from the same value.
    pub fn likely_hit(&self) -> bool {
        self.capacity > 0 && self.hit_share.load(Ordering::Relaxed) > HIT_SCALE / 2
    }

    fn note_lookup(&self, hit: bool) {
        let share = self.hit_share.load(Ordering::Relaxed);
        let next = share - share / 16 + if hit { HIT_SCALE / 16 } else { 0 };
        self.hit_share.store(next, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, k: &Key) -> Option<Arc<V>> {
        let found = self.find(k);
        self.note_lookup(found.is_some());
        found
    }

    fn find(&self, k: &Key) -> Option<Arc<V>> {
        let inner = self.inner.lock().ok()?;
        inner
            .map
            .get(&k.hash)?
            .iter()
            .find(|(key, _, _)| *key == k.bytes)
            .map(|(_, v, _)| v.clone())
    }

    /// Whether an answer for this key is worth storing: true from its second sighting on.
    pub fn admit(&self, k: &Key) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let h = k.hash;
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if inner.seen.contains(&h) {
            return true;
        }
        if inner.seen_order.len() >= SEEN
            && let Some(old) = inner.seen_order.pop_front()
        {
            inner.seen.remove(&old);
        }
        inner.seen.insert(h);
        inner.seen_order.push_back(h);
        false
    }

    /// Stores an answer of `size` bytes; entries over an eighth of the budget are not kept.
    pub fn insert(&self, k: Key, v: V, size: usize) {
        self.insert_shared(k, Arc::new(v), size);
    }

    /// Stores an answer already shared with its caller, like [`Cache::insert`].
    pub fn insert_shared(&self, k: Key, v: Arc<V>, size: usize) {
        let cost = k.len() + size;
        if self.capacity == 0 || cost > self.capacity / 8 {
            return;
        }
        let Key { bytes: k, hash: h } = k;
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner
            .map
            .get(&h)
            .is_some_and(|b| b.iter().any(|(key, _, _)| *key == k))
        {
            return;
        }
        while inner.bytes + cost > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            let mut freed = 0;
            if let Some(bucket) = inner.map.get_mut(&old)
                && !bucket.is_empty()
            {
                freed = bucket.remove(0).2;
            }
            if inner.map.get(&old).is_some_and(Vec::is_empty) {
                inner.map.remove(&old);
            }
            inner.len -= usize::from(freed > 0);
            inner.bytes -= freed;
        }
        inner.map.entry(h).or_default().push((k, v, cost));
        inner.order.push_back(h);
        inner.len += 1;
        inner.bytes += cost;
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.len).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_what_the_answer_depends_on() {
        let a = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"generateName":"web-","labels":{"app":"web"},"managedFields":[{"time":"1"}]},"spec":{"containers":[]}}"#;
        let same = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"generateName":"web-","labels":{"app":"web"},"managedFields":[{"time":"2"}]},"spec":{"containers":[]}}"#;
        let other_label = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"labels":{"app":"api"}},"spec":{"containers":[]}}"#;
        let other_spec = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"x"}]}}"#;
        let k = |o: &str, ns: &str, g: (u64, u64)| key(o, ns, g).unwrap();
        assert_eq!(
            k(a, "shop", (1, 0)),
            k(same, "shop", (1, 0)),
            "managedFields and names do not matter"
        );
        assert_ne!(k(a, "shop", (1, 0)), k(a, "other", (1, 0)));
        assert_ne!(
            k(a, "shop", (1, 0)),
            k(a, "shop", (2, 0)),
            "a profile reload misses"
        );
        assert_ne!(
            k(a, "shop", (1, 0)),
            k(a, "shop", (1, 1)),
            "a facts change misses"
        );
        assert_ne!(k(a, "shop", (1, 0)), k(other_label, "shop", (1, 0)));
        assert_ne!(
            k(other_label, "shop", (1, 0)),
            k(other_spec, "shop", (1, 0))
        );
        assert!(key("[1]", "", (0, 0)).is_none());
    }

    /// The parts, as serde reads them (the reference for the one-pass reading).
    fn serde_key(object: &str, ns: &str, g: (u64, u64)) -> Option<Key> {
        use serde::Deserialize;
        use serde_json::value::RawValue;
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow, default)]
            kind: Option<&'a RawValue>,
            #[serde(borrow, default, rename = "apiVersion")]
            api_version: Option<&'a RawValue>,
            #[serde(borrow, default)]
            metadata: Option<Meta<'a>>,
            #[serde(borrow, default)]
            spec: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Meta<'a> {
            #[serde(borrow, default)]
            labels: Option<&'a RawValue>,
            #[serde(borrow, default)]
            annotations: Option<&'a RawValue>,
            #[serde(borrow, default)]
            namespace: Option<&'a RawValue>,
        }
        if !object.trim_start().starts_with('{') {
            return None;
        }
        let h: Head<'_> = serde_json::from_str(object).ok()?;
        let m = h.metadata.as_ref();
        let inputs = AnswerInputs {
            kind: h.kind.map(RawValue::get),
            api_version: h.api_version.map(RawValue::get),
            metadata: m.is_some(),
            labels: m.and_then(|m| m.labels).map(RawValue::get),
            annotations: m.and_then(|m| m.annotations).map(RawValue::get),
            namespace: m.and_then(|m| m.namespace).map(RawValue::get),
            spec: h.spec.map(RawValue::get),
        };
        Some(key_of(&inputs, ns, g))
    }

    #[test]
    fn the_key_is_read_as_serde_reads_it() {
        for object in [
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","labels":{"app":"web"},"annotations":{"x":"y"},"namespace":"shop","managedFields":[{"f":{"k:{\"a\":1}":{}}}]},"spec":{"containers":[{"name":"c"}]},"status":{}}"#,
            r#" { "kind" : "Pod" , "metadata" : { "labels" : { "a" : "b" } } , "spec" : [ 1 , 2.5e3 ] } "#,
            r#"{"kind":null,"metadata":null,"spec":null}"#,
            r#"{"metadata":{"labels":null,"namespace":"n"}}"#,
            r#"{}"#,
            r#"{"kind":"Pod","kind":"Pod"}"#,
            r#"{"metadata":{"labels":{},"labels":{}}}"#,
            r#"{"spec":{}} x"#,
            r#"{"spec":{},}"#,
            r#"[1]"#,
            r#"{"spec":tru}"#,
        ] {
            assert_eq!(
                key(object, "ns", (1, 2)),
                serde_key(object, "ns", (1, 2)),
                "{object}"
            );
        }
        // serde reads a struct from an array too; such metadata is no pod's, and not cached.
        assert!(serde_key(r#"{"metadata":[]}"#, "ns", (1, 2)).is_some());
        assert!(key(r#"{"metadata":[]}"#, "ns", (1, 2)).is_none());
    }

    #[test]
    fn bounded_and_exact() {
        let c = Cache::new(80);
        c.insert(Key::new(b"a".to_vec()), 1, 9);
        c.insert(Key::new(b"b".to_vec()), 2, 9);
        c.insert(Key::new(b"big".to_vec()), 9, 20);
        assert_eq!(
            c.len(),
            2,
            "an entry over an eighth of the budget is not kept"
        );
        for (i, k) in [b"c", b"d", b"e", b"f", b"g", b"h", b"i"]
            .into_iter()
            .enumerate()
        {
            c.insert(Key::new(k.to_vec()), 3 + i, 9);
        }
        assert_eq!(c.len(), 8, "80 bytes hold eight entries of 10");
        assert!(
            c.get(&Key::new(b"a".to_vec())).is_none(),
            "the oldest went first"
        );
        assert_eq!(*c.get(&Key::new(b"i".to_vec())).unwrap(), 9);
        assert!(c.get(&Key::new(b"never".to_vec())).is_none());
        assert!(c.get(&Key::new(b"i".to_vec())).is_some());
        assert!(
            !c.admit(&Key::new(b"first".to_vec())),
            "a key seen once is not worth storing yet"
        );
        assert!(
            c.admit(&Key::new(b"first".to_vec())),
            "it is when it comes back"
        );
        let off = Cache::<u8>::new(0);
        off.insert(Key::new(b"a".to_vec()), 1, 1);
        assert!(off.get(&Key::new(b"a".to_vec())).is_none());
    }

    /// `likely_hit` follows what recent lookups found: a storm of one pod turns it on within
    /// a few lookups, a run of new pods off again.
    #[test]
    fn likely_hit_follows_recent_lookups() {
        let c = Cache::<u8>::new(1000);
        let (hit, miss) = (Key::new(b"storm".to_vec()), Key::new(b"new".to_vec()));
        c.insert(Key::new(b"storm".to_vec()), 1, 1);
        assert!(!c.likely_hit(), "nothing looked up yet");
        let lookups_until = |want: bool, k: &Key| {
            (1..=64)
                .find(|_| {
                    c.get(k);
                    c.likely_hit() == want
                })
                .expect("the hint turns within 64 lookups")
        };
        let on = lookups_until(true, &hit);
        assert!((8..=16).contains(&on), "on after {on} hits");
        for _ in 0..100 {
            assert!(c.get(&hit).is_some());
        }
        assert!(c.likely_hit());
        let off = lookups_until(false, &miss);
        assert!((8..=16).contains(&off), "off after {off} misses");
        let disabled = Cache::<u8>::new(0);
        for _ in 0..32 {
            disabled.get(&hit);
        }
        assert!(!disabled.likely_hit(), "a disabled cache never hits");
    }
}
