//! One request: its route, its authentication, the handler, and a debug log
//! line. Handlers live in one file per resource (blobs, uploads, manifests,
//! listing, referrers).

use std::sync::Arc;
use std::time::Instant;

use berth_image::Digest;
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::error::{ApiError, Code};
use super::gate::{Gate, Grant, Need};
use super::http::{Body, Reply};
use super::names::{parse_digest, valid_name, DigestError};
use super::route::{parse_path, Query, Route};
use super::storage::{Storage, StorageError};
use super::uploads::Uploads;
use super::{blob_uploads, blobs, listing, manifests, referrers};

/// The registry: shared by every connection.
pub struct App {
    pub storage: Storage,
    pub uploads: Uploads,
    /// None: no authentication.
    pub gate: Option<Gate>,
}

impl App {
    pub fn new(storage: Storage, gate: Option<Gate>) -> App {
        App {
            uploads: Uploads::new(&storage),
            storage,
            gate,
        }
    }

    /// Runs blocking storage work on tokio's blocking pool, under the shared
    /// storage lock (a collection, which takes it exclusively, never sees
    /// half a step).
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || {
            let _shared = storage.lock(false)?;
            f(&storage)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
    }

    /// Answers one request; never fails (errors become spec error bodies).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, scheme: &str) -> Response<Body> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let resp = self
            .dispatch(req, scheme)
            .await
            .unwrap_or_else(ApiError::into_response);
        tracing::debug!(
            %method,
            %path,
            status = resp.status().as_u16(),
            elapsed_ms = start.elapsed().as_millis() as u64,
            "registry request"
        );
        resp
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        scheme: &str,
    ) -> Result<Response<Body>, ApiError> {
        let (parts, body) = req.into_parts();
        let route = parse_path(parts.uri.path())
            .ok_or_else(|| ApiError::new(Code::NotFound, "no such endpoint"))?;
        let query = Query::parse(parts.uri.query().unwrap_or(""));
        let m = &parts.method;
        if route == Route::Token {
            return match &self.gate {
                Some(gate) => gate.token(m, &parts.headers, &query, body).await,
                None => Err(ApiError::new(Code::NotFound, "no token endpoint")),
            };
        }
        if let Some(name) = route.name() {
            if !valid_name(name) {
                return Err(ApiError::new(
                    Code::NameInvalid,
                    format!("invalid repository name {name:?}"),
                )
                .detail(json!({ "name": name })));
            }
        }
        let grant = match &self.gate {
            None => Grant::All,
            Some(gate) => {
                let host = parts
                    .headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                    .unwrap_or("");
                gate.check(&parts.headers, &need(m, &route), host, scheme)
                    .await?
            }
        };
        let head = m == Method::HEAD;
        let h = &parts.headers;
        match (m, route) {
            (&Method::GET | &Method::HEAD, Route::Base) => {
                Ok(Reply::new(StatusCode::OK).json(&json!({})))
            }
            (&Method::GET, Route::Catalog) => listing::catalog(self, &query).await,
            (&Method::GET, Route::Tags { name }) => listing::tags(self, &name, &query).await,
            (&Method::GET | &Method::HEAD, Route::Manifest { name, reference }) => {
                manifests::get(self, &name, &reference, head).await
            }
            (&Method::PUT, Route::Manifest { name, reference }) => {
                manifests::put(self, &name, &reference, h, body).await
            }
            (&Method::DELETE, Route::Manifest { name, reference }) => {
                manifests::delete(self, &name, &reference).await
            }
            (&Method::GET | &Method::HEAD, Route::Blob { name, digest }) => {
                blobs::get(self, &name, &digest, h, head).await
            }
            (&Method::DELETE, Route::Blob { name, digest }) => {
                blobs::delete(self, &name, &digest).await
            }
            (&Method::POST, Route::UploadStart { name }) => {
                blob_uploads::start(self, &name, &query, &grant, body).await
            }
            (&Method::GET, Route::Upload { name, id }) => {
                blob_uploads::status(self, &name, &id).await
            }
            (&Method::PATCH, Route::Upload { name, id }) => {
                blob_uploads::patch(self, &name, &id, h, body).await
            }
            (&Method::PUT, Route::Upload { name, id }) => {
                blob_uploads::put(self, &name, &id, &query, h, body).await
            }
            (&Method::DELETE, Route::Upload { name, id }) => {
                blob_uploads::cancel(self, &name, &id).await
            }
            (&Method::GET, Route::Referrers { name, digest }) => {
                referrers::list(self, &name, &digest, &query).await
            }
            (m, _) => Err(ApiError::new(
                Code::Unsupported,
                format!("{m} is not supported here"),
            )),
        }
    }
}

/// What a request needs to be allowed: reads pull, writes pull and push.
fn need(method: &Method, route: &Route) -> Need {
    match (route, route.name()) {
        (Route::Catalog, _) => Need::Catalog,
        (_, Some(name)) => Need::Repo {
            name: name.to_string(),
            push: !matches!(*method, Method::GET | Method::HEAD)
                || matches!(route, Route::Upload { .. }),
        },
        _ => Need::Any,
    }
}

fn invalid_digest(s: &str, e: DigestError) -> ApiError {
    ApiError::new(Code::DigestInvalid, e.to_string()).detail(json!({ "digest": s }))
}

/// A digest something is pushed under, or 400 DIGEST_INVALID (malformed or
/// of an algorithm the registry does not compute).
pub fn digest_arg(s: &str) -> Result<Digest, ApiError> {
    parse_digest(s).map_err(|e| invalid_digest(s, e))
}

/// A digest something is looked up by: None when its algorithm is not one
/// the registry stores, so nothing can exist under it (the caller answers
/// 404); 400 DIGEST_INVALID only when it is malformed.
pub fn lookup_digest(s: &str) -> Result<Option<Digest>, ApiError> {
    match parse_digest(s) {
        Ok(d) => Ok(Some(d)),
        Err(DigestError::Unsupported(_)) => Ok(None),
        Err(e) => Err(invalid_digest(s, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pull_writes_push() {
        let blob = Route::Blob {
            name: "a".into(),
            digest: "d".into(),
        };
        assert_eq!(
            need(&Method::GET, &blob),
            Need::Repo {
                name: "a".into(),
                push: false
            }
        );
        assert_eq!(
            need(&Method::DELETE, &blob),
            Need::Repo {
                name: "a".into(),
                push: true
            }
        );
        let upload = Route::Upload {
            name: "a".into(),
            id: "i".into(),
        };
        assert!(matches!(
            need(&Method::GET, &upload),
            Need::Repo { push: true, .. }
        ));
        assert_eq!(need(&Method::GET, &Route::Catalog), Need::Catalog);
        assert_eq!(need(&Method::GET, &Route::Base), Need::Any);
    }
}
