//! Unpacked layers, one directory per chain ID, shared by every image and
//! container that stacks them.

use std::cell::RefCell;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::split::{Reassembler, Recorder, SplitState};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The chain ID of a layer on top of `parent` (OCI image spec).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in the layer.
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

/// A layer being unpacked into a temporary directory.
pub struct PendingLayer {
    dir: tempfile::TempDir,
    size: u64,
    split: bool,
}

impl PendingLayer {
    /// Whether the layer's tar can be put back together from its files (see
    /// [`crate::split`]); if not, its blob must be kept.
    pub fn has_split(&self) -> bool {
        self.split
    }
}

impl LayerStore {
    pub fn open(root: &Path) -> Result<LayerStore> {
        let root = root.join("layers");
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        Ok(LayerStore { root })
    }

    /// The directory holding the layers (overlay lowerdirs are relative to it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    /// The layer's files.
    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("diff")
    }

    /// The short name overlay options use for a layer: `l/<16 hex>`, a symlink
    /// to its `diff` directory, relative to [`LayerStore::root`]. Short names
    /// keep the mount options of a 100-layer image under a page.
    pub fn link(&self, chain: &Digest) -> PathBuf {
        PathBuf::from("l").join(&chain.hex()[..16])
    }

    /// Creates the layer's short link if it is missing.
    pub fn ensure_link(&self, chain: &Digest) -> Result<()> {
        let link = self.root.join(self.link(chain));
        if fs::symlink_metadata(&link).is_ok() {
            return Ok(());
        }
        let dir = self.root.join("l");
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let target = PathBuf::from("..").join(chain.hex()).join("diff");
        match std::os::unix::fs::symlink(&target, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::io("link", &link)(e)),
        }
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.dir(chain).join("layer.json").exists()
    }

    pub fn info(&self, chain: &Digest) -> Result<LayerInfo> {
        let p = self.dir(chain).join("layer.json");
        let data = fs::read(&p).map_err(Error::io("read", &p))?;
        serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path: p,
            message: e.to_string(),
        })
    }

    /// Unpacks an uncompressed layer tar (with OCI whiteouts) into a new
    /// temporary layer directory.
    pub fn unpack(&self, tar: impl Read) -> Result<PendingLayer> {
        let dir = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.root)
            .map_err(Error::io("create temporary layer in", &self.root))?;
        let diff = dir.path().join("diff");
        fs::create_dir(&diff).map_err(Error::io("create", &diff))?;
        let state = Rc::new(RefCell::new(SplitState::new(dir.path())?));
        let recorder = Recorder {
            inner: tar,
            state: state.clone(),
        };
        let size = apply(recorder, &diff, &state)?;
        let split = state.borrow_mut().finish()?;
        Ok(PendingLayer { dir, size, split })
    }

    /// The layer's tar, put back together from its files, if it has a split.
    pub fn tar(&self, chain: &Digest, diff_id: &Digest) -> Result<Option<Reassembler>> {
        Reassembler::open(&self.dir(chain), diff_id)
    }

    /// Makes an unpacked layer visible under its chain ID. If the layer is
    /// already there (the same content imported twice), the new copy is dropped.
    pub fn commit(
        &self,
        pending: PendingLayer,
        diff_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<Digest> {
        let chain = chain_id(parent, diff_id);
        if self.exists(&chain) {
            return Ok(chain);
        }
        let info = LayerInfo {
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: pending.size,
        };
        let meta = pending.dir.path().join("layer.json");
        let json = serde_json::to_vec_pretty(&info).map_err(|e| Error::Corrupt {
            path: meta.clone(),
            message: e.to_string(),
        })?;
        fs::write(&meta, json).map_err(Error::io("write", &meta))?;
        let tmp = pending.dir.keep();
        let dest = self.dir(&chain);
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_dir_all(&tmp);
            if !self.exists(&chain) {
                return Err(Error::io("store layer", &dest)(e));
            }
        }
        self.ensure_link(&chain)?;
        Ok(chain)
    }
}

/// The path `target` (inside `root`, which is canonical) names, relative to
/// `root`, with the symlinks of its existing parents resolved (parents that
/// do not exist yet will be made as plain directories).
fn physical(root: &Path, target: &Path) -> Option<PathBuf> {
    let mut existing = target.parent()?;
    let mut rest = vec![target.file_name()?];
    while fs::symlink_metadata(existing).is_err() {
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
    let mut p = fs::canonicalize(existing).ok()?;
    for c in rest.iter().rev() {
        p.push(c);
    }
    p.strip_prefix(root).ok().map(Path::to_path_buf)
}

/// Where entries of one layer land, relative to its (initially empty)
/// directory: the lexical path, unless one of its parents is a symlink or
/// hard link this layer made, when the filesystem is asked.
struct Places {
    root: PathBuf,
    dest: PathBuf,
    links: std::collections::HashSet<PathBuf>,
}

impl Places {
    fn lexical(rel: &Path) -> Option<PathBuf> {
        let mut out = PathBuf::new();
        for c in rel.components() {
            match c {
                std::path::Component::Normal(n) => out.push(n),
                std::path::Component::CurDir | std::path::Component::RootDir => {}
                _ => return None,
            }
        }
        Some(out)
    }

    /// The physical path (relative to the layer) an entry at `rel` names.
    fn of(&self, rel: &Path) -> Option<PathBuf> {
        let lex = Self::lexical(rel)?;
        if self.through_link(&lex) {
            return physical(&self.root, &self.dest.join(&lex));
        }
        Some(lex)
    }

    /// `rel` as it stands, when no parent of it is a link this layer made
    /// (so nothing on the way can lead out of the layer).
    fn plain(&self, rel: &Path) -> Option<PathBuf> {
        let lex = Self::lexical(rel)?;
        (!lex.as_os_str().is_empty() && !self.through_link(&lex)).then_some(lex)
    }

    fn through_link(&self, lex: &Path) -> bool {
        lex.ancestors().skip(1).any(|a| self.links.contains(a))
    }

    fn link_made(&mut self, rel: &Path) {
        if let Some(lex) = Self::lexical(rel) {
            self.links.insert(lex);
        }
    }
}

/// Applies a layer tar onto `dest`, turning OCI whiteout files into overlayfs
/// whiteouts (0/0 character devices) and opaque markers into the opaque xattr,
/// and tells `split` where each file's content went. The tar is read to its
/// end. Returns the number of content bytes.
fn apply<R: Read>(tar: R, dest: &Path, split: &Rc<RefCell<SplitState>>) -> Result<u64> {
    let root = fs::canonicalize(dest).map_err(Error::io("resolve", dest))?;
    let size = apply_entries(tar::Archive::new(tar), dest, &root, split)?;
    Ok(size)
}

fn apply_entries<R: Read>(
    mut archive: tar::Archive<R>,
    dest: &Path,
    root: &Path,
    split: &Rc<RefCell<SplitState>>,
) -> Result<u64> {
    let mut places = Places {
        root: root.to_path_buf(),
        dest: dest.to_path_buf(),
        links: Default::default(),
    };
    // The directory the last plain file went into (made already).
    let mut made: Option<PathBuf> = None;
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut size = 0u64;
    for entry in archive.entries().map_err(Error::Archive)? {
        let mut entry = entry.map_err(Error::Archive)?;
        let path = entry.path().map_err(Error::Archive)?.into_owned();
        if let Some(phys) = places.of(&path) {
            split.borrow_mut().touched(&phys)?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let parent = path.parent().unwrap_or(Path::new(""));
            // unpack_in refuses paths that escape dest; create the parent the same way.
            let parent_dir = safe_join(dest, parent)?;
            ensure_inside(dest, &parent_dir, &path)?;
            if name == OPAQUE_MARKER {
                xattr_set(&parent_dir, "trusted.overlay.opaque", b"y")?;
            } else {
                let target = parent_dir.join(hidden);
                if let Some(phys) = places.of(&parent.join(hidden)) {
                    split.borrow_mut().touched(&phys)?;
                }
                let _ = fs::remove_file(&target);
                mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                    .map_err(|e| Error::io("create whiteout", &target)(e.into()))?;
            }
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            make_special(&entry, &path, dest)?;
            continue;
        }
        let content = entry.header().size().unwrap_or(0);
        size += content;
        let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        if regular && content > 0 {
            // The content's place in the stream, and the file that holds it.
            // (Content with no place in the layer is recorded as it passes.)
            let at = entry.raw_file_position();
            if let Some(p) = places.of(&path) {
                split.borrow_mut().content(at, content, p);
            }
        }
        if kind.is_symlink() || kind.is_hard_link() {
            places.link_made(&path);
        }
        match places.plain(&path).filter(|_| regular) {
            // A plain file on a plain path: made where it stands, without the
            // tar crate's resolution of every parent (no link of this layer
            // is on the way, and the layer started empty).
            Some(lex) => {
                let target = dest.join(&lex);
                if let Some(parent) = target.parent() {
                    if made.as_deref() != Some(parent) {
                        fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
                        made = Some(parent.to_path_buf());
                    }
                }
                entry.unpack(&target).map_err(Error::Archive)?;
            }
            None => {
                if !entry.unpack_in(dest).map_err(Error::Archive)? && regular && content > 0 {
                    split.borrow_mut().unusable();
                }
            }
        }
    }
    // Whatever follows the end marker belongs to the blob too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(Error::Archive)?;
    Ok(size)
}

/// Creates a device node or fifo entry (the tar crate writes them as files).
fn make_special<R: Read>(entry: &tar::Entry<'_, R>, path: &Path, dest: &Path) -> Result<()> {
    let h = entry.header();
    let target = safe_join(dest, path)?;
    if let Some(parent) = target.parent() {
        ensure_inside(dest, parent, path)?;
    }
    let kind = h.entry_type();
    let sflag = if kind.is_fifo() {
        SFlag::S_IFIFO
    } else if kind.is_block_special() {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFCHR
    };
    let mode = h.mode().map_err(Error::Archive)? & 0o7777;
    let major = h.device_major().ok().flatten().unwrap_or(0) as u64;
    let minor = h.device_minor().ok().flatten().unwrap_or(0) as u64;
    let _ = fs::remove_file(&target);
    mknod(
        &target,
        sflag,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .map_err(|e| Error::io("create node", &target)(e.into()))?;
    let uid = h.uid().map_err(Error::Archive)? as u32;
    let gid = h.gid().map_err(Error::Archive)? as u32;
    nix::unistd::fchownat(
        None,
        &target,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io("chown", &target)(e.into()))?;
    Ok(())
}

/// Creates `dir` (inside `dest`) one directory at a time, each only after
/// the path so far is checked to resolve inside the layer: no symlink
/// planted by an earlier entry may lead out of it, nor get directories made
/// outside before the check.
fn ensure_inside(dest: &Path, dir: &Path, entry: &Path) -> Result<()> {
    let leaves = || {
        Error::Archive(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("archive path {} leaves the layer", entry.display()),
        ))
    };
    let root = fs::canonicalize(dest).map_err(Error::io("resolve", dest))?;
    let rel = dir.strip_prefix(dest).map_err(|_| leaves())?;
    let mut cur = dest.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(_) => {
                // There (a directory, or a link an earlier entry made):
                // wherever it leads must be inside. A dangling link is
                // refused: making its target would make it outside.
                let canon = fs::canonicalize(&cur).map_err(|_| leaves())?;
                if !canon.starts_with(&root) {
                    return Err(leaves());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Its parent resolved inside a moment ago.
                fs::create_dir(&cur).map_err(Error::io("create", &cur))?;
            }
            Err(e) => return Err(Error::io("inspect", &cur)(e)),
        }
    }
    Ok(())
}

/// `dest/rel` for an archive path, refusing `..` and absolute escapes.
pub(crate) fn safe_join(dest: &Path, rel: &Path) -> Result<PathBuf> {
    let mut out = dest.to_path_buf();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => {
                return Err(Error::Archive(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("archive path {} leaves the layer", rel.display()),
                )))
            }
        }
    }
    Ok(out)
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| Error::io("set xattr on", path)(e.into()))?;
    let cname =
        std::ffi::CString::new(name).map_err(|e| Error::io("set xattr on", path)(e.into()))?;
    // SAFETY: both strings are NUL-terminated and the value slice is valid for its length.
    let r = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(Error::io("set xattr on", path)(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(None, &a), a);
        assert_eq!(
            chain_id(Some(&a), &b),
            Digest::of(format!("{a} {b}").as_bytes())
        );
    }

    #[test]
    fn unpack_commit_and_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let data = tar_with(&[
            ("etc/motd", b"hi"),
            ("bin/.wh.vi", b""),
            ("usr/.wh..wh..opq", b""),
        ]);
        let pending = store.unpack(&data[..]).unwrap();
        let diff = Digest::of(&data);
        let chain = store.commit(pending, &diff, None).unwrap();
        let dir = store.diff_dir(&chain);
        assert_eq!(fs::read(dir.join("etc/motd")).unwrap(), b"hi");
        use std::os::unix::fs::FileTypeExt;
        let wh = fs::symlink_metadata(dir.join("bin/vi")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(store.info(&chain).unwrap().size, 2);
        // Committing the same content again keeps one copy.
        let again = store.unpack(&data[..]).unwrap();
        assert_eq!(store.commit(again, &diff, None).unwrap(), chain);
        let dirs = fs::read_dir(store.root())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "l")
            .count();
        assert_eq!(dirs, 1);
        assert_eq!(
            fs::read_link(store.root().join(store.link(&chain))).unwrap(),
            Path::new("..").join(chain.hex()).join("diff")
        );
    }

    #[test]
    fn rejects_escaping_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Regular);
        // tar::Builder refuses "..", so write the name bytes directly.
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../../.wh.etc");
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        let data = b.into_inner().unwrap();
        assert!(store.unpack(&data[..]).is_err());
    }
}

/// Hand-built hostile layers: whatever an entry tries, nothing outside the
/// layer directory changes (the entry is refused or kept inside).
#[cfg(test)]
mod hostile {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A tar entry with a raw (unchecked) name and link name.
    fn raw(b: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b.resize(b.len().div_ceil(512) * 512, 0);
    }

    fn finish(mut b: Vec<u8>) -> Vec<u8> {
        b.resize(b.len() + 1024, 0);
        b
    }

    /// Unpacks `tar` next to a sentinel file and checks the sentinel and the
    /// directory around the store are untouched.
    fn contained(tar: Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let sentinel = outside.join("sentinel");
        fs::write(&sentinel, b"original").unwrap();
        let store = LayerStore::open(&tmp.path().join("store")).unwrap();
        let result = store.unpack(&tar[..]);
        assert_eq!(fs::read(&sentinel).unwrap(), b"original");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            1,
            "something was written outside"
        );
        assert_eq!(
            fs::metadata(&sentinel).unwrap().nlink(),
            1,
            "the host file got a hard link"
        );
        if let Ok(pending) = result {
            // Whatever was kept lies inside the layer.
            for e in walk(&pending.dir.path().join("diff")) {
                let m = fs::symlink_metadata(&e).unwrap();
                assert!(m.ino() != fs::metadata(&sentinel).unwrap().ino());
            }
        }
        let _ = fs::remove_dir_all(tmp.path().join("store"));
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                out.push(e.path());
                if e.file_type().unwrap().is_dir() {
                    out.extend(walk(&e.path()));
                }
            }
        }
        out
    }

    #[test]
    fn parent_directory_names() {
        let mut b = Vec::new();
        raw(
            &mut b,
            "../../outside/sentinel",
            tar::EntryType::Regular,
            "",
            b"evil",
        );
        raw(
            &mut b,
            "a/../../../outside/new",
            tar::EntryType::Regular,
            "",
            b"evil",
        );
        contained(finish(b));
    }

    #[test]
    fn absolute_names() {
        let tmp_target = std::env::temp_dir().join("berth-hostile-abs");
        let _ = fs::remove_file(&tmp_target);
        let mut b = Vec::new();
        raw(
            &mut b,
            tmp_target.to_str().unwrap(),
            tar::EntryType::Regular,
            "",
            b"evil",
        );
        contained(finish(b));
        assert!(!tmp_target.exists(), "absolute path written on the host");
    }

    #[test]
    fn file_through_a_symlink() {
        let mut b = Vec::new();
        raw(
            &mut b,
            "link",
            tar::EntryType::Symlink,
            "../../outside",
            b"",
        );
        raw(&mut b, "link/new", tar::EntryType::Regular, "", b"evil");
        raw(&mut b, "root", tar::EntryType::Symlink, "/", b"");
        raw(
            &mut b,
            "root/tmp/berth-hostile-root",
            tar::EntryType::Regular,
            "",
            b"evil",
        );
        contained(finish(b));
        assert!(!Path::new("/tmp/berth-hostile-root").exists());
    }

    #[test]
    fn hard_links_to_host_files() {
        let mut b = Vec::new();
        raw(
            &mut b,
            "hl",
            tar::EntryType::Link,
            "../../outside/sentinel",
            b"",
        );
        raw(&mut b, "passwd", tar::EntryType::Link, "/etc/passwd", b"");
        contained(finish(b));
        assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), 1);
    }

    #[test]
    fn directories_under_a_symlink_are_not_made_outside() {
        // A whiteout and a device deep under a link to a host directory (by
        // its absolute path, and through a dangling link): refused before
        // any missing directory is made out there.
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("host-dir");
        fs::create_dir(&outside).unwrap();
        let target = outside.to_str().unwrap();
        let dangling = format!("{target}/nothere");
        for (link, last, kind) in [
            (target, "esc/newdir/a/b/.wh.x", tar::EntryType::Regular),
            (target, "esc/newdir/a/b/fifo", tar::EntryType::Fifo),
            (dangling.as_str(), "esc/x/.wh.y", tar::EntryType::Regular),
        ] {
            let mut b = Vec::new();
            raw(&mut b, "esc", tar::EntryType::Symlink, link, b"");
            raw(&mut b, last, kind, "", b"");
            let store = LayerStore::open(&tmp.path().join("store")).unwrap();
            let _ = store.unpack(&finish(b)[..]);
            let made: Vec<_> = walk(&outside);
            assert!(made.is_empty(), "{last}: made on the host: {made:?}");
        }
    }

    #[test]
    fn special_files_through_a_symlink() {
        let mut b = Vec::new();
        raw(
            &mut b,
            "link",
            tar::EntryType::Symlink,
            "../../outside",
            b"",
        );
        raw(&mut b, "link/fifo", tar::EntryType::Fifo, "", b"");
        contained(finish(b));
        let mut b = Vec::new();
        raw(
            &mut b,
            "link",
            tar::EntryType::Symlink,
            "../../outside",
            b"",
        );
        raw(
            &mut b,
            "link/.wh.sentinel",
            tar::EntryType::Regular,
            "",
            b"",
        );
        raw(
            &mut b,
            "link/.wh..wh..opq",
            tar::EntryType::Regular,
            "",
            b"",
        );
        contained(finish(b));
    }
}
