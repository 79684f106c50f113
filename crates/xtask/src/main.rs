//! `cargo xtask`: release tasks of sidecar-kit.
//!
//! - `cargo xtask image`: builds the static release binaries and the release image as an OCI
//!   image archive, without a container engine or a base image.
//! - `cargo xtask check-image FILE`: checks an image archive (this one's, or `docker save`'s)
//!   against the OCI image-layout spec and prints what it holds.

mod elf;
mod oci;
mod tar;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Release tasks of sidecar-kit")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the release image (static sidecar-kit, kubectl-sidecar, static sidecar-shim;
    /// user 65532, no shell) as an OCI image archive.
    Image(ImageArgs),
    /// Check an image archive against the OCI image-layout spec and list what it holds.
    CheckImage {
        /// The archive (`.tar`, as written by `cargo xtask image` or `docker save`).
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The version label and the default tag.
    #[arg(long, default_value = concat!("v", env!("CARGO_PKG_VERSION")))]
    version: String,
    /// The image reference recorded in the archive [default: ghcr.io/sidecar-kit/sidecar-kit:VERSION].
    #[arg(long)]
    reference: Option<String>,
    /// Where to write the archive [default: target/image/sidecar-kit-VERSION-ARCH.oci.tar].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Take `sidecar-kit` and `sidecar-shim` from this directory instead of building them
    /// (they must be statically linked).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The Rust target to build for [default: the host's].
    #[arg(long)]
    target: Option<String>,
    /// Features of sidecar-shim (`api` serves jobCompletion: api and HTTPS readiness
    /// checks; empty for the std-only shim).
    #[arg(long, default_value = "api")]
    shim_features: String,
    /// org.opencontainers.image.source.
    #[arg(long, default_value = env!("CARGO_PKG_REPOSITORY"))]
    source: String,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("cargo xtask: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Image(args) => image(args),
        Cmd::CheckImage { file } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let c = oci::check(&data).with_context(|| format!("{}", file.display()))?;
            println!("{}: a valid OCI image layout", file.display());
            println!("  references  {}", c.refs.join(", "));
            println!("  manifest    {}", c.manifest_digest);
            let cfg = &c.config["config"];
            println!("  user        {}", cfg["User"].as_str().unwrap_or("(root)"));
            println!("  entrypoint  {}", cfg["Entrypoint"]);
            println!(
                "  platform    {}/{}",
                c.config["os"].as_str().unwrap_or("?"),
                c.config["architecture"].as_str().unwrap_or("?")
            );
            for f in &c.files {
                let (size, kind) = match &f.kind {
                    tar::Kind::File(d) => (d.len().to_string(), String::new()),
                    tar::Kind::Dir => (String::new(), String::new()),
                    tar::Kind::Link(t) => (String::new(), format!(" -> /{t} (hard link)")),
                };
                println!(
                    "  {:o} {}:{} {size:>9} /{}{kind}",
                    f.mode, f.uid, f.gid, f.path
                );
            }
            Ok(())
        }
    }
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn host_target() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let vv = output_of(Command::new(rustc).arg("-vV")).context("rustc -vV failed")?;
    vv.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

fn oci_arch(target: &str) -> Result<&'static str> {
    Ok(match target.split('-').next().unwrap_or_default() {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64gc" => "riscv64",
        "powerpc64le" => "ppc64le",
        "s390x" => "s390x",
        other => bail!("no OCI architecture known for {other} (target {target})"),
    })
}

/// Builds one binary statically: `RUSTFLAGS` gains crt-static, and the explicit `--target`
/// keeps it off build scripts and proc macros, which cannot be static.
fn cargo_build(root: &Path, target: &str, args: &[&str], commit: &str) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !flags.contains("crt-static") {
        flags = format!("{flags} -C target-feature=+crt-static")
            .trim()
            .to_string();
    }
    eprintln!("cargo build {} --target {target}", args.join(" "));
    let st = Command::new(cargo)
        .arg("build")
        .args(["--locked", "--target", target])
        .args(args)
        .env("RUSTFLAGS", flags)
        .env("SIDECAR_KIT_GIT_COMMIT", commit)
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !st.success() {
        bail!("cargo build {} failed", args.join(" "));
    }
    Ok(())
}

fn read_bin(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    let data = std::fs::read(&path).with_context(|| {
        format!(
            "reading {}: --bin-dir must hold sidecar-kit and sidecar-shim (leave it out to build them)",
            path.display()
        )
    })?;
    elf::check_static(&path.display().to_string(), &data)?;
    Ok(data)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn image(args: ImageArgs) -> Result<()> {
    let root = workspace_root();
    let target = match &args.target {
        Some(t) => t.clone(),
        None => host_target()?,
    };
    let arch = oci_arch(&target)?;
    let git = |a: &[&str]| output_of(Command::new("git").args(a).current_dir(&root));
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    // SOURCE_DATE_EPOCH (reproducible-builds.org), else the commit's time, else the epoch.
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds"))?,
        Err(_) => git(&["log", "-1", "--format=%ct"])
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    };
    // Where each binary is: one directory given, or the two profiles' output directories.
    let (kit_dir, shim_dir) = match &args.bin_dir {
        Some(d) => (d.clone(), d.clone()),
        None => {
            cargo_build(
                &root,
                &target,
                &["--release", "-p", "sidecar-kit", "--bin", "sidecar-kit"],
                &commit,
            )?;
            let mut shim = vec!["--profile", "shim", "-p", "sidecar-shim"];
            if !args.shim_features.is_empty() {
                shim.extend(["--features", args.shim_features.as_str()]);
            }
            cargo_build(&root, &target, &shim, &commit)?;
            let t = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"))
                .join(&target);
            (t.join("release"), t.join("shim"))
        }
    };
    let spec = oci::Spec {
        reference: args
            .reference
            .clone()
            .unwrap_or_else(|| format!("ghcr.io/sidecar-kit/sidecar-kit:{}", args.version)),
        version: args.version.clone(),
        revision: commit,
        source: args.source.clone(),
        created,
        arch: arch.to_string(),
        sidecar_kit: read_bin(&kit_dir, "sidecar-kit")?,
        sidecar_shim: read_bin(&shim_dir, "sidecar-shim")?,
    };
    let img = oci::build(&spec)?;
    oci::check(&img.archive).context("the image just built fails its own check")?;
    let out = args.output.clone().unwrap_or_else(|| {
        root.join(format!(
            "target/image/sidecar-kit-{}-{arch}.oci.tar",
            args.version
        ))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, &img.archive).with_context(|| format!("writing {}", out.display()))?;
    let f = out.display();
    println!("built {f}");
    println!("  reference  {}", spec.reference);
    println!("  manifest   {}", img.manifest_digest);
    println!("  config     {}", img.config_digest);
    println!(
        "  size       {} to pull (gzip layer), {} unpacked; sidecar-kit {}, sidecar-shim {}",
        mib(img.layer_size),
        mib(img.layer_unpacked),
        mib(spec.sidecar_kit.len() as u64),
        mib(spec.sidecar_shim.len() as u64)
    );
    println!("load or push it with one of:");
    println!("  docker load -i {f}");
    println!("  ctr -n k8s.io images import {f}");
    println!(
        "  skopeo copy oci-archive:{f} docker://REGISTRY/sidecar-kit:{}",
        args.version
    );
    Ok(())
}
