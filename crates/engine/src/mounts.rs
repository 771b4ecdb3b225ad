//! What a user asks to mount (`-v`, `--mount`, `--tmpfs`, `--volumes-from`),
//! parsed and checked with docker's syntax and messages, and what a
//! container ends up mounting once volumes are resolved.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Volume,
    Tmpfs,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// A mount as the user asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountRequest {
    pub typ: MountType,
    /// The host path of a bind mount, the name of a volume (`None`: a new
    /// anonymous volume).
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// `-v`'s mode field as given (`ro,z`), shown by inspect.
    #[serde(default)]
    pub mode: String,
    /// Bind propagation (`rprivate` unless given).
    #[serde(default)]
    pub propagation: Option<String>,
    /// Do not fill an empty volume with the image's content.
    #[serde(default)]
    pub nocopy: bool,
    /// `-v` creates a missing host directory; `--mount` refuses it.
    #[serde(default)]
    pub create_source: bool,
    #[serde(default)]
    pub volume_driver: Option<String>,
    #[serde(default)]
    pub volume_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub volume_options: BTreeMap<String, String>,
    /// tmpfs mount options (`size=64m`, `mode=1777`, `exec`).
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
}

impl MountRequest {
    pub(crate) fn new(typ: MountType, target: String) -> MountRequest {
        MountRequest {
            typ,
            source: None,
            target,
            read_only: false,
            mode: String::new(),
            propagation: None,
            nocopy: false,
            create_source: false,
            volume_driver: None,
            volume_labels: BTreeMap::new(),
            volume_options: BTreeMap::new(),
            tmpfs_options: Vec::new(),
        }
    }
}

/// A mount of a created container, with volumes resolved to their directories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountPoint {
    pub typ: MountType,
    /// The volume's name.
    pub name: Option<String>,
    /// Host path: the bind source or the volume's data directory.
    pub source: PathBuf,
    pub destination: String,
    pub rw: bool,
    pub mode: String,
    pub propagation: String,
    /// Fill the volume with the image's content at the destination the first
    /// time it is mounted.
    pub copy_up: bool,
    pub anonymous: bool,
    pub tmpfs_options: Vec<String>,
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// `/a/./b/` -> `/a/b`; a destination must be absolute, without `..`, not `/`.
pub(crate) fn clean_target(target: &str, typ: MountType) -> Result<String> {
    let bad = |why: &str| {
        invalid(format!(
            "invalid mount config for type \"{}\": invalid mount path: '{target}' {why}",
            typ.as_str()
        ))
    };
    if !target.starts_with('/') {
        return Err(bad("mount path must be absolute"));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(target).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad("mount path must not contain '..'"))
            }
        }
    }
    if out == Path::new("/") {
        return Err(invalid(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    Ok(out.to_string_lossy().into_owned())
}

/// Docker's rule for local volume names.
pub fn check_volume_name(name: &str) -> Result<()> {
    if names::valid(name) {
        return Ok(());
    }
    Err(invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// Parses `-v [SOURCE:]TARGET[:MODE]`.
pub fn parse_volume_flag(spec: &str) -> Result<MountRequest> {
    let parts: Vec<&str> = spec.splitn(4, ':').collect();
    let (source, target, mode) = match parts[..] {
        [t] => (None, t, ""),
        [s, t] => {
            if valid_mode(t) {
                // `/foo:rw`: a mode without a source.
                return Err(invalid(format!("invalid spec: {spec}")));
            }
            (Some(s), t, "")
        }
        [s, t, m] => (Some(s), t, m),
        _ => return Err(invalid(format!("invalid spec: {spec}"))),
    };
    if source == Some("") || target.is_empty() {
        return Err(invalid(format!("invalid spec: {spec}")));
    }
    if !valid_mode(mode) {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    let typ = match source {
        Some(s) if s.starts_with('/') => MountType::Bind,
        _ => MountType::Volume,
    };
    let mut m = MountRequest::new(typ, clean_target(target, typ)?);
    if let (MountType::Volume, Some(name)) = (typ, source) {
        check_volume_name(name)?;
    }
    m.source = source.map(str::to_string);
    m.mode = mode.to_string();
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "nocopy" if typ == MountType::Volume => m.nocopy = true,
            "nocopy" => return Err(invalid(format!("invalid mode: {mode}"))),
            p if PROPAGATIONS.contains(&p) => {
                if typ == MountType::Volume {
                    return Err(invalid(format!(
                        "invalid mode: {mode}: propagation applies to bind mounts only"
                    )));
                }
                m.propagation = Some(p.to_string());
            }
            // SELinux labels and macOS consistency: nothing to do here.
            _ => {}
        }
    }
    m.create_source = true;
    Ok(m)
}

/// Whether `mode` is a valid `-v` mode list: at most one of each kind.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let (mut rw, mut label, mut prop, mut copy, mut consistency) = (0, 0, 0, 0, 0);
    for opt in mode.split(',') {
        match opt {
            "ro" | "rw" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            "consistent" | "cached" | "delegated" => consistency += 1,
            p if PROPAGATIONS.contains(&p) => prop += 1,
            _ => return false,
        }
    }
    rw <= 1 && label <= 1 && prop <= 1 && copy <= 1 && consistency <= 1
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(invalid(format!(
            "invalid value for {key}: {other} (use true or false)"
        ))),
    }
}

fn key_value(field: &str, what: &str) -> Result<(String, String)> {
    match field.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(invalid(format!(
            "invalid {what} '{field}': must be a key=value pair"
        ))),
    }
}

/// Parses `--mount type=...,source=...,target=...,...`.
pub fn parse_mount_flag(spec: &str) -> Result<MountRequest> {
    let mut typ = MountType::Volume;
    let mut source = None;
    let mut target = None;
    let mut read_only = false;
    let mut propagation = None;
    let mut nocopy = false;
    let mut driver = None;
    let mut labels = BTreeMap::new();
    let mut options = BTreeMap::new();
    let mut tmpfs = Vec::new();
    let mut volume_fields = false;
    let mut bind_fields = false;
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = || {
            value
                .ok_or_else(|| invalid(format!("invalid field '{field}' must be a key=value pair")))
        };
        match key.as_str() {
            "type" => {
                typ = match need()? {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => return Err(invalid(format!("invalid mount type: {other}"))),
                }
            }
            "source" | "src" => source = Some(need()?.to_string()),
            "target" | "destination" | "dst" => target = Some(need()?.to_string()),
            "readonly" | "ro" => read_only = parse_bool(&key, value)?,
            "bind-propagation" => {
                let p = need()?;
                if !PROPAGATIONS.contains(&p) {
                    return Err(invalid(format!("invalid bind propagation: {p}")));
                }
                propagation = Some(p.to_string());
                bind_fields = true;
            }
            "bind-nonrecursive" | "consistency" => {}
            "volume-nocopy" => {
                nocopy = parse_bool(&key, value)?;
                volume_fields = true;
            }
            "volume-driver" => {
                driver = Some(need()?.to_string());
                volume_fields = true;
            }
            "volume-label" => {
                let (k, v) = key_value(need()?, "volume-label")?;
                labels.insert(k, v);
                volume_fields = true;
            }
            "volume-opt" => {
                let (k, v) = key_value(need()?, "volume-opt")?;
                options.insert(k, v);
                volume_fields = true;
            }
            "tmpfs-size" => tmpfs.push(format!("size={}", tmpfs_size(need()?)?)),
            "tmpfs-mode" => {
                let m = need()?;
                let mode = u32::from_str_radix(m, 8)
                    .map_err(|_| invalid(format!("invalid tmpfs-mode: {m}")))?;
                tmpfs.push(format!("mode={mode:o}"));
            }
            _ => return Err(invalid(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    let target = target.ok_or_else(|| invalid("target is required".into()))?;
    let typ_err = |m: &str| {
        invalid(format!(
            "invalid mount config for type \"{}\": {m}",
            typ.as_str()
        ))
    };
    let mut m = MountRequest::new(typ, clean_target(&target, typ)?);
    match typ {
        MountType::Bind => {
            let s = source.ok_or_else(|| typ_err("field Source must not be empty"))?;
            if !s.starts_with('/') {
                return Err(typ_err(&format!(
                    "invalid mount path: '{s}' mount path must be absolute"
                )));
            }
            if volume_fields {
                return Err(typ_err("field VolumeOptions must not be specified"));
            }
            m.source = Some(s);
        }
        MountType::Volume => {
            if bind_fields {
                return Err(typ_err("field BindOptions must not be specified"));
            }
            if let Some(s) = &source {
                check_volume_name(s)?;
            }
            m.source = source;
        }
        MountType::Tmpfs => {
            if source.is_some() {
                return Err(typ_err("field Source must not be specified"));
            }
            if bind_fields || volume_fields {
                return Err(typ_err("only tmpfs options may be given"));
            }
        }
    }
    if typ != MountType::Tmpfs && !tmpfs.is_empty() {
        return Err(typ_err("field TmpfsOptions must not be specified"));
    }
    m.read_only = read_only;
    m.propagation = propagation;
    m.nocopy = nocopy;
    m.volume_driver = driver;
    m.volume_labels = labels;
    m.volume_options = options;
    m.tmpfs_options = tmpfs;
    if read_only {
        m.mode = "ro".into();
    }
    Ok(m)
}

/// `64m` -> bytes, for tmpfs's size option.
fn tmpfs_size(s: &str) -> Result<i64> {
    crate::units::parse_bytes(s)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid(format!("invalid tmpfs size: {s}")))
}

const TMPFS_FLAGS: [&str; 16] = [
    "ro",
    "rw",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "strictatime",
    "sync",
    "async",
];

/// Parses `--tmpfs TARGET[:OPTIONS]`.
pub fn parse_tmpfs_flag(spec: &str) -> Result<MountRequest> {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let mut m = MountRequest::new(MountType::Tmpfs, clean_target(target, MountType::Tmpfs)?);
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        match k {
            "size" => m.tmpfs_options.push(format!("size={}", tmpfs_size(v)?)),
            "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "mpol" | "huge" => {
                if v.is_empty() {
                    return Err(invalid(format!("invalid tmpfs option: {opt}")));
                }
                m.tmpfs_options.push(opt.to_string())
            }
            f if TMPFS_FLAGS.contains(&f) && v.is_empty() => {
                if f == "ro" {
                    m.read_only = true;
                }
                m.tmpfs_options.push(f.to_string())
            }
            _ => {
                return Err(invalid(format!(
                    "invalid tmpfs option \"{opt}\" for {target}"
                )))
            }
        }
    }
    Ok(m)
}

/// Parses `--volumes-from CONTAINER[:ro|rw]`: the container and whether its
/// mounts are forced read-only (`Some(true)`) or read-write.
pub fn parse_volumes_from(spec: &str) -> Result<(String, Option<bool>)> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some((c, "ro")) => Ok((c.to_string(), Some(true))),
        Some((c, "rw")) => Ok((c.to_string(), Some(false))),
        Some((_, m)) => Err(invalid(format!("invalid mode: {m}"))),
    }
}

/// Refuses two mounts on one destination.
pub fn check_duplicates<'a>(targets: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for t in targets {
        if !seen.insert(t) {
            return Err(invalid(format!("Duplicate mount point: {t}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flag_forms() {
        let anon = parse_volume_flag("/data").unwrap();
        assert_eq!(
            (anon.typ, anon.source, anon.target.as_str()),
            (MountType::Volume, None, "/data")
        );
        let named = parse_volume_flag("vol:/data/./x/").unwrap();
        assert_eq!(named.source.as_deref(), Some("vol"));
        assert_eq!(named.target, "/data/x");
        let bind = parse_volume_flag("/etc/hostname:/h:ro").unwrap();
        assert_eq!(bind.typ, MountType::Bind);
        assert!(bind.read_only && bind.create_source);
        assert_eq!(bind.mode, "ro");
        let nocopy = parse_volume_flag("v:/d:nocopy,rw").unwrap();
        assert!(nocopy.nocopy && !nocopy.read_only);
        let prop = parse_volume_flag("/a:/b:rslave,z").unwrap();
        assert_eq!(prop.propagation.as_deref(), Some("rslave"));
    }

    #[test]
    fn volume_flag_errors_name_the_problem() {
        let err = |s: &str| parse_volume_flag(s).unwrap_err().to_string();
        assert!(err("./rel:/x").contains("includes invalid characters for a local volume name"));
        assert!(err("a/b:/x").contains("use absolute path"));
        assert!(err("v:rel").contains("mount path must be absolute"));
        assert_eq!(err("/data:rw"), "invalid spec: /data:rw");
        assert_eq!(err("v:/x:bogus"), "invalid mode: bogus");
        assert_eq!(err("v:/x:ro,rw"), "invalid mode: ro,rw");
        assert!(err("/h:/x:nocopy").contains("invalid mode"));
        assert!(err("v:/").contains("destination can't be '/'"));
        assert!(err("v:/a/../b").contains("'..'"));
        assert_eq!(err("a:b:c:d"), "invalid spec: a:b:c:d");
    }

    #[test]
    fn mount_flag_forms_and_errors() {
        let b = parse_mount_flag("type=bind,source=/home,target=/test,readonly").unwrap();
        assert_eq!((b.typ, b.read_only), (MountType::Bind, true));
        assert!(!b.create_source);
        let v = parse_mount_flag(
            "type=volume,src=v2,dst=/data,volume-opt=type=tmpfs,volume-opt=o=size=1m,volume-label=a=b",
        )
        .unwrap();
        assert_eq!(
            v.volume_options.get("o").map(String::as_str),
            Some("size=1m")
        );
        assert_eq!(
            v.volume_options.get("type").map(String::as_str),
            Some("tmpfs")
        );
        assert_eq!(v.volume_labels.get("a").map(String::as_str), Some("b"));
        let t = parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(t.tmpfs_options, vec!["size=67108864", "mode=1770"]);
        let anon = parse_mount_flag("target=/x").unwrap();
        assert_eq!((anon.typ, anon.source), (MountType::Volume, None));

        let err = |s: &str| parse_mount_flag(s).unwrap_err().to_string();
        assert_eq!(
            err("type=bind,target=/x"),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err("type=volume,target=/x,bogus=1"),
            "unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(err("type=bind,src=/a"), "target is required");
        assert!(err("type=bind,src=rel,dst=/x").contains("must be absolute"));
        assert!(err("type=bind,src=/a,dst=/x,volume-nocopy").contains("VolumeOptions"));
        assert!(err("type=tmpfs,src=/a,dst=/x").contains("Source must not be specified"));
        assert_eq!(err("type=nfs,dst=/x"), "invalid mount type: nfs");
        assert!(err("type=volume,src=a/b,dst=/x").contains("invalid characters"));
    }

    #[test]
    fn tmpfs_flag() {
        let t = parse_tmpfs_flag("/tmp:size=64m,mode=1777,exec").unwrap();
        assert_eq!(t.target, "/tmp");
        assert_eq!(t.tmpfs_options, vec!["size=67108864", "mode=1777", "exec"]);
        assert!(parse_tmpfs_flag("/run").unwrap().tmpfs_options.is_empty());
        let e = parse_tmpfs_flag("/tmp:bogus").unwrap_err().to_string();
        assert!(e.contains("invalid tmpfs option \"bogus\""), "{e}");
        assert!(parse_tmpfs_flag("tmp").is_err());
    }

    #[test]
    fn volumes_from_and_duplicates() {
        assert_eq!(parse_volumes_from("c1").unwrap(), ("c1".into(), None));
        assert_eq!(
            parse_volumes_from("c1:ro").unwrap(),
            ("c1".into(), Some(true))
        );
        assert!(parse_volumes_from("c1:zz").is_err());
        assert!(check_duplicates(["/a", "/b"]).is_ok());
        assert_eq!(
            check_duplicates(["/a", "/b", "/a"])
                .unwrap_err()
                .to_string(),
            "Duplicate mount point: /a"
        );
    }
}
