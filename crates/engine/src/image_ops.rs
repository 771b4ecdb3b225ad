//! What the engine does with images and containers' filesystems: diff,
//! commit, export, image removal, garbage collection and disk usage.

use std::io::{Read, Write};
use std::path::Path;

use berth_image::{
    ArchiveFormat, Change, CommitOptions, Digest, Image, ImportOptions, Reference,
    RuntimeConfigJson,
};
use berth_runtime::RootfsMount;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::{ContainerRecord, Engine};

/// `commit`'s options besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub reference: Option<Reference>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// The new image's runtime config: [`Engine::commit_config`] with the
    /// caller's changes (`commit -c`) applied; `None` for that config as is.
    pub config: Option<RuntimeConfigJson>,
}

/// What `rmi` did, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// The tags of `image` that `name` names: what `save` records for it in
/// the archive (an image saved by its ID keeps no tag).
pub fn named_refs(image: &Image, name: &str) -> Vec<Reference> {
    let named = Reference::parse(name).ok();
    image
        .refs
        .iter()
        .filter(|r| {
            named
                .as_ref()
                .is_some_and(|n| n.to_string() == r.to_string())
        })
        .cloned()
        .collect()
}

impl Engine {
    fn container_image(&self, rec: &ContainerRecord) -> Result<Image> {
        Ok(self.images.resolve(&rec.image_id)?)
    }

    /// Docker's `diff`: the container's changes against its image.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>> {
        let rec = self.containers.find(key)?;
        let image = self.container_image(&rec)?;
        let upper = self.containers.dir(&rec.id).join("upper");
        Ok(berth_image::diff_changes(
            &upper,
            &self.images.layer_dirs(&image),
        )?)
    }

    /// What `commit` makes the new image's runtime config of, before any
    /// change: the container's command, entrypoint, environment, working
    /// directory and user over its image's config (whose other fields,
    /// Healthcheck and OnBuild among them, are kept).
    pub fn commit_config(&self, key: &str) -> Result<RuntimeConfigJson> {
        let rec = self.containers.find(key)?;
        let image = self.container_image(&rec)?;
        self.container_config(&rec, &image)
    }

    fn container_config(&self, rec: &ContainerRecord, image: &Image) -> Result<RuntimeConfigJson> {
        let mut cfg = self.images.runtime_config_json(image)?;
        let o = &rec.options;
        if let Some(ep) = &o.entrypoint {
            if ep.is_empty() {
                cfg.remove("Entrypoint");
            } else {
                cfg.insert("Entrypoint".into(), json!([ep]));
            }
            cfg.insert("Cmd".into(), json!(o.cmd));
        } else if !o.cmd.is_empty() {
            cfg.insert("Cmd".into(), json!(o.cmd));
        }
        let image_env: Vec<String> = match cfg.get("Env") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let set: Vec<String> = o.env.iter().filter(|e| e.contains('=')).cloned().collect();
        let env = crate::spec::environment(&image_env, &set, &[]);
        cfg.insert("Env".into(), json!(env));
        if let Some(w) = &o.workdir {
            cfg.insert("WorkingDir".into(), json!(w));
        }
        if let Some(u) = &o.user {
            cfg.insert("User".into(), json!(u));
        }
        Ok(cfg)
    }

    /// Turns the container's writable layer (never its init layer or mounts)
    /// into a new image.
    pub fn commit(&self, key: &str, req: &CommitRequest) -> Result<Image> {
        let rec = self.containers.find(key)?;
        let image = self.container_image(&rec)?;
        let config = match &req.config {
            Some(c) => c.clone(),
            None => self.container_config(&rec, &image)?,
        };
        let opts = CommitOptions {
            config,
            created_by: rec.args.join(" "),
            comment: req.comment.clone(),
            author: req.author.clone(),
            reference: req.reference.clone(),
        };
        let upper = self.containers.dir(&rec.id).join("upper");
        // A remapped container's files are recorded with its own ids.
        let view = rec
            .id_map
            .map(|r| crate::userns::container_view(&upper, &r))
            .transpose()?;
        let upper = crate::userns::view_path(&upper, view.as_ref());
        Ok(self.images.commit(&image, &upper, &opts)?)
    }

    /// Writes the container's merged filesystem as a tar to `out`.
    pub fn export(&self, key: &str, out: impl Write + Send) -> Result<()> {
        let rec = self.containers.find(key)?;
        let image = self.container_image(&rec)?;
        let dir = self.containers.dir(&rec.id);
        // A read-only overlay of the writable layer over init and image layers.
        let m = self.images.overlay(
            &image,
            Some(&self.init_layer(&dir)?),
            &dir.join("upper"),
            &dir.join("work"),
        )?;
        let lower = m
            .data
            .strip_prefix("lowerdir=")
            .and_then(|d| d.split(',').next())
            .unwrap_or_default();
        // A remapped container's writable layer with its own ids.
        let view = rec
            .id_map
            .map(|r| crate::userns::container_view(&dir.join("upper"), &r))
            .transpose()?;
        let upper = crate::userns::view_path(&dir.join("upper"), view.as_ref());
        let data = format!("lowerdir={}:{lower}", upper.display());
        let mount = RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            data: Some(data),
            workdir: Some(m.workdir),
        };
        let mut out = Some(out);
        berth_runtime::with_private_mount(&mount, &dir.join("rootfs"), true, |root| {
            let Some(out) = out.take() else { return Ok(()) };
            write_tree(root, out).map_err(|e| format!("export: {e}"))
        })?;
        Ok(())
    }

    /// IDs of the images containers use.
    fn images_in_use(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .containers
            .list()?
            .into_iter()
            .map(|c| (c.image_id, c.id))
            .collect())
    }

    /// `tag`: gives the image `id` the name `reference` too.
    pub fn tag_image(&self, id: &Digest, reference: &Reference) -> Result<()> {
        self.images.tag(id, reference)?;
        self.emit_image(&id.to_string(), &reference.familiar(), "tag");
        Ok(())
    }

    /// `save`: `images` (with the names each is saved under) as one archive.
    pub fn save_images(
        &self,
        images: &[(Image, Vec<Reference>)],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<()> {
        self.images.save(images, format, out)?;
        for (image, _) in images {
            let id = image.id.to_string();
            self.emit_image(&id, &id, "save");
        }
        Ok(())
    }

    /// `load`: every image of a docker or OCI archive, with its names.
    pub fn load_images(&self, input: impl Read) -> Result<Vec<(Image, Vec<Reference>)>> {
        let loaded = self.images.load(input)?;
        for (image, _) in &loaded {
            let id = image.id.to_string();
            self.emit_image(&id, &id, "load");
        }
        Ok(loaded)
    }

    /// `import`: a root filesystem tarball as a new one-layer image.
    pub fn import_image(&self, input: impl Read, opts: &ImportOptions) -> Result<Image> {
        let image = self.images.import(input, opts)?;
        let id = image.id.to_string();
        self.emit_image(&id, &id, "import");
        if let Some(r) = &opts.reference {
            self.emit_image(&id, &r.familiar(), "tag");
        }
        Ok(image)
    }

    /// `rmi`: untags a reference, and deletes the image once no reference
    /// names it. Refused while a container uses the image, unless `force`.
    /// Each untag and the delete are events.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let id = self.images.resolve_even_damaged(name)?.id.to_string();
        let removed = self.remove_image_quietly(name, force)?;
        for r in &removed {
            let action = match r {
                Removed::Untagged(_) => "untag",
                Removed::Deleted(_) => "delete",
            };
            self.emit_image(&id, &id, action);
        }
        Ok(removed)
    }

    fn remove_image_quietly(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let image = self.images.resolve_even_damaged(name)?;
        let by_ref = Reference::parse(name)
            .ok()
            .filter(|r| image.refs.iter().any(|ir| ir.to_string() == r.to_string()));
        let users: Vec<String> = self
            .images_in_use()?
            .into_iter()
            .filter(|(img, _)| *img == image.id.to_string())
            .map(|(_, c)| c)
            .collect();
        let mut out = Vec::new();
        // Removing one of several names only untags.
        if let Some(r) = &by_ref {
            if image.refs.len() > 1 {
                self.images.untag(r)?;
                return Ok(vec![Removed::Untagged(r.familiar())]);
            }
        }
        if let Some(c) = users.first() {
            if !force {
                let what = match &by_ref {
                    Some(_) => format!("unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}", &c[..12], image.id.short()),
                    None => format!("unable to delete {} (must be forced) - image is being used by stopped container {}", image.id.short(), &c[..12]),
                };
                return Err(Error::Conflict(format!("conflict: {what}")));
            }
        }
        if by_ref.is_none() && image.refs.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                image.id.short()
            )));
        }
        for r in &image.refs {
            out.push(Removed::Untagged(r.familiar()));
        }
        if users.is_empty() {
            self.images.delete(&image.id)?;
            out.push(Removed::Deleted(image.id.clone()));
        } else {
            // In use: the image stays (dangling) for its containers.
            for r in &image.refs {
                self.images.untag(r)?;
            }
        }
        Ok(out)
    }

    /// `image prune`: deletes dangling images no container uses, then every
    /// layer and blob nothing references. Returns the deleted image IDs and
    /// the bytes freed.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<Digest>, u64)> {
        self.prune_images_filtered(all, &crate::filters::PruneFilter::default())
    }

    /// `image prune --filter until=/label=`: as [`Engine::prune_images`],
    /// only the images `filter` picks (by their creation time and labels).
    pub fn prune_images_filtered(
        &self,
        all: bool,
        filter: &crate::filters::PruneFilter,
    ) -> Result<(Vec<Digest>, u64)> {
        // Build cache goes with `-a` (or `builder prune`), never as dangling.
        // An image pulled by digest has no tag but is named by its digest.
        self.prune_where(|img| {
            (all || (img.refs.is_empty() && img.repo_digests.is_empty() && !img.intermediate))
                && filter.matches(&img.created, &image_labels(img))
        })
    }

    /// `builder prune`: deletes the build cache (build steps' images no
    /// container uses), then what nothing references any more.
    pub fn prune_build_cache(&self) -> Result<(Vec<Digest>, u64)> {
        self.prune_build_cache_filtered(&crate::filters::PruneFilter::default())
    }

    /// `builder prune`/`system prune` with `--filter until=/label=`.
    pub fn prune_build_cache_filtered(
        &self,
        filter: &crate::filters::PruneFilter,
    ) -> Result<(Vec<Digest>, u64)> {
        self.prune_where(|img| {
            img.intermediate
                && img.refs.is_empty()
                && filter.matches(&img.created, &image_labels(img))
        })
    }

    /// `builder prune --keep-storage N`: the newest build cache is kept up
    /// to `keep` bytes (of layers only the cache holds), the rest goes; 0
    /// keeps nothing.
    pub fn prune_build_cache_keeping(
        &self,
        filter: &crate::filters::PruneFilter,
        keep: u64,
    ) -> Result<(Vec<Digest>, u64)> {
        let mut cache: Vec<ImageUsage> = self
            .image_usage()?
            .into_iter()
            .filter(|u| {
                u.image.intermediate
                    && u.image.refs.is_empty()
                    && filter.matches(&u.image.created, &image_labels(&u.image))
            })
            .collect();
        cache.sort_by(|a, b| b.image.created.cmp(&a.image.created));
        let mut kept = 0u64;
        let mut doomed = Vec::new();
        for u in cache {
            let bytes = u.size - u.shared;
            if keep > 0 && kept + bytes <= keep {
                kept += bytes;
            } else {
                doomed.push(u.image.id);
            }
        }
        self.prune_where(|img| doomed.contains(&img.id))
    }

    /// Deletes the images no container uses that `doomed` picks, then every
    /// layer and blob nothing references.
    fn prune_where(&self, doomed: impl Fn(&Image) -> bool) -> Result<(Vec<Digest>, u64)> {
        let _lock = self.lock_containers()?;
        let used: Vec<String> = self.images_in_use()?.into_iter().map(|(i, _)| i).collect();
        let mut deleted = Vec::new();
        for img in self.images.list()? {
            if !used.contains(&img.id.to_string()) && doomed(&img) {
                self.images.delete(&img.id)?;
                let id = img.id.to_string();
                self.emit_image(&id, &id, "delete");
                deleted.push(img.id);
            }
        }
        let freed = self.images.collect_garbage()?;
        Ok((deleted, freed))
    }
}

/// An image's labels (its config's), in order.
pub(crate) fn image_labels(img: &Image) -> std::collections::BTreeMap<String, String> {
    img.config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Writes a directory tree as a tar without following symlinks.
fn write_tree(root: &Path, out: impl Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    for e in std::fs::read_dir(root)? {
        let e = e?;
        let name = e.file_name();
        if e.file_type()?.is_dir() {
            b.append_dir_all(&name, e.path())?;
        } else {
            b.append_path_with_name(e.path(), &name)?;
        }
    }
    b.into_inner()?.flush()
}

/// One image's share of the disk (`system df -v`).
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: Image,
    /// Bytes of all its layers.
    pub size: u64,
    /// Bytes of its layers other images use too.
    pub shared: u64,
    /// Containers made from it.
    pub containers: usize,
}

/// `system df`'s figures.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: usize,
    pub active_images: usize,
    /// Bytes of all unique layers.
    pub images_size: u64,
    /// Bytes only unused images hold.
    pub images_reclaimable: u64,
    pub containers: usize,
    pub running_containers: usize,
    /// Bytes in containers' writable layers.
    pub containers_size: u64,
    pub containers_reclaimable: u64,
    pub volumes: usize,
    /// Volumes some container uses.
    pub active_volumes: usize,
    pub volumes_size: u64,
    pub volumes_reclaimable: u64,
    /// Each volume's bytes and how many containers use it, by name.
    pub volume_usage: std::collections::BTreeMap<String, VolumeUsage>,
}

/// What one volume holds (docker's `UsageData`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeUsage {
    pub size: u64,
    pub ref_count: usize,
}

impl Engine {
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        use std::collections::HashMap;
        let containers = self.containers.list()?;
        let used: Vec<&str> = containers.iter().map(|c| c.image_id.as_str()).collect();
        let images = self.images.list()?;
        let mut layer_users: HashMap<Digest, (u64, bool)> = HashMap::new();
        let mut du = DiskUsage {
            images: images.len(),
            containers: containers.len(),
            ..Default::default()
        };
        for img in &images {
            let active = used.contains(&img.id.to_string().as_str());
            du.active_images += active as usize;
            for c in &img.chain_ids {
                let size = self.images.layers().info(c).map(|i| i.size).unwrap_or(0);
                let e = layer_users.entry(c.clone()).or_insert((size, false));
                e.1 |= active;
            }
        }
        for (size, active) in layer_users.values() {
            du.images_size += size;
            if !active {
                du.images_reclaimable += size;
            }
        }
        // What interrupted work left is reclaimable until the next command
        // that writes collects it.
        let image_leftovers: u64 = self.images.interrupted().iter().map(|(_, n)| n).sum();
        du.images_size += image_leftovers;
        du.images_reclaimable += image_leftovers;
        let container_leftovers = self.container_leftovers();
        du.containers_size += container_leftovers;
        du.containers_reclaimable += container_leftovers;
        for c in &containers {
            let size = berth_image::dir_size(&self.containers.dir(&c.id).join("upper"));
            du.containers_size += size;
            if c.state.status == crate::Status::Running {
                du.running_containers += 1;
            } else {
                du.containers_reclaimable += size;
            }
        }
        for v in self.volumes.list()? {
            let size = berth_image::dir_size(&v.mountpoint);
            du.volumes += 1;
            du.volumes_size += size;
            let ref_count = containers
                .iter()
                .filter(|c| c.mounts.iter().any(|m| m.name.as_ref() == Some(&v.name)))
                .count();
            du.volume_usage
                .insert(v.name.clone(), VolumeUsage { size, ref_count });
            if ref_count > 0 {
                du.active_volumes += 1;
            } else {
                du.volumes_reclaimable += size;
            }
        }
        Ok(du)
    }

    /// Per image, `system df -v`'s columns: its layers' bytes, the part of
    /// them other images share, and how many containers use it.
    pub fn image_usage(&self) -> Result<Vec<ImageUsage>> {
        use std::collections::HashMap;
        let containers = self.containers.list()?;
        let images = self.images.list()?;
        let mut holders: HashMap<&Digest, usize> = HashMap::new();
        for img in &images {
            for c in &img.chain_ids {
                *holders.entry(c).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for img in &images {
            let (mut size, mut shared) = (0, 0);
            for c in &img.chain_ids {
                let bytes = self.images.layers().info(c).map(|i| i.size).unwrap_or(0);
                size += bytes;
                if holders.get(c).copied().unwrap_or(0) > 1 {
                    shared += bytes;
                }
            }
            let id = img.id.to_string();
            out.push(ImageUsage {
                image: img.clone(),
                size,
                shared,
                containers: containers.iter().filter(|c| c.image_id == id).count(),
            });
        }
        Ok(out)
    }

    /// The size of a container's writable layer.
    pub fn container_size(&self, id: &str) -> u64 {
        berth_image::dir_size(&self.containers.dir(id).join("upper"))
    }
}
