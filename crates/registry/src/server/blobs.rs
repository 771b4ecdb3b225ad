//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`: reads stream the file,
//! with single `Range` requests answered 206 (resumed downloads).

use std::io::SeekFrom;

use hyper::header::{HeaderMap, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG};
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::io::AsyncSeekExt;

use super::error::{ApiError, Code};
use super::http::{
    empty, file_body, parse_range, Body, ByteRange, Reply, DOCKER_CONTENT_DIGEST, RANGE,
};
use super::service::{lookup_digest, App};

fn unknown(digest: &str) -> ApiError {
    ApiError::new(Code::BlobUnknown, "blob unknown to registry").detail(json!({ "digest": digest }))
}

pub async fn get(
    app: &App,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let d = lookup_digest(digest)?.ok_or_else(|| unknown(digest))?;
    let (n, d2) = (name.to_string(), d.clone());
    // A blob a client has just looked at is about to be used (a push that
    // skips it, a pull): its time is refreshed so a collection spares it.
    let size = app
        .blocking(move |s| {
            let size = s.blob_size(&n, &d2)?;
            if size.is_some() {
                s.touch_blob(&d2)?;
            }
            Ok(size)
        })
        .await?
        .ok_or_else(|| unknown(digest))?;
    let range = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(ByteRange::Whole, |v| parse_range(v, size));
    let (status, start, len) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        ByteRange::Unsatisfiable => {
            return Err(
                ApiError::new(Code::RangeInvalid, "requested range not satisfiable")
                    .header(CONTENT_RANGE, format!("bytes */{size}")),
            )
        }
    };
    let mut reply = Reply::new(status)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len.to_string())
        .header(DOCKER_CONTENT_DIGEST, d.to_string())
        .header(ACCEPT_RANGES, "bytes")
        .header(ETAG, format!("\"{d}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        reply = reply.header(
            CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    if head {
        return Ok(reply.body(empty()));
    }
    let path = app.storage.blob_path(&d);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("open {}: {e}", path.display())))?;
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal(format!("seek {}: {e}", path.display())))?;
    }
    Ok(reply.body(file_body(file, len)))
}

/// Unlinks the blob from this repository (other repositories keep it).
pub async fn delete(app: &App, name: &str, digest: &str) -> Result<Response<Body>, ApiError> {
    let d = lookup_digest(digest)?.ok_or_else(|| unknown(digest))?;
    let n = name.to_string();
    if app.blocking(move |s| s.unlink_blob(&n, &d)).await? {
        Ok(Reply::new(StatusCode::ACCEPTED).empty())
    } else {
        Err(unknown(digest))
    }
}
