//! The event log: one line of docker's event JSON per event, appended by
//! whichever process did the thing (the CLI, the daemon, a container's
//! monitor), so `GET /events` sees what the daemonless CLI did too.
//!
//! `<root>/events.log`, written with one `write` per line on a file opened
//! `O_APPEND` (the kernel keeps concurrent appends whole). Past
//! [`MAX_LOG`] bytes the log moves to `events.log.1` (one older
//! generation) and starts again; readers that follow it by offset start
//! over when it shrinks.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{ContainerRecord, Engine};

/// Past this size the log starts a new generation.
pub const MAX_LOG: u64 = 4 << 20;

/// One event as it is kept (docker's message shape).
pub fn event(typ: &str, action: &str, id: &str, attributes: &BTreeMap<String, String>) -> Value {
    let now = chrono::Utc::now();
    let nanos = now.timestamp_nanos_opt().unwrap_or(0);
    let mut v = json!({
        "Type": typ,
        "Action": action,
        "Actor": {"ID": id, "Attributes": attributes},
        "scope": "local",
        "time": now.timestamp(),
        "timeNano": nanos,
    });
    // Older clients read these (docker fills them for containers and
    // images).
    if typ == "container" || typ == "image" {
        v["status"] = json!(action);
        v["id"] = json!(id);
    }
    if typ == "container" {
        if let Some(image) = attributes.get("image") {
            v["from"] = json!(image);
        }
    }
    v
}

/// Appends one event to the log at `path`; failures are logged, never
/// returned: an event never fails the operation it reports.
pub fn append(path: &Path, ev: &Value) {
    let mut line = ev.to_string();
    line.push('\n');
    let write = || -> std::io::Result<()> {
        if fs::metadata(path).is_ok_and(|m| m.len() > MAX_LOG) {
            let _ = fs::rename(path, path.with_extension("log.1"));
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(line.as_bytes())
    };
    if let Err(e) = write() {
        tracing::warn!("record an event in {}: {e}", path.display());
    }
}

/// Reads the whole events of `path` from byte `offset` on; returns them
/// and the offset after the last whole line. A log shorter than `offset`
/// was started again: it is read from its start.
pub fn read_from(path: &Path, offset: u64) -> (Vec<Value>, u64) {
    let Ok(mut f) = fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = if len < offset { 0 } else { offset };
    if f.seek(SeekFrom::Start(start)).is_err() {
        return (Vec::new(), start);
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return (Vec::new(), start);
    }
    // A line still being written stays for the next read.
    let whole = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let events = buf[..whole]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    (events, start + whole as u64)
}

/// Whether an event passes docker's filters (the CLI's `events --filter`,
/// the API's `filters`): every key given must match,
/// any of its values.
pub fn matches(ev: &Value, filters: &HashMap<String, Vec<String>>) -> bool {
    let typ = ev["Type"].as_str().unwrap_or("");
    let action = ev["Action"].as_str().unwrap_or("");
    let id = ev["Actor"]["ID"].as_str().unwrap_or("");
    let attrs = &ev["Actor"]["Attributes"];
    let attr = |k: &str| attrs[k].as_str();
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|v| match key.as_str() {
                "type" => typ == v,
                "event" => action == v || action.starts_with(&format!("{v}:")),
                "container" => {
                    let (cid, name) = match typ {
                        "container" => (Some(id), attr("name")),
                        _ => (attr("container"), None),
                    };
                    cid.is_some_and(|c| c == v || (v.len() >= 12 && c.starts_with(v.as_str())))
                        || name == Some(v.as_str())
                }
                "image" => attr("image") == Some(v.as_str()) || (typ == "image" && id == v),
                "label" => match v.split_once('=') {
                    Some((k, want)) => attr(k) == Some(want),
                    None => attrs.get(v).is_some(),
                },
                "network" => typ == "network" && (id == v || attr("name") == Some(v.as_str())),
                "volume" => typ == "volume" && id == v,
                "scope" => v == "local",
                _ => false,
            })
    })
}

pub fn time_of(ev: &Value) -> i128 {
    ev["timeNano"].as_i64().map_or(0, i128::from)
}

impl Engine {
    pub fn events_path(&self) -> PathBuf {
        self.root().join("events.log")
    }

    /// Every kept event (the older generation first), and the offset in the
    /// current log to follow it from.
    pub fn events(&self) -> (Vec<Value>, u64) {
        let (mut all, _) = read_from(&self.events_path().with_extension("log.1"), 0);
        let (now, offset) = read_from(&self.events_path(), 0);
        all.extend(now);
        (all, offset)
    }

    pub(crate) fn emit(&self, typ: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
        append(&self.events_path(), &event(typ, action, id, &attrs));
    }

    /// An image's event, as docker's: pull and push name the reference
    /// (`busybox:latest`, attribute `name` its repository); tag names the
    /// image ID with the new name; untag, delete, import, load and save
    /// name the image ID alone.
    pub(crate) fn emit_image(&self, id: &str, name: &str, action: &str) {
        let attrs = BTreeMap::from([("name".to_string(), name.to_string())]);
        self.emit("image", action, id, attrs);
    }

    /// `tag` events for names a caller gave an image through the store (a
    /// build's tags).
    pub fn emit_tags(&self, id: &berth_image::Digest, refs: &[berth_image::Reference]) {
        for r in refs {
            self.emit_image(&id.to_string(), &r.familiar(), "tag");
        }
    }

    /// A container's event: its name, image and labels as attributes, as
    /// docker's.
    pub(crate) fn emit_container(
        &self,
        rec: &ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs = rec.options.labels.clone();
        attrs.insert("name".into(), rec.name.clone());
        attrs.insert("image".into(), rec.image.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.emit("container", action, &rec.id, attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_reads_whole_lines_and_rotates() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("events.log");
        let attrs = BTreeMap::from([("name".to_string(), "web".to_string())]);
        append(&p, &event("container", "start", "abc", &attrs));
        append(&p, &event("network", "create", "n1", &BTreeMap::new()));
        // Half a line (a writer mid-write) is left for later.
        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"Type\":")
            .unwrap();
        let (evs, off) = read_from(&p, 0);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0]["Actor"]["Attributes"]["name"], "web");
        assert_eq!(evs[0]["status"], "start");
        assert_eq!(evs[1]["Type"], "network");
        let (more, off2) = read_from(&p, off);
        assert!(more.is_empty());
        assert_eq!(off2, off);
        // A log that was started again is read from its start.
        fs::write(&p, "").unwrap();
        append(&p, &event("volume", "create", "v", &BTreeMap::new()));
        let (evs, _) = read_from(&p, off);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0]["Type"], "volume");
    }
}
