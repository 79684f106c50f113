//! What the program says about itself beyond its flags, from the one set of argument
//! definitions: the exit codes of every command (in `--help` and the man pages, from one
//! table), shell completions, man pages, and the name it goes by (`sidecar-kit`, or
//! `kubectl sidecar` when run as the kubectl plugin).

use clap::Command;

pub mod complete;
pub mod man;

type Codes = &'static [(&'static str, &'static str)];

const TOP: Codes = &[
    ("0", "ok"),
    ("1", "runtime error"),
    ("2", "usage or bad input"),
    ("3", "cluster unreachable or forbidden"),
    ("10-12", "findings of doctor and lint (see their help)"),
];
const ENGINE: Codes = &[
    ("0", "ok (skips and warnings go to stderr)"),
    ("1", "runtime error (cannot write the output)"),
    (
        "2",
        "usage or bad input: an unreadable file, an invalid profile, conflicting profiles, a pod annotation naming an unknown profile",
    ),
];
const UNINJECT: Codes = &[
    (
        "0",
        "ok (a template whose annotation does not match is left as it is, with a warning)",
    ),
    ("1", "runtime error (cannot write the output)"),
    (
        "2",
        "usage or bad input: an unreadable file, an invalid profile",
    ),
];
const LINT: Codes = &[
    ("0", "no finding reaches --fail-on (default: error)"),
    ("10", "the highest finding is info (with --fail-on info)"),
    (
        "11",
        "the highest finding is a warning (with --fail-on warning or info)",
    ),
    ("12", "the highest finding is an error"),
    ("2", "usage or unreadable input"),
];
const DOCTOR: Codes = &[
    ("0", "no finding reaches --fail-on (default: error)"),
    ("10", "the highest finding is info (with --fail-on info)"),
    (
        "11",
        "the highest finding is a warning (with --fail-on warning or info)",
    ),
    ("12", "the highest finding is an error"),
    ("2", "usage or bad input"),
    (
        "3",
        "cluster unreachable, or the command's subject forbidden",
    ),
];
const PROFILES: Codes = &[
    ("0", "all profiles valid"),
    (
        "2",
        "usage, or problems found (each named with file, document, field and fix)",
    ),
];
const SERVE: Codes = &[
    (
        "0",
        "stopped on SIGTERM or SIGINT, in-flight reviews answered",
    ),
    ("1", "runtime error (cannot listen)"),
    (
        "2",
        "bad configuration (flags, files that cannot be read at start)",
    ),
];
const CERTS: Codes = &[
    ("0", "ok"),
    ("1", "cannot write the files"),
    ("2", "usage or bad input (existing files without --force)"),
];
const LABEL_NODES: Codes = &[
    ("0", "stopped on SIGTERM or SIGINT, the Lease released"),
    ("1", "runtime error (cannot listen)"),
    ("2", "bad flags"),
    ("3", "cluster unreachable or forbidden at start"),
];
const MAN: Codes = &[("0", "ok"), ("1", "cannot write the pages"), ("2", "usage")];
const PRINT: Codes = &[
    ("0", "ok"),
    ("1", "cannot write the output"),
    ("2", "usage"),
];

/// The exit codes of the command at `path` (subcommand names from the top), code and
/// meaning.
pub fn exit_codes(path: &[&str]) -> Codes {
    match path {
        [] => TOP,
        ["inject"] | ["explain"] => ENGINE,
        ["uninject"] => UNINJECT,
        ["lint"] => LINT,
        ["doctor", ..] => DOCTOR,
        ["profiles", ..] => PROFILES,
        ["serve"] => SERVE,
        ["certs"] => CERTS,
        ["label-nodes"] => LABEL_NODES,
        ["man"] => MAN,
        _ => PRINT,
    }
}

/// The exit codes as `--help` shows them.
fn exit_section(path: &[&str]) -> String {
    let mut s = String::from("Exit codes:");
    for (code, meaning) in exit_codes(path) {
        s.push_str(&format!("\n  {code:<5} {meaning}"));
    }
    s
}

/// The argument definitions with every command's exit codes after its help text, under
/// the name the program was called by.
pub fn command(bin_name: &str) -> Command {
    let cmd = <crate::Cli as clap::CommandFactory>::command().bin_name(bin_name);
    decorate(cmd, &mut Vec::new())
}

fn decorate(cmd: Command, path: &mut Vec<String>) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let words: Vec<&str> = path.iter().map(String::as_str).collect();
    let codes = exit_section(&words);
    let text = match cmd.get_after_help() {
        Some(prose) => format!("{prose}\n\n{codes}"),
        None => codes,
    };
    let mut cmd = cmd.after_help(text);
    for name in names {
        path.push(name.clone());
        cmd = cmd.mut_subcommand(&name, |s| decorate(s, path));
        path.pop();
    }
    cmd
}

/// The name the program goes by: `kubectl sidecar` when started through kubectl's plugin
/// mechanism (an executable named `kubectl-sidecar`), else `sidecar-kit`.
pub fn bin_name(argv0: Option<&std::ffi::OsStr>) -> &'static str {
    let file = argv0
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if file.starts_with("kubectl-sidecar") {
        "kubectl sidecar"
    } else {
        "sidecar-kit"
    }
}

/// `completion SHELL`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Load it in the current shell, e.g. `source <(sidecar-kit completion bash)`, or save it \
where the shell looks: bash ~/.local/share/bash-completion/completions/sidecar-kit, \
zsh a file _sidecar-kit in a directory of $fpath, fish ~/.config/fish/completions/sidecar-kit.fish. \
As a kubectl plugin, `kubectl sidecar` completes through the kubectl_complete-sidecar executable \
installed beside kubectl-sidecar (kubectl 1.26 and newer)."
)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Read them with `man -l DIR/sidecar-kit.1`, or install DIR/*.1 under a man1 \
directory of MANPATH (e.g. /usr/local/share/man/man1)."
)]
pub struct ManArgs {
    /// Write sidecar-kit.1 and a page per command into DIR (created if missing); without it,
    /// print sidecar-kit.1 to standard output.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// `completion SHELL`: the script on standard output.
pub fn completion(a: &CompletionArgs, bin_name: &str) -> Result<(), crate::CliError> {
    let mut cmd = command(bin_name);
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, bin_name, &mut out);
    crate::output::print(&String::from_utf8_lossy(&out))
}
