//! What a build asks of the engine: run a step's container with its output
//! streamed back, write into a container's filesystem, and turn its writable
//! layer into a layer of the image store.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use berth_image::{Digest, Image};
use berth_runtime::RootfsMount;

use crate::error::{Error, Result};
use crate::monitor::proto;
use crate::Engine;

/// Which stream a piece of a container's output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Engine {
    /// Starts a created container under its monitor and streams its output
    /// to `out` until it exits; returns its exit code.
    pub fn run_attached(&self, id: &str, out: &mut dyn FnMut(Stream, &[u8])) -> Result<i32> {
        let (mut mine, theirs) =
            UnixStream::pair().map_err(|e| Error::io("create", "socket pair")(e))?;
        self.start_monitored(id, Some(OwnedFd::from(theirs)), None)?;
        loop {
            match proto::read_frame(&mut mine) {
                Ok(Some((proto::STDOUT, data))) => out(Stream::Stdout, &data),
                Ok(Some((proto::STDERR, data))) => out(Stream::Stderr, &data),
                Ok(Some((proto::EXIT, data))) => {
                    if let Some(code) = proto::exit_code(&data) {
                        return Ok(code);
                    }
                }
                Ok(Some(_)) => {}
                // The monitor hung up without an exit frame: what the record says.
                Ok(None) | Err(_) => {
                    let rec = self.containers.find(id)?;
                    if rec.state.status.is_active() {
                        return Err(Error::Conflict(format!(
                            "lost the connection to the monitor of container {}",
                            rec.name
                        )));
                    }
                    return Ok(rec.state.exit_code);
                }
            }
        }
    }

    /// Mounts a (not running) container's filesystem read-write in the private
    /// mount namespace of a child process, and `from`'s read-only beside it,
    /// and runs `work(root, from_root)` there. Nothing is mounted on the host.
    pub fn with_container_fs(
        &self,
        id: &str,
        from: Option<&Image>,
        work: impl FnOnce(&Path, Option<&Path>) -> std::result::Result<(), String> + Send,
    ) -> Result<()> {
        let rec = self.containers.find(id)?;
        let cdir = self.containers.dir(&rec.id);
        let mount = self.rootfs_mount(&rec)?;
        // The source image's layers, stacked read-only over an empty
        // directory (overlay wants two lower layers without an upper one).
        let from_dir = cdir.join("from");
        let empty = cdir.join("empty");
        let from_data = match from {
            Some(img) => {
                for d in [&from_dir, &empty] {
                    std::fs::create_dir_all(d).map_err(Error::io("create", d))?;
                }
                for c in &img.chain_ids {
                    self.images.layers().ensure_link(c)?;
                }
                let lower: Vec<String> = img
                    .chain_ids
                    .iter()
                    .rev()
                    .map(|c| self.images.layers().link(c).display().to_string())
                    .chain([empty.display().to_string()])
                    .collect();
                Some((lower.len() > 1).then(|| format!("lowerdir={}", lower.join(":"))))
            }
            None => None,
        };
        let done = berth_runtime::with_private_mount(&mount, &cdir.join("rootfs"), false, |root| {
            let from_root = match &from_data {
                None => None,
                Some(None) => Some(empty.as_path()),
                Some(Some(data)) => {
                    // Its layer paths are as short as the container's.
                    berth_runtime::in_dir(mount.workdir.as_deref(), || {
                        nix::mount::mount(
                            Some("overlay"),
                            &from_dir,
                            Some("overlay"),
                            nix::mount::MsFlags::MS_RDONLY,
                            Some(data.as_str()),
                        )
                        .map_err(|e| format!("mount the source image: {e}"))
                    })?;
                    Some(from_dir.as_path())
                }
            };
            let done = work(root, from_root);
            if matches!(from_data, Some(Some(_))) {
                let _ = nix::mount::umount2(&from_dir, nix::mount::MntFlags::MNT_DETACH);
            }
            done
        });
        for d in [&from_dir, &empty] {
            let _ = std::fs::remove_dir(d);
        }
        done.map_err(|e| match e {
            berth_runtime::Error::Helper { message, .. } => Error::InvalidArgument(message),
            e => e.into(),
        })
    }

    /// The overlay of a container's image layers, init layer and writable
    /// layer, for mounting where the container is not running.
    pub(crate) fn rootfs_mount(&self, rec: &crate::ContainerRecord) -> Result<RootfsMount> {
        let image = self.images.resolve(&rec.image_id)?;
        let cdir = self.containers.dir(&rec.id);
        let m = self.images.overlay(
            &image,
            Some(&self.init_layer(&cdir)?),
            &cdir.join("upper"),
            &cdir.join("work"),
        )?;
        Ok(RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            data: Some(m.data),
            workdir: Some(m.workdir),
        })
    }

    /// A (stopped) container's writable layer as a new layer of the image
    /// store, over its image's layers. Returns the layer's diff ID and size.
    pub fn commit_layer(&self, id: &str) -> Result<(Digest, u64)> {
        let rec = self.containers.find(id)?;
        let image = self.images.resolve(&rec.image_id)?;
        let upper = self.containers.dir(&rec.id).join("upper");
        Ok(self.images.commit_layer(Some(&image), &upper)?)
    }
}
