//! A layer tar kept as its unpacked files plus the bytes between them.
//!
//! While a layer is unpacked, every byte of the tar that is not a regular
//! file's content (headers, extension records, padding, the end marker and
//! whatever follows it) is recorded, zstd-compressed, in `tar-split.raw.zst`,
//! and `tar-split.idx` lists, in order, where each file's content sits in the
//! stream and which file of the layer holds it. [`Reassembler`] puts the tar
//! back together byte for byte from those and the layer directory, checking
//! the result against the layer's diff ID, so a layer needs no second copy of
//! itself as a blob (`save` and `push` read it through the reassembler).
//!
//! A file an entry later in the tar replaces (a path written twice) is moved
//! aside to `tar-split.stash/` first; content that is not a plain file's (a
//! sparse file's, an entry that is not extracted) is recorded with the rest.
//!
//! Index format (little endian): `BTS1`, total tar size (u64), raw length
//! (u64), entry count (u32), then per entry: raw bytes before its content
//! (u64, cumulative), content size (u64), path length (u32), path bytes
//! (relative to the layer's directory: `diff/...` or `tar-split.stash/N`,
//! no symlinks on the way).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub(crate) const RAW: &str = "tar-split.raw.zst";
pub(crate) const INDEX: &str = "tar-split.idx";
/// Content an entry later in the tar replaced, kept for the tar's sake.
pub(crate) const STASH: &str = "tar-split.stash";
const MAGIC: &[u8; 4] = b"BTS1";

struct Entry {
    raw_upto: u64,
    size: u64,
    path: PathBuf,
}

/// What is recorded while a tar is read.
pub(crate) struct SplitState {
    pos: u64,
    /// The stream range of the content being skipped.
    content: Option<(u64, u64)>,
    raw: Option<zstd::Encoder<'static, BufWriter<File>>>,
    raw_len: u64,
    entries: Vec<Entry>,
    /// Physical paths whose content an entry points at.
    seen: HashSet<PathBuf>,
    usable: bool,
    dir: PathBuf,
}

impl SplitState {
    /// Starts recording into `dir` (the pending layer's directory).
    pub(crate) fn new(dir: &Path) -> Result<SplitState> {
        let path = dir.join(RAW);
        let f = File::create(&path).map_err(Error::io("create", &path))?;
        let enc = zstd::Encoder::new(BufWriter::with_capacity(256 * 1024, f), 3)
            .map_err(Error::io("compress", &path))?;
        Ok(SplitState {
            pos: 0,
            content: None,
            raw: Some(enc),
            raw_len: 0,
            entries: Vec::new(),
            seen: HashSet::new(),
            usable: true,
            dir: dir.to_path_buf(),
        })
    }

    fn raw(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(enc) = self.raw.as_mut() {
            enc.write_all(data)?;
        }
        self.raw_len += data.len() as u64;
        Ok(())
    }

    /// The next `size` bytes at stream offset `at` are the content of the
    /// file at `path` (physical, relative to the layer's `diff/`): they are
    /// not recorded.
    pub(crate) fn content(&mut self, at: u64, size: u64, path: PathBuf) {
        if size == 0 {
            return;
        }
        if self.pos > at {
            self.usable = false;
        }
        self.seen.insert(path.clone());
        self.entries.push(Entry {
            raw_upto: self.raw_len + (at - self.pos.min(at)),
            size,
            path: Path::new("diff").join(path),
        });
        self.content = Some((at, at + size));
    }

    /// An entry is about to write (or replace) the file at physical path
    /// `path`: if an earlier entry's content is there, it is moved aside to
    /// `tar-split.stash/` (outside the layer's files) and read from there.
    pub(crate) fn touched(&mut self, path: &Path) -> Result<()> {
        if !self.seen.remove(path) {
            return Ok(());
        }
        let stash = self.dir.join(STASH);
        std::fs::create_dir_all(&stash).map_err(Error::io("create", &stash))?;
        let name = Path::new(STASH).join(self.entries.len().to_string());
        let from = self.dir.join("diff").join(path);
        let to = self.dir.join(&name);
        std::fs::rename(&from, &to).map_err(Error::io("stash", &from))?;
        let old = Path::new("diff").join(path);
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.path == old) {
            e.path = name;
        }
        Ok(())
    }

    pub(crate) fn unusable(&mut self) {
        self.usable = false;
    }

    /// Ends the recording: writes the index when the split is usable, else
    /// removes what was recorded. Returns whether it is usable.
    pub(crate) fn finish(&mut self) -> Result<bool> {
        let raw_path = self.dir.join(RAW);
        if let Some(enc) = self.raw.take() {
            let w = enc.finish().map_err(Error::io("compress", &raw_path))?;
            w.into_inner()
                .map_err(|e| Error::io("write", &raw_path)(e.into_error()))?;
        }
        if !self.usable {
            let _ = std::fs::remove_file(&raw_path);
            let _ = std::fs::remove_dir_all(self.dir.join(STASH));
            return Ok(false);
        }
        let mut idx = Vec::with_capacity(32 + self.entries.len() * 64);
        idx.extend_from_slice(MAGIC);
        idx.extend_from_slice(&self.pos.to_le_bytes());
        idx.extend_from_slice(&self.raw_len.to_le_bytes());
        idx.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            let p = e.path.as_os_str().as_bytes();
            idx.extend_from_slice(&e.raw_upto.to_le_bytes());
            idx.extend_from_slice(&e.size.to_le_bytes());
            idx.extend_from_slice(&(p.len() as u32).to_le_bytes());
            idx.extend_from_slice(p);
        }
        let path = self.dir.join(INDEX);
        std::fs::write(&path, idx).map_err(Error::io("write", &path))?;
        Ok(true)
    }
}

/// Reads through to `inner`, recording what [`SplitState`] says to.
pub(crate) struct Recorder<R> {
    pub(crate) inner: R,
    pub(crate) state: Rc<RefCell<SplitState>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut st = self.state.borrow_mut();
        let (start, end) = (st.pos, st.pos + n as u64);
        match st.content {
            Some((cs, ce)) => {
                if start < cs {
                    let upto = (end.min(cs) - start) as usize;
                    st.raw(&buf[..upto])?;
                }
                if end > ce {
                    let from = (start.max(ce) - start) as usize;
                    st.raw(&buf[from..n])?;
                }
                if end >= ce {
                    st.content = None;
                }
            }
            None => st.raw(&buf[..n])?,
        }
        st.pos = end;
        Ok(n)
    }
}

/// The size of the tar a layer directory's split gives back.
pub(crate) fn total_size(layer: &Path) -> Option<u64> {
    let mut head = [0u8; 12];
    File::open(layer.join(INDEX))
        .ok()?
        .read_exact(&mut head)
        .ok()?;
    if &head[..4] != MAGIC {
        return None;
    }
    let mut at = 4;
    le_u64(&head, &mut at)
}

fn le_u64(b: &[u8], at: &mut usize) -> Option<u64> {
    let v = u64::from_le_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
    *at += 8;
    Some(v)
}

fn le_u32(b: &[u8], at: &mut usize) -> Option<u32> {
    let v = u32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
    *at += 4;
    Some(v)
}

/// A layer's tar, put back together from its split and its files, checked
/// against `diff_id` as it is read (a mismatch is an error at the end).
pub struct Reassembler {
    layer: PathBuf,
    raw: zstd::Decoder<'static, BufReader<File>>,
    entries: std::vec::IntoIter<Entry>,
    /// Raw bytes given so far.
    raw_done: u64,
    raw_len: u64,
    current: Option<(io::Take<File>, PathBuf)>,
    next_raw_upto: u64,
    pending: Option<Entry>,
    hasher: Option<Sha256>,
    expected: Digest,
    /// Total bytes of the tar.
    pub size: u64,
}

impl Reassembler {
    /// Opens the split of the layer directory `layer` (holding `diff/`),
    /// `None` if it has none.
    pub(crate) fn open(layer: &Path, diff_id: &Digest) -> Result<Option<Reassembler>> {
        let idx_path = layer.join(INDEX);
        let idx = match std::fs::read(&idx_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &idx_path)(e)),
        };
        let corrupt = || Error::Corrupt {
            path: idx_path.clone(),
            message: "truncated or not a tar split index".into(),
        };
        if idx.get(..4) != Some(&MAGIC[..]) {
            return Err(corrupt());
        }
        let mut at = 4;
        let size = le_u64(&idx, &mut at).ok_or_else(corrupt)?;
        let raw_len = le_u64(&idx, &mut at).ok_or_else(corrupt)?;
        let count = le_u32(&idx, &mut at).ok_or_else(corrupt)?;
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let raw_upto = le_u64(&idx, &mut at).ok_or_else(corrupt)?;
            let size = le_u64(&idx, &mut at).ok_or_else(corrupt)?;
            let len = le_u32(&idx, &mut at).ok_or_else(corrupt)? as usize;
            let p = idx.get(at..at + len).ok_or_else(corrupt)?;
            at += len;
            entries.push(Entry {
                raw_upto,
                size,
                path: PathBuf::from(std::ffi::OsString::from_vec(p.to_vec())),
            });
        }
        let raw_path = layer.join(RAW);
        let raw = File::open(&raw_path).map_err(Error::io("open", &raw_path))?;
        let raw = zstd::Decoder::new(raw).map_err(Error::io("decompress", &raw_path))?;
        let mut entries = entries.into_iter();
        let pending = entries.next();
        Ok(Some(Reassembler {
            layer: layer.to_path_buf(),
            raw,
            raw_done: 0,
            raw_len,
            next_raw_upto: pending.as_ref().map_or(raw_len, |e| e.raw_upto),
            pending,
            entries,
            current: None,
            hasher: Some(Sha256::new()),
            expected: diff_id.clone(),
            size,
        }))
    }

    /// Opens a file of the layer, refusing any symlink on the way: the
    /// content read must be the layer's own.
    fn open_file(&self, rel: &Path) -> io::Result<File> {
        let full = self.layer.join(rel);
        let canon = std::fs::canonicalize(&full)?;
        let root = std::fs::canonicalize(&self.layer)?;
        if canon != root.join(rel) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a plain file of the layer", rel.display()),
            ));
        }
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&full)
    }

    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((file, path)) = self.current.as_mut() {
                let n = file.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if file.limit() > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} is shorter than the layer says", path.display()),
                    ));
                }
                self.current = None;
                continue;
            }
            if self.raw_done < self.next_raw_upto {
                let want = ((self.next_raw_upto - self.raw_done) as usize).min(buf.len());
                let n = self.raw.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the layer's tar split ends early",
                    ));
                }
                self.raw_done += n as u64;
                return Ok(n);
            }
            match self.pending.take() {
                Some(e) => {
                    let f = self.open_file(&e.path)?;
                    self.current = Some((f.take(e.size), e.path));
                    self.pending = self.entries.next();
                    self.next_raw_upto = self.pending.as_ref().map_or(self.raw_len, |e| e.raw_upto);
                }
                None => return Ok(0),
            }
        }
    }
}

impl Read for Reassembler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill(buf)?;
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            return Ok(n);
        }
        if let Some(h) = self.hasher.take() {
            let actual = hex::encode(h.finalize());
            if actual != self.expected.hex() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "layer {} put back together hashes to sha256:{actual}",
                        self.expected
                    ),
                ));
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::LayerStore;
    use std::fs;

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(1);
        h.set_gid(2);
        h.set_mtime(1_700_000_000);
        h
    }

    /// A layer tar with most of what layers hold.
    fn varied() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Directory, 0);
        h.set_mode(0o755);
        b.append_data(&mut h, "etc/", &[][..]).unwrap();
        let mut h = header(tar::EntryType::Regular, 5);
        b.append_data(&mut h, "etc/motd", &b"hello"[..]).unwrap();
        let mut h = header(tar::EntryType::Regular, 0);
        b.append_data(&mut h, "etc/empty", &[][..]).unwrap();
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = header(tar::EntryType::Regular, big.len() as u64);
        b.append_data(&mut h, "usr/lib/big.bin", &big[..]).unwrap();
        // A name too long for the header: a GNU long-name record.
        let long = format!("usr/share/{}/file", "d".repeat(150));
        let mut h = header(tar::EntryType::Regular, 3);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut h = header(tar::EntryType::Symlink, 0);
        b.append_link(&mut h, "lib", "usr/lib").unwrap();
        let mut h = header(tar::EntryType::Link, 0);
        b.append_link(&mut h, "etc/motd2", "etc/motd").unwrap();
        let mut h = header(tar::EntryType::Regular, 0);
        b.append_data(&mut h, "bin/.wh.vi", &[][..]).unwrap();
        // Through a symlink to a directory of the layer.
        let mut h = header(tar::EntryType::Regular, 4);
        b.append_data(&mut h, "lib/via-link", &b"link"[..]).unwrap();
        let mut out = b.into_inner().unwrap();
        // Some tools pad archives to a record size.
        out.resize(out.len() + 4096, 0);
        out
    }

    fn unpack(tar: &[u8]) -> (tempfile::TempDir, LayerStore, Digest, bool) {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let pending = store.unpack(tar).unwrap();
        let split = pending.has_split();
        let diff = Digest::of(tar);
        let chain = store.commit(pending, &diff, None).unwrap();
        (tmp, store, chain, split)
    }

    #[test]
    fn a_layer_is_put_back_together_byte_for_byte() {
        let tar = varied();
        let (_tmp, store, chain, split) = unpack(&tar);
        assert!(split);
        let diff = Digest::of(&tar);
        let mut r = store.tar(&chain, &diff).unwrap().expect("a split");
        assert_eq!(r.size, tar.len() as u64);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), tar.len());
        assert!(out == tar, "same bytes");
        // The split is small next to the layer.
        let dir = store.dir(&chain);
        let kept = std::fs::metadata(dir.join(RAW)).unwrap().len()
            + std::fs::metadata(dir.join(INDEX)).unwrap().len();
        assert!(kept < tar.len() as u64 / 10, "{kept}");
    }

    #[test]
    fn a_changed_file_is_caught() {
        let tar = varied();
        let (_tmp, store, chain, _) = unpack(&tar);
        let f = store.diff_dir(&chain).join("etc/motd");
        std::fs::write(&f, b"HELLO").unwrap();
        let mut out = Vec::new();
        let mut r = store.tar(&chain, &Digest::of(&tar)).unwrap().unwrap();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("put back together"), "{e}");
        // A file swapped for a link to a host file is refused outright.
        std::fs::remove_file(&f).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &f).unwrap();
        let mut r = store.tar(&chain, &Digest::of(&tar)).unwrap().unwrap();
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("not a plain file"), "{e}");
    }

    #[test]
    fn a_path_written_twice_is_given_back_from_the_stash() {
        let mut b = tar::Builder::new(Vec::new());
        for data in [&b"first"[..], &b"second"[..]] {
            let mut h = header(tar::EntryType::Regular, data.len() as u64);
            b.append_data(&mut h, "etc/x", data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let (_tmp, store, chain, split) = unpack(&tar);
        assert!(split);
        assert_eq!(
            fs::read(store.diff_dir(&chain).join("etc/x")).unwrap(),
            b"second"
        );
        let mut out = Vec::new();
        let mut r = store.tar(&chain, &Digest::of(&tar)).unwrap().unwrap();
        r.read_to_end(&mut out).unwrap();
        assert!(out == tar);
    }
}
