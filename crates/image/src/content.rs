//! The content store: immutable blobs addressed by their digest.
//!
//! A blob is written to a temporary file in the store's `ingest/` directory,
//! hashed on the way, fsynced, checked against the expected digest (when one is
//! given) and renamed into `blobs/<algorithm>/<hex>`: a crash leaves at worst a
//! stray file in `ingest/`, never a partial blob under its digest. Berth hashes
//! what it makes with sha256; blobs pulled under sha512 digests keep them.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, DigestWriter};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// A blob being written; becomes visible with [`Ingest::commit`].
pub struct Ingest {
    writer: DigestWriter<File>,
    tmp: tempfile::TempPath,
    blobs: PathBuf,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Ingest {
    /// Makes the blob visible under its digest. With `expected`, a mismatch is
    /// an error and nothing is stored.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (file, digest, size) = self.writer.finish();
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(Error::DigestMismatch {
                    expected: exp.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        file.sync_all()
            .map_err(Error::io("sync", self.tmp.to_path_buf()))?;
        let dir = self.blobs.join(digest.algorithm().as_str());
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let dest = dir.join(digest.hex());
        self.tmp
            .persist(&dest)
            .map_err(|e| Error::io("store blob", &dest)(e.error))?;
        Ok((digest, size))
    }
}

/// A writer fed from another thread: writes are gathered into 1 MiB chunks
/// that a second thread passes to `W` (a hasher), so the hashing of a layer
/// runs beside its unpacking. [`Spool::finish`] hands `W` back.
pub(crate) struct Spool<W: Write + Send + 'static> {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    handle: Option<std::thread::JoinHandle<io::Result<W>>>,
}

const SPOOL_CHUNK: usize = 1 << 20;

impl<W: Write + Send + 'static> Spool<W> {
    pub(crate) fn new(mut inner: W) -> Spool<W> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let handle = std::thread::spawn(move || {
            for chunk in rx {
                inner.write_all(&chunk)?;
            }
            Ok(inner)
        });
        Spool {
            tx: Some(tx),
            buf: Vec::with_capacity(SPOOL_CHUNK),
            handle: Some(handle),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SPOOL_CHUNK));
        match self.tx.as_ref().map(|tx| tx.send(chunk)) {
            Some(Ok(())) => Ok(()),
            // The other thread stopped: its error comes out of finish().
            _ => Err(io::Error::other("the spooling thread stopped")),
        }
    }

    /// Waits for everything written to reach `W` and returns it.
    pub(crate) fn finish(mut self) -> Result<W> {
        let sent = self.send();
        self.tx = None;
        let joined = match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the spooling thread panicked")),
        };
        let inner = joined.map_err(Error::Archive)?;
        sent.map_err(Error::Archive)?;
        Ok(inner)
    }
}

impl<W: Write + Send + 'static> Write for Spool<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= SPOOL_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Spool<W> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<ContentStore> {
        for d in ["blobs/sha256", "ingest"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    /// Starts writing a new blob, hashed with sha256.
    pub fn ingest(&self) -> Result<Ingest> {
        self.ingest_as(Algorithm::Sha256)
    }

    /// Starts writing a new blob hashed with `alg`.
    pub fn ingest_as(&self, alg: Algorithm) -> Result<Ingest> {
        let dir = self.root.join("ingest");
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(Error::io("create temporary blob in", &dir))?;
        let (file, tmp) = tmp.into_parts();
        Ok(Ingest {
            writer: DigestWriter::with_algorithm(file, alg),
            tmp,
            blobs: self.root.join("blobs"),
        })
    }

    /// Stores `data` and returns its digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut w = self.ingest()?;
        w.write_all(data)
            .map_err(Error::io("write blob", self.path(&digest)))?;
        w.commit(Some(&digest))?;
        Ok(digest)
    }

    /// Reads a whole blob, verifying its digest.
    pub fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(Error::io("read blob", &path))?;
        let actual = Digest::of_as(digest.algorithm(), &data);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_verification() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let d = cs.put(b"layer").unwrap();
        assert_eq!(cs.get(&d).unwrap(), b"layer");
        // A corrupted blob is detected on read.
        fs::write(cs.path(&d), b"tampered").unwrap();
        assert!(matches!(cs.get(&d), Err(Error::DigestMismatch { .. })));
        // A wrong expected digest stores nothing.
        let mut w = cs.ingest().unwrap();
        w.write_all(b"abc").unwrap();
        let wrong = Digest::of(b"abd");
        assert!(w.commit(Some(&wrong)).is_err());
        assert!(!cs.exists(&wrong));
        assert!(!cs.exists(&Digest::of(b"abc")));
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);
    }
}
