//! Discovery: walks the roots, reads every source file (`.lua`, and `.luau` for Luau) whose
//! metadata the file table does not vouch for, and names modules the way Lua's own
//! `package.path` search would find them.
//!
//! This is the only stage that walks the source tree; later stages work on the
//! [`SourceFile`]s it returns (a file not read here is read on first use, and must then hold
//! the bytes discovery hashed).

use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use walkdir::WalkDir;

use crate::cache::file_table::{FileTable, Fingerprint};
use crate::diagnostic::{Code, Diagnostic};
use crate::error::Error;
use crate::input::rocks::ModuleFile;
use crate::input::source::{FileId, SourceFile, MAX_FILE_SIZE};

/// The default module path templates, tried in this order as in `package.path`.
#[cfg(not(feature = "luau"))]
pub const DEFAULT_TEMPLATES: &str = "?.lua;?/init.lua";
/// The default module path templates, tried in this order as in `package.path`: Luau
/// sources are `.luau` or `.lua` files.
#[cfg(feature = "luau")]
pub const DEFAULT_TEMPLATES: &str = "?.luau;?.lua;?/init.luau;?/init.lua";

/// A source root: a directory, optionally with a module name prefix (`PREFIX=DIR`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "String")]
pub struct Root {
    /// Prefix prepended to every module name under this root, e.g. `vendor`.
    pub prefix: Option<String>,
    /// The directory.
    pub dir: PathBuf,
}

impl Root {
    /// Parses `DIR` or `PREFIX=DIR`. A `=` counts as a prefix separator only when the part
    /// before it looks like a module name (no path separator).
    pub fn parse(spec: &str) -> Root {
        match spec.split_once('=') {
            Some((prefix, dir)) if !prefix.is_empty() && !prefix.contains(['/', '\\']) && !dir.is_empty() => {
                Root { prefix: Some(prefix.to_string()), dir: PathBuf::from(dir) }
            }
            _ => Root { prefix: None, dir: PathBuf::from(spec) },
        }
    }
}

impl From<&str> for Root {
    fn from(spec: &str) -> Root {
        Root::parse(spec)
    }
}

impl From<PathBuf> for Root {
    fn from(dir: PathBuf) -> Root {
        Root { prefix: None, dir }
    }
}

impl From<&PathBuf> for Root {
    fn from(dir: &PathBuf) -> Root {
        Root { prefix: None, dir: dir.clone() }
    }
}

impl From<String> for Root {
    fn from(spec: String) -> Root {
        Root::parse(&spec)
    }
}

impl From<&Path> for Root {
    fn from(dir: &Path) -> Root {
        Root { prefix: None, dir: dir.to_path_buf() }
    }
}

/// One module path template such as `?/init.lua`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    before: String,
    after: String,
}

impl Template {
    /// Parses a `;`-separated template list like `package.path` (relative, one `?` each).
    ///
    /// # Errors
    /// [`Error::Usage`] for an empty list or a template without exactly one `?`.
    pub fn parse_list(list: &str) -> Result<Vec<Template>, Error> {
        let templates: Vec<Template> = list
            .split(';')
            .filter(|t| !t.is_empty())
            .map(|t| match t.split_once('?') {
                Some((before, after)) if !after.contains('?') => {
                    Ok(Template { before: before.into(), after: after.into() })
                }
                _ => Err(Error::Usage(format!("module path template {t:?} needs exactly one `?`"))),
            })
            .collect::<Result<_, _>>()?;
        if templates.is_empty() {
            return Err(Error::Usage("no module path templates given".into()));
        }
        Ok(templates)
    }

    /// The module name under which Lua's search finds `relative` (a `/`-separated path inside
    /// a root) through this template, if any.
    fn module_name(&self, relative: &str) -> Option<String> {
        let stem = relative.strip_prefix(&self.before)?.strip_suffix(&self.after)?;
        // Lua turns every `.` of a name into a directory separator, so a path whose stem
        // holds a `.` (or an empty part) is never found through this template.
        if stem.is_empty() || stem.contains('.') || stem.split('/').any(str::is_empty) {
            return None;
        }
        Some(stem.replace('/', "."))
    }
}

/// Whether `path` ends in the extension of one of the templates (`.lua`; Luau also `.luau`).
fn has_source_extension(path: &Path, templates: &[Template]) -> bool {
    let Some(extension) = path.extension() else { return false };
    templates.iter().any(|t| t.after.rsplit_once('.').is_some_and(|(_, e)| !e.is_empty() && extension == e))
}

/// A module name and the file that provides it. A file may provide several names
/// (`a/init.lua` is both `a.init` and `a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleName {
    /// The name `require` takes.
    pub name: String,
    /// The file.
    pub file: FileId,
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Every file read, in walk order; a file's position is its [`FileId`].
    pub files: Vec<SourceFile>,
    /// Every module name, sorted by name, unique.
    pub modules: Vec<ModuleName>,
    /// Problems found (unreadable files, duplicates, shadowing).
    pub diagnostics: Vec<Diagnostic>,
    /// The fingerprints of the files found, for the next build.
    pub file_table: FileTable,
    /// Luau's configuration files under and above the roots (Luau only).
    #[cfg(feature = "luau")]
    pub luau_configs: Vec<crate::input::luau_configs::ConfigFile>,
}

/// Walks `roots` in order and names their modules through `templates`, leaving out the
/// files and directories that `excluded` matches (compiled by [`exclusion_set`]).
///
/// # Errors
/// [`Error::Usage`] if a root is not a directory.
/// Problems with single files are diagnostics, so that all of them are reported together.
///
/// A file whose metadata `known` vouches for (unchanged since the build that recorded it) is
/// not read: it is known by its content hash, and read later only if its text is needed.
///
/// `outputs` are the build's outputs (absolute, links resolved): one that a root holds is not
/// a source if luabundle wrote it, and an error (`output-is-input`) if it is anything else.
pub fn discover(
    roots: &[Root],
    named: &[ModuleFile],
    templates: &[Template],
    excluded: &GlobSet,
    known: Option<&FileTable>,
    outputs: &[PathBuf],
) -> Result<Discovered, Error> {
    let mut found = Discovered::default();
    let mut names: BTreeMap<String, (usize, FileId)> = BTreeMap::new();
    let mut seen: Vec<(PathBuf, &Option<String>)> = Vec::new();
    for (root_index, root) in roots.iter().enumerate() {
        if !root.dir.is_dir() {
            return Err(Error::Usage(format!("root {} is not a directory", root.dir.display())));
        }
        let real = std::fs::canonicalize(&root.dir).unwrap_or_else(|_| root.dir.clone());
        if let Some((_, _)) = seen.iter().find(|(dir, prefix)| *dir == real && **prefix == root.prefix) {
            return Err(Error::Usage(format!(
                "root {} is given twice; give each directory once (or under two prefixes, PREFIX=DIR)",
                root.dir.display()
            )));
        }
        seen.push((real, &root.prefix));
        let root_names = walk_root(root, templates, excluded, known, outputs, &mut found)?;
        add_names(root_index, root_names, &mut names, &mut found);
    }
    // Modules LuaRocks names (rockspec module maps, rocks trees), after every root.
    let named_files = read_named(named, known, &mut found);
    add_names(roots.len(), named_files, &mut names, &mut found);
    found.modules = names.into_iter().map(|(name, (_, file))| ModuleName { name, file }).collect();
    found.diagnostics.extend(case_conflicts(&found.modules, &found.files));
    #[cfg(feature = "luau")]
    {
        let (configs, problems) = crate::input::luau_configs::find(roots, excluded);
        found.luau_configs = configs;
        found.diagnostics.extend(problems);
    }
    Ok(found)
}

/// Reads the files of modules named explicitly; returns their names.
fn read_named(named: &[ModuleFile], known: Option<&FileTable>, found: &mut Discovered) -> Vec<(String, FileId)> {
    let loaded: Vec<Result<Loaded, Diagnostic>> =
        named.par_iter().map(|m| load_file(&m.path, &m.display_path, known)).collect();
    let now = std::time::SystemTime::now();
    let mut names = Vec::new();
    // One file may be named twice (`x` and `x.init` of a rocks tree): it is kept once.
    let mut kept: HashMap<&Path, FileId> = HashMap::new();
    for (module, loaded) in named.iter().zip(loaded) {
        let file = match kept.get(module.path.as_path()) {
            Some(&file) => file,
            None => match add_file(found, module.path.clone(), module.display_path.clone(), loaded, now) {
                Some(file) => *kept.entry(&module.path).or_insert(file),
                None => continue,
            },
        };
        names.push((module.name.clone(), file));
    }
    names
}

/// Adds a file read by [`load_file`] to `found` (recording its fingerprint for the next
/// build), or its problem to the diagnostics.
fn add_file(
    found: &mut Discovered,
    path: PathBuf,
    display_path: String,
    loaded: Result<Loaded, Diagnostic>,
    now: std::time::SystemTime,
) -> Option<FileId> {
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(diagnostic) => {
            found.diagnostics.push(diagnostic);
            return None;
        }
    };
    if let Some(fingerprint) = loaded.fingerprint {
        found.file_table.record(&path, fingerprint, loaded.content_hash, now);
    }
    let file = found.files.len();
    found.files.push(match loaded.text {
        Some(text) => SourceFile::with_hash(file, path, display_path, text, loaded.content_hash),
        None => SourceFile::unread(file, path, display_path, loaded.content_hash),
    });
    Some(file)
}

/// Adds the names one source provides (`source`: a root's position, or the count of roots
/// for the modules named explicitly), reporting a name that two sources provide.
fn add_names(
    source: usize,
    provided: Vec<(String, FileId)>,
    names: &mut BTreeMap<String, (usize, FileId)>,
    found: &mut Discovered,
) {
    for (name, file) in provided {
        match names.entry(name) {
            Entry::Vacant(slot) => {
                slot.insert((source, file));
            }
            Entry::Occupied(slot) => {
                let first = &found.files[slot.get().1].display_path;
                let second = &found.files[file].display_path;
                found.diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateModule,
                        format!("module `{}` is defined in two roots", slot.key()),
                    )
                    .with_note(format!("first:  {first}"))
                    .with_note(format!("second: {second}"))
                    .with_note("rename one of them, or give a root a prefix with PREFIX=DIR"),
                );
            }
        }
    }
}

/// Compiles exclusion patterns: a pattern without `/` matches a file or directory name at any
/// depth (`*_spec.lua`, `spec`), one with `/` a path from the root (`test/fixtures/**`). A
/// trailing `/` is ignored.
///
/// # Errors
/// [`Error::Usage`] naming a pattern that is not a valid glob.
pub fn exclusion_set(patterns: &[String]) -> Result<GlobSet, Error> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim_end_matches('/');
        let glob =
            if trimmed.contains('/') { trimmed.trim_start_matches('/').to_string() } else { format!("**/{trimmed}") };
        let glob = GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Usage(format!("invalid --exclude pattern {pattern:?}: {e}")))?;
        set.add(glob);
    }
    set.build().map_err(|e| Error::Usage(format!("invalid --exclude patterns: {e}")))
}

/// A warning for module names that differ only in case: they collide on case-insensitive
/// file systems, and one is likely a typo.
fn case_conflicts(modules: &[ModuleName], files: &[SourceFile]) -> Vec<Diagnostic> {
    let mut by_folded: BTreeMap<String, Vec<&ModuleName>> = BTreeMap::new();
    for module in modules {
        by_folded.entry(module.name.to_lowercase()).or_default().push(module);
    }
    by_folded
        .into_values()
        .filter(|group| group.len() > 1)
        .map(|group| {
            let names: Vec<String> = group.iter().map(|m| format!("`{}`", m.name)).collect();
            let mut d = Diagnostic::warning(
                Code::CaseConflict,
                format!("module names differ only in case: {}", names.join(", ")),
            );
            for module in group {
                d = d.with_note(format!("`{}` is {}", module.name, files[module.file].display_path));
            }
            d.with_note("they collide on case-insensitive file systems (Windows, macOS)")
        })
        .collect()
}

/// Walks one root, reading its files, and returns its names (prefix included).
fn walk_root(
    root: &Root,
    templates: &[Template],
    excluded: &GlobSet,
    known: Option<&FileTable>,
    outputs: &[PathBuf],
    found: &mut Discovered,
) -> Result<Vec<(String, FileId)>, Error> {
    // Walk first (cheap, in order), then read every file in parallel.
    let candidates = candidates(root, templates, excluded, outputs, &mut found.diagnostics);
    let loaded: Vec<Result<Loaded, Diagnostic>> =
        candidates.par_iter().map(|c| load_file(&c.path, &c.display_path, known)).collect();
    let now = std::time::SystemTime::now();
    // name -> (template position, file): a lower template position wins, as in Lua's search.
    let mut names: HashMap<String, (usize, FileId)> = HashMap::new();
    for (candidate, loaded) in candidates.into_iter().zip(loaded) {
        let Candidate { path, relative, display_path } = candidate;
        if let Some(file) = add_file(found, path, display_path, loaded, now) {
            name_file(root, templates, relative, file, &mut names, found);
        }
    }
    let mut names: Vec<(String, FileId)> = names.into_iter().map(|(name, (_, file))| (name, file)).collect();
    names.sort();
    Ok(names)
}

/// A source file found under a root, not yet read.
struct Candidate {
    path: PathBuf,
    /// Its path from the root, with `/` separators.
    relative: String,
    /// Its path as chunk names and diagnostics show it (`src/app/util.lua`).
    display_path: String,
}

/// The source files under `root`, in file-name order: hidden and excluded entries left out,
/// and what cannot be a source (links to directories, FIFOs, the build's own outputs, names
/// that are not UTF-8) reported in `diagnostics`.
fn candidates(
    root: &Root,
    templates: &[Template],
    excluded: &GlobSet,
    outputs: &[PathBuf],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Candidate> {
    let label = root_label(&root.dir);
    let walker = WalkDir::new(&root.dir).sort_by_file_name().into_iter().filter_entry(|e| {
        e.depth() == 0
            || !(e.file_name().to_string_lossy().starts_with('.')
                || e.path().strip_prefix(&root.dir).is_ok_and(|relative| excluded.is_match(relative)))
    });
    let mut candidates = Vec::new();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().map_or_else(|| root.dir.display().to_string(), |p| p.display().to_string());
                diagnostics.push(Diagnostic::error(Code::IoError, format!("cannot read {path}: {err}")));
                continue;
            }
        };
        if !is_source(&entry, templates, outputs, diagnostics) {
            continue;
        }
        let Some(relative) = relative_path(&root.dir, entry.path()) else {
            diagnostics.push(Diagnostic::warning(
                Code::UnrequirableFile,
                format!("{} has a name that is not valid UTF-8 and is skipped", entry.path().display()),
            ));
            continue;
        };
        let display_path = if label.is_empty() { relative.clone() } else { format!("{label}/{relative}") };
        candidates.push(Candidate { path: entry.into_path(), relative, display_path });
    }
    candidates
}

/// Whether a walked entry is a source file of the build: a regular file (or a link to one)
/// with a source extension that is not one of the build's outputs. Links to directories,
/// special files and outputs that luabundle did not write are reported.
fn is_source(
    entry: &walkdir::DirEntry,
    templates: &[Template],
    outputs: &[PathBuf],
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    let path = entry.path();
    if entry.path_is_symlink() && path.is_dir() {
        diagnostics.push(Diagnostic::warning(
            Code::LinkNotFollowed,
            format!("{} is a link to a directory and is not followed (links to files are)", path.display()),
        ));
        return false;
    }
    if !has_source_extension(path, templates) || entry.file_type().is_dir() {
        return false;
    }
    let is_file = entry.file_type().is_file() || (entry.path_is_symlink() && path.is_file());
    if !is_file {
        let what =
            if entry.path_is_symlink() { "a broken link" } else { "not a regular file (a FIFO, socket or device)" };
        diagnostics.push(Diagnostic::warning(Code::NotAFile, format!("{} is {what} and is skipped", path.display())));
        return false;
    }
    if crate::output::paths::is_one_of(path, outputs) {
        if !crate::output::paths::written_by_luabundle(path) {
            diagnostics.push(
                Diagnostic::error(
                    Code::OutputIsInput,
                    format!("{} is a source file of this build and also one of its outputs", path.display()),
                )
                .with_note(
                    "writing the output would destroy the source; write it outside the roots or under another name",
                ),
            );
        }
        return false;
    }
    true
}

/// Gives `file` (at `relative` under `root`) its module names, one per template that
/// matches; a file no template names is reported, as Lua's search can never find it.
fn name_file(
    root: &Root,
    templates: &[Template],
    relative: String,
    file: FileId,
    names: &mut HashMap<String, (usize, FileId)>,
    found: &mut Discovered,
) {
    // `PREFIX=DIR` mounts DIR at the path PREFIX stands for, so `DIR/init.lua` is module
    // PREFIX itself, as Lua's search would find it.
    let mounted = match &root.prefix {
        Some(prefix) => format!("{}/{relative}", prefix.replace('.', "/")),
        None => relative,
    };
    let mut named = false;
    for (position, template) in templates.iter().enumerate() {
        if let Some(name) = template.module_name(&mounted) {
            named = true;
            add_name(names, name, (position, file), found);
        }
    }
    if !named {
        found.diagnostics.push(Diagnostic::warning(
            Code::UnrequirableFile,
            format!(
                "{} cannot be required: Lua's search never finds a file named like this",
                found.files[file].display_path
            ),
        ));
    }
}

fn add_name(
    names: &mut HashMap<String, (usize, FileId)>,
    name: String,
    candidate: (usize, FileId),
    found: &mut Discovered,
) {
    let winner = match names.get(&name) {
        None => {
            names.insert(name, candidate);
            return;
        }
        Some(&existing) if existing.0 <= candidate.0 => existing,
        Some(_) => {
            let loser = names.insert(name.clone(), candidate).expect("present");
            let (winner, loser) = (candidate, loser);
            push_shadowed(found, &name, winner.1, loser.1);
            return;
        }
    };
    push_shadowed(found, &name, winner.1, candidate.1);
}

fn push_shadowed(found: &mut Discovered, name: &str, winner: FileId, loser: FileId) {
    let (winner, loser) = (&found.files[winner].display_path, &found.files[loser].display_path);
    let stem = loser.rsplit_once('.').map_or(loser.as_str(), |(stem, _)| stem);
    let also = stem.rsplit('/').next().unwrap_or(stem);
    found.diagnostics.push(
        Diagnostic::warning(
            Code::ShadowedModule,
            format!("`require \"{name}\"` loads {winner}, which shadows {loser}"),
        )
        .with_note(format!("Lua's search tries {winner} first, as this bundle does"))
        .with_note(format!("{loser} stays requirable under its longer name (`{name}.{also}`)")),
    );
}

/// A file as discovery leaves it: its text unless `known` vouched for it, its content hash,
/// and its fingerprint.
struct Loaded {
    text: Option<Vec<u8>>,
    content_hash: [u8; 32],
    fingerprint: Option<Fingerprint>,
}

/// Reads and hashes `path`, or only looks at its metadata when `known` vouches for it.
fn load_file(path: &Path, display_path: &str, known: Option<&FileTable>) -> Result<Loaded, Diagnostic> {
    let io = |err: std::io::Error| Diagnostic::error(Code::IoError, format!("cannot read {display_path}: {err}"));
    let metadata = std::fs::metadata(path).map_err(io)?;
    let fingerprint = Fingerprint::of(&metadata);
    if let Some(content_hash) = known.zip(fingerprint.as_ref()).and_then(|(table, f)| table.content_hash(path, f)) {
        return Ok(Loaded { text: None, content_hash, fingerprint });
    }
    let text = read_text(path, display_path, metadata.len())?;
    let content_hash = *blake3::hash(&text).as_bytes();
    Ok(Loaded { text: Some(text), content_hash, fingerprint })
}

/// The bytes of `path` (`len` bytes long), or the diagnostic saying why it cannot be used.
fn read_text(path: &Path, display_path: &str, len: u64) -> Result<Vec<u8>, Diagnostic> {
    let io = |err: std::io::Error| Diagnostic::error(Code::IoError, format!("cannot read {display_path}: {err}"));
    if len > MAX_FILE_SIZE {
        return Err(Diagnostic::error(
            Code::FileTooLarge,
            format!("{display_path} is {len} bytes, over the limit of {MAX_FILE_SIZE} bytes for one module"),
        )
        .with_note("a module this large is almost certainly generated data; load it with io.open instead, or leave it out with --exclude"));
    }
    let bytes = crate::util::read_regular(path, MAX_FILE_SIZE).map_err(io)?;
    if bytes.starts_with(b"\x1bLua") || bytes.starts_with(b"\x1bLJ") {
        return Err(Diagnostic::error(
            Code::BytecodeFile,
            format!("{display_path} is compiled Lua bytecode, not source"),
        )
        .with_note("bundle the source it was compiled from; luabundle compiles and verifies bytecode itself"));
    }
    // Any byte is kept: Lua accepts every byte in strings and comments, and compiles these.
    Ok(crate::input::source::normalise_line_break_bytes(bytes))
}

/// `path` relative to `root`, with `/` separators, if every part is UTF-8.
fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// The root directory's own name, which starts every display path (`src/app/util.lua`).
fn root_label(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Vec<Template> {
        Template::parse_list("?.lua;?/init.lua").unwrap()
    }

    #[test]
    fn templates_name_files_like_lua_search() {
        let t = templates();
        assert_eq!(t[0].module_name("a/b.lua").as_deref(), Some("a.b"));
        assert_eq!(t[0].module_name("a/init.lua").as_deref(), Some("a.init"));
        assert_eq!(t[1].module_name("a/init.lua").as_deref(), Some("a"));
        assert_eq!(t[1].module_name("init.lua"), None);
        assert_eq!(t[0].module_name("a.b.lua"), None);
        assert_eq!(t[0].module_name("a/b.txt"), None);
    }

    #[test]
    fn root_prefix_needs_a_name_before_the_equals_sign() {
        assert_eq!(Root::parse("vendor=lib").prefix.as_deref(), Some("vendor"));
        assert_eq!(Root::parse("lib").prefix, None);
        assert_eq!(Root::parse("./a=b").prefix, None);
    }

    #[test]
    fn exclusions_match_names_anywhere_or_paths_from_the_root() {
        let set = exclusion_set(&["*_spec.lua".into(), "spec/".into(), "test/fixtures/**".into()]).unwrap();
        assert!(set.is_match("a/b/x_spec.lua"));
        assert!(set.is_match("x_spec.lua"));
        assert!(set.is_match("spec"));
        assert!(set.is_match("lib/spec"));
        assert!(set.is_match("test/fixtures/a.lua"));
        assert!(!set.is_match("other/test/fixtures/a.lua"));
        assert!(!set.is_match("a/spec_helper.lua"));
        assert!(exclusion_set(&["a[".into()]).is_err());
    }

    #[test]
    fn bad_templates_are_usage_errors() {
        assert!(Template::parse_list("lua").is_err());
        assert!(Template::parse_list("??.lua").is_err());
        assert!(Template::parse_list("").is_err());
    }
}
