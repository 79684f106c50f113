fn main() -> std::process::ExitCode {
    sidecar_kit::main()
}
