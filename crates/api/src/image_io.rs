//! Images in and out and made from containers: `GET /images/{name}/history`,
//! save (`GET /images/get`, `/images/{name}/get`), load (`POST
//! /images/load`), import (`POST /images/create?fromSrc=-`) and `POST
//! /commit`; and the prunes (`POST /{containers,images,volumes,networks}/prune`).

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::image::{ArchiveFormat, Image, ImportOptions, Reference};
use berth_engine::CommitRequest;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError, ApiResult};
use crate::models::unix_time;
use crate::server::State as AppState;

/// The largest image archive taken in (load, import).
const MAX_ARCHIVE: u64 = 16 << 30;

fn resolve(app: &AppState, name: &str) -> ApiResult<Image> {
    app.engine
        .images()
        .resolve(name)
        .map_err(|_| ApiError::NotFound(format!("No such image: {name}")))
}

/// `GET /images/{name}/history`: newest first, as docker's.
pub fn history(app: &AppState, name: &str) -> ApiResult<Value> {
    let image = resolve(app, name)?;
    let history = image.config.history().clone().unwrap_or_default();
    let mut chain = image.chain_ids.iter();
    let mut rows = Vec::new();
    for h in &history {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            chain
                .next()
                .and_then(|c| app.engine.images().layers().info(c).ok())
                .map_or(0, |i| i.size)
        };
        rows.push(json!({
            "Id": "<missing>",
            "Created": h.created().as_deref().map_or(0, unix_time),
            "CreatedBy": h.created_by().clone().unwrap_or_default(),
            "Tags": Value::Null,
            "Size": size,
            "Comment": h.comment().clone().unwrap_or_default(),
        }));
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first["Id"] = json!(image.id.to_string());
        first["Tags"] = json!(image.refs.iter().map(|r| r.to_string()).collect::<Vec<_>>());
    }
    Ok(Value::Array(rows))
}

/// A writer whose bytes go to a response body, from a blocking thread.
struct BodyWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Save: the named images as a docker archive, streamed.
pub async fn save(app: AppState, names: Vec<String>) -> ApiResult<Response> {
    let images = blocking({
        let app = app.clone();
        move || {
            let mut out = Vec::new();
            for name in &names {
                let image = resolve(&app, name)?;
                let refs = berth_engine::named_refs(&image, name);
                out.push((image, refs));
            }
            Ok(out)
        }
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter(tx.clone());
        if let Err(e) = app
            .engine
            .save_images(&images, ArchiveFormat::Docker, &mut w)
        {
            // The body breaks off: the client sees a short archive.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    }));
    Ok(([("Content-Type", "application/x-tar")], body).into_response())
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let names: Vec<String> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v.into_owned())
        .collect();
    if names.is_empty() {
        return Err(ApiError::BadRequest("no image names given".into()));
    }
    save(app, names).await
}

fn scratch(app: &AppState) -> ApiResult<tempfile::TempDir> {
    let base = app.engine.root().join("tmp");
    std::fs::create_dir_all(&base)
        .and_then(|()| tempfile::Builder::new().prefix("load-").tempdir_in(&base))
        .map_err(|e| ApiError::Internal(format!("a scratch directory: {e}")))
}

fn open(path: &std::path::Path) -> ApiResult<std::io::BufReader<std::fs::File>> {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::with_capacity(256 * 1024, f))
        .map_err(|e| ApiError::Internal(format!("open {}: {e}", path.display())))
}

/// `POST /images/load`: an archive body; docker's `{"stream": ...}` lines
/// (`quiet` only silences progress, which a load here has none of).
pub async fn load(State(app): State<AppState>, body: Body) -> ApiResult<Response> {
    let dir = scratch(&app)?;
    let path = dir.path().join("images.tar");
    crate::streams::spool(body, &path, MAX_ARCHIVE, "the image archive").await?;
    let text = blocking(move || {
        let loaded = app.engine.load_images(open(&path)?)?;
        drop(dir);
        let mut lines = String::new();
        for (image, refs) in loaded {
            if refs.is_empty() {
                lines.push_str(
                    &json!({"stream": format!("Loaded image ID: {}\n", image.id)}).to_string(),
                );
                lines.push('\n');
            }
            for r in refs {
                lines.push_str(
                    &json!({"stream": format!("Loaded image: {}\n", r.familiar())}).to_string(),
                );
                lines.push('\n');
            }
        }
        Ok(lines)
    })
    .await?;
    Ok(([("Content-Type", "application/json")], text).into_response())
}

/// `POST /images/create?fromSrc=-&repo=NAME&tag=TAG&message=M&changes=...`:
/// the body is a root filesystem tarball.
pub async fn import(app: AppState, raw: &str, body: Body) -> ApiResult<Response> {
    let mut repo = None;
    let mut tag = None;
    let mut message = None;
    let mut changes = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        match &*k {
            "repo" if !v.is_empty() => repo = Some(v.into_owned()),
            "tag" if !v.is_empty() => tag = Some(v.into_owned()),
            "message" if !v.is_empty() => message = Some(v.into_owned()),
            "changes" if !v.is_empty() => changes.push(v.into_owned()),
            _ => {}
        }
    }
    let reference = match (repo, tag) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (r, _) => r,
    }
    .map(|r| {
        Reference::parse(&r)
            .map_err(|e| ApiError::BadRequest(format!("invalid reference format {r}: {e}")))
    })
    .transpose()?;
    let config = if changes.is_empty() {
        None
    } else {
        let mut config = berth_engine::image::RuntimeConfigJson::new();
        berth_builder::apply_changes(&mut config, &changes)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Some(config)
    };
    let dir = scratch(&app)?;
    let path = dir.path().join("rootfs.tar");
    crate::streams::spool(body, &path, MAX_ARCHIVE, "the tarball").await?;
    let id = blocking(move || {
        let opts = ImportOptions {
            reference,
            message,
            source: "-".into(),
            config,
        };
        let image = app.engine.import_image(open(&path)?, &opts)?;
        drop(dir);
        Ok(image.id.to_string())
    })
    .await?;
    Ok((
        [("Content-Type", "application/json")],
        format!("{}\n", json!({"status": id})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CommitQuery {
    container: String,
    repo: Option<String>,
    tag: Option<String>,
    comment: Option<String>,
    author: Option<String>,
}

/// `POST /commit?container=ID&repo=R&tag=T&comment=C&author=A&changes=...`.
pub async fn commit(
    State(app): State<AppState>,
    Query(q): Query<CommitQuery>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let changes: Vec<String> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, v)| k == "changes" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .collect();
    let reference = match (
        q.repo.filter(|r| !r.is_empty()),
        q.tag.filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (r, _) => r,
    }
    .map(|r| {
        Reference::parse(&r)
            .map_err(|e| ApiError::BadRequest(format!("invalid reference format {r}: {e}")))
    })
    .transpose()?;
    let id = blocking(move || {
        let config = if changes.is_empty() {
            None
        } else {
            let mut config = app.engine.commit_config(&q.container)?;
            berth_builder::apply_changes(&mut config, &changes)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Some(config)
        };
        let req = CommitRequest {
            reference,
            comment: q.comment.filter(|c| !c.is_empty()),
            author: q.author.filter(|a| !a.is_empty()),
            config,
        };
        Ok(app.engine.commit(&q.container, &req)?.id.to_string())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PruneQuery {
    filters: Option<String>,
}

fn dangling_only(q: &PruneQuery) -> ApiResult<bool> {
    let f = crate::models::parse_filters(&q.filters)?;
    Ok(!f
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "false" | "0"))))
}

/// `POST /containers/prune`: every container that is not running.
pub async fn prune_containers(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let mut deleted = Vec::new();
        let mut freed = 0u64;
        for c in app.engine.containers()? {
            if c.state.status.can_remove() {
                let size = app.engine.container_size(&c.id);
                app.engine.remove(&c.id, false, false)?;
                freed += size;
                deleted.push(c.id);
            }
        }
        Ok(Json(
            json!({"ContainersDeleted": deleted, "SpaceReclaimed": freed}),
        ))
    })
    .await
}

/// `POST /images/prune` (`filters={"dangling":["false"]}`: unused ones too).
pub async fn prune_images(
    State(app): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let all = !dangling_only(&q)?;
    blocking(move || {
        let (deleted, freed) = app.engine.prune_images(all)?;
        let rows: Vec<Value> = deleted
            .iter()
            .map(|d| json!({"Deleted": d.to_string()}))
            .collect();
        Ok(Json(
            json!({"ImagesDeleted": rows, "SpaceReclaimed": freed}),
        ))
    })
    .await
}

/// `POST /volumes/prune` (anonymous volumes; `all=true` in filters: every
/// unused one).
pub async fn prune_volumes(
    State(app): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let f = crate::models::parse_filters(&q.filters)?;
    let all = f
        .get("all")
        .is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "true" | "1")));
    blocking(move || {
        let (deleted, freed) = app.engine.volume_prune(all, |_| false)?;
        Ok(Json(
            json!({"VolumesDeleted": deleted, "SpaceReclaimed": freed}),
        ))
    })
    .await
}

/// `POST /networks/prune`: user networks no container uses.
pub async fn prune_networks(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let deleted = app.engine.network_prune()?;
        Ok(Json(json!({"NetworksDeleted": deleted})))
    })
    .await
}

/// `GET /system/df`: what images, containers and volumes hold.
pub async fn df(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let du = app.engine.disk_usage()?;
        let images = app.engine.images();
        let used: Vec<String> = app
            .engine
            .containers()?
            .iter()
            .map(|c| c.image_id.clone())
            .collect();
        let mut image_rows = Vec::new();
        for img in images
            .list()
            .map_err(berth_engine::Error::from)?
            .iter()
            .filter(|i| !i.intermediate)
        {
            let id = img.id.to_string();
            image_rows.push(json!({
                "Id": id,
                "ParentId": "",
                "RepoTags": img.refs.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "RepoDigests": img.repo_digests,
                "Created": unix_time(&img.created),
                "Size": images.size(img),
                "SharedSize": -1,
                "Labels": {},
                "Containers": used.iter().filter(|u| **u == id).count(),
            }));
        }
        let containers: Vec<Value> = app
            .engine
            .containers()?
            .iter()
            .map(|c| {
                json!({
                    "Id": c.id,
                    "Names": [format!("/{}", c.name)],
                    "Image": c.image,
                    "ImageID": c.image_id,
                    "State": c.state.status.as_str(),
                    "SizeRw": app.engine.container_size(&c.id),
                    "Created": unix_time(&c.created),
                })
            })
            .collect();
        let volumes: Vec<Value> = app
            .engine
            .volumes()?
            .iter()
            .map(|v| {
                let mut doc = app.engine.inspect_volume(v);
                let usage = du.volume_usage.get(&v.name).copied().unwrap_or_default();
                doc["UsageData"] = json!({"Size": usage.size, "RefCount": usage.ref_count});
                doc
            })
            .collect();
        Ok(Json(json!({
            "LayersSize": du.images_size,
            "Images": image_rows,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        })))
    })
    .await
}
