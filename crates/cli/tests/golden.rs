//! Golden tests of the `sidecar-kit` binary: every mode and workload kind, explain, uninject
//! and each bad input. Cases are listed in `golden/cases.txt`; expected stdout and stderr
//! live in `golden/expected/`. Refresh them all with:
//!
//!     SIDECAR_KIT_BLESS=1 cargo test -p sidecar-kit --test golden
//!
//! and review the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sidecar_kit_testkit::golden;
use sidecar_kit_testkit::workspace_root as root;
use std::path::Path;
use std::process::Command;

struct Case {
    name: String,
    exit: i32,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cases.txt"),
    )
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.splitn(3, '|').map(str::trim).collect();
            Case {
                name: parts[0].to_string(),
                exit: parts[1].parse().unwrap(),
                args: parts[2]
                    .split_whitespace()
                    .map(|a| a.replace("G/", "crates/cli/tests/golden/"))
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn golden() {
    let bless = golden::bless();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/expected");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() > 20, "cases.txt lists the golden cases");
    for c in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
            .args(&c.args)
            .current_dir(root())
            .env("SIDECAR_KIT_GIT_COMMIT", "")
            .env_remove("SIDECAR_KIT_SHIM_IMAGE")
            .env_remove("SIDECAR_KIT_PROFILES")
            .env_remove("SIDECAR_KIT_FACTS")
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code != c.exit {
            failures.push(format!(
                "{}: exit {code}, expected {}\nstderr: {}",
                c.name,
                c.exit,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8(out.stdout).unwrap();
        // The version line carries the commit; keep it out of the golden file.
        let stdout = if c.name == "version" {
            stdout.replace(env!("SIDECAR_KIT_GIT_COMMIT"), "COMMIT")
        } else {
            stdout
        };
        if (1..10).contains(&c.exit) {
            assert!(
                stdout.is_empty(),
                "{}: nothing partial on stdout on error (exit codes 10-12 report findings on stdout), got {stdout}",
                c.name
            );
        }
        golden::check(
            &dir.join(format!("{}.stdout", c.name)),
            &stdout,
            bless,
            &mut failures,
        );
        golden::check(
            &dir.join(format!("{}.stderr", c.name)),
            &String::from_utf8(out.stderr).unwrap(),
            bless,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es); if intended, refresh with SIDECAR_KIT_BLESS=1 and review the diff:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
