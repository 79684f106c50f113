//! Realistic objects for tests to seed: Nodes with a kubelet version, labels, taints and
//! cordons; Namespaces.

use serde_json::{Map, Value, json};

/// A Node to seed, built up from a name and a kubelet version.
#[derive(Debug, Clone)]
pub struct NodeSeed {
    name: String,
    kubelet_version: String,
    labels: Vec<(String, String)>,
    taints: Vec<Value>,
    unschedulable: bool,
    ready: bool,
    os: String,
    control_plane: bool,
}

impl NodeSeed {
    pub fn new(name: impl Into<String>, kubelet_version: impl Into<String>) -> NodeSeed {
        NodeSeed {
            name: name.into(),
            kubelet_version: kubelet_version.into(),
            labels: Vec::new(),
            taints: Vec::new(),
            unschedulable: false,
            ready: true,
            os: "linux".into(),
            control_plane: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kubelet_version(&self) -> &str {
        &self.kubelet_version
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> NodeSeed {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// A taint; `effect` is `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> NodeSeed {
        let mut t = Map::new();
        t.insert("key".into(), key.into());
        if !value.is_empty() {
            t.insert("value".into(), value.into());
        }
        t.insert("effect".into(), effect.into());
        self.taints.push(Value::Object(t));
        self
    }

    /// Cordoned (`spec.unschedulable`), with the taint the node controller adds.
    pub fn unschedulable(mut self, yes: bool) -> NodeSeed {
        self.unschedulable = yes;
        self
    }

    /// Ready condition False.
    pub fn not_ready(mut self) -> NodeSeed {
        self.ready = false;
        self
    }

    /// `kubernetes.io/os=windows`.
    pub fn windows(mut self) -> NodeSeed {
        self.os = "windows".into();
        self
    }

    /// `node-role.kubernetes.io/control-plane` and its NoSchedule taint.
    pub fn control_plane(mut self) -> NodeSeed {
        self.control_plane = true;
        self
    }

    /// The Node object (without uid, timestamps and resourceVersion: the store adds them).
    /// `index` picks its addresses.
    pub fn to_json(&self, index: usize) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": self.labels_json(),
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"
                }
            },
            "spec": self.spec(index),
            "status": self.status(index),
        })
    }

    /// The kubelet's well-known labels, the control-plane role, and the seed's labels.
    fn labels_json(&self) -> Map<String, Value> {
        let mut labels = Map::new();
        labels.insert("beta.kubernetes.io/arch".into(), "amd64".into());
        labels.insert("beta.kubernetes.io/os".into(), self.os.clone().into());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        labels.insert("kubernetes.io/hostname".into(), self.name.clone().into());
        labels.insert("kubernetes.io/os".into(), self.os.clone().into());
        if self.control_plane {
            labels.insert("node-role.kubernetes.io/control-plane".into(), "".into());
        }
        for (k, v) in &self.labels {
            labels.insert(k.clone(), v.clone().into());
        }
        labels
    }

    /// The seed's taints and those of the control-plane role, a cordon and NotReady.
    fn taints_json(&self) -> Vec<Value> {
        let mut taints = self.taints.clone();
        if self.control_plane {
            taints.push(
                json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}),
            );
        }
        if self.unschedulable {
            taints.push(
                json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                               "timeAdded": crate::util::rfc3339(crate::util::now_secs())}),
            );
        }
        if !self.ready {
            taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}));
        }
        taints
    }

    fn spec(&self, index: usize) -> Map<String, Value> {
        let taints = self.taints_json();
        let mut spec = Map::new();
        spec.insert(
            "podCIDR".into(),
            format!("10.244.{}.0/24", index % 256).into(),
        );
        spec.insert(
            "podCIDRs".into(),
            json!([format!("10.244.{}.0/24", index % 256)]),
        );
        if !taints.is_empty() {
            spec.insert("taints".into(), Value::Array(taints));
        }
        if self.unschedulable {
            spec.insert("unschedulable".into(), true.into());
        }
        spec
    }

    fn status(&self, index: usize) -> Value {
        let ip = format!("10.0.{}.{}", (index / 250) % 256, index % 250 + 2);
        json!({
            "capacity": {"cpu": "4", "ephemeral-storage": "129886128Ki", "hugepages-2Mi": "0",
                         "memory": "16374584Ki", "pods": "110"},
            "allocatable": {"cpu": "3860m", "ephemeral-storage": "119703055367", "hugepages-2Mi": "0",
                            "memory": "13732664Ki", "pods": "110"},
            "conditions": self.conditions(),
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": self.name}
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": self.node_info(index),
        })
    }

    /// The kubelet's conditions: no pressure, and Ready as seeded.
    fn conditions(&self) -> Value {
        let now = crate::util::rfc3339(crate::util::now_secs());
        let ready = if self.ready { "True" } else { "False" };
        let (ready_reason, ready_msg) = if self.ready {
            ("KubeletReady", "kubelet is posting ready status")
        } else {
            ("KubeletNotReady", "container runtime network not ready")
        };
        let condition = |t: &str, s: &str, reason: &str, msg: &str| {
            json!({"type": t, "status": s, "lastHeartbeatTime": now, "lastTransitionTime": now,
                   "reason": reason, "message": msg})
        };
        json!([
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available"
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure"
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available"
            ),
            condition("Ready", ready, ready_reason, ready_msg)
        ])
    }

    fn node_info(&self, index: usize) -> Value {
        let (os_image, kernel, runtime) = if self.os == "windows" {
            (
                "Windows Server 2022 Datacenter",
                "10.0.20348.2529",
                "containerd://1.7.20",
            )
        } else {
            (
                "Ubuntu 22.04.4 LTS",
                "5.15.0-1064-azure",
                "containerd://1.7.20",
            )
        };
        json!({
            "machineID": format!("{:032x}", index as u128 * 0x9e37_79b9 + 1),
            "systemUUID": format!("{:08x}-0000-4000-8000-{:012x}", index, index),
            "bootID": format!("{:08x}-1111-4111-8111-{:012x}", index, index),
            "kernelVersion": kernel,
            "osImage": os_image,
            "containerRuntimeVersion": runtime,
            "kubeletVersion": self.kubelet_version,
            "kubeProxyVersion": self.kubelet_version,
            "operatingSystem": self.os,
            "architecture": "amd64"
        })
    }
}

/// A Namespace as the server stores it (the `kubernetes.io/metadata.name` label, the
/// `kubernetes` finalizer, phase Active).
pub(crate) fn namespace(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = Map::new();
    for (k, v) in labels {
        l.insert((*k).into(), (*v).into());
    }
    l.insert("kubernetes.io/metadata.name".into(), name.into());
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": l},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    })
}
