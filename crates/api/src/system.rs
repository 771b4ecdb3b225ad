//! `/_ping`, `/version`, `/info`: what clients negotiate with.

use axum::extract::State;
use axum::http::header::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{blocking, ApiResult};
use crate::server::State as AppState;
use crate::{API_VERSION, MIN_API_VERSION};

/// The program's version, as the daemon's `version` shows it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn negotiation_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("API-Version", API_VERSION),
        ("OSType", "linux"),
        ("Builder-Version", "1"),
        ("Docker-Experimental", "false"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    h
}

/// GET and HEAD `/_ping`.
pub async fn ping() -> impl IntoResponse {
    (negotiation_headers(), "OK")
}

pub async fn version() -> impl IntoResponse {
    let arch = berth_engine::image::host_arch().to_string();
    let kernel = berth_engine::system::kernel_version();
    let doc = json!({
        "Platform": {"Name": "Berth Engine"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": arch,
                "KernelVersion": kernel,
            },
        }],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    });
    (negotiation_headers(), Json(doc))
}

pub async fn info(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let doc = blocking(move || Ok(app.engine.system_info(VERSION, false)?)).await?;
    Ok(Json(doc))
}
