//! The pod as the checks read it: built once from the pod's JSON, its containers and init
//! containers with what the checks look at, their statuses, the phase, the node and the
//! sidecar-kit status annotation.

use super::universal::{self, UniversalRun};
use serde_json::Value;
use sidecar_kit_core::status::{Added, STATUS_ANNOTATION, Status};

/// One terminated state (`state.terminated` or `lastState.terminated`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminated<'a> {
    pub exit_code: Option<i64>,
    pub message: Option<&'a str>,
}

impl<'a> Terminated<'a> {
    fn of(t: &'a Value) -> Terminated<'a> {
        Terminated {
            exit_code: t["exitCode"].as_i64(),
            message: t["message"].as_str(),
        }
    }
}

/// One container's status; a container without one reads as all empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContainerStatus<'a> {
    pub name: &'a str,
    /// `state.running` is there.
    pub running: bool,
    pub waiting_reason: Option<&'a str>,
    pub waiting_message: Option<&'a str>,
    /// `state.terminated`.
    pub terminated: Option<Terminated<'a>>,
    /// `lastState.terminated`.
    pub last_terminated: Option<Terminated<'a>>,
    pub started: bool,
    pub restart_count: i64,
}

/// The status of a container the pod's status does not list.
static NO_STATUS: ContainerStatus<'static> = ContainerStatus {
    name: "",
    running: false,
    waiting_reason: None,
    waiting_message: None,
    terminated: None,
    last_terminated: None,
    started: false,
    restart_count: 0,
};

impl<'a> ContainerStatus<'a> {
    fn of(cs: &'a Value) -> Option<ContainerStatus<'a>> {
        let waiting = &cs["state"]["waiting"];
        Some(ContainerStatus {
            name: cs["name"].as_str()?,
            running: cs["state"].get("running").is_some(),
            waiting_reason: waiting["reason"].as_str(),
            waiting_message: waiting["message"].as_str(),
            terminated: cs["state"].get("terminated").map(Terminated::of),
            last_terminated: cs["lastState"].get("terminated").map(Terminated::of),
            started: cs["started"].as_bool().unwrap_or(false),
            restart_count: cs["restartCount"].as_i64().unwrap_or(0),
        })
    }

    /// The copy a universal sidecar's shim wrote as its termination message (`native` or
    /// `legacy`), from the current state first, then the last one.
    pub fn copy_message(&self) -> Option<&'a str> {
        [self.terminated, self.last_terminated]
            .into_iter()
            .flatten()
            .filter_map(|t| t.message)
            .map(str::trim)
            .find(|m| *m == "native" || *m == "legacy")
    }
}

/// One container or init container of the spec.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    pub name: &'a str,
    /// `restartPolicy: Always` (a native sidecar, on an init container).
    pub always: bool,
    /// The sidecar-shim role it runs (`native`, `legacy`, `install`...): the second word of
    /// a command whose first ends in `sidecar-shim`.
    pub shim_role: Option<&'a str>,
    /// Its command starts with the shim as sidecar-kit installs it.
    pub shim_wrapped: bool,
    /// Its own securityContext asks for `runAsNonRoot: true`.
    pub run_as_non_root: bool,
}

impl<'a> Container<'a> {
    fn of(c: &'a Value) -> Option<Container<'a>> {
        let cmd = c["command"].as_array();
        let first = cmd.and_then(|c| c.first()).and_then(Value::as_str);
        Some(Container {
            name: c["name"].as_str()?,
            always: c["restartPolicy"] == "Always",
            shim_role: first
                .filter(|s| s.ends_with("sidecar-shim"))
                .and_then(|_| cmd.and_then(|c| c.get(1)).and_then(Value::as_str)),
            shim_wrapped: first == Some(sidecar_kit_core::engine::SHIM_BIN),
            run_as_non_root: c["securityContext"]["runAsNonRoot"] == true,
        })
    }
}

/// One pod, read once.
#[derive(Debug, Clone)]
pub struct PodView<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub phase: &'a str,
    /// `status.reason` and `status.message`.
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
    /// The node's name; empty when not scheduled.
    pub node: &'a str,
    /// The pod's `restartPolicy` (default `Always`).
    pub restart_policy: &'a str,
    /// The pod has a `deletionTimestamp`.
    pub deleting: bool,
    pub init_containers: Vec<Container<'a>>,
    pub containers: Vec<Container<'a>>,
    pub init_statuses: Vec<ContainerStatus<'a>>,
    pub statuses: Vec<ContainerStatus<'a>>,
    /// sidecar-kit's status annotation, when there and readable.
    pub status: Option<Status>,
    /// Everything sidecar-kit added, over all its injections.
    pub added: Added,
    /// The universal sidecars and which copy runs each.
    pub universal: Vec<UniversalRun<'a>>,
}

impl<'a> PodView<'a> {
    /// Reads one pod (raw JSON).
    pub fn of(pod: &'a Value) -> PodView<'a> {
        let status = pod["metadata"]["annotations"][STATUS_ANNOTATION]
            .as_str()
            .and_then(|s| Status::parse(s).ok());
        let added = status.as_ref().map(Status::all_added).unwrap_or_default();
        let mut view = PodView {
            namespace: pod["metadata"]["namespace"].as_str().unwrap_or_default(),
            name: pod["metadata"]["name"].as_str().unwrap_or_default(),
            phase: pod["status"]["phase"].as_str().unwrap_or_default(),
            reason: pod["status"]["reason"].as_str(),
            message: pod["status"]["message"].as_str(),
            node: pod["spec"]["nodeName"].as_str().unwrap_or_default(),
            restart_policy: pod["spec"]["restartPolicy"].as_str().unwrap_or("Always"),
            deleting: !pod["metadata"]["deletionTimestamp"].is_null(),
            init_containers: each(&pod["spec"]["initContainers"], Container::of),
            containers: each(&pod["spec"]["containers"], Container::of),
            init_statuses: each(&pod["status"]["initContainerStatuses"], ContainerStatus::of),
            statuses: each(&pod["status"]["containerStatuses"], ContainerStatus::of),
            status,
            added,
            universal: Vec::new(),
        };
        view.universal = universal::runs(&view);
        view
    }

    /// The object findings name: `Pod NAMESPACE/NAME`.
    pub fn object(&self) -> Option<String> {
        Some(format!("Pod {}/{}", self.namespace, self.name))
    }

    /// The pod is done or going away.
    pub fn ending(&self) -> bool {
        matches!(self.phase, "Succeeded" | "Failed") || self.deleting
    }

    /// An init container's status.
    pub fn init_status(&self, name: &str) -> &ContainerStatus<'a> {
        find(&self.init_statuses, name)
    }

    /// A container's status.
    pub fn status(&self, name: &str) -> &ContainerStatus<'a> {
        find(&self.statuses, name)
    }

    /// Native sidecars: init containers with `restartPolicy: Always`.
    pub fn native_sidecars(&self) -> impl Iterator<Item = &Container<'a>> {
        self.init_containers.iter().filter(|c| c.always)
    }

    /// Legacy sidecars: regular containers that sidecar-kit added.
    pub fn legacy_sidecars(&self) -> impl Iterator<Item = &Container<'a>> {
        self.containers.iter().filter(|c| self.was_added(c.name))
    }

    /// App containers: the regular containers sidecar-kit did not add.
    pub fn apps(&self) -> impl Iterator<Item = &Container<'a>> {
        self.containers.iter().filter(|c| !self.was_added(c.name))
    }

    fn was_added(&self, name: &str) -> bool {
        self.added.containers.iter().any(|n| n == name)
    }
}

/// Each entry of a JSON list read by `of`; entries it cannot read (no name) are left out.
fn each<'a, T>(list: &'a Value, of: impl Fn(&'a Value) -> Option<T>) -> Vec<T> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(of)
        .collect()
}

fn find<'s, 'a>(list: &'s [ContainerStatus<'a>], name: &str) -> &'s ContainerStatus<'a> {
    list.iter().find(|c| c.name == name).unwrap_or(&NO_STATUS)
}
