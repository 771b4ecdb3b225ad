//! `/images/...`: the image store, in docker's shapes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::image::Reference;
use berth_engine::registry::client::{Credentials, Progress, Status};
use berth_engine::Removed;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError, ApiResult};
use crate::models::{truthy, unix_time};
use crate::server::State as AppState;

pub async fn list(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = blocking(move || {
        let images = app.engine.images();
        let mut out = Vec::new();
        let all = images.list().map_err(berth_engine::Error::from)?;
        for img in all.iter().filter(|i| !i.intermediate) {
            let tags: Vec<String> = img.refs.iter().map(|r| r.to_string()).collect();
            out.push(json!({
                "Id": img.id.to_string(),
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": img.repo_digests,
                "Created": unix_time(&img.created),
                "Size": images.size(img),
                "SharedSize": -1,
                "VirtualSize": images.size(img),
                "Labels": {},
                "Containers": -1,
            }));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(Value::Array(rows)))
}

/// `GET /images/{name}/json` (names have slashes: the route takes the rest).
pub async fn inspect_or_history(
    State(app): State<AppState>,
    Path(path): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/history") {
        let name = name.to_string();
        let doc = blocking(move || crate::image_io::history(&app, &name)).await?;
        return Ok(Json(doc).into_response());
    }
    if let Some(name) = path.strip_suffix("/get") {
        return crate::image_io::save(app, vec![name.to_string()]).await;
    }
    let Some(name) = path.strip_suffix("/json") else {
        return Err(ApiError::NotFound(format!(
            "page not found: /images/{path}"
        )));
    };
    let name = name.to_string();
    let doc = blocking(move || {
        let img = app
            .engine
            .images()
            .resolve(&name)
            .map_err(|_| ApiError::NotFound(format!("No such image: {name}")))?;
        Ok(app.engine.inspect_image(&img)?)
    })
    .await?;
    Ok(Json(doc).into_response())
}

/// Pull progress as docker's JSON lines. Unbounded: the registry client
/// reports from its own runtime's tasks, where nothing may block.
struct JsonProgress(tokio::sync::mpsc::UnboundedSender<Result<Bytes, std::io::Error>>);

impl JsonProgress {
    fn send(&self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        let _ = self.0.send(Ok(Bytes::from(line)));
    }
}

impl Progress for JsonProgress {
    fn layer(&self, id: &str, status: Status) {
        let (text, detail) = match status {
            Status::Waiting => ("Waiting".to_string(), Value::Null),
            Status::Downloading { done, total } => (
                "Downloading".to_string(),
                json!({"current": done, "total": total}),
            ),
            Status::Retrying { attempt } => {
                (format!("Retrying in 1 second ({attempt})"), Value::Null)
            }
            Status::DownloadComplete => ("Download complete".to_string(), Value::Null),
            Status::PullComplete => ("Pull complete".to_string(), Value::Null),
            Status::AlreadyExists => ("Already exists".to_string(), Value::Null),
            other => (format!("{other:?}"), Value::Null),
        };
        self.send(json!({"status": text, "id": id, "progressDetail": detail}));
    }

    fn message(&self, line: &str) {
        self.send(json!({"status": line}));
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateQuery {
    #[serde(rename = "fromImage")]
    from_image: Option<String>,
    #[serde(rename = "fromSrc")]
    from_src: Option<String>,
    tag: Option<String>,
}

/// `POST /images/create?fromImage=NAME&tag=TAG`: a pull, its progress as
/// docker's JSON lines (an error after the first line is a line too).
pub async fn create(
    State(app): State<AppState>,
    Query(q): Query<CreateQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let creds = registry_auth(&headers)?;
    if q.from_src.as_deref() == Some("-") {
        return crate::image_io::import(app, raw.as_deref().unwrap_or(""), body).await;
    }
    let Some(image) = q.from_image.filter(|i| !i.is_empty()) else {
        return Err(ApiError::BadRequest(
            "give fromImage (a pull) or fromSrc=- (an import of the body)".into(),
        ));
    };
    let name = match q.tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") || t.starts_with("sha512:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    let progress = Arc::new(JsonProgress(tx));
    // A thread of its own, outside the server's runtime: the registry
    // client runs a runtime of its own, which cannot start inside another.
    std::thread::spawn(move || {
        let out = progress.clone();
        match app.engine.pull_as(&name, creds, progress) {
            Ok(p) => {
                out.send(json!({"status": format!("Digest: {}", p.digest)}));
                let what = if p.downloaded {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                out.send(json!({"status": format!("Status: {what} {name}")}));
            }
            Err(e) => {
                out.send(json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}))
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    }));
    Ok(([("Content-Type", "application/json")], body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TagQuery {
    repo: String,
    tag: Option<String>,
}

/// `POST /images/{name}/tag` and `DELETE /images/{name}` (names have
/// slashes: the route takes the rest of the path).
pub async fn tag_or_push(
    State(app): State<AppState>,
    Path(path): Path<String>,
    Query(q): Query<TagQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/push") {
        let creds = registry_auth(&headers)?;
        return Ok(push(app, name, q.tag, creds));
    }
    tag(app, &path, q).await.map(IntoResponse::into_response)
}

async fn tag(app: AppState, path: &str, q: TagQuery) -> ApiResult<StatusCode> {
    let Some(name) = path.strip_suffix("/tag").map(str::to_string) else {
        return Err(ApiError::NotFound(format!(
            "page not found: /images/{path}"
        )));
    };
    let target = match q.tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{}:{t}", q.repo),
        None => q.repo,
    };
    blocking(move || {
        let img = app
            .engine
            .images()
            .resolve(&name)
            .map_err(|_| ApiError::NotFound(format!("No such image: {name}")))?;
        let reference = Reference::parse(&target)
            .map_err(|e| ApiError::BadRequest(format!("invalid reference {target}: {e}")))?;
        app.engine.tag_image(&img.id, &reference)?;
        Ok(StatusCode::CREATED)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveQuery {
    force: Option<String>,
}

pub async fn remove(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Json<Value>> {
    let force = truthy(&q.force);
    let removed = blocking(move || Ok(app.engine.remove_image(&name, force)?)).await?;
    let rows: Vec<Value> = removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => json!({"Untagged": t}),
            Removed::Deleted(d) => json!({"Deleted": d.to_string()}),
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

/// The credentials of `X-Registry-Auth` (base64url of docker's JSON
/// `{"username", "password", "serveraddress"}`); none if absent or empty.
fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<Credentials>> {
    Ok(auth_header::<AuthBody>(headers, "X-Registry-Auth")?.and_then(|a| a.credentials()))
}

/// A header of base64url JSON (docker's `X-Registry-Auth` and
/// `X-Registry-Config`); none if absent or empty.
pub(crate) fn auth_header<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    name: &str,
) -> ApiResult<Option<T>> {
    let Some(raw) = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    use base64::Engine as _;
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
    ];
    let json = engines
        .iter()
        .find_map(|e| e.decode(raw).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("invalid {name} header")))?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("invalid {name} header: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuthBody {
    username: String,
    password: String,
    serveraddress: String,
    /// base64 of `user:password`, as docker's config file keeps it.
    auth: String,
}

impl AuthBody {
    pub(crate) fn credentials(&self) -> Option<Credentials> {
        if !self.username.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
            });
        }
        use base64::Engine as _;
        let pair = base64::engine::general_purpose::STANDARD
            .decode(&self.auth)
            .ok()?;
        let pair = String::from_utf8(pair).ok()?;
        let (user, password) = pair.split_once(':')?;
        Some(Credentials {
            username: user.to_string(),
            password: password.to_string(),
        })
    }
}

/// `POST /images/{name}/push?tag=T`: progress as docker's JSON lines.
fn push(app: AppState, name: &str, tag: Option<String>, creds: Option<Credentials>) -> Response {
    let name = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    let progress = Arc::new(JsonProgress(tx));
    // Its own thread: the registry client runs a runtime of its own.
    std::thread::spawn(move || {
        let out = progress.clone();
        match app.engine.push_as(&name, creds, progress) {
            Ok(p) => {
                let tag = name
                    .rsplit_once(':')
                    .map_or("latest", |(_, t)| t)
                    .to_string();
                out.send(
                    json!({"status": format!("{tag}: digest: {} size: {}", p.digest, p.size)}),
                );
                out.send(json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": p.digest.to_string(), "Size": p.size}}));
            }
            Err(e) => {
                out.send(json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}))
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    }));
    ([("Content-Type", "application/json")], body).into_response()
}

/// `POST /auth`: checks credentials against the registry; the client keeps
/// them, the daemon stores nothing.
pub async fn auth(State(app): State<AppState>, Json(b): Json<AuthBody>) -> ApiResult<Json<Value>> {
    let Some(creds) = b.credentials() else {
        return Err(ApiError::BadRequest("no username given".into()));
    };
    let registry = b
        .serveraddress
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // Its own thread (the registry client runs a runtime of its own), awaited.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(app.engine.verify_login(&registry, &creds));
    });
    rx.await
        .map_err(|_| ApiError::Internal("the login check failed".into()))?
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    Ok(Json(
        json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}
