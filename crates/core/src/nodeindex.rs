//! An index over the cluster's nodes that answers "which nodes could this pod land on, and
//! of which classes are they" in microseconds for thousands of nodes.
//!
//! Nodes are numbered; every label value, taint set and node class is a bitset over those
//! numbers. A pod's candidates are then bitwise operations: `nodeSelector` and required
//! node-affinity expressions become unions and intersections of label bitsets, taints are
//! evaluated once per distinct taint set, and the classes are counted with popcounts.
//! The answer is the same as [`crate::facts::Scheduling::admits`] node by node (a property
//! test holds them together).

use crate::facts::{
    CandidateSummary, Label, NodeFacts, NodeSelectorRequirement, NodeSelectorTerm, Scheduling,
    Taint,
};
use crate::version::{KubeVersion, NodeClass};
use std::collections::HashMap;

/// A set of node numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn empty(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn full(n: usize) -> Bits {
        let mut b = Bits(vec![u64::MAX; n.div_ceil(64)]);
        b.trim(n);
        b
    }
    /// Clears the bits past `n`.
    fn trim(&mut self, n: usize) {
        let rem = n % 64;
        if rem != 0
            && let Some(last) = self.0.last_mut()
        {
            *last &= (1u64 << rem) - 1;
        }
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn and(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a &= b;
        }
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    /// Complement within the first `n` numbers.
    fn not(&mut self, n: usize) {
        for w in &mut self.0 {
            *w = !*w;
        }
        self.trim(n);
    }
    fn count_and(&self, o: &Bits) -> usize {
        self.0
            .iter()
            .zip(&o.0)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }
    fn iter_and<'a>(&'a self, o: &'a Bits) -> impl Iterator<Item = usize> + 'a {
        self.0.iter().zip(&o.0).enumerate().flat_map(|(w, (a, b))| {
            let mut x = a & b;
            std::iter::from_fn(move || {
                if x == 0 {
                    return None;
                }
                let t = x.trailing_zeros() as usize;
                x &= x - 1;
                Some(w * 64 + t)
            })
        })
    }
}

/// The nodes that carry one label value: few of them (a per-node hostname) as their
/// numbers, more as a bitset, whichever is smaller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Members {
    Few(Vec<u32>),
    Many(Bits),
}

impl Members {
    /// `numbers` (ascending) among `n` nodes.
    fn of(numbers: Vec<u32>, n: usize) -> Members {
        // Four bytes a number against one bit a node.
        if numbers.len() * 32 < n {
            let mut numbers = numbers;
            numbers.shrink_to_fit();
            return Members::Few(numbers);
        }
        let mut b = Bits::empty(n);
        for i in numbers {
            b.set(i as usize);
        }
        Members::Many(b)
    }

    fn or_into(&self, b: &mut Bits) {
        match self {
            Members::Few(numbers) => numbers.iter().for_each(|&i| b.set(i as usize)),
            Members::Many(bits) => b.or(bits),
        }
    }

    fn and_into(&self, b: &mut Bits, n: usize) {
        match self {
            Members::Few(numbers) => {
                let mut kept = Bits::empty(n);
                for &i in numbers {
                    if b.get(i as usize) {
                        kept.set(i as usize);
                    }
                }
                *b = kept;
            }
            Members::Many(bits) => b.and(bits),
        }
    }
}

/// The precomputed index. Build it once per change of the node set.
#[derive(Debug, Clone)]
pub struct NodeIndex {
    names: Vec<String>,
    by_name: HashMap<String, usize>,
    /// key → value → nodes.
    /// (Keys and values shared with the nodes they come from.)
    labels: HashMap<Label, HashMap<Label, Members>>,
    /// key → nodes that have the key at all (`Exists`, `DoesNotExist`, `NotIn`).
    keys: HashMap<Label, Bits>,
    /// Distinct sets of NoSchedule/NoExecute taints (cordons included) and their nodes.
    taint_groups: Vec<(Vec<Taint>, Bits)>,
    classes: [Bits; 4],
    is_1_28: Bits,
    windows: Bits,
    n: usize,
}

fn class_slot(c: NodeClass) -> usize {
    match c {
        NodeClass::Capable => 0,
        NodeClass::Unaware => 1,
        NodeClass::Rejecting => 2,
        NodeClass::Unknown => 3,
    }
}

const CLASSES: [NodeClass; 4] = [
    NodeClass::Capable,
    NodeClass::Unaware,
    NodeClass::Rejecting,
    NodeClass::Unknown,
];

impl NodeIndex {
    pub fn new(nodes: &[NodeFacts]) -> NodeIndex {
        NodeIndex::of_refs(&nodes.iter().collect::<Vec<_>>())
    }

    /// The index of nodes held elsewhere (a watch cache's map), in the order given.
    pub fn of_refs(nodes: &[&NodeFacts]) -> NodeIndex {
        let n = nodes.len();
        let mut idx = NodeIndex {
            names: Vec::with_capacity(n),
            by_name: HashMap::with_capacity(n),
            labels: HashMap::new(),
            keys: HashMap::new(),
            taint_groups: Vec::new(),
            classes: [
                Bits::empty(n),
                Bits::empty(n),
                Bits::empty(n),
                Bits::empty(n),
            ],
            is_1_28: Bits::empty(n),
            windows: Bits::empty(n),
            n,
        };
        let mut groups: HashMap<Vec<Taint>, Bits> = HashMap::new();
        let mut labels: HashMap<&Label, HashMap<&Label, Vec<u32>>> = HashMap::new();
        for (i, &node) in nodes.iter().enumerate() {
            idx.names.push(node.name.clone());
            idx.by_name.insert(node.name.clone(), i);
            for (k, v) in &node.labels {
                labels
                    .entry(k)
                    .or_default()
                    .entry(v)
                    .or_default()
                    .push(i as u32);
                idx.keys
                    .entry(k.clone())
                    .or_insert_with(|| Bits::empty(n))
                    .set(i);
            }
            let mut taints: Vec<Taint> = node
                .taints
                .iter()
                .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                .cloned()
                .collect();
            if node.unschedulable {
                taints.push(Taint {
                    key: "node.kubernetes.io/unschedulable".into(),
                    value: None,
                    effect: "NoSchedule".into(),
                });
            }
            taints
                .sort_by(|a, b| (&a.key, &a.value, &a.effect).cmp(&(&b.key, &b.value, &b.effect)));
            groups
                .entry(taints)
                .or_insert_with(|| Bits::empty(n))
                .set(i);
            idx.classes[class_slot(node.class())].set(i);
            if KubeVersion::parse(&node.kubelet_version).is_some_and(|v| v.minor_is(1, 28)) {
                idx.is_1_28.set(i);
            }
            if node.is_windows() {
                idx.windows.set(i);
            }
        }
        idx.taint_groups = groups.into_iter().collect();
        idx.labels = labels
            .into_iter()
            .map(|(k, values)| {
                let values = values
                    .into_iter()
                    .map(|(v, numbers)| (v.clone(), Members::of(numbers, n)))
                    .collect();
                (k.clone(), values)
            })
            .collect();
        idx
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn key_any(&self, key: &str) -> Bits {
        self.keys
            .get(key)
            .cloned()
            .unwrap_or_else(|| Bits::empty(self.n))
    }

    fn value(&self, key: &str, value: &str) -> Option<&Members> {
        self.labels.get(key)?.get(value)
    }

    fn requirement(&self, r: &NodeSelectorRequirement) -> Bits {
        let n = self.n;
        let mut b = Bits::empty(n);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                for v in &r.values {
                    if let Some(members) = self.value(&r.key, v) {
                        members.or_into(&mut b);
                    }
                }
                if r.operator == "NotIn" {
                    b.not(n);
                }
            }
            "Exists" => b = self.key_any(&r.key),
            "DoesNotExist" => {
                b = self.key_any(&r.key);
                b.not(n);
            }
            "Gt" | "Lt" => {
                let Some(bound) = r.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return b;
                };
                for (v, members) in self.labels.get(r.key.as_str()).into_iter().flatten() {
                    if let Ok(x) = v.parse::<i64>()
                        && (if r.operator == "Gt" {
                            x > bound
                        } else {
                            x < bound
                        })
                    {
                        members.or_into(&mut b);
                    }
                }
            }
            _ => {}
        }
        b
    }

    fn field(&self, r: &NodeSelectorRequirement) -> Bits {
        let n = self.n;
        let mut b = Bits::empty(n);
        if r.key != "metadata.name" {
            return b;
        }
        match r.operator.as_str() {
            "In" | "NotIn" => {
                for v in &r.values {
                    if let Some(&i) = self.by_name.get(v) {
                        b.set(i);
                    }
                }
                if r.operator == "NotIn" {
                    b.not(n);
                }
            }
            "Exists" => b = Bits::full(n),
            _ => {}
        }
        b
    }

    fn term(&self, t: &NodeSelectorTerm) -> Bits {
        if t.match_expressions.is_empty() && t.match_fields.is_empty() {
            return Bits::empty(self.n);
        }
        let mut b = Bits::full(self.n);
        for r in &t.match_expressions {
            b.and(&self.requirement(r));
        }
        for r in &t.match_fields {
            b.and(&self.field(r));
        }
        b
    }

    fn candidate_bits(&self, s: &Scheduling) -> Bits {
        let n = self.n;
        if let Some(name) = &s.node_name {
            let mut b = Bits::empty(n);
            if let Some(&i) = self.by_name.get(name) {
                b.set(i);
            }
            return b;
        }
        let mut b = Bits::full(n);
        for (k, v) in &s.node_selector {
            match self.value(k, v) {
                Some(members) => members.and_into(&mut b, n),
                None => return Bits::empty(n),
            }
        }
        if !s.required_terms.is_empty() {
            let mut any = Bits::empty(n);
            for t in &s.required_terms {
                any.or(&self.term(t));
            }
            b.and(&any);
        }
        let mut tolerated = Bits::empty(n);
        for (taints, bits) in &self.taint_groups {
            if taints
                .iter()
                .all(|t| s.tolerations.iter().any(|tol| tol.tolerates(t)))
            {
                tolerated.or(bits);
            }
        }
        b.and(&tolerated);
        b
    }

    /// The nodes the pod could land on, by class, with up to three names per class.
    pub fn candidates(&self, s: &Scheduling) -> CandidateSummary {
        let b = self.candidate_bits(s);
        let mut c = CandidateSummary {
            capable: b.count_and(&self.classes[0]),
            unaware: b.count_and(&self.classes[1]),
            rejecting: b.count_and(&self.classes[2]),
            unknown: b.count_and(&self.classes[3]),
            ..CandidateSummary::default()
        };
        let mut capable = b.clone();
        capable.and(&self.classes[0]);
        c.capable_1_28 = capable.count_and(&self.is_1_28);
        c.windows = b.count_and(&self.windows);
        for (slot, class) in CLASSES.iter().enumerate() {
            for i in b.iter_and(&self.classes[slot]).take(3) {
                c.samples.push((self.names[i].clone(), *class));
            }
        }
        c
    }

    /// Whether node `name` is in the index.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Whether the candidate set includes node number `i` (for tests).
    pub fn admits(&self, s: &Scheduling, i: usize) -> bool {
        self.candidate_bits(s).get(i)
    }
}
