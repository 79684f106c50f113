//! What app containers get: the regular containers sidecar-kit did not add, each given the
//! profile's `appContainers` mounts and env, except where it already has its own.

use super::Wiring;
use super::shim::unwrap_app;
use crate::engine::applists::{AppAdd, AppList};
use crate::engine::notes::Notes;
use crate::pod::{ContainerRef, Template};
use crate::profile::ProfileSpec;
use crate::status::{Added, AppItem, listed};
use std::borrow::Cow;

pub(super) struct AppContainer<'t, 'a> {
    /// Index in the current `containers` list.
    pub index: usize,
    pub c: &'t ContainerRef<'a>,
    /// Command without sidecar-kit's wrapping (the container's own, borrowed, where it was
    /// not wrapped).
    pub base_command: Option<Cow<'t, [String]>>,
}

/// The app containers: regular containers sidecar-kit did not add.
pub(super) fn app_containers<'t, 'a>(
    t: &'t Template<'a>,
    prev: &Added,
) -> Vec<AppContainer<'t, 'a>> {
    t.spec
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !listed(&prev.containers, &c.view.name))
        .map(|(index, c)| {
            let mut base_command = c.view.command.as_deref().map(Cow::Borrowed);
            if listed(&prev.app_commands, &c.view.name)
                && let Some(cmd) = &c.view.command
                && let Some(un) = unwrap_app(cmd)
            {
                base_command = Some(Cow::Owned(un));
            }
            AppContainer {
                index,
                c,
                base_command,
            }
        })
        .collect()
}

impl Wiring<'_, '_, '_> {
    /// The profile's `appContainers` mounts and env, for every app container.
    pub(super) fn app_items(&mut self, spec: &ProfileSpec, added: &mut Added, notes: &mut Notes) {
        for a in &self.apps {
            for list in AppList::ALL {
                // What the container has of its own (not added by an earlier injection):
                // looked up per profile item (a few), not gathered per container.
                let own = |key: &str| {
                    list.keys(&a.c.view)
                        .any(|k| k == key && !list.is_ours(self.prev, &a.c.view.name, k))
                };
                for (key, value) in list.profile_items(spec) {
                    if own(key) {
                        notes.warn(already(list, &a.c.view.name, key));
                        continue;
                    }
                    list.planned_mut(&mut self.adds).push(AppAdd {
                        index: a.index,
                        key: key.to_string(),
                        value: value.clone(),
                    });
                    list.recorded_mut(added).push(AppItem {
                        container: a.c.view.name.to_string(),
                        name: key.to_string(),
                    });
                }
            }
        }
    }
}

/// The warning for an item the app container already has.
fn already(list: AppList, container: &str, key: &str) -> String {
    match list {
        AppList::Mounts => format!(
            "app container {container}: already mounts {key}; the profile's mount is not added"
        ),
        AppList::Env => {
            format!("app container {container}: already sets {key}; its own value is kept")
        }
    }
}
