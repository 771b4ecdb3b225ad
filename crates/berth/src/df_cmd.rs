//! `system df`: docker's summary table of what images, containers, volumes
//! and the build cache hold, `-v` docker's four detail tables, `--format`
//! over docker's fields (`json` per row).

use anyhow::Result;
use berth_engine::{Engine, ImageUsage};
use serde_json::{json, Value};

use crate::cli::DfArgs;
use crate::format::{self, human_size};

fn pct(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

/// Build-cache entries are the intermediate images builds leave, untagged.
fn is_cache(u: &ImageUsage) -> bool {
    u.image.intermediate && u.image.refs.is_empty()
}

pub fn df(engine: &Engine, a: DfArgs) -> Result<i32> {
    let du = engine.disk_usage()?;
    let usage = engine.image_usage()?;
    let cache: Vec<&ImageUsage> = usage.iter().filter(|u| is_cache(u)).collect();
    let cache_size: u64 = cache.iter().map(|u| u.size - u.shared).sum();
    if a.verbose {
        return verbose(engine, &usage, &cache, cache_size, a.format.as_deref());
    }
    let rows = [
        (
            "Images",
            du.images,
            du.active_images,
            du.images_size,
            du.images_reclaimable,
        ),
        (
            "Containers",
            du.containers,
            du.running_containers,
            du.containers_size,
            du.containers_reclaimable,
        ),
        (
            "Local Volumes",
            du.volumes,
            du.active_volumes,
            du.volumes_size,
            du.volumes_reclaimable,
        ),
        ("Build Cache", cache.len(), 0, cache_size, cache_size),
    ];
    let rows: Vec<(Vec<String>, Value)> = rows
        .into_iter()
        .map(|(kind, total, active, size, reclaimable)| {
            let rec = format!("{} ({}%)", human_size(reclaimable), pct(reclaimable, size));
            let rec = if kind == "Build Cache" {
                human_size(reclaimable)
            } else {
                rec
            };
            let cols = vec![
                kind.to_string(),
                total.to_string(),
                active.to_string(),
                human_size(size),
                rec.clone(),
            ];
            let doc = json!({
                "Type": kind,
                "TotalCount": total.to_string(),
                "Active": active.to_string(),
                "Size": human_size(size),
                "Reclaimable": rec,
            });
            (cols, doc)
        })
        .collect();
    format::print_list(
        a.format.as_deref(),
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        |f| match f {
            "Type" => "TYPE",
            "TotalCount" => "TOTAL",
            "Active" => "ACTIVE",
            "Size" => "SIZE",
            "Reclaimable" => "RECLAIMABLE",
            other => other,
        },
        &rows,
    )?;
    Ok(0)
}

/// `-v`: docker's four sections, each a titled table.
fn verbose(
    engine: &Engine,
    usage: &[ImageUsage],
    cache: &[&ImageUsage],
    cache_size: u64,
    fmt: Option<&str>,
) -> Result<i32> {
    let containers = engine.containers()?;
    let volumes = engine.volumes()?;
    let mut images = Vec::new();
    for u in usage.iter().filter(|u| !is_cache(u)) {
        let id = u.image.id.to_string();
        let short = id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>();
        let names: Vec<(String, String)> = if u.image.refs.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            u.image
                .refs
                .iter()
                .map(|r| {
                    (
                        r.familiar_repository(),
                        r.tag().unwrap_or("<none>").to_string(),
                    )
                })
                .collect()
        };
        for (repo, tag) in names {
            images.push(vec![
                repo,
                tag,
                short.clone(),
                format::ago(&u.image.created),
                human_size(u.size),
                human_size(u.shared),
                human_size(u.size - u.shared),
                u.containers.to_string(),
            ]);
        }
    }
    let mut crows = Vec::new();
    for c in &containers {
        let mut cmd = c.args.join(" ");
        if cmd.chars().count() > 20 {
            cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
        }
        let local_volumes = c.mounts.iter().filter(|m| m.name.is_some()).count();
        crows.push(vec![
            c.id[..12].to_string(),
            c.image.clone(),
            format!("\"{cmd}\""),
            local_volumes.to_string(),
            human_size(engine.container_size(&c.id)),
            format::ago(&c.created),
            c.status_text(),
            c.name.clone(),
        ]);
    }
    let mut vrows = Vec::new();
    for v in &volumes {
        let links = containers
            .iter()
            .filter(|c| c.mounts.iter().any(|m| m.name.as_ref() == Some(&v.name)))
            .count();
        vrows.push(vec![
            v.name.clone(),
            links.to_string(),
            human_size(engine.volume_size(v)),
        ]);
    }
    let mut brows = Vec::new();
    for u in cache {
        let id = u.image.id.to_string();
        brows.push(vec![
            id.trim_start_matches("sha256:").chars().take(12).collect(),
            "regular".into(),
            human_size(u.size - u.shared),
            format::ago(&u.image.created),
            format::ago(&u.image.created),
            "0".into(),
            (u.shared > 0).to_string(),
        ]);
    }
    if fmt == Some("json") || fmt.is_some_and(|f| !f.starts_with("table")) {
        // One document, as docker's `df -v --format` gives its template.
        let to_docs = |hdr: &[&str], rows: &[Vec<String>]| -> Vec<Value> {
            rows.iter()
                .map(|r| {
                    Value::Object(
                        hdr.iter()
                            .zip(r)
                            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect()
        };
        let doc = json!({
            "Images": to_docs(&IMAGE_FIELDS, &images),
            "Containers": to_docs(&CONTAINER_FIELDS, &crows),
            "Volumes": to_docs(&VOLUME_FIELDS, &vrows),
            "BuildCache": to_docs(&CACHE_FIELDS, &brows),
        });
        let template = match fmt {
            Some("json") => "{{json .}}".to_string(),
            Some(t) => t.replace("\\t", "\t").replace("\\n", "\n"),
            None => unreachable!("checked above"),
        };
        println!(
            "{}",
            crate::template::Format::parse(&template)?.render(&doc)?
        );
        return Ok(0);
    }
    section(
        "Images space usage:",
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        images,
    )?;
    section(
        "Containers space usage:",
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        crows,
    )?;
    section(
        "Local Volumes space usage:",
        &["VOLUME NAME", "LINKS", "SIZE"],
        vrows,
    )?;
    section(
        &format!("Build cache usage: {}", human_size(cache_size)),
        &[
            "CACHE ID",
            "CACHE TYPE",
            "SIZE",
            "CREATED",
            "LAST USED",
            "USAGE",
            "SHARED",
        ],
        brows,
    )?;
    Ok(0)
}

const IMAGE_FIELDS: [&str; 8] = [
    "Repository",
    "Tag",
    "ID",
    "CreatedSince",
    "Size",
    "SharedSize",
    "UniqueSize",
    "Containers",
];
const CONTAINER_FIELDS: [&str; 8] = [
    "ID",
    "Image",
    "Command",
    "LocalVolumes",
    "Size",
    "RunningFor",
    "Status",
    "Names",
];
const VOLUME_FIELDS: [&str; 3] = ["Name", "Links", "Size"];
const CACHE_FIELDS: [&str; 7] = [
    "ID",
    "CacheType",
    "Size",
    "CreatedSince",
    "LastUsedSince",
    "UsageCount",
    "Shared",
];

/// A title line, a blank line, a table, a blank line (docker's layout).
fn section(title: &str, header: &[&str], rows: Vec<Vec<String>>) -> Result<()> {
    println!("{title}\n");
    let mut all = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows);
    format::table(&all)?;
    println!();
    Ok(())
}
