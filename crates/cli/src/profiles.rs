//! `profiles validate`.

use crate::{CliError, output};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ProfilesCommand {
    /// Check SidecarProfile files: schema, values, names, and conflicts between profiles.
    Validate {
        /// Files or directories. Repeatable.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        /// Image carrying sidecar-shim, for profiles that name none (part of the content hash).
        #[arg(long, value_name = "IMAGE", env = "SIDECAR_KIT_SHIM_IMAGE")]
        shim_image: Option<String>,
    },
}

pub fn run(c: ProfilesCommand) -> Result<(), CliError> {
    match c {
        ProfilesCommand::Validate { paths, shim_image } => {
            let set = crate::inject::load_set(&paths, shim_image.as_deref(), "problem(s)")?;
            let mut text = format!("{} profile(s) valid\n", set.len());
            for p in set.iter() {
                text.push_str(&format!(
                    "  {}  mode {}  priority {}  {}  ({})\n",
                    p.name, p.spec.mode, p.spec.priority, p.hash, p.origin
                ));
            }
            output::print(&text)
        }
    }
}
