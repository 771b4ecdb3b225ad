//! `pull`: manifest (an index picks linux/<host arch>), config, then every
//! missing layer at once (up to `max_concurrent`), each decompressed and
//! unpacked while it downloads. Blobs are verified against their digests
//! before anything of them is kept.

use std::io::{self, Read};
use std::sync::Arc;

use berth_image::{chain_id, media, Digest, Image, Reference, RemoteManifest, Store};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::errors::DigestError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::error::ClientError;
use super::progress::{Progress, Status};
use super::{connect, Options, Session};

/// `run --pull` / `create --pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<PullPolicy, String> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            o => Err(format!(
                "invalid pull policy {o:?}: must be one of missing, always, never"
            )),
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// The digest the reference resolved to (the index's, if it was one).
    pub digest: Digest,
    /// False when every layer and the image were already here.
    pub downloaded: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

/// Whether a manifest document is an index / manifest list.
fn is_index(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => match p.media_type.as_deref() {
            Some(media::OCI_INDEX) | Some(media::DOCKER_LIST) => true,
            Some(_) => false,
            None => p.manifests.is_some(),
        },
        Err(_) => false,
    }
}

/// A blocking reader over chunks sent from the download task.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

impl Session<'_> {
    /// A manifest by tag or digest, checked against the digest asked for.
    async fn manifest(&self, r: &oci_client::Reference) -> Result<(Bytes, Digest), ClientError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(r, &RegistryAuth::Anonymous, &media::MANIFESTS)
            .await
            .map_err(|e| self.err(e))?;
        // Hashed with the algorithm asked for (sha256 for a tag).
        let alg = r
            .digest()
            .and_then(|w| w.parse::<Digest>().ok())
            .map(|w| w.algorithm())
            .unwrap_or_default();
        let actual = Digest::of_as(alg, &bytes);
        if let Some(want) = r.digest() {
            if want != actual.to_string() {
                return Err(ClientError::DigestMismatch {
                    registry: self.registry.to_string(),
                    what: format!("manifest of {}", self.name),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((bytes, actual))
    }

    /// A small blob (the config), verified.
    async fn small_blob(&self, digest: &str, size: u64) -> Result<Vec<u8>, ClientError> {
        let desc = OciDescriptor {
            digest: digest.to_string(),
            size: size as i64,
            ..Default::default()
        };
        let mut out = Vec::new();
        self.client
            .pull_blob(&self.oref, &desc, &mut out)
            .await
            .map_err(|e| self.err(e))?;
        let alg = digest
            .parse::<Digest>()
            .map(|d| d.algorithm())
            .unwrap_or_default();
        let actual = Digest::of_as(alg, &out);
        if actual.to_string() != digest {
            return Err(ClientError::DigestMismatch {
                registry: self.registry.to_string(),
                what: format!("config of {}", self.name),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(out)
    }
}

/// Pulls `reference` into `store`.
pub fn pull(
    store: &Store,
    reference: &Reference,
    opts: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Pulled, ClientError> {
    let rt = super::runtime()?;
    let out = rt.block_on(async {
        let (client, auth) = connect(opts, reference).await?;
        pull_async(store, reference, opts, client, auth, progress).await
    });
    drop(rt);
    out
}

async fn pull_async(
    store: &Store,
    reference: &Reference,
    opts: &Options,
    client: oci_client::Client,
    auth: RegistryAuth,
    progress: Arc<dyn Progress>,
) -> Result<Pulled, ClientError> {
    let ctx = Session::new(client, reference);
    let oref = ctx.oref.clone();
    // Tokens for the repository (or basic credentials) before the first request.
    ctx.client
        .auth(&oref, &auth, RegistryOperation::Pull)
        .await
        .map_err(|e| ctx.err(e))?;
    progress.message(&format!(
        "{}: Pulling from {}",
        reference
            .tag()
            .map(str::to_string)
            .or_else(|| reference.digest().map(|d| d.to_string()))
            .unwrap_or_else(|| "latest".into()),
        reference.path()
    ));

    let (top, top_digest) = ctx.manifest(&oref).await?;
    let manifest_bytes = if is_index(&top) {
        let index: Index = serde_json::from_slice(&top).map_err(|e| ClientError::BadManifest {
            reference: ctx.name.clone(),
            message: e.to_string(),
        })?;
        let arch = berth_image::host_arch().to_string();
        let entry = index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .ok_or_else(|| ClientError::NoPlatform {
                reference: ctx.name.clone(),
                platform: format!("linux/{arch}"),
            })?;
        let by_digest = oci_client::Reference::with_digest(
            oref.registry().to_string(),
            oref.repository().to_string(),
            entry.digest.clone(),
        );
        ctx.manifest(&by_digest).await?.0
    } else {
        top.clone()
    };
    let manifest: RemoteManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| ClientError::BadManifest {
            reference: ctx.name.clone(),
            message: format!("not an image manifest ({e})"),
        })?;
    if let Some(mt) = manifest.media_type.as_deref() {
        if mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST {
            return Err(ClientError::BadManifest {
                reference: ctx.name.clone(),
                message: format!("unsupported manifest type {mt}"),
            });
        }
    }
    let config_bytes = ctx
        .small_blob(&manifest.config.digest, manifest.config.size)
        .await?;
    let config: berth_image::ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| ClientError::BadManifest {
            reference: ctx.name.clone(),
            message: format!("image config: {e}"),
        })?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, _>>()?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(ClientError::BadManifest {
            reference: ctx.name.clone(),
            message: format!(
                "{} layers in the manifest, {} in the config",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }

    let _writing = store.write_guard()?;
    // Which layers are missing, with the chain each goes on.
    let mut jobs = Vec::new();
    let mut parent: Option<Digest> = None;
    for (layer, diff_id) in manifest.layers.iter().zip(&diff_ids) {
        let chain = chain_id(parent.as_ref(), diff_id);
        let digest: Digest = layer.digest.parse()?;
        if berth_image::Compression::of_media_type(&layer.media_type).is_none() {
            return Err(ClientError::BadManifest {
                reference: ctx.name.clone(),
                message: format!(
                    "layer {digest} has unsupported media type {}",
                    layer.media_type
                ),
            });
        }
        let id = digest.short().to_string();
        if store.has_layer(&chain) {
            progress.layer(&id, Status::AlreadyExists);
        } else {
            progress.layer(&id, Status::Waiting);
            jobs.push(LayerJob {
                digest,
                size: layer.size,
                diff_id: diff_id.clone(),
                parent: parent.clone(),
            });
        }
        parent = Some(chain);
    }
    let downloaded = !jobs.is_empty();
    let ctx = &ctx;
    futures_util::stream::iter(jobs.into_iter().map(|job| {
        let progress = progress.clone();
        async move { fetch_layer(ctx, store, job, progress).await }
    }))
    .buffer_unordered(opts.max_concurrent.max(1))
    .try_collect::<Vec<()>>()
    .await?;

    let refs: Vec<Reference> = if reference.digest().is_some() {
        Vec::new()
    } else {
        vec![reference.clone()]
    };
    let repo_digest = format!("{}@{}", reference.familiar_repository(), top_digest);
    let before = store.resolve(&Digest::of(&config_bytes).to_string()).ok();
    let image = store.put_pulled(&manifest_bytes, &config_bytes, &refs, Some(repo_digest))?;
    let known = before.is_some_and(|b| b.refs.contains(reference));
    Ok(Pulled {
        image,
        digest: top_digest,
        downloaded: downloaded || !known,
    })
}

/// Tries of one layer's download when the connection fails (each from the
/// start; what a failed try unpacked is dropped).
const TRIES: u32 = 3;

/// Downloads one layer and unpacks it as it arrives, again from the start
/// when the connection breaks (as docker retries).
/// One layer a pull must download: its blob, and where it goes.
struct LayerJob {
    digest: Digest,
    size: u64,
    diff_id: Digest,
    parent: Option<Digest>,
}

async fn fetch_layer(
    ctx: &Session<'_>,
    store: &Store,
    job: LayerJob,
    progress: Arc<dyn Progress>,
) -> Result<(), ClientError> {
    let mut attempt = 1;
    loop {
        match fetch_layer_once(ctx, store, &job, progress.clone()).await {
            Err(ClientError::Unreachable { .. }) if attempt < TRIES => {
                progress.layer(job.digest.short(), Status::Retrying { attempt });
                tokio::time::sleep(std::time::Duration::from_millis(300 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

async fn fetch_layer_once(
    ctx: &Session<'_>,
    store: &Store,
    job: &LayerJob,
    progress: Arc<dyn Progress>,
) -> Result<(), ClientError> {
    let LayerJob {
        digest,
        size,
        diff_id,
        parent,
    } = job;
    let size = *size;
    let id = digest.short().to_string();
    let desc = OciDescriptor {
        digest: digest.to_string(),
        size: size as i64,
        ..Default::default()
    };
    let mut stream = ctx
        .client
        .pull_blob_stream(&ctx.oref, &desc)
        .await
        .map_err(|e| ctx.err(e))?;
    let total = stream.content_length.unwrap_or(size);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
    let unpack = {
        let store = store.clone();
        let (digest, diff_id, parent) = (digest.clone(), diff_id.clone(), parent.clone());
        tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            store.pull_layer(reader, &digest, &diff_id, parent.as_ref())
        })
    };
    let mut done = 0u64;
    let mut last_report = 0u64;
    let mut failed: Option<ClientError> = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => {
                done += b.len() as u64;
                if done - last_report >= 512 * 1024 || done == total {
                    progress.layer(&id, Status::Downloading { done, total });
                    last_report = done;
                }
                if tx.send(Ok(b)).await.is_err() {
                    break; // the unpacker stopped: its error says why
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let _ = tx.send(Err(io::Error::other(msg.clone()))).await;
                failed = Some(match e.get_ref().and_then(|i| i.downcast_ref()) {
                    Some(DigestError::VerificationError { expected, actual }) => {
                        ClientError::DigestMismatch {
                            registry: ctx.registry.to_string(),
                            what: format!("layer {id}"),
                            expected: expected.clone(),
                            actual: actual.clone(),
                        }
                    }
                    _ => ClientError::Unreachable {
                        registry: ctx.registry.to_string(),
                        message: format!("downloading layer {digest}: {msg}"),
                    },
                });
                break;
            }
        }
    }
    drop(tx);
    let unpacked = unpack.await.map_err(|e| ClientError::Registry {
        registry: ctx.registry.to_string(),
        message: format!("unpacking layer {digest}: {e}"),
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    match unpacked {
        Ok(()) => {}
        Err(berth_image::Error::DigestMismatch { expected, actual }) => {
            return Err(ClientError::DigestMismatch {
                registry: ctx.registry.to_string(),
                what: format!("layer {id}"),
                expected,
                actual,
            })
        }
        Err(e) if done < total => {
            return Err(ClientError::Registry {
                registry: ctx.registry.to_string(),
                message: format!("layer {digest} ended after {done} of {total} bytes: {e}"),
            })
        }
        Err(e) => return Err(e.into()),
    }
    progress.layer(&id, Status::DownloadComplete);
    progress.layer(&id, Status::PullComplete);
    Ok(())
}

/// Every tag the registry has for the repository of `reference`.
pub fn list_tags(reference: &Reference, opts: &Options) -> Result<Vec<String>, ClientError> {
    let rt = super::runtime()?;
    let out = rt.block_on(async {
        let (client, auth) = connect(opts, reference).await?;
        let ctx = Session::new(client, reference);
        ctx.client
            .auth(&ctx.oref, &auth, RegistryOperation::Pull)
            .await
            .map_err(|e| ctx.err(e))?;
        let mut tags: Vec<String> = Vec::new();
        loop {
            let page = ctx
                .client
                .list_tags(
                    &ctx.oref,
                    &auth,
                    Some(1000),
                    tags.last().map(String::as_str),
                )
                .await
                .map_err(|e| ctx.err(e))?;
            let n = page.tags.len();
            tags.extend(page.tags);
            if n < 1000 {
                break;
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    });
    drop(rt);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_indexes() {
        assert!(is_index(
            br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        ));
        assert!(is_index(br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(!is_index(
            br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{}}"#
        ));
        assert!(!is_index(b"garbage"));
    }

    #[test]
    fn pull_policies() {
        assert_eq!("missing".parse::<PullPolicy>(), Ok(PullPolicy::Missing));
        assert!("sometimes"
            .parse::<PullPolicy>()
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn channel_reader_reassembles_chunks() {
        let (tx, rx) = mpsc::channel(4);
        let t = std::thread::spawn(move || {
            let mut r = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        });
        tx.blocking_send(Ok(Bytes::from_static(b"hello "))).unwrap();
        tx.blocking_send(Ok(Bytes::from_static(b"world"))).unwrap();
        drop(tx);
        assert_eq!(t.join().unwrap(), "hello world");
    }
}
