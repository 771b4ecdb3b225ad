//! `/images/...`: the image store, in docker's shapes.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError, ApiResult};
use crate::server::State as AppState;

fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

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
) -> ApiResult<Json<Value>> {
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
    Ok(Json(doc))
}
