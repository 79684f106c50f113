//! `kubectl sidecar ...`: the kubectl plugin entry point, the same program as `sidecar-kit`.
#[global_allocator]
static GLOBAL: sidecar_kit_alloc::Allocator = sidecar_kit_alloc::Allocator;

fn main() -> std::process::ExitCode {
    sidecar_kit::main()
}
