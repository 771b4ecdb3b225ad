//! Resource limits (`process.rlimits`): the OCI names, docker's short names
//! (`--ulimit nofile=1024:2048`) and the kernel's resource numbers.

use oci_spec::runtime::PosixRlimitType;

/// Each limit: docker's name, the OCI type, the kernel's resource.
const TABLE: [(&str, PosixRlimitType, libc::__rlimit_resource_t); 16] = [
    ("cpu", PosixRlimitType::RlimitCpu, libc::RLIMIT_CPU),
    ("fsize", PosixRlimitType::RlimitFsize, libc::RLIMIT_FSIZE),
    ("data", PosixRlimitType::RlimitData, libc::RLIMIT_DATA),
    ("stack", PosixRlimitType::RlimitStack, libc::RLIMIT_STACK),
    ("core", PosixRlimitType::RlimitCore, libc::RLIMIT_CORE),
    ("rss", PosixRlimitType::RlimitRss, libc::RLIMIT_RSS),
    ("nproc", PosixRlimitType::RlimitNproc, libc::RLIMIT_NPROC),
    ("nofile", PosixRlimitType::RlimitNofile, libc::RLIMIT_NOFILE),
    (
        "memlock",
        PosixRlimitType::RlimitMemlock,
        libc::RLIMIT_MEMLOCK,
    ),
    ("as", PosixRlimitType::RlimitAs, libc::RLIMIT_AS),
    ("locks", PosixRlimitType::RlimitLocks, libc::RLIMIT_LOCKS),
    (
        "sigpending",
        PosixRlimitType::RlimitSigpending,
        libc::RLIMIT_SIGPENDING,
    ),
    (
        "msgqueue",
        PosixRlimitType::RlimitMsgqueue,
        libc::RLIMIT_MSGQUEUE,
    ),
    ("nice", PosixRlimitType::RlimitNice, libc::RLIMIT_NICE),
    ("rtprio", PosixRlimitType::RlimitRtprio, libc::RLIMIT_RTPRIO),
    ("rttime", PosixRlimitType::RlimitRttime, libc::RLIMIT_RTTIME),
];

/// The OCI type of docker's limit name (`nofile`, `nproc`, ...).
pub fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    TABLE.iter().find(|(n, ..)| *n == name).map(|(_, t, _)| *t)
}

/// docker's name of an OCI limit type.
pub fn rlimit_name(typ: PosixRlimitType) -> &'static str {
    TABLE
        .iter()
        .find(|(_, t, _)| *t == typ)
        .map_or("unknown", |(n, ..)| n)
}

pub(crate) fn resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    TABLE
        .iter()
        .find(|(_, t, _)| *t == typ)
        .map_or(libc::RLIMIT_NOFILE, |(.., r)| *r)
}

pub(crate) fn name(resource: libc::__rlimit_resource_t) -> &'static str {
    TABLE
        .iter()
        .find(|(.., r)| *r == resource)
        .map_or("unknown", |(n, ..)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (n, t, r) in TABLE {
            assert_eq!(rlimit_type(n), Some(t));
            assert_eq!(rlimit_name(t), n);
            assert_eq!(resource(t), r);
            assert_eq!(name(r), n);
        }
        assert_eq!(rlimit_type("nofiles"), None);
    }
}
