//! `berth registry garbage-collect`: mark and sweep over a registry root.
//!
//! Mark: in every repository, the manifests its tags point at and (without
//! `delete_untagged`) every manifest it links; from each, its config and
//! layers, the children of an index, and the manifests whose `subject` it
//! is (referrers). Sweep: every blob not marked and older than the grace
//! period, then the repository links to blobs that are gone.
//!
//! Safe beside a server on the same root: the collection holds the storage
//! lock exclusively (each storage step of the server holds it shared), so it
//! sees no half-written manifest; and it spares blobs younger than the grace
//! period, which covers a push between its blobs and its manifest (a blob's
//! mtime is refreshed when it is uploaded, mounted or looked at).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_image::Digest;
use serde_json::Value;

use super::storage::{Storage, StorageError};

/// What a collection is asked to do.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would go, remove nothing.
    pub dry_run: bool,
    /// Also remove manifests no tag reaches (directly, through an index, or
    /// as a referrer of one that is kept).
    pub delete_untagged: bool,
    /// Blobs modified more recently than this are kept.
    pub grace: Duration,
}

/// What a collection did (or, dry, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Blobs in use.
    pub marked: usize,
    /// Unused blobs kept because they are younger than the grace period.
    pub young: usize,
    /// Removed blobs with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Untagged manifests removed, by repository.
    pub untagged: Vec<(String, Digest)>,
    /// What interrupted work left, removed with its size: uploads nobody
    /// has written to for the grace period (`uploads/<id>`) and files a
    /// killed server was writing (`tmp/<name>`).
    pub leftovers: Vec<(String, u64)>,
}

impl GcReport {
    pub fn freed(&self) -> u64 {
        self.removed.iter().map(|(_, n)| n).sum()
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

fn digest_at(v: &Value) -> Option<Digest> {
    v["digest"].as_str()?.parse().ok()
}

/// Collects garbage in the registry at `root` (see the module's header).
pub fn garbage_collect(root: &Path, opts: &GcOptions) -> Result<GcReport, StorageError> {
    // Not `open`: that clears tmp/, where a running server writes.
    let storage = Storage::attach(root)?;
    let _exclusive = storage.lock(true)?;
    let mut report = GcReport::default();
    let mut marked: HashSet<Digest> = HashSet::new();
    let repos = storage.repositories()?;
    for repo in &repos {
        let linked: Vec<Digest> = storage.manifests(repo)?;
        let mut stack: Vec<Digest> = Vec::new();
        for tag in storage.tags(repo)?.unwrap_or_default() {
            stack.extend(storage.resolve_tag(repo, &tag)?);
        }
        if !opts.delete_untagged {
            stack.extend(linked.iter().cloned());
        }
        let mut kept: HashSet<Digest> = HashSet::new();
        loop {
            while let Some(d) = stack.pop() {
                if !kept.insert(d.clone()) {
                    continue;
                }
                marked.insert(d.clone());
                let Some(bytes) = storage.read_blob(&d)? else {
                    continue;
                };
                let v = json(&bytes);
                marked.extend(digest_at(&v["config"]));
                for layer in v["layers"].as_array().into_iter().flatten() {
                    marked.extend(digest_at(layer));
                }
                for child in v["manifests"].as_array().into_iter().flatten() {
                    stack.extend(digest_at(child));
                }
            }
            // Referrers of what is kept are kept (and what they name).
            for d in &linked {
                if kept.contains(d) {
                    continue;
                }
                let subject = storage
                    .read_blob(d)?
                    .and_then(|b| digest_at(&json(&b)["subject"]));
                if subject.is_some_and(|s| kept.contains(&s)) {
                    stack.push(d.clone());
                }
            }
            if stack.is_empty() {
                break;
            }
        }
        for d in linked {
            if !kept.contains(&d) {
                if !opts.dry_run {
                    storage.delete_manifest(repo, &d)?;
                }
                report.untagged.push((repo.clone(), d));
            }
        }
    }
    report.marked = marked.len();

    let now = SystemTime::now();
    for d in storage.all_blobs()? {
        if marked.contains(&d) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(storage.blob_path(&d)) else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < opts.grace {
            report.young += 1;
            continue;
        }
        if !opts.dry_run {
            storage.remove_blob(&d)?;
        }
        report.removed.push((d, meta.len()));
    }
    if !opts.dry_run {
        for repo in &repos {
            for d in storage.linked_blobs(repo)? {
                if !storage.blob_path(&d).exists() {
                    storage.unlink_blob(repo, &d)?;
                }
            }
        }
    }
    report.leftovers = leftovers(&storage, now, opts)?;
    Ok(report)
}

/// Under the exclusive lock (no storage step of a server is writing):
/// every file in `tmp/`, and the uploads idle for longer than the grace
/// period (a running server expires them too; one that was killed does
/// not until it starts again).
fn leftovers(
    storage: &Storage,
    now: SystemTime,
    opts: &GcOptions,
) -> Result<Vec<(String, u64)>, StorageError> {
    let mut out = Vec::new();
    let tmp = storage.tmp_dir();
    for name in Storage::names_in(&tmp)? {
        let path = tmp.join(&name);
        let size = berth_image::dir_size(&path);
        if !opts.dry_run {
            storage.remove_any(&path)?;
        }
        out.push((format!("tmp/{name}"), size));
    }
    let uploads = storage.uploads_dir();
    for id in Storage::names_in(&uploads)? {
        let dir = uploads.join(&id);
        // The data file's mtime is the upload's last activity (the
        // directory's, if it never got one).
        let modified = [dir.join("data"), dir.clone()]
            .iter()
            .find_map(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok());
        let idle = modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if idle < opts.grace {
            continue;
        }
        let size = berth_image::dir_size(&dir);
        if !opts.dry_run {
            storage.remove_any(&dir)?;
        }
        out.push((format!("uploads/{id}"), size));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::storage::NewManifest;
    use berth_image::Algorithm;
    use serde_json::json;

    fn blob(s: &Storage, repo: &str, data: &[u8], alg: Algorithm) -> Digest {
        let d = Digest::of_as(alg, data);
        let src = s.root().join("tmp").join(d.hex());
        std::fs::write(&src, data).unwrap();
        s.commit_blob(&src, &d).unwrap();
        s.link_blob(repo, &d).unwrap();
        d
    }

    fn manifest(s: &Storage, repo: &str, v: Value, tag: Option<&str>, alg: Algorithm) -> Digest {
        let bytes = v.to_string().into_bytes();
        let digest = Digest::of_as(alg, &bytes);
        let referrer = digest_at(&v["subject"]).map(|sub| (sub, json!({"digest": digest})));
        s.put_manifest(
            repo,
            &NewManifest {
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                bytes,
                tag: tag.map(String::from),
                referrer,
            },
        )
        .unwrap();
        digest
    }

    fn image(
        s: &Storage,
        repo: &str,
        layers: &[&Digest],
        config: &[u8],
        tag: Option<&str>,
    ) -> Digest {
        let c = blob(s, repo, config, Algorithm::Sha256);
        let layers: Vec<Value> = layers.iter().map(|d| json!({"digest": d})).collect();
        manifest(
            s,
            repo,
            json!({"schemaVersion": 2, "config": {"digest": c}, "layers": layers}),
            tag,
            Algorithm::Sha256,
        )
    }

    const NOW: GcOptions = GcOptions {
        dry_run: false,
        delete_untagged: false,
        grace: Duration::ZERO,
    };

    #[test]
    fn sweeps_what_no_manifest_uses() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let shared = blob(&s, "a", b"shared", Algorithm::Sha256);
        let only_a = blob(&s, "a", b"only a", Algorithm::Sha512);
        let a = image(&s, "a", &[&shared, &only_a], b"config a", Some("v1"));
        s.link_blob("b", &shared).unwrap();
        image(&s, "b", &[&shared], b"config b", Some("v1"));
        let stray = blob(&s, "b", b"pushed, never used", Algorithm::Sha256);
        assert!(s.delete_manifest("a", &a).unwrap());

        let dry = garbage_collect(
            dir.path(),
            &GcOptions {
                dry_run: true,
                ..NOW
            },
        )
        .unwrap();
        assert_eq!(dry.removed.len(), 4, "{dry:?}");
        assert!(s.blob_path(&only_a).exists());

        let young = garbage_collect(
            dir.path(),
            &GcOptions {
                grace: Duration::from_secs(3600),
                ..NOW
            },
        )
        .unwrap();
        assert!(young.removed.is_empty());
        assert_eq!(young.young, 4);

        let r = garbage_collect(dir.path(), &NOW).unwrap();
        let gone: HashSet<Digest> = r.removed.iter().map(|(d, _)| d.clone()).collect();
        assert!(gone.contains(&only_a) && gone.contains(&a) && gone.contains(&stray));
        assert_eq!(gone.len(), 4);
        assert!(s.has_blob("b", &shared).unwrap());
        assert!(!s.blob_path(&only_a).exists());
        // a's links to swept blobs go; the one to the shared blob stays.
        assert_eq!(s.linked_blobs("a").unwrap(), vec![shared]);
    }

    #[test]
    fn what_a_killed_server_left_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        // A half-written upload, a half-written file, and an upload in use.
        let stale = s.uploads_dir().join("11111111-1111-4111-8111-111111111111");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("data"), b"half a layer").unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(stale.join("data"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::write(s.tmp_dir().join("blob-x"), b"partial").unwrap();
        let live = s.uploads_dir().join("22222222-2222-4222-8222-222222222222");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(live.join("data"), b"streaming").unwrap();
        let hour = GcOptions {
            grace: Duration::from_secs(3600),
            ..NOW
        };
        let dry = garbage_collect(
            dir.path(),
            &GcOptions {
                dry_run: true,
                ..hour.clone()
            },
        )
        .unwrap();
        assert_eq!(dry.leftovers.len(), 2, "{dry:?}");
        assert!(stale.exists());
        let r = garbage_collect(dir.path(), &hour).unwrap();
        let mut names: Vec<&str> = r.leftovers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["tmp/blob-x", "uploads/11111111-1111-4111-8111-111111111111"]
        );
        assert_eq!(r.leftovers.iter().map(|(_, n)| n).sum::<u64>(), 12 + 7);
        assert!(!stale.exists() && live.exists());
    }

    #[test]
    fn untagged_indexes_children_and_referrers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let l1 = blob(&s, "r", b"layer 1", Algorithm::Sha256);
        let child = image(&s, "r", &[&l1], b"config 1", None);
        let index = manifest(
            &s,
            "r",
            json!({"schemaVersion": 2, "manifests": [{"digest": child}]}),
            Some("latest"),
            Algorithm::Sha512,
        );
        let sig = manifest(
            &s,
            "r",
            json!({"schemaVersion": 2, "config": {"digest": l1}, "layers": [], "subject": {"digest": index}}),
            None,
            Algorithm::Sha256,
        );
        let l2 = blob(&s, "r", b"layer 2", Algorithm::Sha256);
        let orphan = image(&s, "r", &[&l2], b"config 2", None);

        let r = garbage_collect(
            dir.path(),
            &GcOptions {
                delete_untagged: true,
                ..NOW
            },
        )
        .unwrap();
        assert_eq!(r.untagged, vec![("r".to_string(), orphan.clone())]);
        for d in [&l1, &child, &index, &sig] {
            assert!(s.blob_path(d).exists(), "{d} was kept");
        }
        assert!(!s.blob_path(&l2).exists());
        assert!(!s.blob_path(&orphan).exists());
        assert_eq!(s.referrers("r", &index).unwrap().len(), 1);
        assert_eq!(s.manifests("r").unwrap().len(), 3);
    }
}
