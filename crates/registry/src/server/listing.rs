//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated.

use hyper::header::LINK;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::error::{ApiError, Code};
use super::http::{Body, Reply};
use super::pagination::{link, paginate, params};
use super::route::Query;
use super::service::App;

pub async fn tags(app: &App, name: &str, query: &Query) -> Result<Response<Body>, ApiError> {
    let (n, last) = params(query)?;
    let repo = name.to_string();
    let tags = app.blocking(move |s| s.tags(&repo)).await?.ok_or_else(|| {
        ApiError::new(Code::NameUnknown, "repository name not known to registry")
            .detail(json!({ "name": name }))
    })?;
    let page = paginate(tags, n, last.as_deref());
    let mut reply = Reply::new(StatusCode::OK);
    if let (Some(next), Some(n)) = (&page.next, n) {
        reply = reply.header(LINK, link(&format!("/v2/{name}/tags/list"), n, next));
    }
    Ok(reply.json(&json!({ "name": name, "tags": page.items })))
}

pub async fn catalog(app: &App, query: &Query) -> Result<Response<Body>, ApiError> {
    let (n, last) = params(query)?;
    let repos = app.blocking(|s| s.repositories()).await?;
    let page = paginate(repos, n, last.as_deref());
    let mut reply = Reply::new(StatusCode::OK);
    if let (Some(next), Some(n)) = (&page.next, n) {
        reply = reply.header(LINK, link("/v2/_catalog", n, next));
    }
    Ok(reply.json(&json!({ "repositories": page.items })))
}
