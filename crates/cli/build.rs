//! Records the git commit for `sidecar-kit version`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SIDECAR_KIT_GIT_COMMIT");
    let commit = std::env::var("SIDECAR_KIT_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        });
    println!(
        "cargo:rustc-env=SIDECAR_KIT_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    if let Ok(head) = std::fs::read_to_string("../../.git/HEAD") {
        println!("cargo:rerun-if-changed=../../.git/HEAD");
        if let Some(r) = head.strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../../.git/{}", r.trim());
        }
    }
}
