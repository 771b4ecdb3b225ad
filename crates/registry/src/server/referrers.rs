//! `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose
//! `subject` is the digest, optionally filtered by `artifactType`.

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::error::ApiError;
use super::http::{Body, Reply, OCI_FILTERS_APPLIED};
use super::manifests::OCI_INDEX;
use super::route::Query;
use super::service::{lookup_digest, App};

pub async fn list(
    app: &App,
    name: &str,
    digest: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    // A subject of an algorithm not stored has no referrers (the spec
    // forbids a 404 here).
    let mut manifests = match lookup_digest(digest)? {
        Some(subject) => {
            let n = name.to_string();
            app.blocking(move |s| s.referrers(&n, &subject)).await?
        }
        None => Vec::new(),
    };
    let filter = query.get("artifactType").filter(|t| !t.is_empty());
    let mut reply = Reply::new(StatusCode::OK);
    if let Some(t) = filter {
        manifests.retain(|m| m["artifactType"].as_str() == Some(t));
        reply = reply.header(OCI_FILTERS_APPLIED, "artifactType");
    }
    manifests.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    let index: Value = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    Ok(reply.json_as(OCI_INDEX, &index))
}
