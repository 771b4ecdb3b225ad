//! `save` and `load`: image archives other tools read.
//!
//! `save` writes docker's archive layout (`manifest.json` + config + layer
//! tars), laid out as an OCI image layout too (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), as docker 25+ does. `Format::Oci` writes only the OCI
//! layout, with gzip-compressed layers. `load` reads either.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use oci_spec::image::{
    DescriptorBuilder, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};
use serde::Deserialize;
use serde_json::json;

use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::import::{json, layer_descriptor};
use crate::reference::Reference;
use crate::store::{Image, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// docker-archive (also a valid OCI layout with uncompressed layers).
    Docker,
    /// OCI image layout with gzip layers.
    Oci,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

fn append(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

fn append_file(b: &mut tar::Builder<impl Write>, name: &str, path: &Path) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut h = tar::Header::new_gnu();
    h.set_size(f.metadata()?.len());
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, &mut f)
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Store {
    /// Writes `images` (with the references they were named by) as one archive.
    pub fn save(
        &self,
        images: &[(Image, Vec<Reference>)],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<()> {
        let io_err = |e: io::Error| Error::Archive(e);
        let mut b = tar::Builder::new(out);
        let mut written: Vec<Digest> = Vec::new();
        let mut index_manifests = Vec::new();
        let mut docker_manifest = Vec::new();
        for (image, refs) in images {
            let manifest = self.manifest(image)?;
            let diff_ids = self.diff_ids(image)?;
            for i in 0..diff_ids.len() {
                self.ensure_layer_tar(image, i)?;
            }
            let (manifest_bytes, layer_names) = match format {
                ArchiveFormat::Docker => {
                    for d in &diff_ids {
                        if !written.contains(d) {
                            append_file(&mut b, &blob_name(d), &self.content.path(d))
                                .map_err(io_err)?;
                            written.push(d.clone());
                        }
                    }
                    (
                        self.content.get(&image.manifest)?,
                        diff_ids.iter().map(blob_name).collect::<Vec<_>>(),
                    )
                }
                ArchiveFormat::Oci => {
                    // Compress each layer once, hashing the compressed bytes.
                    let mut layers = Vec::new();
                    for d in &diff_ids {
                        let tmp = tempfile::NamedTempFile::new_in(self.root().join("ingest"))
                            .map_err(Error::io("create temporary file in", self.root()))?;
                        let mut enc = flate2::write::GzEncoder::new(
                            DigestWriter::new(tmp.as_file()),
                            flate2::Compression::default(),
                        );
                        io::copy(
                            &mut File::open(self.content.path(d)).map_err(io_err)?,
                            &mut enc,
                        )
                        .map_err(io_err)?;
                        let (_, digest, size) = enc.finish().map_err(io_err)?.finish();
                        if !written.contains(&digest) {
                            append_file(&mut b, &blob_name(&digest), tmp.path()).map_err(io_err)?;
                            written.push(digest.clone());
                        }
                        layers.push(
                            DescriptorBuilder::default()
                                .media_type(MediaType::ImageLayerGzip)
                                .digest(oci_spec::image::Digest::from(&digest))
                                .size(size)
                                .build()?,
                        );
                    }
                    let mut m: ImageManifest = manifest.clone();
                    m.set_layers(layers);
                    (json(&m)?, Vec::new())
                }
            };
            let config = self.content.get(&image.id)?;
            for (d, data) in [
                (image.id.clone(), &config),
                (Digest::of(&manifest_bytes), &manifest_bytes),
            ] {
                if !written.contains(&d) {
                    append(&mut b, &blob_name(&d), data).map_err(io_err)?;
                    written.push(d);
                }
            }
            let manifest_digest = Digest::of(&manifest_bytes);
            let names: Vec<Option<&Reference>> = if refs.is_empty() {
                vec![None]
            } else {
                refs.iter().map(Some).collect()
            };
            for r in names {
                let mut annotations = std::collections::HashMap::new();
                if let Some(r) = r {
                    annotations.insert(CONTAINERD_NAME.to_string(), r.to_string());
                    annotations.insert(
                        REF_NAME.to_string(),
                        r.tag().unwrap_or("latest").to_string(),
                    );
                }
                index_manifests.push(
                    DescriptorBuilder::default()
                        .media_type(MediaType::ImageManifest)
                        .digest(oci_spec::image::Digest::from(&manifest_digest))
                        .size(manifest_bytes.len() as u64)
                        .annotations(annotations)
                        .build()?,
                );
            }
            docker_manifest.push(json!({
                "Config": blob_name(&image.id),
                "RepoTags": refs.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
                "Layers": layer_names,
            }));
        }
        let index: ImageIndex = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(index_manifests)
            .build()?;
        append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
        append(&mut b, "index.json", &json(&index)?).map_err(io_err)?;
        if format == ArchiveFormat::Docker {
            append(&mut b, "manifest.json", &json(&docker_manifest)?).map_err(io_err)?;
        }
        b.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
        Ok(())
    }

    /// Loads every image of a docker or OCI archive. Returns the images with
    /// the references they were given.
    pub fn load(&self, input: impl Read) -> Result<Vec<(Image, Vec<Reference>)>> {
        let _writing = self.write_guard()?;
        let dir = tempfile::Builder::new()
            .prefix(".load-")
            .tempdir_in(self.root())
            .map_err(Error::io("create temporary directory in", self.root()))?;
        let mut archive = tar::Archive::new(input);
        for entry in archive.entries().map_err(Error::Archive)? {
            let mut entry = entry.map_err(Error::Archive)?;
            // Only plain files matter; unpack_in keeps every path inside `dir`.
            if !entry.header().entry_type().is_file() {
                continue;
            }
            // Blobs go straight into the content store (verified against their
            // name), so a layer is written once before it is unpacked.
            let path = entry.path().map_err(Error::Archive)?.into_owned();
            let blob = path
                .to_str()
                .and_then(|p| p.trim_start_matches("./").strip_prefix("blobs/sha256/"))
                .and_then(|hex| Digest::from_hex(hex).ok());
            match blob {
                Some(d) if self.content.exists(&d) => {}
                Some(d) => {
                    let mut ingest = self.content.ingest()?;
                    io::copy(&mut entry, &mut ingest).map_err(Error::Archive)?;
                    ingest.commit(Some(&d))?;
                }
                None => {
                    entry.unpack_in(dir.path()).map_err(Error::Archive)?;
                }
            }
        }
        let root = dir.path();
        // Where an archive member is: the content store for blobs, else the
        // temporary directory.
        let locate = |name: &str| -> Result<std::path::PathBuf> {
            let trimmed = name.trim_start_matches("./");
            if let Some(d) = trimmed
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::from_hex(h).ok())
            {
                if self.content.exists(&d) {
                    return Ok(self.content.path(&d));
                }
            }
            crate::layers::safe_join(root, Path::new(trimmed))
        };
        let read = |name: &str| -> Result<Vec<u8>> {
            let p = locate(name)?;
            fs::read(&p).map_err(Error::io("read", &p))
        };
        let mut out = Vec::new();
        if root.join("manifest.json").exists() {
            let entries: Vec<DockerEntry> = serde_json::from_slice(&read("manifest.json")?)
                .map_err(|e| Error::Corrupt {
                    path: root.join("manifest.json"),
                    message: e.to_string(),
                })?;
            for e in entries {
                let refs = e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| Reference::parse(t))
                    .collect::<Result<Vec<_>>>()?;
                let image = self.load_image(
                    &read(&e.config)?,
                    &e.layers
                        .iter()
                        .map(|l| locate(l))
                        .collect::<Result<Vec<_>>>()?,
                    &refs,
                )?;
                out.push((image, refs));
            }
        } else if root.join("index.json").exists() {
            let index: ImageIndex =
                serde_json::from_slice(&read("index.json")?).map_err(|e| Error::Corrupt {
                    path: root.join("index.json"),
                    message: e.to_string(),
                })?;
            for m in index.manifests() {
                let blob = |d: &oci_spec::image::Digest| format!("blobs/sha256/{}", d.digest());
                let manifest: ImageManifest = serde_json::from_slice(&read(&blob(m.digest()))?)
                    .map_err(|e| Error::Corrupt {
                        path: root.join(blob(m.digest())),
                        message: e.to_string(),
                    })?;
                let ann = m.annotations().clone().unwrap_or_default();
                let refs: Vec<Reference> = ann
                    .get(CONTAINERD_NAME)
                    .or_else(|| {
                        ann.get(REF_NAME)
                            .filter(|r| r.contains(':') || r.contains('/'))
                    })
                    .and_then(|r| Reference::parse(r).ok())
                    .into_iter()
                    .collect();
                let layers = manifest
                    .layers()
                    .iter()
                    .map(|l| locate(&blob(l.digest())))
                    .collect::<Result<Vec<_>>>()?;
                let image =
                    self.load_image(&read(&blob(manifest.config().digest()))?, &layers, &refs)?;
                out.push((image, refs));
            }
        } else {
            return Err(Error::Archive(io::Error::new(
                io::ErrorKind::InvalidData,
                "neither manifest.json nor index.json found: not an image archive",
            )));
        }
        Ok(out)
    }

    /// Stores one image from its config and layer files (plain, gzip or zstd),
    /// checking every layer against the config's diff IDs.
    fn load_image(
        &self,
        config_bytes: &[u8],
        layer_files: &[std::path::PathBuf],
        refs: &[Reference],
    ) -> Result<Image> {
        let config: ImageConfiguration =
            serde_json::from_slice(config_bytes).map_err(|e| Error::Corrupt {
                path: "config".into(),
                message: e.to_string(),
            })?;
        let expected: Vec<Digest> = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse())
            .collect::<Result<_>>()?;
        if expected.len() != layer_files.len() {
            return Err(Error::Corrupt {
                path: "manifest".into(),
                message: format!(
                    "{} layers listed, the config has {}",
                    layer_files.len(),
                    expected.len()
                ),
            });
        }
        let mut parent: Option<Digest> = None;
        let mut descriptors = Vec::new();
        for (file, diff_id) in layer_files.iter().zip(&expected) {
            let chain = crate::layers::chain_id(parent.as_ref(), diff_id);
            if !self.layers.exists(&chain) {
                let f = File::open(file).map_err(Error::io("open", file))?;
                let f = BufReader::with_capacity(256 * 1024, f);
                if *file == self.content.path(diff_id) {
                    // Already stored uncompressed and verified: only unpack.
                    let pending = self.layers.unpack(f)?;
                    self.layers.commit(pending, diff_id, parent.as_ref())?;
                } else {
                    let reader = BufReader::with_capacity(256 * 1024, Box::new(f) as Box<dyn Read>);
                    self.unpack_layer(reader, Some(diff_id), parent.as_ref())?;
                }
            }
            let size = fs::metadata(self.content.path(diff_id))
                .map(|m| m.len())
                .unwrap_or(0);
            descriptors.push(layer_descriptor(diff_id, size)?);
            parent = Some(chain);
        }
        self.put_image_with_config(&config, config_bytes, descriptors, refs)
    }
}
