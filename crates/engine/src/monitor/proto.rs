//! The monitor's socket protocol.
//!
//! Every message, both ways, is a frame: one type byte, three zero bytes, a
//! big-endian u32 length, then the payload (the header of docker's
//! multiplexed attach stream, so stdout and stderr frames read like docker's).
//! A client's first frame is a [`Request`] as JSON.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Monitor -> client: container output.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Monitor -> client: the container exited; payload: exit code (i32 BE).
pub const EXIT: u8 = 0x10;
/// Monitor -> client: the answer to an exec request (JSON, `ExecReply`).
pub const EXEC_REPLY: u8 = 0x11;
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
    fn requests_are_tagged_json() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true}"#).unwrap();
        assert_eq!(r, Request::Attach { stdin: true });
        assert_eq!(
            serde_json::to_string(&Request::Wait).unwrap(),
            r#"{"op":"wait"}"#
        );
    }
}
