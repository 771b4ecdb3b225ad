//! The same checks for both backends, against fake cgroupfs trees (this
//! machine's v2 mount has no controllers; the real v1 tree is exercised by the
//! end-to-end tests).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::unistd::Pid;

use super::devicefilter::DeviceFilter;

use super::v1::{Hierarchy, V1};
use super::v2::V2;
use super::{Backend, DeviceRule, Limits};

const V1_FILES: [(&str, &[&str]); 6] = [
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.oom_control",
        ],
    ),
    (
        "cpu",
        &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
    ),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    ("pids", &["pids.max"]),
    ("freezer", &["freezer.state"]),
    ("devices", &["devices.allow", "devices.deny"]),
];

const V2_FILES: [&str; 10] = [
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "cgroup.freeze",
    "cgroup.events",
];

/// A fake tree with the container's directory and files already in place,
/// as the kernel would create them.
struct Fake {
    _tmp: tempfile::TempDir,
    backend: Box<dyn Backend>,
    /// Reads the file holding a meaning ("memory limit", ...).
    read: Box<dyn Fn(&str) -> String>,
}

fn touch(dir: &Path, files: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for f in files.iter().chain(&["cgroup.procs"]) {
        fs::write(dir.join(f), "").unwrap();
    }
}

fn fake_v1() -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let mut hs = Vec::new();
    for (ctrl, files) in V1_FILES {
        let mount = tmp.path().join(ctrl);
        touch(&mount.join("berth/c1"), files);
        hs.push(Hierarchy {
            mount,
            controllers: vec![ctrl.to_string()],
        });
    }
    let root = tmp.path().to_path_buf();
    let backend = Box::new(V1::new(hs, Path::new("berth/c1")));
    let read = Box::new(move |meaning: &str| {
        let (ctrl, file) = match meaning {
            "memory" => ("memory", "memory.limit_in_bytes"),
            "swap" => ("memory", "memory.memsw.limit_in_bytes"),
            "reservation" => ("memory", "memory.soft_limit_in_bytes"),
            "quota" => ("cpu", "cpu.cfs_quota_us"),
            "period" => ("cpu", "cpu.cfs_period_us"),
            "weight" => ("cpu", "cpu.shares"),
            "cpus" => ("cpuset", "cpuset.cpus"),
            "pids" => ("pids", "pids.max"),
            "procs" => ("pids", "cgroup.procs"),
            other => panic!("{other}"),
        };
        fs::read_to_string(root.join(ctrl).join("berth/c1").join(file)).unwrap()
    });
    Fake {
        _tmp: tmp,
        backend,
        read,
    }
}

fn fake_v2() -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    touch(&tmp.path().join("berth/c1"), &V2_FILES);
    let dir: PathBuf = tmp.path().join("berth/c1");
    let backend = Box::new(V2::with_device_filter(
        tmp.path(),
        Path::new("berth/c1"),
        Box::new(Recorder::default()),
    ));
    let read = Box::new(move |meaning: &str| {
        let file = match meaning {
            "memory" => "memory.max",
            "swap" => "memory.swap.max",
            "reservation" => "memory.low",
            "quota" | "period" => "cpu.max",
            "weight" => "cpu.weight",
            "cpus" => "cpuset.cpus",
            "pids" => "pids.max",
            "procs" => "cgroup.procs",
            other => panic!("{other}"),
        };
        fs::read_to_string(dir.join(file)).unwrap()
    });
    Fake {
        _tmp: tmp,
        backend,
        read,
    }
}

/// Stands in for the eBPF loader on a fake tree: remembers what it was
/// asked to install, and where.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Installed>>>);

/// A cgroup directory and the rules installed for it.
type Installed = (PathBuf, Vec<DeviceRule>);

impl DeviceFilter for Recorder {
    fn install(&self, cgroup: &Path, rules: &[DeviceRule]) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push((cgroup.to_path_buf(), rules.to_vec()));
        Ok(())
    }
}

#[test]
fn v2_installs_the_device_rules_once_per_apply_with_rules() {
    let tmp = tempfile::tempdir().unwrap();
    touch(&tmp.path().join("berth/c1"), &V2_FILES);
    let rec = Recorder::default();
    let v2 = V2::with_device_filter(tmp.path(), Path::new("berth/c1"), Box::new(rec.clone()));
    v2.apply(&limits()).unwrap();
    // An update without device rules leaves the program alone.
    v2.apply(&Limits {
        pids: Some(5),
        ..Default::default()
    })
    .unwrap();
    let got = rec.0.lock().unwrap().clone();
    assert_eq!(got, vec![(tmp.path().join("berth/c1"), limits().devices)]);
}

fn limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: Some(128 << 20),
        memory_reservation: Some(32 << 20),
        disable_oom_killer: false,
        cpu_shares: Some(512),
        cpu_quota: Some(20_000),
        cpu_period: Some(100_000),
        cpuset_cpus: Some("0".into()),
        cpuset_mems: None,
        pids: Some(50),
        devices: vec![DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }],
        ..Default::default()
    }
}

#[test]
fn both_backends_write_the_limits() {
    for (name, fake, expect) in [
        (
            "v1",
            fake_v1(),
            [
                ("memory", "67108864"),
                ("swap", "134217728"),
                ("reservation", "33554432"),
                ("quota", "20000"),
                ("period", "100000"),
                ("weight", "512"),
                ("cpus", "0"),
                ("pids", "50"),
            ],
        ),
        (
            "v2",
            fake_v2(),
            [
                ("memory", "67108864"),
                ("swap", "67108864"),
                ("reservation", "33554432"),
                ("quota", "20000 100000"),
                ("period", "20000 100000"),
                ("weight", "59"),
                ("cpus", "0"),
                ("pids", "50"),
            ],
        ),
    ] {
        fake.backend.create().unwrap();
        fake.backend.apply(&limits()).unwrap();
        fake.backend.add(Pid::from_raw(4242)).unwrap();
        assert_eq!((fake.read)("procs"), "4242", "{name}");
        for (meaning, value) in expect {
            assert_eq!((fake.read)(meaning), value, "{name}: {meaning}");
        }
        // Unlimited values read "max" on both.
        fake.backend
            .apply(&Limits {
                pids: Some(-1),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((fake.read)("pids"), "max", "{name}");
        assert_eq!(fake.backend.dirs().len(), if name == "v1" { 6 } else { 1 });
    }
}

#[test]
fn missing_controllers_are_named() {
    let v1 = V1::new(vec![], Path::new("berth/c1"));
    let err = v1
        .apply(&Limits {
            pids: Some(5),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the pids cgroup controller is not mounted"),
        "{err}"
    );
}

#[test]
fn detect_matches_the_host_mounts() {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let v2 = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.get(1) == Some(&super::DEFAULT_ROOT) && f.get(2) == Some(&"cgroup2")
    });
    let expected = if v2 {
        super::Version::V2
    } else {
        super::Version::V1
    };
    assert_eq!(
        super::detect(Path::new(super::DEFAULT_ROOT)).unwrap(),
        expected
    );
}
