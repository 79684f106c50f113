//! `kubectl_complete-sidecar ARGS... WORD`: completion of `kubectl sidecar` for kubectl 1.26
//! and newer, which runs this executable (found on PATH beside kubectl-sidecar) and reads
//! cobra's completion protocol from it.

fn main() -> std::process::ExitCode {
    sidecar_kit::complete_main()
}
