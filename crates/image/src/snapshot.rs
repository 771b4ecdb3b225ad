//! Overlay mounts that stack image layers under a container's writable layer.
//! Described here, performed by whoever mounts them (the runtime, inside the
//! container's mount namespace).

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::layers::LayerStore;

/// An overlayfs mount: its option string and the directory relative lowerdirs
/// are resolved against (the mounter changes into it first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    pub data: String,
    pub workdir: PathBuf,
}

/// The mount for a container whose image has layers `chain_ids` (bottom first),
/// with its init layer `init` above them, its writable layer in `upper` and
/// overlay's scratch space in `work`. Image layers are named by their short
/// links, relative to the layer store, to keep the option short.
pub fn overlay(
    layers: &LayerStore,
    chain_ids: &[Digest],
    init: Option<&Path>,
    upper: &Path,
    work: &Path,
) -> OverlayMount {
    let lower: Vec<String> = init
        .map(|p| p.display().to_string())
        .into_iter()
        .chain(
            chain_ids
                .iter()
                .rev()
                .map(|c| layers.link(c).display().to_string()),
        )
        .collect();
    OverlayMount {
        data: format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        ),
        workdir: layers.root().to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_top_layer_first() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let m = overlay(
            &store,
            &[a.clone(), b.clone()],
            Some(Path::new("/i")),
            Path::new("/u"),
            Path::new("/w"),
        );
        assert_eq!(
            m.data,
            format!(
                "lowerdir=/i:l/{}:l/{},upperdir=/u,workdir=/w",
                &b.hex()[..16],
                &a.hex()[..16]
            )
        );
        assert_eq!(m.workdir, store.root());
    }
}
