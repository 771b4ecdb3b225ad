//! The files a container gets in /etc: hostname, hosts, resolv.conf; and
//! reading the image's own /etc files for user lookup.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::config::NetworkMode;
use crate::error::Result;

const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes the container's hostname, hosts and resolv.conf into `dir` and
/// returns (container path, host file) pairs to bind-mount.
pub(crate) fn write_files(
    dir: &Path,
    hostname: &str,
    network: &NetworkMode,
    hosts_entries: &str,
    dns: &[String],
) -> Result<Vec<(String, PathBuf)>> {
    let hosts = match network {
        NetworkMode::Host => {
            fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS_BASE.to_string())
                + hosts_entries
        }
        _ => hosts_text(hosts_entries),
    };
    // Nameservers on the host's loopback are unreachable from a network namespace.
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = match network {
        _ if !dns.is_empty() => resolv
            .lines()
            .filter(|l| !l.starts_with("nameserver"))
            .map(|l| format!("{l}\n"))
            .chain(dns.iter().map(|d| format!("nameserver {d}\n")))
            .collect(),
        NetworkMode::Host => resolv,
        _ => resolv
            .lines()
            .filter(|l| {
                !(l.starts_with("nameserver") && (l.contains(" 127.") || l.contains(" ::1")))
            })
            .map(|l| format!("{l}\n"))
            .collect(),
    };
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

/// A container's /etc/hosts: the standard entries, then `entries`.
pub(crate) fn hosts_text(entries: &str) -> String {
    format!("{HOSTS_BASE}{entries}")
}

/// Writes a container's init layer: the mount points Berth mounts over
/// (/proc, /sys, /dev, the three /etc files) and /.dockerenv, so that none of
/// them is created in the container's writable layer (and so in a commit).
pub(crate) fn init_layer(dir: &Path) -> Result<()> {
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
