//! `save` and `load`: image archives other tools read.
//!
//! `save` writes docker's archive layout (`manifest.json` + config + layer
//! tars), laid out as an OCI image layout too (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), as docker 25+ does. `Format::Oci` writes only the OCI
//! layout, with gzip-compressed layers. `load` reads either.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use oci_spec::image::{
    DescriptorBuilder, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};
use serde::Deserialize;
use serde_json::json;

use crate::content::Spool;
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::import::{check_diff, json, layer_descriptor, Tee};
use crate::layers::PendingLayer;
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

/// Appends `size` bytes from `data` as a plain file member; fewer is an error.
fn append_reader(
    b: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: &mut dyn Read,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    let mut exact = data.take(size);
    b.append_data(&mut h, name, &mut exact)?;
    // The member is complete; what the source still holds (the end of a
    // verifying reader) must be read too.
    io::copy(data, &mut io::sink())?;
    Ok(())
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
    format!("blobs/{}/{}", d.algorithm(), d.hex())
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
            let (manifest_bytes, layer_names) = match format {
                ArchiveFormat::Docker => {
                    for (i, d) in diff_ids.iter().enumerate() {
                        if !written.contains(d) {
                            let (mut tar, size) = self.layer_tar(image, i)?;
                            append_reader(&mut b, &blob_name(d), size, &mut tar).map_err(io_err)?;
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
                    for i in 0..diff_ids.len() {
                        let tmp = tempfile::NamedTempFile::new_in(self.root().join("ingest"))
                            .map_err(Error::io("create temporary file in", self.root()))?;
                        let mut enc = flate2::write::GzEncoder::new(
                            DigestWriter::new(tmp.as_file()),
                            flate2::Compression::default(),
                        );
                        io::copy(&mut self.layer_tar(image, i)?.0, &mut enc).map_err(io_err)?;
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
        let mut unpacked: HashMap<Digest, (PendingLayer, u64)> = HashMap::new();
        for entry in archive.entries().map_err(Error::Archive)? {
            let mut entry = entry.map_err(Error::Archive)?;
            // Only plain files matter; unpack_in keeps every path inside `dir`.
            if !entry.header().entry_type().is_file() {
                continue;
            }
            // Blobs are verified against their name; a layer blob is unpacked
            // as it is read, and kept as a blob only if its files cannot give
            // it back (see crate::split), so a layer is written once.
            let path = entry.path().map_err(Error::Archive)?.into_owned();
            let blob = path
                .to_str()
                .and_then(|p| p.trim_start_matches("./").strip_prefix("blobs/sha256/"))
                .and_then(|hex| Digest::from_hex(hex).ok());
            match blob {
                Some(d) if self.content.exists(&d) || unpacked.contains_key(&d) => {}
                Some(d) => {
                    if let Some(layer) = self.take_blob(&mut entry, &d)? {
                        unpacked.insert(d, layer);
                    }
                }
                None => {
                    entry.unpack_in(dir.path()).map_err(Error::Archive)?;
                }
            }
        }
        let root = dir.path();
        // Where an archive member is: unpacked already, the content store for
        // blobs, else the temporary directory.
        let locate = |name: &str| -> Result<LayerSource> {
            let trimmed = name.trim_start_matches("./");
            if let Some(d) = trimmed
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::from_hex(h).ok())
            {
                if self.content.exists(&d) {
                    return Ok(LayerSource::File(self.content.path(&d)));
                }
                return Ok(LayerSource::Unpacked(d));
            }
            crate::layers::safe_join(root, Path::new(trimmed)).map(LayerSource::File)
        };
        let read = |name: &str| -> Result<Vec<u8>> {
            let p = match locate(name)? {
                LayerSource::File(p) => p,
                LayerSource::Unpacked(d) => self.content.path(&d),
            };
            fs::read(&p).map_err(Error::io("read", &p))
        };
        let mut loaded = Loaded {
            unpacked,
            used: HashMap::new(),
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
                    e.layers
                        .iter()
                        .map(|l| locate(l))
                        .collect::<Result<Vec<_>>>()?,
                    &refs,
                    &mut loaded,
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
                let blob = |d: &oci_spec::image::Digest| {
                    format!("blobs/{}/{}", d.algorithm().as_ref(), d.digest())
                };
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
                let image = self.load_image(
                    &read(&blob(manifest.config().digest()))?,
                    layers,
                    &refs,
                    &mut loaded,
                )?;
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

    /// Takes in an archive's blob `d`: a layer tar is unpacked as it is read
    /// (its split gives the blob back, so none is kept); anything else is
    /// stored as a blob.
    fn take_blob(&self, entry: &mut dyn Read, d: &Digest) -> Result<Option<(PendingLayer, u64)>> {
        let mut head = Vec::with_capacity(512);
        entry
            .take(512)
            .read_to_end(&mut head)
            .map_err(Error::Archive)?;
        let is_tar = head.len() == 512 && &head[257..262] == b"ustar";
        let mut rest = io::Cursor::new(head).chain(entry);
        if is_tar {
            // Hashed on another thread while this one unpacks; the layer's
            // split gives the blob back, so none is written.
            let mut spool = Spool::new(DigestWriter::new(io::sink()));
            let unpacked = {
                let mut tee = Tee {
                    inner: &mut rest,
                    sink: &mut spool,
                };
                self.layers.unpack(&mut tee)
            };
            let pending = unpacked?;
            {
                io::copy(&mut rest, &mut spool).map_err(Error::Archive)?;
                let (_, digest, size) = spool.finish()?.finish();
                check_diff(Some(d), &digest)?;
                if !pending.has_split() {
                    tracing::warn!("layer {d}: its tar cannot be put back together; save and push of it will fail");
                }
                return Ok(Some((pending, size)));
            }
        }
        let mut ingest = self.content.ingest()?;
        io::copy(&mut rest, &mut ingest).map_err(Error::Archive)?;
        ingest.commit(Some(d))?;
        Ok(None)
    }

    /// Stores one image from its config and layers (unpacked while the
    /// archive was read, or files: plain, gzip or zstd), checking every layer
    /// against the config's diff IDs.
    fn load_image(
        &self,
        config_bytes: &[u8],
        layers: Vec<LayerSource>,
        refs: &[Reference],
        loaded: &mut Loaded,
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
        if expected.len() != layers.len() {
            return Err(Error::Corrupt {
                path: "manifest".into(),
                message: format!(
                    "{} layers listed, the config has {}",
                    layers.len(),
                    expected.len()
                ),
            });
        }
        let mut parent: Option<Digest> = None;
        let mut descriptors = Vec::new();
        for (source, diff_id) in layers.into_iter().zip(&expected) {
            let chain = crate::layers::chain_id(parent.as_ref(), diff_id);
            match source {
                LayerSource::Unpacked(d) => {
                    if d != *diff_id {
                        return Err(Error::DigestMismatch {
                            expected: diff_id.to_string(),
                            actual: d.to_string(),
                        });
                    }
                    if !self.layers.exists(&chain) {
                        if let Some((pending, _)) = loaded.unpacked.remove(&d) {
                            self.layers.commit(pending, diff_id, parent.as_ref())?;
                        } else if let Some(first) = loaded.used.get(&d) {
                            // The same layer again, on another parent: from its
                            // first copy's files.
                            let tar = match self.layers.tar(first, diff_id)? {
                                Some(r) => Box::new(r) as Box<dyn Read>,
                                None => {
                                    let p = self.content.path(diff_id);
                                    Box::new(File::open(&p).map_err(Error::io("open", &p))?)
                                }
                            };
                            let reader = BufReader::with_capacity(256 * 1024, tar);
                            self.unpack_layer(reader, Some(diff_id), parent.as_ref())?;
                        } else {
                            return Err(Error::Corrupt {
                                path: "archive".into(),
                                message: format!("layer {d} is not in the archive"),
                            });
                        }
                    }
                    loaded.used.insert(d, chain.clone());
                }
                LayerSource::File(file) => {
                    if !self.layers.exists(&chain) {
                        let f = File::open(&file).map_err(Error::io("open", &file))?;
                        let f = BufReader::with_capacity(256 * 1024, f);
                        if file == self.content.path(diff_id) {
                            // Already stored uncompressed and verified: only unpack.
                            let pending = self.layers.unpack(f)?;
                            self.layers.commit(pending, diff_id, parent.as_ref())?;
                        } else {
                            let reader =
                                BufReader::with_capacity(256 * 1024, Box::new(f) as Box<dyn Read>);
                            self.unpack_layer(reader, Some(diff_id), parent.as_ref())?;
                        }
                    }
                }
            }
            descriptors.push(layer_descriptor(diff_id, self.tar_size(&chain, diff_id))?);
            parent = Some(chain);
        }
        self.put_image_with_config(&config, config_bytes, descriptors, refs)
    }

    /// Bytes of a layer's uncompressed tar.
    pub(crate) fn tar_size(&self, chain: &Digest, diff_id: &Digest) -> u64 {
        fs::metadata(self.content.path(diff_id))
            .map(|m| m.len())
            .ok()
            .or_else(|| crate::split::total_size(&self.layers.dir(chain)))
            .unwrap_or(0)
    }
}

/// Where a layer of an archive being loaded is.
enum LayerSource {
    /// Unpacked while the archive was read (by its blob digest).
    Unpacked(Digest),
    /// A file: a blob of the content store or a member of an older layout.
    File(std::path::PathBuf),
}

/// The layers a load unpacked, and which chain each went to first.
struct Loaded {
    unpacked: HashMap<Digest, (PendingLayer, u64)>,
    used: HashMap<Digest, Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A docker archive of one image over `layers`, as `save` writes it.
    fn archive(layers: &[Vec<u8>]) -> Vec<u8> {
        let diffs: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diffs.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        }))
        .unwrap();
        let cfg = Digest::of(&config);
        let mut b = tar::Builder::new(Vec::new());
        let mut seen = Vec::new();
        for (l, d) in layers.iter().zip(&diffs) {
            if !seen.contains(d) {
                append(&mut b, &blob_name(d), l).unwrap();
                seen.push(d.clone());
            }
        }
        append(&mut b, &blob_name(&cfg), &config).unwrap();
        let manifest = serde_json::to_vec(&json!([{
            "Config": blob_name(&cfg),
            "RepoTags": ["t:1"],
            "Layers": diffs.iter().map(blob_name).collect::<Vec<_>>(),
        }]))
        .unwrap();
        append(&mut b, "manifest.json", &manifest).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn load_unpacks_as_it_reads_and_save_gives_the_same_layers_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        // The same layer at two depths (as builds make them), and an empty one.
        let same = layer(&[("etc/same", b"same")]);
        let layers = vec![
            same.clone(),
            layer(&[("etc/motd", b"hi"), ("bin/sh", b"#!")]),
            same.clone(),
            layer(&[]),
        ];
        let loaded = store.load(&archive(&layers)[..]).unwrap();
        let image = &loaded[0].0;
        assert_eq!(image.chain_ids.len(), 4);
        for c in &image.chain_ids {
            assert!(store.layers.exists(c));
        }
        // Layer blobs are not kept: their splits give them back. (An empty
        // layer, all zeros, is kept as the 1 KiB blob it is.)
        assert!(!store.content.exists(&Digest::of(&layers[0])));
        assert!(!store.content.exists(&Digest::of(&layers[1])));
        for (i, l) in layers.iter().enumerate() {
            let (mut r, size) = store.layer_tar(image, i).unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(size, l.len() as u64);
            assert!(out == *l, "layer {i}");
        }
        // And a saved archive loads into another store as the same image.
        let mut saved = Vec::new();
        store
            .save(
                &[(image.clone(), vec![])],
                ArchiveFormat::Docker,
                &mut saved,
            )
            .unwrap();
        let tmp2 = tempfile::tempdir().unwrap();
        let other = Store::open(tmp2.path()).unwrap();
        let again = other.load(&saved[..]).unwrap();
        assert_eq!(again[0].0.id, image.id);
        assert_eq!(again[0].0.chain_ids, image.chain_ids);
    }

    #[test]
    fn a_layer_blob_that_does_not_match_its_name_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let l = layer(&[("a", b"UNIQUE-CONTENT")]);
        let mut data = archive(std::slice::from_ref(&l));
        // Change a content byte of the layer member (its name stays).
        let at = data.windows(6).position(|w| w == b"UNIQUE").unwrap();
        data[at] = b'X';
        let e = store.load(&data[..]).unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(store.list().unwrap().is_empty());
    }
}
