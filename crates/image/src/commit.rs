//! `commit`: a container's writable layer becomes a new layer on top of its
//! image, with a new config and a history entry.

use std::path::Path;

use oci_spec::image::HistoryBuilder;

use crate::digest::Digest;
use crate::error::Result;
use crate::import::{json_with_runtime_config, layer_descriptor, now};
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::RuntimeConfigJson;

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The new image's runtime config (the container's, with `-c` applied).
    pub config: RuntimeConfigJson,
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
        let bytes = json_with_runtime_config(&config, &opts.config)?;
        let refs: Vec<Reference> = opts.reference.iter().cloned().collect();
        self.put_image_with_config(&config, &bytes, layers, &refs)
    }

    /// An image's runtime config as stored, with the fields the OCI config
    /// does not know (Healthcheck, OnBuild, Shell); empty if it has none.
    pub fn runtime_config_json(&self, image: &Image) -> Result<RuntimeConfigJson> {
        let bytes = self.content.get(&image.id)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| crate::error::Error::Corrupt {
                path: self.content.path(&image.id),
                message: format!("image config: {e}"),
            })?;
        Ok(match doc.get("config") {
            Some(serde_json::Value::Object(m)) => m.clone(),
            _ => RuntimeConfigJson::new(),
        })
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
