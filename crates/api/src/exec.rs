//! `/containers/{id}/exec` and `/exec/{id}/...`: an exec is recorded, then
//! started by the container's monitor; its session is relayed as attach is.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::monitor::proto;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError, ApiResult};
use crate::models::{ExecBody, ResizeQuery};
use crate::server::State as AppState;
use crate::streams;

pub async fn create(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: ExecBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid exec configuration: {e}")))?;
    let req = body.into_request();
    let exec = blocking(move || Ok(app.engine.exec_create(&id, &req)?)).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": exec.id}))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
}

pub async fn start(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut req: Request<Body>,
) -> ApiResult<Response> {
    let upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let client_fd = crate::streams::conn_fd(&req);
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::BadRequest(format!("read the request: {e}")))?;
    let start: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid exec start: {e}")))?
    };
    let exec = {
        let (app, id) = (app.clone(), id.clone());
        blocking(move || Ok(app.engine.exec_inspect(&id)?)).await?
    };
    if exec.running || exec.exit_code.is_some() {
        return Err(ApiError::Conflict(format!(
            "exec {} has already been started",
            exec.id
        )));
    }
    if start.detach {
        blocking(move || Ok(app.engine.exec_start(&exec.id, true)?)).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let upgrade = upgrade.ok_or_else(|| {
        ApiError::BadRequest(
            "exec start takes the connection over: send Connection: Upgrade, Upgrade: tcp".into(),
        )
    })?;
    let tty = exec.tty;
    // The session's resize socket goes when the session ends, whether or
    // not the client asks about the exec after it.
    let (table, exec_id) = (app.clone(), exec.id.clone());
    let on_end: streams::OnExit = Box::new(move |_| {
        if let Ok(mut t) = table.exec_sessions.lock() {
            t.remove(&exec_id);
        }
    });
    // Started once the client reads its stream, as docker does.
    let session = move || {
        let session = app
            .engine
            .exec_start(&exec.id, false)?
            .ok_or_else(|| ApiError::Internal("the exec started detached".into()))?;
        if let (Ok(copy), Ok(mut table)) = (session.sock.try_clone(), app.exec_sessions.lock()) {
            table.insert(exec.id.clone(), copy);
        }
        Ok(session.sock)
    };
    Ok(streams::hijack_then(
        upgrade,
        client_fd,
        tty,
        Some(on_end),
        session,
    ))
}

pub async fn resize(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> ApiResult<StatusCode> {
    let frame = proto::encode(proto::RESIZE, &q.payload());
    let table = app
        .exec_sessions
        .lock()
        .map_err(|_| ApiError::Internal("the exec table is poisoned".into()))?;
    if let Some(sock) = table
        .iter()
        .find(|(k, _)| k.starts_with(&id))
        .map(|(_, s)| s)
    {
        use std::io::Write;
        let _ = (&*sock).write_all(&frame);
    }
    Ok(StatusCode::OK)
}

pub async fn inspect(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let e = {
        let app = app.clone();
        blocking(move || Ok(app.engine.exec_inspect(&id)?)).await?
    };
    if !e.running {
        if let Ok(mut table) = app.exec_sessions.lock() {
            table.remove(&e.id);
        }
    }
    let args = e.process.args().clone().unwrap_or_default();
    Ok(Json(json!({
        "ID": e.id,
        "ContainerID": e.container_id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "Pid": e.pid,
        "OpenStdin": e.open_stdin,
        "OpenStdout": true,
        "OpenStderr": true,
        "CanRemove": false,
        "DetachKeys": "",
        "ProcessConfig": {
            "tty": e.tty,
            "entrypoint": args.first(),
            "arguments": args.get(1..).unwrap_or_default(),
            "privileged": false,
            "user": "",
        },
    })))
}
