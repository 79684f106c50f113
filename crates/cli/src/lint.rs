//! `lint`: offline checks of manifests.

use crate::{CliError, output};
use clap::{Args, ValueEnum};
use sidecar_kit_doctor::lint::{Input, lint as run_lint};
use sidecar_kit_doctor::{Format, Severity, exit_code, render};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LintFormat {
    Table,
    Json,
    Yaml,
    Junit,
    Markdown,
    Html,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Info,
    Warning,
    Error,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Info => Severity::Info,
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        }
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "Checks: restartPolicy on a regular container; probes or lifecycle on a regular init container; \
a restartPolicy other than Always on an init container; a sidecar as a regular container in a Job pod; a native sidecar \
without startupProbe before other containers; duplicate container or volume names; mounts without volumes; invalid names; \
Job templates with restartPolicy Always; an unreadable sidecar-kit status annotation."
)]
pub struct LintArgs {
    #[command(flatten)]
    pub input: crate::inject::InputArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = LintFormat::Table)]
    pub output: LintFormat,
    /// The lowest severity that makes the exit code non-zero.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
}

pub fn lint(a: LintArgs) -> Result<(), CliError> {
    let docs = a.input.read()?;
    let jsons: Vec<(String, String)> = docs
        .iter()
        .map(|d| {
            serde_json::to_string(&d.value)
                .map(|j| (d.describe(), j))
                .map_err(|e| CliError::runtime(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let inputs: Vec<Input<'_>> = jsons
        .iter()
        .map(|(p, j)| Input {
            place: p.clone(),
            json: j,
        })
        .collect();
    let report = run_lint(&inputs);
    let format = match a.output {
        LintFormat::Table => Format::Table,
        LintFormat::Json => Format::Json,
        LintFormat::Yaml => Format::Yaml,
        LintFormat::Junit => Format::Junit,
        LintFormat::Markdown => Format::Markdown,
        LintFormat::Html => Format::Html,
    };
    output::print(&render(&report, format, None))?;
    match exit_code(&report, a.fail_on.into()) {
        0 => Ok(()),
        code => Err(CliError {
            code,
            message: String::new(),
        }),
    }
}
