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
/// with its writable layer in `upper` and overlay's scratch space in `work`.
/// Lower directories are relative to the layer store to keep the option short.
pub fn overlay(
    layers: &LayerStore,
    chain_ids: &[Digest],
    upper: &Path,
    work: &Path,
) -> OverlayMount {
    let lower: Vec<String> = chain_ids
        .iter()
        .rev()
        .map(|c| format!("{}/diff", c.hex()))
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
    fn top_layer_comes_first() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LayerStore::open(tmp.path()).unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let m = overlay(
            &store,
            &[a.clone(), b.clone()],
            Path::new("/u"),
            Path::new("/w"),
        );
        assert_eq!(
            m.data,
            format!(
                "lowerdir={}/diff:{}/diff,upperdir=/u,workdir=/w",
                b.hex(),
                a.hex()
            )
        );
        assert_eq!(m.workdir, store.root());
    }
}
