//! What every command says about itself (exit codes in `--help`, man pages, completion
//! scripts) and the flags every command shares (`-f` with `-R`, `-p`, `-n`, durations),
//! through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sidecar_kit_testkit::workspace_root as root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sidecar-kit")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(root())
        .env_remove("SIDECAR_KIT_PROFILES")
        .output()
        .unwrap()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sk-commands-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every command path of the program, from its argument definitions.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(
        &sidecar_kit::program::command("sidecar-kit"),
        &mut Vec::new(),
        &mut out,
    );
    out
}

#[test]
fn every_commands_help_ends_with_its_exit_codes() {
    let paths = command_paths();
    assert!(paths.len() >= 18, "{paths:?}");
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = run(&args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let codes = help
            .split("Exit codes:")
            .nth(1)
            .unwrap_or_else(|| panic!("{args:?} has no exit codes:\n{help}"));
        for (code, meaning) in sidecar_kit::program::exit_codes(&words) {
            assert!(
                codes.contains(&format!("{code:<5} {meaning}")),
                "{args:?}: {code} {meaning}:\n{help}"
            );
        }
    }
    // The exit codes the commands' help promises are the ones they end with.
    assert_eq!(
        run(&["lint", "-f", "crates/no/such/file.yaml"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&[
            "inject",
            "-f",
            "crates/no/such/file.yaml",
            "-p",
            "examples/profiles"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn man_pages_one_per_command_with_exit_status() {
    let dir = tmp("man");
    let out = run(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let paths = command_paths();
    assert_eq!(listed.lines().count(), paths.len(), "{listed}");
    for path in &paths {
        let name = std::iter::once("sidecar-kit".to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        let page = std::fs::read_to_string(dir.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}\n{listed}"));
        assert!(page.contains(".SH NAME"), "{name}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{name}: {page}");
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let (first, _) = sidecar_kit::program::exit_codes(&words)[0];
        assert!(page.contains(&format!("\\fB{first}\\fR")), "{name}: {page}");
    }
    let doctor = std::fs::read_to_string(dir.join("sidecar-kit-doctor.1")).unwrap();
    assert!(
        doctor.contains("sidecar\\-kit\\-doctor\\-cluster(1)"),
        "SEE ALSO names the subcommands: {doctor}"
    );
    // A directory that cannot be made is named, with the fix.
    let bad = run(&["man", "--out-dir", "/proc/no-such-dir/man"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--out-dir /proc/no-such-dir/man: cannot be created")
            && err.contains("give a directory you can write to"),
        "{err}"
    );
    // Without --out-dir: the top page on stdout.
    let top = run(&["man"]);
    assert!(String::from_utf8_lossy(&top.stdout).contains(".TH SIDECAR-KIT 1"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn completion_scripts_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completion", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for word in [
            "label-nodes",
            "doctor",
            "profiles",
            "recursive",
            "kubeconfig",
        ] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let bad = run(&["completion", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values: bash"));
    // The bash script is valid bash.
    if Path::new("/bin/bash").exists() {
        let dir = tmp("bash");
        let script = dir.join("sidecar-kit.bash");
        std::fs::write(&script, run(&["completion", "bash"]).stdout).unwrap();
        let syntax = Command::new("/bin/bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            syntax.status.success(),
            "{}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn directories_are_read_recursively_with_r() {
    let dir = tmp("recursive");
    let pod =
        std::fs::read_to_string(root().join("crates/cli/tests/golden/inputs/pod.json")).unwrap();
    std::fs::create_dir_all(dir.join("team-a/apps")).unwrap();
    std::fs::write(dir.join("team-a/apps/pod.json"), &pod).unwrap();
    let d = dir.to_str().unwrap();

    let out = run(&[
        "inject",
        "-f",
        d,
        "-p",
        "examples/profiles",
        "--mode",
        "native",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no manifests at its top level, but 1 below it"),
        "{err}"
    );
    assert!(err.contains("-R (--recursive)"), "{err}");

    for flag in ["-R", "--recursive"] {
        let out = run(&[
            "inject",
            "-f",
            d,
            flag,
            "-p",
            "examples/profiles",
            "--mode",
            "native",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("sidecar-kit.io/status"));
    }
    for cmd in ["explain", "lint"] {
        let mut args = vec![cmd, "-f", d, "-R"];
        if cmd == "explain" {
            args.extend(["-p", "examples/profiles"]);
        }
        let out = run(&args);
        assert!(
            matches!(out.status.code(), Some(0 | 10 | 11 | 12)),
            "{cmd} -R: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("top level"),
            "{cmd}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn profiles_and_namespaces_have_the_same_short_flags_everywhere() {
    for (path, flags) in [
        (&["serve"][..], &["-p, --profiles", "-n, --namespace"][..]),
        (
            &["doctor", "webhooks"],
            &["-p, --profiles", "-n, --namespace"],
        ),
        (
            &["doctor", "injections"],
            &["-p, --profiles", "-n, --namespace"],
        ),
        (
            &["inject"],
            &["-p, --profiles", "-n, --namespace", "-R, --recursive"],
        ),
        (
            &["explain"],
            &["-p, --profiles", "-n, --namespace", "-R, --recursive"],
        ),
        (&["uninject"], &["-p, --profiles", "-R, --recursive"]),
        (&["lint"], &["-R, --recursive"]),
        (&["label-nodes"], &["-n, --namespace"]),
        (&["certs"], &["-n, --namespace"]),
    ] {
        let mut args = path.to_vec();
        args.push("--help");
        let help = String::from_utf8_lossy(&run(&args).stdout).into_owned();
        for f in flags {
            assert!(help.contains(f), "{path:?} {f}:\n{help}");
        }
    }
    // Every command that talks to a cluster takes the kubeconfig from the same variable.
    for path in [
        &["serve"][..],
        &["label-nodes"],
        &["doctor", "cluster"],
        &["doctor", "webhooks"],
        &["doctor", "pods"],
        &["doctor", "injections"],
    ] {
        let mut args = path.to_vec();
        args.push("--help");
        let help = String::from_utf8_lossy(&run(&args).stdout).into_owned();
        assert!(
            help.contains("[env: SIDECAR_KIT_KUBECONFIG="),
            "{path:?}:\n{help}"
        );
        assert!(help.contains("[env: SIDECAR_KIT_CONTEXT="), "{path:?}");
    }
}

#[test]
fn durations_are_written_one_way_everywhere() {
    // A bad duration is refused by every command that takes one, naming the forms.
    for args in [
        &["label-nodes", "--lease-duration", "soon"][..],
        &[
            "serve",
            "-p",
            ".",
            "--tls-cert",
            "x",
            "--tls-key",
            "y",
            "--request-timeout",
            "10x",
        ],
        &["doctor", "cluster", "--node-timeout", "fast"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("write 500ms, 5s, 2m, 1h, 1m30s, or a plain number of seconds"),
            "{args:?}: {err}"
        );
    }
    // Defaults are shown in the same form.
    let help = String::from_utf8_lossy(&run(&["label-nodes", "--help"]).stdout).into_owned();
    for d in [
        "[default: 15s]",
        "[default: 5s]",
        "[default: 10m]",
        "[default: 5m]",
    ] {
        assert!(help.contains(d), "{d}:\n{help}");
    }
}
