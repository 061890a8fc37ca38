//! The runtime's installer on real bundles: profiles, native modules, hooks, statistics,
//! unload, groups, prefetch, hermetic mode and text-only `load`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use luabundle_runtime::{Bundle, Error, LoadEvent, Origin};
use mlua::{Lua, Value};

use crate::support::{fixture, luabundle};

/// The host_app fixture, built with its luabundle.toml.
fn host_bundle() -> (tempfile::TempDir, Bundle) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("host.bundle");
    let mut builder = luabundle::Builder::new();
    builder.config_file(fixture("host_app/luabundle.toml")).unwrap();
    builder.output(&output).no_cache(true).try_build().unwrap();
    let bundle = Bundle::open(&output).unwrap();
    (dir, bundle)
}

/// A native `llm` module whose initialisations are counted.
fn llm(inits: &Arc<AtomicUsize>) -> impl Fn(&Lua) -> mlua::Result<Value> + Send + Sync + 'static {
    let inits = inits.clone();
    move |lua| {
        inits.fetch_add(1, Ordering::SeqCst);
        let module = lua.create_table()?;
        module.set("complete", lua.create_function(|_, prompt: String| Ok(format!("pong to {prompt}")))?)?;
        Ok(Value::Table(module))
    }
}

#[test]
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
fn pairs_lists_every_requirable_module_without_loading_any() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let lua = Lua::new();
    let installed = bundle.installer().native("clock", |_| Ok(Value::Integer(42))).install(&lua).unwrap();
    // Luau iterates with `__iter` (`for k in t`), Lua 5.2+ with `__pairs`.
    let each = if cfg!(feature = "luau") { "package.preload" } else { "pairs(package.preload)" };
    let listed: Vec<String> = lua
        .load(format!(
            "local names = {{}} for name in {each} do names[#names + 1] = name end table.sort(names) return names"
        ))
        .eval::<Vec<String>>()?;
    assert_eq!(listed, ["ai", "app.broken", "app.extra", "app.uses_native", "app.util", "clock"]);
    assert_eq!(installed.modules().unwrap(), listed.as_slice());
    assert_eq!(lua.globals().get::<Option<i64>>("UTIL_LOADS")?, None, "listing loads nothing");
    assert_eq!(bundle.bytes_read(), 0);
    Ok(())
}

#[test]
fn installed_lists_every_requirable_module_without_loading_any() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let lua = Lua::new();
    let installed = bundle.installer().native("clock", |_| Ok(Value::Integer(42))).install(&lua).unwrap();
    assert_eq!(installed.modules().unwrap(), ["ai", "app.broken", "app.extra", "app.uses_native", "app.util", "clock"]);
    assert_eq!(lua.globals().get::<Option<i64>>("UTIL_LOADS")?, None);
    assert_eq!(bundle.bytes_read(), 0);
    Ok(())
}

#[test]
fn many_threads_and_states_share_one_bundle() {
    let (_dir, bundle) = host_bundle();
    let bundle = Arc::new(bundle);
    let handles: Vec<_> = (0..8)
        .map(|thread| {
            let bundle = bundle.clone();
            std::thread::spawn(move || {
                for state in 0..25 {
                    let lua = Lua::new();
                    bundle.install(&lua).unwrap();
                    let doubled: i64 = lua
                        .load(format!("return require('app.util').double({})", thread * 100 + state))
                        .eval()
                        .unwrap();
                    assert_eq!(doubled, 2 * (thread * 100 + state));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn a_file_bundle_reads_only_the_modules_required() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    lua.load("require('app.util')").exec()?;
    let util = bundle.module("app.util").unwrap().unwrap().blob.len;
    assert_eq!(bundle.bytes_read(), util);
    // From a file, each state reads and verifies again (the file may have changed).
    let other = Lua::new();
    bundle.install(&other).unwrap();
    other.load("require('app.util')").exec()?;
    assert_eq!(bundle.bytes_read(), 2 * util);
    Ok(())
}

#[test]
fn a_profile_makes_exactly_its_closure_requirable() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let lua = Lua::new();
    bundle.installer().profile("minimal").install(&lua).unwrap();
    let doubled: i64 = lua.load("return require('app.util').double(4)").eval()?;
    assert_eq!(doubled, 8);
    let err = lua.load("require('app.extra')").exec().unwrap_err().to_string();
    assert!(err.contains("module 'app.extra' is in bundle") && err.contains("not in profile 'minimal'"), "{err}");
    let err = bundle.installer().profile("nope").install(&Lua::new()).unwrap_err();
    assert!(matches!(err, Error::UnknownProfile { .. }), "{err}");
    assert!(err.to_string().contains("has no profile 'nope' (profiles: minimal)"), "{err}");
    Ok(())
}

#[test]
fn build_profile_writes_only_that_closure() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("minimal.bundle");
    luabundle()
        .current_dir(fixture("host_app"))
        .args(["build", "--profile", "minimal", "--no-cache", "-o"])
        .arg(&output)
        .assert()
        .code(0);
    let bundle = Bundle::open(&output).unwrap();
    let names: Vec<&str> = bundle.index().unwrap().modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["app.util"]);
}

#[test]
fn native_modules_initialise_on_first_require_and_retry_after_errors() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let inits = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let lua = Lua::new();
    bundle
        .installer()
        .native("llm", llm(&inits))
        .native("clock", move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(mlua::Error::runtime("no clock yet"))
            } else {
                Ok(Value::Integer(1234))
            }
        })
        .install(&lua)
        .unwrap();
    assert_eq!(inits.load(Ordering::SeqCst), 0, "nothing initialised at install");
    // A bundled module requires the native one.
    let answer: String = lua.load("return require('app.uses_native').answer()").eval()?;
    assert_eq!(answer, "pong to ping");
    lua.load("require('llm') require('llm')").exec()?;
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    // A failing init is a Lua error naming the module; the next require tries again.
    let err = lua.load("require('clock')").exec().unwrap_err().to_string();
    assert!(err.contains("native module 'clock' failed to initialise: runtime error: no clock yet"), "{err}");
    let clock: i64 = lua.load("return require('clock')").eval()?;
    assert_eq!(clock, 1234);
    // A native module may require bundled ones.
    let lua = Lua::new();
    bundle
        .installer()
        .native("llm", |lua| {
            let util: mlua::Table = lua.globals().get::<mlua::Function>("require")?.call("app.util")?;
            Ok(Value::Integer(util.get::<mlua::Function>("double")?.call(21)?))
        })
        .install(&lua)
        .unwrap();
    assert_eq!(lua.load("return require('llm')").eval::<i64>()?, 42);
    Ok(())
}

#[test]
fn hooks_see_every_load_and_stats_count_them() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let lua = Lua::new();
    let inits = Arc::new(AtomicUsize::new(0));
    let installed = bundle
        .installer()
        .native("llm", llm(&inits))
        .on_load(move |event| seen.lock().unwrap().push(event.clone()))
        .install(&lua)
        .unwrap();
    lua.load("require('app.uses_native')").exec()?;
    let _ = lua.load("require('app.broken')").exec().unwrap_err();
    let summary: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            LoadEvent::Before { module } => format!("before {module}"),
            LoadEvent::After { module, bytes, .. } => {
                format!("after {module} {}", if *bytes > 0 { "bytes" } else { "0" })
            }
            LoadEvent::Error { module, message } => {
                format!("error {module}: {}", message.contains("broken on purpose"))
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "before app.uses_native",
            "before llm",
            "after llm 0",
            "after app.uses_native bytes",
            "before app.broken",
            "before app.util",
            "after app.util bytes",
            "error app.broken: true",
        ]
    );
    let stats = installed.stats();
    let by_name = |name: &str| stats.iter().find(|s| s.module == name).unwrap().clone();
    assert_eq!((by_name("llm").origin, by_name("llm").loads, by_name("llm").bytes), (Origin::Native, 1, 0));
    let native_user = by_name("app.uses_native");
    assert_eq!(native_user.bytes, bundle.module("app.uses_native").unwrap().unwrap().blob.len);
    assert!(native_user.load_time >= native_user.self_time);
    assert_eq!((by_name("app.broken").loads, by_name("app.broken").failures), (0, 1));
    let log = installed.load_log();
    assert_eq!(
        log.iter().map(|r| (r.module.as_str(), r.depth)).collect::<Vec<_>>()[..2],
        [("llm", 1), ("app.uses_native", 0)]
    );
    Ok(())
}

#[test]
fn unload_makes_the_next_require_load_again() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let lua = Lua::new();
    let installed = bundle.install(&lua).unwrap();
    lua.load("require('app.util')").exec()?;
    assert!(installed.unload("app.util").unwrap());
    assert!(!installed.unload("app.util").unwrap());
    lua.load("require('app.util')").exec()?;
    assert_eq!(lua.globals().get::<i64>("UTIL_LOADS")?, 2);
    assert_eq!(installed.stats().iter().find(|s| s.module == "app.util").unwrap().loads, 2);
    Ok(())
}

#[test]
fn a_group_loads_its_members_on_first_field_access() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let inits = Arc::new(AtomicUsize::new(0));
    let lua = Lua::new();
    bundle.installer().native("llm", llm(&inits)).install(&lua).unwrap();
    lua.load("ai = require('ai')").exec()?;
    assert_eq!(lua.globals().get::<Option<bool>>("EXTRA_LOADED")?, None);
    assert_eq!(inits.load(Ordering::SeqCst), 0);
    let name: String = lua.load("return ai.extra.name").eval()?;
    assert_eq!(name, "extra");
    assert_eq!(inits.load(Ordering::SeqCst), 0, "other members stay unloaded");
    let answer: String = lua.load("return ai.uses_native.answer() .. ' / ' .. ai.llm.complete('x')").eval()?;
    assert_eq!(answer, "pong to ping / pong to x");
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn prefetch_verifies_modules_before_their_first_require() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let verified = bundle.prefetch(&["app.broken", "no.such.module"]).wait().unwrap();
    assert_eq!(verified, 2, "app.broken and its eager dependency app.util");
    let read = bundle.bytes_read();
    assert_eq!(
        read,
        bundle.module("app.broken").unwrap().unwrap().blob.len + bundle.module("app.util").unwrap().unwrap().blob.len
    );
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    lua.load("require('app.util')").exec()?;
    assert_eq!(bundle.bytes_read(), read, "the first require used the prefetched bytes");
    Ok(())
}

#[test]
fn hermetic_mode_never_loads_stray_files() -> mlua::Result<()> {
    let (dir, bundle) = host_bundle();
    std::fs::write(dir.path().join("stray.lua"), "return 'from disk'").unwrap();
    let path = format!("if package.path then package.path = '{}/?.lua' end", dir.path().display());
    // Luau has no file searcher to fall back on.
    #[cfg(not(feature = "luau"))]
    {
        let open = Lua::new();
        bundle.install(&open).unwrap();
        open.load(&path).exec()?;
        assert_eq!(open.load("return require('stray')").eval::<String>()?, "from disk");
    }

    let sealed = Lua::new();
    bundle.installer().hermetic(true).install(&sealed).unwrap();
    sealed.load(&path).exec()?;
    let err = sealed.load("require('stray')").exec().unwrap_err().to_string();
    assert!(err.contains("no module 'stray' in bundle") && err.contains("hermetic"), "{err}");
    let err = sealed.load("require('app.utill')").exec().unwrap_err().to_string();
    assert!(err.contains("closest bundled names: app.util"), "{err}");
    assert_eq!(sealed.load("return require('app.util').double(1)").eval::<i64>()?, 2);
    Ok(())
}

#[test]
#[cfg(not(feature = "luau"))] // Luau has only `loadstring`, which never takes bytecode.
fn code_in_the_state_cannot_load_bytecode_unless_allowed() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let probe = r#"
        local load_string = loadstring or load
        local bytecode = string.dump(function() return 7 end)
        local f, err = load_string(bytecode)
        local text = load_string("return 6")()
        local env = 5
        if _VERSION ~= "Lua 5.1" then env = load("return x", "chunk", "t", { x = 5 })() end
        return f and f() or err, text, env
    "#;
    let guarded = Lua::new();
    bundle.install(&guarded).unwrap();
    let (binary, text, env): (String, i64, i64) = guarded.load(probe).eval()?;
    assert!(binary.contains("binary chunk") || binary.contains("wrong mode"), "{binary}");
    assert_eq!((text, env), (6, 5));
    let open = Lua::new();
    bundle.installer().allow_binary_chunks(true).install(&open).unwrap();
    let (binary, _, _): (i64, i64, i64) = open.load(probe).eval()?;
    assert_eq!(binary, 7);
    Ok(())
}

/// `require` finds modules on `package.path` through Lua's own file searcher, which loads
/// bytecode files as readily as sources: installed, it loads text only (unless allowed),
/// with Lua's messages for everything else.
#[test]
#[cfg(not(feature = "luau"))]
fn require_from_package_path_loads_text_only_unless_allowed() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let dir = tempfile::tempdir().unwrap();
    let bytecode = Lua::new().load("return 'from bytecode'").into_function()?.dump(false);
    std::fs::write(dir.path().join("compiled.lua"), bytecode).unwrap();
    std::fs::write(dir.path().join("plain.lua"), "return 'from text'").unwrap();
    let path = format!("package.path = '{}/?.lua'", dir.path().display());
    let guarded = Lua::new();
    bundle.install(&guarded).unwrap();
    guarded.load(&path).exec()?;
    assert_eq!(guarded.load("return require('plain')").eval::<String>()?, "from text");
    let err = guarded.load("return require('compiled')").eval::<String>().unwrap_err().to_string();
    assert!(err.contains("error loading module 'compiled' from file"), "{err}");
    assert!(err.contains("binary chunk") || err.contains("wrong mode"), "{err}");
    let err = guarded.load("return require('absent')").eval::<String>().unwrap_err().to_string();
    assert!(err.contains("module 'absent' not found") && err.contains("no file"), "{err}");
    let open = Lua::new();
    bundle.installer().allow_binary_chunks(true).install(&open).unwrap();
    open.load(&path).exec()?;
    assert_eq!(open.load("return require('compiled')").eval::<String>()?, "from bytecode");
    Ok(())
}

#[test]
fn run_importtime_prints_nested_load_times_and_record_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("app.bundle");
    luabundle()
        .args(["build", "fixtures/app/src", "--entry", "app.main", "--no-cache", "-o"])
        .arg(&bundle)
        .assert()
        .code(0);
    let record = dir.path().join("modules.txt");
    let out = luabundle()
        .arg("run")
        .arg(&bundle)
        .arg("--importtime")
        .arg("--record")
        .arg(&record)
        .assert()
        .code(0)
        .get_output()
        .stderr
        .clone();
    let table = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "import time: self [us] | cumulative | module");
    assert!(lines.iter().any(|l| l.ends_with("|     app.shapes.circle")), "{table}");
    assert!(lines.last().unwrap().ends_with("| app.main"), "{table}");
    let recorded = std::fs::read_to_string(record).unwrap();
    assert_eq!(recorded.lines().next(), Some("app.config"));
    assert_eq!(recorded.lines().count(), 8);
}

#[test]
fn install_uses_the_same_lua_memory_for_ten_or_a_thousand_modules() {
    let heap_after_install = |count: usize| {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..count {
            std::fs::write(dir.path().join(format!("m{i}.lua")), format!("return {i}")).unwrap();
        }
        let output = dir.path().join("n.bundle");
        luabundle::Builder::new().root(dir.path()).output(&output).no_cache(true).try_build().unwrap();
        let bundle = Bundle::open(&output).unwrap();
        let lua = Lua::new();
        lua.gc_collect().unwrap();
        let before = lua.used_memory();
        bundle.install(&lua).unwrap();
        lua.gc_collect().unwrap();
        lua.used_memory() - before
    };
    let (small, large) = (heap_after_install(10), heap_after_install(1000));
    assert_eq!(small, large, "install allocated {small} bytes for 10 modules, {large} for 1000");
}

#[test]
fn install_limits_lua_memory_unless_told_otherwise() -> mlua::Result<()> {
    let (_dir, bundle) = host_bundle();
    let lua = Lua::new();
    bundle.installer().memory_limit(Some(8 << 20)).install(&lua).unwrap();
    let err = lua.load("local s = string.rep('x', 64 * 1024 * 1024) return #s").exec();
    // A memory error, or (Lua 5.3's string buffers) a runtime error saying so.
    #[cfg(not(feature = "luajit"))]
    assert!(
        matches!(&err, Err(mlua::Error::MemoryError(_)))
            || err.as_ref().is_err_and(|e| e.to_string().contains("not enough memory")),
        "{err:?}"
    );
    #[cfg(feature = "luajit")]
    let _ = err; // LuaJIT manages its own memory; no limit can be set.
    assert_eq!(lua.load("return require('app.util').double(2)").eval::<i64>()?, 4, "the state still works");

    let default = Lua::new();
    bundle.install(&default).unwrap();
    let previous = default.set_memory_limit(0).unwrap_or(0);
    #[cfg(not(feature = "luajit"))]
    assert_eq!(previous, luabundle_runtime::DEFAULT_MEMORY_LIMIT);
    let untouched = Lua::new();
    bundle.installer().memory_limit(None).install(&untouched).unwrap();
    assert_eq!(untouched.set_memory_limit(0).unwrap_or(0), 0);
    let _ = previous;
    Ok(())
}
