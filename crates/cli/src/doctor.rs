//! `doctor`: why native sidecars fail in a live cluster: `cluster`, `webhooks`, `pods` and
//! `injections`. Findings go to stdout in the chosen format, progress to stderr (only on a
//! terminal); the exit code follows the highest finding and `--fail-on`.

use crate::lint::FailOn;
use crate::{CliError, output};
use clap::{Args, Subcommand, ValueEnum};
use sidecar_kit_core::labeling::{LEASE_NAME, LEASE_NAMESPACE};
use sidecar_kit_doctor::conn::{self, DoctorError, Session, Target};
use sidecar_kit_doctor::timeline::Timestamp;
use sidecar_kit_doctor::{Format, Report, cluster, exit_code, injections, pods, render, webhooks};
use std::time::Duration;

const NOT_SEEN: &str = "What a check could not see (and the RBAC permission that would let it) is listed \
as \"not seen\".";

#[derive(Subcommand, Debug)]
#[command(after_help = NOT_SEEN)]
pub enum DoctorCommand {
    /// The API server's and every kubelet's SidecarContainers gate, version skew, known
    /// bugs, node classes and what they mean for each mode; `-o facts` writes the
    /// ClusterFacts file that `inject` and `explain` read with --facts.
    #[command(after_help = NOT_SEEN)]
    Cluster(ClusterArgs),
    /// Mutating webhooks that see pod creations, in call order, and whether
    /// `restartPolicy: Always` survives them (a server-side dry-run create of a probe pod).
    #[command(after_help = NOT_SEEN)]
    Webhooks(WebhooksArgs),
    /// Pods in trouble: rejected by their node, stuck in Init, restartPolicy stripped, Jobs
    /// kept alive by legacy sidecars, crash loops, teardown exits, universal copies, and a
    /// timeline of every container.
    #[command(after_help = NOT_SEEN)]
    Pods(PodsArgs),
    /// The migration view: per workload, pods with stale injections, legacy sidecars that
    /// could be native, pods a profile selects but that carry no injection, and the
    /// commands that restart them.
    #[command(after_help = NOT_SEEN)]
    Injections(InjectionsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    #[command(flatten)]
    pub kube: crate::flags::KubeArgs,
    /// The lowest severity that makes the exit code non-zero.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
}

#[derive(Args, Debug, Clone)]
pub struct Scope {
    /// Namespace (repeatable; default: the kubeconfig context's namespace).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// All namespaces.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces")]
    pub all: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterFormat {
    Table,
    Json,
    Yaml,
    Junit,
    Markdown,
    /// The ClusterFacts file for `inject` and `explain --facts`.
    Facts,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodsFormat {
    Table,
    Json,
    Yaml,
    Junit,
    Markdown,
    /// An HTML page with an SVG timeline per pod.
    Html,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
    Yaml,
    Junit,
    Markdown,
}

impl From<ReportFormat> for Format {
    fn from(f: ReportFormat) -> Format {
        match f {
            ReportFormat::Table => Format::Table,
            ReportFormat::Json => Format::Json,
            ReportFormat::Yaml => Format::Yaml,
            ReportFormat::Junit => Format::Junit,
            ReportFormat::Markdown => Format::Markdown,
        }
    }
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a time: write RFC 3339, e.g. 2026-01-01T10:00:50Z"))
}

/// The shipped manifests' Lease, as `--labeler-lease` writes it.
static DEFAULT_LEASE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{LEASE_NAMESPACE}/{LEASE_NAME}"));

fn parse_lease(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok((ns.into(), name.into())),
        _ => Err(format!("{s:?}: give NAMESPACE/NAME")),
    }
}

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ClusterFormat::Table)]
    pub output: ClusterFormat,
    /// Kubelet metrics read at once through the node proxy.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Time allowed for one kubelet's metrics (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub node_timeout: Duration,
    /// The label-nodes Lease (NAMESPACE/NAME) whose freshness lets auto use affinity and universal.
    #[arg(long, default_value = DEFAULT_LEASE.as_str(), value_parser = parse_lease, value_name = "NS/NAME")]
    pub labeler_lease: (String, String),
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug)]
pub struct WebhooksArgs {
    #[command(flatten)]
    pub common: Common,
    /// Namespaces to probe (repeatable; default: the kubeconfig context's namespace).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// SidecarProfile files or directories (repeatable): also probe with the labels of the
    /// workloads they select in each namespace.
    #[arg(short = 'p', long = "profiles", value_name = "PATH")]
    pub profiles: Vec<String>,
    /// Image carrying sidecar-shim, for profiles that name none.
    #[arg(long, value_name = "IMAGE", env = "SIDECAR_KIT_SHIM_IMAGE")]
    pub shim_image: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Table)]
    pub output: ReportFormat,
}

#[derive(Args, Debug)]
pub struct PodsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub scope: Scope,
    /// One pod (in the namespace given, or the context's).
    #[arg(value_name = "NAME", conflicts_with = "all")]
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PodsFormat::Table)]
    pub output: PodsFormat,
    /// Take the report as of this time (RFC 3339, e.g. 2026-01-01T10:00:50Z) instead of now:
    /// the timelines end there. For reports that must come out the same every time.
    #[arg(long, value_name = "TIME", env = "SIDECAR_KIT_REPORT_TIME", value_parser = parse_time)]
    pub report_time: Option<Timestamp>,
}

#[derive(Args, Debug)]
pub struct InjectionsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub scope: Scope,
    #[command(flatten)]
    pub profiles: crate::inject::ProfileArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Table)]
    pub output: ReportFormat,
}

fn doctor_error(e: DoctorError) -> CliError {
    CliError {
        code: e.exit_code(),
        message: e.to_string(),
    }
}

fn target(c: &Common) -> Target {
    Target {
        kubeconfig: c.kube.kubeconfig.clone(),
        context: c.kube.context.clone(),
    }
}

/// Connects and runs one command's async part on a fresh runtime.
fn with_session<T>(
    c: &Common,
    f: impl AsyncFnOnce(&Session) -> Result<T, DoctorError>,
) -> Result<T, CliError> {
    let rt = conn::runtime().map_err(doctor_error)?;
    let t = target(c);
    rt.block_on(async move {
        let s = conn::connect(&t).await?;
        f(&s).await
    })
    .map_err(doctor_error)
}

fn finish(report: &Report, fail_on: FailOn) -> Result<(), CliError> {
    match exit_code(report, fail_on.into()) {
        0 => Ok(()),
        code => Err(CliError {
            code,
            message: String::new(),
        }),
    }
}

/// Runs a doctor command.
pub fn run(c: DoctorCommand) -> Result<(), CliError> {
    match c {
        DoctorCommand::Cluster(a) => run_cluster(&a),
        DoctorCommand::Webhooks(a) => run_webhooks(&a),
        DoctorCommand::Pods(a) => run_pods(&a),
        DoctorCommand::Injections(a) => run_injections(&a),
    }
}

fn run_cluster(a: &ClusterArgs) -> Result<(), CliError> {
    let opts = cluster::ClusterOptions {
        concurrency: usize::from(a.concurrency),
        node_timeout: a.node_timeout,
        labeler_lease: Some(a.labeler_lease.clone()),
        progress: !a.no_progress,
    };
    let result = with_session(&a.common, async |s| cluster::run(s, &opts).await)?;
    let format = match a.output {
        ClusterFormat::Facts => {
            output::print(&cluster::facts_yaml(&result.facts).map_err(doctor_error)?)?;
            if let Some(w) = result.report.worst() {
                eprintln!(
                    "note: {} finding(s), the highest {}: run without -o facts to see them",
                    result.report.findings.len(),
                    w.as_str()
                );
            }
            return finish(&result.report, a.common.fail_on);
        }
        ClusterFormat::Table => Format::Table,
        ClusterFormat::Json => Format::Json,
        ClusterFormat::Yaml => Format::Yaml,
        ClusterFormat::Junit => Format::Junit,
        ClusterFormat::Markdown => Format::Markdown,
    };
    output::print(&render(&result.report, format, None))?;
    finish(&result.report, a.common.fail_on)
}

fn run_webhooks(a: &WebhooksArgs) -> Result<(), CliError> {
    let profiles = if a.profiles.is_empty() {
        None
    } else {
        Some(crate::inject::load_set(
            &a.profiles,
            a.shim_image.as_deref(),
            "problem(s) in the profiles",
        )?)
    };
    let opts = webhooks::WebhooksOptions {
        namespaces: a.namespaces.clone(),
        profiles,
    };
    let report = with_session(&a.common, async |s| webhooks::run(s, &opts).await)?;
    output::print(&render(&report, a.output.into(), None))?;
    finish(&report, a.common.fail_on)
}

fn run_pods(a: &PodsArgs) -> Result<(), CliError> {
    let opts = pods::PodsOptions {
        namespaces: a.scope.namespaces.clone(),
        all_namespaces: a.scope.all,
        name: a.name.clone(),
        report_time: a.report_time,
    };
    let result = with_session(&a.common, async |s| pods::run(s, &opts).await)?;
    let text = match a.output {
        PodsFormat::Table => pods::text(&result),
        PodsFormat::Html => pods::html(&result),
        PodsFormat::Json => render(&result.report, Format::Json, None),
        PodsFormat::Yaml => render(&result.report, Format::Yaml, None),
        PodsFormat::Junit => render(&result.report, Format::Junit, None),
        PodsFormat::Markdown => render(&result.report, Format::Markdown, None),
    };
    output::print(&text)?;
    finish(&result.report, a.common.fail_on)
}

fn run_injections(a: &InjectionsArgs) -> Result<(), CliError> {
    let opts = injections::InjectionsOptions {
        namespaces: a.scope.namespaces.clone(),
        all_namespaces: a.scope.all,
        profiles: a.profiles.load()?,
    };
    let report = with_session(&a.common, async |s| injections::run(s, &opts).await)?;
    output::print(&render(&report, a.output.into(), None))?;
    finish(&report, a.common.fail_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_and_times() {
        assert_eq!(parse_lease("a/b"), Ok(("a".into(), "b".into())));
        assert!(parse_lease("ab").is_err());
        assert_eq!(
            parse_time("2026-01-01T10:00:50Z").map(|t| t.as_second()),
            Ok(1_767_261_650)
        );
        assert!(parse_time("yesterday").is_err());
    }
}
