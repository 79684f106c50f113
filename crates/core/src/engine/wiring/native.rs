//! Native and affinity modes: each sidecar becomes an init container with
//! `restartPolicy: Always` (a Kubernetes native sidecar).

use super::{Additions, ProfileWiring};
use crate::profile::ContainerSpec;
use serde_json::{Value, json};

impl ProfileWiring<'_> {
    pub(super) fn native(&mut self, c: &ContainerSpec, adds: &mut Additions) {
        let mut v = c.raw.clone();
        v.insert("restartPolicy".into(), json!("Always"));
        self.init(&c.name, Value::Object(v));
        adds.native_first.get_or_insert_with(|| c.name.clone());
    }
}
