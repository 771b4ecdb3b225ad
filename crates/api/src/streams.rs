//! Taking a connection over (attach, exec start) and relaying it to a
//! monitor session: the monitor's STDOUT/STDERR frames already carry
//! docker's multiplexed-stream header, so without a terminal they pass as
//! they are; with one, only their payload (docker's raw stream). What the
//! client sends becomes STDIN frames, and its half-close STDIN_EOF.

use std::os::fd::RawFd;
use std::os::unix::net::UnixStream as StdUnixStream;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use berth_engine::monitor::proto;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{ApiError, ApiResult};

/// The upgrade a request asks for, taken out of it.
pub fn take_upgrade(req: &mut Request<Body>) -> ApiResult<hyper::upgrade::OnUpgrade> {
    req.extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| {
            ApiError::BadRequest(
                "this endpoint takes the connection over: send Connection: Upgrade, Upgrade: tcp"
                    .into(),
            )
        })
}

/// The descriptor of the connection a request came on (a request
/// extension the server adds), to see a client that has gone altogether.
#[derive(Debug, Clone, Copy)]
pub struct ConnFd(pub Option<RawFd>);

/// The connection descriptor of `req`, if the server recorded one.
pub fn conn_fd<B>(req: &Request<B>) -> Option<RawFd> {
    req.extensions().get::<ConnFd>().and_then(|c| c.0)
}

/// Whether the peer of the connection `fd` has closed it altogether (not a
/// half-close: a client that ended its stdin still reads the output).
pub fn hung_up(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd on our stack, a zero timeout; `fd`
    // is the connection the relay holds open for as long as it runs.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// What to do when a session ends: with its exit code, or `None` when
/// the client went first.
pub type OnExit = Box<dyn FnOnce(Option<i32>) + Send>;

/// Answers 101 and, once the client has switched, relays between it and
/// the monitor session `sock`; `on_exit` gets the exit code it ends with.
pub fn hijack(
    upgrade: hyper::upgrade::OnUpgrade,
    client_fd: Option<RawFd>,
    sock: StdUnixStream,
    tty: bool,
    on_exit: Option<OnExit>,
) -> Response {
    hijack_then(upgrade, client_fd, tty, on_exit, move || Ok(sock))
}

/// Like [`hijack`], with the session made only once the client has
/// switched (as docker starts an exec only then: output that came before the
/// client reads its stream could be lost in the client's buffers). An error
/// then is written to the stream.
pub fn hijack_then(
    upgrade: hyper::upgrade::OnUpgrade,
    client_fd: Option<RawFd>,
    tty: bool,
    on_exit: Option<OnExit>,
    session: impl FnOnce() -> ApiResult<StdUnixStream> + Send + 'static,
) -> Response {
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut conn = TokioIo::new(upgraded);
            let sock = match tokio::task::spawn_blocking(session).await {
                Ok(Ok(sock)) => sock,
                Ok(Err(e)) => {
                    let _ = conn.write_all(format!("{e}\n").as_bytes()).await;
                    let _ = conn.shutdown().await;
                    return;
                }
                Err(_) => return,
            };
            let code = match relay(conn, client_fd, sock, tty).await {
                Ok(code) => code,
                Err(e) => {
                    tracing::debug!("an attached stream ended: {e}");
                    None
                }
            };
            if let Some(f) = on_exit {
                f(code)
            }
        }
    });
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::empty())
        .unwrap_or_default()
}

/// Relays until the process ends (its exit code) or either side goes.
async fn relay(
    conn: impl AsyncRead + AsyncWrite + Unpin,
    client_fd: Option<RawFd>,
    sock: StdUnixStream,
    tty: bool,
) -> std::io::Result<Option<i32>> {
    sock.set_nonblocking(true)?;
    let sock = tokio::net::UnixStream::from_std(sock)?;
    let (mut from_monitor, mut to_monitor) = sock.into_split();
    let (mut from_client, mut to_client) = tokio::io::split(conn);
    let output = async {
        let mut head = [0u8; proto::HEADER];
        let mut code = None;
        loop {
            if from_monitor.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
            if len > proto::MAX_FRAME {
                break;
            }
            let mut payload = vec![0u8; len];
            from_monitor.read_exact(&mut payload).await?;
            match head[0] {
                proto::STDOUT | proto::STDERR => {
                    if !tty {
                        to_client.write_all(&head).await?;
                    }
                    to_client.write_all(&payload).await?;
                    to_client.flush().await?;
                }
                proto::EXIT => {
                    code = proto::exit_code(&payload);
                    break;
                }
                _ => {}
            }
        }
        to_client.shutdown().await?;
        Ok(code)
    };
    let input = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = to_monitor
                        .write_all(&proto::encode(proto::STDIN_EOF, &[]))
                        .await;
                    break;
                }
                Ok(n) => {
                    to_monitor
                        .write_all(&proto::encode(proto::STDIN, &buf[..n]))
                        .await?;
                }
            }
        }
        // Output goes on until the process ends, or until the client is
        // gone altogether: then the session ends (the container runs on,
        // as docker's does) and nothing of it stays open here.
        match client_fd {
            Some(fd) => loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                if hung_up(fd) {
                    return Ok(None);
                }
            },
            None => std::future::pending::<std::io::Result<Option<i32>>>().await,
        }
    };
    tokio::select! {
        r = output => r,
        r = input => r,
    }
}

/// Writes a request's body to the new file `path`, refusing bodies larger
/// than `max` bytes (`what` names the body in errors).
pub async fn spool(body: Body, path: &std::path::Path, max: u64, what: &str) -> ApiResult<()> {
    use futures_util::StreamExt;

    let internal = |e: std::io::Error| ApiError::Internal(format!("store {what}: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut got: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("read {what}: {e}")))?;
        got += chunk.len() as u64;
        if got > max {
            return Err(ApiError::BadRequest(format!(
                "{what} is larger than {max} bytes"
            )));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)
}
