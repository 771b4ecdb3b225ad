//! `/networks` and `/volumes` listings.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{blocking, ApiResult};
use crate::server::State as AppState;

pub async fn list_networks(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = blocking(move || {
        let mut out: Vec<Value> = app
            .engine
            .networks()?
            .iter()
            .map(|n| json!({"Name": n.name, "Id": n.id, "Driver": n.driver, "Scope": "local"}))
            .collect();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            out.push(
                json!({"Name": name, "Id": name.repeat(16), "Driver": driver, "Scope": "local"}),
            );
        }
        Ok(out)
    })
    .await?;
    Ok(Json(Value::Array(rows)))
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
