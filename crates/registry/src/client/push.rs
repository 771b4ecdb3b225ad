//! `push`: every layer the registry lacks is uploaded (chunked), at most
//! `max_concurrent` at once; a layer the registry has is skipped after a
//! HEAD, and one another repository of the same registry holds (an image
//! tagged into two repositories) is mounted from there instead of sent.

use std::sync::Arc;

use berth_image::{Digest, PushLayer, Reference, Store};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use tokio::io::AsyncReadExt;

use super::error::ClientError;
use super::progress::{Progress, Status};
use super::{connect_clients, oci_ref, registry_of, Options, Session};

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest in the registry.
    pub digest: Digest,
    pub size: usize,
}

/// One upload chunk: oci-client sends each stream item as PATCH requests of
/// at most 4 MiB.
const CHUNK: usize = 4 * 1024 * 1024;

/// Pushes the local image named `reference` to its registry.
pub fn push(
    store: &Store,
    reference: &Reference,
    opts: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Pushed, ClientError> {
    let image = store.resolve(&reference.to_string())?;
    let registry = registry_of(reference);
    progress.message(&format!(
        "The push refers to repository [{}]",
        reference.familiar_repository()
    ));
    let rt = super::runtime()?;
    let out = rt.block_on(async {
        let (client, mono, auth) = connect_clients(opts, reference, true).await?;
        let ctx = Session::new(client, reference);
        // Small blobs go up in one PUT (monolithic), large ones in chunks.
        let mono = mono.ok_or_else(|| ClientError::Setup {
            registry: registry.to_string(),
            message: "no client for monolithic uploads".into(),
        })?;
        for c in [&ctx.client, &mono] {
            c.auth(&ctx.oref, &auth, RegistryOperation::Push)
                .await
                .map_err(|e| ctx.err(e))?;
        }
        let mono = &mono;
        let plan = {
            let store = store.clone();
            let image = image.clone();
            tokio::task::spawn_blocking(move || store.push_image(&image))
                .await
                .map_err(|e| ClientError::Registry {
                    registry: registry.to_string(),
                    message: format!("preparing layers: {e}"),
                })??
        };
        for l in plan.layers.iter().rev() {
            progress.layer(&short(&l.descriptor), Status::Preparing);
        }
        // Other repositories of the same registry naming this image: a
        // layer may be mounted from them.
        let sources: Vec<oci_client::Reference> = image
            .refs
            .iter()
            .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
            .map(oci_ref)
            .collect();
        let ctx = &ctx;
        let sources = &sources;
        futures_util::stream::iter(plan.layers.iter().map(|l| {
            let progress = progress.clone();
            async move { push_layer(ctx, mono, l, sources, progress).await }
        }))
        .buffer_unordered(opts.max_concurrent.max(1))
        .try_collect::<Vec<()>>()
        .await?;

        let config_digest = plan.config.digest().to_string();
        let exists = ctx
            .client
            .blob_exists(&ctx.oref, &config_digest)
            .await
            .map_err(|e| ctx.err(e))?;
        if !exists {
            let data = tokio::fs::read(&plan.config_path).await.map_err(|e| {
                ClientError::Image(berth_image::Error::Archive(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", plan.config_path.display()),
                )))
            })?;
            mono.push_blob(&ctx.oref, data, &config_digest)
                .await
                .map_err(|e| ctx.err(e))?;
        }
        let content_type =
            plan.manifest_media_type
                .parse()
                .map_err(|_| ClientError::BadManifest {
                    reference: ctx.name.clone(),
                    message: format!("media type {:?}", plan.manifest_media_type),
                })?;
        ctx.client
            .push_manifest_raw(&ctx.oref, plan.manifest.clone(), content_type)
            .await
            .map_err(|e| ctx.err(e))?;
        Ok::<_, ClientError>(Pushed {
            digest: Digest::of(&plan.manifest),
            size: plan.manifest.len(),
        })
    });
    drop(rt);
    let pushed = out?;
    store.add_repo_digest(
        &image.id,
        &format!("{}@{}", reference.familiar_repository(), pushed.digest),
    )?;
    Ok(pushed)
}

async fn push_layer(
    ctx: &Session<'_>,
    mono: &oci_client::Client,
    layer: &PushLayer,
    sources: &[oci_client::Reference],
    progress: Arc<dyn Progress>,
) -> Result<(), ClientError> {
    let digest = layer.descriptor.digest().to_string();
    let id = short(&layer.descriptor);
    if ctx
        .client
        .blob_exists(&ctx.oref, &digest)
        .await
        .map_err(|e| ctx.err(e))?
    {
        progress.layer(&id, Status::LayerExists);
        return Ok(());
    }
    for src in sources {
        if ctx.client.mount_blob(&ctx.oref, src, &digest).await.is_ok() {
            progress.layer(
                &id,
                Status::Mounted {
                    from: src.repository().to_string(),
                },
            );
            return Ok(());
        }
    }
    let total = layer.descriptor.size();
    if total < CHUNK as u64 {
        // One chunk's worth or less: a single PUT.
        let data = tokio::fs::read(&layer.path)
            .await
            .map_err(|e| ClientError::Image(berth_image::Error::Archive(e)))?;
        mono.push_blob(&ctx.oref, data, &digest)
            .await
            .map_err(|e| ctx.err(e))?;
        progress.layer(&id, Status::Pushed);
        return Ok(());
    }
    let file = tokio::fs::File::open(&layer.path)
        .await
        .map_err(|e| ClientError::Image(berth_image::Error::Archive(e)))?;
    let progress2 = progress.clone();
    let id2 = id.clone();
    let stream = futures_util::stream::try_unfold((file, 0u64), move |(mut file, done)| {
        let progress = progress2.clone();
        let id = id2.clone();
        async move {
            let mut buf = BytesMut::with_capacity(CHUNK);
            while buf.len() < CHUNK {
                if file.read_buf(&mut buf).await? == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                return Ok::<_, oci_client::errors::OciDistributionError>(None);
            }
            let done = done + buf.len() as u64;
            progress.layer(&id, Status::Pushing { done, total });
            Ok(Some((Bytes::from(buf), (file, done))))
        }
    })
    .boxed();
    ctx.client
        .push_blob_stream(&ctx.oref, stream, &digest, Some(total))
        .await
        .map_err(|e| ctx.err(e))?;
    progress.layer(&id, Status::Pushed);
    Ok(())
}

/// The 12 hex characters docker names a layer by.
fn short(d: &oci_spec::image::Descriptor) -> String {
    d.digest().digest().chars().take(12).collect()
}
