//! `sidecar-kit doctor` and `lint`: checks that explain why native sidecars fail, as
//! findings with a severity, the object they concern, what is wrong and how to fix it.
//! Every command produces a [`Report`]; [`render`] writes it in any output format, and
//! [`exit_code`] turns it into the documented exit code.

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

pub mod cel;
pub mod cluster;
pub mod conn;
pub mod injections;
pub mod lint;
pub mod pods;
pub mod progress;
pub mod report;
pub mod timeline;
pub mod webhooks;

pub use report::{BlindSpot, Finding, Format, Report, Severity, exit_code, render};
