//! `/networks/...` and `/volumes/...`.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::{NetworkRequest, VolumeRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError, ApiResult};
use crate::server::State as AppState;

fn body<T: for<'de> Deserialize<'de> + Default>(raw: &Bytes) -> ApiResult<T> {
    if raw.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| ApiError::BadRequest(format!("invalid request: {e}")))
}

pub async fn list_networks(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = blocking(move || {
        // The default network exists from the first listing on, as in docker.
        let _ = app.engine.network(berth_engine::DEFAULT_NETWORK);
        let mut out = Vec::new();
        for n in app.engine.networks()? {
            out.push(app.engine.inspect_network(&n)?);
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            let id = app.engine.builtin_network_id(name)?;
            out.push(json!({"Name": name, "Id": id, "Driver": driver, "Scope": "local", "Containers": {}, "Labels": {}}));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(Value::Array(rows)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: Option<String>,
    gateway: Option<String>,
    #[serde(rename = "IPRange")]
    ip_range: Option<String>,
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    config: Option<Vec<IpamConfig>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkCreate {
    name: String,
    driver: Option<String>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    labels: Option<BTreeMap<String, String>>,
    internal: bool,
    options: Option<BTreeMap<String, String>>,
}

pub async fn create_network(State(app): State<AppState>, raw: Bytes) -> ApiResult<Response> {
    let b: NetworkCreate = body(&raw)?;
    let cfg = b
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().next())
        .unwrap_or_default();
    let req = NetworkRequest {
        name: b.name,
        driver: b.driver,
        subnet: cfg
            .subnet
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid subnet {s}")))
            })
            .transpose()?,
        gateway: cfg
            .gateway
            .map(|g| {
                g.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid gateway {g}")))
            })
            .transpose()?,
        labels: b.labels.unwrap_or_default(),
        ip_range: cfg
            .ip_range
            .map(|r| {
                r.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid ip range {r}")))
            })
            .transpose()?,
        aux_addresses: cfg
            .auxiliary_addresses
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                v.parse()
                    .map(|ip| (k, ip))
                    .map_err(|_| ApiError::BadRequest(format!("invalid auxiliary address {v}")))
            })
            .collect::<Result<_, _>>()?,
        internal: b.internal,
        options: b.options.unwrap_or_default(),
    };
    let n = blocking(move || Ok(app.engine.network_create(req)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": n.id, "Warning": ""})),
    )
        .into_response())
}

pub async fn inspect_network(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let doc = blocking(move || {
        let n = app.engine.network(&id)?;
        Ok(app.engine.inspect_network(&n)?)
    })
    .await?;
    Ok(Json(doc))
}

pub async fn remove_network(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        app.engine.network_remove(&id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn list_volumes(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let doc = blocking(move || {
        let vols: Vec<Value> = app
            .engine
            .volumes()?
            .iter()
            .map(|v| app.engine.inspect_volume(v))
            .collect();
        Ok(json!({"Volumes": vols, "Warnings": []}))
    })
    .await?;
    Ok(Json(doc))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeCreate {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

pub async fn create_volume(State(app): State<AppState>, raw: Bytes) -> ApiResult<Response> {
    let b: VolumeCreate = body(&raw)?;
    let req = VolumeRequest {
        name: b.name.filter(|n| !n.is_empty()),
        driver: b.driver.filter(|d| !d.is_empty()),
        labels: b.labels.unwrap_or_default(),
        options: b.driver_opts.unwrap_or_default(),
    };
    let doc = blocking(move || {
        let v = app.engine.volume_create(req)?;
        Ok(app.engine.inspect_volume(&v))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

pub async fn inspect_volume(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let doc = blocking(move || {
        let v = app.engine.volume(&name)?;
        Ok(app.engine.inspect_volume(&v))
    })
    .await?;
    Ok(Json(doc))
}

pub async fn remove_volume(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let force = matches!(
        q.get("force").map(String::as_str),
        Some("1" | "true" | "True")
    );
    blocking(move || {
        app.engine.volume_remove(&name, force)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<crate::models::EndpointSettings>,
}

/// `POST /networks/{id}/connect`: `{"Container": ..., "EndpointConfig": {"Aliases": [...]}}`.
pub async fn connect(
    State(app): State<AppState>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<StatusCode> {
    let b: ConnectBody = body(&raw)?;
    let aliases = b
        .endpoint_config
        .and_then(|e| e.aliases)
        .unwrap_or_default();
    blocking(move || {
        app.engine.network_connect(&id, &b.container, &aliases)?;
        Ok(StatusCode::OK)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    container: String,
}

/// `POST /networks/{id}/disconnect`: `{"Container": ..., "Force": bool}`.
pub async fn disconnect(
    State(app): State<AppState>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<StatusCode> {
    let b: DisconnectBody = body(&raw)?;
    blocking(move || {
        app.engine.network_disconnect(&id, &b.container)?;
        Ok(StatusCode::OK)
    })
    .await
}
