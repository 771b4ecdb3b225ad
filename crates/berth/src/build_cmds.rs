//! `build` and `builder prune`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_builder::BuildOptions;
use berth_engine::image::Reference;
use berth_engine::Engine;

use crate::cli::{BuildArgs, BuilderPruneArgs};
use crate::format;

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("read the build input from stdin")?;
    Ok(buf)
}

/// `NAME=VALUE`, or `NAME` for the caller's value (skipped when unset).
fn build_args(items: &[String]) -> Vec<(String, String)> {
    items
        .iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

/// What RUN steps' containers get from `build`'s flags, parsed as `run`
/// parses the same flags.
fn step_options(a: &BuildArgs) -> Result<berth_builder::StepOptions> {
    crate::registry_cmds::check_content_trust(a.disable_content_trust)?;
    let refused = [
        (
            "--squash",
            a.squash,
            "docker's experimental squash is not implemented",
        ),
        (
            "--cache-from",
            !a.cache_from.is_empty(),
            "only local build steps are cache",
        ),
        (
            "--isolation",
            a.isolation.as_deref().is_some_and(|i| i != "default"),
            "Windows only",
        ),
    ];
    if let Some((flag, _, why)) = refused.iter().find(|(_, given, _)| *given) {
        bail!("{flag} is not supported by Berth ({why})");
    }
    let r = &a.res;
    let res = crate::commands::resource_request(&crate::cli::ResourceArgs {
        memory: r.memory.clone(),
        memory_swap: r.memory_swap.clone(),
        cpus: None,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        pids_limit: None,
        memory_reservation: None,
        cpu_rt_runtime: None,
        cpu_rt_period: None,
        blkio_weight: None,
    })?;
    for h in &a.add_host {
        match h.split_once(':') {
            Some((name, ip)) if !name.is_empty() && ip.parse::<std::net::IpAddr>().is_ok() => {}
            _ => bail!("invalid argument \"{h}\" for \"--add-host\" flag: bad format for add-host: \"{h}\""),
        }
    }
    Ok(berth_builder::StepOptions {
        resources: berth_engine::Resources {
            memory: res.memory,
            memory_swap: res.memory_swap,
            cpu_period: res.cpu_period,
            cpu_quota: res.cpu_quota,
            cpu_shares: res.cpu_shares,
            cpuset_cpus: res.cpuset_cpus,
            cpuset_mems: res.cpuset_mems,
            ..Default::default()
        },
        shm_size: a
            .shm_size
            .as_deref()
            .map(berth_engine::units::parse_bytes)
            .transpose()?,
        ulimits: a
            .ulimit
            .iter()
            .map(|u| berth_engine::Ulimit::parse(u))
            .collect::<std::result::Result<_, _>>()?,
        add_hosts: a.add_host.clone(),
        security_opt: crate::commands::security_opts(&a.security_opt)?,
    })
}

pub fn build(engine: &Engine, a: BuildArgs) -> Result<i32> {
    if let Some(p) = &a.platform {
        if p != "linux/amd64" && p != "linux" {
            bail!("platform {p:?} is not supported: berth builds linux/amd64 images");
        }
    }
    if let Some(n) = &a.network {
        if !matches!(n.as_str(), "default" | "bridge" | "host" | "none") {
            bail!("network mode {n:?} not supported by buildkit: use default, host or none");
        }
    }
    let mut tags = Vec::new();
    for t in &a.tag {
        tags.push(Reference::parse(t).with_context(|| {
            format!("invalid argument {t:?} for \"-t, --tag\" flag: invalid reference format")
        })?);
    }
    let mut scratch: Option<tempfile::TempDir> = None;
    let (context, dockerfile): (Option<PathBuf>, String) = if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let input = read_stdin()?;
        let tmp = tempfile::Builder::new()
            .prefix("build-context-")
            .tempdir_in(engine.root())
            .context("create a directory for the build context")?;
        let archive = tmp.path().join("context.tar");
        std::fs::write(&archive, &input).context("store the build context")?;
        if berth_builder::is_archive(&archive) {
            // A tar context on stdin: its Dockerfile is inside.
            let dir = tmp.path().join("context");
            std::fs::create_dir(&dir).context("create the build context")?;
            berth_builder::unpack_archive(&archive, &dir).map_err(anyhow::Error::msg)?;
            let name = a.file.clone().unwrap_or_else(|| "Dockerfile".into());
            let text = std::fs::read_to_string(dir.join(&name))
                .with_context(|| format!("the build context has no {name}"))?;
            scratch = Some(tmp);
            (Some(dir), text)
        } else {
            let text = String::from_utf8(input).context("the Dockerfile on stdin is not UTF-8")?;
            (None, text)
        }
    } else {
        let dir = crate::paths::absolute(std::path::Path::new(&a.context))?;
        if !dir.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.context);
        }
        let text = match a.file.as_deref() {
            Some("-") => {
                String::from_utf8(read_stdin()?).context("the Dockerfile on stdin is not UTF-8")?
            }
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("unable to read the Dockerfile {f}"))?,
            None => {
                let f = dir.join("Dockerfile");
                std::fs::read_to_string(&f)
                    .with_context(|| format!("unable to read the Dockerfile {}", f.display()))?
            }
        };
        (Some(dir), text)
    };
    let opts = BuildOptions {
        // The CLI pulls with the credentials it stores.
        registry_auth: Vec::new(),
        dockerfile,
        context,
        tags,
        build_args: build_args(&a.build_arg),
        target: a.target.clone(),
        no_cache: a.no_cache,
        labels: a
            .label
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect(),
        network: a.network.clone(),
        quiet: a.quiet,
        pull: a.pull,
        cancel: None,
        step: step_options(&a)?,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let image = berth_builder::build(engine, &opts, &mut out);
    drop(scratch);
    let image = image?;
    if a.quiet {
        writeln!(out, "{}", image.id)?;
    }
    if let Some(path) = &a.iidfile {
        std::fs::write(path, image.id.to_string())
            .with_context(|| format!("write the image ID to {}", path.display()))?;
    }
    Ok(0)
}

pub fn prune(engine: &Engine, a: BuilderPruneArgs) -> Result<i32> {
    let _ = (a.all, a.force);
    let filter = berth_engine::filters::PruneFilter::from_words(&a.filter, true)?;
    let (deleted, freed) = match a.keep_storage.as_deref() {
        Some(k) => {
            let keep = berth_engine::units::parse_bytes(k)?.max(0) as u64;
            engine.prune_build_cache_keeping(&filter, keep)?
        }
        None => engine.prune_build_cache_filtered(&filter)?,
    };
    for d in &deleted {
        println!("Deleted build cache objects:\n{}", d.short());
    }
    println!("Total reclaimed space: {}", format::human_size(freed));
    Ok(0)
}
