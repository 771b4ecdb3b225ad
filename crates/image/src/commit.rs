//! `commit`: a container's writable layer becomes a new layer on top of its
//! image, with a new config and a history entry.

use std::path::Path;

use oci_spec::image::{Config, HistoryBuilder};

use crate::digest::Digest;
use crate::error::Result;
use crate::import::{layer_descriptor, now};
use crate::reference::Reference;
use crate::store::{Image, Store};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The new image's runtime config (the container's, with `-c` applied).
    pub config: Config,
    /// The history entry's "created by" (the container's command).
    pub created_by: String,
    /// `commit -m`
    pub comment: Option<String>,
    /// `commit -a`
    pub author: Option<String>,
    pub reference: Option<Reference>,
}

impl Store {
    /// Turns `upper` (a container's writable layer over `parent`) into a new
    /// image. The layer tar is hashed as it is written, stored, then unpacked
    /// as the new top layer shared by every later user.
    pub fn commit(&self, parent: &Image, upper: &Path, opts: &CommitOptions) -> Result<Image> {
        let _writing = self.write_guard()?;
        let (diff_id, size) = self.commit_layer(Some(parent), upper)?;

        let created = now();
        let mut config = parent.config.clone();
        config.set_created(Some(created.clone()));
        config.set_config(Some(opts.config.clone()));
        if let Some(a) = &opts.author {
            config.set_author(Some(a.clone()));
        }
        let mut history = config.history().clone().unwrap_or_default();
        let mut entry = HistoryBuilder::default()
            .created(created)
            .created_by(opts.created_by.clone());
        if let Some(c) = &opts.comment {
            entry = entry.comment(c.clone());
        }
        if let Some(a) = &opts.author {
            entry = entry.author(a.clone());
        }
        history.push(entry.build()?);
        config.set_history(Some(history));
        let mut diff_ids = config.rootfs().diff_ids().clone();
        diff_ids.push(diff_id.to_string());
        config.rootfs_mut().set_diff_ids(diff_ids);

        let mut layers = self.manifest(parent)?.layers().clone();
        layers.push(layer_descriptor(&diff_id, size)?);
        self.put_image(&config, layers, opts.reference.as_ref())
    }

    /// The diff ID of every layer of an image, bottom first.
    pub fn diff_ids(&self, image: &Image) -> Result<Vec<Digest>> {
        image
            .config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse())
            .collect()
    }
}
