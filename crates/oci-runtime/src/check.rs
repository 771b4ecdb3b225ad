//! What berth-runtime honours of a spec, as a list of the spec's fields:
//! anything the spec defines outside it is refused by name, never skipped.
//! (Properties the spec does not define are ignored, as it requires.)

use serde_json::Value;

/// Fields honoured, as paths in config.json; `*` is any array element or
/// map key, and a path ending in `/` takes everything below it.
const SUPPORTED: &[&str] = &[
    "ociVersion",
    "hostname",
    "domainname",
    "annotations/",
    "root/path",
    "root/readonly",
    "mounts/*/destination",
    "mounts/*/source",
    "mounts/*/type",
    "mounts/*/options/",
    "process/terminal",
    "process/consoleSize/",
    "process/user/uid",
    "process/user/gid",
    "process/user/umask",
    "process/user/additionalGids/",
    "process/args/",
    "process/env/",
    "process/cwd",
    "process/capabilities/",
    "process/rlimits/",
    "process/noNewPrivileges",
    "process/oomScoreAdj",
    "hooks/prestart/",
    "hooks/createRuntime/",
    "hooks/createContainer/",
    "hooks/startContainer/",
    "hooks/poststart/",
    "hooks/poststop/",
    "linux/uidMappings/",
    "linux/gidMappings/",
    "linux/sysctl/",
    "linux/cgroupsPath",
    "linux/namespaces/",
    "linux/devices/",
    "linux/rootfsPropagation",
    "linux/maskedPaths/",
    "linux/readonlyPaths/",
    "linux/seccomp/defaultAction",
    "linux/seccomp/defaultErrnoRet",
    "linux/seccomp/architectures/",
    "linux/seccomp/syscalls/",
    "linux/resources/devices/",
    "linux/resources/memory/limit",
    "linux/resources/memory/swap",
    "linux/resources/memory/reservation",
    "linux/resources/memory/disableOOMKiller",
    "linux/resources/memory/swappiness",
    "linux/resources/cpu/shares",
    "linux/resources/cpu/quota",
    "linux/resources/cpu/period",
    "linux/resources/cpu/realtimeRuntime",
    "linux/resources/cpu/realtimePeriod",
    "linux/resources/cpu/cpus",
    "linux/resources/cpu/mems",
    "linux/resources/pids/limit",
    "linux/resources/blockIO/weight",
    "linux/resources/blockIO/weightDevice/*/major",
    "linux/resources/blockIO/weightDevice/*/minor",
    "linux/resources/blockIO/weightDevice/*/weight",
    "linux/resources/blockIO/throttleReadBpsDevice/",
    "linux/resources/blockIO/throttleWriteBpsDevice/",
    "linux/resources/blockIO/throttleReadIOPSDevice/",
    "linux/resources/blockIO/throttleWriteIOPSDevice/",
];

/// Fields that are allowed when they say nothing (an empty string, an
/// empty list, false, or zero): tools write them out by default.
const EMPTY_ALLOWED: &[&str] = &[
    "process/apparmorProfile",
    "process/selinuxLabel",
    "linux/mountLabel",
    "linux/seccomp/flags",
    "linux/resources/memory/kernel",
    "linux/resources/memory/kernelTCP",
    "linux/resources/memory/useHierarchy",
    "linux/resources/memory/checkBeforeUpdate",
    "linux/resources/blockIO/leafWeight",
    "linux/resources/blockIO/weightDevice/*/leafWeight",
    "linux/resources/hugepageLimits",
    "linux/resources/unified",
    "linux/resources/rdma",
];

fn matches(pattern: &str, path: &[String]) -> bool {
    let (pattern, below) = match pattern.strip_suffix('/') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('/').collect();
    if path.len() < parts.len() || (!below && path.len() != parts.len()) {
        return false;
    }
    parts.iter().zip(path).all(|(p, seg)| *p == "*" || p == seg)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    if !path.is_empty() {
        let covered = SUPPORTED.iter().any(|p| matches(p, path));
        let empty_ok = EMPTY_ALLOWED.iter().any(|p| matches(p, path)) && is_empty(v);
        if covered || empty_ok {
            return;
        }
    }
    let leaf = |path: &Vec<String>, out: &mut Vec<String>| {
        if !is_empty(v) {
            out.push(path.join("."));
        }
    };
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, child) in o {
                path.push(k.clone());
                walk(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for child in a {
                path.push("*".into());
                walk(child, path, out);
                path.pop();
            }
        }
        Value::Null => {}
        _ => leaf(path, out),
    }
}

/// The spec's fields berth-runtime does not honour (`linux.intelRdt`,
/// `process.scheduler`, ...), each once. `spec` is the spec as the
/// oci-spec types read it: fields the spec does not define are gone.
pub fn unsupported(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(spec, &mut Vec::new(), &mut out);
    // One name per field: `mounts.*.uidMappings` rather than every element.
    let mut names: Vec<String> = out
        .into_iter()
        .map(|p| {
            let parts: Vec<&str> = p.split('.').collect();
            // Down to the first segment no supported path knows.
            let mut keep = Vec::new();
            for seg in parts {
                keep.push(seg);
                let as_path: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
                let known_prefix = SUPPORTED.iter().chain(EMPTY_ALLOWED).any(|sp| {
                    sp.split('/').zip(&as_path).all(|(a, b)| a == "*" || a == b)
                        && sp.split('/').count() > as_path.len()
                });
                if !known_prefix {
                    break;
                }
            }
            keep.join(".").replace(".*", "[]")
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What a cgroup v2 host cannot honour of what [`SUPPORTED`] lists:
/// swappiness and the OOM killer switch (v2 has neither file). Device rules
/// it honours with an eBPF program attached to the container's cgroup.
pub fn unsupported_on_cgroup_v2(spec: &Value) -> Vec<String> {
    let r = &spec["linux"]["resources"];
    let mut out = Vec::new();
    if !r["memory"]["swappiness"].is_null() {
        out.push("linux.resources.memory.swappiness (cgroup v2 has none)".to_string());
    }
    if r["memory"]["disableOOMKiller"].as_bool() == Some(true) {
        out.push("linux.resources.memory.disableOOMKiller (cgroup v2 has none)".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cgroup_v2_refusals() {
        let spec = json!({"linux": {"resources": {
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"swappiness": 0, "disableOOMKiller": false}
        }}});
        let got = unsupported_on_cgroup_v2(&spec);
        // Device rules become the cgroup's eBPF program.
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("linux.resources.memory.swappiness"));
        assert!(unsupported_on_cgroup_v2(&json!({"linux": {}})).is_empty());
    }

    #[test]
    fn supported_fields_pass() {
        let spec = json!({
            "ociVersion": "1.3.0",
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": ["CAP_KILL"]}, "apparmorProfile": ""},
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}], "resources": {"devices": [{"allow": false, "access": "rwm"}],
                      "memory": {"limit": 100, "kernel": 0}}},
            "hooks": {"prestart": [{"path": "/bin/true", "timeout": 3}]}
        });
        assert_eq!(unsupported(&spec), Vec::<String>::new());
        // Empty sections ask for nothing (docker writes "hooks": {}).
        let spec = json!({"ociVersion": "1.0.2", "hooks": {}, "windows": {}, "process": {"scheduler": {}}});
        assert_eq!(unsupported(&spec), Vec::<String>::new());
    }

    #[test]
    fn each_unsupported_field_is_named_once() {
        let spec = json!({
            "ociVersion": "1.3.0",
            "process": {"args": ["sh"], "cwd": "/", "scheduler": {"policy": "SCHED_FIFO"},
                        "ioPriority": {"class": "IOPRIO_CLASS_RT"}},
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]},
                       {"destination": "/b", "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}],
            "linux": {"intelRdt": {"closID": "x"}, "resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]},
                      "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/s"}}
        });
        assert_eq!(
            unsupported(&spec),
            vec![
                "linux.intelRdt",
                "linux.resources.hugepageLimits",
                "linux.seccomp.listenerPath",
                "mounts[].uidMappings",
                "process.ioPriority",
                "process.scheduler",
            ]
        );
    }
}
