//! `berth build`: the Dockerfile parser (pure, with a corpus of its own) and
//! the executor that turns each instruction into an image step on the engine.

mod config;
mod context;
mod copy;
mod error;
mod executor;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod shell;

pub use context::{is_archive, unpack_archive};
pub use error::BuildError;
pub use executor::{build, BuildOptions};
pub use instructions::{
    parse_dockerfile, parse_instruction, Command, CopySpec, Dockerfile, Healthcheck, Instruction,
    Stage, Step,
};
pub use parser::{Heredoc, ParseError};
