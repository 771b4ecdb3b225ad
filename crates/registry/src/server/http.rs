//! Response building, bodies, and the byte-range headers of blob reads and
//! chunked uploads.

use std::io;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::io::AsyncReadExt;

use super::error::{ApiError, Code};

/// Every response body: small ones in memory, blobs streamed from files.
pub type Body = BoxBody<Bytes, io::Error>;

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const DOCKER_API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
pub const RANGE: HeaderName = HeaderName::from_static("range");

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// `len` bytes of `file` from its current position, read in 64 KiB chunks.
pub fn file_body(file: tokio::fs::File, len: u64) -> Body {
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024);
    StreamBody::new(stream.map_ok(Frame::data)).boxed()
}

/// A response under construction; header values that are not valid HTTP
/// (a client-sent media type, say) are dropped with a warning, never panic.
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
}

impl Reply {
    pub fn new(status: StatusCode) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(DOCKER_API_VERSION, HeaderValue::from_static("registry/2.0"));
        Reply { status, headers }
    }

    pub fn header(mut self, name: HeaderName, value: impl AsRef<str>) -> Reply {
        match HeaderValue::from_str(value.as_ref()) {
            Ok(v) => {
                self.headers.append(name, v);
            }
            Err(_) => tracing::warn!("registry: dropping invalid {name} header value"),
        }
        self
    }

    pub fn body(self, body: Body) -> Response<Body> {
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }

    /// An empty body, saying so with `Content-Length: 0`.
    pub fn empty(self) -> Response<Body> {
        self.header(CONTENT_LENGTH, "0").body(empty())
    }

    pub fn json(self, value: &impl serde::Serialize) -> Response<Body> {
        self.json_as("application/json", value)
    }

    pub fn json_as(self, content_type: &str, value: &impl serde::Serialize) -> Response<Body> {
        let data = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        self.header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, data.len().to_string())
            .body(full(data))
    }
}

/// The `Range` header of upload responses: the bytes received so far,
/// inclusive; `0-0` for none (the spec's and Docker's convention).
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// A chunk's `Content-Range: <start>-<end>` (inclusive). Also takes the
/// `bytes <start>-<end>/<total>` form some clients send.
pub fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let v = value.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split_once('/').map_or(v, |(r, _total)| r);
    let (start, end) = v.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    (start <= end).then_some((start, end))
}

/// What a blob read's `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No range, or one we do not serve partially (several ranges): 200.
    Whole,
    /// Inclusive start and end: 206.
    Part(u64, u64),
    /// Outside the blob: 416.
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` against a blob of `total`
/// bytes.
pub fn parse_range(value: &str, total: u64) -> ByteRange {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return ByteRange::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // The last `n` bytes.
        return match b.parse::<u64>() {
            Ok(0) => ByteRange::Unsatisfiable,
            Ok(_) if total == 0 => ByteRange::Unsatisfiable,
            Ok(n) => ByteRange::Part(total.saturating_sub(n), total - 1),
            Err(_) => ByteRange::Whole,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return ByteRange::Whole;
    };
    let end = if b.is_empty() {
        total.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(total.saturating_sub(1)),
            Ok(_) => return ByteRange::Whole,
            Err(_) => return ByteRange::Whole,
        }
    };
    if start >= total {
        ByteRange::Unsatisfiable
    } else {
        ByteRange::Part(start, end)
    }
}

/// A small request body (a manifest, a form) read whole, refused past
/// `limit` bytes with 413.
pub async fn read_small<B>(mut body: B, limit: usize) -> Result<Vec<u8>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(Code::SizeInvalid, format!("reading the request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(ApiError::new(
                    Code::SizeInvalid,
                    format!("request body larger than {limit} bytes"),
                )
                .with_status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("100-199"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes=5-9"), Some((5, 9)));
        assert_eq!(parse_content_range("9-5"), None);
        assert_eq!(parse_content_range("x-5"), None);
        assert_eq!(parse_content_range("5"), None);
    }

    #[test]
    fn upload_range_is_inclusive() {
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(1), "0-0");
        assert_eq!(upload_range(100), "0-99");
    }

    #[test]
    fn read_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), ByteRange::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), ByteRange::Part(90, 99));
        assert_eq!(parse_range("bytes=90-500", 100), ByteRange::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), ByteRange::Part(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), ByteRange::Part(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), ByteRange::Whole);
        assert_eq!(parse_range("items=0-1", 100), ByteRange::Whole);
        assert_eq!(parse_range("bytes=9-1", 100), ByteRange::Whole);
    }
}
