//! Diagnostics as plain data, and their rendering with source snippets.
//!
//! Stages collect every problem they find as [`Diagnostic`] values with stable codes
//! (`parse-error`, `unresolved-require`, `require-cycle`, `duplicate-module`, ...) and byte
//! ranges into source files. Only [`Diagnostics::render`] turns them into text.

mod codes;

pub use codes::Code;

use std::ops::Range;
use std::sync::Arc;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;

use crate::input::source::{FileId, ReadProblem, SourceFile};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing; the build goes on.
    Warning,
    /// The build fails.
    Error,
}

/// A place in a source file that a diagnostic points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The file.
    pub file: FileId,
    /// Byte range in the file's text.
    pub range: Range<usize>,
    /// What is at that place.
    pub message: String,
    /// The main place (`true`) or a related one.
    pub primary: bool,
}

/// One problem found in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `unresolved-require`.
    pub code: &'static str,
    /// One-line summary.
    pub message: String,
    /// Places in the source, primary first.
    pub labels: Vec<Label>,
    /// Further lines of explanation.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error with a code and message.
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        let code = code.as_str();
        Diagnostic { severity: Severity::Error, code, message: message.into(), labels: Vec::new(), notes: Vec::new() }
    }

    /// A warning with a code and message.
    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// Adds the primary label.
    pub fn with_primary(self, file: FileId, range: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.with_label(file, range, message.into(), true)
    }

    /// Adds a secondary label.
    pub fn with_secondary(self, file: FileId, range: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.with_label(file, range, message.into(), false)
    }

    fn with_label(mut self, file: FileId, range: Range<usize>, message: String, primary: bool) -> Diagnostic {
        self.labels.push(Label { file, range, message, primary });
        self
    }

    /// The error for a file whose text could not be had when it was read after discovery
    /// (`io-error`, or `file-changed-during-build`), if that is so.
    pub(crate) fn of_read_problem(file: &SourceFile) -> Option<Diagnostic> {
        let path = &file.display_path;
        Some(match file.read_problem()? {
            ReadProblem::Unreadable(err) => Diagnostic::error(Code::IoError, format!("cannot read {path}: {err}")),
            ReadProblem::Changed => Diagnostic::error(
                Code::FileChangedDuringBuild,
                format!("{path} changed while the build was reading it"),
            )
            .with_note("build again once the file is saved: the build holds the content it first read"),
        })
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Whether this diagnostic fails the build.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Diagnostics together with the sources their labels point into, ready to render.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    files: Vec<(String, Arc<str>)>,
}

impl Diagnostics {
    /// Collects `items`, keeping the name of every file in `files` and the text of those the
    /// diagnostics point into, for rendering.
    pub fn new(mut items: Vec<Diagnostic>, files: &[SourceFile]) -> Diagnostics {
        items.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| sort_key(a).cmp(&sort_key(b))));
        let mut pointed = vec![false; files.len()];
        for label in items.iter().flat_map(|d| &d.labels) {
            if let Some(slot) = pointed.get_mut(label.file) {
                *slot = true;
            }
        }
        let files = files
            .iter()
            .zip(pointed)
            .map(|(f, pointed)| (f.display_path.clone(), if pointed { f.shared_text() } else { Arc::from("") }))
            .collect();
        Diagnostics { items, files }
    }

    /// The diagnostics, errors first, then by file and position.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Number of errors and of warnings.
    pub fn counts(&self) -> (usize, usize) {
        let errors = self.items.iter().filter(|d| d.is_error()).count();
        (errors, self.items.len() - errors)
    }

    /// Renders every diagnostic as plain text with source snippets, `file:line:column`
    /// locations and notes, followed by a summary line when there are errors.
    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// [`Diagnostics::render`], with ANSI colours when `color` is set.
    pub fn render_styled(&self, color: bool) -> String {
        let mut files = SimpleFiles::new();
        let ids: Vec<usize> = self.files.iter().map(|(name, text)| files.add(name.as_str(), text.as_ref())).collect();
        let config = term::Config::default();
        let mut out = String::new();
        for d in &self.items {
            let labels = d.labels.iter().filter(|l| l.file < ids.len()).map(|l| {
                let make = if l.primary { cs::Label::primary } else { cs::Label::secondary };
                make(ids[l.file], l.range.clone()).with_message(&l.message)
            });
            let severity = match d.severity {
                Severity::Error => cs::Severity::Error,
                Severity::Warning => cs::Severity::Warning,
            };
            let diagnostic = cs::Diagnostic::new(severity)
                .with_code(d.code)
                .with_message(&d.message)
                .with_labels(labels.collect())
                .with_notes(d.notes.clone());
            let rendered = if color {
                let mut buffer = term::termcolor::Buffer::ansi();
                term::emit_to_write_style(&mut buffer, &config, &files, &diagnostic)
                    .map(|()| String::from_utf8_lossy(buffer.as_slice()).into_owned())
            } else {
                term::emit_into_string(&config, &files, &diagnostic)
            };
            match rendered {
                Ok(text) => out.push_str(&text),
                Err(_) => out.push_str(&format!("{}[{}]: {}\n", severity_word(d.severity), d.code, d.message)),
            }
        }
        let (errors, warnings) = self.counts();
        if errors > 0 {
            out.push_str(&format!("error: {errors} error{}, {warnings} warning{}\n", plural(errors), plural(warnings)));
        }
        out
    }
}

/// A diagnostic as one JSON object: see [`Diagnostics::to_json_lines`].
#[derive(serde::Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    severity: &'a str,
    message: &'a str,
    file: Option<&'a str>,
    line: Option<usize>,
    column: Option<usize>,
    range: Option<[usize; 2]>,
    labels: Vec<JsonLabel<'a>>,
    notes: &'a [String],
}

#[derive(serde::Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    range: [usize; 2],
    message: &'a str,
    primary: bool,
}

impl Diagnostics {
    /// One JSON object per line and diagnostic, with `code`, `severity` (`error` or
    /// `warning`), `message`, the primary label's `file`, `line`, `column` (one-based) and
    /// byte `range` (null when the diagnostic has no place), every `label`, and `notes`.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for d in &self.items {
            let labels: Vec<JsonLabel<'_>> = d
                .labels
                .iter()
                .filter_map(|l| {
                    let (name, text) = self.files.get(l.file)?;
                    let (line, column) = crate::input::source::line_col(text, l.range.start);
                    let range = [l.range.start, l.range.end];
                    Some(JsonLabel { file: name, line, column, range, message: &l.message, primary: l.primary })
                })
                .collect();
            let primary = labels.iter().find(|l| l.primary);
            let json = JsonDiagnostic {
                code: d.code,
                severity: severity_word(d.severity),
                message: &d.message,
                file: primary.map(|l| l.file),
                line: primary.map(|l| l.line),
                column: primary.map(|l| l.column),
                range: primary.map(|l| l.range),
                notes: &d.notes,
                labels,
            };
            out.push_str(&serde_json::to_string(&json).expect("diagnostics serialise"));
            out.push('\n');
        }
        out
    }
}

fn sort_key(d: &Diagnostic) -> (usize, usize, &'static str) {
    d.labels.iter().find(|l| l.primary).map_or((usize::MAX, 0, d.code), |l| (l.file, l.range.start, d.code))
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
