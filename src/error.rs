//! The build tool's error type.

use std::io;
use std::path::PathBuf;

use crate::diagnostic::Diagnostics;

/// Why a build or check did not produce its result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Lua input has errors; the diagnostics say where. (Exit code 1.)
    #[error("{}", .0.render())]
    Input(Box<Diagnostics>),
    /// The options do not make sense (no roots, a root that is not a directory, ...).
    /// (Exit code 2.)
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed. (Exit code 2.)
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A configuration file is invalid: unknown key, wrong type or bad syntax. (Exit code 2.)
    #[error("invalid configuration {}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A `--locked` build would change the manifest. (Exit code 1.)
    #[error("{} would change (the build is locked):\n{diff}", path.display())]
    ManifestChanged {
        /// The manifest file.
        path: PathBuf,
        /// What would change, as `-`/`+` lines.
        diff: String,
    },
    /// The bundle could not be encoded (a name the format cannot hold).
    #[error("cannot encode the bundle: {0}")]
    Format(#[from] luabundle_runtime::format::FormatError),
}

impl Error {
    /// The process exit code this error calls for: 1 for input errors, 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Format(_) | Error::ManifestChanged { .. } => 1,
            Error::Usage(_) | Error::Io { .. } | Error::Config { .. } => 2,
        }
    }
}
