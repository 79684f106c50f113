//! `kubectl sidecar ...`: the kubectl plugin entry point, the same program as `sidecar-kit`.
fn main() -> std::process::ExitCode {
    sidecar_kit::main()
}
