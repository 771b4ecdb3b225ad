//! A container's writable layer, read two ways: as docker's list of changes
//! (`diff`) and as an OCI layer tar (`commit`), with overlayfs whiteouts
//! (0/0 character devices, the opaque xattr) turned into OCI ones (`.wh.NAME`,
//! `.wh..wh..opq`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// One change, as docker's `diff` prints it (`A /etc/motd`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: PathBuf,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        };
        write!(f, "{k} {}", self.path.display())
    }
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and buf is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// Every extended attribute of `path` (not following symlinks), by name.
fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(cpath) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: cpath is NUL-terminated and names is valid for its length.
    let n = unsafe { libc::llistxattr(cpath.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            let name = String::from_utf8_lossy(n).into_owned();
            // overlayfs' own bookkeeping never goes into a layer.
            if name.starts_with("trusted.overlay.") {
                return None;
            }
            xattr_get(path, &name).map(|v| (name, v))
        })
        .collect()
}

fn is_opaque(dir: &Path) -> bool {
    xattr_get(dir, OPAQUE_XATTR).is_some_and(|v| v == b"y")
}

/// Whether `rel` exists in the stacked `lowers` (top first), honouring
/// whiteouts and opaque directories.
fn exists_below(lowers: &[PathBuf], rel: &Path) -> bool {
    for layer in lowers {
        if let Ok(m) = fs::symlink_metadata(layer.join(rel)) {
            return !is_whiteout(&m);
        }
        // An opaque ancestor in this layer hides everything below it.
        let mut anc = rel.parent();
        while let Some(a) = anc {
            if a.as_os_str().is_empty() {
                break;
            }
            let p = layer.join(a);
            if let Ok(m) = fs::symlink_metadata(&p) {
                if is_whiteout(&m) || (m.is_dir() && is_opaque(&p)) {
                    return false;
                }
            }
            anc = a.parent();
        }
    }
    false
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let mut v: Vec<fs::DirEntry> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

/// Docker's `diff`: what the writable layer `upper` changes in the image whose
/// layers are `lowers` (top first). Sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(upper, Path::new(""), lowers, false, &mut out)
        .map_err(Error::io("read", upper))?;
    out.sort();
    Ok(out)
}

fn walk_changes(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    added: bool,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    for e in sorted_entries(&upper.join(rel))? {
        let child = rel.join(e.file_name());
        let path = upper.join(&child);
        let m = fs::symlink_metadata(&path)?;
        let shown = Path::new("/").join(&child);
        if is_whiteout(&m) {
            out.push(Change {
                path: shown,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let below = !added && exists_below(lowers, &child);
        let kind = if below {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            path: shown.clone(),
            kind,
        });
        if m.is_dir() {
            if below && is_opaque(&path) {
                // Everything the lower layers had here is gone.
                let lower_dir = lowers.iter().map(|l| l.join(&child)).find(|p| p.is_dir());
                if let Some(ld) = lower_dir {
                    for le in sorted_entries(&ld)? {
                        if fs::symlink_metadata(path.join(le.file_name())).is_err() {
                            out.push(Change {
                                path: shown.join(le.file_name()),
                                kind: ChangeKind::Deleted,
                            });
                        }
                    }
                }
            }
            walk_changes(upper, &child, lowers, !below, out)?;
        }
    }
    Ok(())
}

/// Writes `upper` as an OCI layer tar: entries in path order, whiteouts and
/// opaque markers converted, hard links kept as links, ownership, modes,
/// mtimes and extended attributes preserved.
pub fn write_layer(upper: &Path, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    write_dir(&mut b, upper, Path::new(""), &mut links).map_err(Error::io("archive", upper))?;
    b.into_inner()
        .map_err(Error::io("archive", upper))?
        .flush()
        .map_err(Error::io("archive", upper))?;
    Ok(())
}

fn empty_file_header(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

fn write_dir<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    for e in sorted_entries(&root.join(rel))? {
        let name = e.file_name();
        let child = rel.join(&name);
        let path = root.join(&child);
        let m = fs::symlink_metadata(&path)?;
        if is_whiteout(&m) {
            let wh = rel.join(format!(".wh.{}", name.to_string_lossy()));
            b.append_data(
                &mut empty_file_header(m.mtime().max(0) as u64),
                &wh,
                io::empty(),
            )?;
            continue;
        }
        let attrs = xattrs(&path);
        if !attrs.is_empty() {
            let pax: Vec<(String, Vec<u8>)> = attrs
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                .collect();
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        if m.is_file() && m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            if let Some(first) = links.get(&key) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &child, first)?;
                continue;
            }
            links.insert(key, child.clone());
        }
        let ft = m.file_type();
        if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            // Written by hand: the tar crate names special files by their
            // filesystem path instead of the archive name.
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
            h.set_entry_type(if ft.is_fifo() {
                tar::EntryType::Fifo
            } else if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_size(0);
            h.set_device_major(libc::major(m.rdev()))?;
            h.set_device_minor(libc::minor(m.rdev()))?;
            b.append_data(&mut h, &child, io::empty())?;
            continue;
        }
        if ft.is_socket() {
            continue; // sockets cannot be archived (docker skips them too)
        }
        b.append_path_with_name(&path, &child)?;
        if m.is_dir() {
            if is_opaque(&path) {
                let marker = child.join(".wh..wh..opq");
                b.append_data(
                    &mut empty_file_header(m.mtime().max(0) as u64),
                    &marker,
                    io::empty(),
                )?;
            }
            write_dir(b, root, &child, links)?;
        }
    }
    Ok(())
}
