//! `/containers/...`: each handler reads its request, calls the engine, and
//! answers in docker's shapes.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::filters::ContainerFilter;
use berth_engine::logs::{LogsOptions, Stream};
use berth_engine::monitor::proto;
use berth_engine::ContainerRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError, ApiResult};
use crate::models::{parse_filters, truthy, unix_time, CreateBody, ResizeQuery, UpdateBody};
use crate::server::State as AppState;
use crate::streams;

/// One row of `GET /containers/json`.
fn summary(c: &ContainerRecord) -> Value {
    let ports: Vec<Value> = c
        .state
        .ports
        .iter()
        .map(|p| {
            json!({
                "IP": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.proto.as_str(),
            })
        })
        .collect();
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": c.args.join(" "),
        "Created": unix_time(&c.created),
        "Ports": ports,
        "Labels": c.options.labels,
        "State": c.state.status.as_str(),
        "Status": c.status_text(),
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    all: Option<String>,
    limit: Option<i64>,
    filters: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filters = parse_filters(&q.filters)?;
    let filter = ContainerFilter::parse(
        filters
            .iter()
            .flat_map(|(k, vals)| vals.iter().map(move |v| (k.as_str(), v.as_str()))),
    )?;
    let all = truthy(&q.all) || q.limit.is_some_and(|l| l > 0) || filter.has("status");
    let rows = blocking(move || {
        app.engine.reap_orphans();
        let mut list: Vec<Value> = app
            .engine
            .containers()?
            .iter()
            .filter(|c| all || c.state.status.is_active())
            .filter(|c| filter.matches(&app.engine, c))
            .map(summary)
            .collect();
        if let Some(l) = q.limit.filter(|l| *l > 0) {
            list.truncate(l as usize);
        }
        Ok(list)
    })
    .await?;
    Ok(Json(Value::Array(rows)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateQuery {
    name: Option<String>,
}

pub async fn create(
    State(app): State<AppState>,
    Query(q): Query<CreateQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid container configuration: {e}")))?;
    let opts = body.into_options(q.name)?;
    let image = opts.image.clone();
    let rec = blocking(move || {
        // docker answers 404 for a missing image, and its clients pull it.
        app.engine
            .images()
            .resolve(&image)
            .map_err(|_| ApiError::NotFound(format!("No such image: {image}")))?;
        Ok(app.engine.create(opts)?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": rec.id, "Warnings": []})),
    )
        .into_response())
}

pub async fn inspect(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let doc = blocking(move || {
        let rec = app.engine.container(&id)?;
        Ok(app.engine.inspect_container(&rec)?)
    })
    .await?;
    Ok(Json(doc))
}

pub async fn start(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(move || {
        let rec = app.engine.container(&id)?;
        if rec.state.status.is_active() {
            return Ok(StatusCode::NOT_MODIFIED);
        }
        // A client that attached before the start gets the output from
        // the first byte.
        let attached = app
            .pending_attach
            .lock()
            .map_err(|_| ApiError::Internal("the attach table is poisoned".into()))?
            .remove(&rec.id);
        let size = None;
        app.engine
            .start_monitored(&rec.id, attached.map(OwnedFd::from), size)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StopQuery {
    t: Option<i64>,
    signal: Option<String>,
}

pub async fn stop(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        let rec = app.engine.container(&id)?;
        if !rec.state.status.is_active() {
            return Ok(StatusCode::NOT_MODIFIED);
        }
        let sig = q
            .signal
            .as_deref()
            .map(berth_engine::parse_signal)
            .transpose()?;
        app.engine.stop(&id, sig, q.t)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let req = body.into_request()?;
    blocking(move || {
        app.engine.update_container(&id, &req)?;
        Ok(Json(json!({"Warnings": []})))
    })
    .await
}

pub async fn restart(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        app.engine.stop(&id, None, q.t)?;
        app.engine.start_monitored(&id, None, None)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KillQuery {
    signal: Option<String>,
}

pub async fn kill(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        let sig = berth_engine::parse_signal(q.signal.as_deref().unwrap_or("KILL"))?;
        app.engine.kill(&id, sig)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WaitQuery {
    condition: Option<String>,
}

/// `wait`: `not-running` (default) answers at once for a stopped
/// container; `next-exit` and `removed` wait for the next exit of one that
/// may not have started yet (docker's CLI asks before it starts it, and
/// starts it only once the answer's headers came: they go out at once, the
/// body when the container has exited).
pub async fn wait(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
    req: Request<Body>,
) -> ApiResult<Response> {
    let client_fd = streams::conn_fd(&req);
    let rec = {
        let (app, id) = (app.clone(), id.clone());
        blocking(move || Ok(app.engine.container(&id)?)).await?
    };
    let next = matches!(q.condition.as_deref(), Some("next-exit" | "removed"));
    let removed = q.condition.as_deref() == Some("removed");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::task::spawn_blocking(move || {
        let id = rec.id.clone();
        // A client that goes away ends the wait: nothing stays open for it.
        let here = || !tx.is_closed() && !client_fd.is_some_and(streams::hung_up);
        if next && !rec.state.status.is_active() {
            // Wait for it to start (or go).
            let first = rec.state.started_at.clone();
            loop {
                match app.engine.container(&id) {
                    Ok(r) if r.state.status.is_active() || r.state.started_at != first => break,
                    Ok(_) if !here() => return,
                    Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                    Err(_) => break,
                }
            }
        }
        let doc = match app.engine.wait_while(&id, &here) {
            Ok(None) => return,
            Ok(Some(code)) => json!({"StatusCode": code, "Error": null}),
            // Removed as it exited (--rm): the record held its exit code
            // until its monitor removed it; a removed container exited 0
            // unless its waiter saw otherwise.
            Err(e) if e.kind() == berth_engine::ErrorKind::NotFound => {
                let code = seen_exit(&app, &id).unwrap_or(rec.state.exit_code);
                json!({"StatusCode": code, "Error": null})
            }
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        if removed {
            while app.engine.container(&id).is_ok() && here() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let mut body = doc.to_string();
        body.push('\n');
        let _ = tx.blocking_send(Ok(Bytes::from(body)));
    });
    Ok((
        [("Content-Type", "application/json")],
        Body::from_stream(tokio_stream(rx)),
    )
        .into_response())
}

/// The exit code an attached session of a removed container saw (it may
/// land a moment after the removal).
fn seen_exit(app: &AppState, id: &str) -> Option<i32> {
    for _ in 0..100 {
        if let Some(code) = app.exit_codes.lock().ok()?.remove(id) {
            return Some(code);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AttachQuery {
    stdin: Option<String>,
}

/// Takes the connection over and relays the container's streams. Before the
/// container starts, the session waits for it (its monitor gets it at start).
pub async fn attach(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request<Body>,
) -> ApiResult<Response> {
    let upgrade = streams::take_upgrade(&mut req)?;
    let client_fd = streams::conn_fd(&req);
    let stdin = truthy(&q.stdin);
    let codes = app.clone();
    let (sock, tty, cid) = blocking(move || {
        let rec = app.engine.container(&id)?;
        let tty = rec.options.tty;
        if rec.state.status.is_active() {
            let sock = app
                .engine
                .monitor_request(&rec.id, &proto::Request::Attach { stdin })?
                .ok_or_else(|| {
                    ApiError::Conflict(format!("container {} is not running", rec.id))
                })?;
            return Ok((sock, tty, rec.id));
        }
        let (mine, theirs) =
            UnixStream::pair().map_err(|e| ApiError::Internal(format!("a socket pair: {e}")))?;
        app.pending_attach
            .lock()
            .map_err(|_| ApiError::Internal("the attach table is poisoned".into()))?
            .insert(rec.id.clone(), theirs);
        Ok((mine, tty, rec.id))
    })
    .await?;
    let on_exit: streams::OnExit = Box::new(move |code| {
        if let (Some(code), Ok(mut m)) = (code, codes.exit_codes.lock()) {
            m.insert(cid, code);
        }
    });
    Ok(streams::hijack(
        upgrade,
        client_fd,
        sock,
        tty,
        Some(on_exit),
    ))
}

pub async fn resize(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        let rec = app.engine.container(&id)?;
        if let Some(mut sock) = app.engine.connect_monitor(&rec.id)? {
            let _ = proto::write_frame(&mut sock, proto::RESIZE, &q.payload());
        }
        Ok(StatusCode::OK)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
}

/// The log, as docker's multiplexed stream (raw with a terminal), followed
/// while the container runs when asked.
pub async fn logs(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let rec = {
        let (app, id) = (app.clone(), id.clone());
        blocking(move || Ok(app.engine.container(&id)?)).await?
    };
    let tty = rec.options.tty;
    let opts = LogsOptions {
        follow: truthy(&q.follow),
        tail: q.tail.as_deref().and_then(|t| t.parse().ok()),
        ..Default::default()
    };
    let (want_out, want_err) = (truthy(&q.stdout), truthy(&q.stderr));
    let stamps = truthy(&q.timestamps);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::task::spawn_blocking(move || {
        let _ = app.engine.logs(&rec.id, &opts, |e| {
            let wanted = match e.stream {
                Stream::Stdout => want_out,
                Stream::Stderr => want_err,
            };
            if !wanted {
                return Ok(());
            }
            let mut text = e.log.clone().into_bytes();
            if stamps {
                let t = e.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                text = [t.as_bytes(), b" ", &text].concat();
            }
            let mut frame = Vec::with_capacity(text.len() + proto::HEADER);
            if !tty {
                let kind = match e.stream {
                    Stream::Stdout => proto::STDOUT,
                    Stream::Stderr => proto::STDERR,
                };
                frame.extend_from_slice(&proto::header(kind, text.len()));
            }
            frame.extend_from_slice(&text);
            // A client that went away ends a followed log.
            tx.blocking_send(Ok(Bytes::from(frame)))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        });
    });
    let body = Body::from_stream(tokio_stream(rx));
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(([("Content-Type", content_type)], body).into_response())
}

fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `top`: the container's processes, as `ps -ef` shows them.
pub async fn top(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let doc = blocking(move || {
        let pids = app.engine.top_pids(&id)?;
        let out = std::process::Command::new("ps")
            .args(["-o", "uid,pid,ppid,c,stime,tty,time,cmd", "-p"])
            .arg(
                pids.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .output()
            .map_err(|e| ApiError::Internal(format!("run ps: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let titles: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let n = titles.len();
        // Every column but the last is one word; the command is the rest.
        let processes: Vec<Vec<String>> = lines
            .map(|l| {
                let mut cols = Vec::with_capacity(n);
                let mut rest = l.trim_start();
                for _ in 1..n {
                    let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    cols.push(word.to_string());
                    rest = tail.trim_start();
                }
                cols.push(rest.to_string());
                cols
            })
            .collect();
        Ok(json!({"Titles": titles, "Processes": processes}))
    })
    .await?;
    Ok(Json(doc))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveQuery {
    force: Option<String>,
    v: Option<String>,
}

pub async fn remove(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        app.engine.remove(&id, truthy(&q.force), truthy(&q.v))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// The host's CPU time in nanoseconds, from /proc/stat (docker's
/// `system_cpu_usage`, against which a container's CPU share is measured).
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

/// One sample of docker's stats document.
fn stats_sample(app: &AppState, id: &str) -> ApiResult<(Value, Value)> {
    let (rec, s) = app.engine.stats(id)?;
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let cpu = json!({
        "cpu_usage": {"total_usage": s.cgroup.cpu_usage_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    let limit = s
        .cgroup
        .memory_limit
        .unwrap_or_else(berth_engine::system::host_memory)
        .min(berth_engine::system::host_memory().max(1));
    let doc = json!({
        "read": now,
        "name": format!("/{}", rec.name),
        "id": rec.id,
        "pids_stats": {"current": s.cgroup.pids},
        "memory_stats": {
            "usage": s.cgroup.memory_usage,
            "limit": limit,
            "stats": {"inactive_file": s.cgroup.memory_cache, "total_inactive_file": s.cgroup.memory_cache},
        },
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": s.cgroup.io_read_bytes},
            {"major": 0, "minor": 0, "op": "write", "value": s.cgroup.io_write_bytes},
        ]},
        "networks": {"eth0": {"rx_bytes": s.net_rx_bytes, "tx_bytes": s.net_tx_bytes}},
    });
    Ok((doc, cpu))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StatsQuery {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

/// `stats`: docker's document, a line a second while `stream` (the
/// default); without it, one document with two samples half a second apart
/// (so the client can compute the CPU share), or one with `one-shot`.
pub async fn stats(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Response> {
    let stream = q
        .stream
        .as_deref()
        .is_none_or(|s| matches!(s, "1" | "true" | "True"));
    let one_shot = truthy(&q.one_shot);
    {
        let (app, id) = (app.clone(), id.clone());
        blocking(move || Ok(app.engine.container(&id)?)).await?;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let mut pre = json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0});
        let mut first = true;
        loop {
            let Ok((mut doc, cpu)) = stats_sample(&app, &id) else {
                return;
            };
            if first && !one_shot {
                // The first line already carries a CPU share.
                first = false;
                pre = cpu;
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            doc["precpu_stats"] = pre;
            doc["cpu_stats"] = cpu.clone();
            pre = cpu;
            let mut line = doc.to_string();
            line.push('\n');
            if tx.blocking_send(Ok(Bytes::from(line))).is_err() || !stream {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    Ok((
        [("Content-Type", "application/json")],
        Body::from_stream(tokio_stream(rx)),
    )
        .into_response())
}
