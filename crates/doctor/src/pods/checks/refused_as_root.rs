//! `pods.sidecar-refused-as-root`: a container sidecar-kit added that the kubelet will not
//! create because it would run as root under `runAsNonRoot` (most sidecar images run as
//! root).

use crate::pods::context::Context;
use crate::pods::view::{Container, ContainerStatus, PodView};
use crate::report::{Finding, Severity};

pub fn check(pod: &PodView, _ctx: &Context, out: &mut Vec<Finding>) {
    let inits = pod
        .init_containers
        .iter()
        .map(|c| (c, pod.init_status(c.name)));
    let containers = pod.containers.iter().map(|c| (c, pod.status(c.name)));
    for (c, cs) in inits.chain(containers) {
        let added = pod
            .added
            .init_containers
            .iter()
            .chain(&pod.added.containers)
            .any(|a| a == c.name);
        if added {
            out.extend(refused(pod, c, cs));
        }
    }
}

fn refused(pod: &PodView, c: &Container, cs: &ContainerStatus) -> Option<Finding> {
    let message = cs.waiting_message.unwrap_or_default();
    if cs.waiting_reason != Some("CreateContainerConfigError") || !message.contains("runAsNonRoot")
    {
        return None;
    }
    let own = c.run_as_non_root;
    let fix = if own && c.shim_wrapped {
        "re-create the pod with this version of sidecar-kit: its shim-wrapped copies keep the profile container's own securityContext (earlier versions added runAsNonRoot: true); or give the sidecar a non-root runAsUser in the profile"
    } else if own {
        "the profile asks for runAsNonRoot: give the sidecar a non-root runAsUser in the profile as well, or use an image whose USER is a numeric non-root user"
    } else {
        "the pod's securityContext asks for runAsNonRoot: give the sidecar a non-root runAsUser in the profile, or use an image whose USER is a numeric non-root user"
    };
    Some(Finding::new(
        "pods.sidecar-refused-as-root",
        Severity::Error,
        pod.object(),
        format!(
            "the kubelet will not create sidecar container {}: {message} (CreateContainerConfigError; its image runs as root, and {} asks for runAsNonRoot)",
            c.name,
            if own {
                "its own securityContext"
            } else {
                "the pod's securityContext"
            }
        ),
        Some(fix.into()),
    ))
}
