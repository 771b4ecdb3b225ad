//! Parsing OCI mount options (`["nosuid", "ro", "size=65536k"]`) into mount(2) flags.

use nix::mount::MsFlags;

/// Mount options split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Propagation flags applied with a second mount call.
    pub propagation: MsFlags,
    /// Filesystem-specific options, comma-joined.
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `copyup` (Berth's own option): before an empty directory is
    /// bind-mounted, fill it with what the container's root has at the mount
    /// point, as docker does for volumes.
    pub copy_up: bool,
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
        let mut out = MountOptions {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: String::new(),
            bind: false,
            copy_up: false,
        };
        let mut data: Vec<&str> = Vec::new();
        for opt in options {
            let opt = opt.as_ref();
            let (set, clear, prop) = match opt {
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, MsFlags::empty()),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), MsFlags::empty()),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), MsFlags::empty()),
                "bind" => {
                    out.bind = true;
                    (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty())
                }
                "rbind" => {
                    out.bind = true;
                    (
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        MsFlags::empty(),
                        MsFlags::empty(),
                    )
                }
                "copyup" => {
                    out.copy_up = true;
                    continue;
                }
                "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
                "rprivate" => (
                    MsFlags::empty(),
                    MsFlags::empty(),
                    MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                ),
                "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
                "rslave" => (
                    MsFlags::empty(),
                    MsFlags::empty(),
                    MsFlags::MS_SLAVE | MsFlags::MS_REC,
                ),
                "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
                "rshared" => (
                    MsFlags::empty(),
                    MsFlags::empty(),
                    MsFlags::MS_SHARED | MsFlags::MS_REC,
                ),
                "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
                "runbindable" => (
                    MsFlags::empty(),
                    MsFlags::empty(),
                    MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                ),
                other => {
                    data.push(other);
                    continue;
                }
            };
            out.flags.insert(set);
            out.flags.remove(clear);
            out.propagation.insert(prop);
        }
        out.data = data.join(",");
        out
    }

    /// Flags that a bind mount only honours on a remount.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_data_and_propagation() {
        let o =
            MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_win_and_bind_is_detected() {
        let o = MountOptions::parse(&["ro", "rw", "rbind", "copyup"]);
        assert!(o.copy_up && o.data.is_empty());
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.bind);
        assert!(o.flags.contains(MsFlags::MS_REC));
        let ro = MountOptions::parse(&["bind", "ro", "nosuid"]);
        assert_eq!(ro.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    }
}
