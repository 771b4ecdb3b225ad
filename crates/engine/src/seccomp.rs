//! Seccomp profiles in docker's format: the built-in default (docker's
//! default profile, kept as data in `data/seccomp-default.json`) or one the
//! user gives (`--security-opt seccomp=PROFILE`), resolved into the OCI
//! spec's `linux.seccomp` for a container's capabilities and this machine's
//! architecture; and the compiled programs, cached by profile under the
//! state root (compiling docker's profile costs more than a container's
//! whole start).

use std::collections::HashSet;
use std::path::Path;

use berth_runtime::oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder,
};
use serde::Deserialize;

use crate::error::{Error, Result};

/// docker's default profile.
pub const DEFAULT_PROFILE: &str = include_str!("../data/seccomp-default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    /// The older format's single name.
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// docker's name of this machine's architecture (Go's GOARCH).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        _ => "SCMP_ARCH_NATIVE",
    }
}

fn arch_name(a: &Arch) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `(major, minor)` of a `4.8`-style version.
fn version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn kernel_version() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    version(&uts.release().to_string_lossy())
}

fn cap_name(c: &Capability) -> String {
    format!("CAP_{}", c.to_string().trim_start_matches("CAP_")).to_ascii_uppercase()
}

/// Resolves a docker-format profile for a container with `caps`: rules
/// whose includes this container and machine lack, or whose excludes they
/// have, are left out.
pub fn resolve(json: &str, caps: &HashSet<Capability>) -> Result<LinuxSeccomp> {
    let bad = |m: String| Error::InvalidArgument(format!("Decoding seccomp profile failed: {m}"));
    let p: Profile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let have: HashSet<String> = caps.iter().map(cap_name).collect();
    let kernel = kernel_version();
    let arch = go_arch();
    let native = native_arch();
    let mut arches: Vec<Arch> = Vec::new();
    if let Some(list) = &p.architectures {
        arches = list.clone();
    }
    for m in p.arch_map.iter().flatten() {
        if arch_name(&m.architecture) == native {
            arches.push(m.architecture);
            arches.extend(m.sub_architectures.iter().flatten().copied());
        }
    }
    let mut syscalls = Vec::new();
    for r in p.syscalls.into_iter().flatten() {
        let inc = &r.includes;
        let exc = &r.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if !inc.caps.iter().all(|c| have.contains(c)) {
            continue;
        }
        if let (Some(min), Some(k)) = (inc.min_kernel.as_deref().and_then(version), kernel) {
            if k < min {
                continue;
            }
        }
        if exc.arches.iter().any(|a| a == arch) || exc.caps.iter().any(|c| have.contains(c)) {
            continue;
        }
        let mut names = r.names.clone();
        names.extend(r.name.clone());
        if names.is_empty() {
            return Err(bad("a rule has no syscall names".into()));
        }
        let mut b = LinuxSyscallBuilder::default().names(names).action(r.action);
        if let Some(e) = r.errno_ret {
            b = b.errno_ret(e);
        }
        if let Some(args) = &r.args {
            let args = args
                .iter()
                .map(|a| {
                    LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .value_two(a.value_two)
                        .op(a.op)
                        .build()
                        .map_err(|e| bad(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(|e| bad(e.to_string()))?);
    }
    let mut b = LinuxSeccompBuilder::default()
        .default_action(p.default_action)
        .syscalls(syscalls);
    if let Some(e) = p.default_errno_ret {
        b = b.default_errno_ret(e);
    }
    if !arches.is_empty() {
        b = b.architectures(arches);
    }
    b.build().map_err(|e| bad(e.to_string()))
}

/// The compiled program of `s`, from the cache under `root` or compiled
/// (and cached) now. The cache is keyed by the filter, the machine and the
/// libseccomp that compiles it. A cached file is the program's sha256 (32
/// bytes) then the program: one that does not match (damaged, truncated) is
/// compiled again, so a bad cache never reaches the kernel.
pub fn program(root: &Path, s: &LinuxSeccomp) -> Result<Vec<u8>> {
    let key = serde_json::to_vec(&(
        s,
        std::env::consts::ARCH,
        berth_runtime::seccomp::compiler_version(),
    ))
    .map_err(|e| Error::InvalidArgument(format!("seccomp profile: {e}")))?;
    let digest = berth_image::Digest::of(&key);
    let dir = root.join("seccomp");
    let path = dir.join(format!("{}.bpf", digest.hex()));
    if let Some(prog) = std::fs::read(&path).ok().and_then(|c| cached(&c)) {
        return Ok(prog);
    }
    let prog = berth_runtime::seccomp::compile(s)?;
    if std::fs::create_dir_all(&dir).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        let mut content = sha256(&prog).to_vec();
        content.extend_from_slice(&prog);
        if let Err(e) = berth_image::replace_file(&path, &content) {
            tracing::warn!("cache the seccomp program: {e}");
        }
    }
    Ok(prog)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(bytes) = hex::decode(berth_image::Digest::of(data).hex()) {
        if bytes.len() == 32 {
            out.copy_from_slice(&bytes);
        }
    }
    out
}

/// The program of a cache file whose digest matches it.
fn cached(content: &[u8]) -> Option<Vec<u8>> {
    let (digest, prog) = content.split_at_checked(32)?;
    (!prog.is_empty() && prog.len() % 8 == 0 && digest == sha256(prog)).then(|| prog.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn caps(names: &[&str]) -> HashSet<Capability> {
        names
            .iter()
            .map(|n| Capability::from_str(n).unwrap())
            .collect()
    }

    fn names(s: &LinuxSeccomp, action: LinuxSeccompAction) -> Vec<String> {
        s.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.action() == action)
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn the_default_profile_follows_the_capabilities() {
        let plain = resolve(DEFAULT_PROFILE, &caps(&["CHOWN", "KILL"])).unwrap();
        let allowed = names(&plain, LinuxSeccompAction::ScmpActAllow);
        assert!(allowed.contains(&"read".to_string()));
        for blocked in [
            "unshare",
            "mount",
            "keyctl",
            "add_key",
            "perf_event_open",
            "io_uring_setup",
            "move_pages",
        ] {
            assert!(!allowed.contains(&blocked.to_string()), "{blocked} allowed");
        }
        // clone3 answers ENOSYS (so libcs fall back to clone, which is
        // checked by its flags).
        let errno: Vec<_> = plain
            .syscalls()
            .as_deref()
            .unwrap()
            .iter()
            .filter(|r| r.names().contains(&"clone3".to_string()))
            .map(|r| r.errno_ret())
            .collect();
        assert_eq!(errno, [Some(38)]);
        assert_eq!(plain.default_errno_ret(), Some(1));

        let admin = resolve(DEFAULT_PROFILE, &caps(&["SYS_ADMIN"])).unwrap();
        let allowed = names(&admin, LinuxSeccompAction::ScmpActAllow);
        assert!(allowed.contains(&"mount".to_string()) && allowed.contains(&"unshare".to_string()));
        assert!(names(&admin, LinuxSeccompAction::ScmpActErrno).is_empty());
    }

    #[test]
    fn a_damaged_cache_is_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(DEFAULT_PROFILE, &caps(&["CHOWN"])).unwrap();
        let first = program(dir.path(), &s).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("seccomp"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(files.len(), 1);
        // From the cache: the same program.
        assert_eq!(program(dir.path(), &s).unwrap(), first);
        // One flipped byte: the digest no longer matches, so it is compiled
        // again (and the file rewritten), never handed to the kernel.
        let mut bytes = std::fs::read(&files[0]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&files[0], &bytes).unwrap();
        assert_eq!(program(dir.path(), &s).unwrap(), first);
        assert_eq!(cached(&std::fs::read(&files[0]).unwrap()), Some(first));
    }

    #[test]
    fn bad_profiles_are_named() {
        let e = resolve("{", &caps(&[])).unwrap_err().to_string();
        assert!(e.starts_with("Decoding seccomp profile failed"), "{e}");
        let e = resolve(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, &caps(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Decoding seccomp profile failed"), "{e}");
    }
}
