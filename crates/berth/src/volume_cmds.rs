//! `volume create/ls/inspect/rm/prune`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{bail, Result};
use berth_engine::{Engine, Volume, VolumeRequest};
use serde_json::json;

use crate::cli::{VolumeCommand, VolumeCreateArgs, VolumeLsArgs, VolumePruneArgs};
use crate::commands::report;
use crate::format;
use crate::template::Format;

pub fn dispatch(engine: &Engine, c: VolumeCommand) -> Result<i32> {
    match c {
        VolumeCommand::Create(a) => create(engine, a),
        VolumeCommand::Ls(a) => ls(engine, a),
        VolumeCommand::Inspect(a) => inspect(engine, a.format.as_deref(), &a.volumes),
        VolumeCommand::Rm(a) => {
            let mut code = 0;
            for name in &a.volumes {
                match engine.volume_remove(name, a.force) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        report(&e.into());
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => prune(engine, a),
    }
}

/// `k=v` options and labels; a label may be given without a value.
fn pairs(items: &[String], what: &str, value_required: bool) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if !value_required && !item.is_empty() => {
                out.insert(item.clone(), String::new());
            }
            _ => bail!("invalid {what} '{item}': must be a key=value pair"),
        }
    }
    Ok(out)
}

fn create(engine: &Engine, a: VolumeCreateArgs) -> Result<i32> {
    let name = match (a.name, a.name_flag) {
        (Some(n), Some(f)) if n != f => {
            bail!("conflicting options: either specify --name or provide positional arg, not both")
        }
        (n, f) => n.or(f),
    };
    let v = engine.volume_create(VolumeRequest {
        name,
        driver: Some(a.driver),
        labels: pairs(&a.label, "label", false)?,
        options: pairs(&a.opt, "option", true)?,
    })?;
    println!("{}", v.name);
    Ok(0)
}

/// The fields `volume ls --format` templates see.
fn row_doc(v: &Volume) -> serde_json::Value {
    let labels: Vec<String> = v
        .labels
        .iter()
        .map(|(k, val)| format!("{k}={val}"))
        .collect();
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Scope": "local",
        "Mountpoint": v.mountpoint,
        "Labels": labels.join(","),
        "CreatedAt": v.created_at,
    })
}

fn volume_header(field: &str) -> &str {
    match field {
        "Name" => "VOLUME NAME",
        "Driver" => "DRIVER",
        "Scope" => "SCOPE",
        "Mountpoint" => "MOUNTPOINT",
        "Labels" => "LABELS",
        "CreatedAt" => "CREATED AT",
        other => other,
    }
}

/// A `--filter` of `ls` and `prune`: does the volume match it?
fn matches(filter: &str, v: &Volume, in_use: bool) -> Result<bool> {
    let (key, value) = filter
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {filter}"))?;
    let label = |spec: &str| match spec.split_once('=') {
        Some((k, val)) => v.labels.get(k).map(String::as_str) == Some(val),
        None => v.labels.contains_key(spec),
    };
    Ok(match key {
        "dangling" => match value {
            "true" | "1" => !in_use,
            "false" | "0" => in_use,
            _ => bail!("invalid filter 'dangling={value}'"),
        },
        "name" => v.name.contains(value),
        "driver" => v.driver == value,
        "label" => label(value),
        "label!" => !label(value),
        _ => bail!("invalid filter '{key}'"),
    })
}

fn ls(engine: &Engine, a: VolumeLsArgs) -> Result<i32> {
    let mut list = Vec::new();
    for v in engine.volumes()? {
        let in_use = !engine.volume_users(&v.name)?.is_empty();
        let mut keep = true;
        for f in &a.filter {
            keep &= matches(f, &v, in_use)?;
        }
        if keep {
            list.push(v);
        }
    }
    if a.quiet {
        for v in &list {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    let rows: Vec<_> = list
        .iter()
        .map(|v| (vec![v.driver.clone(), v.name.clone()], row_doc(v)))
        .collect();
    format::print_list(
        a.format.as_deref(),
        &["DRIVER", "VOLUME NAME"],
        volume_header,
        &rows,
    )?;
    Ok(0)
}

pub fn inspect(engine: &Engine, format: Option<&str>, names: &[String]) -> Result<i32> {
    let fmt = format.map(Format::parse).transpose()?;
    let mut docs = Vec::new();
    let mut code = 0;
    for name in names {
        match engine.volume(name) {
            Ok(v) => docs.push(engine.inspect_volume(&v)),
            Err(e) => {
                report(&e.into());
                code = 1;
            }
        }
    }
    crate::image_cmds::print_docs(fmt.as_ref(), &docs)?;
    Ok(code)
}

pub(crate) fn confirm(question: &str) -> Result<bool> {
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn prune(engine: &Engine, a: VolumePruneArgs) -> Result<i32> {
    for f in &a.filter {
        if !(f.starts_with("label=") || f.starts_with("label!=")) {
            bail!("invalid filter '{f}' (volume prune takes label= and label!=)");
        }
    }
    if !a.force {
        let what = if a.all {
            "all local volumes"
        } else {
            "anonymous local volumes"
        };
        let q = format!(
            "WARNING! This will remove {what} not used by at least one container.\nAre you sure you want to continue?"
        );
        if !confirm(&q)? {
            return Ok(0);
        }
    }
    let (removed, freed) = engine.volume_prune(a.all, |v| {
        !a.filter
            .iter()
            .all(|f| matches(f, v, false).unwrap_or(false))
    })?;
    if !removed.is_empty() {
        println!("Deleted Volumes:");
        for n in &removed {
            println!("{n}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size(freed));
    Ok(0)
}
