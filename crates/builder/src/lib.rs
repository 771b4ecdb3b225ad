//! `berth build`: the Dockerfile parser (pure, with a corpus of its own) and
//! the executor that turns each instruction into an image step on the engine;
//! and the config-only instructions that `commit -c` and `import -c` apply
//! ([`apply_changes`]).

mod changes;
mod config;
mod context;
mod copy;
mod error;
mod executor;
pub mod ignore;
pub mod instructions;
pub mod parser;
mod remote;
pub mod shell;

pub use changes::{apply_changes, ChangeError};
pub use context::{is_archive, unpack_archive, unpack_context};
pub use error::BuildError;
pub use executor::{build, credentials_for, BuildOptions, StepOptions};
pub use instructions::{
    parse_dockerfile, parse_instruction, Command, CopySpec, Dockerfile, Healthcheck, Instruction,
    Stage, Step,
};
pub use parser::{Heredoc, ParseError};
pub use remote::{prepare_remote_context, Remote};

/// The shared Dockerfile corpus (`../shared/corpus/dockerfile`), if this
/// checkout has it; tests that need it skip without it.
#[cfg(test)]
pub(crate) fn test_corpus() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/dockerfile"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: Dockerfile corpus not found at {}", dir.display());
        None
    }
}
