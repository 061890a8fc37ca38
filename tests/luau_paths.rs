//! Luau path requires (`./x`, `../x`, `@alias/x`, `@self/x`, `.luaurc`, `.config.luau`),
//! differential: each case runs from the sources through mlua's own file-system require
//! (Luau's navigator over the disk, the reference) and from the bundle through luabundle's
//! (the same navigator over the bundle's records), and must give the same module or the same
//! error. The fixtures follow the cases of Luau's own require tests (relative paths,
//! `init.luau`, `@self`, ambiguity, aliases, nested and chained configurations), written here.

use std::path::Path;

use luabundle_runtime::Bundle;
use mlua::{Lua, Value};

/// A module that hands back a function requiring from inside it.
const REQUIRER: &str = "return function(path) return require(path) end";

/// Writes `files` under `dir`: a module without text given returns its own path.
fn write_tree(dir: &Path, files: &[(&str, Option<&str>)]) {
    for (path, text) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text = text.map(str::to_string).unwrap_or_else(|| format!("return \"{path}\""));
        std::fs::write(file, text).unwrap();
    }
}

/// Luau's reason for a failed require, without positions and tracebacks (nor the note a
/// hermetic installation adds).
fn reason(err: &mlua::Error) -> String {
    let text = err.to_string().replace(" (hermetic: the file system is not searched)", "");
    let first = text.lines().next().unwrap_or_default();
    let first = first.split("; closest bundled modules: ").next().unwrap_or_default().to_string();
    match first.find("error requiring module") {
        Some(at) => first[at..].to_string(),
        None => first,
    }
}

/// What `require(path)` from inside the module `requirer` gives: the required module's
/// value, or the error. `host` is a chunk name to require `requirer` from.
fn required(lua: &Lua, host: &str, requirer: &str, path: &str) -> Result<String, String> {
    let from: mlua::Function = lua
        .load("local requirer = ... return require(requirer)")
        .set_name(host)
        .call(requirer)
        .map_err(|e| format!("requirer {requirer}: {}", reason(&e)))?;
    match from.call::<Value>(path) {
        Ok(Value::String(s)) => Ok(s.to_str().unwrap().to_string()),
        Ok(other) => Ok(other.type_name().to_string()),
        Err(err) => Err(reason(&err)),
    }
}

/// The project `files` under `dir/proj`, bundled from its root `src` (everything in it).
fn project(dir: &Path, files: &[(&str, Option<&str>)]) -> Bundle {
    let proj = dir.join("proj");
    write_tree(&proj, files);
    // The sources' host chunk must name a real file for the file-system require.
    std::fs::write(proj.join("host.luau"), "").unwrap();
    let output = dir.join("app.bundle");
    let mut builder = luabundle::Builder::new();
    builder.root(proj.join("src")).output(&output);
    builder.try_build().unwrap_or_else(|e| panic!("build failed:\n{e}"));
    Bundle::open(&output).unwrap()
}

/// Checks every `(requirer, path)` case gives the same from the sources and the bundle, and
/// returns the outcomes for the caller to check too.
fn same_from_sources_and_bundle(dir: &Path, bundle: &Bundle, cases: &[(&str, &str)]) -> Vec<Result<String, String>> {
    let proj = dir.join("proj");
    let sources_host = format!("@{}", proj.join("host.luau").display());
    let mut outcomes = Vec::new();
    for (requirer, path) in cases {
        let sources = Lua::new();
        let from_sources = required(&sources, &sources_host, requirer, path);
        let bundled = Lua::new();
        bundle.installer().hermetic(true).install(&bundled).unwrap();
        let from_bundle = required(&bundled, "@host.luau", requirer, path);
        assert_eq!(from_bundle, from_sources, "require({path:?}) from {requirer}");
        outcomes.push(from_bundle);
    }
    outcomes
}

#[test]
fn relative_paths_init_files_and_self_resolve_as_luau_resolves_them() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = project(
        dir.path(),
        &[
            // A static path require makes the project one that requires by path.
            (
                "src/requirer.luau",
                Some("local _ = require('./dependency')\nreturn function(path) return require(path) end"),
            ),
            ("src/dependency.luau", None),
            ("src/lua_file.lua", None),
            ("src/module/init.luau", Some(REQUIRER)),
            ("src/module/child.luau", None),
            ("src/sibling.luau", None),
            ("src/nested/deeper/leaf.luau", None),
            ("src/nested/deeper/requirer.luau", Some(REQUIRER)),
            ("src/with_init_lua/init.lua", None),
        ],
    );
    let outcomes = same_from_sources_and_bundle(
        dir.path(),
        &bundle,
        &[
            ("./src/requirer", "./dependency"),
            ("./src/requirer", "./lua_file"),
            ("./src/requirer", "../src/dependency"),
            ("./src/requirer", "./module"),
            ("./src/requirer", "./module/child"),
            ("./src/requirer", "./nested/deeper/leaf"),
            ("./src/requirer", "./with_init_lua"),
            ("./src/requirer", ".\\dependency"),
            ("./src/requirer", "./module/../dependency"),
            // A directory without init is a step on the way, not a module.
            ("./src/requirer", "./nested"),
            ("./src/requirer", "./missing"),
            // Extensions are not part of a module path.
            ("./src/requirer", "./dependency.luau"),
            ("./src/requirer", "@self/dependency"),
            // In init.luau, `./` is beside the directory and `@self` inside it.
            ("./src/module", "./sibling"),
            ("./src/module", "@self/child"),
            ("./src/module", "./child"),
            ("./src/nested/deeper/requirer", "../../dependency"),
            ("./src/nested/deeper/requirer", "./leaf"),
        ],
    );
    assert_eq!(outcomes[0].as_deref(), Ok("src/dependency.luau"));
    assert_eq!(outcomes[3].as_deref(), Ok("function"));
    assert_eq!(outcomes[13].as_deref(), Ok("src/sibling.luau"));
    assert_eq!(outcomes[14].as_deref(), Ok("src/module/child.luau"));
    assert!(outcomes[9].is_err() && outcomes[10].is_err() && outcomes[11].is_err());

    // The one deliberate difference: at run time a dotted name still finds a bundled module
    // (hosts require bundles by dotted name); Luau itself refuses it. The build refuses it in
    // a project that uses paths (see `dotted_names_are_refused_once_a_project_uses_paths`).
    let proj = dir.path().join("proj");
    let from_sources =
        required(&Lua::new(), &format!("@{}", proj.join("host.luau").display()), "./src/requirer", "dependency");
    assert!(from_sources.unwrap_err().contains("require path must start with a valid prefix: ./, ../, or @"));
    let bundled = Lua::new();
    bundle.installer().install(&bundled).unwrap();
    assert_eq!(required(&bundled, "@host.luau", "./src/requirer", "dependency").as_deref(), Ok("src/dependency.luau"));
}

#[test]
fn aliases_from_nested_and_chained_configurations_resolve_as_luau_resolves_them() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = project(
        dir.path(),
        &[
            (
                "src/.luaurc",
                Some(
                    r#"{ "aliases": { "dep": "./dependency", "Lib": "./libs", "chain": "@dep", "a": "@b", "b": "@a" } }"#,
                ),
            ),
            ("src/requirer.luau", Some(REQUIRER)),
            ("src/dependency.luau", None),
            ("src/libs/json.luau", None),
            ("src/libs/init.luau", None),
            ("src/sub/.luaurc", Some(r#"{ "aliases": { "dep": "./other" } }"#)),
            ("src/sub/other.luau", None),
            ("src/sub/requirer.luau", Some(REQUIRER)),
            ("src/luauconfig/.config.luau", Some("return { luau = { aliases = { cfg = \"./target\" } } }")),
            ("src/luauconfig/target.luau", None),
            ("src/luauconfig/requirer.luau", Some(REQUIRER)),
        ],
    );
    let outcomes = same_from_sources_and_bundle(
        dir.path(),
        &bundle,
        &[
            ("./src/requirer", "@dep"),
            ("./src/requirer", "@lib/json"),
            ("./src/requirer", "@LIB"),
            ("./src/requirer", "@chain"),
            ("./src/requirer", "@a"),
            ("./src/requirer", "@nowhere/x"),
            // The nearest configuration defining an alias wins; the others are inherited.
            ("./src/sub/requirer", "@dep"),
            ("./src/sub/requirer", "@lib/json"),
            ("./src/luauconfig/requirer", "@cfg"),
            ("./src/luauconfig/requirer", "@dep"),
        ],
    );
    assert_eq!(outcomes[0].as_deref(), Ok("src/dependency.luau"));
    assert_eq!(outcomes[6].as_deref(), Ok("src/sub/other.luau"));
    assert_eq!(outcomes[7].as_deref(), Ok("src/libs/json.luau"));
    assert!(outcomes[5].is_err());
}

/// Prints captured into the global `OUTPUT` table.
fn capturing(lua: &Lua) {
    lua.load("OUTPUT = {} print = function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end table.insert(OUTPUT, table.concat(t, ' ')) end")
        .exec()
        .unwrap();
}

fn output(lua: &Lua) -> String {
    lua.load("return table.concat(OUTPUT, '\\n')").eval().unwrap()
}

/// A program that requires only by path, with aliases from `.luaurc`.
const PROGRAM: &[(&str, Option<&str>)] = &[
    ("src/.luaurc", Some(r#"{ "aliases": { "shared": "./shared" } }"#)),
    (
        "src/main.luau",
        Some(
            "local config = require('./config')\nlocal log = require('@shared/log')\nlog.say('config ' .. config.name)\nlocal ok, err = pcall(require, './optional_missing')\nlog.say('optional ' .. tostring(ok))\nreturn nil",
        ),
    ),
    ("src/config/init.luau", Some("local defaults = require('./defaults')\nreturn { name = defaults.name .. '+' .. require('@self/extra') }")),
    ("src/config/extra.luau", Some("return 'extra'")),
    ("src/defaults.luau", Some("return { name = 'defaults' }")),
    ("src/shared/log.luau", Some("local M = {}\nfunction M.say(text) print('[log] ' .. text) end\nreturn M")),
];

#[test]
fn a_program_requiring_by_path_runs_the_same_from_its_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = project(dir.path(), PROGRAM);
    // The graph holds the path requires (the optional missing module is a warning), and
    // every module is bundled under both names.
    assert!(
        bundle.position("config").unwrap().is_some() && bundle.position("./src/shared/log.luau").unwrap().is_some()
    );

    let sources = Lua::new();
    capturing(&sources);
    let proj = dir.path().join("proj");
    sources
        .load(proj.join("src/main.luau").as_path())
        .set_name(format!("@{}", proj.join("src/main.luau").display()))
        .exec()
        .unwrap();
    let bundled = Lua::new();
    capturing(&bundled);
    bundle.installer().hermetic(true).install(&bundled).unwrap();
    bundled.load("require('main')").set_name("@host.luau").exec().unwrap();
    assert_eq!(output(&bundled), output(&sources));
    assert_eq!(output(&bundled), "[log] config defaults+extra\n[log] optional false");
}

#[test]
fn a_cycle_of_path_requires_builds_and_runs_as_luau_runs_it() {
    // mlua's file-system require has no cycle support to compare with: the expected values
    // are those of Luau's own require (a placeholder that refuses access until the module has
    // loaded, then is the module's table).
    let dir = tempfile::tempdir().unwrap();
    let bundle = project(
        dir.path(),
        &[
            ("src/a.luau", Some("local b = require('./b')\nlocal M = {}\nfunction M.partner() return b.name() end\nfunction M.name() return 'a' end\nreturn M")),
            ("src/b.luau", Some("local a = require('./a')\nlocal early = pcall(function() return a.name end)\nlocal M = { early = early }\nfunction M.name() return 'b sees ' .. a.name() end\nreturn M")),
        ],
    );
    let lua = Lua::new();
    bundle.installer().hermetic(true).install(&lua).unwrap();
    let (partner, early): (String, bool) = lua
        .load("local a = require('./src/a') return a.partner(), require('./src/b').early")
        .set_name("@host.luau")
        .eval()
        .unwrap();
    assert_eq!((partner.as_str(), early), ("b sees a", false));
}

/// The diagnostics of building `files` (under `dir/proj/src`), rendered.
fn build_errors(dir: &Path, files: &[(&str, Option<&str>)], dotted: Option<bool>) -> String {
    write_tree(&dir.join("proj"), files);
    let mut builder = luabundle::Builder::new();
    builder.root(dir.join("proj/src")).output(dir.join("app.bundle"));
    if let Some(dotted) = dotted {
        builder.luau_dotted_names(dotted);
    }
    match builder.try_build() {
        Ok(out) => format!("ok\n{}", out.warnings.render()),
        Err(err) => err.to_string(),
    }
}

#[test]
fn unresolvable_ambiguous_and_malformed_paths_are_errors_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let report = build_errors(
        dir.path(),
        &[
            ("src/main.luau", Some("local a = require('./missing')\nlocal b = require('./twice')\nlocal c = require('./util.luau')\nlocal d = require('@nowhere/x')\nreturn nil")),
            ("src/twice.luau", None),
            ("src/twice/init.luau", None),
            ("src/util.luau", None),
        ],
        None,
    );
    for expected in [
        "cannot resolve `./missing`",
        "src/main.luau:1:11",
        "could not resolve child component \"missing\"",
        "cannot resolve `./twice`",
        "(ambiguous)",
        "cannot resolve `./util.luau`",
        "could not resolve child component \"util.luau\"",
        "cannot resolve `@nowhere/x`",
        "@nowhere is not a valid alias",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }
}

#[test]
fn dotted_names_are_refused_once_a_project_uses_paths() {
    let files: &[(&str, Option<&str>)] = &[
        ("src/main.luau", Some("local a = require('./util')\nlocal b = require('util')\nreturn nil")),
        ("src/util.luau", None),
    ];
    let dir = tempfile::tempdir().unwrap();
    let refused = build_errors(dir.path(), files, None);
    assert!(refused.contains("`util` is not a path") && refused.contains("src/main.luau:2:11"), "{refused}");
    assert!(refused.contains("require path must start with a valid prefix: ./, ../, or @"), "{refused}");
    assert!(refused.contains("luau-dotted-names = true"), "{refused}");
    let dir = tempfile::tempdir().unwrap();
    assert!(build_errors(dir.path(), files, Some(true)).starts_with("ok"));
    // A project with no path require and no configuration keeps dotted names, unless refused.
    let dotted_only: &[(&str, Option<&str>)] =
        &[("src/main.luau", Some("local b = require('util')\nreturn nil")), ("src/util.luau", None)];
    let dir = tempfile::tempdir().unwrap();
    assert!(build_errors(dir.path(), dotted_only, None).starts_with("ok"));
    let dir = tempfile::tempdir().unwrap();
    assert!(build_errors(dir.path(), dotted_only, Some(false)).contains("`util` is not a path"));
}

#[test]
fn more_of_luaus_own_cases_resolve_alike() {
    // From Luau's require tests: init files named directly, nested inits, `.config` is no
    // module, malformed aliases, aliases in a parent's configuration and to directories,
    // chained aliases that cannot see a child's aliases, values of every kind, `loadstring`.
    let dir = tempfile::tempdir().unwrap();
    let bundle = project(
        dir.path(),
        &[
            ("src/.luaurc", Some(r#"{ "aliases": { "dir": "./deps", "outer": "./", "passthrough": "@inner" } }"#)),
            (
                "src/requirer.luau",
                Some("local _ = require('./nested')\nreturn function(path) return require(path) end"),
            ),
            ("src/loader.luau", Some("return function(path) return loadstring('return require(...)')(path) end")),
            ("src/nested/init.luau", Some("return require('@self/submodule')")),
            ("src/nested/submodule.luau", None),
            ("src/nested_inits/init.luau", Some("return require('@self/inner')")),
            ("src/nested_inits/inner/init.luau", None),
            ("src/deps/init.luau", None),
            ("src/deps/leaf.luau", None),
            ("src/values/nothing.luau", Some("return nil")),
            ("src/values/no.luau", Some("return false")),
            ("src/values/number.luau", Some("return 12345")),
            ("src/sub/.luaurc", Some(r#"{ "aliases": { "inner": "./inner_dep", "here": "@outer" } }"#)),
            ("src/sub/inner_dep.luau", None),
            ("src/sub/requirer.luau", Some(REQUIRER)),
            ("src/sub/deeper/requirer.luau", Some(REQUIRER)),
        ],
    );
    let outcomes = same_from_sources_and_bundle(
        dir.path(),
        &bundle,
        &[
            ("./src/requirer", "./nested"),
            ("./src/requirer", "./nested/init"),
            ("./src/requirer", "./nested_inits"),
            ("./src/requirer", "./.config"),
            ("./src/requirer", "@@"),
            ("./src/requirer", "@."),
            ("./src/requirer", "@.."),
            ("./src/requirer", "@"),
            ("./src/requirer", "/an/absolute/path"),
            ("./src/requirer", "@dir"),
            ("./src/requirer", "@dir/leaf"),
            ("./src/requirer", "@this.alias.does.not.exist"),
            ("./src/requirer", "@passthrough"),
            ("./src/requirer", "./values/nothing"),
            ("./src/requirer", "./values/no"),
            ("./src/requirer", "./values/number"),
            ("./src/sub/requirer", "@inner"),
            ("./src/sub/requirer", "@here/deps/leaf"),
            ("./src/sub/deeper/requirer", "@outer/deps"),
            ("./src/sub/deeper/requirer", "@dir/leaf"),
            ("./src/loader", "./deps"),
        ],
    );
    assert_eq!(outcomes[0].as_deref(), Ok("src/nested/submodule.luau"));
    assert!(outcomes[1].as_ref().unwrap_err().contains("could not resolve child component \"init\""));
    assert!(outcomes[3].as_ref().unwrap_err().contains("could not resolve child component \".config\""));
    assert!(outcomes[12].as_ref().unwrap_err().contains("@inner is not a valid alias"), "{:?}", outcomes[12]);
    assert_eq!(outcomes[17].as_deref(), Ok("src/deps/leaf.luau"));
    assert!(
        outcomes[20].as_ref().unwrap_err().contains("require is not supported in this context"),
        "{:?}",
        outcomes[20]
    );
}

#[test]
fn a_configuration_that_never_returns_times_out_as_in_luau() {
    // Luau evaluates `.config.luau` with a time budget (2 s): the build does not hang, and
    // both requires give Luau's error.
    let dir = tempfile::tempdir().unwrap();
    let bundle = project(
        dir.path(),
        &[
            ("src/requirer.luau", Some("local _ = require('./x')\nreturn function(path) return require(path) end")),
            ("src/x.luau", None),
            ("src/slow/.config.luau", Some("while true do end\nreturn {}")),
            ("src/slow/requirer.luau", Some(REQUIRER)),
        ],
    );
    let outcomes = same_from_sources_and_bundle(dir.path(), &bundle, &[("./src/slow/requirer", "@any/x")]);
    assert!(outcomes[0].as_ref().unwrap_err().contains("timed out"), "{:?}", outcomes[0]);
}

#[test]
fn a_cyclic_import_read_at_load_time_is_reported_where_it_is_read() {
    let files: &[(&str, Option<&str>)] = &[
        ("src/main.luau", Some("local a = require('./a')\nreturn a.name")),
        // `a` reads `b` at its top level: fine, `b` has loaded by then.
        ("src/a.luau", Some("local b = require('./b')\nreturn { name = 'a', partner = b.name }")),
        // `b` reads `a` while `a` is still loading: Luau refuses the access.
        ("src/b.luau", Some("local a = require('./a')\nlocal first = a.name\nreturn { name = 'b' }")),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_tree(&dir.path().join("proj"), files);
    let mut builder = luabundle::Builder::new();
    builder.root(dir.path().join("proj/src")).output(dir.path().join("app.bundle")).entry("main");
    let report = builder.try_build().unwrap_err().to_string();
    assert!(report.contains("`b` reads `a` at its top level, inside a require cycle"), "{report}");
    assert!(report.contains("src/b.luau:2:15"), "{report}");
    assert!(!report.contains("`a` reads `b`"), "{report}");
    // Without an entry the load order is the host's: a warning.
    let dir = tempfile::tempdir().unwrap();
    assert!(build_errors(dir.path(), &files[1..], None).contains("warning[require-cycle]"));
}
