//! A build context named by URL, as docker's daemon takes one
//! (`POST /build?remote=...`): a git repository (`URL#ref:subdir`), an
//! archive (plain, gzip or zstd) or a lone Dockerfile fetched over http(s).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
            let deadline = Instant::now() + GIT_DEADLINE;
            clone(url, reference, dest, limit, deadline)?;
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

/// How often a bounded command's output directory is measured.
const MEASURE_EVERY: Duration = Duration::from_millis(200);

/// Runs `cmd` to its end in a process group of its own, killing the whole
/// group (git's helpers too) once `dir` holds more than `limit` bytes or
/// `deadline` passes. The error is the command's own (its stderr) or the
/// limit it broke.
fn run_bounded(mut cmd: Command, dir: &Path, limit: u64, deadline: Instant) -> Result<(), String> {
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {:?}: {e}", cmd.get_program()))?;
    // Read on a thread, so that a chatty command never blocks on a full pipe.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut e) = stderr {
            let _ = (&mut e).take(64 << 10).read_to_end(&mut text);
            let _ = std::io::copy(&mut e, &mut std::io::sink());
        }
        String::from_utf8_lossy(&text).trim().to_string()
    });
    let broke = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let text = reader.join().unwrap_or_default();
                return if status.success() { Ok(()) } else { Err(text) };
            }
            Ok(None) => {}
            Err(e) => break format!("wait for it: {e}"),
        }
        if Instant::now() >= deadline {
            break format!("it took longer than {} s", GIT_DEADLINE.as_secs().max(1));
        }
        if tree_size(dir) > limit {
            break format!("it is larger than {limit} bytes");
        }
        std::thread::sleep(MEASURE_EVERY);
    };
    if let Ok(pgid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
    let _ = reader.join();
    Err(broke)
}

/// The bytes of the files under `dir` (links not followed).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
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

/// How long fetching a git context may take in all.
const GIT_DEADLINE: Duration = Duration::from_secs(600);

/// `git clone` (the git program, as docker's daemon runs it), then the ref
/// checked out. Git never prompts, and submodules never reach local paths.
/// The clone may not grow past `limit` bytes nor run past `deadline`.
fn clone(
    url: &str,
    reference: Option<&str>,
    dest: &Path,
    limit: u64,
    deadline: Instant,
) -> Result<(), String> {
    let git = |args: &[&std::ffi::OsStr]| -> Result<(), String> {
        let mut cmd = Command::new("git");
        cmd.args(["-c", "protocol.file.allow=never"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0");
        run_bounded(cmd, dest, limit, deadline).map_err(|e| format!("error fetching {url}: {e}"))
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

    fn sh(script: &str, dir: &Path) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]).current_dir(dir);
        c
    }

    /// A fetch that grows past its limit, or runs past its deadline, is
    /// killed with everything it started; its own failure keeps its words.
    #[test]
    fn a_bounded_fetch_is_stopped_at_its_limits() {
        let dir = tempfile::tempdir().unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let started = Instant::now();
        let grown = run_bounded(
            sh(
                "head -c 3000000 /dev/zero > big; sleep 30 & echo $! > pid; wait",
                dir.path(),
            ),
            dir.path(),
            1 << 20,
            far,
        );
        assert!(grown.unwrap_err().contains("larger than 1048576 bytes"));
        assert!(started.elapsed() < Duration::from_secs(20));
        let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
        // Dead: gone, or a zombie its new parent has not reaped yet.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        let dead = stat.map_or(true, |s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        });
        assert!(dead, "the fetch's own children are killed too");

        let started = Instant::now();
        let slow = run_bounded(
            sh("sleep 30", dir.path()),
            dir.path(),
            u64::MAX,
            Instant::now() + Duration::from_millis(300),
        );
        assert!(slow.unwrap_err().contains("took longer"));
        assert!(started.elapsed() < Duration::from_secs(20));

        let failed = run_bounded(
            sh("echo 'no such ref' >&2; exit 3", dir.path()),
            dir.path(),
            u64::MAX,
            far,
        );
        assert_eq!(failed.unwrap_err(), "no such ref");
        assert_eq!(
            run_bounded(sh("true", dir.path()), dir.path(), u64::MAX, far),
            Ok(())
        );
    }

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
