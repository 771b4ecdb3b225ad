//! `GET /events`: the engine's event log (what the daemon, the daemonless
//! CLI and the containers' monitors did), as docker's stream of JSON
//! lines: the kept events from `since` on, then new ones as they are
//! written, until `until` or until the client leaves; narrowed by docker's
//! `filters` (type, event, container, image, label, network, volume).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::models::parse_filters;
use crate::server::State as AppState;
use berth_engine::events::{matches, time_of};

/// How often a followed log is read again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EventsQuery {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// docker's times: Unix seconds with an optional fraction (`1700000000.5`),
/// as nanoseconds.
fn parse_time(what: &str, v: &Option<String>) -> ApiResult<Option<i128>> {
    let Some(v) = v.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest(format!("invalid {what} time {v:?}"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i128 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i128 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    Ok(Some(secs * 1_000_000_000 + nanos))
}

fn now_nanos() -> i128 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .map_or(0, i128::from)
}

pub async fn events(
    State(app): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Response> {
    let since = parse_time("since", &q.since)?;
    let until = parse_time("until", &q.until)?;
    let filters = parse_filters(&q.filters)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let path = app.engine.events_path();
    let started = now_nanos();
    tokio::spawn(async move {
        let wanted = |ev: &Value| {
            let t = time_of(ev);
            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u) && matches(ev, &filters)
        };
        let send = |ev: &Value| {
            let mut line = ev.to_string();
            line.push('\n');
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(line))).await.is_ok() }
        };
        let app2 = app.clone();
        let Ok((kept, mut offset)) =
            tokio::task::spawn_blocking(move || app2.engine.events()).await
        else {
            return;
        };
        // Without `since`, only what happens from now on.
        if since.is_some() {
            for ev in kept.iter().filter(|e| wanted(e)) {
                if !send(ev).await {
                    return;
                }
            }
        }
        let stream_from = since.unwrap_or(started);
        loop {
            if until.is_some_and(|u| now_nanos() > u) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = tx.closed() => return,
            }
            let path = path.clone();
            let Ok((new, next)) =
                tokio::task::spawn_blocking(move || berth_engine::events::read_from(&path, offset))
                    .await
            else {
                return;
            };
            offset = next;
            for ev in new
                .iter()
                .filter(|e| time_of(e) >= stream_from && wanted(e))
            {
                if !send(ev).await {
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    }));
    Ok(([("Content-Type", "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn times_and_filters() {
        assert_eq!(
            parse_time("since", &Some("12.5".into())).unwrap(),
            Some(12_500_000_000)
        );
        assert_eq!(
            parse_time("since", &Some("7".into())).unwrap(),
            Some(7_000_000_000)
        );
        assert!(parse_time("since", &Some("x".into())).is_err());
        let ev = json!({"Type": "container", "Action": "health_status: healthy",
            "Actor": {"ID": "0123456789abcdef", "Attributes": {"name": "web", "image": "busybox", "team": "a"}},
            "timeNano": 5});
        let f = |pairs: &[(&str, &[&str])]| -> HashMap<String, Vec<String>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        assert!(matches(
            &ev,
            &f(&[("type", &["container"]), ("event", &["health_status"])])
        ));
        assert!(matches(
            &ev,
            &f(&[("container", &["web"]), ("label", &["team=a"])])
        ));
        assert!(matches(
            &ev,
            &f(&[("container", &["0123456789ab"]), ("image", &["busybox"])])
        ));
        assert!(!matches(&ev, &f(&[("type", &["network"])])));
        assert!(!matches(&ev, &f(&[("label", &["team=b"])])));
        assert!(!matches(&ev, &f(&[("container", &["0"])])));
        assert!(matches(&ev, &f(&[("event", &["stop", "health_status"])])));
    }
}
