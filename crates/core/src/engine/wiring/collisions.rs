//! What the plan adds must fit the pod: no name the pod already uses for something
//! sidecar-kit did not inject, and a volume for every mount of what is added.

use super::Additions;
use crate::engine::json::field;
use crate::engine::outcome::{Skip, SkipCode};
use crate::pod::Template;
use crate::profile::INSTALL_CONTAINER;
use crate::status::Added;
use crate::status::listed;
use serde_json::Value;

pub(super) fn check(t: &Template<'_>, prev: &Added, adds: &Additions) -> Result<(), Skip> {
    // (a pod's lists are short: a look along a list costs less than building a set)
    let base_volumes: Vec<&str> = t
        .spec
        .volumes
        .iter()
        .filter(|v| !listed(&prev.volumes, &v.name))
        .map(|v| &*v.name)
        .collect();
    names(t, prev, adds)?;
    for (n, _) in &adds.volumes {
        if base_volumes.contains(&n.as_str()) {
            return Err(Skip::new(
                SkipCode::PodConflict,
                format!(
                    "the pod already has a volume named {n:?} that sidecar-kit did not inject; rename one of them"
                ),
            ));
        }
    }
    mounts(&base_volumes, adds)
}

/// Containers added under names the pod already uses.
fn names(t: &Template<'_>, prev: &Added, adds: &Additions) -> Result<(), Skip> {
    let base_names: Vec<&str> = t
        .spec
        .init_containers
        .iter()
        .filter(|c| !listed(&prev.init_containers, &c.view.name))
        .chain(
            t.spec
                .containers
                .iter()
                .filter(|c| !listed(&prev.containers, &c.view.name)),
        )
        .map(|c| &*c.view.name)
        .collect();
    let mut new_names: Vec<&str> = adds
        .init_blocks
        .iter()
        .flat_map(|(_, b)| b.iter().map(|(n, _)| n.as_str()))
        .chain(adds.containers.iter().map(|(n, _)| n.as_str()))
        .collect();
    if adds.install.is_some() {
        new_names.push(INSTALL_CONTAINER);
    }
    for n in new_names {
        if base_names.contains(&n) {
            return Err(Skip::new(
                SkipCode::PodConflict,
                format!(
                    "the pod already has a container named {n:?} that sidecar-kit did not inject; rename it, or remove it from the profile"
                ),
            ));
        }
    }
    Ok(())
}

/// Every mount of an added container, and every mount added to app containers, must have
/// its volume.
fn mounts(base_volumes: &[&str], adds: &Additions) -> Result<(), Skip> {
    let all_volumes: Vec<&str> = base_volumes
        .iter()
        .copied()
        .chain(adds.volumes.iter().map(|(n, _)| n.as_str()))
        .collect();
    let added_values = adds
        .init_blocks
        .iter()
        .flat_map(|(_, b)| b.iter())
        .chain(adds.containers.iter());
    for (name, v) in added_values {
        for m in field(v, "volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let vol = field(m, "name").and_then(Value::as_str).unwrap_or("");
            if !all_volumes.contains(&vol) {
                return Err(Skip::new(
                    SkipCode::MissingVolume,
                    format!(
                        "container {name:?} mounts volume {vol:?}, which neither its profile nor the pod defines; add it to the profile's volumes"
                    ),
                ));
            }
        }
    }
    for m in &adds.app_mounts {
        let vol = field(&m.value, "name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !all_volumes.contains(&vol) {
            return Err(Skip::new(
                SkipCode::MissingVolume,
                format!(
                    "appContainers mount {:?} uses volume {vol:?}, which neither the profile nor the pod defines; add it to the profile's volumes",
                    m.key
                ),
            ));
        }
    }
    Ok(())
}
