//! Container lifecycle commands: start, stop, restart, kill, wait, pause,
//! logs, attach, rename, prune, and `run`'s attached and detached modes.

use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use berth_engine::logs::{self, LogsOptions, Stream};
use berth_engine::monitor::proto::{self, Request};
use berth_engine::{parse_signal, Engine, Status};

use crate::attach::{self, AttachOpts, End};
use crate::cli::{AttachArgs, KillArgs, LogsArgs, StartArgs, StopArgs};
use crate::report;

/// Runs `f` for each container named, reporting failures; exit code 1 if any failed.
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut code = 0;
    for n in names {
        if let Err(e) = f(n) {
            report(&e);
            code = 1;
        }
    }
    Ok(code)
}

fn parse_keys(given: Option<&str>) -> Result<Vec<u8>> {
    match given {
        Some(s) => attach::parse_detach_keys(s),
        None => Ok(attach::DEFAULT_DETACH_KEYS.to_vec()),
    }
}

/// Starts a container with this process attached to it, as `run` (without
/// -d) and `start -a` do; returns the exit code to exit with.
pub fn start_attached(
    engine: &Engine,
    id: &str,
    stdin: bool,
    sig_proxy: bool,
    detach_keys: Option<&str>,
    sigfd: &mut nix::sys::signalfd::SignalFd,
    show: [bool; 2],
) -> std::result::Result<i32, (i32, anyhow::Error)> {
    let rec = engine.container(id).map_err(|e| (1, e.into()))?;
    let tty = rec.options.tty;
    let keys = parse_keys(detach_keys).map_err(|e| (125, e))?;
    let (mine, theirs) = UnixStream::pair().map_err(|e| (125, e.into()))?;
    let size = tty.then(attach::terminal_size).flatten();
    if let Err(e) = engine.start_monitored(&rec.id, Some(OwnedFd::from(theirs)), size) {
        return Err((berth_engine::exit_code_for(&e), e.into()));
    }
    let raw = if tty && stdin && std::io::stdin().is_terminal() {
        Some(attach::RawMode::enable(std::io::stdin().as_fd()).map_err(|e| (125, e))?)
    } else {
        None
    };
    let opts = AttachOpts {
        stdin,
        tty,
        detach_keys: if stdin { keys } else { Vec::new() },
        sig_proxy,
        exec: false,
        show,
    };
    let end = attach::pump(engine, &rec.id, mine, sigfd, &opts);
    drop(raw);
    match end.map_err(|e| (125, e))?.exit_code() {
        Some(code) => Ok(code),
        None => closed(engine, &rec.id).map_err(|e| (125, e)),
    }
}

/// The monitor hung up without an exit code: what the record says.
fn closed(engine: &Engine, id: &str) -> Result<i32> {
    match engine.container(id) {
        Ok(r) if !r.state.status.is_active() => Ok(r.state.exit_code),
        Ok(_) => bail!("lost the connection to the container's monitor"),
        // Removed (--rm) after it exited.
        Err(_) => bail!("the container is gone"),
    }
}

pub fn start(engine: &Engine, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let mut sigfd = attach::block_signals()?;
        return match start_attached(
            engine,
            &a.containers[0],
            a.interactive,
            true,
            a.detach_keys.as_deref(),
            &mut sigfd,
            [true, true],
        ) {
            Ok(code) => Ok(code),
            Err((_, e)) => Err(e),
        };
    }
    each(&a.containers, |c| {
        engine.start_monitored(c, None, None)?;
        println!("{c}");
        Ok(())
    })
}

fn stop_signal(a: &StopArgs) -> Result<Option<nix::sys::signal::Signal>> {
    Ok(a.signal.as_deref().map(parse_signal).transpose()?)
}

pub fn stop(engine: &Engine, a: StopArgs) -> Result<i32> {
    let sig = stop_signal(&a)?;
    each(&a.containers, |c| {
        engine.stop(c, sig, a.timeout.or(a.time))?;
        println!("{c}");
        Ok(())
    })
}

pub fn restart(engine: &Engine, a: StopArgs) -> Result<i32> {
    let sig = stop_signal(&a)?;
    each(&a.containers, |c| {
        engine.stop(c, sig, a.timeout.or(a.time))?;
        engine.start_monitored(c, None, None)?;
        println!("{c}");
        Ok(())
    })
}

pub fn kill(engine: &Engine, a: KillArgs) -> Result<i32> {
    let sig = parse_signal(&a.signal)?;
    each(&a.containers, |c| {
        engine.kill(c, sig)?;
        println!("{c}");
        Ok(())
    })
}

pub fn wait(engine: &Engine, containers: &[String]) -> Result<i32> {
    each(containers, |c| {
        let code = engine.wait(c)?;
        println!("{code}");
        Ok(())
    })
}

pub fn pause(engine: &Engine, containers: &[String], paused: bool) -> Result<i32> {
    each(containers, |c| {
        engine.pause(c, paused)?;
        println!("{c}");
        Ok(())
    })
}

pub fn logs(engine: &Engine, a: LogsArgs) -> Result<i32> {
    let now = chrono::Utc::now();
    let opts = LogsOptions {
        follow: a.follow,
        tail: match a.tail.as_str() {
            "all" | "-1" => None,
            n => Some(
                n.parse()
                    .with_context(|| format!("invalid value for --tail: {n:?}"))?,
            ),
        },
        since: a
            .since
            .as_deref()
            .map(|s| logs::parse_time(s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| logs::parse_time(s, now))
            .transpose()?,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    engine.logs(&a.container, &opts, |e| {
        let mut out: Box<dyn Write> = match e.stream {
            Stream::Stdout => Box::new(stdout.lock()),
            Stream::Stderr => Box::new(stderr.lock()),
        };
        if a.timestamps {
            write!(
                out,
                "{} ",
                e.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            )?;
        }
        out.write_all(e.log.as_bytes())?;
        out.flush()
    })?;
    Ok(0)
}

pub fn attach(engine: &Engine, a: AttachArgs) -> Result<i32> {
    let rec = engine.container(&a.container)?;
    match rec.state.status {
        Status::Running => {}
        Status::Paused => bail!("You cannot attach to a paused container, unpause it first"),
        _ => bail!("You cannot attach to a stopped container, start it first"),
    }
    let stdin = !a.no_stdin && rec.options.interactive;
    let mut sigfd = attach::block_signals()?;
    let Some(mut sock) = engine.monitor_request(&rec.id, &Request::Attach { stdin })? else {
        bail!("container {} has no monitor to attach to", rec.name);
    };
    if rec.options.tty {
        if let Some((rows, cols)) = attach::terminal_size() {
            let p = proto::resize_payload(rows, cols);
            proto::write_frame(&mut sock, proto::RESIZE, &p)?;
        }
    }
    let raw = if rec.options.tty && stdin && std::io::stdin().is_terminal() {
        Some(attach::RawMode::enable(std::io::stdin().as_fd())?)
    } else {
        None
    };
    let opts = AttachOpts {
        stdin,
        tty: rec.options.tty,
        detach_keys: if stdin {
            parse_keys(a.detach_keys.as_deref())?
        } else {
            Vec::new()
        },
        sig_proxy: a.sig_proxy,
        exec: false,
        show: [true, true],
    };
    let end = attach::pump(engine, &rec.id, sock, &mut sigfd, &opts);
    drop(raw);
    let end = end?;
    if end == End::Detached {
        eprintln!("read escape sequence");
    }
    match end.exit_code() {
        Some(code) => Ok(code),
        None => closed(engine, &rec.id),
    }
}

pub fn prune(engine: &Engine, a: crate::cli::FilterPruneArgs) -> Result<i32> {
    let filter = berth_engine::filters::PruneFilter::from_words(&a.filter, true)?;
    let (removed, freed) = engine.prune_containers(&filter)?;
    println!("Deleted Containers:");
    for id in removed {
        println!("{id}");
    }
    println!();
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(freed)
    );
    Ok(0)
}

/// `exec`: the process is our child; its exit code is ours.
pub fn exec(
    engine: &Engine,
    a: &crate::cli::ExecArgs,
    env: Vec<String>,
) -> std::result::Result<i32, (i32, anyhow::Error)> {
    let fail = |code: i32| move |e: anyhow::Error| (code, e);
    if a.tty && a.interactive && !a.detach && !std::io::stdin().is_terminal() {
        return Err((1, anyhow::anyhow!("the input device is not a TTY")));
    }
    let mut sigfd = attach::block_signals().map_err(fail(126))?;
    let stdin = a.interactive && !a.detach;
    let req = berth_engine::ExecRequest {
        cmd: a.args[1..].to_vec(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        stdin,
        console_size: a.tty.then(attach::terminal_size).flatten(),
        privileged: a.privileged,
    };
    // The container's monitor runs the process: nothing of this process
    // (descriptors, environment, terminal) reaches the container but what
    // the session carries.
    let code = |e: berth_engine::Error| (exec_failure_code(&e), e.into());
    let exec = engine.exec_create(&a.args[0], &req).map_err(code)?;
    let Some(session) = engine.exec_start(&exec.id, a.detach).map_err(code)? else {
        return Ok(0);
    };
    let raw = if req.tty && stdin && std::io::stdin().is_terminal() {
        Some(attach::RawMode::enable(std::io::stdin().as_fd()).map_err(fail(126))?)
    } else {
        None
    };
    let opts = AttachOpts {
        stdin,
        tty: req.tty,
        detach_keys: if stdin {
            parse_keys(a.detach_keys.as_deref()).map_err(fail(126))?
        } else {
            Vec::new()
        },
        sig_proxy: true,
        exec: true,
        show: [true, true],
    };
    let end = attach::pump(engine, &exec.container_id, session.sock, &mut sigfd, &opts);
    drop(raw);
    match end.map_err(fail(126))?.exit_code() {
        Some(code) => Ok(code),
        None => Err((
            126,
            anyhow::anyhow!("the container's monitor hung up before the exec ended"),
        )),
    }
}

/// Docker's codes for an exec that did not start: 127 for a missing
/// command, 126 when it cannot run, 1 when the container refuses.
fn exec_failure_code(e: &berth_engine::Error) -> i32 {
    match e {
        berth_engine::Error::StartFailed { code, .. } => *code,
        berth_engine::Error::Runtime(_) => berth_engine::exit_code_for(e).max(126),
        _ => 1,
    }
}

/// `top`: the host's `ps` output, only the container's processes (as docker does).
/// `update`: new limits and restart policy; prints each container as named.
pub fn update(engine: &Engine, a: crate::cli::UpdateArgs) -> Result<i32> {
    if a.kernel_memory.is_some() {
        eprintln!(
            "WARNING: Specifying a kernel memory limit is deprecated and ignored (as docker does)"
        );
    }
    let mut req = crate::commands::resource_request(&a.res)?;
    req.restart = a
        .restart
        .as_deref()
        .map(berth_engine::RestartPolicy::parse)
        .transpose()?;
    each(&a.containers, |c| {
        engine.update_container(c, &req)?;
        println!("{c}");
        Ok(())
    })
}

pub fn top(engine: &Engine, a: crate::cli::TopArgs) -> Result<i32> {
    let pids = engine.top_pids(&a.container)?;
    let opts = if a.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_options.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&opts)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            opts.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(pid_col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {}: no PID column in its output", opts.join(" "));
    };
    let cols = header.split_whitespace().count();
    let mut rows = vec![header
        .split_whitespace()
        .map(String::from)
        .collect::<Vec<_>>()];
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            // The last column (the command) keeps its spaces.
            let mut row: Vec<String> = f[..cols.saturating_sub(1).min(f.len())]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(f[row.len()..].join(" "));
            rows.push(row);
        }
    }
    // docker's top: columns at least 20 wide.
    crate::format::table_min(&rows, 20)?;
    Ok(0)
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}%", part / whole * 100.0)
    } else {
        "0.00%".into()
    }
}

/// `stats` columns: the template field, the title.
const STATS_COLUMNS: [(&str, &str); 8] = [
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// `stats`: CPU from two samples of the cgroup's usage, memory, network,
/// block I/O and pids, in docker's columns.
pub fn stats(engine: &Engine, a: crate::cli::StatsArgs) -> Result<i32> {
    let names: Vec<String> = if a.containers.is_empty() {
        engine
            .containers()?
            .into_iter()
            .filter(|c| a.all || c.state.status.is_active())
            .map(|c| c.id)
            .collect()
    } else {
        a.containers.clone()
    };
    // A bad template fails before the first sample.
    if let (_, Some(t)) = crate::format::split_table(a.format.as_deref()) {
        crate::template::Format::parse(&t)?;
    }
    let host_mem = berth_engine::system::host_memory();
    let mut prev: Vec<Option<(std::time::Instant, u64)>> = vec![None; names.len()];
    loop {
        let first = prev.iter().all(Option::is_none);
        if first {
            for (i, n) in names.iter().enumerate() {
                let (_, s) = engine.stats(n)?;
                prev[i] = Some((std::time::Instant::now(), s.cgroup.cpu_usage_ns));
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let mut rows = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            let (rec, s) = engine.stats(n)?;
            let now = std::time::Instant::now();
            let cpu = match prev[i] {
                Some((t, used)) => percent(
                    s.cgroup.cpu_usage_ns.saturating_sub(used) as f64,
                    now.duration_since(t).as_nanos() as f64,
                ),
                None => "0.00%".into(),
            };
            prev[i] = Some((now, s.cgroup.cpu_usage_ns));
            let used = s.cgroup.memory_usage.saturating_sub(s.cgroup.memory_cache);
            let limit = s
                .cgroup
                .memory_limit
                .unwrap_or(host_mem)
                .min(host_mem.max(1));
            let h = crate::format::human_size;
            let id = if a.no_trunc {
                rec.id.clone()
            } else {
                rec.id[..12].to_string()
            };
            let row = vec![
                id,
                rec.name.clone(),
                cpu,
                format!(
                    "{} / {}",
                    crate::format::binary_size(used),
                    crate::format::binary_size(limit)
                ),
                percent(used as f64, limit as f64),
                format!("{} / {}", h(s.net_rx_bytes), h(s.net_tx_bytes)),
                format!(
                    "{} / {}",
                    h(s.cgroup.io_read_bytes),
                    h(s.cgroup.io_write_bytes)
                ),
                s.cgroup.pids.to_string(),
            ];
            let data = serde_json::json!({
                "ID": row[0], "Container": n, "Name": row[1], "CPUPerc": row[2],
                "MemUsage": row[3], "MemPerc": row[4], "NetIO": row[5],
                "BlockIO": row[6], "PIDs": row[7],
            });
            rows.push((row, data));
        }
        if !a.no_stream && a.format.is_none() {
            // Docker redraws in place.
            print!("\x1b[2J\x1b[H");
        }
        crate::format::print_list(
            a.format.as_deref(),
            &STATS_COLUMNS.map(|(_, title)| title),
            |f| {
                STATS_COLUMNS
                    .iter()
                    .find(|(field, _)| *field == f)
                    .map_or(f, |(_, title)| title)
            },
            &rows,
        )?;
        if a.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// `port`: published ports (none without a bridge network).
pub fn port(engine: &Engine, a: crate::cli::PortArgs) -> Result<i32> {
    let rec = engine.container(&a.container)?;
    let wanted = match &a.port {
        Some(p) => {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((port.to_string(), proto.to_string()))
        }
        None => None,
    };
    let mut found = false;
    for p in &rec.state.ports {
        let (port, proto) = (p.container_port.to_string(), p.proto.as_str());
        match &wanted {
            Some((w, wp)) if *w != port || wp != proto => continue,
            Some(_) => println!("{}", p.host()),
            None => println!("{port}/{proto} -> {}", p.host()),
        }
        found = true;
    }
    if let (Some(p), false) = (&a.port, found) {
        bail!("Error: No public port '{p}' published for {}", rec.name);
    }
    Ok(0)
}

/// Splits `CONTAINER:PATH`; a local path (absolute, or with no colon before
/// a slash) is `None`.
fn container_path(s: &str) -> Option<(&str, String)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    let (c, p) = s.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    let p = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    Some((c, p))
}

pub fn cp(engine: &Engine, a: crate::cli::CpArgs) -> Result<i32> {
    use berth_engine::CopyDirection;
    match (container_path(&a.src), container_path(&a.dest)) {
        (Some((c, src)), None) => engine.copy(
            c,
            CopyDirection::FromContainer {
                src: &src,
                dest: &crate::paths::local_path(&a.dest)?,
            },
        )?,
        (None, Some((c, dest))) => engine.copy(
            c,
            CopyDirection::ToContainer {
                src: &crate::paths::local_path(&a.src)?,
                dest: &dest,
            },
        )?,
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    }
    Ok(0)
}
