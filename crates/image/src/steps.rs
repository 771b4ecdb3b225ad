//! Build steps' images: each step of a build is an image whose parent is the
//! previous step's, found again by its cache key. They are build cache
//! (`intermediate`) until a build names one as its result.

use std::path::Path;

use oci_spec::image::Descriptor;

use crate::content::Spool;
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::import::layer_descriptor;
use crate::import::Tee;
use crate::reference::Reference;
use crate::store::{Image, Store};

impl Store {
    /// Turns `upper` (a container's writable layer over `parent`) into a
    /// stored, unpacked layer. Returns its diff ID and size. The caller holds
    /// a [`Store::write_guard`] until an image references the layer.
    pub fn commit_layer(&self, parent: Option<&Image>, upper: &Path) -> Result<(Digest, u64)> {
        // One thread writes the tar of `upper`, this one unpacks it as the
        // new layer, a third hashes it: the tar itself is never stored (the
        // layer's split gives it back).
        let (reader, writer) = std::io::pipe().map_err(Error::Archive)?;
        let (pending, diff_id, size) = std::thread::scope(|s| -> Result<_> {
            let tar = s.spawn(move || -> Result<()> {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, writer);
                crate::diff::write_layer(upper, &mut w)?;
                std::io::Write::flush(&mut w).map_err(Error::Archive)
            });
            let mut spool = Spool::new(DigestWriter::new(std::io::sink()));
            let unpacked = {
                let mut tee = Tee {
                    inner: std::io::BufReader::with_capacity(256 * 1024, reader),
                    sink: &mut spool,
                };
                self.layers.unpack(&mut tee)
            };
            let written = tar.join().unwrap_or_else(|_| {
                Err(Error::Archive(std::io::Error::other("tar writer panicked")))
            });
            let broken_pipe = |e: &Error| match e {
                Error::Archive(io) | Error::Io { source: io, .. } => {
                    io.kind() == std::io::ErrorKind::BrokenPipe
                }
                _ => false,
            };
            let pending = match (unpacked, written) {
                (Ok(p), Ok(())) => p,
                // The writer's own error says why the tar stopped; a broken
                // pipe only says the unpacking stopped first.
                (_, Err(w)) if !broken_pipe(&w) => return Err(w),
                (Err(u), _) | (Ok(_), Err(u)) => return Err(u),
            };
            let (_, diff_id, size) = spool.finish()?.finish();
            Ok((pending, diff_id, size))
        })?;
        if !pending.has_split() {
            tracing::warn!(
                "layer {diff_id}: its tar cannot be put back together; save and push of it will fail"
            );
        }
        self.layers
            .commit(pending, &diff_id, parent.and_then(|p| p.chain_ids.last()))?;
        Ok((diff_id, size))
    }

    /// Records a build step's image: `config` (the complete image config
    /// document, as bytes; its `rootfs.diff_ids` must list `parent`'s layers
    /// and then `layer`) over `parent`'s layers plus `layer`.
    pub fn put_step(
        &self,
        parent: Option<&Image>,
        config: &[u8],
        created: String,
        layer: Option<(&Digest, u64)>,
        key: &str,
    ) -> Result<Image> {
        let mut layers: Vec<Descriptor> = match parent {
            Some(p) => self.manifest(p)?.layers().clone(),
            None => Vec::new(),
        };
        if let Some((diff_id, size)) = layer {
            layers.push(layer_descriptor(diff_id, size)?);
        }
        self.put_record(
            config,
            created,
            layers,
            &[],
            Some((parent.map(|p| p.id.clone()), key.to_string())),
        )
    }

    /// The image an earlier build made from `parent` with the step `key`,
    /// if it and all its layers are still here.
    pub fn find_step(&self, parent: Option<&Digest>, key: &str) -> Result<Option<Image>> {
        let doc = self.metadata.read()?;
        let Some((id, _)) = doc
            .images
            .iter()
            .find(|(_, r)| r.parent.as_ref() == parent && r.build_key.as_deref() == Some(key))
        else {
            return Ok(None);
        };
        let image = self.resolve(&id.to_string())?;
        Ok(image
            .chain_ids
            .iter()
            .all(|c| self.layers.exists(c))
            .then_some(image))
    }

    /// Makes a build's result a visible image (and names it, if `reference`).
    pub fn finish_build(&self, id: &Digest, references: &[Reference]) -> Result<()> {
        self.metadata.update(|doc| {
            let rec = doc
                .images
                .get_mut(id)
                .ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
            rec.intermediate = false;
            for r in references {
                doc.refs.insert(r.to_string(), id.clone());
            }
            Ok(())
        })
    }
}
