//! `system prune`: stopped containers, unused networks, dangling (or, with
//! `-a`, unused) images and the build cache, and with `--volumes` unused
//! anonymous volumes, in docker's order and words. `--filter until=/label=`
//! applies to each (volumes take only the label filters, as docker's do).

use anyhow::Result;
use berth_engine::filters::PruneFilter;
use berth_engine::Engine;

use crate::cli::SystemPruneArgs;
use crate::format;

/// docker's warning, one line per kind of object the prune removes.
fn warning(a: &SystemPruneArgs) -> String {
    let mut lines = vec![
        "  - all stopped containers",
        "  - all networks not used by at least one container",
    ];
    if a.volumes {
        lines.push("  - all anonymous volumes not used by at least one container");
    }
    lines.push(if a.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    });
    lines.push("  - unused build cache");
    let mut text = format!("WARNING! This will remove:\n{}\n", lines.join("\n"));
    if !a.filter.is_empty() {
        text.push_str(&format!(
            "\n  Items to be pruned will be filtered with:\n  - {}\n",
            a.filter.join("\n  - ")
        ));
    }
    text + "\nAre you sure you want to continue?"
}

pub fn system_prune(engine: &Engine, a: SystemPruneArgs) -> Result<i32> {
    let filter = PruneFilter::from_words(&a.filter, true)?;
    // Volumes have no creation-time filter in docker: only the labels apply.
    let volume_words: Vec<String> = a
        .filter
        .iter()
        .filter(|w| !w.starts_with("until="))
        .cloned()
        .collect();
    let volume_filter = PruneFilter::from_words(&volume_words, false)?;
    if !a.force && !crate::volume_cmds::confirm(&warning(&a))? {
        return Ok(0);
    }
    let (containers, mut freed) = engine.prune_containers(&filter)?;
    if !containers.is_empty() {
        println!("Deleted Containers:");
        for id in &containers {
            println!("{id}");
        }
        println!();
    }
    if a.volumes {
        let (volumes, bytes) =
            engine.volume_prune(false, |v| !volume_filter.matches("", &v.labels))?;
        freed += bytes;
        if !volumes.is_empty() {
            println!("Deleted Volumes:");
            for v in &volumes {
                println!("{v}");
            }
            println!();
        }
    }
    let networks = engine.network_prune_filtered(&filter)?;
    if !networks.is_empty() {
        println!("Deleted Networks:");
        for n in &networks {
            println!("{n}");
        }
        println!();
    }
    let (images, bytes) = engine.prune_images_filtered(a.all, &filter)?;
    freed += bytes;
    if !images.is_empty() {
        println!("Deleted Images:");
        for d in &images {
            println!("deleted: {d}");
        }
        println!();
    }
    let (cache, bytes) = engine.prune_build_cache_filtered(&filter)?;
    freed += bytes;
    if !cache.is_empty() {
        println!("Deleted build cache objects:");
        for d in &cache {
            println!("{}", d.short());
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size(freed));
    Ok(0)
}
