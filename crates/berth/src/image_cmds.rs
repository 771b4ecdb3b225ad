//! Image commands: diff, commit, history, tag, inspect, rmi, export, prune, df.

use std::io::Write;

use anyhow::{bail, Context, Result};
use berth_engine::image::Reference;
use berth_engine::{CommitRequest, Engine, Removed};

use crate::cli::{
    CommitArgs, ExportArgs, HistoryArgs, InspectArgs, LoadArgs, PruneArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use crate::format;
use crate::template::Format;

pub fn diff(engine: &Engine, container: &str) -> Result<i32> {
    for c in engine.diff(container)? {
        println!("{c}");
    }
    Ok(0)
}

pub fn commit(engine: &Engine, a: CommitArgs) -> Result<i32> {
    let config = if a.change.is_empty() {
        None
    } else {
        let mut config = engine.commit_config(&a.container)?;
        berth_builder::apply_changes(&mut config, &a.change)?;
        Some(config)
    };
    let req = CommitRequest {
        reference: a.reference.as_deref().map(Reference::parse).transpose()?,
        comment: a.message,
        author: a.author,
        config,
    };
    let image = engine.commit(&a.container, &req)?;
    println!("{}", image.id);
    Ok(0)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

pub fn history(engine: &Engine, a: HistoryArgs) -> Result<i32> {
    crate::registry_cmds::check_platform(a.platform.as_deref())?;
    let image = engine.images().resolve(&a.image)?;
    let history = image.config.history().clone().unwrap_or_default();
    let mut chain = image.chain_ids.iter();
    let mut rows = Vec::new();
    for h in &history {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            chain
                .next()
                .and_then(|c| engine.images().layers().info(c).ok())
                .map(|i| i.size)
                .unwrap_or(0)
        };
        rows.push((h, size));
    }
    rows.reverse();
    let id = if a.no_trunc {
        image.id.to_string()
    } else {
        image.id.short().to_string()
    };
    if a.quiet {
        println!("{id}");
        return Ok(0);
    }
    let mut table = Vec::new();
    for (i, (h, size)) in rows.iter().enumerate() {
        let created_by = h.created_by().clone().unwrap_or_default();
        let row_id = if i == 0 {
            id.clone()
        } else {
            "<missing>".to_string()
        };
        let since = h.created().as_deref().map(format::ago).unwrap_or_default();
        let shown_by = if a.no_trunc {
            created_by.clone()
        } else {
            truncate(&created_by, 45)
        };
        let comment = h.comment().clone().unwrap_or_default();
        let doc = serde_json::json!({
            "ID": row_id,
            "CreatedSince": since,
            "CreatedAt": h.created().clone().unwrap_or_default(),
            "CreatedBy": shown_by,
            "Size": format::human_size(*size),
            "Comment": comment,
        });
        table.push((
            vec![row_id, since, shown_by, format::human_size(*size), comment],
            doc,
        ));
    }
    format::print_list(
        a.format.as_deref(),
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        |f| match f {
            "ID" => "IMAGE",
            "CreatedSince" => "CREATED",
            "CreatedAt" => "CREATED AT",
            "CreatedBy" => "CREATED BY",
            "Size" => "SIZE",
            "Comment" => "COMMENT",
            other => other,
        },
        &table,
    )?;
    Ok(0)
}

pub fn tag(engine: &Engine, a: TagArgs) -> Result<i32> {
    let image = engine.images().resolve(&a.source)?;
    let target = Reference::parse(&a.target)?;
    if target.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    engine.tag_image(&image.id, &target)?;
    Ok(0)
}

pub fn inspect(engine: &Engine, a: InspectArgs) -> Result<i32> {
    let format = a.format.as_deref().map(Format::parse).transpose()?;
    let mut docs = Vec::new();
    let mut code = 0;
    // `-s`: a container's writable layer (SizeRw) and everything it sees
    // (SizeRootFs: that plus its image).
    let container_doc = |c: &berth_engine::ContainerRecord| -> Result<serde_json::Value> {
        let mut d = engine.inspect_container(c)?;
        if a.size {
            let rw = engine.container_size(&c.id);
            let image = engine
                .images()
                .resolve(&c.image_id)
                .map(|i| engine.images().size(&i))
                .unwrap_or(0);
            d["SizeRw"] = serde_json::json!(rw);
            d["SizeRootFs"] = serde_json::json!(rw + image);
        }
        Ok(d)
    };
    for name in &a.names {
        let kind = a.kind.as_deref();
        let doc = match kind {
            Some("container") => engine
                .container(name)
                .map_err(anyhow::Error::from)
                .and_then(|c| container_doc(&c)),
            Some("image") => engine
                .images()
                .resolve(name)
                .map_err(anyhow::Error::from)
                .and_then(|i| Ok(engine.inspect_image(&i)?)),
            Some("volume") => engine
                .volume(name)
                .map(|v| engine.inspect_volume(&v))
                .map_err(anyhow::Error::from),
            Some(other) => bail!("\"{other}\" is not a valid value for --type"),
            None => match engine.container(name) {
                Ok(c) => container_doc(&c),
                Err(_) => match engine.images().resolve(name) {
                    Ok(i) => Ok(engine.inspect_image(&i)?),
                    Err(_) => match engine.volume(name) {
                        Ok(v) => Ok(engine.inspect_volume(&v)),
                        Err(_) => Err(anyhow::anyhow!("No such object: {name}")),
                    },
                },
            },
        };
        match doc {
            Ok(d) => docs.push(d),
            Err(e) => {
                crate::report(&e);
                code = 1;
            }
        }
    }
    print_docs(format.as_ref(), &docs)?;
    Ok(code)
}

/// Prints inspect documents: through `--format`, else as docker's indented JSON array.
pub fn print_docs(format: Option<&Format>, docs: &[serde_json::Value]) -> Result<()> {
    match format {
        // `--format json`: docker's JSON inspector, the array on one line.
        Some(f) if f.is_json() => {
            println!("{}", serde_json::to_string(docs)?);
        }
        Some(f) => {
            for d in docs {
                println!("{}", f.render(d)?);
            }
        }
        None => {
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            serde::Serialize::serialize(&docs, &mut ser)?;
            std::io::stdout().write_all(&out)?;
            println!();
        }
    }
    Ok(())
}

pub fn rmi(engine: &Engine, a: RmiArgs) -> Result<i32> {
    let mut code = 0;
    for name in &a.images {
        match engine.remove_image(name, a.force) {
            Ok(done) => {
                for d in done {
                    match d {
                        Removed::Untagged(r) => println!("Untagged: {r}"),
                        Removed::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("berth: {e}");
                code = 1;
            }
        }
    }
    if code == 0 && !a.no_prune {
        engine.images().collect_garbage()?;
    }
    Ok(code)
}

/// Writes an archive to `-o path`, or to stdout (never to a terminal). A
/// failed write leaves no partial file behind.
fn archive_output(
    output: Option<&std::path::Path>,
    write: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>,
) -> Result<()> {
    match output {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("create {}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            let written = write(&mut w).and_then(|()| Ok(w.flush()?));
            if written.is_err() {
                let _ = std::fs::remove_file(path);
            }
            written
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
            write(&mut out)?;
            Ok(out.flush()?)
        }
    }
}

pub fn export(engine: &Engine, a: ExportArgs) -> Result<i32> {
    archive_output(a.output.as_deref(), |w| Ok(engine.export(&a.container, w)?))?;
    Ok(0)
}

pub fn prune(engine: &Engine, a: PruneArgs) -> Result<i32> {
    let filter = berth_engine::filters::PruneFilter::from_words(&a.filter, true)?;
    let (deleted, freed) = engine.prune_images_filtered(a.all, &filter)?;
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in &deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size(freed));
    Ok(0)
}

pub fn save(engine: &Engine, a: SaveArgs) -> Result<i32> {
    let format = match a.format.as_str() {
        "docker" | "docker-archive" => berth_engine::image::ArchiveFormat::Docker,
        "oci" | "oci-archive" => berth_engine::image::ArchiveFormat::Oci,
        other => bail!("unknown archive format {other:?}: use docker or oci"),
    };
    let mut images = Vec::new();
    for name in &a.images {
        let image = engine.images().resolve(name)?;
        let refs = berth_engine::named_refs(&image, name);
        images.push((image, refs));
    }
    archive_output(a.output.as_deref(), |w| {
        Ok(engine.save_images(&images, format, w)?)
    })?;
    Ok(0)
}

pub fn load(engine: &Engine, a: LoadArgs) -> Result<i32> {
    let loaded = match &a.input {
        Some(path) => {
            let f =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            engine.load_images(std::io::BufReader::with_capacity(256 * 1024, f))?
        }
        None => engine.load_images(std::io::stdin().lock())?,
    };
    if !a.quiet {
        for (image, refs) in loaded {
            if refs.is_empty() {
                println!("Loaded image ID: {}", image.id);
            }
            for r in refs {
                println!("Loaded image: {}", r.familiar());
            }
        }
    }
    Ok(0)
}
