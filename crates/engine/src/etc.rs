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

#[cfg(test)]
mod tests {
    use super::*;

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
