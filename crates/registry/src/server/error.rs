//! The distribution spec's error form: `{"errors":[{"code","message","detail"}]}`
//! with the status code each error code maps to, in one place.

use hyper::header::HeaderName;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::http::{Body, Reply};

/// The error codes of the distribution spec (plus the few Docker's registry
/// adds), each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Unsupported,
    RangeInvalid,
    PaginationNumberInvalid,
    NotFound,
    Unknown,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Unsupported => "UNSUPPORTED",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::NotFound => "NOT_FOUND",
            Code::Unknown => "UNKNOWN",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown
            | Code::NotFound => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::TagInvalid
            | Code::PaginationNumberInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub status: StatusCode,
    pub message: String,
    pub detail: Option<Value>,
    /// Extra headers: a challenge for 401, `Range` for 416.
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: code.status(),
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn detail(mut self, detail: Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// A server-side failure: logged in full, answered as 500 UNKNOWN.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        tracing::error!("registry: {err}");
        ApiError::new(Code::Unknown, "internal server error")
    }

    pub fn body(&self) -> Value {
        let mut e = json!({"code": self.code.as_str(), "message": self.message});
        if let Some(d) = &self.detail {
            e["detail"] = d.clone();
        }
        json!({ "errors": [e] })
    }

    pub fn into_response(self) -> Response<Body> {
        let body = self.body();
        let mut reply = Reply::new(self.status);
        for (name, value) in self.headers {
            reply = reply.header(name, value);
        }
        reply.json(&body)
    }
}

impl From<super::storage::StorageError> for ApiError {
    fn from(e: super::storage::StorageError) -> ApiError {
        ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_spec_shape() {
        let e = ApiError::new(Code::BlobUnknown, "blob unknown to registry")
            .detail(json!({"digest": "sha256:00"}));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(
            e.body(),
            json!({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry",
                "detail": {"digest": "sha256:00"}}]})
        );
    }

    #[test]
    fn statuses_follow_the_spec() {
        assert_eq!(Code::ManifestBlobUnknown.status(), StatusCode::BAD_REQUEST);
        assert_eq!(Code::Unsupported.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            Code::RangeInvalid.status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(Code::Unauthorized.status(), StatusCode::UNAUTHORIZED);
    }
}
