use crate::parser::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error(transparent)]
    Image(#[from] berth_engine::image::Error),
    /// Bad options or a Dockerfile that names something that is not there.
    #[error("{0}")]
    Invalid(String),
    /// A step that could not be carried out; `step` is its keyword.
    #[error("{step} failed: {message}")]
    Step { step: String, message: String },
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    /// The caller asked the build to stop.
    #[error("the build was cancelled")]
    Cancelled,
    #[error("write build output: {0}")]
    Output(#[source] std::io::Error),
}

impl BuildError {
    pub(crate) fn step(step: &str, message: impl std::fmt::Display) -> BuildError {
        BuildError::Step {
            step: step.to_string(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
