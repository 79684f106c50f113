// The webhook allocates many short-lived values per review; mimalloc serves them without
// glibc malloc's lock contention and consolidation (measured in BENCHMARKS.md). Built with
// `no_thp`: mimalloc otherwise asks for transparent huge pages on its arenas, and a few
// touched bytes then keep 2 MiB resident (with 5,000 nodes' live facts: 59.7 MiB peak
// RSS with them, 39.7 MiB without, and no slower). Asked through sidecar-kit-alloc, which
// keeps mimalloc on its fast path for the word-aligned blocks most values are.
#[global_allocator]
static GLOBAL: sidecar_kit_alloc::Allocator = sidecar_kit_alloc::Allocator;

fn main() -> std::process::ExitCode {
    sidecar_kit::main()
}
