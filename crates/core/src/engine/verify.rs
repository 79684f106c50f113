//! Verification of an earlier injection: does the pod still hold exactly what the status
//! annotation lists? A pod author can write the annotation: a name in it is never enough to
//! remove a container, volume, mount or variable.

use super::applists::AppList;
use super::drift::covers;
use super::mode::Decision;
use super::notes::Notes;
use super::outcome::ModeReason;
use super::wiring::shim::unwrap_app;
use super::wiring::{self, Additions, Chosen};
use crate::pod::Template;
use crate::profile::{INSTALL_CONTAINER, Mode, ProfileSet};
use crate::status::{Added, DEFAULT_CONTAINER_ANNOTATION, Status};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Does the pod still hold exactly what the injections recorded in `prev` add? Every item
/// the annotation lists is compared, by content, with what the loaded profile adds to this
/// pod in the recorded mode: exactly (everything the profile sets is there with the same
/// values; defaults added by the API server are fine) where the loaded profile is the
/// version that injected, and by identity (name, image repository, volume source, mount
/// volume) where the profile changed since.
pub(super) fn status(t: &Template<'_>, prev: &Status, profiles: &ProfileSet) -> Result<(), String> {
    let (chosen, exact) = replan(t, prev, profiles)?;
    let prev_added = prev.all_added();
    let (adds, _) = wiring::build(t, chosen, &prev_added, &mut Notes::default()).map_err(|s| {
        format!(
            "its profiles cannot be planned for this pod again ({})",
            s.message
        )
    })?;
    let v = Verifier {
        t,
        listed: &prev_added,
        adds: &adds,
        judge: Judge { exact },
    };
    v.containers()?;
    v.volumes()?;
    v.app_lists()?;
    v.app_commands()?;
    v.default_container()
}

/// The recorded profiles in their recorded modes, and whether every loaded profile is the
/// version that injected.
fn replan(
    t: &Template<'_>,
    prev: &Status,
    profiles: &ProfileSet,
) -> Result<(Vec<Chosen>, bool), String> {
    let mut chosen = Vec::new();
    let mut exact = true;
    for i in &prev.injections {
        let Some(p) = profiles.get(&i.profile) else {
            return Err(format!(
                "it names profile {:?}, which is not loaded, so what it lists cannot be checked (load that profile, e.g. with -p)",
                i.profile
            ));
        };
        exact &= p.hash == i.hash;
        let probe = i.mode == Mode::Universal
            && p.spec.containers.iter().any(|c| {
                t.spec
                    .init_containers
                    .iter()
                    .any(|x| x.view.name == c.name && x.value().get("startupProbe").is_some())
            });
        chosen.push(Chosen {
            profile: p.clone(),
            decision: Decision {
                mode: i.mode,
                code: ModeReason::Requested,
                adjustments: Vec::new(),
                reason: String::new(),
                probe,
            },
        });
    }
    Ok((chosen, exact))
}

/// How what the pod has is compared with what the profile adds.
struct Judge {
    /// The loaded profile is the version that injected: compare content, else identity.
    exact: bool,
}

impl Judge {
    fn what(&self) -> &'static str {
        if self.exact {
            "what that profile version adds"
        } else {
            "what the loaded (changed) profile adds under that name"
        }
    }

    /// A listed `kind` the pod has (`have`) must be what the profile adds (`want`).
    fn listed(
        &self,
        kind: &str,
        name: &str,
        have: &Value,
        want: Option<&Value>,
    ) -> Result<(), String> {
        match want {
            Some(w) if self.matches(have, w) => Ok(()),
            _ => Err(format!(
                "{kind} {name:?} is listed, but it is not {}",
                self.what()
            )),
        }
    }

    fn matches(&self, have: &Value, want: &Value) -> bool {
        if self.exact {
            let mut want = want.clone();
            // A later webhook may strip restartPolicy: re-invocation puts it back.
            if let Some(m) = want.as_object_mut() {
                m.remove("restartPolicy");
            }
            return covers(have, &want);
        }
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let keys = |v: &Value| -> BTreeSet<String> {
            v.as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        match (s(have, "image"), s(want, "image")) {
            (Some(a), Some(b)) => image_repository(&a) == image_repository(&b),
            (None, None) => {
                // Volumes: the same source; mounts: the same volume.
                let (mut a, mut b) = (keys(have), keys(want));
                if want.get("mountPath").is_some() {
                    return s(have, "name") == s(want, "name");
                }
                a.retain(|k| k != "name");
                b.retain(|k| k != "name");
                a.is_subset(&b) || b.is_subset(&a)
            }
            _ => false,
        }
    }
}

/// The repository of an image reference, without tag or digest.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split_once('@').map_or(image, |(r, _)| r);
    match no_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

/// What the pod has, what the annotation lists, what the profiles add.
struct Verifier<'v, 'a> {
    t: &'v Template<'a>,
    listed: &'v Added,
    adds: &'v Additions,
    judge: Judge,
}

impl Verifier<'_, '_> {
    fn containers(&self) -> Result<(), String> {
        let (t, adds) = (self.t, self.adds);
        let mut init_want: BTreeMap<&str, &Value> = adds
            .init_blocks
            .iter()
            .flat_map(|(_, b)| b.iter().map(|(n, v)| (n.as_str(), &**v)))
            .collect();
        if let Some(install) = &adds.install {
            init_want.insert(INSTALL_CONTAINER, install);
        }
        let containers_want: BTreeMap<&str, &Value> = adds
            .containers
            .iter()
            .map(|(n, v)| (n.as_str(), &**v))
            .collect();
        for (list, listed, want, kind) in [
            (
                &t.spec.init_containers,
                &self.listed.init_containers,
                &init_want,
                "init container",
            ),
            (
                &t.spec.containers,
                &self.listed.containers,
                &containers_want,
                "container",
            ),
        ] {
            for name in listed {
                let Some(have) = list.iter().find(|c| &c.view.name == name) else {
                    continue;
                };
                let want = want.get(name.as_str()).copied();
                self.judge.listed(kind, name, &have.value(), want)?;
            }
        }
        Ok(())
    }

    fn volumes(&self) -> Result<(), String> {
        let volumes_want: BTreeMap<&str, &Value> = self
            .adds
            .volumes
            .iter()
            .map(|(n, v)| (n.as_str(), &**v))
            .collect();
        for name in &self.listed.volumes {
            let Some(have) = self.t.spec.volumes.iter().find(|v| &v.name == name) else {
                continue;
            };
            let have: Value = serde_json::from_str(have.raw).unwrap_or(Value::Null);
            let want = volumes_want.get(name.as_str()).copied();
            self.judge.listed("volume", name, &have, want)?;
        }
        Ok(())
    }

    /// The mounts and env listed as added to app containers.
    fn app_lists(&self) -> Result<(), String> {
        let containers = &self.t.spec.containers;
        let app_name = |i: usize| containers.get(i).map(|c| &*c.view.name);
        for list in AppList::ALL {
            for item in list.recorded(self.listed) {
                let Some(c) = containers.iter().find(|c| c.view.name == item.container) else {
                    continue;
                };
                let value = c.value();
                let Some(have) = value
                    .get(list.field())
                    .and_then(Value::as_array)
                    .and_then(|l| {
                        l.iter()
                            .find(|x| x.get(list.key()).and_then(Value::as_str) == Some(&item.name))
                    })
                else {
                    continue;
                };
                let want = list.planned(self.adds).iter().find(|a| {
                    app_name(a.index) == Some(item.container.as_str()) && a.key == item.name
                });
                match want {
                    Some(w)
                        if self.judge.matches(have, &w.value)
                            || (self.judge.exact && covers(have, &w.value)) => {}
                    _ => {
                        return Err(format!(
                            "{} {:?} of container {:?} is listed, but it is not {}",
                            list.noun(),
                            item.name,
                            item.container,
                            self.judge.what()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn app_commands(&self) -> Result<(), String> {
        for name in &self.listed.app_commands {
            if let Some(c) = self.t.spec.containers.iter().find(|c| &c.view.name == name)
                && c.view.command.as_deref().and_then(unwrap_app).is_none()
            {
                return Err(format!(
                    "the command of container {name:?} is listed as wrapped, but it is not sidecar-shim's app wrapper"
                ));
            }
        }
        Ok(())
    }

    fn default_container(&self) -> Result<(), String> {
        if self.listed.default_container
            && let Some(v) = self.t.meta.annotation(DEFAULT_CONTAINER_ANNOTATION)
            && self.adds.default_container.as_deref() != Some(v)
        {
            return Err(format!(
                "annotation {DEFAULT_CONTAINER_ANNOTATION}={v:?} is listed as added, but sidecar-kit would name {:?}",
                self.adds
                    .default_container
                    .as_deref()
                    .unwrap_or("no container")
            ));
        }
        Ok(())
    }
}
