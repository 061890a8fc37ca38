//! The one place that prints instructions for Cargo when luabundle runs in a build script.

use std::path::Path;

use crate::diagnostic::Diagnostics;

/// `cargo:` lines for a build script, collected so that they can be tested and printed once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CargoInstructions {
    lines: Vec<String>,
}

impl CargoInstructions {
    /// No instructions yet.
    pub fn new() -> CargoInstructions {
        CargoInstructions::default()
    }

    /// Re-run the build script when `path` changes; for a directory, when anything in it is
    /// added, removed or edited.
    pub fn rerun_if_changed(&mut self, path: &Path) -> &mut CargoInstructions {
        self.push(format!("cargo:rerun-if-changed={}", path.display()))
    }

    /// Re-run the build script when the environment variable `name` changes.
    pub fn rerun_if_env_changed(&mut self, name: &str) -> &mut CargoInstructions {
        self.push(format!("cargo:rerun-if-env-changed={name}"))
    }

    /// Shows every line of the rendered `warnings` as a Cargo warning.
    pub fn warnings(&mut self, warnings: &Diagnostics) -> &mut CargoInstructions {
        for line in warnings.render().lines().filter(|l| !l.trim().is_empty()) {
            self.push(format!("cargo:warning={line}"));
        }
        self
    }

    fn push(&mut self, line: String) -> &mut CargoInstructions {
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
        self
    }

    /// The lines, in order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Prints the lines on stdout, where Cargo reads them.
    pub fn print(&self) {
        for line in &self.lines {
            println!("{line}");
        }
    }
}
