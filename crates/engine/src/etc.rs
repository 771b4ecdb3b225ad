//! The files a container gets in /etc: hostname, hosts, resolv.conf; and
//! reading the image's own /etc files for user lookup.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::config::{ContainerOptions, NetworkMode};
use crate::error::Result;

const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes the container's hostname, hosts and resolv.conf into `dir` and
/// returns (container path, host file) pairs to bind-mount.
pub(crate) fn write_files(
    dir: &Path,
    hostname: &str,
    opts: &ContainerOptions,
    hosts_entries: &str,
) -> Result<Vec<(String, PathBuf)>> {
    let hosts = match opts.network {
        NetworkMode::Host => {
            fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS_BASE.to_string())
                + hosts_entries
        }
        _ => hosts_text(hosts_entries),
    };
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = resolv_conf(&host_resolv, opts);
    let files = [
        ("/etc/hostname", "hostname", format!("{hostname}\n")),
        ("/etc/hosts", "hosts", hosts),
        ("/etc/resolv.conf", "resolv.conf", resolv),
    ];
    let mut out = Vec::new();
    for (dest, name, content) in files {
        let path = dir.join(name);
        berth_image::replace_file(&path, content.as_bytes())?;
        out.push((dest.to_string(), path));
    }
    Ok(out)
}

/// The container's resolv.conf from the host's: `--dns`, `--dns-search` and
/// `--dns-option` replace the host's nameserver, search and options lines.
/// Nameservers on the host's loopback are unreachable from a network
/// namespace and are left out.
fn resolv_conf(host: &str, opts: &ContainerOptions) -> String {
    let replaced = |l: &str| {
        (!opts.dns.is_empty() && l.starts_with("nameserver"))
            || (!opts.dns_search.is_empty() && (l.starts_with("search") || l.starts_with("domain")))
            || (!opts.dns_options.is_empty() && l.starts_with("options"))
    };
    let loopback = |l: &str| {
        opts.network != NetworkMode::Host
            && l.starts_with("nameserver")
            && (l.contains(" 127.") || l.contains(" ::1"))
    };
    let mut out: String = host
        .lines()
        .filter(|l| !replaced(l) && !loopback(l))
        .map(|l| format!("{l}\n"))
        .collect();
    for d in &opts.dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    if !opts.dns_search.is_empty() && opts.dns_search != ["."] {
        out.push_str(&format!("search {}\n", opts.dns_search.join(" ")));
    }
    if !opts.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", opts.dns_options.join(" ")));
    }
    out
}

/// A container's /etc/hosts: the standard entries, then `entries`.
pub(crate) fn hosts_text(entries: &str) -> String {
    format!("{HOSTS_BASE}{entries}")
}

/// The init layer every container's root has between its image and its
/// writable layer: the mount points Berth mounts over (/proc, /sys, /dev,
/// the three /etc files) and /.dockerenv, so that none of them is created in
/// a container's writable layer (and so in a commit). Its content is the same
/// for every container and overlay never writes to a lower layer, so one
/// directory under the root serves them all: made once (atomically, by
/// whichever command first needs it), never per container, so a start and a
/// removal each touch nine entries fewer on disk.
pub(crate) fn shared_init_layer(root: &Path) -> Result<PathBuf> {
    let dir = root.join("init-layer");
    if dir.join(".dockerenv").exists() {
        return Ok(dir);
    }
    remove_stale_init_layers(root);
    let tmp = tempfile::Builder::new()
        .prefix(".init-layer-")
        .tempdir_in(root)
        .map_err(crate::Error::io("create a directory in", root))?;
    fill_init_layer(tmp.path())?;
    match fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            // Made: the temporary directory is now the layer.
            let _ = tmp.keep();
        }
        // Another command made it meanwhile (its own is as good), or an
        // interrupted one left an incomplete directory: remove that one and
        // try again once.
        Err(_) if dir.join(".dockerenv").exists() => {}
        Err(_) => {
            let _ = fs::remove_dir_all(&dir);
            fs::rename(tmp.path(), &dir).map_err(crate::Error::io("create", &dir))?;
            let _ = tmp.keep();
        }
    }
    Ok(dir)
}

/// Temporary init layers a killed command left (older than a minute, so
/// never one another command is still filling).
fn remove_stale_init_layers(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(".init-layer-")
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60));
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Writes the init layer's entries into `dir` (.dockerenv last: the layer is
/// complete when it exists).
fn fill_init_layer(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(crate::Error::io("create", dir))?;
    for d in ["proc", "sys", "dev", "etc"] {
        let p = dir.join(d);
        fs::create_dir_all(&p).map_err(crate::Error::io("create", &p))?;
    }
    for f in ["etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"] {
        let p = dir.join(f);
        fs::write(&p, b"").map_err(crate::Error::io("create", &p))?;
    }
    Ok(())
}

/// Reads `rel` (e.g. `etc/passwd`) from the topmost layer that has it, stopping
/// at a whiteout; empty if none has it. Symlinks are not followed out of a layer.
pub(crate) fn read_from_layers(layers_top_first: &[PathBuf], rel: &str) -> String {
    for dir in layers_top_first {
        let path = dir.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_char_device() => return String::new(),
            Ok(m) if m.is_file() => return fs::read_to_string(&path).unwrap_or_default(),
            Ok(_) => return String::new(),
            Err(_) => continue,
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_init_layer_made_once_and_an_incomplete_one_replaced() {
        let root = tempfile::tempdir().unwrap();
        // What a command killed while making it by hand would have left:
        // an incomplete layer, and a temporary one from a minute ago.
        fs::create_dir_all(root.path().join("init-layer/proc")).unwrap();
        let old = root.path().join(".init-layer-killed");
        fs::create_dir_all(old.join("etc")).unwrap();
        let minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        fs::File::open(&old)
            .unwrap()
            .set_modified(minutes_ago)
            .unwrap();
        let dir = shared_init_layer(root.path()).unwrap();
        assert_eq!(dir, root.path().join("init-layer"));
        for e in [
            "proc",
            "sys",
            "dev",
            "etc/hosts",
            "etc/hostname",
            "etc/resolv.conf",
            ".dockerenv",
        ] {
            assert!(dir.join(e).exists(), "{e}");
        }
        fs::write(dir.join("etc/hosts"), b"kept").unwrap();
        assert_eq!(shared_init_layer(root.path()).unwrap(), dir);
        assert_eq!(fs::read(dir.join("etc/hosts")).unwrap(), b"kept");
        // No temporary directory is left beside it.
        let names: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("init-layer")]);
    }

    #[test]
    fn resolv_conf_overrides() {
        let host =
            "domain corp\nsearch corp\nnameserver 127.0.0.53\nnameserver 10.0.0.1\noptions edns0\n";
        let mut o = ContainerOptions::new("img");
        o.network = NetworkMode::Bridge;
        assert_eq!(
            resolv_conf(host, &o),
            "domain corp\nsearch corp\nnameserver 10.0.0.1\noptions edns0\n"
        );
        o.dns = vec!["10.9.9.9".into()];
        o.dns_search = vec!["a.example".into(), "b.example".into()];
        o.dns_options = vec!["ndots:2".into()];
        assert_eq!(
            resolv_conf(host, &o),
            "nameserver 10.9.9.9\nsearch a.example b.example\noptions ndots:2\n"
        );
    }
}
