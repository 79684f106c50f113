//! The `sidecar-kit` command line (also `kubectl sidecar` through the `kubectl-sidecar`
//! entry point). Thin: parses flags, reads files, calls the core, writes results.

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

mod daemon;
mod doctor;
mod explain;
pub mod flags;
mod inject;
mod jsonlog;
mod label_nodes;
mod lint;
mod logwriter;
mod output;
mod profiles;
pub mod program;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};

pub use program::complete::main as complete_main;
use std::process::ExitCode;

/// Exit codes (also in `--help` and the README).
pub mod exit {
    pub const OK: u8 = 0;
    pub const RUNTIME: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const CLUSTER: u8 = 3;
}

/// An error with the exit code it ends the program with. The message is complete: it
/// names the input, the place and the fix.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: exit::INPUT,
            message: message.into(),
        }
    }
    pub fn runtime(message: impl Into<String>) -> Self {
        CliError {
            code: exit::RUNTIME,
            message: message.into(),
        }
    }
}

impl From<sidecar_kit_manifests::LocatedError> for CliError {
    fn from(e: sidecar_kit_manifests::LocatedError) -> Self {
        CliError::input(e.to_string())
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "sidecar-kit",
    about = "Adopt Kubernetes native sidecar containers safely: inject, explain, troubleshoot.",
    version = VERSION_LINE,
    after_help = "Run as `kubectl sidecar` too (the kubectl-sidecar executable). Every command's \
--help ends with its exit codes; `sidecar-kit man` writes them as man pages.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inject sidecars into manifests offline (Pods, workloads, Lists); prints the result.
    Inject(inject::InjectArgs),
    /// Remove everything sidecar-kit injected, as recorded in the status annotation.
    Uninject(inject::UninjectArgs),
    /// Per pod template: which profiles match, the mode chosen and the facts behind it.
    Explain(explain::ExplainArgs),
    /// Check manifests offline for the native-sidecar rules met only at apply time.
    Lint(lint::LintArgs),
    /// Why native sidecars fail in a live cluster: cluster, webhooks, pods, injections.
    #[command(subcommand)]
    Doctor(doctor::DoctorCommand),
    /// Work with SidecarProfile files.
    #[command(subcommand)]
    Profiles(profiles::ProfilesCommand),
    /// Serve the mutating admission webhook (HTTPS POST /mutate; probes and metrics on plain HTTP).
    Serve(Box<serve::ServeArgs>),
    /// Issue a CA and a serving certificate for the webhook Service (clusters without cert-manager).
    Certs(serve::CertsArgs),
    /// Keep the sidecar-kit.io/native-sidecars label on every node (controller with leader election).
    LabelNodes(Box<label_nodes::Args>),
    /// Print the SidecarProfile CustomResourceDefinition (generated from the profile types).
    Crd(CrdArgs),
    /// Print the version, the git commit and the contract version.
    Version(VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completion(program::CompletionArgs),
    /// Write the man pages, one per command (or print the top-level one).
    Man(program::ManArgs),
}

#[derive(clap::Args, Debug)]
struct CrdArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = CrdFormat::Yaml)]
    output: CrdFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum CrdFormat {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
struct VersionArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = VersionFormat::Text)]
    output: VersionFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum VersionFormat {
    Text,
    Json,
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("SIDECAR_KIT_GIT_COMMIT");

/// `0.1.0 (commit abc, contract 1)`; the contract number is checked against the core's in a test.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SIDECAR_KIT_GIT_COMMIT"),
    ", contract 1)"
);

/// Runs the program and returns its exit code.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let bin_name = program::bin_name(args.first().map(std::ffi::OsString::as_os_str));
    let parsed = program::command(bin_name)
        .try_get_matches_from(args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli, bin_name) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            // An empty message is an exit code that reports findings already written.
            if !e.message.is_empty() {
                eprintln!("error: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}

fn run(cli: Cli, bin_name: &str) -> Result<(), CliError> {
    match cli.command {
        Command::Inject(a) => inject::inject(a),
        Command::Uninject(a) => inject::uninject(a),
        Command::Explain(a) => explain::explain(a),
        Command::Profiles(c) => profiles::run(c),
        Command::Doctor(c) => doctor::run(c),
        Command::Lint(a) => lint::lint(a),
        Command::Serve(a) => serve::serve(*a),
        Command::Certs(a) => serve::certs(a),
        Command::LabelNodes(a) => label_nodes::run(*a),
        Command::Crd(a) => {
            let crd = sidecar_kit_core::crd::sidecar_profile_crd();
            let text = match a.output {
                CrdFormat::Yaml => {
                    serde_saphyr::to_string(&crd).map_err(|e| CliError::runtime(e.to_string()))?
                }
                CrdFormat::Json => {
                    serde_json::to_string_pretty(&crd)
                        .map_err(|e| CliError::runtime(e.to_string()))?
                        + "\n"
                }
            };
            output::print(&text)
        }
        Command::Completion(a) => program::completion(&a, bin_name),
        Command::Man(a) => program::man::run(&a),
        Command::Version(a) => {
            match a.output {
                VersionFormat::Text => output::print(&format!("sidecar-kit {VERSION_LINE}\n"))?,
                VersionFormat::Json => output::print(&format!(
                    "{}\n",
                    serde_json::json!({"version": VERSION, "commit": GIT_COMMIT, "contract": sidecar_kit_core::CONTRACT_VERSION})
                ))?,
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_line_names_the_core_contract() {
        assert!(
            super::VERSION_LINE
                .ends_with(&format!("contract {})", sidecar_kit_core::CONTRACT_VERSION))
        );
    }
}
