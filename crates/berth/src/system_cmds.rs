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

pub fn version(a: crate::cli::VersionArgs) -> Result<i32> {
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

/// `berth daemon`: the Docker Engine API on unix sockets (and tcp:// with
/// TLS that verifies clients), until SIGTERM.
pub fn daemon(g: &Global, a: DaemonArgs) -> Result<i32> {
    let mut listen = Vec::new();
    for host in &a.hosts {
        listen.push(daemon_host(host)?);
    }
    if listen.is_empty() {
        listen.push(berth_api::Listen::Unix(g.runroot.join("berth.sock")));
    }
    // docker's --tlsverify --tlscacert --tlscert --tlskey, all or nothing:
    // TLS without client certificates is not offered (whoever reaches the
    // API is root on this host).
    let tls = match (a.tlsverify, &a.tlscacert, &a.tlscert, &a.tlskey) {
        (true, Some(ca), Some(cert), Some(key)) => Some(berth_api::TlsFiles {
            ca: crate::paths::absolute(ca)?,
            cert: crate::paths::absolute(cert)?,
            key: crate::paths::absolute(key)?,
        }),
        (true, ..) => anyhow::bail!(
            "--tlsverify needs --tlscacert (the CA of the clients' certificates), --tlscert and --tlskey"
        ),
        (false, None, None, None) if !a.tls => None,
        (false, ..) => anyhow::bail!(
            "TLS is served only with client certificates: add --tlsverify (with --tlscacert, --tlscert and --tlskey)"
        ),
    };
    if tls.is_none() {
        if let Some(berth_api::Listen::Tcp(addr)) = listen
            .iter()
            .find(|l| matches!(l, berth_api::Listen::Tcp(_)))
        {
            anyhow::bail!(
                "-H tcp://{addr}: tcp:// needs TLS with client certificates (--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY): anyone who reaches the port would be root on this host"
            );
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
        // The group reaches a socket only through directories it may
        // search; the state directories are root's alone.
        use std::os::unix::fs::PermissionsExt;
        for l in &listen {
            let berth_api::Listen::Unix(socket) = l else {
                continue;
            };
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
    }
    for l in &listen {
        match l {
            berth_api::Listen::Unix(p) => eprintln!(
                "berth daemon: serving the Docker Engine API on unix://{}",
                p.display()
            ),
            berth_api::Listen::Tcp(a) => eprintln!(
                "berth daemon: serving the Docker Engine API on tcp://{a} (TLS, client certificates verified)"
            ),
        }
    }
    berth_api::serve(berth_api::DaemonOptions {
        engine: crate::commands::engine_config(g)?,
        listen,
        group,
        tls,
    })?;
    Ok(0)
}

/// One `-H`: `unix:///absolute/path` or `tcp://host:port`.
fn daemon_host(host: &str) -> Result<berth_api::Listen> {
    if let Some(path) = host.strip_prefix("unix://") {
        if !path.starts_with('/') {
            anyhow::bail!("-H {host}: a unix socket's path must be absolute (unix:///PATH)");
        }
        return Ok(berth_api::Listen::Unix(path.into()));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        use std::net::ToSocketAddrs;
        let addr = addr.trim_end_matches('/');
        let found = addr
            .to_socket_addrs()
            .map_err(|e| anyhow::anyhow!("-H {host}: tcp://HOST:PORT expected: {e}"))?
            .next();
        return found
            .map(berth_api::Listen::Tcp)
            .ok_or_else(|| anyhow::anyhow!("-H {host}: the host has no address"));
    }
    anyhow::bail!("-H {host}: only unix:///PATH and tcp://HOST:PORT (with --tlsverify) are served")
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

/// docker's `--since`/`--until`: Unix seconds (with a fraction), an RFC 3339
/// time, or a Go duration before now (`10m`); as nanoseconds.
fn event_time(what: &str, v: &str) -> Result<i128> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as i128;
    if let Ok(d) = berth_engine::units::parse_go_duration(v) {
        return Ok(now - d.as_nanos() as i128);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0) as i128);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    match (secs.parse::<i128>(), frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit())) {
        (Ok(s), true) => Ok(s * 1_000_000_000 + format!("{frac:0<9}").parse::<i128>().unwrap_or(0)),
        _ => anyhow::bail!("invalid value for --{what}: {v:?} (a Unix time, an RFC 3339 time or a duration such as 10m)"),
    }
}

/// docker's text line for an event: time, type, action, actor and its
/// attributes.
fn event_line(ev: &Value) -> String {
    let nanos = ev["timeNano"].as_i64().unwrap_or(0);
    let time =
        chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string())
            .unwrap_or_default();
    let attrs: Vec<String> = ev["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{time} {} {} {} ({})",
        ev["Type"].as_str().unwrap_or(""),
        ev["Action"].as_str().unwrap_or(""),
        ev["Actor"]["ID"].as_str().unwrap_or(""),
        attrs.join(", ")
    )
}

/// `events`: the engine's event log (what any berth process and the daemon
/// did), from `--since`, then followed until `--until` (or ^C).
pub fn events(engine: &Engine, a: crate::cli::EventsArgs) -> Result<i32> {
    let since = a
        .since
        .as_deref()
        .map(|v| event_time("since", v))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|v| event_time("until", v))
        .transpose()?;
    let mut filters: std::collections::HashMap<String, Vec<String>> = Default::default();
    for f in &a.filter {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value): {f}");
        };
        if !matches!(
            k,
            "type"
                | "event"
                | "container"
                | "image"
                | "label"
                | "network"
                | "volume"
                | "scope"
                | "daemon"
                | "plugin"
                | "node"
                | "service"
                | "secret"
                | "config"
        ) {
            anyhow::bail!("invalid filter '{k}'");
        }
        filters
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let fmt = match a.format.as_deref() {
        None => None,
        Some("json") => Some(crate::template::Format::parse("{{json .}}")?),
        Some(t) => Some(crate::template::Format::parse(t)?),
    };
    let started = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as i128;
    let wanted = |ev: &Value| {
        let t = berth_engine::events::time_of(ev);
        since.is_none_or(|s| t >= s)
            && until.is_none_or(|u| t <= u)
            && berth_engine::events::matches(ev, &filters)
    };
    let print = |ev: &Value| -> Result<()> {
        let line = match &fmt {
            Some(f) => f.render(ev)?,
            None => event_line(ev),
        };
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    };
    let (kept, mut offset) = engine.events();
    // Without --since, only what happens from now on (as docker).
    if since.is_some() {
        for ev in kept.iter().filter(|e| wanted(e)) {
            print(ev)?;
        }
    }
    let from = since.unwrap_or(started);
    let path = engine.events_path();
    loop {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as i128;
        if until.is_some_and(|u| now > u) {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (new, next) = berth_engine::events::read_from(&path, offset);
        offset = next;
        for ev in new
            .iter()
            .filter(|e| berth_engine::events::time_of(e) >= from && wanted(e))
        {
            print(ev)?;
        }
    }
}

/// `system check [--repair] [--quick] [--force]` (podman's): one line per
/// finding, then a summary. Exits 1 when damage is found and not repaired.
pub fn check(engine: &Engine, a: crate::cli::SystemCheckArgs) -> Result<i32> {
    use berth_engine::Severity;
    let found = engine.system_check(a.quick)?;
    for (severity, what, why) in found.lines() {
        let kind = match severity {
            Severity::Damaged => "damaged",
            Severity::Orphaned => "orphaned",
        };
        println!("{kind}\t{what}: {why}");
    }
    let (damaged, orphaned) = (found.damaged(), found.orphaned());
    if damaged + orphaned == 0 {
        println!("no damage found");
        return Ok(0);
    }
    println!("{damaged} damaged, {orphaned} orphaned");
    if !a.repair {
        if damaged > 0 {
            eprintln!("run `berth system check --repair` to remove what is damaged or orphaned");
            return Ok(1);
        }
        return Ok(0);
    }
    let repair = engine.system_repair(&found, a.force)?;
    for line in &repair.done {
        println!("{line}");
    }
    for (what, why) in &repair.left {
        eprintln!("kept {what}: {why}");
    }
    Ok(if repair.left.is_empty() { 0 } else { 1 })
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
