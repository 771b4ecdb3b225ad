//! `import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.

use std::io::{self, BufRead, BufReader, Read, Write};

use oci_spec::image::{
    Arch, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use crate::content::{Ingest, Spool};
use crate::digest::Digest;
use crate::digest::DigestWriter;
use crate::error::{Error, Result};
use crate::metadata::ImageRecord;
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::RuntimeConfigJson;

#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// The reference to give the image (`docker import file name:tag`).
    pub reference: Option<Reference>,
    /// The history comment (`docker import -m`).
    pub message: Option<String>,
    /// Where the tarball came from, for the default comment.
    pub source: String,
    /// The image's runtime config (`docker import --change` results).
    pub config: Option<RuntimeConfigJson>,
}

/// Reads from `inner` and copies everything read into `sink`.
pub(crate) struct Tee<'a, R, W = Ingest> {
    pub(crate) inner: R,
    pub(crate) sink: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A diff ID against the one expected, if any.
pub(crate) fn check_diff(expected: Option<&Digest>, actual: &Digest) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(Error::DigestMismatch {
            expected: e.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The decompressor for a stream, chosen by its magic bytes.
pub(crate) fn decompress<'a>(
    mut input: BufReader<Box<dyn Read + 'a>>,
) -> Result<Box<dyn Read + 'a>> {
    let head = input.fill_buf().map_err(Error::Archive)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(input)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(
            zstd::stream::read::Decoder::with_buffer(input).map_err(Error::Archive)?,
        ))
    } else {
        Ok(Box::new(input))
    }
}

/// The architecture of this host, as image configs and indexes name it.
pub fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "x86" => Arch::i386,
        "arm" => Arch::ARM,
        "powerpc64" => Arch::PowerPC64,
        "s390x" => Arch::s390x,
        "riscv64" => Arch::RISCV64,
        other => Arch::Other(other.to_string()),
    }
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Archive(io::Error::other(e)))
}

/// `config` as JSON with `runtime` as its runtime config (in place of any
/// the typed config holds), so that fields the OCI config lacks are kept.
pub(crate) fn json_with_runtime_config(
    config: &ImageConfiguration,
    runtime: &RuntimeConfigJson,
) -> Result<Vec<u8>> {
    let mut doc = serde_json::to_value(config).map_err(|e| Error::Archive(io::Error::other(e)))?;
    if let serde_json::Value::Object(m) = &mut doc {
        m.insert("config".into(), serde_json::Value::Object(runtime.clone()));
    }
    json(&doc)
}

impl Store {
    /// Imports a root filesystem tarball as a new one-layer image.
    pub fn import(&self, input: impl Read, opts: &ImportOptions) -> Result<Image> {
        let _writing = self.write_guard()?;
        let reader = BufReader::with_capacity(256 * 1024, Box::new(input) as Box<dyn Read>);
        let (diff_id, tar_size) = self.unpack_layer(reader, None, None)?;

        let created = now();
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", opts.source));
        let config = ImageConfigurationBuilder::default()
            .created(created.clone())
            .architecture(host_arch())
            .os(Os::Linux)
            .rootfs(
                RootFsBuilder::default()
                    .diff_ids(vec![diff_id.to_string()])
                    .build()?,
            )
            .history(vec![HistoryBuilder::default()
                .created(created.clone())
                .created_by(String::new())
                .comment(comment)
                .build()?])
            .build()?;
        let layer = layer_descriptor(&diff_id, tar_size)?;
        let bytes = match &opts.config {
            Some(c) => json_with_runtime_config(&config, c)?,
            None => json(&config)?,
        };
        let refs: Vec<Reference> = opts.reference.iter().cloned().collect();
        self.put_image_with_config(&config, &bytes, vec![layer], &refs)
    }

    /// Unpacks a layer stream (plain, gzip or zstd) on top of `parent`: the
    /// uncompressed tar is hashed and stored while it is unpacked. With
    /// `expected`, a different diff ID is an error and nothing is kept.
    pub(crate) fn unpack_layer(
        &self,
        reader: BufReader<Box<dyn Read + '_>>,
        expected: Option<&Digest>,
        parent: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let decoded = decompress(reader)?;
        // The tar is hashed on another thread while this one unpacks it; no
        // copy of it is kept: the layer's split gives it back (crate::split).
        let mut spool = Spool::new(DigestWriter::new(io::sink()));
        let mut tee = Tee {
            inner: decoded,
            sink: &mut spool,
        };
        let pending = self.layers.unpack(&mut tee)?;
        io::copy(&mut tee, &mut io::sink()).map_err(Error::Archive)?;
        let (_, diff_id, size) = spool.finish()?.finish();
        check_diff(expected, &diff_id)?;
        if !pending.has_split() {
            tracing::warn!("layer {diff_id}: its tar cannot be put back together; save and push of it will fail");
        }
        self.layers.commit(pending, &diff_id, parent)?;
        Ok((diff_id, size))
    }

    /// Stores an image: its config (`config_bytes`, the exact bytes that
    /// make the image ID) and an OCI manifest over `layers` (which must
    /// already be in the content store), then records it and points
    /// `references` at it.
    pub(crate) fn put_image_with_config(
        &self,
        config: &ImageConfiguration,
        config_bytes: &[u8],
        layers: Vec<Descriptor>,
        references: &[Reference],
    ) -> Result<Image> {
        let created = config.created().clone().unwrap_or_else(now);
        self.put_record(config_bytes, created, layers, references, None)
    }

    /// Writes the config and manifest blobs and records the image; `step`
    /// marks a build step's image (parent, cache key).
    pub(crate) fn put_record(
        &self,
        config_bytes: &[u8],
        created: String,
        layers: Vec<Descriptor>,
        references: &[Reference],
        step: Option<(Option<Digest>, String)>,
    ) -> Result<Image> {
        let config_digest = self.content.put(config_bytes)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageConfig)
                    .digest(oci_spec::image::Digest::from(&config_digest))
                    .size(config_bytes.len() as u64)
                    .build()?,
            )
            .layers(layers)
            .build()?;
        let manifest_digest = self.content.put(&json(&manifest)?)?;
        let (parent, build_key) = match step {
            Some((p, k)) => (p, Some(k)),
            None => (None, None),
        };
        let intermediate = build_key.is_some() && references.is_empty();
        let record = ImageRecord {
            manifest: manifest_digest,
            created,
            parent,
            build_key,
            intermediate,
            repo_digests: Vec::new(),
        };
        let id = config_digest.clone();
        self.metadata.update(|doc| {
            match doc.images.get_mut(&id) {
                // The same step again (a rebuild with the same inputs): keep
                // what the image already is.
                Some(old) if record.build_key.is_some() => {
                    old.intermediate &= record.intermediate;
                }
                _ => {
                    doc.images.insert(id.clone(), record);
                }
            }
            for r in references {
                doc.refs.insert(r.to_string(), id.clone());
            }
            Ok(())
        })?;
        self.resolve(&config_digest.to_string())
    }
}

/// The manifest entry of an uncompressed layer blob (its digest is its diff ID).
pub(crate) fn layer_descriptor(diff_id: &Digest, size: u64) -> Result<Descriptor> {
    Ok(DescriptorBuilder::default()
        .media_type(MediaType::ImageLayer)
        .digest(oci_spec::image::Digest::from(diff_id))
        .size(size)
        .build()?)
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
