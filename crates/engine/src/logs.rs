//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"<RFC 3339, ns>"}`, rotated by
//! size into `<id>-json.log.1`, `.2`, ... (newest first), as docker does.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{LogDriver, LogOptions};
use crate::error::{Error, Result};

/// A line longer than this is written as several entries, as docker does.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: Stream,
    pub time: DateTime<Utc>,
}

/// Writes a container's output to its log, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    /// None for the `none` driver: output is dropped.
    file: Option<File>,
    size: u64,
    opts: LogOptions,
    /// Per stream, the start of a line not yet ended.
    partial: [Vec<u8>; 2],
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogWriter {
    pub fn open(path: &Path, opts: LogOptions) -> Result<LogWriter> {
        let file = if opts.driver == LogDriver::None {
            None
        } else {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(Error::io("create log directory", dir))?;
            }
            Some(
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(Error::io("open log", path))?,
            )
        };
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            opts,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records output of one stream; complete lines become entries.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let i = stream as usize;
        // Entries are appended one by one so that rotation keeps every file
        // within max-size.
        let mut out = Vec::new();
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.partial[i].extend_from_slice(&rest[..=nl]);
            rest = &rest[nl + 1..];
            let line = std::mem::take(&mut self.partial[i]);
            self.append_entry(&mut out, stream, &line)?;
        }
        self.partial[i].extend_from_slice(rest);
        while self.partial[i].len() >= MAX_LINE {
            let line: Vec<u8> = self.partial[i].drain(..MAX_LINE).collect();
            self.append_entry(&mut out, stream, &line)?;
        }
        self.append(&out)
    }

    /// Adds an entry to `out`, writing `out` first if the entry would take the
    /// file past max-size (so that the rotation falls between entries).
    fn append_entry(&mut self, out: &mut Vec<u8>, stream: Stream, line: &[u8]) -> io::Result<()> {
        let start = out.len();
        entry(out, stream, line);
        let len = (out.len() - start) as u64;
        if self.opts.max_size > 0 && self.size + start as u64 + len > self.opts.max_size {
            let e = out.split_off(start);
            self.append(out)?;
            out.clear();
            if self.size > 0 {
                self.rotate()?;
            }
            out.extend_from_slice(&e);
        }
        Ok(())
    }

    /// Writes out unfinished lines (the container ended).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let mut out = Vec::new();
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            let line = std::mem::take(&mut self.partial[i]);
            if !line.is_empty() {
                entry(&mut out, stream, &line);
            }
        }
        self.append(&out)
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.opts.max_size > 0
            && self.size > 0
            && self.size + data.len() as u64 > self.opts.max_size
        {
            self.rotate()?;
        }
        if let Some(f) = &mut self.file {
            f.write_all(data)?;
        }
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.opts.max_file.max(1);
        if keep > 1 {
            for n in (1..keep).rev() {
                let from = if n == 1 {
                    self.path.clone()
                } else {
                    rotated(&self.path, n - 1)
                };
                match fs::rename(&from, rotated(&self.path, n)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        self.file = Some(
            File::options()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn entry(out: &mut Vec<u8>, stream: Stream, line: &[u8]) {
    let e = LogEntry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream,
        time: Utc::now(),
    };
    if serde_json::to_writer(&mut *out, &e).is_ok() {
        out.push(b'\n');
    }
}

/// What `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    /// Only the last this many entries.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Parses docker's `--since`/`--until`: an RFC 3339 time, a Unix timestamp,
/// or a duration before now (`10m`, `1h30m`, `45s`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let bad = || {
        Error::InvalidArgument(format!("invalid time value '{s}': use an RFC 3339 time, a Unix timestamp or a duration like 10m"))
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(t.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc());
    }
    if let Ok(secs) = s.parse::<f64>() {
        let nanos = (secs.fract() * 1e9) as u32;
        return DateTime::from_timestamp(secs.trunc() as i64, nanos).ok_or_else(bad);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(bad()),
        };
        total += num.parse::<f64>().map_err(|_| bad())? * unit;
        num.clear();
    }
    if !num.is_empty() || total == 0.0 {
        return Err(bad());
    }
    Ok(now - chrono::Duration::milliseconds((total * 1000.0) as i64))
}

/// The log files of a container, oldest first.
fn files(path: &Path, max_file: u32) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..max_file.max(1) + 8)
        .rev()
        .map(|n| rotated(path, n))
        .filter(|p| p.exists())
        .collect();
    out.push(path.to_path_buf());
    out
}

fn parse_line(line: &str) -> Option<LogEntry> {
    serde_json::from_str(line.trim_end_matches('\n')).ok()
}

/// Reads a container's log: every entry that `opts` selects goes to `sink`;
/// with `follow`, new entries too, until `running()` says the container ended.
pub fn read(
    path: &Path,
    max_file: u32,
    opts: &LogsOptions,
    mut running: impl FnMut() -> bool,
    mut sink: impl FnMut(&LogEntry) -> io::Result<()>,
) -> Result<()> {
    let wanted = |e: &LogEntry| {
        opts.since.is_none_or(|s| e.time >= s) && opts.until.is_none_or(|u| e.time <= u)
    };
    let io_err = Error::io("read log", path);
    let mut tail = std::collections::VecDeque::new();
    let mut current: Option<(BufReader<File>, u64)> = None;
    let mut pending = String::new();
    for f in files(path, max_file) {
        let Ok(file) = File::open(&f) else { continue };
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        let mut r = BufReader::new(file);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) if !line.ends_with('\n') => {
                    // A line the monitor is still writing.
                    pending = line;
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(io_err(e)),
            }
            if let Some(e) = parse_line(&line).filter(wanted) {
                match opts.tail {
                    Some(0) => {}
                    Some(n) => {
                        if tail.len() == n {
                            tail.pop_front();
                        }
                        tail.push_back(e);
                    }
                    None => sink(&e).map_err(Error::io("write logs", path))?,
                }
            }
        }
        if f == path {
            current = Some((r, ino));
        }
    }
    for e in tail {
        sink(&e).map_err(Error::io("write logs", path))?;
    }
    if !opts.follow {
        return Ok(());
    }
    let Some((mut r, mut ino)) = current else {
        return Ok(());
    };
    let mut idle_after_exit = false;
    loop {
        let mut progressed = false;
        loop {
            let mut line = std::mem::take(&mut pending);
            match r.read_line(&mut line) {
                Ok(0) => {
                    pending = line;
                    break;
                }
                Ok(_) if !line.ends_with('\n') => {
                    pending = line;
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(io_err(e)),
            }
            progressed = true;
            if let Some(e) = parse_line(&line).filter(wanted) {
                sink(&e).map_err(Error::io("write logs", path))?;
            }
        }
        // Rotated: the current name is a new file; the old one is read to its end above.
        match fs::metadata(path) {
            Ok(m) if m.ino() != ino => {
                if let Ok(f) = File::open(path) {
                    ino = m.ino();
                    r = BufReader::new(f);
                    pending.clear();
                    continue;
                }
            }
            _ => {}
        }
        if progressed {
            idle_after_exit = false;
            continue;
        }
        if !running() {
            // One more pass after the end, for what was written just before it.
            if idle_after_exit {
                return Ok(());
            }
            idle_after_exit = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path, opts: &LogsOptions) -> Vec<String> {
        let mut out = Vec::new();
        read(
            path,
            3,
            opts,
            || false,
            |e| {
                out.push(e.log.clone());
                Ok(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn lines_rotation_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(
            &path,
            LogOptions {
                max_size: 300,
                max_file: 3,
                ..LogOptions::default()
            },
        )
        .unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.write(Stream::Stderr, b"no newline").unwrap();
        w.flush_partial().unwrap();
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert!(fs::metadata(&p).unwrap().len() <= 300, "{}", p.display());
        }
        let all = entries(&path, &LogsOptions::default());
        // Only what the kept files hold, in order, ending with the newest.
        assert_eq!(all.last().unwrap(), "no newline");
        assert_eq!(all[all.len() - 2], "line 19\n");
        let nums: Vec<u32> = all[..all.len() - 1]
            .iter()
            .map(|l| l.trim_start_matches("line ").trim().parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        let tail = entries(
            &path,
            &LogsOptions {
                tail: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(tail, vec!["line 19\n".to_string(), "no newline".into()]);
    }

    #[test]
    fn long_lines_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, LogOptions::default()).unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE * 2 + 5])
            .unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let all = entries(&path, &LogsOptions::default());
        assert_eq!(
            all.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 6]
        );
    }

    #[test]
    fn times() {
        let now = Utc::now();
        assert_eq!(
            parse_time("10m", now).unwrap(),
            now - chrono::Duration::minutes(10)
        );
        assert_eq!(
            parse_time("1h30m", now).unwrap(),
            now - chrono::Duration::minutes(90)
        );
        assert_eq!(
            parse_time("2026-01-02T03:04:05Z", now).unwrap().timestamp(),
            1767323045
        );
        assert_eq!(
            parse_time("1767323045", now).unwrap().timestamp(),
            1767323045
        );
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("10", now).is_ok());
        assert!(parse_time("5x", now).is_err());
    }
}
