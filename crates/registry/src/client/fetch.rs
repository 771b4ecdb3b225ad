//! A file by URL, as docker's daemon fetches a build's remote context
//! (`POST /build?remote=https://host/context.tar.gz`): one GET, http or
//! https, into a file, refused past a size.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::ClientError;

/// Fetches `url` into the new file `dest`, at most `max` bytes.
pub fn fetch(url: &str, max: u64, dest: &Path) -> Result<(), ClientError> {
    let fail = |message: String| ClientError::Fetch {
        url: url.to_string(),
        message,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail("only http:// and https:// URLs are fetched".into()));
    }
    super::install_crypto();
    let rt = super::runtime()?;
    let out = rt.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(super::error::chain(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the server answered {}", resp.status())));
        }
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(fail(format!("larger than {max} bytes")));
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| fail(format!("create {}: {e}", dest.display())))?;
        let mut got: u64 = 0;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(super::error::chain(&e)))?;
            got += chunk.len() as u64;
            if got > max {
                return Err(fail(format!("larger than {max} bytes")));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| fail(format!("write {}: {e}", dest.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| fail(format!("write {}: {e}", dest.display())))
    });
    drop(rt);
    out
}
