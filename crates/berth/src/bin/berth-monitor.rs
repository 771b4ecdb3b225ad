//! `berth-monitor`: a container's monitor as an executable of its own (see
//! `berth_engine::monitor`). The engine starts it for each container; it
//! holds only the engine's container code, so its start (the exec, the
//! dynamic linker's relocations, the pages it touches) costs a fraction of
//! the whole `berth` executable's. `berth` started under this name does the
//! same, for a store whose monitor program is `berth` itself.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::ExitCode::from(berth_engine::monitor::main(&args).clamp(0, 255) as u8)
}
