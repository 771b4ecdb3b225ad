//! `system check` for the image store: which images, references, blobs and
//! layers are damaged (unusable as they are) or orphaned (nothing uses
//! them), and their repair.
//!
//! Checked, under the collector's lock held exclusively (no writer is at
//! work, so a layer or blob not yet recorded is never taken for an orphan):
//! - every image: its config and manifest blobs are there (and match their
//!   digests unless `quick`), its config parses, and every layer it stacks
//!   is unpacked;
//! - every reference names an image that exists;
//! - every blob matches its digest (skipped when `quick`: it reads every
//!   byte) and is used by an image;
//! - every layer directory is complete (`layer.json`, `diff/`) and used by
//!   an image; `.tmp-*` directories and `ingest/` files are what
//!   interrupted writers left.
//!
//! Repair removes damaged images and references (the blobs and layers only
//! they used then go as orphans), damaged blobs (their images first), and
//! every orphan: what `rmi -f` and a prune would do, chosen for the user.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::FlockArg;

use crate::digest::{Algorithm, Digest};
use crate::error::Result;
use crate::store::Store;

/// Whether a finding is damage (something is unusable) or an orphan
/// (something nothing uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Damaged,
    Orphaned,
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Image(Digest),
    Reference(String),
    Blob(Digest),
    Layer(String),
    /// A file or directory an interrupted writer left.
    Leftover(PathBuf),
}

/// One thing `check` found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub subject: Subject,
    /// Why, for the user.
    pub why: String,
}

impl Subject {
    /// `image sha256:…`, `blob sha256:…`, `layer <hex>`...
    pub fn describe(&self) -> String {
        match self {
            Subject::Image(d) => format!("image {d}"),
            Subject::Reference(r) => format!("reference {r}"),
            Subject::Blob(d) => format!("blob {d}"),
            Subject::Layer(h) => format!("layer {h}"),
            Subject::Leftover(p) => format!("leftover {}", p.display()),
        }
    }
}

/// Whether the file at `path` hashes to `digest`.
fn blob_matches(path: &Path, digest: &Digest) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut h = digest.algorithm().hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    h.finish() == *digest
}

impl Store {
    /// Checks the store (see the module's description); `quick` skips
    /// reading blobs whole to verify their digests.
    pub fn check(&self, quick: bool) -> Result<Vec<Finding>> {
        let _alone = self.gc_lock(FlockArg::LockExclusive)?;
        self.check_locked(quick)
    }

    fn check_locked(&self, quick: bool) -> Result<Vec<Finding>> {
        let mut out = Vec::new();
        let doc = self.metadata.read()?;
        let mut used_blobs: HashSet<Digest> = HashSet::new();
        let mut used_layers: HashSet<String> = HashSet::new();
        let mut bad_blobs: HashSet<Digest> = HashSet::new();
        let mut blob_ok = |d: &Digest| -> bool {
            let path = self.content.path(d);
            let ok = path.is_file() && (quick || blob_matches(&path, d));
            if !ok {
                bad_blobs.insert(d.clone());
            }
            ok
        };
        for (id, rec) in &doc.images {
            let refs = Self::refs_of_doc(&doc, id);
            let damaged = |why: String| Finding {
                severity: Severity::Damaged,
                subject: Subject::Image(id.clone()),
                why: if refs.is_empty() {
                    why
                } else {
                    format!("({}) {why}", refs.join(", "))
                },
            };
            used_blobs.insert(id.clone());
            used_blobs.insert(rec.manifest.clone());
            if !blob_ok(id) {
                out.push(damaged(format!(
                    "its config {} is missing or does not match its digest",
                    self.content.path(id).display()
                )));
                continue;
            }
            if !blob_ok(&rec.manifest) {
                out.push(damaged(format!(
                    "its manifest {} is missing or does not match its digest",
                    self.content.path(&rec.manifest).display()
                )));
            }
            let image = match self.load_record(id, rec, Vec::new()) {
                Ok(i) => i,
                Err(e) => {
                    out.push(damaged(format!("its config cannot be read: {e}")));
                    continue;
                }
            };
            if let Ok(m) = self.manifest(&image) {
                for l in m.layers() {
                    if let Ok(d) = l.digest().to_string().parse::<Digest>() {
                        used_blobs.insert(d);
                    }
                }
            }
            for chain in &image.chain_ids {
                used_layers.insert(chain.hex().to_string());
                let dir = self.layers.dir(chain);
                if !self.layers.exists(chain) || !dir.join("diff").is_dir() {
                    out.push(damaged(format!(
                        "its layer {} is missing or incomplete",
                        dir.display()
                    )));
                }
            }
        }
        for (name, id) in &doc.refs {
            if !doc.images.contains_key(id) {
                out.push(Finding {
                    severity: Severity::Damaged,
                    subject: Subject::Reference(name.clone()),
                    why: format!("it names image {id}, which does not exist"),
                });
            }
        }
        for alg in Algorithm::ALL {
            let dir = self.root().join("blobs").join(alg.as_str());
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = format!("{alg}:{}", e.file_name().to_string_lossy());
                let Ok(d) = name.parse::<Digest>() else {
                    out.push(Finding {
                        severity: Severity::Orphaned,
                        subject: Subject::Leftover(e.path()),
                        why: "not a blob's name".into(),
                    });
                    continue;
                };
                if bad_blobs.contains(&d) {
                    out.push(Finding {
                        severity: Severity::Damaged,
                        subject: Subject::Blob(d),
                        why: "its content does not match its digest".into(),
                    });
                } else if !used_blobs.contains(&d) {
                    out.push(Finding {
                        severity: Severity::Orphaned,
                        subject: Subject::Blob(d),
                        why: "no image uses it".into(),
                    });
                } else if !quick && !blob_matches(&e.path(), &d) {
                    out.push(Finding {
                        severity: Severity::Damaged,
                        subject: Subject::Blob(d),
                        why: "its content does not match its digest".into(),
                    });
                }
            }
        }
        let layers = self.layers.root().to_path_buf();
        for e in fs::read_dir(&layers).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "l" {
                continue;
            }
            if name.starts_with(".tmp-") {
                out.push(Finding {
                    severity: Severity::Orphaned,
                    subject: Subject::Leftover(e.path()),
                    why: "a layer an interrupted writer left half unpacked".into(),
                });
            } else if !used_layers.contains(&name) {
                out.push(Finding {
                    severity: Severity::Orphaned,
                    subject: Subject::Layer(name),
                    why: "no image uses it".into(),
                });
            }
        }
        for e in fs::read_dir(self.root().join("ingest"))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(Finding {
                severity: Severity::Orphaned,
                subject: Subject::Leftover(e.path()),
                why: "a blob an interrupted writer left half written".into(),
            });
        }
        Ok(out)
    }

    /// Repairs what `check` found: removes damaged images, references and
    /// blobs (an image whose blob is damaged goes with it), then collects
    /// every orphan. Returns what it removed.
    pub fn repair(&self, findings: &[Finding]) -> Result<Vec<Subject>> {
        let mut removed = Vec::new();
        let doc = self.metadata.read()?;
        let mut gone_images: HashSet<Digest> = HashSet::new();
        for f in findings.iter().filter(|f| f.severity == Severity::Damaged) {
            match &f.subject {
                Subject::Image(id) => {
                    gone_images.insert(id.clone());
                }
                Subject::Blob(d) => {
                    // The images that use it cannot be used either.
                    for (id, rec) in &doc.images {
                        if id == d || rec.manifest == *d {
                            gone_images.insert(id.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        self.metadata.update(|doc| {
            for id in &gone_images {
                doc.images.remove(id);
            }
            doc.refs
                .retain(|_, v| doc.images.contains_key(v) && !gone_images.contains(v));
            Ok(())
        })?;
        for id in gone_images {
            removed.push(Subject::Image(id));
        }
        for f in findings.iter().filter(|f| f.severity == Severity::Damaged) {
            match &f.subject {
                Subject::Reference(_) => removed.push(f.subject.clone()),
                Subject::Blob(d) => {
                    let _ = fs::remove_file(self.content.path(d));
                    removed.push(f.subject.clone());
                }
                _ => {}
            }
        }
        // Orphans, old and new (what the removed images alone used).
        self.collect_garbage()?;
        for f in findings.iter().filter(|f| f.severity == Severity::Orphaned) {
            if let Subject::Leftover(p) = &f.subject {
                // Not a blob's name: the collector left it.
                if p.exists() {
                    let _ = fs::remove_file(p).or_else(|_| fs::remove_dir_all(p));
                }
            }
            removed.push(f.subject.clone());
        }
        Ok(removed)
    }

    fn refs_of_doc(doc: &crate::metadata::Document, id: &Digest) -> Vec<String> {
        doc.refs
            .iter()
            .filter(|(_, v)| *v == id)
            .filter_map(|(k, _)| crate::reference::Reference::parse(k).ok())
            .map(|r| r.familiar())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_checked_against_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        fs::write(&path, b"hello").unwrap();
        assert!(blob_matches(&path, &Digest::of(b"hello")));
        assert!(!blob_matches(&path, &Digest::of(b"hullo")));
        assert!(!blob_matches(&dir.path().join("missing"), &Digest::of(b"")));
    }
}
