//! `version`, `info` and `--version`, in docker's layouts, with `--format`
//! over the same fields docker's templates see.

use anyhow::Result;
use berth_engine::{Engine, Status};
use serde_json::{json, Value};

use crate::cli::{FormatArgs, Global};
use crate::template::Format;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const GIT_COMMIT: &str = env!("BERTH_GIT_COMMIT");
const RUSTC_VERSION: &str = env!("BERTH_RUSTC_VERSION");

/// `berth --version`: `Berth version X, build Y`, the shape scripts parse out
/// of `docker --version`.
pub fn version_line() -> String {
    format!("Berth version {VERSION}, build {GIT_COMMIT}")
}

/// The host's architecture as OCI names it (`amd64`).
fn arch() -> String {
    berth_engine::image::host_arch().to_string()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kernel_version() -> String {
    read_trimmed("/proc/sys/kernel/osrelease")
}

/// `--format` given: prints the template (or JSON) over `doc` and returns true.
fn print_formatted(format: Option<&str>, doc: &Value) -> Result<bool> {
    let Some(f) = format else {
        return Ok(false);
    };
    let (_, template) = crate::format::split_table(Some(f));
    let Some(template) = template else {
        return Ok(false);
    };
    println!("{}", Format::parse(&template)?.render(doc)?);
    Ok(true)
}

pub fn version(a: FormatArgs) -> Result<i32> {
    let os_arch = format!("linux/{}", arch());
    let engine = json!({
        "Version": VERSION,
        "GitCommit": GIT_COMMIT,
        "RustVersion": RUSTC_VERSION,
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel_version(),
    });
    let doc = json!({
        "Client": {
            "Platform": {"Name": "Berth"},
            "Version": VERSION,
            "GitCommit": GIT_COMMIT,
            "RustVersion": RUSTC_VERSION,
            "Os": "linux",
            "Arch": arch(),
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "Berth Engine"},
            "Components": [{"Name": "Engine", "Version": VERSION, "Details": engine.clone()}],
            "Version": VERSION,
            "GitCommit": GIT_COMMIT,
            "RustVersion": RUSTC_VERSION,
            "Os": "linux",
            "Arch": arch(),
            "KernelVersion": kernel_version(),
        },
    });
    if print_formatted(a.format.as_deref(), &doc)? {
        return Ok(0);
    }
    // Berth runs without a daemon: the engine is this program.
    let lines = [
        "Client: Berth".to_string(),
        format!(" Version:           {VERSION}"),
        format!(" Git commit:        {GIT_COMMIT}"),
        format!(" Rust version:      {RUSTC_VERSION}"),
        format!(" OS/Arch:           {os_arch}"),
        " Context:           default".to_string(),
        String::new(),
        "Server: Berth Engine".to_string(),
        " Engine:".to_string(),
        format!("  Version:          {VERSION}"),
        format!("  Git commit:       {GIT_COMMIT}"),
        format!("  Rust version:     {RUSTC_VERSION}"),
        format!("  OS/Arch:          {os_arch}"),
        format!("  Kernel Version:   {}", kernel_version()),
    ];
    println!("{}", lines.join("\n"));
    Ok(0)
}

/// Docker's `units.BytesSize`: binary units, four significant digits.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    // Go's %.4g: four significant digits, no trailing zeros.
    let digits = if size >= 1000.0 {
        0
    } else if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let mut text = format!("{size:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// `/etc/os-release`'s value of `key`.
fn os_release(key: &str) -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The filesystem the state root lives on, as docker names it.
fn backing_filesystem(path: &std::path::Path) -> &'static str {
    let Ok(st) = nix::sys::statfs::statfs(path) else {
        return "unknown";
    };
    match st.filesystem_type().0 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        _ => "unknown",
    }
}

pub fn info(engine: &Engine, g: &Global, a: FormatArgs) -> Result<i32> {
    let containers = engine.containers()?;
    let count = |f: fn(Status) -> bool| containers.iter().filter(|c| f(c.state.status)).count();
    let running = count(|s| matches!(s, Status::Running | Status::Restarting));
    let paused = count(|s| s == Status::Paused);
    let images = engine
        .images()
        .list()?
        .iter()
        .filter(|i| !i.intermediate)
        .count();
    let cgroup_version = match berth_engine::runtime::cgroups::detect(&engine.config().cgroup_root)
    {
        Ok(berth_engine::runtime::cgroups::Version::V2) => "2",
        _ => "1",
    };
    let root = engine.root();
    let backing = backing_filesystem(root);
    let mem_total = crate::container_cmds::host_memory();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name = read_trimmed("/proc/sys/kernel/hostname");
    let debug = g.debug;
    let doc = json!({
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing], ["Supports d_type", "true"]],
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "DefaultRuntime": "berth",
        "Runtimes": {"berth": {"path": "berth"}},
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_release("PRETTY_NAME"),
        "OSVersion": os_release("VERSION_ID"),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "Name": name,
        "DockerRootDir": root.display().to_string(),
        "Debug": debug,
        "ServerVersion": VERSION,
        "ClientInfo": {"Version": VERSION, "Context": "default", "Debug": debug},
    });
    if print_formatted(a.format.as_deref(), &doc)? {
        return Ok(0);
    }
    let lines = [
        "Client:".to_string(),
        format!(" Version:    {VERSION}"),
        " Context:    default".to_string(),
        format!(" Debug Mode: {debug}"),
        String::new(),
        "Server:".to_string(),
        format!(" Containers: {}", containers.len()),
        format!("  Running: {running}"),
        format!("  Paused: {paused}"),
        format!("  Stopped: {}", containers.len() - running - paused),
        format!(" Images: {images}"),
        format!(" Server Version: {VERSION}"),
        " Storage Driver: overlay2".to_string(),
        format!("  Backing Filesystem: {backing}"),
        "  Supports d_type: true".to_string(),
        " Logging Driver: json-file".to_string(),
        " Cgroup Driver: cgroupfs".to_string(),
        format!(" Cgroup Version: {cgroup_version}"),
        " Runtimes: berth".to_string(),
        " Default Runtime: berth".to_string(),
        format!(" Kernel Version: {}", kernel_version()),
        format!(" Operating System: {}", os_release("PRETTY_NAME")),
        " OSType: linux".to_string(),
        format!(" Architecture: {}", std::env::consts::ARCH),
        format!(" CPUs: {ncpu}"),
        format!(" Total Memory: {}", binary_size(mem_total)),
        format!(" Name: {name}"),
        format!(" Docker Root Dir: {}", root.display()),
        format!(" Debug Mode: {debug}"),
    ];
    println!("{}", lines.join("\n"));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_like_docker() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1024), "1KiB");
        assert_eq!(binary_size(25_200_000_000), "23.47GiB");
        assert_eq!(binary_size(1536 * 1024 * 1024), "1.5GiB");
        assert_eq!(binary_size(512 * 1024 * 1024), "512MiB");
    }

    #[test]
    fn version_line_parses_as_docker_s() {
        let line = version_line();
        let rest = line.strip_prefix("Berth version ").unwrap();
        let (version, build) = rest.split_once(", build ").unwrap();
        assert_eq!(version, VERSION);
        assert!(!build.is_empty());
    }
}
