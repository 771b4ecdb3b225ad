//! The image store: content, layers and metadata together.

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layers::{chain_id, LayerStore};
use crate::metadata::{ImageRecord, MetadataStore};
use crate::reference::Reference;
use crate::snapshot::{self, OverlayMount};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) layers: LayerStore,
    pub(crate) metadata: MetadataStore,
}

/// An image resolved from the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image ID: the digest of its config.
    pub id: Digest,
    pub manifest: Digest,
    pub config: ImageConfiguration,
    /// Chain IDs of its layers, bottom first.
    pub chain_ids: Vec<Digest>,
    pub created: String,
    /// References naming this image, normalised.
    pub refs: Vec<Reference>,
    /// The image a build step made this one from.
    pub parent: Option<Digest>,
    /// Build cache: a step's image that is not a build's result.
    pub intermediate: bool,
    /// `name@sha256:...` of this image's manifests in registries.
    pub repo_digests: Vec<String>,
    /// Why the image cannot be used (its config blob is missing, fails its
    /// digest or does not parse): listed and removable, never run. Its
    /// config is then empty and its layers unknown.
    pub damaged: Option<String>,
}

impl Store {
    /// The on-disk schema version of this store's layout.
    pub const SCHEMA: u32 = crate::metadata::SCHEMA;

    pub fn open(root: &Path) -> Result<Store> {
        let root = root.join("image");
        std::fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        Ok(Store {
            content: ContentStore::open(&root)?,
            layers: LayerStore::open(&root)?,
            metadata: MetadataStore::open(&root),
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    pub(crate) fn load_record(
        &self,
        id: &Digest,
        record: &ImageRecord,
        refs: Vec<Reference>,
    ) -> Result<Image> {
        let config: ImageConfiguration =
            serde_json::from_slice(&self.content.get(id)?).map_err(|e| Error::Corrupt {
                path: self.content.path(id),
                message: e.to_string(),
            })?;
        let mut chain_ids = Vec::new();
        let mut parent: Option<Digest> = None;
        for diff in config.rootfs().diff_ids() {
            let diff: Digest = diff.parse()?;
            let chain = chain_id(parent.as_ref(), &diff);
            chain_ids.push(chain.clone());
            parent = Some(chain);
        }
        Ok(Image {
            id: id.clone(),
            manifest: record.manifest.clone(),
            config,
            chain_ids,
            created: record.created.clone(),
            refs,
            parent: record.parent.clone(),
            intermediate: record.intermediate,
            repo_digests: record.repo_digests.clone(),
            damaged: None,
        })
    }

    /// `load_record`, or for an image whose config cannot be read the image
    /// marked damaged (a warning names the file), so listings and removals
    /// work around it.
    fn load_or_damaged(&self, id: &Digest, record: &ImageRecord, refs: Vec<Reference>) -> Image {
        match self.load_record(id, record, refs.clone()) {
            Ok(image) => image,
            Err(e) => {
                tracing::warn!(
                    "image {} is damaged ({}): {e}; remove it with rmi -f {}",
                    id.short(),
                    self.content.path(id).display(),
                    id.short()
                );
                Image {
                    id: id.clone(),
                    manifest: record.manifest.clone(),
                    config: ImageConfiguration::default(),
                    chain_ids: Vec::new(),
                    created: record.created.clone(),
                    refs,
                    parent: record.parent.clone(),
                    intermediate: record.intermediate,
                    repo_digests: record.repo_digests.clone(),
                    damaged: Some(e.to_string()),
                }
            }
        }
    }

    fn refs_of(doc: &crate::metadata::Document, id: &Digest) -> Vec<Reference> {
        doc.refs
            .iter()
            .filter(|(_, v)| *v == id)
            .filter_map(|(k, _)| Reference::parse(k).ok())
            .collect()
    }

    /// Finds an image by reference (`busybox`, `me/app:v1`), by full ID
    /// (`sha256:...`) or by an unambiguous ID prefix (`3f4a`).
    pub fn resolve(&self, name: &str) -> Result<Image> {
        self.resolve_with(name, false)
    }

    /// `resolve` that also finds a damaged image (see `Image::damaged`): for
    /// removing it.
    pub fn resolve_even_damaged(&self, name: &str) -> Result<Image> {
        self.resolve_with(name, true)
    }

    fn resolve_with(&self, name: &str, damaged: bool) -> Result<Image> {
        let doc = self.metadata.read()?;
        let by_id = |id: &Digest| -> Result<Image> {
            let rec = doc
                .images
                .get(id)
                .ok_or_else(|| Error::ImageNotFound(name.to_string()))?;
            let refs = Self::refs_of(&doc, id);
            if damaged {
                Ok(self.load_or_damaged(id, rec, refs))
            } else {
                self.load_record(id, rec, refs)
            }
        };
        if let Ok(d) = name.parse::<Digest>() {
            return by_id(&d);
        }
        let hexish = name.len() >= 4
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if hexish {
            let matches: Vec<&Digest> = doc
                .images
                .keys()
                .filter(|d| d.hex().starts_with(name))
                .collect();
            if matches.len() == 1 {
                return by_id(matches[0]);
            }
        }
        let reference = Reference::parse(name)?;
        if let Some(d) = reference.digest() {
            // `name@digest`: the image pulled as that (its repo digest).
            let want = format!("{}@{d}", reference.familiar_repository());
            if let Some((id, _)) = doc
                .images
                .iter()
                .find(|(_, rec)| rec.repo_digests.contains(&want))
            {
                return by_id(id);
            }
        }
        match doc.refs.get(&reference.to_string()) {
            Some(id) => by_id(id),
            None => Err(Error::ImageNotFound(name.to_string())),
        }
    }

    /// Every image with its references, a damaged one marked so (see
    /// `Image::damaged`).
    pub fn list(&self) -> Result<Vec<Image>> {
        let doc = self.metadata.read()?;
        Ok(doc
            .images
            .iter()
            .map(|(id, rec)| self.load_or_damaged(id, rec, Self::refs_of(&doc, id)))
            .collect())
    }

    /// Bytes of layer content an image holds (what `images` shows as SIZE).
    pub fn size(&self, image: &Image) -> u64 {
        image
            .chain_ids
            .iter()
            .filter_map(|c| self.layers.info(c).ok())
            .map(|i| i.size)
            .sum()
    }

    /// The manifest of an image.
    pub fn manifest(&self, image: &Image) -> Result<ImageManifest> {
        serde_json::from_slice(&self.content.get(&image.manifest)?).map_err(|e| Error::Corrupt {
            path: self.content.path(&image.manifest),
            message: e.to_string(),
        })
    }

    /// The overlay mount that stacks `image`'s layers, then the container's
    /// `init` layer, under `upper`.
    pub fn overlay(
        &self,
        image: &Image,
        init: Option<&Path>,
        upper: &Path,
        work: &Path,
    ) -> Result<OverlayMount> {
        for c in &image.chain_ids {
            if !self.layers.exists(c) {
                return Err(Error::Corrupt {
                    path: self.layers.dir(c),
                    message: format!("layer {c} of image {} is missing", image.id),
                });
            }
            self.layers.ensure_link(c)?;
        }
        Ok(snapshot::overlay(
            &self.layers,
            &image.chain_ids,
            init,
            upper,
            work,
        ))
    }

    /// The directories of an image's layers, top first (the order a lookup uses).
    pub fn layer_dirs(&self, image: &Image) -> Vec<PathBuf> {
        image
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.layers.diff_dir(c))
            .collect()
    }

    /// Points `reference` at image `id` (`tag`).
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<()> {
        self.metadata.update(|doc| {
            if !doc.images.contains_key(id) {
                return Err(Error::ImageNotFound(id.to_string()));
            }
            doc.refs.insert(reference.to_string(), id.clone());
            Ok(())
        })
    }
}
