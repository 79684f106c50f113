//! The pure core of sidecar-kit: no IO, no async.
//!
//! Raw object JSON goes in; a plan (what is added, where, in which mode, and why) and an
//! RFC 6902 JSON Patch come out. The object is never decoded into a model and re-encoded,
//! so fields this code does not know survive untouched.
//!
//! ```
//! use sidecar_kit_core::{engine, facts::StaticFacts, profile::{Profile, ProfileSet}};
//! let profile: serde_json::Value = serde_json::json!({
//!     "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
//!     "metadata": {"name": "agent"},
//!     "spec": {"mode": "native", "containers": [{"name": "agent", "image": "agent:1"}]}
//! });
//! let set = ProfileSet::new(vec![Profile::from_value(&profile, "example").unwrap()], None).unwrap();
//! let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
//!              "spec":{"containers":[{"name":"app","image":"app:1"}]}}"#;
//! let out = engine::inject(pod, &set, &StaticFacts::none(), &Default::default()).unwrap();
//! assert!(out.patch.iter().any(|op| op.path() == "/spec/initContainers"));
//! ```

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

#[cfg(feature = "schema")]
pub mod crd;
pub mod engine;
pub mod events;
pub mod facts;
pub mod labeling;
pub mod nodeindex;
pub mod patch;
pub mod pod;
pub mod profile;
pub mod resources;
pub mod selector;
mod skip;
pub mod status;
pub mod text;
pub mod version;
pub mod walk;

/// Version of the contract between the parts (`docs/contracts.md`).
pub const CONTRACT_VERSION: u32 = 1;
