//! Wiring: what each chosen profile adds to a pod in its mode, before placement. Setup
//! steps first, then the sidecars as the mode wires them ([`native`], [`legacy`],
//! [`universal`]), the profile's volumes, what app containers get ([`apps`]), Job-safe
//! wiring ([`jobsafe`]) and, where anything runs under sidecar-shim, its install container
//! and volume ([`shim`]). What is added must not collide with the pod ([`collisions`]).

mod apps;
mod collisions;
mod jobsafe;
mod legacy;
mod native;
mod probe;
pub(super) mod shim;
mod universal;

use super::applists::AppAdd;
use super::mode::Decision;
use super::notes::Notes;
use super::outcome::Skip;
use crate::patch::Item;
use crate::pod::Template;
use crate::profile::{INSTALL_CONTAINER, Mode, Position, Profile, SHIM_VOLUME};
use crate::status::{Added, Injection};
use apps::AppContainer;
use jobsafe::JobSafe;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A profile with its resolved mode.
pub(super) struct Chosen {
    pub profile: Arc<Profile>,
    pub decision: Decision,
}

/// What the plan adds, before placement.
#[derive(Default)]
pub(super) struct Additions {
    /// Per profile, the init containers in order (setup steps, then native copies).
    pub init_blocks: Vec<(Position, Vec<(String, Item)>)>,
    /// Name of the first native copy (the install container goes before it).
    pub native_first: Option<String>,
    pub install: Option<Value>,
    pub containers: Vec<(String, Item)>,
    pub volumes: Vec<(String, Item)>,
    pub app_mounts: Vec<AppAdd>,
    pub app_env: Vec<AppAdd>,
    /// Wrapped commands, by app container index.
    pub app_commands: BTreeMap<usize, Vec<String>>,
    pub affinity: Vec<Value>,
    pub default_container: Option<String>,
}

impl Additions {
    /// Empty, with room for what the chosen profiles add to `apps` app containers (Job-safe
    /// wrapping adds a mount to each app beyond it).
    fn sized(chosen: &[Chosen], apps: usize) -> Additions {
        let sum = |n: fn(&Profile) -> usize| chosen.iter().map(|c| n(&c.profile)).sum::<usize>();
        Additions {
            init_blocks: Vec::with_capacity(chosen.len()),
            containers: Vec::with_capacity(sum(|p| p.spec.containers.len())),
            volumes: Vec::with_capacity(sum(|p| p.spec.volumes.len()) + 1),
            app_mounts: Vec::with_capacity(apps * sum(|p| p.spec.app_volume_mounts.len())),
            app_env: Vec::with_capacity(apps * sum(|p| p.spec.app_env.len())),
            ..Additions::default()
        }
    }
}

/// What the chosen profiles add to the pod, and the record of each injection.
pub(super) fn build(
    t: &Template<'_>,
    chosen: Vec<Chosen>,
    prev: &Added,
    notes: &mut Notes,
) -> Result<(Additions, Vec<Injection>), Skip> {
    let apps = apps::app_containers(t, prev);
    let adds = Additions::sized(&chosen, apps.len());
    let mut w = Wiring {
        t,
        prev,
        apps,
        restart_policy: t.spec.restart_policy.as_deref().unwrap_or("Always"),
        adds,
        records: Vec::with_capacity(chosen.len()),
        shim: None,
        wrapped_apps: false,
    };
    for (pi, ch) in chosen.into_iter().enumerate() {
        w.profile(pi, ch, notes);
    }
    w.install();
    collisions::check(t, prev, &w.adds)?;
    w.adds.default_container = w.apps.first().map(|a| a.c.view.name.to_string());
    Ok((w.adds, w.records))
}

/// The wiring of one template, profile after profile.
struct Wiring<'w, 't, 'a> {
    t: &'t Template<'a>,
    prev: &'w Added,
    apps: Vec<AppContainer<'t, 'a>>,
    restart_policy: &'t str,
    adds: Additions,
    records: Vec<Injection>,
    /// The first profile that runs something under sidecar-shim (its record lists the
    /// install container and the shim volume), and its shim image.
    shim: Option<(usize, String)>,
    /// Whether app commands are already wrapped for tombstones (once for all profiles).
    wrapped_apps: bool,
}

/// What one profile adds in its mode: its init block and the record of its additions.
struct ProfileWiring<'w> {
    restart_policy: &'w str,
    job: JobSafe,
    /// Universal: the native copy gets its startup probe and `restartPolicy`.
    probe: bool,
    block: Vec<(String, Item)>,
    added: Added,
}

impl ProfileWiring<'_> {
    /// An init container of this profile's block.
    fn init(&mut self, name: &str, v: impl Into<Item>) {
        self.block.push((name.to_string(), v.into()));
        self.added.init_containers.push(name.to_string());
    }

    /// A regular container.
    fn container(&mut self, adds: &mut Additions, name: String, v: impl Into<Item>) {
        adds.containers.push((name.clone(), v.into()));
        self.added.containers.push(name);
    }
}

impl Wiring<'_, '_, '_> {
    fn profile(&mut self, pi: usize, ch: Chosen, notes: &mut Notes) {
        let Chosen {
            profile: p,
            decision,
        } = ch;
        let mode = decision.mode;
        // (sized for what this profile adds: no list grows twice)
        let inits = p.spec.init_containers.len() + p.spec.containers.len();
        let mut pw = ProfileWiring {
            restart_policy: self.restart_policy,
            job: JobSafe::None,
            probe: decision.probe,
            block: Vec::with_capacity(inits),
            added: Added {
                init_containers: Vec::with_capacity(inits + 1),
                volumes: Vec::with_capacity(p.spec.volumes.len() + 1),
                app_mounts: Vec::with_capacity(self.apps.len() * p.spec.app_volume_mounts.len()),
                app_env: Vec::with_capacity(self.apps.len() * p.spec.app_env.len()),
                ..Added::default()
            },
        };
        for c in &p.spec.init_containers {
            pw.init(&c.name, c.prepared.clone());
        }
        // Job-safe wiring for legacy sidecars (and universal's legacy copy).
        if self.restart_policy != "Always" && matches!(mode, Mode::Legacy | Mode::Universal) {
            pw.job = jobsafe::choose(&p, self.t.spec.windows, &self.apps, notes);
        }
        for c in &p.spec.containers {
            match mode {
                Mode::Native | Mode::Affinity => pw.native(c, &mut self.adds),
                Mode::Legacy | Mode::Auto => pw.legacy(c, &mut self.adds),
                Mode::Universal => pw.universal(c, &mut self.adds, notes),
            }
        }
        for v in &p.spec.volumes {
            self.adds.volumes.push((v.name.clone(), v.prepared.clone()));
            pw.added.volumes.push(v.name.clone());
        }
        self.app_items(&p.spec, &mut pw.added, notes);
        if let Some(expr) = super::affinity::expr(mode) {
            if !self.adds.affinity.contains(&expr) {
                self.adds.affinity.push(expr);
            }
            pw.added.affinity = true;
        }
        if mode == Mode::Universal || !matches!(pw.job, JobSafe::None) {
            self.shim.get_or_insert_with(|| (pi, p.shim_image.clone()));
        }
        if matches!(pw.job, JobSafe::Tombstones(_)) && !self.wrapped_apps {
            self.wrapped_apps = true;
            jobsafe::wrap_apps(&self.apps, self.prev, &mut self.adds, &mut pw.added);
        }
        self.adds
            .init_blocks
            .push((p.spec.position.clone(), pw.block));
        self.records.push(Injection {
            profile: p.name.clone(),
            hash: p.hash.clone(),
            mode,
            reason: decision.reason,
            added: pw.added,
        });
    }

    /// The install container and the shim volume, where anything runs under sidecar-shim.
    fn install(&mut self) {
        if let Some((ri, image)) = &self.shim {
            self.adds.install = Some(shim::install_container(image));
            self.adds
                .volumes
                .push((SHIM_VOLUME.to_string(), shim::shim_volume().into()));
            let r = &mut self.records[*ri].added;
            r.init_containers.push(INSTALL_CONTAINER.to_string());
            r.volumes.push(SHIM_VOLUME.to_string());
        }
    }
}
