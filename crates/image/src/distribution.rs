//! Images from and to registries.
//!
//! A pulled image keeps the manifest exactly as the registry served it (so
//! its digest is the registry's) and its layers as the compressed blobs the
//! manifest names; each layer is decompressed and unpacked while it streams
//! in, and both digests (the blob's and the diff ID) are checked before
//! anything becomes visible. No uncompressed copy is kept: `save` makes one
//! when it needs it ([`Store::ensure_layer_tar`]).
//!
//! A push sends compressed blobs: a layer stored uncompressed (import,
//! commit, build, load) is gzipped once and the result is remembered in
//! `compressed/<diff-id hex>`, so pushing again sends the same digest.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageConfiguration, ImageManifest, ImageManifestBuilder,
    MediaType,
};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::gc::WriteGuard;
use crate::import::{json, Tee};
use crate::metadata::{write_atomic, ImageRecord};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// OCI and docker media types of manifests a registry serves.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Every manifest type a pull accepts, for the Accept header.
    pub const MANIFESTS: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names; `None` for a type that is
    /// not a layer tar (a foreign or unknown layer).
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        let mt = media_type.trim();
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt.ends_with("rootfs.diff.tar") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A layer as a push sends it: its manifest entry and the file holding it.
#[derive(Debug, Clone)]
pub struct PushLayer {
    pub descriptor: Descriptor,
    pub path: PathBuf,
}

/// Everything a push of one image sends. While it is held, the collector
/// leaves the blobs it names alone (a compressed layer made for the push is
/// referenced by no manifest).
pub struct PushImage {
    pub layers: Vec<PushLayer>,
    pub config: Descriptor,
    pub config_path: PathBuf,
    /// The manifest's bytes and media type.
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    _writing: WriteGuard,
}

#[derive(Serialize, Deserialize)]
struct CompressedLayer {
    digest: Digest,
    size: u64,
}

/// A manifest of an image (not an index), as much of it as a pull needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: RemoteDescriptor,
    #[serde(default)]
    pub layers: Vec<RemoteDescriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Store {
    /// Whether a layer (by chain ID) is already unpacked here.
    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.layers.exists(chain)
    }

    /// Stores one layer as a registry serves it: `blob` is stored under
    /// `digest` while it is decompressed and unpacked as the layer over
    /// `parent`. The blob's digest and the layer's diff ID are both checked
    /// before either becomes visible; on any error nothing is kept.
    pub fn pull_layer(
        &self,
        blob: impl Read,
        digest: &Digest,
        diff_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<()> {
        let mut ingest = self.content.ingest_as(digest.algorithm())?;
        let pending = {
            let tee = Tee {
                inner: blob,
                sink: &mut ingest,
            };
            let mut buffered = BufReader::with_capacity(256 * 1024, tee);
            let head = buffered.fill_buf().map_err(Error::Archive)?;
            let compression = if head.starts_with(&[0x1f, 0x8b]) {
                Compression::Gzip
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                Compression::Zstd
            } else {
                Compression::None
            };
            let (pending, actual) = {
                let decoded: Box<dyn Read + '_> = match compression {
                    Compression::Gzip => {
                        Box::new(flate2::bufread::MultiGzDecoder::new(&mut buffered))
                    }
                    Compression::Zstd => Box::new(
                        zstd::stream::read::Decoder::with_buffer(&mut buffered)
                            .map_err(Error::Archive)?,
                    ),
                    Compression::None => Box::new(&mut buffered),
                };
                let mut hashing = Hashing {
                    inner: decoded,
                    hasher: diff_id.algorithm().hasher(),
                };
                let pending = self.layers.unpack(&mut hashing)?;
                // The tar reader stops at the end-of-archive marker: hash the
                // padding too.
                io::copy(&mut hashing, &mut io::sink()).map_err(Error::Archive)?;
                let actual = hashing.hasher.finish();
                (pending, actual)
            };
            // Take in whatever the blob holds past the compressed stream.
            io::copy(&mut buffered, &mut io::sink()).map_err(Error::Archive)?;
            if actual != *diff_id {
                return Err(Error::DigestMismatch {
                    expected: diff_id.to_string(),
                    actual: actual.to_string(),
                });
            }
            pending
        };
        ingest.commit(Some(digest))?;
        self.layers.commit(pending, diff_id, parent)?;
        Ok(())
    }

    /// Records a pulled image: the manifest's exact bytes, its config (both
    /// already checked against their digests by the caller) over layers that
    /// are already unpacked. `repo_digest` is `name@sha256:...` as pulled.
    pub fn put_pulled(
        &self,
        manifest: &[u8],
        config: &[u8],
        references: &[Reference],
        repo_digest: Option<String>,
    ) -> Result<Image> {
        let parsed: ImageConfiguration =
            serde_json::from_slice(config).map_err(|e| Error::Corrupt {
                path: "config".into(),
                message: e.to_string(),
            })?;
        let mut parent: Option<Digest> = None;
        for d in parsed.rootfs().diff_ids() {
            let chain = crate::layers::chain_id(parent.as_ref(), &d.parse()?);
            if !self.layers.exists(&chain) {
                return Err(Error::Corrupt {
                    path: self.layers.dir(&chain),
                    message: format!("layer {d} was not pulled"),
                });
            }
            parent = Some(chain);
        }
        let id = self.content.put(config)?;
        let manifest_digest = self.content.put(manifest)?;
        let created = parsed.created().clone().unwrap_or_else(crate::import::now);
        self.metadata.update(|doc| {
            let record = doc.images.entry(id.clone()).or_insert_with(|| ImageRecord {
                manifest: manifest_digest.clone(),
                created,
                parent: None,
                build_key: None,
                intermediate: false,
                repo_digests: Vec::new(),
            });
            record.intermediate = false;
            if let Some(rd) = &repo_digest {
                add_repo_digest(&mut record.repo_digests, rd);
            }
            for r in references {
                doc.refs.insert(r.to_string(), id.clone());
            }
            Ok(())
        })?;
        self.resolve(&id.to_string())
    }

    /// Remembers that `image` is `repo_digest` in a registry (after a push).
    pub fn add_repo_digest(&self, image: &Digest, repo_digest: &str) -> Result<()> {
        self.metadata.update(|doc| {
            if let Some(r) = doc.images.get_mut(image) {
                add_repo_digest(&mut r.repo_digests, repo_digest);
            }
            Ok(())
        })
    }

    /// What a push of `image` sends: compressed layers (gzipping, once, any
    /// layer stored uncompressed), the config, and a manifest over them. An
    /// image whose manifest already names only compressed blobs (a pulled
    /// one) is pushed with its manifest unchanged, so it keeps its digest.
    pub fn push_image(&self, image: &Image) -> Result<PushImage> {
        let writing = self.write_guard()?;
        let manifest_bytes = self.content.get(&image.manifest)?;
        let manifest = self.manifest(image)?;
        let mut changed = false;
        // Uncompressed layers are gzipped on as many threads as there are
        // CPUs (gzip runs at ~130 MB/s a core), each layer on one.
        let uncompressed: Vec<(usize, Digest)> = manifest
            .layers()
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                Compression::of_media_type(l.media_type().as_ref()) == Some(Compression::None)
            })
            .map(|(i, l)| Ok((i, l.digest().to_string().parse()?)))
            .collect::<Result<_>>()?;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(uncompressed.len())
            .max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let compressed: std::sync::Mutex<std::collections::HashMap<usize, Result<PushLayer>>> =
            Default::default();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((i, digest)) = uncompressed.get(k) else {
                        break;
                    };
                    let r = self.compressed_layer(image, *i, digest);
                    if let Ok(mut m) = compressed.lock() {
                        m.insert(*i, r);
                    }
                });
            }
        });
        let mut compressed = compressed.into_inner().unwrap_or_default();
        let mut layers = Vec::new();
        for (i, l) in manifest.layers().iter().enumerate() {
            match compressed.remove(&i) {
                Some(r) => {
                    changed = true;
                    layers.push(r?);
                }
                None => layers.push(PushLayer {
                    descriptor: l.clone(),
                    path: self.content.path(&l.digest().to_string().parse()?),
                }),
            }
        }
        let config = manifest.config().clone();
        let (manifest, manifest_media_type) = if changed {
            let m: ImageManifest = ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(
                    DescriptorBuilder::default()
                        .media_type(MediaType::ImageConfig)
                        .digest(config.digest().clone())
                        .size(config.size())
                        .build()?,
                )
                .layers(
                    layers
                        .iter()
                        .map(|l| l.descriptor.clone())
                        .collect::<Vec<_>>(),
                )
                .build()?;
            (json(&m)?, media::OCI_MANIFEST.to_string())
        } else {
            let mt = manifest
                .media_type()
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
            (manifest_bytes, mt)
        };
        Ok(PushImage {
            layers,
            config_path: self.content.path(&image.id),
            config,
            manifest,
            manifest_media_type,
            _writing: writing,
        })
    }

    /// The gzip blob of layer `index` (diff ID `diff_id`) of `image`, made
    /// once and remembered.
    fn compressed_layer(&self, image: &Image, index: usize, diff_id: &Digest) -> Result<PushLayer> {
        let dir = self.root().join("compressed");
        let note = dir.join(diff_id.hex());
        let descriptor = |c: &CompressedLayer| -> Result<PushLayer> {
            Ok(PushLayer {
                descriptor: DescriptorBuilder::default()
                    .media_type(MediaType::ImageLayerGzip)
                    .digest(oci_spec::image::Digest::from(&c.digest))
                    .size(c.size)
                    .build()?,
                path: self.content.path(&c.digest),
            })
        };
        if let Ok(data) = fs::read(&note) {
            if let Ok(c) = serde_json::from_slice::<CompressedLayer>(&data) {
                if self.content.exists(&c.digest) {
                    return descriptor(&c);
                }
            }
        }
        let src = self.content.path(diff_id);
        let (mut input, _) = self.layer_tar(image, index)?;
        let mut ingest = self.content.ingest()?;
        {
            let mut enc = flate2::write::GzEncoder::new(&mut ingest, flate2::Compression::fast());
            io::copy(&mut input, &mut enc).map_err(Error::io("compress", &src))?;
            enc.finish().map_err(Error::io("compress", &src))?;
        }
        let (digest, size) = ingest.commit(None)?;
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let c = CompressedLayer { digest, size };
        write_atomic(&note, &json(&c)?)?;
        descriptor(&c)
    }

    /// The uncompressed tar of layer `index` of `image` and its size: its
    /// blob if one is kept, else put back together from the unpacked layer
    /// (verified as it is read), else (a pulled layer with only its
    /// compressed blob) decompressed once into the content store.
    pub fn layer_tar(&self, image: &Image, index: usize) -> Result<(Box<dyn Read>, u64)> {
        let diff_ids = self.diff_ids(image)?;
        let (Some(diff_id), Some(chain)) = (diff_ids.get(index), image.chain_ids.get(index)) else {
            return Err(Error::Corrupt {
                path: self.content.path(&image.id),
                message: format!("image has no layer {index}"),
            });
        };
        if !self.content.exists(diff_id) {
            if let Some(r) = self.layers.tar(chain, diff_id)? {
                let size = r.size;
                return Ok((Box::new(BufReader::with_capacity(256 * 1024, r)), size));
            }
            self.materialize_layer_tar(image, index, diff_id)?;
        }
        let path = self.content.path(diff_id);
        let f = File::open(&path).map_err(Error::io("open", &path))?;
        let size = f.metadata().map_err(Error::io("stat", &path))?.len();
        Ok((Box::new(BufReader::with_capacity(256 * 1024, f)), size))
    }

    /// Decompresses a pulled layer's blob into the content store under its
    /// diff ID, verified.
    fn materialize_layer_tar(&self, image: &Image, index: usize, diff_id: &Digest) -> Result<()> {
        let manifest = self.manifest(image)?;
        let Some(layer) = manifest.layers().get(index) else {
            return Err(Error::Corrupt {
                path: self.content.path(&image.manifest),
                message: format!("manifest has no layer {index}"),
            });
        };
        let blob: Digest = layer.digest().to_string().parse()?;
        let path = self.content.path(&blob);
        let f = File::open(&path).map_err(Error::io("open", &path))?;
        let reader = BufReader::with_capacity(256 * 1024, Box::new(f) as Box<dyn Read>);
        let mut decoded = crate::import::decompress(reader)?;
        let mut ingest = self.content.ingest()?;
        io::copy(&mut decoded, &mut ingest).map_err(Error::io("decompress", &path))?;
        ingest.commit(Some(diff_id))?;
        Ok(())
    }
}

fn add_repo_digest(list: &mut Vec<String>, rd: &str) {
    // One digest per repository: the newest.
    let name = rd.split('@').next().unwrap_or(rd);
    list.retain(|x| x.split('@').next() != Some(name));
    list.push(rd.to_string());
}
