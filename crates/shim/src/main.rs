//! `sidecar-shim`: see the library docs and `sidecar-shim --help`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = sidecar_shim::run(args, &|key| std::env::var(key).ok());
    std::process::exit(code);
}
