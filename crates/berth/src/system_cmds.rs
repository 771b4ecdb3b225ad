//! `version`, `info` and `--version`, in docker's layouts, with `--format`
//! over the same fields docker's templates see.

use anyhow::Result;
use berth_engine::system::kernel_version;
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::cli::{DaemonArgs, FormatArgs, Global};
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

/// `berth daemon`: the Docker Engine API on a unix socket, until SIGTERM.
pub fn daemon(g: &Global, a: DaemonArgs) -> Result<i32> {
    let mut socket = g.runroot.join("berth.sock");
    for host in &a.hosts {
        match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => socket = path.into(),
            _ => anyhow::bail!(
                "-H {host}: only unix:///absolute/path sockets are served (tcp:// needs TLS with client certificates, which berth daemon does not offer yet)"
            ),
        }
    }
    let group = match &a.group {
        None => None,
        Some(name) => Some(match name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
                .ok_or_else(|| anyhow::anyhow!("group {name:?} not found"))?,
        }),
    };
    if group.is_some() {
        // The group reaches the socket only through directories it may
        // search; the state directories are root's alone.
        use std::os::unix::fs::PermissionsExt;
        let mut dir = socket.parent();
        while let Some(d) = dir {
            if let Ok(m) = std::fs::metadata(d) {
                if m.permissions().mode() & 0o011 == 0 {
                    anyhow::bail!(
                        "-G: the socket's directory {} is private (mode {:o}): serve the group on a socket elsewhere, e.g. -H unix:///run/berth.sock",
                        d.display(),
                        m.permissions().mode() & 0o777
                    );
                }
            }
            dir = d.parent();
        }
    }
    eprintln!(
        "berth daemon: serving the Docker Engine API on unix://{}",
        socket.display()
    );
    berth_api::serve(berth_api::DaemonOptions {
        engine: crate::commands::engine_config(g)?,
        socket,
        group,
    })?;
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

/// docker's "Security Options" block: `name=seccomp,profile=builtin`
/// becomes `seccomp` with its `Profile: builtin` below.
fn security_options(opts: &Value) -> String {
    let mut out = vec![" Security Options:".to_string()];
    for opt in opts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        for (i, kv) in opt.split(',').enumerate() {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match (i, k) {
                (0, _) => out.push(format!("  {v}")),
                _ => {
                    let mut key = k.to_string();
                    if let Some(c) = key.get_mut(0..1) {
                        c.make_ascii_uppercase();
                    }
                    out.push(format!("   {key}: {v}"));
                }
            }
        }
    }
    out.join("\n")
}

pub fn info(engine: &Engine, g: &Global, a: FormatArgs) -> Result<i32> {
    let debug = g.debug;
    let mut doc = engine.system_info(VERSION, debug)?;
    doc["ClientInfo"] = json!({"Version": VERSION, "Context": "default", "Debug": debug});
    if print_formatted(a.format.as_deref(), &doc)? {
        return Ok(0);
    }
    let f = |k: &str| match &doc[k] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let backing = doc["DriverStatus"][0][1]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    let lines = [
        "Client:".to_string(),
        format!(" Version:    {VERSION}"),
        " Context:    default".to_string(),
        format!(" Debug Mode: {debug}"),
        String::new(),
        "Server:".to_string(),
        format!(" Containers: {}", f("Containers")),
        format!("  Running: {}", f("ContainersRunning")),
        format!("  Paused: {}", f("ContainersPaused")),
        format!("  Stopped: {}", f("ContainersStopped")),
        format!(" Images: {}", f("Images")),
        format!(" Server Version: {}", f("ServerVersion")),
        format!(" Storage Driver: {}", f("Driver")),
        format!("  Backing Filesystem: {backing}"),
        "  Supports d_type: true".to_string(),
        format!(" Logging Driver: {}", f("LoggingDriver")),
        format!(" Cgroup Driver: {}", f("CgroupDriver")),
        format!(" Cgroup Version: {}", f("CgroupVersion")),
        " Runtimes: berth".to_string(),
        format!(" Default Runtime: {}", f("DefaultRuntime")),
        security_options(&doc["SecurityOptions"]),
        format!(" Kernel Version: {}", f("KernelVersion")),
        format!(" Operating System: {}", f("OperatingSystem")),
        format!(" OSType: {}", f("OSType")),
        format!(" Architecture: {}", f("Architecture")),
        format!(" CPUs: {}", f("NCPU")),
        format!(
            " Total Memory: {}",
            binary_size(doc["MemTotal"].as_u64().unwrap_or(0))
        ),
        format!(" Name: {}", f("Name")),
        format!(" Docker Root Dir: {}", f("DockerRootDir")),
        format!(" Debug Mode: {debug}"),
    ];
    println!("{}", lines.join("\n"));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_like_docker() {
        assert_eq!(
            security_options(&json!(["name=seccomp,profile=builtin"])),
            " Security Options:\n  seccomp\n   Profile: builtin"
        );
    }

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
