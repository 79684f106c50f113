//! The Kubernetes API adapter of sidecar-kit (kube-rs): one client setup for every command,
//! the API server's version and `SidecarContainers` gate, a live cache of what decisions
//! need from nodes and namespaces (behind the core's `Facts` trait), and the `label-nodes`
//! controller.

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

pub mod apiserver;
pub mod connect;
pub mod events;
pub mod labeler;
pub mod lease;
pub mod live;
pub mod profiles;
pub mod watched;

pub use connect::{ClusterError, Connect};
pub use kube::Client;
