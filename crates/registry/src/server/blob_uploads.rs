//! `/v2/<name>/blobs/uploads/`: monolithic, chunked and streamed uploads,
//! cross-repository mounts, status and cancel.

use std::sync::Arc;

use berth_image::Digest;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, LOCATION};
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::Mutex;

use super::error::{ApiError, Code};
use super::gate::Grant;
use super::http::{
    parse_content_range, upload_range, Body, Reply, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID,
    RANGE,
};
use super::names::valid_name;
use super::route::Query;
use super::service::{digest_arg, lookup_digest, App};
use super::uploads::{AppendError, FinishError, Session};

fn location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn progress(status: StatusCode, name: &str, s: &Session) -> Response<Body> {
    Reply::new(status)
        .header(LOCATION, location(name, &s.id))
        .header(RANGE, upload_range(s.size()))
        .header(DOCKER_UPLOAD_UUID, &s.id)
        .empty()
}

fn created(name: &str, d: &Digest) -> Response<Body> {
    Reply::new(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{name}/blobs/{d}"))
        .header(DOCKER_CONTENT_DIGEST, d.to_string())
        .empty()
}

fn unknown_upload(id: &str) -> ApiError {
    ApiError::new(Code::BlobUploadUnknown, "blob upload unknown to registry")
        .detail(json!({ "uuid": id }))
}

fn append_error(e: AppendError) -> ApiError {
    match e {
        AppendError::Body(msg) => ApiError::new(Code::BlobUploadInvalid, msg),
        AppendError::Storage(e) => ApiError::internal(e),
    }
}

fn finish_error(e: FinishError) -> ApiError {
    match e {
        FinishError::Mismatch { expected, actual } => ApiError::new(
            Code::DigestInvalid,
            "provided digest did not match uploaded content",
        )
        .detail(json!({ "expected": expected.to_string(), "actual": actual.to_string() })),
        FinishError::Storage(e) => ApiError::internal(e),
    }
}

/// Refuses a chunk that does not start where the upload ends (416), or
/// whose `Content-Range` and `Content-Length` disagree.
fn check_chunk(name: &str, s: &Session, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_RANGE) else {
        return Ok(());
    };
    let out_of_order = |msg: &str| {
        ApiError::new(Code::RangeInvalid, msg)
            .header(LOCATION, location(name, &s.id))
            .header(RANGE, upload_range(s.size()))
            .header(DOCKER_UPLOAD_UUID, &s.id)
    };
    let Some((start, end)) = value.to_str().ok().and_then(parse_content_range) else {
        return Err(out_of_order("invalid Content-Range"));
    };
    if start != s.size() {
        return Err(out_of_order(&format!(
            "chunk starts at {start}, the upload has {} bytes",
            s.size()
        )));
    }
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = length {
        if length != end - start + 1 {
            return Err(out_of_order(&format!(
                "Content-Range {start}-{end} does not match Content-Length {length}"
            )));
        }
    }
    Ok(())
}

/// An upload of this repository, locked; 404 if unknown or finished.
async fn session(app: &App, name: &str, id: &str) -> Result<Arc<Mutex<Session>>, ApiError> {
    app.uploads
        .get(name, id)
        .await?
        .ok_or_else(|| unknown_upload(id))
}

/// `POST`: a mount, a monolithic upload (`?digest=` with the body), or a new
/// session.
pub async fn start(
    app: &App,
    name: &str,
    query: &Query,
    grant: &Grant,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    if let Some(mount) = query.get("mount") {
        // A digest of an algorithm not stored cannot be mounted: the client
        // gets a session (and is refused when it closes it).
        let d = lookup_digest(mount)?;
        if let (Some(d), Some(from)) = (d, query.get("from").filter(|f| valid_name(f))) {
            if grant.may_pull(from) {
                let (f, n, d2) = (from.to_string(), name.to_string(), d.clone());
                let mounted = app
                    .blocking(move |s| {
                        if s.has_blob(&f, &d2)? {
                            s.link_blob(&n, &d2)?;
                            s.touch_blob(&d2)?;
                            Ok(true)
                        } else {
                            Ok(false)
                        }
                    })
                    .await?;
                if mounted {
                    return Ok(created(name, &d));
                }
            }
        }
        // Not mountable: the client uploads instead.
        let session = app.uploads.create(name).await?;
        let s = session.lock().await;
        return Ok(progress(StatusCode::ACCEPTED, name, &s));
    }
    let digest = query.get("digest").map(digest_arg).transpose()?;
    let session = app.uploads.create(name).await?;
    let mut s = session.lock().await;
    let Some(d) = digest else {
        return Ok(progress(StatusCode::ACCEPTED, name, &s));
    };
    let result = async {
        s.append(body).await.map_err(append_error)?;
        s.finish(&app.storage, &d).await.map_err(finish_error)
    }
    .await;
    if result.is_err() && !s.done {
        let _ = s.cancel().await;
    }
    app.uploads.forget(&s.id);
    result.map(|()| created(name, &d))
}

/// `GET`: how much has been received.
pub async fn status(app: &App, name: &str, id: &str) -> Result<Response<Body>, ApiError> {
    let session = session(app, name, id).await?;
    let s = session.lock().await;
    if s.done {
        return Err(unknown_upload(id));
    }
    Ok(progress(StatusCode::NO_CONTENT, name, &s))
}

/// `PATCH`: one chunk (with `Content-Range`) or a stream (without).
pub async fn patch(
    app: &App,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let session = session(app, name, id).await?;
    let mut s = session.lock().await;
    if s.done {
        return Err(unknown_upload(id));
    }
    check_chunk(name, &s, headers)?;
    s.append(body).await.map_err(append_error)?;
    Ok(progress(StatusCode::ACCEPTED, name, &s))
}

/// `PUT ?digest=`: the last chunk (optional), verified against the digest.
/// The upload ends here either way: stored, or refused and removed.
pub async fn put(
    app: &App,
    name: &str,
    id: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let session = session(app, name, id).await?;
    let mut s = session.lock().await;
    if s.done {
        return Err(unknown_upload(id));
    }
    let result = close(app, name, &mut s, query, headers, body).await;
    if !s.done {
        if let Err(e) = s.cancel().await {
            tracing::warn!("registry: removing refused upload {id}: {e}");
        }
    }
    app.uploads.forget(id);
    result
}

async fn close(
    app: &App,
    name: &str,
    s: &mut Session,
    query: &Query,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let raw = query
        .get("digest")
        .ok_or_else(|| ApiError::new(Code::DigestInvalid, "the digest parameter is required"))?;
    let d = digest_arg(raw)?;
    check_chunk(name, s, headers)?;
    s.append(body).await.map_err(append_error)?;
    s.finish(&app.storage, &d).await.map_err(finish_error)?;
    Ok(created(name, &d))
}

/// `DELETE`: drop the upload.
pub async fn cancel(app: &App, name: &str, id: &str) -> Result<Response<Body>, ApiError> {
    let session = session(app, name, id).await?;
    let mut s = session.lock().await;
    if s.done {
        return Err(unknown_upload(id));
    }
    s.cancel().await?;
    app.uploads.forget(id);
    Ok(Reply::new(StatusCode::NO_CONTENT).empty())
}
