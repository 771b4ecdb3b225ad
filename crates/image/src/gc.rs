//! Deleting images, and collecting the layers and blobs nothing references.
//!
//! Writers (import, commit, load) hold `gc.lock` shared from their first blob
//! to their metadata update; the collector holds it exclusively, so it never
//! sees a blob or layer whose image is not recorded yet.

use std::collections::HashSet;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

/// Held while blobs and layers of an image are being written.
pub struct WriteGuard(#[allow(dead_code)] Flock<File>);

/// Bytes under `p` (not following symlinks).
pub fn dir_size(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// The files (device, inode) some process on the host has open, as the
/// descriptors in /proc show them.
fn open_files() -> HashSet<(u64, u64)> {
    let mut open = HashSet::new();
    for p in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for fd in fs::read_dir(p.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(m) = fs::metadata(fd.path()) {
                open.insert((m.dev(), m.ino()));
            }
        }
    }
    open
}

impl Store {
    pub(crate) fn gc_lock(&self, arg: FlockArg) -> Result<Flock<File>> {
        let path = self.root().join("gc.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        Flock::lock(f, arg).map_err(|(_, e)| Error::io("lock", &path)(e.into()))
    }

    /// Taken by every writer of blobs and layers. A writer that finds no
    /// other at work first collects what interrupted ones left (see
    /// [`Store::sweep_interrupted`]), so a killed pull, load, commit or
    /// build leaves nothing behind past the next one.
    pub fn write_guard(&self) -> Result<WriteGuard> {
        if let Ok(alone) = self.gc_lock(FlockArg::LockExclusiveNonblock) {
            self.sweep_interrupted();
            drop(alone);
        }
        self.gc_lock(FlockArg::LockShared).map(WriteGuard)
    }

    /// What interrupted writers left: temporary layer directories
    /// (`layers/.tmp-*`) and partial blobs (`ingest/*`), with their paths
    /// and sizes. Only meaningful with no writer at work.
    pub fn interrupted(&self) -> Vec<(std::path::PathBuf, u64)> {
        let mut out = Vec::new();
        let layers = self.layers().root().to_path_buf();
        for e in fs::read_dir(&layers).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push((e.path(), dir_size(&e.path())));
            }
        }
        // A reader (`save`, `push`) spools into ingest/ without the writers'
        // lock: a file some process still has open is not left over.
        let ingest: Vec<(std::path::PathBuf, (u64, u64))> =
            fs::read_dir(self.root().join("ingest"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((e.path(), (m.dev(), m.ino())))
                })
                .collect();
        if !ingest.is_empty() {
            let open = open_files();
            for (path, key) in ingest {
                if !open.contains(&key) {
                    out.push((path.clone(), dir_size(&path)));
                }
            }
        }
        out
    }

    /// Removes what interrupted writers left (under the collector's lock,
    /// held exclusively: no writer is at work).
    fn sweep_interrupted(&self) {
        for (path, _) in self.interrupted() {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {
                    tracing::debug!("removed {}, left by an interrupted writer", path.display())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("remove {}: {e}", path.display()),
            }
        }
    }

    /// Removes a reference (`rmi` of one of several names).
    pub fn untag(&self, reference: &Reference) -> Result<()> {
        self.metadata.update(|doc| {
            doc.refs
                .remove(&reference.to_string())
                .map(|_| ())
                .ok_or_else(|| Error::ImageNotFound(reference.familiar()))
        })
    }

    /// Forgets an image and every reference to it; its blobs and layers go at
    /// the next [`Store::collect_garbage`].
    pub fn delete(&self, id: &Digest) -> Result<()> {
        self.metadata.update(|doc| {
            doc.images
                .remove(id)
                .ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
            doc.refs.retain(|_, v| v != id);
            Ok(())
        })
    }

    /// Removes every layer and blob no image references. Returns bytes freed.
    pub fn collect_garbage(&self) -> Result<u64> {
        let _exclusive = self.gc_lock(FlockArg::LockExclusive)?;
        let mut blobs: HashSet<String> = HashSet::new();
        let mut chains: HashSet<String> = HashSet::new();
        for img in self.list()? {
            blobs.insert(img.id.to_string());
            blobs.insert(img.manifest.to_string());
            let manifest = match self.manifest(&img) {
                Ok(m) => Some(m),
                // A damaged image keeps what of it can still be read.
                Err(_) if img.damaged.is_some() => None,
                Err(e) => return Err(e),
            };
            for l in manifest.iter().flat_map(|m| m.layers()) {
                blobs.insert(l.digest().to_string());
            }
            for c in &img.chain_ids {
                chains.insert(c.hex().to_string());
            }
        }
        let mut freed = 0;
        for alg in crate::digest::Algorithm::ALL {
            let blob_dir = self.root().join("blobs").join(alg.as_str());
            let entries = match fs::read_dir(&blob_dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", &blob_dir)(e)),
            };
            for e in entries.flatten() {
                let name = format!("{alg}:{}", e.file_name().to_string_lossy());
                if !blobs.contains(&name) {
                    freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                    fs::remove_file(e.path()).map_err(Error::io("remove", e.path()))?;
                }
            }
        }
        let layers = self.layers().root().to_path_buf();
        for e in fs::read_dir(&layers)
            .map_err(Error::io("read", &layers))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "l" || chains.contains(&name) {
                continue;
            }
            // Unreferenced layers, and temporary ones left by a crash.
            freed += dir_size(&e.path());
            fs::remove_dir_all(e.path()).map_err(Error::io("remove", e.path()))?;
        }
        let links = layers.join("l");
        if let Ok(rd) = fs::read_dir(&links) {
            for e in rd.flatten() {
                if !e.path().exists() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        for e in fs::read_dir(self.root().join("ingest"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = fs::remove_file(e.path());
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_some_process_has_open_is_seen_open() {
        let dir = tempfile::tempdir().unwrap();
        let held = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let closed = dir.path().join("closed");
        fs::write(&closed, b"x").unwrap();
        let key = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let open = open_files();
        assert!(open.contains(&key(held.path())));
        assert!(!open.contains(&key(&closed)));
    }
}
