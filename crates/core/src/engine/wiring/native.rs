//! Native and affinity modes: each sidecar becomes an init container with
//! `restartPolicy: Always` (a Kubernetes native sidecar).

use super::{Additions, ProfileWiring};
use crate::profile::ContainerSpec;

impl ProfileWiring<'_> {
    pub(super) fn native(&mut self, c: &ContainerSpec, adds: &mut Additions) {
        self.init(&c.name, c.native.clone());
        adds.native_first.get_or_insert_with(|| c.name.clone());
    }
}
