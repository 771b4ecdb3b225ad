//! A build context named by URL, as docker's daemon takes one
//! (`POST /build?remote=...`): a git repository (`URL#ref:subdir`), an
//! archive (plain, gzip or zstd) or a lone Dockerfile fetched over http(s).

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use berth_engine::Engine;

/// What `remote` names, as docker tells them apart.
#[derive(Debug, PartialEq, Eq)]
pub enum Remote<'a> {
    /// A repository to clone, a ref to check out, a directory in it.
    Git {
        url: &'a str,
        reference: Option<&'a str>,
        subdir: Option<&'a str>,
    },
    /// A file to fetch: an archive, or else a Dockerfile.
    Url(&'a str),
}

impl<'a> Remote<'a> {
    /// docker's rules: `git://`, `git@`, `github.com/`, or an http(s) URL
    /// whose path ends in `.git` is a repository, with an optional
    /// `#ref:subdir`; any other http(s) URL is a file.
    pub fn parse(remote: &'a str) -> Result<Remote<'a>, String> {
        let (base, fragment) = match remote.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (remote, None),
        };
        let http = base.starts_with("http://") || base.starts_with("https://");
        let git = base.starts_with("git://")
            || base.starts_with("git@")
            || base.starts_with("github.com/")
            || (http && base.ends_with(".git"));
        if git {
            let (reference, subdir) = match fragment {
                None => (None, None),
                Some(f) => match f.split_once(':') {
                    Some((r, d)) => (Some(r), Some(d)),
                    None => (Some(f), None),
                },
            };
            let nonempty = |s: Option<&'a str>| s.filter(|s| !s.is_empty());
            return Ok(Remote::Git {
                url: base,
                reference: nonempty(reference),
                subdir: nonempty(subdir),
            });
        }
        if http {
            return Ok(Remote::Url(remote));
        }
        Err(format!(
            "unable to prepare context: {remote:?} is not a git repository or an http(s) URL"
        ))
    }
}

/// Makes the context `remote` names in the new directory `dest` (scratch
/// files go in `scratch`); at most `limit` bytes fetched or unpacked.
/// Returns the context directory (a subdirectory of `dest` for
/// `#ref:subdir`).
pub fn prepare_remote_context(
    engine: &Engine,
    remote: &str,
    dest: &Path,
    scratch: &Path,
    limit: u64,
) -> Result<PathBuf, String> {
    match Remote::parse(remote)? {
        Remote::Git {
            url,
            reference,
            subdir,
        } => {
            clone(url, reference, dest)?;
            match subdir {
                None => Ok(dest.to_path_buf()),
                Some(d) => inside(dest, d),
            }
        }
        Remote::Url(url) => {
            let file = scratch.join("remote-context");
            engine.fetch(url, limit, &file).map_err(|e| e.to_string())?;
            if crate::is_archive(&file) {
                crate::unpack_context(&file, dest, limit)?;
            } else {
                // A lone Dockerfile: the context is that file alone.
                std::fs::rename(&file, dest.join("Dockerfile"))
                    .map_err(|e| format!("keep the fetched Dockerfile: {e}"))?;
            }
            let _ = std::fs::remove_file(&file);
            Ok(dest.to_path_buf())
        }
    }
}

/// `dir` of `root`, refusing names (or links) that lead out of it.
fn inside(root: &Path, dir: &str) -> Result<PathBuf, String> {
    let rel = Path::new(dir);
    let bad = || format!("the context's directory {dir:?} is not inside the repository");
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad());
    }
    let base = root.canonicalize().map_err(|e| e.to_string())?;
    let path = root.join(rel).canonicalize().map_err(|_| bad())?;
    if !path.starts_with(&base) || !path.is_dir() {
        return Err(bad());
    }
    Ok(path)
}

/// `git clone` (the git program, as docker's daemon runs it), then the ref
/// checked out. Git never prompts, and submodules never reach local paths.
fn clone(url: &str, reference: Option<&str>, dest: &Path) -> Result<(), String> {
    let git = |args: &[&std::ffi::OsStr]| -> Result<(), String> {
        let out = Command::new("git")
            .args(["-c", "protocol.file.allow=never"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run git: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "error fetching {url}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    // `--` ends git's options: a URL never becomes one.
    git(&[
        "clone".as_ref(),
        "--quiet".as_ref(),
        "--recurse-submodules".as_ref(),
        "--".as_ref(),
        url.as_ref(),
        dest.as_os_str(),
    ])?;
    if let Some(r) = reference {
        git(&[
            "-C".as_ref(),
            dest.as_os_str(),
            "checkout".as_ref(),
            "--quiet".as_ref(),
            r.as_ref(),
            "--".as_ref(),
        ])?;
        git(&[
            "-C".as_ref(),
            dest.as_os_str(),
            "submodule".as_ref(),
            "update".as_ref(),
            "--quiet".as_ref(),
            "--init".as_ref(),
            "--recursive".as_ref(),
        ])?;
    }
    // The repository's own metadata is not part of the context.
    let _ = std::fs::remove_dir_all(dest.join(".git"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_repositories_from_files() {
        assert_eq!(
            Remote::parse("https://host/app.git#v1:web").unwrap(),
            Remote::Git {
                url: "https://host/app.git",
                reference: Some("v1"),
                subdir: Some("web")
            }
        );
        assert_eq!(
            Remote::parse("git://127.0.0.1/app#:sub").unwrap(),
            Remote::Git {
                url: "git://127.0.0.1/app",
                reference: None,
                subdir: Some("sub")
            }
        );
        assert_eq!(
            Remote::parse("git@github.com:me/app").unwrap(),
            Remote::Git {
                url: "git@github.com:me/app",
                reference: None,
                subdir: None
            }
        );
        assert_eq!(
            Remote::parse("http://127.0.0.1:8000/ctx.tar.gz").unwrap(),
            Remote::Url("http://127.0.0.1:8000/ctx.tar.gz")
        );
        assert!(Remote::parse("/etc").is_err());
        assert!(Remote::parse("file:///etc").is_err());
        assert!(Remote::parse("-uhttps://x").is_err());
    }

    #[test]
    fn a_subdirectory_stays_in_the_repository() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("web")).unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("out")).unwrap();
        assert!(inside(t.path(), "web").is_ok());
        assert!(inside(t.path(), "../").is_err());
        assert!(inside(t.path(), "/etc").is_err());
        assert!(inside(t.path(), "out").is_err());
    }
}

#[cfg(test)]
mod auth_tests {
    use berth_engine::registry::client::Credentials;

    #[test]
    fn credentials_by_registry_as_docker_keys_them() {
        let c = |u: &str| Credentials {
            username: u.into(),
            password: "p".into(),
        };
        let auth = vec![
            ("127.0.0.1:5000".to_string(), c("local")),
            ("https://index.docker.io/v1/".to_string(), c("hub")),
            ("https://reg.example:8443/".to_string(), c("tls")),
        ];
        let user = |d: &str| crate::credentials_for(&auth, d).map(|c| c.username);
        assert_eq!(user("127.0.0.1:5000").as_deref(), Some("local"));
        assert_eq!(user("docker.io").as_deref(), Some("hub"));
        assert_eq!(user("reg.example:8443").as_deref(), Some("tls"));
        assert_eq!(user("127.0.0.1:5001"), None);
    }
}
