//! The build context: the directory COPY and ADD read from, less what
//! `.dockerignore` excludes; where each source is, and a digest of what it
//! holds (the cache key of the step that copies it).

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use sha2::{Digest as _, Sha256};

use crate::ignore::Ignore;

/// One thing to copy: the entry `rel` of directory `root` (`rel` empty: the
/// directory itself, whose contents are copied), named `name` at the
/// destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub root: PathBuf,
    pub rel: PathBuf,
    pub name: OsString,
    pub is_dir: bool,
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

/// `a/./b/../c` -> `a/c`; `None` if it climbs above the start.
pub fn clean(path: &str) -> Option<PathBuf> {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop()?;
            }
            _ => {}
        }
    }
    Some(out.iter().collect())
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one path: `*` and `?` never match `/`;
/// `[a-z]`, `[!x]`/`[^x]` classes; `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed incl. ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let mut lo = p[i];
            if lo == '\\' {
                i += 1;
                lo = *p.get(i)?;
            }
            let mut hi = lo;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
                hi = p[i + 2];
                if hi == '\\' {
                    hi = *p.get(i + 3)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 1;
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&k| k == 0 || n[k - 1] != '/')
                .any(|k| go(&p[1..], &n[k..])),
            Some('?') => n.first().is_some_and(|&c| c != '/') && go(&p[1..], &n[1..]),
            Some('[') => match n.first() {
                Some(&c) if c != '/' => match class(&p[1..], c) {
                    Some((true, len)) => go(&p[1 + len..], &n[1..]),
                    _ => false,
                },
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// The build context on disk.
pub struct Context {
    pub root: PathBuf,
    pub ignore: Ignore,
}

impl Context {
    /// Opens a context directory and reads its `.dockerignore`.
    pub fn open(root: &Path) -> Result<Context, String> {
        // A relative context would be read against whatever directory the
        // copy runs in; the face that took it from a user makes it absolute.
        if !root.is_absolute() {
            return Err(format!(
                "unable to prepare context: {} is not an absolute path",
                root.display()
            ));
        }
        let m = fs::metadata(root).map_err(|e| err("unable to prepare context:", root, e))?;
        if !m.is_dir() {
            return Err(format!(
                "unable to prepare context: {} is not a directory",
                root.display()
            ));
        }
        let ignore = match fs::read_to_string(root.join(".dockerignore")) {
            Ok(s) => Ignore::parse(&s).map_err(|e| format!(".dockerignore: {e}"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::parse("")?,
            Err(e) => return Err(err("read", &root.join(".dockerignore"), e)),
        };
        Ok(Context {
            root: root.to_path_buf(),
            ignore,
        })
    }

    /// Whether the context-relative `path` is part of the context. An
    /// excluded directory is still walked when exceptions may match below it.
    pub fn includes(&self, path: &Path, is_dir: bool) -> bool {
        let s = path.to_string_lossy();
        !self.ignore.excluded(&s) || (is_dir && self.ignore.may_include_below(&s))
    }
}

fn open_root(root: &Path) -> Result<OwnedFd, String> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .map_err(|e| err("open", root, e.desc()))
}

/// Where `rel` (links followed, never out of `root`) really is, relative to `root`.
fn real_rel(root: &Path, rel: &Path) -> Result<Option<PathBuf>, String> {
    let rfd = open_root(root)?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let target = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd = match nix::fcntl::openat2(rfd.as_raw_fd(), target, how) {
        Ok(fd) => {
            // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        }
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(err("open", &root.join(rel), e.desc())),
    };
    let link = |fd: &OwnedFd| fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let (root_real, real) = (link(&rfd), link(&fd));
    match (root_real, real) {
        (Ok(r), Ok(p)) => Ok(p.strip_prefix(&r).ok().map(Path::to_path_buf)),
        (Err(e), _) | (_, Err(e)) => Err(err("resolve", &root.join(rel), e)),
    }
}

/// Every path below `root` (relative, sorted), with whether it is a
/// directory, that `keep` accepts; directories it refuses are not entered.
fn walk(
    root: &Path,
    rel: &Path,
    keep: &dyn Fn(&Path, bool) -> bool,
    out: &mut Vec<(PathBuf, bool)>,
) -> Result<(), String> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| err("read directory", &dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = rel.join(e.file_name());
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !keep(&p, is_dir) {
            continue;
        }
        out.push((p.clone(), is_dir));
        if is_dir {
            walk(root, &p, keep, out)?;
        }
    }
    Ok(())
}

/// Resolves a COPY/ADD source `pattern` (cleaned, relative to `root`, globs
/// allowed) to what it names. `keep` is the context's filter (always true
/// for an image's filesystem). A source that names nothing is an error.
pub fn resolve(
    root: &Path,
    pattern: &str,
    keep: &dyn Fn(&Path, bool) -> bool,
) -> Result<Vec<Source>, String> {
    let Some(clean_pattern) = clean(pattern) else {
        return Err(format!(
            "forbidden path outside the build context: {pattern}"
        ));
    };
    let pat = clean_pattern.to_string_lossy().to_string();
    let mut names: Vec<PathBuf> = Vec::new();
    if has_glob(&pat) {
        let mut all = Vec::new();
        walk(root, Path::new(""), keep, &mut all)?;
        names.extend(
            all.into_iter()
                .map(|(p, _)| p)
                .filter(|p| glob_match(&pat, &p.to_string_lossy())),
        );
        if names.is_empty() {
            return Err(format!("no source files were specified by {pattern:?}"));
        }
    } else {
        names.push(clean_pattern);
    }
    let mut out = Vec::new();
    for given in names {
        let missing = || {
            format!(
                "file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
                given.display()
            )
        };
        let Some(real) = real_rel(root, &given)? else {
            return Err(missing());
        };
        let meta = fs::symlink_metadata(root.join(&real)).map_err(|_| missing())?;
        let is_dir = meta.is_dir();
        if !given.as_os_str().is_empty() && !keep(&given, is_dir) {
            return Err(missing());
        }
        let name = real
            .file_name()
            .or(given.file_name())
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        out.push(Source {
            root: root.to_path_buf(),
            rel: real,
            name,
            is_dir,
        });
    }
    Ok(out)
}

/// A digest of the sources' names, types, modes, sizes, link targets and
/// contents (not times or owners): equal digests, equal copies.
pub fn digest(sources: &[Source], keep: &dyn Fn(&Path, bool) -> bool) -> Result<String, String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for s in sources {
        h.update(s.name.as_encoded_bytes());
        h.update([0]);
        let mut entries = vec![(PathBuf::new(), s.is_dir)];
        if s.is_dir {
            let base = s.rel.clone();
            let keep_below = |p: &Path, d: bool| keep(&base.join(p), d);
            walk(
                &s.root.join(&s.rel),
                Path::new(""),
                &keep_below,
                &mut entries,
            )?;
        }
        for (p, _) in entries {
            let mut full = s.root.join(&s.rel);
            if !p.as_os_str().is_empty() {
                full.push(&p);
            }
            let m = fs::symlink_metadata(&full).map_err(|e| err("stat", &full, e))?;
            h.update(p.as_os_str().as_encoded_bytes());
            h.update(format!("\0{:o}\0{}\0", m.mode(), m.len()).as_bytes());
            if m.file_type().is_symlink() {
                let t = fs::read_link(&full).map_err(|e| err("readlink", &full, e))?;
                h.update(t.as_os_str().as_encoded_bytes());
            } else if m.is_file() {
                let mut f = fs::File::open(&full).map_err(|e| err("open", &full, e))?;
                loop {
                    let n = f.read(&mut buf).map_err(|e| err("read", &full, e))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            h.update([0]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether a file is an archive ADD unpacks (tar, plain or gzip/zstd
/// compressed), judged by its first bytes.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    let head = &head[..got];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// Unpacks an archive ADD names into the new directory `dest`, keeping
/// owners, modes and times; entries never land outside `dest`.
pub fn unpack_archive(path: &Path, dest: &Path) -> Result<(), String> {
    let f = fs::File::open(path).map_err(|e| err("open", path, e))?;
    unpack_from(f, path, dest, None, true)
}

/// Unpacks a build context sent as an archive (plain, gzip or zstd) into the
/// new directory `dest`: entries never land outside it, and no more than
/// `limit` bytes of archive (after decompression) are read. Owners are not
/// kept: COPY sets them itself.
pub fn unpack_context(archive: &Path, dest: &Path, limit: u64) -> Result<(), String> {
    let f = fs::File::open(archive).map_err(|e| err("open", archive, e))?;
    unpack_from(f, archive, dest, Some(limit), false)
}

/// A reader that fails once more than `left` bytes went through it.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "the archive is larger than allowed",
            )
        })?;
        Ok(n)
    }
}

fn unpack_from(
    f: fs::File,
    path: &Path,
    dest: &Path,
    limit: Option<u64>,
    owners: bool,
) -> Result<(), String> {
    let mut r = std::io::BufReader::new(f);
    let head = {
        use std::io::BufRead;
        r.fill_buf().map_err(|e| err("read", path, e))?.to_vec()
    };
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(r).map_err(|e| err("read", path, e))?)
    } else {
        Box::new(r)
    };
    let reader: Box<dyn Read> = match limit {
        Some(left) => Box::new(Bounded {
            inner: reader,
            left,
        }),
        None => reader,
    };
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(owners);
    a.set_preserve_mtime(true);
    a.set_unpack_xattrs(owners);
    a.set_overwrite(true);
    a.unpack(dest).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        err("unpack", path, format!("{e}{cause}"))
    })?;
    let _ = fs::set_permissions(dest, fs::Permissions::from_mode(0o755));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_archives_are_bounded_and_confined() {
        let t = tempfile::tempdir().unwrap();
        let tar_path = t.path().join("c.tar");
        let mut b = tar::Builder::new(fs::File::create(&tar_path).unwrap());
        let data = vec![7u8; 4096];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "big", &data[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let small = t.path().join("small");
        fs::create_dir(&small).unwrap();
        assert!(unpack_context(&tar_path, &small, 1024).is_err());
        let ok = t.path().join("ok");
        fs::create_dir(&ok).unwrap();
        unpack_context(&tar_path, &ok, 1 << 20).unwrap();
        assert_eq!(fs::read(ok.join("big")).unwrap().len(), 4096);

        // A link out, then a file written through it: refused.
        let evil_path = t.path().join("evil.tar");
        let mut b = tar::Builder::new(fs::File::create(&evil_path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "out", t.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "out/planted", &b"x"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let dest = t.path().join("evil");
        fs::create_dir(&dest).unwrap();
        assert!(unpack_context(&evil_path, &dest, 1 << 20).is_err());
        assert!(!t.path().join("planted").exists());
    }

    #[test]
    fn cleans_and_refuses_escapes() {
        assert_eq!(clean("./a/b/../c/").unwrap(), PathBuf::from("a/c"));
        assert_eq!(clean(".").unwrap(), PathBuf::from(""));
        assert!(clean("../x").is_none());
        assert!(clean("a/../../x").is_none());
    }

    #[test]
    fn globs_like_go() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("d/*.txt", "d/a.txt"));
        assert!(glob_match("fil?", "file"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("a", "ab"));
    }

    #[test]
    fn resolves_follows_links_inside_and_digests_content() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("d/sub")).unwrap();
        fs::write(r.join("d/sub/f"), "1").unwrap();
        fs::write(r.join("a.txt"), "a").unwrap();
        fs::write(r.join("b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("out")).unwrap();
        let all = |_: &Path, _: bool| true;
        let txt = resolve(r, "*.txt", &all).unwrap();
        assert_eq!(txt.len(), 2);
        assert_eq!(txt[0].name, "a.txt");
        // A link to / inside the context resolves to the context's root.
        let out = resolve(r, "out", &all);
        assert!(out.is_err(), "{out:?}");
        assert!(resolve(r, "../x", &all).unwrap_err().contains("outside"));
        assert!(resolve(r, "nope", &all).unwrap_err().contains("not found"));
        let d = resolve(r, "d", &all).unwrap();
        let before = digest(&d, &all).unwrap();
        fs::write(r.join("d/sub/f"), "2").unwrap();
        assert_ne!(before, digest(&d, &all).unwrap());
        // Excluded files do not count.
        let no_f = |p: &Path, _: bool| !p.ends_with("f");
        let a = digest(&d, &no_f).unwrap();
        fs::write(r.join("d/sub/f"), "3").unwrap();
        assert_eq!(a, digest(&d, &no_f).unwrap());
    }
}
