//! `/containers/{id}/archive` (docker cp): a container path as a tar
//! archive, and a tar archive into a container path. Both go through the
//! engine's confined copy and a private scratch directory under the state
//! root, so nothing of the archive ever lands outside it.

use std::io::Read;
use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::CopyDirection;
use serde::Deserialize;
use serde_json::json;

use crate::error::{blocking, ApiError, ApiResult};
use crate::server::State as AppState;

/// The largest archive taken in.
const MAX_ARCHIVE: u64 = 1 << 30;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ArchiveQuery {
    path: String,
}

fn scratch(app: &AppState) -> ApiResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("archive-")
        .tempdir_in(app.engine.root())
        .map_err(|e| ApiError::Internal(format!("a scratch directory: {e}")))
}

/// The last component of a container path (`/` for the root).
fn base_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("/")
        .to_string()
}

/// docker's `X-Docker-Container-Path-Stat`: the entry's name, size, Go file
/// mode bits, modification time and link target, as base64 JSON.
fn path_stat(name: &str, copy: &FsPath) -> ApiResult<HeaderValue> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(copy)
        .map_err(|e| ApiError::Internal(format!("stat the copy: {e}")))?;
    // Go's os.FileMode: permission bits plus type bits high up.
    let mut mode = m.mode() & 0o777;
    if m.is_dir() {
        mode |= 1 << 31;
    } else if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    let link = std::fs::read_link(copy)
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mtime = chrono::DateTime::from_timestamp(m.mtime(), 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let doc =
        json!({"name": name, "size": m.size(), "mode": mode, "mtime": mtime, "linkTarget": link});
    let encoded = base64::engine::general_purpose::STANDARD.encode(doc.to_string());
    HeaderValue::from_str(&encoded).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Copies the container's `path` into a scratch directory: (scratch, copy).
fn copy_out(app: &AppState, id: &str, path: &str) -> ApiResult<(tempfile::TempDir, PathBuf)> {
    if !path.starts_with('/') {
        return Err(ApiError::BadRequest(format!(
            "the path {path:?} in the container must be absolute"
        )));
    }
    let dir = scratch(app)?;
    let copy = dir.path().join("entry");
    app.engine.copy(
        id,
        CopyDirection::FromContainer {
            src: path,
            dest: &copy,
        },
    )?;
    Ok((dir, copy))
}

pub async fn stat(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let header = blocking(move || {
        let (_dir, copy) = copy_out(&app, &id, &q.path).map_err(not_found)?;
        path_stat(&base_name(&q.path), &copy)
    })
    .await?;
    Ok(([("X-Docker-Container-Path-Stat", header)], StatusCode::OK).into_response())
}

/// A path that is not there is docker's 404.
fn not_found(e: ApiError) -> ApiError {
    match e {
        ApiError::Engine(berth_engine::Error::InvalidArgument(m))
            if m.contains("Could not find") =>
        {
            ApiError::NotFound(m)
        }
        e => e,
    }
}

pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let (header, tar) = blocking(move || {
        let (dir, copy) = copy_out(&app, &id, &q.path).map_err(not_found)?;
        let name = base_name(&q.path);
        let header = path_stat(&name, &copy)?;
        let archive = dir.path().join("archive.tar");
        let file = std::fs::File::create(&archive)
            .map_err(|e| ApiError::Internal(format!("create the archive: {e}")))?;
        let mut b = tar::Builder::new(file);
        b.follow_symlinks(false);
        let done = if copy.is_dir() {
            b.append_dir_all(&name, &copy)
        } else {
            b.append_path_with_name(&copy, &name)
        };
        done.and_then(|()| b.finish())
            .map_err(|e| ApiError::Internal(format!("write the archive: {e}")))?;
        let mut data = Vec::new();
        std::fs::File::open(&archive)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| ApiError::Internal(format!("read the archive: {e}")))?;
        Ok((header, data))
    })
    .await?;
    Ok((
        [
            ("X-Docker-Container-Path-Stat", header),
            (
                "Content-Type",
                HeaderValue::from_static("application/x-tar"),
            ),
        ],
        Body::from(tar),
    )
        .into_response())
}

pub async fn put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> ApiResult<StatusCode> {
    if !q.path.starts_with('/') {
        return Err(ApiError::BadRequest(format!(
            "the path {:?} in the container must be absolute",
            q.path
        )));
    }
    // Spooled to the scratch directory (never held in memory), at most
    // MAX_ARCHIVE bytes.
    let dir = {
        let app = app.clone();
        blocking(move || scratch(&app)).await?
    };
    let spooled = dir.path().join("archive.tar");
    crate::streams::spool(body, &spooled, MAX_ARCHIVE, "the archive").await?;
    blocking(move || {
        let into = dir.path().join("in");
        std::fs::create_dir(&into).map_err(|e| ApiError::Internal(e.to_string()))?;
        let file = std::fs::File::open(&spooled).map_err(|e| ApiError::Internal(e.to_string()))?;
        // The tar crate keeps every entry inside `into` (no `..`, no
        // absolute names, no writing through links).
        tar::Archive::new(std::io::BufReader::new(file))
            .unpack(&into)
            .map_err(|e| ApiError::BadRequest(format!("unpack the archive: {e}")))?;
        let dest = if q.path.ends_with('/') {
            q.path.clone()
        } else {
            format!("{}/", q.path)
        };
        let entries = std::fs::read_dir(&into).map_err(|e| ApiError::Internal(e.to_string()))?;
        for e in entries.flatten() {
            app.engine.copy(
                &id,
                CopyDirection::ToContainer {
                    src: &e.path(),
                    dest: &dest,
                },
            )?;
        }
        Ok(StatusCode::OK)
    })
    .await
}
