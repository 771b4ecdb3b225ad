//! `/v2/<name>/manifests/<reference>`: manifests are stored as the exact
//! bytes pushed, with the media type they were pushed as.

use berth_image::Digest;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::error::{ApiError, Code};
use super::http::{empty, full, read_small, Body, Reply, DOCKER_CONTENT_DIGEST, OCI_SUBJECT};
use super::names::{parse_digest, parse_reference, DigestError, Reference, ReferenceError};
use super::service::App;
use super::storage::NewManifest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest taken (the spec suggests at least 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// What a pushed manifest says, once checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub media_type: String,
    /// Blobs that must be in the repository (config and layers).
    pub blobs: Vec<Digest>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid, msg)
}

fn descriptor_digest(d: &Value, what: &str) -> Result<Digest, ApiError> {
    let raw = d["digest"]
        .as_str()
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    parse_digest(raw).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Checks a manifest's form: a known media type (the `Content-Type`, else
/// the body's `mediaType`; both must agree), schema version 2, and the
/// descriptors its kind requires.
pub fn check(content_type: Option<&str>, bytes: &[u8]) -> Result<Checked, ApiError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let obj: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| invalid("a manifest is a JSON object"))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let body = obj.get("mediaType").and_then(Value::as_str);
    let media_type = match (header, body) {
        (Some(h), Some(b)) if h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )))
        }
        (Some(h), _) => h.to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => return Err(invalid("no media type (Content-Type or mediaType)")),
    };
    if obj.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(invalid("only schemaVersion 2 manifests are supported"));
    }
    let mut blobs = Vec::new();
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            blobs.push(descriptor_digest(&v["config"], "config")?);
            let layers = v["layers"]
                .as_array()
                .ok_or_else(|| invalid("an image manifest has layers"))?;
            for (i, layer) in layers.iter().enumerate() {
                let d = descriptor_digest(layer, &format!("layer {i}"))?;
                // Foreign (non-distributable) layers live elsewhere.
                if layer["urls"].as_array().is_none_or(|u| u.is_empty()) {
                    blobs.push(d);
                }
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            let manifests = v["manifests"]
                .as_array()
                .ok_or_else(|| invalid("an index has manifests"))?;
            for (i, m) in manifests.iter().enumerate() {
                descriptor_digest(m, &format!("manifest {i}"))?;
            }
        }
        other => return Err(invalid(format!("unsupported manifest media type {other}"))),
    }
    let subject = match obj.get("subject") {
        None | Some(Value::Null) => None,
        Some(s) => Some(descriptor_digest(s, "subject")?),
    };
    let artifact_type = obj
        .get("artifactType")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| {
            (media_type == OCI_MANIFEST)
                .then(|| v["config"]["mediaType"].as_str().map(String::from))
                .flatten()
        });
    Ok(Checked {
        media_type,
        blobs,
        subject,
        artifact_type,
        annotations: obj.get("annotations").filter(|a| a.is_object()).cloned(),
    })
}

fn reference(raw: &str) -> Result<Reference, ApiError> {
    parse_reference(raw).map_err(|e| match e {
        ReferenceError::Tag(t) => {
            ApiError::new(Code::TagInvalid, format!("invalid tag {t:?}")).detail(json!({"tag": t}))
        }
        ReferenceError::Digest(e) => {
            ApiError::new(Code::DigestInvalid, e.to_string()).detail(json!({"digest": raw}))
        }
    })
}

/// A reference something is looked up by: None for a digest of an algorithm
/// the registry does not store (nothing can exist under it: 404).
fn lookup_reference(raw: &str) -> Result<Option<Reference>, ApiError> {
    match parse_reference(raw) {
        Err(ReferenceError::Digest(DigestError::Unsupported(_))) => Ok(None),
        _ => reference(raw).map(Some),
    }
}

fn unknown(name: &str, reference: &str) -> ApiError {
    ApiError::new(Code::ManifestUnknown, "manifest unknown to registry")
        .detail(json!({"name": name, "reference": reference}))
}

pub async fn put(
    app: &App,
    name: &str,
    raw_ref: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let reference = reference(raw_ref)?;
    let bytes = read_small(body, MAX_MANIFEST).await?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let checked = check(content_type, &bytes)?;
    // Pushed by digest: hashed with that digest's algorithm; by tag: sha256.
    let alg = match &reference {
        Reference::Digest(d) => d.algorithm(),
        Reference::Tag(_) => Default::default(),
    };
    let digest = Digest::of_as(alg, &bytes);
    if let Reference::Digest(d) = &reference {
        if d != &digest {
            return Err(ApiError::new(
                Code::DigestInvalid,
                "the manifest's digest does not match the reference",
            )
            .detail(json!({"reference": d.to_string(), "actual": digest.to_string()})));
        }
    }
    let referrer = checked.subject.clone().map(|subject| {
        let mut desc = json!({
            "mediaType": checked.media_type,
            "digest": digest.to_string(),
            "size": bytes.len(),
        });
        if let Some(t) = &checked.artifact_type {
            desc["artifactType"] = json!(t);
        }
        if let Some(a) = &checked.annotations {
            desc["annotations"] = a.clone();
        }
        (subject, desc)
    });
    let manifest = NewManifest {
        digest: digest.clone(),
        media_type: checked.media_type,
        bytes,
        tag: match reference {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        },
        referrer,
    };
    // The check and the write in one step under the storage lock, so a
    // collection cannot remove a blob between them.
    let (n, wanted) = (name.to_string(), checked.blobs);
    let missing = app
        .blocking(move |s| {
            for d in wanted {
                if !s.has_blob(&n, &d)? {
                    return Ok(Some(d));
                }
            }
            s.put_manifest(&n, &manifest)?;
            Ok(None)
        })
        .await?;
    if let Some(d) = missing {
        return Err(ApiError::new(
            Code::ManifestBlobUnknown,
            "manifest references an unknown blob",
        )
        .detail(json!({"digest": d.to_string()})));
    }
    let mut reply = Reply::new(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header(DOCKER_CONTENT_DIGEST, digest.to_string());
    if let Some(subject) = checked.subject {
        reply = reply.header(OCI_SUBJECT, subject.to_string());
    }
    Ok(reply.empty())
}

/// The digest a reference names in the repository.
async fn resolve(app: &App, name: &str, raw_ref: &str) -> Result<Digest, ApiError> {
    match lookup_reference(raw_ref)?.ok_or_else(|| unknown(name, raw_ref))? {
        Reference::Digest(d) => Ok(d),
        Reference::Tag(t) => {
            let n = name.to_string();
            let found = app.blocking(move |s| s.resolve_tag(&n, &t)).await?;
            match found {
                Some(d) => Ok(d),
                None => {
                    let n = name.to_string();
                    if app.blocking(move |s| Ok(s.repo_exists(&n))).await? {
                        Err(unknown(name, raw_ref))
                    } else {
                        Err(ApiError::new(
                            Code::NameUnknown,
                            "repository name not known to registry",
                        )
                        .detail(json!({"name": name})))
                    }
                }
            }
        }
    }
}

pub async fn get(
    app: &App,
    name: &str,
    raw_ref: &str,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let d = resolve(app, name, raw_ref).await?;
    let (n, d2) = (name.to_string(), d.clone());
    let m = app
        .blocking(move |s| s.manifest(&n, &d2))
        .await?
        .ok_or_else(|| unknown(name, raw_ref))?;
    let reply = Reply::new(StatusCode::OK)
        .header(CONTENT_TYPE, &m.media_type)
        .header(CONTENT_LENGTH, m.bytes.len().to_string())
        .header(DOCKER_CONTENT_DIGEST, d.to_string())
        .header(ETAG, format!("\"{d}\""));
    Ok(reply.body(if head { empty() } else { full(m.bytes) }))
}

/// By digest: unlinks the manifest and its tags. By tag: removes the tag.
pub async fn delete(app: &App, name: &str, raw_ref: &str) -> Result<Response<Body>, ApiError> {
    let n = name.to_string();
    let deleted = match lookup_reference(raw_ref)?.ok_or_else(|| unknown(name, raw_ref))? {
        Reference::Digest(d) => app.blocking(move |s| s.delete_manifest(&n, &d)).await?,
        Reference::Tag(t) => app.blocking(move |s| s.delete_tag(&n, &t)).await?,
    };
    if deleted {
        Ok(Reply::new(StatusCode::ACCEPTED).empty())
    } else {
        Err(unknown(name, raw_ref))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifests_list_their_blobs() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d('a'), "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d('b'), "size": 3},
                {"mediaType": "x", "digest": d('c'), "size": 3, "urls": ["https://elsewhere"]}
            ]
        });
        let c = check(Some(OCI_MANIFEST), m.to_string().as_bytes()).unwrap();
        assert_eq!(c.media_type, OCI_MANIFEST);
        assert_eq!(c.blobs.len(), 2, "foreign layers are not required");
        assert_eq!(
            c.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert_eq!(c.subject, None);
        // The media type may come from the body alone.
        assert!(check(None, m.to_string().as_bytes()).is_ok());
        // But a contradicting Content-Type is refused.
        assert!(check(Some(DOCKER_MANIFEST), m.to_string().as_bytes()).is_err());
    }

    #[test]
    fn docker_manifests_and_indexes() {
        let m = json!({
            "schemaVersion": 2,
            "config": {"digest": d('a')},
            "layers": []
        });
        let c = check(
            Some(&format!("{DOCKER_MANIFEST}; charset=utf-8")),
            m.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(c.media_type, DOCKER_MANIFEST);
        let idx = json!({"schemaVersion": 2, "manifests": [{"digest": d('e')}],
            "subject": {"digest": d('f')}, "artifactType": "application/x.sig",
            "annotations": {"k": "v"}});
        let c = check(Some(OCI_INDEX), idx.to_string().as_bytes()).unwrap();
        assert!(c.blobs.is_empty());
        assert_eq!(c.subject.unwrap().to_string(), d('f'));
        assert_eq!(c.artifact_type.as_deref(), Some("application/x.sig"));
        assert_eq!(c.annotations, Some(json!({"k": "v"})));
    }

    #[test]
    fn bad_manifests() {
        let cases: Vec<(Option<&str>, String)> = vec![
            (Some(OCI_MANIFEST), "not json".into()),
            (Some(OCI_MANIFEST), "[]".into()),
            (None, json!({"schemaVersion": 2}).to_string()),
            (
                Some(OCI_MANIFEST),
                json!({"schemaVersion": 1, "config": {"digest": d('a')}, "layers": []}).to_string(),
            ),
            (
                Some(OCI_MANIFEST),
                json!({"schemaVersion": 2, "layers": []}).to_string(),
            ),
            (
                Some(OCI_MANIFEST),
                json!({"schemaVersion": 2, "config": {"digest": "sha256:short"}, "layers": []})
                    .to_string(),
            ),
            (Some(OCI_INDEX), json!({"schemaVersion": 2}).to_string()),
            (Some("text/plain"), json!({"schemaVersion": 2}).to_string()),
        ];
        for (ct, body) in cases {
            let e = check(ct, body.as_bytes()).unwrap_err();
            assert_eq!(e.code, Code::ManifestInvalid, "{body}");
        }
    }
}
