//! The checks of `doctor pods`, one per file, each named for what it detects. Each reads
//! the pod's [`PodView`] and its [`Context`] and adds its findings; [`ALL`] runs them in
//! the order their findings are listed.

use super::context::Context;
use super::view::PodView;
use crate::report::Finding;

pub mod job_kept_alive;
pub mod refused_as_root;
pub mod rejected_by_node;
pub mod restart_policy_stripped;
pub mod sidecar_exits;
pub mod stuck_in_init;
pub mod universal_copies;

/// One check: the pod and what is known around it, to the findings it adds.
pub type Check = fn(&PodView, &Context, &mut Vec<Finding>);

/// Every check, in the order their findings are listed.
pub const ALL: &[Check] = &[
    rejected_by_node::check,
    stuck_in_init::check,
    restart_policy_stripped::check,
    job_kept_alive::check,
    sidecar_exits::check,
    refused_as_root::check,
    universal_copies::check,
];
