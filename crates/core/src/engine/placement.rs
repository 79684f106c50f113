//! Placement: the pod's `initContainers`, `containers` and `volumes` as the plan leaves
//! them. What is not sidecar-kit's stays in order; each profile's init block goes where its
//! `position` says, the install container before the first native copy, and added
//! containers and volumes last.

use super::notes::Notes;
use super::wiring::Additions;
use crate::patch::{Item, Slot};
use crate::pod::Template;
use crate::profile::{INSTALL_CONTAINER, Position};
use crate::status::Added;
use crate::status::listed;

/// A list as the plan leaves it: each item named, kept or inserted.
pub(super) type Placed = Vec<(String, Slot)>;

/// The pod's lists as the plan leaves them.
pub(super) struct Lists {
    pub init: Placed,
    pub containers: Placed,
    pub volumes: Placed,
    /// How many init containers are not sidecar-kit's.
    pub base_init: usize,
}

/// Places what the plan adds (moving the values out of `adds`) among what the pod keeps.
pub(super) fn lists(
    t: &Template<'_>,
    prev: &Added,
    adds: &mut Additions,
    notes: &mut Notes,
) -> Lists {
    let base_init: Vec<(usize, String)> = t
        .spec
        .init_containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !listed(&prev.init_containers, &c.view.name))
        .map(|(i, c)| (i, c.view.name.to_string()))
        .collect();
    let init = place_init(&base_init, adds, notes);
    let kept_containers = t
        .spec
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !listed(&prev.containers, &c.view.name))
        .map(|(i, c)| (c.view.name.to_string(), i));
    let kept_volumes = t
        .spec
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| !listed(&prev.volumes, &v.name))
        .map(|(i, v)| (v.name.to_string(), i));
    Lists {
        init,
        containers: kept_then_added(kept_containers, std::mem::take(&mut adds.containers)),
        volumes: kept_then_added(kept_volumes, std::mem::take(&mut adds.volumes)),
        base_init: base_init.len(),
    }
}

/// What is kept, in order, then what is added.
fn kept_then_added(
    kept: impl Iterator<Item = (String, usize)>,
    added: Vec<(String, Item)>,
) -> Placed {
    let mut out: Placed = kept.map(|(n, i)| (n, Slot::Keep(i))).collect();
    out.extend(added.into_iter().map(|(n, v)| (n, Slot::Insert(v))));
    out
}

/// What an init container is placed relative to.
#[derive(Clone, PartialEq)]
enum Anchor {
    Existing,
    First,
    Last,
    Before(String),
    After(String),
}

/// The init containers being placed.
struct Work(Vec<(String, Slot, Anchor)>);

impl Work {
    fn find(&self, n: &str) -> Option<usize> {
        self.0.iter().position(|(x, _, _)| x == n)
    }

    /// After the blocks already placed first.
    fn after_firsts(&self) -> usize {
        self.0
            .iter()
            .rposition(|(_, _, a)| *a == Anchor::First)
            .map_or(0, |i| i + 1)
    }

    /// Where a block with this position goes, and what it is anchored to.
    fn at(&self, pos: &Position, notes: &mut Notes) -> (usize, Anchor) {
        match pos {
            Position::First => (self.after_firsts(), Anchor::First),
            Position::Last => (self.0.len(), Anchor::Last),
            Position::Before(n) => match self.find(n) {
                Some(i) => (i, Anchor::Before(n.clone())),
                None => {
                    notes.warn(format!(
                        "position before {n:?}: the pod has no init container {n:?}; placed first"
                    ));
                    (self.after_firsts(), Anchor::First)
                }
            },
            Position::After(n) => match self.find(n) {
                Some(i) => {
                    let a = Anchor::After(n.clone());
                    let mut j = i + 1;
                    while j < self.0.len() && self.0[j].2 == a {
                        j += 1;
                    }
                    (j, a)
                }
                None => {
                    notes.warn(format!(
                        "position after {n:?}: the pod has no init container {n:?}; placed last"
                    ));
                    (self.0.len(), Anchor::Last)
                }
            },
        }
    }
}

/// Places the init blocks among the base init containers (see `Position`), moving the
/// planned values.
fn place_init(base: &[(usize, String)], adds: &mut Additions, notes: &mut Notes) -> Placed {
    let mut work = Work(
        base.iter()
            .map(|(i, n)| (n.clone(), Slot::Keep(*i), Anchor::Existing))
            .collect(),
    );
    for (pos, block) in std::mem::take(&mut adds.init_blocks) {
        let (mut at, anchor) = work.at(&pos, notes);
        for (name, v) in block {
            work.0.insert(at, (name, Slot::Insert(v), anchor.clone()));
            at += 1;
        }
    }
    if let Some(install) = adds.install.take() {
        let at = adds
            .native_first
            .as_ref()
            .and_then(|n| work.find(n))
            .unwrap_or(0);
        work.0.insert(
            at,
            (
                INSTALL_CONTAINER.to_string(),
                Slot::Insert(install.into()),
                Anchor::First,
            ),
        );
    }
    work.0.into_iter().map(|(n, v, _)| (n, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn placed(positions: &[Position], install: bool) -> (Vec<String>, usize) {
        let base = [(0, "a".to_string()), (1, "b".to_string())];
        let mut adds = Additions::default();
        for (i, pos) in positions.iter().enumerate() {
            let name = format!("p{i}");
            adds.init_blocks.push((
                pos.clone(),
                vec![(name.clone(), json!({"name": name}).into())],
            ));
        }
        adds.native_first = Some("p0".into());
        adds.install = install.then(|| json!({}));
        let mut notes = Notes::default();
        let names = place_init(&base, &mut adds, &mut notes)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        (names, notes.warnings.len())
    }

    #[test]
    fn init_blocks_go_where_their_position_says() {
        let before = |n: &str| Position::Before(n.into());
        let after = |n: &str| Position::After(n.into());
        let table: [(Vec<Position>, bool, &[&str], usize); 7] = [
            (vec![Position::First], false, &["p0", "a", "b"], 0),
            (
                vec![Position::First, Position::First],
                false,
                &["p0", "p1", "a", "b"],
                0,
            ),
            (vec![Position::Last], false, &["a", "b", "p0"], 0),
            (vec![before("b")], false, &["a", "p0", "b"], 0),
            (
                vec![after("a"), after("a")],
                false,
                &["a", "p0", "p1", "b"],
                0,
            ),
            (
                vec![before("x"), after("x")],
                false,
                &["p0", "a", "b", "p1"],
                2,
            ),
            (
                vec![Position::Last],
                true,
                &["a", "b", INSTALL_CONTAINER, "p0"],
                0,
            ),
        ];
        for (positions, install, want, warnings) in table {
            let (names, n) = placed(&positions, install);
            assert_eq!(names, want, "{positions:?}");
            assert_eq!(n, warnings, "{positions:?}");
        }
    }
}
