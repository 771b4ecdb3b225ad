//! One function per command; each returns the process exit code.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context, Result};
use berth_engine::image::{ImageRuntimeConfig, ImportOptions, Reference};
use berth_engine::runtime::Stdio;
use berth_engine::{units, ContainerOptions, Engine, EngineConfig, NetworkMode, Resources};

use crate::attach;
use crate::cli::SystemCommand;
use crate::cli::{
    Cli, Command, Global, ImageCommand, ImagesArgs, ImportArgs, PsArgs, RmArgs, RunArgs,
};
use crate::format;
use crate::image_cmds;

/// Exit code of a `run` that failed before the container's program ran.
const RUN_FAILED: i32 = 125;

fn engine(g: &Global) -> Result<Engine> {
    Ok(Engine::open(EngineConfig {
        root: g.root.clone(),
        runroot: g.runroot.clone(),
        cgroup_parent: g.cgroup_parent.clone(),
        ..Default::default()
    })?)
}

fn report(e: &anyhow::Error) {
    eprintln!("berth: {e:#}");
}

pub fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    let result = match cli.command {
        Command::Run(args) => return run(g, *args),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import(g, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images(g, a),
        Command::Diff(a) => engine(g).and_then(|e| image_cmds::diff(&e, &a.container)),
        Command::Commit(a) => engine(g).and_then(|e| image_cmds::commit(&e, a)),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            engine(g).and_then(|e| image_cmds::history(&e, a))
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => {
            engine(g).and_then(|e| image_cmds::tag(&e, a))
        }
        Command::Inspect(a) => engine(g).and_then(|e| image_cmds::inspect(&e, a)),
        Command::Image(ImageCommand::Inspect(mut a)) => {
            a.kind = Some("image".into());
            engine(g).and_then(|e| image_cmds::inspect(&e, a))
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            engine(g).and_then(|e| image_cmds::rmi(&e, a))
        }
        Command::Export(a) => engine(g).and_then(|e| image_cmds::export(&e, a)),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            engine(g).and_then(|e| image_cmds::save(&e, a))
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            engine(g).and_then(|e| image_cmds::load(&e, a))
        }
        Command::Image(ImageCommand::Prune(a)) | Command::System(SystemCommand::Prune(a)) => {
            engine(g).and_then(|e| image_cmds::prune(&e, a))
        }
        Command::System(SystemCommand::Df) => engine(g).and_then(|e| image_cmds::df(&e)),
        Command::Ps(a) => ps(g, a),
        Command::Rm(a) => rm(g, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}

/// Applies `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER) to an image config.
fn apply_changes(changes: &[String]) -> Result<Option<ImageRuntimeConfig>> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut cfg = ImageRuntimeConfig::default();
    for change in changes {
        let (instr, rest) = change
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((change.trim(), ""));
        let rest = rest.trim();
        let list = || -> Vec<String> {
            if rest.starts_with('[') {
                if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
                    return v;
                }
            }
            vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                cfg.set_cmd(Some(list()));
            }
            "ENTRYPOINT" => {
                cfg.set_entrypoint(Some(list()));
            }
            "WORKDIR" => {
                cfg.set_working_dir(Some(rest.to_string()));
            }
            "USER" => {
                cfg.set_user(Some(rest.to_string()));
            }
            "ENV" => {
                let entry = match rest.split_once('=') {
                    Some(_) => rest.to_string(),
                    None => match rest.split_once(char::is_whitespace) {
                        Some((k, v)) => format!("{k}={}", v.trim()),
                        None => bail!("ENV needs a name and a value: {change:?}"),
                    },
                };
                let mut env = cfg.env().clone().unwrap_or_default();
                env.push(entry);
                cfg.set_env(Some(env));
            }
            other => bail!(
                "{other} is not supported by --change (CMD, ENTRYPOINT, ENV, WORKDIR, USER are)"
            ),
        }
    }
    Ok(Some(cfg))
}

fn import(g: &Global, a: ImportArgs) -> Result<i32> {
    let engine = engine(g)?;
    let reference = a.reference.as_deref().map(Reference::parse).transpose()?;
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&a.file).with_context(|| format!("open {}", a.file))?)
    };
    let opts = ImportOptions {
        reference,
        message: a.message,
        source: if a.file == "-" {
            "-".into()
        } else {
            a.file.clone()
        },
        config: apply_changes(&a.change)?,
    };
    let image = engine
        .images()
        .import(input, &opts)
        .with_context(|| format!("import {}", a.file))?;
    println!("{}", image.id);
    Ok(0)
}

fn images(g: &Global, a: ImagesArgs) -> Result<i32> {
    let engine = engine(g)?;
    let mut list = engine.images().list()?;
    list.sort_by(|x, y| y.created.cmp(&x.created));
    let filter = a.repository.as_deref().map(Reference::parse).transpose()?;
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
    let mut ids = Vec::new();
    for img in &list {
        let id = if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
        let size = format::human_size(engine.images().size(img));
        let created = format::ago(&img.created);
        let mut names: Vec<(String, String)> = img
            .refs
            .iter()
            .filter(|r| {
                filter.as_ref().is_none_or(|f| {
                    f.repository() == r.repository()
                        && (a.repository.as_deref().is_some_and(|s| !s.contains(':'))
                            || f.tag() == r.tag())
                })
            })
            .map(|r| {
                (
                    r.familiar_repository(),
                    r.tag().unwrap_or("<none>").to_string(),
                )
            })
            .collect();
        if img.refs.is_empty() && filter.is_none() {
            names.push(("<none>".into(), "<none>".into()));
        }
        names.sort();
        if !names.is_empty() && !ids.contains(&id) {
            ids.push(id.clone());
        }
        for (repo, tag) in names {
            rows.push(vec![repo, tag, id.clone(), created.clone(), size.clone()]);
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
        return Ok(0);
    }
    format::table(&rows)?;
    Ok(0)
}

fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let file = File::open(f).with_context(|| format!("open env file {}", f.display()))?;
        for line in BufReader::new(file).lines() {
            let line = line.with_context(|| format!("read env file {}", f.display()))?;
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            out.push(t.to_string());
        }
    }
    Ok(out)
}

fn container_options(a: &RunArgs) -> Result<ContainerOptions> {
    let mut o = ContainerOptions::new(a.args[0].clone());
    o.cmd = a.args[1..].to_vec();
    o.name = a.name.clone();
    o.entrypoint = a.entrypoint.clone();
    o.env = read_env_files(&a.env_file)?;
    o.env.extend(a.env.iter().cloned());
    o.workdir = a.workdir.clone();
    o.user = a.user.clone();
    o.hostname = a.hostname.clone();
    o.tty = a.tty;
    o.interactive = a.interactive;
    o.network = NetworkMode::parse(&a.network)?;
    o.cap_add = a.cap_add.clone();
    o.cap_drop = a.cap_drop.clone();
    o.privileged = a.privileged;
    o.read_only = a.read_only;
    o.auto_remove = a.rm;
    o.resources = Resources {
        memory: a.memory.as_deref().map(units::parse_bytes).transpose()?,
        memory_swap: match a.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(units::parse_bytes(s)?),
            None => None,
        },
        nano_cpus: a.cpus.as_deref().map(units::parse_nano_cpus).transpose()?,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
    };
    if o.resources.nano_cpus.is_some() && (a.cpu_period.is_some() || a.cpu_quota.is_some()) {
        eprintln!("WARNING: --cpu-period/--cpu-quota given: --cpus is ignored");
    }
    Ok(o)
}

fn run(g: &Global, a: RunArgs) -> i32 {
    match run_inner(g, a) {
        Ok(code) => code,
        Err((code, e)) => {
            report(&e);
            code
        }
    }
}

type RunResult = std::result::Result<i32, (i32, anyhow::Error)>;

fn fail(e: impl Into<anyhow::Error>) -> (i32, anyhow::Error) {
    (RUN_FAILED, e.into())
}

fn run_inner(g: &Global, a: RunArgs) -> RunResult {
    if a.detach {
        return Err(fail(anyhow::anyhow!(
            "detached mode (-d) is not available yet: run in the foreground"
        )));
    }
    if a.tty && a.interactive && !std::io::stdin().is_terminal() {
        return Err((1, anyhow::anyhow!("the input device is not a TTY")));
    }
    // Block the forwarded signals before the container exists, so that none
    // sent in between is lost.
    let mut sigfd = attach::block_signals().map_err(fail)?;
    let opts = container_options(&a).map_err(fail)?;
    let engine = engine(g).map_err(fail)?;
    let rec = engine.create(opts).map_err(fail)?;
    let stdio = if a.tty || a.interactive {
        Stdio::default()
    } else {
        let null: OwnedFd = File::open("/dev/null").map_err(fail)?.into();
        Stdio {
            stdin: Some(null),
            ..Default::default()
        }
    };
    let size = a.tty.then(attach::terminal_size).flatten();
    let remove = |engine: &Engine| {
        if a.rm {
            if let Err(e) = engine.remove(&rec.id, false) {
                report(&anyhow::Error::from(e).context("remove container"));
            }
        }
    };
    let mut running = match engine.start(&rec.id, stdio, size) {
        Ok(r) => r,
        Err(e) => {
            let code = berth_engine::exit_code_for(&e);
            remove(&engine);
            return Err((code, e.into()));
        }
    };
    let raw = if a.tty && a.interactive && std::io::stdin().is_terminal() {
        Some(attach::RawMode::enable(std::io::stdin().as_fd()).map_err(fail)?)
    } else {
        None
    };
    let status = attach::supervise(&mut running, &mut sigfd, a.interactive);
    drop(raw);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = running.container.signal(nix::sys::signal::Signal::SIGKILL);
            let s = running.container.wait().map_err(fail)?;
            report(&e);
            s
        }
    };
    if let Err(e) = engine.finish(running, status) {
        report(&anyhow::Error::from(e).context("record container exit"));
    }
    remove(&engine);
    Ok(status.code())
}

fn ps(g: &Global, a: PsArgs) -> Result<i32> {
    let engine = engine(g)?;
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in engine.containers()? {
        let running = c.state.status == berth_engine::Status::Running;
        if !a.all && !running {
            continue;
        }
        let id = if a.no_trunc {
            c.id.clone()
        } else {
            c.id[..12].to_string()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let mut cmd = c.args.join(" ");
        if !a.no_trunc && cmd.chars().count() > 20 {
            cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
        }
        let status = match c.state.status {
            berth_engine::Status::Created => "Created".to_string(),
            berth_engine::Status::Running => format!(
                "Up {}",
                c.state
                    .started_at
                    .as_deref()
                    .map(format::ago)
                    .unwrap_or_default()
                    .trim_end_matches(" ago")
            ),
            berth_engine::Status::Exited => format!(
                "Exited ({}) {}",
                c.state.exit_code,
                c.state
                    .finished_at
                    .as_deref()
                    .map(format::ago)
                    .unwrap_or_default()
            ),
        };
        rows.push(vec![
            id,
            c.image.clone(),
            format!("\"{cmd}\""),
            format::ago(&c.created),
            status,
            String::new(),
            c.name.clone(),
        ]);
    }
    if !a.quiet {
        format::table(&rows)?;
    }
    Ok(0)
}

fn rm(g: &Global, a: RmArgs) -> Result<i32> {
    let engine = engine(g)?;
    let mut code = 0;
    for key in &a.containers {
        match engine.remove(key, a.force) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                report(&e.into());
                code = 1;
            }
        }
    }
    Ok(code)
}
