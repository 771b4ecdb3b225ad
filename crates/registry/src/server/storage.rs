//! The registry's files. On-disk layout, version 1 (the `layout` file):
//!
//! ```text
//! layout                                     "berth-registry 1"
//! gc.lock                                    flock: shared by each storage step of
//!                                            the server, exclusive for a collection
//! blobs/<alg>/<hex>                          content (layers, configs, manifests),
//!                                            shared by every repository
//! repositories/<name>/_blobs/<alg>/<hex>     empty: <name> links this blob
//! repositories/<name>/_manifests/<alg>/<hex> the manifest's media type
//! repositories/<name>/_tags/<tag>            the digest the tag points at
//! repositories/<name>/_referrers/<alg>/<subject-hex>/<hex>
//!                                            descriptor (JSON, with the digest) of a
//!                                            manifest whose `subject` is the subject
//! uploads/<id>/data, uploads/<id>/repository an upload in progress; its data file's
//!                                            mtime is its last activity
//! tmp/                                       files being written, before their rename
//! ```
//!
//! `<alg>` is `sha256` or `sha512` (the algorithms the OCI image spec
//! registers that Berth computes); a root written before sha512 is the same
//! layout with only `sha256` directories. A blob's mtime is the last time it
//! was written, mounted or looked at: a collection spares blobs younger than
//! its grace period, which covers a push between its blobs and its manifest.
//!
//! Repository directories are named after the repository (`me/app` nests);
//! their own entries start with `_`, which no name component can. Every file
//! is written to `tmp/`, synced and renamed into place, so a crash never
//! leaves a partial file visible; blobs are only ever renamed in whole.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::{Algorithm, Digest};
use serde_json::Value;

const LAYOUT: &str = "berth-registry 1";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} holds layout {found:?}, this server writes {LAYOUT:?}")]
    Layout { path: PathBuf, found: String },
}

type Result<T> = std::result::Result<T, StorageError>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

/// A file's content, or None when it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Removes a file; false when it was not there.
fn remove_opt(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// The names in a directory, sorted, or None when it does not exist.
fn list_dir(dir: &Path) -> Result<Option<Vec<String>>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(Some(names))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// A manifest as stored.
pub struct StoredManifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A manifest being put.
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub tag: Option<String>,
    /// The subject's digest and this manifest's descriptor for the
    /// subject's referrers list.
    pub referrer: Option<(Digest, Value)>,
}

/// The registry's directory. Cheap to clone; every method is blocking I/O
/// (callers run them on tokio's blocking pool).
#[derive(Debug, Clone)]
pub struct Storage {
    root: Arc<Path>,
}

impl Storage {
    /// Opens (or creates) a registry root, clearing leftover temporary files.
    pub fn open(root: &Path) -> Result<Storage> {
        let s = Storage::attach(root)?;
        for name in list_dir(&s.tmp_dir())?.unwrap_or_default() {
            let path = s.tmp_dir().join(name);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!("registry: removing {}: {e}", path.display());
            }
        }
        Ok(s)
    }

    /// Opens (or creates) a registry root that a server may be using: its
    /// temporary files are left alone.
    pub fn attach(root: &Path) -> Result<Storage> {
        let s = Storage {
            root: Arc::from(root),
        };
        for dir in [
            s.root.join("blobs/sha256"),
            s.root.join("blobs/sha512"),
            s.root.join("repositories"),
            s.uploads_dir(),
            s.tmp_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        let layout = s.root.join("layout");
        match read_opt(&layout)? {
            Some(found) => {
                let found = String::from_utf8_lossy(&found).trim().to_string();
                if found != LAYOUT {
                    return Err(StorageError::Layout {
                        path: layout,
                        found,
                    });
                }
            }
            None => s.write_atomic(&layout, format!("{LAYOUT}\n").as_bytes())?,
        }
        Ok(s)
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The names in `dir` (none if it is missing).
    pub(crate) fn names_in(dir: &Path) -> Result<Vec<String>> {
        Ok(list_dir(dir)?.unwrap_or_default())
    }

    /// Removes a file or a directory tree; one already gone is no error.
    pub(crate) fn remove_any(&self, path: &Path) -> Result<()> {
        let r = match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(path),
            Ok(_) => fs::remove_file(path),
            Err(e) => Err(e),
        };
        match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", path)(e)),
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self, alg: Algorithm) -> PathBuf {
        self.root.join("blobs").join(alg.as_str())
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir(d.algorithm()).join(d.hex())
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn blob_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    fn manifest_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// The lock a collection takes exclusively and every storage step of
    /// the server shared: held until the returned file is dropped.
    pub fn lock(&self, exclusive: bool) -> Result<fs::File> {
        let path = self.root.join("gc.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        if exclusive {
            file.lock().map_err(io_err("lock", &path))?;
        } else {
            file.lock_shared().map_err(io_err("lock", &path))?;
        }
        Ok(file)
    }

    /// Sets a blob's mtime to now (it is in use: a collection spares it
    /// for its grace period).
    pub fn touch_blob(&self, d: &Digest) -> Result<()> {
        let path = self.blob_path(d);
        match fs::File::options().write(true).open(&path) {
            Ok(f) => f
                .set_modified(std::time::SystemTime::now())
                .map_err(io_err("touch", &path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("open", &path)(e)),
        }
    }

    /// The digests under `dir/<alg>/<hex>` (a repository's `_blobs` or
    /// `_manifests`, or the blob store), skipping names that are not digests.
    pub fn digests_in(dir: &Path) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in Algorithm::ALL {
            for hex in list_dir(&dir.join(alg.as_str()))?.unwrap_or_default() {
                if let Ok(d) = Digest::from_parts(alg, &hex) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// The manifests a repository links.
    pub fn manifests(&self, name: &str) -> Result<Vec<Digest>> {
        Storage::digests_in(&self.repo_dir(name).join("_manifests"))
    }

    /// The blobs a repository links.
    pub fn linked_blobs(&self, name: &str) -> Result<Vec<Digest>> {
        Storage::digests_in(&self.repo_dir(name).join("_blobs"))
    }

    /// Every blob in the store.
    pub fn all_blobs(&self) -> Result<Vec<Digest>> {
        Storage::digests_in(&self.root.join("blobs"))
    }

    /// A blob's content, or None.
    pub fn read_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        read_opt(&self.blob_path(d))
    }

    /// Removes a blob's content (a collection's sweep).
    pub fn remove_blob(&self, d: &Digest) -> Result<bool> {
        remove_opt(&self.blob_path(d))
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_tags").join(tag)
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers")
            .join(subject.algorithm().as_str())
            .join(subject.hex())
    }

    /// Writes `data` to `path` through a synced temporary file and a rename,
    /// then syncs the directory.
    pub fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
            .map_err(io_err("create a temporary file in", &tmp_dir))?;
        tmp.write_all(data).map_err(io_err("write", tmp.path()))?;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_err("sync", path))?;
        tmp.persist(path)
            .map_err(|e| io_err("rename into", path)(e.error))?;
        sync_dir(dir)
    }

    /// Whether the repository exists (has ever had a blob, manifest or tag).
    pub fn repo_exists(&self, name: &str) -> bool {
        let dir = self.repo_dir(name);
        ["_blobs", "_manifests", "_tags"]
            .iter()
            .any(|d| dir.join(d).is_dir())
    }

    /// The size of a blob the repository links, or None.
    pub fn blob_size(&self, name: &str, d: &Digest) -> Result<Option<u64>> {
        if !self.blob_link(name, d).exists() {
            return Ok(None);
        }
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", &self.blob_path(d))(e)),
        }
    }

    /// Whether the repository links a blob whose content is present.
    pub fn has_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        Ok(self.blob_size(name, d)?.is_some())
    }

    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<()> {
        let link = self.blob_link(name, d);
        if link.exists() {
            return Ok(());
        }
        self.write_atomic(&link, b"")
    }

    /// Unlinks a blob from a repository; the content stays for the others.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        remove_opt(&self.blob_link(name, d))
    }

    /// Moves a complete, synced, verified file into the blob store. Several
    /// clients may commit the same blob at once: each rename is atomic and
    /// they all carry the same bytes.
    pub fn commit_blob(&self, src: &Path, d: &Digest) -> Result<()> {
        let dest = self.blob_path(d);
        if dest.exists() {
            remove_opt(src)?;
            return self.touch_blob(d);
        }
        fs::rename(src, &dest).map_err(io_err("rename into", &dest))?;
        sync_dir(dest.parent().unwrap_or(&self.root))?;
        self.touch_blob(d)
    }

    /// Stores a manifest: its bytes as a blob, the referrers entry, the
    /// repository link and last the tag, so a tag never names a manifest
    /// that is not there.
    pub fn put_manifest(&self, name: &str, m: &NewManifest) -> Result<()> {
        let blob = self.blob_path(&m.digest);
        if !blob.exists() {
            self.write_atomic(&blob, &m.bytes)?;
        }
        if let Some((subject, descriptor)) = &m.referrer {
            let path = self.referrers_dir(name, subject).join(m.digest.hex());
            let data = serde_json::to_vec(descriptor).unwrap_or_default();
            self.write_atomic(&path, &data)?;
        }
        self.write_atomic(
            &self.manifest_link(name, &m.digest),
            m.media_type.as_bytes(),
        )?;
        if let Some(tag) = &m.tag {
            self.write_atomic(&self.tag_path(name, tag), m.digest.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// A manifest the repository links, or None.
    pub fn manifest(&self, name: &str, d: &Digest) -> Result<Option<StoredManifest>> {
        let Some(media_type) = read_opt(&self.manifest_link(name, d))? else {
            return Ok(None);
        };
        let Some(bytes) = read_opt(&self.blob_path(d))? else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            media_type: String::from_utf8_lossy(&media_type).trim().to_string(),
            bytes,
        }))
    }

    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        Ok(read_opt(&self.tag_path(name, tag))?
            .and_then(|d| String::from_utf8_lossy(&d).trim().parse().ok()))
    }

    /// Unlinks a manifest, the tags that point at it and its referrers entry.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<bool> {
        let Some(m) = self.manifest(name, d)? else {
            return Ok(false);
        };
        remove_opt(&self.manifest_link(name, d))?;
        for tag in self.tags(name)?.unwrap_or_default() {
            if self.resolve_tag(name, &tag)?.as_ref() == Some(d) {
                remove_opt(&self.tag_path(name, &tag))?;
            }
        }
        let subject = serde_json::from_slice::<Value>(&m.bytes)
            .ok()
            .and_then(|v| v["subject"]["digest"].as_str()?.parse::<Digest>().ok());
        if let Some(subject) = subject {
            remove_opt(&self.referrers_dir(name, &subject).join(d.hex()))?;
        }
        Ok(true)
    }

    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        remove_opt(&self.tag_path(name, tag))
    }

    /// The repository's tags, sorted, or None for an unknown repository.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        Ok(Some(
            list_dir(&self.repo_dir(name).join("_tags"))?.unwrap_or_default(),
        ))
    }

    /// Every repository, sorted.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        self.walk(&base, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn walk(&self, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        for entry in list_dir(dir)?.unwrap_or_default() {
            if entry.starts_with('_') {
                continue;
            }
            let path = dir.join(&entry);
            if !path.is_dir() {
                continue;
            }
            let name = if prefix.is_empty() {
                entry
            } else {
                format!("{prefix}/{entry}")
            };
            if self.repo_exists(&name) {
                out.push(name.clone());
            }
            self.walk(&path, &name, out)?;
        }
        Ok(())
    }

    /// Descriptors of the manifests (still linked) whose subject is `subject`.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<Value>> {
        let dir = self.referrers_dir(name, subject);
        let mut out = Vec::new();
        for entry in list_dir(&dir)?.unwrap_or_default() {
            let Some(data) = read_opt(&dir.join(&entry))? else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<Value>(&data) else {
                continue;
            };
            let linked = v["digest"]
                .as_str()
                .and_then(|d| d.parse::<Digest>().ok())
                .is_some_and(|d| self.manifest_link(name, &d).exists());
            if linked {
                out.push(v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(bytes: &[u8], tag: Option<&str>) -> NewManifest {
        NewManifest {
            digest: Digest::of(bytes),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            bytes: bytes.to_vec(),
            tag: tag.map(String::from),
            referrer: None,
        }
    }

    #[test]
    fn blobs_are_shared_but_linked_per_repository() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        let src = dir.path().join("tmp/upload");
        fs::write(&src, b"hello").unwrap();
        s.commit_blob(&src, &d).unwrap();
        s.link_blob("a", &d).unwrap();
        assert_eq!(s.blob_size("a", &d).unwrap(), Some(5));
        assert_eq!(s.blob_size("b", &d).unwrap(), None);
        s.link_blob("b/c", &d).unwrap();
        assert!(s.has_blob("b/c", &d).unwrap());
        assert!(s.unlink_blob("a", &d).unwrap());
        assert!(!s.has_blob("a", &d).unwrap());
        assert!(s.has_blob("b/c", &d).unwrap());
        assert_eq!(s.repositories().unwrap(), vec!["a", "b/c"]);
    }

    #[test]
    fn manifests_tags_and_referrers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let m = manifest(b"{\"a\":1}", Some("v1"));
        s.put_manifest("me/app", &m).unwrap();
        assert_eq!(
            s.resolve_tag("me/app", "v1").unwrap(),
            Some(m.digest.clone())
        );
        assert_eq!(s.tags("me/app").unwrap(), Some(vec!["v1".to_string()]));
        assert_eq!(s.tags("other").unwrap(), None);
        let got = s.manifest("me/app", &m.digest).unwrap().unwrap();
        assert_eq!(got.bytes, m.bytes);
        assert_eq!(got.media_type, m.media_type);

        let body = format!("{{\"subject\":{{\"digest\":\"{}\"}}}}", m.digest);
        let mut r = manifest(body.as_bytes(), None);
        r.referrer = Some((m.digest.clone(), json!({"digest": r.digest.to_string()})));
        s.put_manifest("me/app", &r).unwrap();
        assert_eq!(s.referrers("me/app", &m.digest).unwrap().len(), 1);
        assert!(s.delete_manifest("me/app", &r.digest).unwrap());
        assert!(s.referrers("me/app", &m.digest).unwrap().is_empty());

        assert!(s.delete_manifest("me/app", &m.digest).unwrap());
        assert_eq!(s.resolve_tag("me/app", "v1").unwrap(), None);
        assert!(!s.delete_manifest("me/app", &m.digest).unwrap());
    }

    #[test]
    fn a_foreign_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("layout"), "something else 9\n").unwrap();
        assert!(matches!(
            Storage::open(dir.path()),
            Err(StorageError::Layout { .. })
        ));
    }
}
