//! Blob uploads in progress: each an `uploads/<id>/data` file that request
//! bodies are streamed onto, hashed (sha256) as they are written, never held
//! in memory. Sessions survive a restart of the server (the hash is then
//! recomputed from the file on the next use). A session ends when it is
//! finished, refused or cancelled; one left alone longer than the expiry
//! (the data file's mtime is its last activity) is removed by [`Uploads::expire`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_image::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use super::storage::{Storage, StorageError};

/// Why an append stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The client's body broke off (disconnect, bad chunking).
    #[error("reading the request body: {0}")]
    Body(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an upload could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("the upload's digest is {actual}, not {expected}")]
    Mismatch { expected: Digest, actual: Digest },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

/// A random version-4 UUID, the upload's id.
pub fn new_id() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Whether `id` has the form of our ids (and so is safe as a file name).
pub fn valid_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// One upload.
pub struct Session {
    pub id: String,
    pub repo: String,
    dir: PathBuf,
    size: u64,
    /// The sha256 hash of the `size` bytes written; None after a restart or
    /// an interrupted write, until recomputed from the file.
    hasher: Option<Hasher>,
    /// Completed or cancelled: requests still waiting on the lock see this.
    pub done: bool,
}

impl Session {
    pub fn size(&self) -> u64 {
        self.size
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Streams `body` onto the end of the upload; returns the bytes added.
    pub async fn append<B>(&mut self, mut body: B) -> Result<u64, AppendError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        self.ensure_hasher().await?;
        let path = self.data();
        let file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(io_err("open", &path))?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let mut added = 0u64;
        let result: Result<(), AppendError> = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| AppendError::Body(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    out.write_all(&data).await.map_err(io_err("write", &path))?;
                    if let Some(h) = self.hasher.as_mut() {
                        h.update(&data);
                    }
                    added += data.len() as u64;
                }
            }
            out.flush().await.map_err(io_err("write", &path))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            // What reached the file is unknown: trust the file, not the hash.
            let _ = out.flush().await;
            self.hasher = None;
            self.size = tokio::fs::metadata(&path)
                .await
                .map_err(io_err("stat", &path))?
                .len();
            return result.map(|()| added);
        }
        self.size += added;
        Ok(added)
    }

    /// Recomputes the hash from the file when it is not known.
    async fn ensure_hasher(&mut self) -> Result<(), StorageError> {
        if self.hasher.is_some() {
            return Ok(());
        }
        let (h, size) = self.hash_file(Algorithm::Sha256).await?;
        self.hasher = Some(h);
        self.size = size;
        Ok(())
    }

    /// Hashes the data file from the start.
    async fn hash_file(&self, alg: Algorithm) -> Result<(Hasher, u64), StorageError> {
        let path = self.data();
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err("open", &path))?;
        let mut h = alg.hasher();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).await.map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        Ok((h, size))
    }

    /// Checks the upload against `expected` and moves it into the blob store,
    /// linked to the upload's repository. On a mismatch nothing is stored
    /// and the upload is dropped.
    pub async fn finish(
        &mut self,
        storage: &Storage,
        expected: &Digest,
    ) -> Result<(), FinishError> {
        self.ensure_hasher().await?;
        // The running hash is sha256; another algorithm reads the file again.
        let actual = match &self.hasher {
            Some(h) if h.algorithm() == expected.algorithm() => h.clone().finish(),
            _ => self.hash_file(expected.algorithm()).await?.0.finish(),
        };
        if &actual != expected {
            self.cancel().await?;
            return Err(FinishError::Mismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let storage = storage.clone();
        let (dir, data, repo, digest) = (
            self.dir.clone(),
            self.data(),
            self.repo.clone(),
            expected.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            std::fs::File::open(&data)
                .and_then(|f| f.sync_all())
                .map_err(io_err("sync", &data))?;
            let _shared = storage.lock(false)?;
            storage.commit_blob(&data, &digest)?;
            storage.link_blob(&repo, &digest)?;
            std::fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
        })
        .await
        .map_err(|e| StorageError::Io {
            op: "finish upload",
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
        self.done = true;
        Ok(())
    }

    /// Removes the upload's files.
    pub async fn cancel(&mut self) -> Result<(), StorageError> {
        self.done = true;
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.dir)(e)),
        }
    }
}

type Shared = Arc<Mutex<Session>>;

/// The uploads of one registry root.
pub struct Uploads {
    dir: PathBuf,
    /// By id: the repository and the session (locked while a body streams).
    sessions: std::sync::Mutex<HashMap<String, (String, Shared)>>,
}

impl Uploads {
    pub fn new(storage: &Storage) -> Uploads {
        Uploads {
            dir: storage.uploads_dir(),
            sessions: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Shared)>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts an empty upload for `repo`.
    pub async fn create(&self, repo: &str) -> Result<Shared, StorageError> {
        let id = new_id().map_err(|_| StorageError::Io {
            op: "draw an upload id",
            path: self.dir.clone(),
            source: std::io::Error::other("no randomness"),
        })?;
        let dir = self.dir.join(&id);
        tokio::fs::create_dir(&dir)
            .await
            .map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        tokio::fs::File::create(&data)
            .await
            .map_err(io_err("create", &data))?;
        let repo_file = dir.join("repository");
        tokio::fs::write(&repo_file, repo)
            .await
            .map_err(io_err("write", &repo_file))?;
        let session = Arc::new(Mutex::new(Session {
            id: id.clone(),
            repo: repo.to_string(),
            dir,
            size: 0,
            hasher: Some(Hasher::default()),
            done: false,
        }));
        self.map()
            .insert(id, (repo.to_string(), Arc::clone(&session)));
        Ok(session)
    }

    /// The upload `id` of `repo`, from memory or from disk; None if unknown.
    pub async fn get(&self, repo: &str, id: &str) -> Result<Option<Shared>, StorageError> {
        if !valid_id(id) {
            return Ok(None);
        }
        if let Some((r, s)) = self.map().get(id) {
            return Ok((r == repo).then(|| Arc::clone(s)));
        }
        let dir = self.dir.join(id);
        let owner = match tokio::fs::read_to_string(dir.join("repository")).await {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &dir)(e)),
        };
        if owner != repo {
            return Ok(None);
        }
        let session = Arc::new(Mutex::new(Session {
            id: id.to_string(),
            repo: repo.to_string(),
            dir,
            size: 0,
            hasher: None,
            done: false,
        }));
        session.lock().await.ensure_hasher().await?;
        let mut map = self.map();
        let (_, s) = map
            .entry(id.to_string())
            .or_insert_with(|| (repo.to_string(), session));
        Ok(Some(Arc::clone(s)))
    }

    /// Drops a finished or cancelled upload from memory.
    pub fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// The uploads in memory (finished ones are forgotten at once).
    #[cfg(test)]
    pub fn in_memory(&self) -> usize {
        self.map().len()
    }

    /// Removes the uploads nobody has written to for `max_idle`, on disk and
    /// in memory, skipping those a request is using. Returns how many.
    pub async fn expire(&self, max_idle: Duration) -> Result<usize, StorageError> {
        let mut removed = 0;
        let mut rd = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(io_err("list", &self.dir))?;
        let mut ids = Vec::new();
        while let Some(entry) = rd.next_entry().await.map_err(io_err("list", &self.dir))? {
            if let Some(id) = entry.file_name().to_str() {
                ids.push(id.to_string());
            }
        }
        for id in ids {
            let dir = self.dir.join(&id);
            // The data file's mtime, else the directory's (a crash between
            // creating the two).
            let mut modified = None;
            for p in [dir.join("data"), dir.clone()] {
                if let Ok(m) = tokio::fs::metadata(&p).await {
                    modified = m.modified().ok();
                    break;
                }
            }
            let idle = modified
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            if idle < max_idle {
                continue;
            }
            let session = self.map().get(&id).map(|(_, s)| Arc::clone(s));
            let mut guard = match &session {
                Some(s) => match s.try_lock() {
                    Ok(g) => Some(g),
                    Err(_) => continue, // a request is streaming into it
                },
                None => None,
            };
            if let Some(g) = guard.as_mut() {
                g.done = true;
            }
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &dir)(e)),
            }
            drop(guard);
            self.forget(&id);
            tracing::info!(
                "registry: upload {id} expired after {}s idle",
                idle.as_secs()
            );
        }
        // Sessions whose directory went away some other way.
        let gone: Vec<String> = self
            .map()
            .keys()
            .filter(|id| !self.dir.join(id).exists())
            .cloned()
            .collect();
        for id in gone {
            self.forget(&id);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[test]
    fn ids() {
        let id = new_id().unwrap();
        assert!(valid_id(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert!(!valid_id("../../etc/passwd"));
        assert!(!valid_id(&id.to_uppercase()));
        assert_ne!(new_id().unwrap(), id);
    }

    #[tokio::test]
    async fn chunks_hash_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let uploads = Uploads::new(&storage);
        let s = uploads.create("me/app").await.unwrap();
        let id = s.lock().await.id.clone();
        s.lock()
            .await
            .append(Full::new(Bytes::from_static(b"hello ")))
            .await
            .unwrap();
        // As after a restart: the session is loaded from disk, rehashed.
        uploads.forget(&id);
        assert!(uploads.get("other", &id).await.unwrap().is_none());
        let s = uploads.get("me/app", &id).await.unwrap().unwrap();
        let mut s = s.lock().await;
        assert_eq!(s.size(), 6);
        s.append(Full::new(Bytes::from_static(b"world")))
            .await
            .unwrap();
        let d = Digest::of(b"hello world");
        s.finish(&storage, &d).await.unwrap();
        assert_eq!(storage.blob_size("me/app", &d).unwrap(), Some(11));
        assert!(!dir.path().join("uploads").join(&id).exists());
    }

    #[tokio::test]
    async fn sha512_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let uploads = Uploads::new(&storage);
        let s = uploads.create("a").await.unwrap();
        let mut s = s.lock().await;
        s.append(Full::new(Bytes::from_static(b"data")))
            .await
            .unwrap();
        let d = Digest::of_as(Algorithm::Sha512, b"data");
        s.finish(&storage, &d).await.unwrap();
        assert_eq!(storage.blob_size("a", &d).unwrap(), Some(4));
        assert!(dir.path().join("blobs/sha512").join(d.hex()).exists());
    }

    #[tokio::test]
    async fn idle_uploads_expire() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let uploads = Uploads::new(&storage);
        let old = uploads.create("a").await.unwrap();
        let old_id = old.lock().await.id.clone();
        let busy = uploads.create("a").await.unwrap();
        let busy_id = busy.lock().await.id.clone();
        assert_eq!(uploads.expire(Duration::from_secs(60)).await.unwrap(), 0);
        let _held = busy.lock().await;
        assert_eq!(uploads.expire(Duration::ZERO).await.unwrap(), 1);
        assert!(old.lock().await.done);
        assert!(!dir.path().join("uploads").join(&old_id).exists());
        assert!(uploads.get("a", &old_id).await.unwrap().is_none());
        assert!(dir.path().join("uploads").join(&busy_id).exists());
        assert_eq!(uploads.in_memory(), 1);
    }

    #[tokio::test]
    async fn a_wrong_digest_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let uploads = Uploads::new(&storage);
        let s = uploads.create("a").await.unwrap();
        let mut s = s.lock().await;
        s.append(Full::new(Bytes::from_static(b"data")))
            .await
            .unwrap();
        let wrong = Digest::of(b"other");
        assert!(matches!(
            s.finish(&storage, &wrong).await,
            Err(FinishError::Mismatch { .. })
        ));
        assert_eq!(storage.blob_size("a", &wrong).unwrap(), None);
        assert!(!storage.blob_path(&Digest::of(b"data")).exists());
        assert!(!dir.path().join("uploads").join(&s.id).exists());
    }
}
