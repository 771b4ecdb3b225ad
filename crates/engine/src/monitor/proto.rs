//! The monitor's socket protocol.
//!
//! Every message, both ways, is a frame: one type byte, three zero bytes, a
//! big-endian u32 length, then the payload (the header of docker's
//! multiplexed attach stream, so stdout and stderr frames read like docker's).
//! A client's first frame is a [`Request`] as JSON, with the protocol's
//! version beside its `op` (`{"v":1,"op":"wait"}`); a monitor that speaks
//! another version answers with an ERROR frame and hangs up.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Monitor -> client: container output.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Monitor -> client: the container exited; payload: exit code (i32 BE).
pub const EXIT: u8 = 0x10;
/// Monitor -> client: the answer to an exec request (JSON, `ExecReply`).
pub const EXEC_REPLY: u8 = 0x11;
/// Monitor -> client: the request cannot be taken; payload: why (text).
pub const ERROR: u8 = 0x12;
/// Client -> monitor: the request (JSON).
pub const REQUEST: u8 = 0x20;
/// Client -> monitor: bytes for the container's stdin.
pub const STDIN: u8 = 0x21;
/// Client -> monitor: no more stdin.
pub const STDIN_EOF: u8 = 0x22;
/// Client -> monitor: terminal size; payload: rows, columns (u16 BE each).
pub const RESIZE: u8 = 0x23;
/// Client -> monitor: a signal for the client's exec; payload: its number (i32 BE).
pub const SIGNAL: u8 = 0x24;

pub const HEADER: usize = 8;
/// Largest frame either side sends or accepts.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Stream the container's output; with `stdin`, take input for it.
    Attach { stdin: bool },
    /// Answer with an EXIT frame when the container exits.
    Wait,
    /// Run a recorded exec (`containers/<id>/execs/<exec_id>.json`): an
    /// EXEC_REPLY frame says whether it started; then, unless `detach`, its
    /// output and an EXIT frame, and this client's STDIN, STDIN_EOF, RESIZE
    /// and SIGNAL frames go to it.
    Exec { exec_id: String, detach: bool },
}

/// The version of this protocol.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    #[serde(flatten)]
    request: Request,
}

/// A request's payload, with this protocol's version.
pub fn encode_request(request: &Request) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        v: VERSION,
        request: request.clone(),
    })
    .unwrap_or_default()
}

/// A request from its payload; an error that says why when it is not one of
/// this version's.
pub fn decode_request(payload: &[u8]) -> Result<Request, String> {
    #[derive(Deserialize)]
    struct Version {
        v: Option<u32>,
    }
    let version = serde_json::from_slice::<Version>(payload)
        .map_err(|e| format!("not a monitor request: {e}"))?;
    if version.v != Some(VERSION) {
        return Err(format!(
            "the container's monitor speaks protocol version {VERSION}, the request {} (the container was started by another Berth version)",
            version.v.map_or("none".to_string(), |v| v.to_string())
        ));
    }
    serde_json::from_slice::<Envelope>(payload)
        .map(|e| e.request)
        .map_err(|e| format!("not a monitor request: {e}"))
}

pub fn header(kind: u8, len: usize) -> [u8; HEADER] {
    let n = (len as u32).to_be_bytes();
    [kind, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + payload.len());
    v.extend_from_slice(&header(kind, payload.len()));
    v.extend_from_slice(payload);
    v
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode(kind, payload))
}

/// Splits a complete frame off the front of `buf`: `Some((kind, payload,
/// consumed))`, or `None` while the frame is incomplete.
pub fn parse(buf: &[u8]) -> io::Result<Option<(u8, &[u8], usize)>> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    Ok(Some((buf[0], &buf[HEADER..HEADER + len], HEADER + len)))
}

/// Reads one frame (blocking). `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((h[0], payload)))
}

/// The payload of a RESIZE frame.
pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let (r, c) = (rows.to_be_bytes(), cols.to_be_bytes());
    [r[0], r[1], c[0], c[1]]
}

pub fn exit_payload(code: i32) -> [u8; 4] {
    code.to_be_bytes()
}

pub fn exit_code(payload: &[u8]) -> Option<i32> {
    payload.try_into().ok().map(i32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = encode(STDOUT, b"hello");
        buf.extend(encode(EXIT, &exit_payload(-3)));
        let (k, p, n) = parse(&buf).unwrap().unwrap();
        assert_eq!((k, p), (STDOUT, &b"hello"[..]));
        let (k, p, m) = parse(&buf[n..]).unwrap().unwrap();
        assert_eq!((k, exit_code(p)), (EXIT, Some(-3)));
        assert_eq!(n + m, buf.len());
        assert!(parse(&buf[..n - 1]).unwrap().is_none());
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap().1, b"hello");
        let mut huge = header(STDIN, MAX_FRAME + 1).to_vec();
        huge.push(0);
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn requests_carry_the_version() {
        let wire = encode_request(&Request::Exec {
            exec_id: "ab".into(),
            detach: true,
        });
        assert_eq!(
            String::from_utf8_lossy(&wire),
            r#"{"v":1,"op":"exec","exec_id":"ab","detach":true}"#
        );
        assert_eq!(
            decode_request(&wire).unwrap(),
            Request::Exec {
                exec_id: "ab".into(),
                detach: true
            }
        );
        let old = decode_request(br#"{"op":"wait"}"#).unwrap_err();
        assert!(old.contains("version 1, the request none"), "{old}");
        let newer = decode_request(br#"{"v":2,"op":"wait"}"#).unwrap_err();
        assert!(newer.contains("the request 2"), "{newer}");
        assert!(decode_request(br#"{"v":1,"op":"dance"}"#).is_err());
    }

    #[test]
    fn requests_are_tagged_json() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true}"#).unwrap();
        assert_eq!(r, Request::Attach { stdin: true });
        assert_eq!(
            serde_json::to_string(&Request::Wait).unwrap(),
            r#"{"op":"wait"}"#
        );
    }
}
