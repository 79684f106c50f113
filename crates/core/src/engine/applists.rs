//! The lists sidecar-kit adds to in app containers: `volumeMounts`, keyed by `mountPath`,
//! and `env`, keyed by `name`. One description serves the wiring, the verification of an
//! earlier injection, the drift check and the patch.

use super::empty;
use super::wiring::Additions;
use crate::patch::{Item, Slot};
use crate::pod::{ContainerView, Template};
use crate::profile::ProfileSpec;
use crate::status::listed;
use crate::status::{Added, AppItem};
use crate::text::cat;

/// An item a plan adds to a list of one app container.
#[derive(Debug)]
pub(super) struct AppAdd {
    /// Index of the app container in the current `containers` list.
    pub index: usize,
    /// The item's key (`mountPath` or variable name).
    pub key: String,
    pub value: Item,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppList {
    Mounts,
    Env,
}

impl AppList {
    /// In the order the lists are edited and checked.
    pub const ALL: [AppList; 2] = [AppList::Mounts, AppList::Env];

    /// The field of the container.
    pub fn field(self) -> &'static str {
        match self {
            AppList::Mounts => "volumeMounts",
            AppList::Env => "env",
        }
    }

    /// The field of an item that names it.
    pub fn key(self) -> &'static str {
        match self {
            AppList::Mounts => "mountPath",
            AppList::Env => "name",
        }
    }

    /// What one item is, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            AppList::Mounts => "mount",
            AppList::Env => "variable",
        }
    }

    /// Whether the container has the field at all.
    pub fn present(self, c: &ContainerView) -> bool {
        match self {
            AppList::Mounts => c.volume_mounts.is_some(),
            AppList::Env => c.env.is_some(),
        }
    }

    /// The keys of the container's items, in order.
    pub fn keys<'c>(self, c: &'c ContainerView<'_>) -> impl Iterator<Item = &'c str> {
        let (mounts, env) = match self {
            AppList::Mounts => (c.volume_mounts.as_deref(), None),
            AppList::Env => (None, c.env.as_deref()),
        };
        let mounts = mounts.into_iter().flatten().map(|m| &*m.mount_path);
        mounts.chain(env.into_iter().flatten().map(|e| &*e.name))
    }

    /// What a profile adds to this list of every app container: key and value.
    pub fn profile_items(self, spec: &ProfileSpec) -> impl Iterator<Item = (&str, &Item)> {
        let (mounts, env) = match self {
            AppList::Mounts => (&spec.app_volume_mounts[..], &[][..]),
            AppList::Env => (&[][..], &spec.app_env[..]),
        };
        let mounts = mounts.iter().map(|m| (m.mount_path.as_str(), &m.prepared));
        mounts.chain(env.iter().map(|e| (e.name.as_str(), &e.prepared)))
    }

    /// The items an injection recorded in this list.
    pub fn recorded(self, added: &Added) -> &[AppItem] {
        match self {
            AppList::Mounts => &added.app_mounts,
            AppList::Env => &added.app_env,
        }
    }

    pub fn recorded_mut(self, added: &mut Added) -> &mut Vec<AppItem> {
        match self {
            AppList::Mounts => &mut added.app_mounts,
            AppList::Env => &mut added.app_env,
        }
    }

    /// Whether the earlier injection added the item `key` to `container`.
    pub fn is_ours(self, prev: &Added, container: &str, key: &str) -> bool {
        self.recorded(prev)
            .iter()
            .any(|x| x.container == container && x.name == key)
    }

    /// The items this plan adds to this list.
    pub fn planned(self, adds: &Additions) -> &[AppAdd] {
        match self {
            AppList::Mounts => &adds.app_mounts,
            AppList::Env => &adds.app_env,
        }
    }

    pub fn planned_mut(self, adds: &mut Additions) -> &mut Vec<AppAdd> {
        match self {
            AppList::Mounts => &mut adds.app_mounts,
            AppList::Env => &mut adds.app_env,
        }
    }
}

/// A list inside an app container (`env`, `volumeMounts`) as the plan leaves it.
pub(super) struct ListEdit {
    pub pointer: String,
    /// `containers/NAME/FIELD`, as [`Added::was_empty`] names it.
    pub key: String,
    pub present: bool,
    pub len: usize,
    /// Items that are not sidecar-kit's.
    pub base_len: usize,
    pub target: Vec<Slot>,
}

impl ListEdit {
    /// Was the list present but empty before any injection?
    pub fn was_empty(&self, prev: &Added) -> bool {
        empty::was_empty(prev, &self.key, self.present, self.len, self.base_len)
    }
}

/// The `volumeMounts` and `env` of every app container: what is kept (what is not
/// sidecar-kit's), then what this plan adds to that container.
pub(super) fn edits(t: &Template<'_>, prev: &Added, adds: &Additions) -> Vec<ListEdit> {
    let sp = &t.spec_pointer;
    let mut out = Vec::with_capacity(2 * t.spec.containers.len());
    // What this plan adds, by app container (one pass, not one per container).
    let mut planned: [Vec<Vec<&AppAdd>>; 2] = Default::default();
    for (li, list) in AppList::ALL.into_iter().enumerate() {
        planned[li].resize(t.spec.containers.len(), Vec::new());
        for a in list.planned(adds) {
            if let Some(slot) = planned[li].get_mut(a.index) {
                slot.push(a);
            }
        }
    }
    for (ci, c) in t.spec.containers.iter().enumerate() {
        let name = &c.view.name;
        if listed(&prev.containers, name) {
            continue;
        }
        for (li, list) in AppList::ALL.into_iter().enumerate() {
            // Keep what is not ours, append what this plan adds to this container.
            let len = list.keys(&c.view).count();
            let adding = &planned[li][ci];
            let mut target: Vec<Slot> = Vec::with_capacity(len + adding.len());
            target.extend(
                list.keys(&c.view)
                    .enumerate()
                    .filter(|(_, k)| !list.is_ours(prev, name, k))
                    .map(|(i, _)| Slot::Keep(i)),
            );
            let base_len = target.len();
            target.extend(adding.iter().map(|a| Slot::Insert(a.value.clone())));
            let field = list.field();
            out.push(ListEdit {
                pointer: cat!(sp, "/containers/", ci, "/", field),
                key: cat!("containers/", name, "/", field),
                present: list.present(&c.view),
                len,
                base_len,
                target,
            });
        }
    }
    out
}
