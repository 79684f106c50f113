//! `kubectl sidecar ...`: the kubectl plugin entry point, the same program as `sidecar-kit`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sidecar_kit::main()
}
