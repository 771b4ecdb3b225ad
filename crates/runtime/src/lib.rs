//! Berth's container runtime: an OCI runtime spec plus a root filesystem become a
//! running, isolated process.
//!
//! The caller (a single-threaded process: the CLI or a per-container monitor) calls
//! [`create`], which clones the container's init process into new namespaces and
//! its cgroup (the process enters it itself, see [`cgroups`]'s `Entry`), sets up
//! its root filesystem inside the new mount namespace,
//! drops privileges and executes the container's program. The returned
//! [`Container`] is used to signal, wait for and finally destroy the container.
//!
//! The runtime knows nothing about images or engine state: it takes a spec, an
//! optional mount that becomes the root filesystem (an overlay described by the
//! image layer) and the stdio to hand the process.

mod capabilities;
mod cgroupfs;
pub mod cgroups;
mod child;
mod clone;
mod container;
pub mod copyup;
mod detached;
pub mod devices;
mod error;
mod exec;
mod mounts;
mod paths;
pub mod pidfd;
mod rlimits;
mod rootfs;
mod scratch;
pub mod seccomp;
mod sync;

pub use container::{
    create, set_winsize, Container, CreateOptions, ExitStatus, Prestart, RootfsMount, Stdio,
};
pub use detached::idmapped_view;
pub use error::{Error, StartFailure, StartFailureKind};
pub use exec::{exec, ExecOptions, ExecProcess};
pub use mounts::MountOptions;
pub use oci_spec;
pub use paths::{create_dir_in_root, open_in_root, reopen_dir};
pub use rlimits::{rlimit_name, rlimit_type};
pub use scratch::{in_dir, with_private_mount};

/// Docker's default capability set, in the order Docker lists it.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths Docker masks in every unprivileged container.
pub const DEFAULT_MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Paths Docker makes read-only in every unprivileged container.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability this process can hand to a container (its bounding set),
/// as `CAP_*` strings: what `--privileged` means on this host.
pub fn all_capabilities() -> Vec<String> {
    capabilities::available_names()
}
