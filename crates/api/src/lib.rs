//! The Docker Engine API over Berth's engine: what `berth daemon` serves on a
//! unix socket, so the docker CLI, the docker SDKs and docker-compose drive
//! Berth.
//!
//! A thin face, as the CLI is: each route parses its request into the
//! engine's types (`models`), calls the engine on a blocking thread, and
//! shapes the answer as docker does. Errors become HTTP statuses in one
//! place (`error`). Attach and exec start take the connection over (HTTP
//! upgrade) and relay the container's monitor's frames (`streams`). The
//! daemon owns no container: each has its monitor, so stopping or restarting
//! the daemon never stops one, and `berth` without the daemon works on the
//! same state.

mod archive;
mod build;
mod containers;
mod error;
mod events;
mod exec;
mod image_io;
mod images;
mod models;
mod networks;
mod server;
mod streams;
mod system;
mod tls;

pub use server::{serve, DaemonOptions, Listen};
pub use tls::TlsFiles;

/// The newest API version served, and the oldest.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";
