//! The image metadata store: which images exist and which references name them.
//!
//! One JSON document, `images.json`, versioned by its `schema` field. Every
//! change takes an exclusive `flock` on `images.lock`, reads, modifies and
//! writes the document back through a temporary file and a rename, so
//! concurrent `berth` processes never lose each other's updates and a crash
//! leaves either the old or the new document.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// Digest of the image's OCI manifest.
    pub manifest: Digest,
    /// When the image was created (RFC 3339).
    pub created: String,
    /// The image a build step made this one from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// The build step's cache key (its instruction and inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_key: Option<String>,
    /// A build step's image that no build produced as its result: build
    /// cache, hidden from `images` unless `-a`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intermediate: bool,
    /// `name@sha256:...` of the manifests registries served or took for
    /// this image (docker's RepoDigests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct Document {
    pub schema: u32,
    /// Image ID (config digest) -> record.
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Normalised reference (`docker.io/library/busybox:latest`) -> image ID.
    pub refs: BTreeMap<String, Digest>,
}

#[derive(Debug, Clone)]
pub(crate) struct MetadataStore {
    path: PathBuf,
    lock: PathBuf,
}

impl MetadataStore {
    pub(crate) fn open(root: &Path) -> MetadataStore {
        MetadataStore {
            path: root.join("images.json"),
            lock: root.join("images.lock"),
        }
    }

    /// The exclusive lock, held until the returned guard is dropped.
    fn lock(&self) -> Result<Flock<File>> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(Error::io("open", &self.lock))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io("lock", &self.lock)(e.into()))
    }

    pub(crate) fn read(&self) -> Result<Document> {
        match fs::read(&self.path) {
            Ok(data) => {
                let doc: Document = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
                    path: self.path.clone(),
                    message: e.to_string(),
                })?;
                if doc.schema > SCHEMA {
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        message: format!(
                            "schema {} is newer than this berth understands ({SCHEMA})",
                            doc.schema
                        ),
                    });
                }
                Ok(doc)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Document {
                schema: SCHEMA,
                ..Default::default()
            }),
            Err(e) => Err(Error::io("read", &self.path)(e)),
        }
    }

    /// Applies `change` to the document under the lock and saves it atomically.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut Document) -> Result<T>) -> Result<T> {
        let _guard = self.lock()?;
        let mut doc = self.read()?;
        let out = change(&mut doc)?;
        doc.schema = SCHEMA;
        let json = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &json)?;
        Ok(out)
    }
}

/// Writes `data` to `path` through a synced temporary file and a rename: after
/// a crash, or a power loss, `path` holds either the old or the new content.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    replace(path, data, true)
}

/// Like [`write_atomic`] without the sync, for files that are regenerated
/// whenever they are needed: readers never see a partial file.
pub fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    replace(path, data, false)
}

fn replace(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(Error::io("create temporary file in", dir))?;
    tmp.write_all(data).map_err(Error::io("write", path))?;
    // Temporary files are created private; the result is an ordinary file.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(Error::io("chmod", path))?;
    if durable {
        tmp.as_file().sync_all().map_err(Error::io("sync", path))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_updates_are_not_lost() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let store = MetadataStore::open(&root);
                    store
                        .update(|doc| {
                            doc.refs.insert(format!("r{i}"), Digest::of(&[i as u8]));
                            Ok(())
                        })
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let doc = MetadataStore::open(&root).read().unwrap();
        assert_eq!(doc.refs.len(), 8);
        assert_eq!(doc.schema, SCHEMA);
    }
}
