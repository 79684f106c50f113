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
Job templates with restartPolicy Always; an unreadable sidecar-kit status annotation. SidecarProfiles are linted as \
the containers they inject. -o json and -o yaml write one `LintReport` document (apiVersion sidecar-kit.io/v1alpha1; \
fields in docs/output-schema.md)."
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
    let linted = run_lint(&inputs);
    let text = match a.output {
        LintFormat::Json => {
            serde_json::to_string_pretty(&linted.document)
                .map_err(|e| CliError::runtime(e.to_string()))?
                + "\n"
        }
        LintFormat::Yaml => serde_saphyr::to_string(&linted.document)
            .map_err(|e| CliError::runtime(e.to_string()))?,
        LintFormat::Table => render(&linted.report, Format::Table, None),
        LintFormat::Junit => render(&linted.report, Format::Junit, None),
        LintFormat::Markdown => render(&linted.report, Format::Markdown, None),
        LintFormat::Html => render(&linted.report, Format::Html, None),
    };
    output::print(&text)?;
    match exit_code(&linted.report, a.fail_on.into()) {
        0 => Ok(()),
        code => Err(CliError {
            code,
            message: String::new(),
        }),
    }
}
