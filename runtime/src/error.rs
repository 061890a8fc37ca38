//! The runtime's error type: every way opening, verifying or loading a bundle can fail.

use std::io;

use crate::format::{FormatError, Target};

/// An error from opening a bundle, installing it, or loading one of its modules.
///
/// Every variant names the bundle (its path, or a label for in-memory bundles) so a host
/// application with several bundles can tell which one is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bundle file could not be read.
    #[error("cannot read bundle {bundle}: {source}")]
    Io {
        /// The bundle.
        bundle: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The path does not name a regular file.
    #[error("bundle {bundle} is not a regular file")]
    NotAFile {
        /// The bundle.
        bundle: String,
    },
    /// The bundle is larger than this runtime accepts.
    #[error("bundle {bundle} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The bundle.
        bundle: String,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The bundle's bytes are damaged or not a bundle at all.
    #[error("bundle {bundle} is damaged: {source}")]
    Format {
        /// The bundle.
        bundle: String,
        /// What is wrong.
        #[source]
        source: FormatError,
    },
    /// The bundle was written in a format version this runtime does not read (older bundles
    /// are rebuilt with the current luabundle).
    #[error("bundle {bundle} cannot be read by this runtime: {source}")]
    UnsupportedFormat {
        /// The bundle.
        bundle: String,
        /// The version found, and what to do.
        #[source]
        source: FormatError,
    },
    /// The bundle was built for another Lua VM than the one linked.
    #[error("bundle {bundle} was built for {found}, but this program links {expected}")]
    TargetMismatch {
        /// The bundle.
        bundle: String,
        /// The linked VM.
        expected: Box<Target>,
        /// The bundle's target.
        found: Box<Target>,
    },
    /// A module's bytes do not hash to the value in the index.
    #[error("module {module} in bundle {bundle} is damaged: blake3 {found} differs from the index's {expected}")]
    BlobHashMismatch {
        /// The bundle.
        bundle: String,
        /// The module.
        module: String,
        /// Hash recorded in the index, hex.
        expected: String,
        /// Hash of the bytes read, hex.
        found: String,
    },
    /// Lua refused a verified module (e.g. out of memory).
    #[error("module {module} in bundle {bundle} failed to load: {message}")]
    Load {
        /// The bundle.
        bundle: String,
        /// The module.
        module: String,
        /// Lua's error message. (`mlua::Error` is kept as text so that this error type stays
        /// `Send + Sync` without mlua's `send` feature.)
        message: String,
    },
    /// The installer asked for a profile the bundle does not have.
    #[error("bundle {bundle} has no profile '{profile}' (profiles: {})", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownProfile {
        /// The bundle.
        bundle: String,
        /// The profile asked for.
        profile: String,
        /// The profiles it has.
        known: Vec<String>,
    },
    /// The policy requires a signature and the bundle has none.
    #[error("bundle {bundle} is not signed, and a signature is required")]
    Unsigned {
        /// The bundle.
        bundle: String,
    },
    /// The signature is not valid, or not by a trusted key.
    #[error("bundle {bundle} has a bad signature: {reason}")]
    BadSignature {
        /// The bundle.
        bundle: String,
        /// What is wrong.
        reason: String,
    },
    /// The Lua state could not be prepared (e.g. `package` is missing).
    #[error("cannot install bundle {bundle}: {message}")]
    Install {
        /// The bundle.
        bundle: String,
        /// Lua's error message.
        message: String,
    },
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
