//! Images: the content store (sha256-addressed blobs), OCI image configs and
//! manifests, references, unpacked layers and the overlay mounts that stack them.
//!
//! On-disk layout under the state root (schema version 1, see [`Store::SCHEMA`]):
//!
//! ```text
//! blobs/sha256/<hex>      immutable blobs: layer tars, configs, manifests
//! layers/<chain-hex>/     one unpacked layer per chain ID, shared by all images
//!     diff/               the layer's files
//!     layer.json          diff ID, parent chain ID, size
//!     tar-split.idx       how to put the layer's tar back together from diff/
//!     tar-split.raw.zst   (the tar's headers and padding; see `split`), so
//!                         the uncompressed tar need not be kept as a blob
//! images.json             references -> image IDs, image IDs -> manifest digests
//! compressed/<diff-hex>   the gzip blob a push made of an uncompressed layer
//! ```

mod archive;
mod check;
mod commit;
mod content;
mod diff;
mod digest;
mod distribution;
mod error;
mod gc;
mod import;
mod layers;
mod metadata;
mod reference;
mod snapshot;
mod split;
mod steps;
mod store;

pub use archive::ArchiveFormat;
pub use check::{Finding, Severity, Subject};
pub use commit::CommitOptions;
pub use content::ContentStore;
pub use diff::{changes as diff_changes, write_layer, Change, ChangeKind};
pub use digest::{Algorithm, Digest, DigestWriter, Hasher};
pub use distribution::{
    media, Compression, PushImage, PushLayer, RemoteDescriptor, RemoteManifest,
};
pub use error::{Error, ErrorKind, Result};
pub use gc::{dir_size, WriteGuard};
pub use import::{host_arch, ImportOptions};
pub use layers::{chain_id, LayerStore};
pub use metadata::{replace_file, write_atomic, ImageRecord};
pub use oci_spec::image::{Config as ImageRuntimeConfig, ImageConfiguration};
pub use reference::Reference;
pub use snapshot::OverlayMount;
pub use split::Reassembler;
pub use store::{Image, Store};

/// An image's runtime config as its JSON object (the image config's
/// `config`: Cmd, Env, Labels...), every field kept, docker's that the OCI
/// config lacks (Healthcheck, OnBuild, Shell) among them.
pub type RuntimeConfigJson = serde_json::Map<String, serde_json::Value>;
