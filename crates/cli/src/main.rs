// The webhook allocates many short-lived values per review; mimalloc serves them without
// glibc malloc's lock contention and consolidation (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sidecar_kit::main()
}
