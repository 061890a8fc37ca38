//! Luau path requires at build time (`./x`, `../x`, `@alias/x`, `@self/x`): each is resolved
//! by Luau's own navigator over the discovered files and configuration files, through the
//! runtime's `TreeRequirer` (the code that answers the same require from the bundle at run
//! time), and its target becomes the module the file is, so the graph, the reports and the
//! bundle treat it like a dotted name. A path that names no module keeps its text (an
//! `--external` pattern such as `@host/*` can still match it) and carries Luau's reason.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use luabundle_runtime::luau_paths::{self, ModuleTree, TreeRequirer};
use mlua::{Function, Lua, Value};

use crate::analysis::requires::{LuauPath, RequireSite, Target};
use crate::diagnostic::{Code, Diagnostic};
use crate::input::discover::Discovered;

/// Whether a required name is a Luau path rather than a dotted name: it starts with `@`, or
/// holds a `/` or `\` (which no dotted name does), so that `./x` resolves and `a/b` or `/x`
/// gets Luau's error for its prefix.
pub fn is_path(name: &str) -> bool {
    name.starts_with('@') || name.contains('/') || name.contains('\\')
}

/// The path of a discovered file in the tree of module paths (`src/util.luau` is
/// `./src/util.luau`).
pub fn tree_path(display_path: &str) -> String {
    luau_paths::normalize(display_path)
}

/// The discovered files and configuration files as Luau's navigator sees them.
struct DiscoveredTree {
    files: HashSet<String>,
    dirs: HashSet<String>,
    configs: HashMap<String, Vec<u8>>,
}

impl DiscoveredTree {
    fn new(discovered: &Discovered) -> DiscoveredTree {
        let files: HashSet<String> = discovered.files.iter().map(|f| tree_path(&f.display_path)).collect();
        let configs: HashMap<String, Vec<u8>> =
            discovered.luau_configs.iter().map(|c| (c.tree_path.clone(), c.bytes.clone())).collect();
        let mut dirs = HashSet::from([".".to_string()]);
        for path in files.iter().chain(configs.keys()) {
            let mut at = path.clone();
            // Up to `.`, or to the first directory above it (`..`, `../..`).
            while let Some(up) = luau_paths::parent(&at) {
                let done = up.split('/').all(|part| part == "." || part == "..");
                if !dirs.insert(up.clone()) || done {
                    break;
                }
                at = up;
            }
        }
        DiscoveredTree { files, dirs, configs }
    }
}

impl ModuleTree for DiscoveredTree {
    fn is_file(&self, path: &str) -> bool {
        self.files.contains(path) || self.configs.contains_key(path)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.dirs.contains(path)
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.configs.get(path).cloned()
    }

    fn load(&self, lua: &Lua, _path: &str) -> mlua::Result<Function> {
        // Nothing runs at build time: the navigator only had to find the file.
        lua.create_function(|_, ()| Ok(true))
    }
}

/// Resolves every Luau path require of `sites` (`sites[f]` are file `f`'s), rewriting the
/// target of each that names a module file to that module; then, unless `dotted_names`
/// allows them, refuses the requires of dotted names as Luau does (see
/// [`Builder::luau_dotted_names`](crate::Builder::luau_dotted_names)) and drops them.
/// Returns those refusals, and whether the project uses paths (a path require or a
/// configuration file).
///
/// # Errors
/// When a Luau state for the navigator cannot be made.
pub(crate) fn resolve(
    discovered: &Discovered,
    sites: &mut [Vec<RequireSite>],
    dotted_names: Option<bool>,
) -> mlua::Result<(Vec<Diagnostic>, bool)> {
    let is_path_site = |site: &RequireSite| matches!(&site.target, Target::Name(name) if is_path(name));
    let uses_paths = sites.iter().flatten().any(is_path_site) || !discovered.luau_configs.is_empty();
    if uses_paths {
        resolve_paths(discovered, sites)?;
    }
    if dotted_names.unwrap_or(!uses_paths) {
        return Ok((Vec::new(), uses_paths));
    }
    let mut refused = Vec::new();
    for (file, file_sites) in sites.iter_mut().enumerate() {
        file_sites.retain(|site| match &site.target {
            Target::Name(name) if site.luau_path.is_none() => {
                refused.push(dotted_name_refused(file, site, name));
                false
            }
            _ => true,
        });
    }
    Ok((refused, uses_paths))
}

/// Luau's error for `require("a.b")`, with the ways out.
fn dotted_name_refused(file: usize, site: &RequireSite, name: &str) -> Diagnostic {
    let make = if site.optional { Diagnostic::warning } else { Diagnostic::error };
    let path = format!("./{}", name.replace('.', "/"));
    make(Code::UnresolvedRequire, format!("`{name}` is not a path"))
        .with_primary(file, site.range.clone(), "require path must start with a valid prefix: ./, ../, or @")
        .with_note(format!("Luau requires modules by path, relative to the requiring file (`{path}` if it is beside the root)"))
        .with_note("to require bundled modules by dotted name beside paths, set `luau-dotted-names = true` in luabundle.toml or pass --luau-dotted-names")
}

/// Resolves the path requires of `sites` through Luau's navigator.
fn resolve_paths(discovered: &Discovered, sites: &mut [Vec<RequireSite>]) -> mlua::Result<()> {
    let is_path_site = |site: &RequireSite| matches!(&site.target, Target::Name(name) if is_path(name));
    let lua = Lua::new();
    let found = Arc::new(Mutex::new(None));
    let require =
        lua.create_require_function(TreeRequirer::reporting(DiscoveredTree::new(discovered), found.clone()))?;
    let file_at: HashMap<String, usize> = discovered.files.iter().map(|f| (tree_path(&f.display_path), f.id)).collect();
    // A file that has two names (`pkg` and `pkg.init`) is its first module by name.
    let mut module_of: HashMap<usize, &str> = HashMap::new();
    for module in &discovered.modules {
        module_of.entry(module.file).or_insert(&module.name);
    }
    for (file, file_sites) in sites.iter_mut().enumerate() {
        if !file_sites.iter().any(is_path_site) {
            continue;
        }
        // The navigator resolves from the chunk that calls `require`: one named as the file.
        let chunk_name = format!("@{}", discovered.files[file].display_path);
        let call: Function =
            lua.load("local require, path = ... return require(path)").set_name(chunk_name).into_function()?;
        for site in file_sites.iter_mut().filter(|site| is_path_site(site)) {
            let Target::Name(written) = &site.target else { continue };
            let written = written.clone();
            *found.lock().expect("not poisoned") = None;
            let resolved = match call.call::<Value>((&require, written.as_str())) {
                Ok(_) => found.lock().expect("not poisoned").take().ok_or_else(|| "it names no module".to_string()),
                Err(err) => Err(navigator_message(&err)),
            };
            let module = resolved.as_ref().ok().and_then(|path| file_at.get(path)).and_then(|f| module_of.get(f));
            let resolved = match (resolved, module) {
                (Ok(path), Some(module)) => {
                    site.target = Target::Name(module.to_string());
                    Ok(path)
                }
                (Ok(path), None) => Err(format!("it names {}, which is not a module of the build", display(&path))),
                (Err(reason), _) => Err(reason),
            };
            site.luau_path = Some(LuauPath { written, resolved });
        }
    }
    Ok(())
}

/// A tree path as the user wrote the file: `./src/x.luau` is `src/x.luau`.
fn display(path: &str) -> &str {
    path.strip_prefix("./").unwrap_or(path)
}

/// Luau's reason, without the position and traceback mlua adds.
fn navigator_message(err: &mlua::Error) -> String {
    let text = match err {
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::CallbackError { cause, .. } => return navigator_message(cause),
        other => other.to_string(),
    };
    let first = text.lines().next().unwrap_or_default();
    match first.find("error requiring module") {
        Some(at) => first[at..].to_string(),
        None => first.to_string(),
    }
}

/// Where the file `bytes` reads, at its top level, the module that its require at `site`
/// returns: the require's value bound by `local NAME = require(...)`, and then `NAME.x`,
/// `NAME:x`, `NAME[x]` or `NAME(...)` outside every function body. In a cycle, that module
/// may still be loading there (its export table refuses access until it has loaded). `None`
/// when the value is not bound to a local, or read only inside functions.
pub fn top_level_read(bytes: &[u8], site: &std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    use crate::syntax::lexer::{self, Kind};
    let tokens: Vec<lexer::Token> = lexer::tokens(bytes).collect();
    let at = tokens.iter().position(|t| t.start == site.start)?;
    let name = match at.checked_sub(3).map(|from| &tokens[from..at]) {
        Some([local, name, equals])
            if local.is_word(bytes, b"local") && name.kind == Kind::Word && equals.kind == Kind::Symbol(b'=') =>
        {
            &bytes[name.start..name.end]
        }
        _ => return None,
    };
    // Blocks open after the require: whether each is a function body.
    let mut blocks: Vec<bool> = Vec::new();
    let after = tokens.iter().position(|t| t.start >= site.end)?;
    for (i, token) in tokens.iter().enumerate().skip(after) {
        if token.kind != Kind::Word {
            continue;
        }
        match &bytes[token.start..token.end] {
            b"function" => blocks.push(true),
            b"do" | b"if" | b"repeat" => blocks.push(false),
            b"end" | b"until" => {
                // The end of the block the require is in: nothing after it sees the local.
                blocks.pop()?;
            }
            word if word == name && !blocks.contains(&true) => {
                let next = tokens.get(i + 1)?;
                if matches!(next.kind, Kind::Symbol(b'.' | b':' | b'[' | b'(')) {
                    return Some(token.start..next.end);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in(text: &str) -> Option<String> {
        let start = text.find("require").unwrap();
        let end = start + text[start..].find(')').unwrap() + 1;
        top_level_read(text.as_bytes(), &(start..end)).map(|r| text[r].to_string())
    }

    #[test]
    fn reads_of_a_required_module_at_the_top_level_are_found() {
        assert_eq!(read_in("local a = require('./a')\nlocal x = a.name\nreturn {}").as_deref(), Some("a."));
        assert_eq!(read_in("local a = require('./a')\nif a:ready() then end").as_deref(), Some("a:"));
        assert_eq!(read_in("local a = require('./a')\nlocal M = {}\nfunction M.f() return a.name end\nreturn M"), None);
        assert_eq!(read_in("local a = require('./a')\nreturn { get = function() return a[1] end }"), None);
        assert_eq!(read_in("return require('./a').x"), None);
        assert_eq!(read_in("local a = require('./a')\nlocal b = a\nreturn b"), None);
    }
}
