//! The loadable module in real hosts: Debian's interpreter of the module's Lua (`lua5.1` to
//! `lua5.4`, or `luajit`) loads `luabundle.so`, opens bundles built by the `luabundle` command
//! and requires from them, lazily and verified; LuaRocks runs from its bundle through the
//! module with the output it has from its sources.
//!
//! Needs the interpreter and `luarocks` (`.ci/run` installs them; `LUABUNDLE_REQUIRE_CORPORA=1`
//! turns a missing one into a failure), the module built (`cargo build` here first, with the
//! same features), and a `luabundle` command of the same flavour: the main workspace's last
//! build, or `LUABUNDLE_BIN`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Debian's interpreter, module directory and the module's target for the flavour built.
#[cfg(feature = "lua51")]
const HOST: (&str, &str, &str) = ("lua5.1", "/usr/share/lua/5.1", "lua51");
#[cfg(feature = "lua52")]
const HOST: (&str, &str, &str) = ("lua5.2", "/usr/share/lua/5.2", "lua52");
#[cfg(feature = "lua53")]
const HOST: (&str, &str, &str) = ("lua5.3", "/usr/share/lua/5.3", "lua53");
#[cfg(feature = "luajit")]
const HOST: (&str, &str, &str) = ("luajit", "/usr/share/lua/5.1", "luajit");
#[cfg(not(any(feature = "lua51", feature = "lua52", feature = "lua53", feature = "luajit")))]
const HOST: (&str, &str, &str) = ("lua5.4", "/usr/share/lua/5.4", "lua54");
const INTERPRETER: &str = HOST.0;

/// The target directory's profile folder this test runs from (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
}

/// A directory holding the module as `luabundle.so`, the name `require "luabundle"` finds.
fn module_dir(dir: &Path) -> PathBuf {
    let built = profile_dir().join("libluabundle.so");
    assert!(built.is_file(), "{} is missing: `cargo build` the module first", built.display());
    let modules = dir.join("cmodules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::copy(&built, modules.join("luabundle.so")).unwrap();
    modules
}

/// The `luabundle` command: `LUABUNDLE_BIN`, or the one the main workspace built last, which
/// must be of this module's flavour (another flavour's bundles are refused, naming both
/// targets).
fn luabundle() -> PathBuf {
    if let Some(bin) = std::env::var_os("LUABUNDLE_BIN") {
        return PathBuf::from(bin);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("luabundle"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no luabundle command under {}: run `cargo build` first", target.display()))
}

/// Whether `program` is installed; a missing one fails under `LUABUNDLE_REQUIRE_CORPORA`.
fn present(program: &str, package: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(),
            "{program} is missing: apt-get install {package}"
        );
        eprintln!("skipped: {program} is missing (apt-get install {package})");
    }
    found
}

fn build(args: &[&str], dir: &Path) {
    let out = Command::new(luabundle()).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "luabundle {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The interpreter with the module on `package.cpath` and `code` run before `args`.
fn lua(modules: &Path, code: &str, args: &[&str], dir: &Path) -> Output {
    let setup = format!("package.cpath = '{}/?.so;' .. package.cpath\n{code}", modules.display());
    Command::new(INTERPRETER).arg("-e").arg(setup).args(args).current_dir(dir).output().unwrap()
}

/// The output of `code` run as [`lua`] runs it, which must succeed.
fn lua_output(modules: &Path, code: &str, dir: &Path) -> String {
    let out = lua(modules, code, &[], dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn app(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/app")).unwrap();
    std::fs::write(
        dir.join("src/app/main.lua"),
        "local util = require('app.util')\nprint('main: ' .. util.greet('host'))\nreturn true\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/app/util.lua"),
        "local M = {}\nfunction M.greet(n) return 'hello ' .. n end\nfunction M.fail() error('boom') end\nreturn M\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/app/unused.lua"), "error('never required')\n").unwrap();
    build(&["build", "src", "-o", "app.bundle", "-q"], dir);
}

#[test]
fn stock_lua_loads_a_bundle_lazily_and_verified() {
    if !present(INTERPRETER, INTERPRETER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    app(dir.path());
    let script = r#"
local lb = require "luabundle"
assert(lb.target == TARGET, lb.target)
local b = assert(lb.open("app.bundle"))
assert(b:install())
-- Nothing ran at install; modules load on their first require.
assert(package.loaded["app.util"] == nil)
require "app.main"
local names = {}
for _, s in ipairs(b:stats()) do names[#names + 1] = s.module .. ":" .. s.origin end
print(table.concat(names, " "))
print(table.concat(b:modules(), " "))
print(assert(b:verify()))
local ok, err = pcall(require("app.util").fail)
print(ok, err)
print(lb.open("missing.bundle"))
"#;
    let script = format!("TARGET = '{}'\n{script}", HOST.2);
    let stdout = lua_output(&modules, &script, dir.path());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "main: hello host");
    assert_eq!(lines[1], "app.main:bundle app.util:bundle");
    assert_eq!(lines[2], "app.main app.unused app.util");
    assert_eq!(lines[3], "true");
    // Errors keep the original file and line.
    assert!(lines[4].starts_with("false\tsrc/app/util.lua:3: boom"), "{}", lines[4]);
    assert!(lines[5].starts_with("nil\tcannot read bundle missing.bundle"), "{}", lines[5]);
}

#[test]
fn a_running_host_reloads_a_rebuilt_bundle() {
    if !present(INTERPRETER, INTERPRETER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    app(dir.path());
    // The rebuild the script triggers: util changed, main (which requires it) unchanged.
    let util = "local M = {}\nfunction M.greet(n) return 'hi again ' .. n end\nreturn M\n";
    std::fs::write(dir.path().join("util.v2"), util).unwrap();
    let rebuild = format!(
        "os.rename('util.v2', 'src/app/util.lua') assert(os.execute('{} build src -o app.bundle -q'))",
        luabundle().display()
    );
    let script = format!(
        r#"
local lb = require "luabundle"
local b = assert(lb.open("app.bundle"))
assert(b:install())
require "app.main"
local counter = {{ n = 41 }}
package.loaded["app.counter"] = counter
{rebuild}
local report = assert(b:reload())
print(table.concat(report.reloaded, " "), #report.failed, report.kept)
print(require("app.util").greet("host"), package.loaded["app.counter"] == counter)
print(b:reload("missing.bundle"))
"#
    );
    let stdout = lua_output(&modules, &script, dir.path());
    let lines: Vec<&str> = stdout.lines().collect();
    // main printed at its first load, and again when it loaded again over the new util.
    assert_eq!(lines[0], "main: hello host");
    assert_eq!(lines[1], "main: hi again host");
    assert_eq!(lines[2], "app.util app.main\t0\t0");
    assert_eq!(lines[3], "hi again host\ttrue");
    assert!(lines[4].starts_with("nil\tcannot read bundle missing.bundle"), "{}", lines[4]);
}

#[test]
fn a_damaged_module_is_refused_before_lua_sees_it() {
    if !present(INTERPRETER, INTERPRETER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    app(dir.path());
    let bundle = dir.path().join("app.bundle");
    let mut bytes = std::fs::read(&bundle).unwrap();
    // A byte of the last module's bytecode (the trailer is 42 bytes, the signature absent).
    let at = bytes.len() - 60;
    bytes[at] ^= 0x5a;
    std::fs::write(&bundle, &bytes).unwrap();
    let script = r#"
local b = assert(require("luabundle").open("app.bundle"))
assert(b:install())
print(b:verify())
print(pcall(require, "app.util"))
"#;
    let stdout = lua_output(&modules, script, dir.path());
    assert!(stdout.contains("nil\t") && stdout.contains("damaged"), "{stdout}");
    assert!(stdout.contains("false\t"), "{stdout}");
}

#[test]
fn a_signature_policy_opens_only_bundles_signed_by_its_keys() {
    if !present(INTERPRETER, INTERPRETER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    app(dir.path());
    build(&["keygen", "release.key"], dir.path());
    build(&["keygen", "other.key"], dir.path());
    build(&["build", "src", "-o", "signed.bundle", "--sign", "release.key", "-q"], dir.path());
    // Keys as the .pub files hold them, or as their hexadecimal line alone.
    let script = r#"
local lb = require "luabundle"
local function key(path) local f = assert(io.open(path)) local text = f:read("*a") f:close() return text end
local release, other = key("release.key.pub"), key("other.key.pub")
local b = assert(lb.open("signed.bundle", { keys = { release } }))
assert(b:install())
print(require("app.util").greet("signed"))
print(lb.open("signed.bundle", { keys = { other } }) == nil)
print(select(2, lb.open("app.bundle", { keys = { release:match("%x+%s*$") } })))
print(select(2, lb.open("signed.bundle", { keys = { "not a key" } })))
"#;
    let stdout = lua_output(&modules, script, dir.path());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hello signed");
    assert_eq!(lines[1], "true", "a bundle signed by another key opened");
    assert!(lines[2].contains("app.bundle") && lines[2].contains("not signed"), "{}", lines[2]);
    assert!(lines[3].contains("is not 64 hexadecimal digits"), "{}", lines[3]);
}

#[test]
fn luarocks_runs_from_its_bundle_through_the_module_as_from_its_sources() {
    if !present(INTERPRETER, INTERPRETER) || !present("luarocks", "luarocks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    let lua_dir = HOST.1;
    // Only what the bundle holds: package.path is emptied before LuaRocks starts.
    let runner = "package.path = os.getenv('CORPUS_PATH') or ''\nlocal program = table.remove(arg, 1)\nreturn assert(loadfile(program))((table.unpack or unpack)(arg))\n";
    std::fs::write(dir.path().join("runner.lua"), runner).unwrap();
    // Modules stored as compiled, then each compressed (decompressed by the module on first
    // require).
    for storage in ["none", "zstd"] {
        let (luarocks, pl) = (format!("luarocks={lua_dir}/luarocks"), format!("pl={lua_dir}/pl"));
        build(&["build", &luarocks, &pl, "-o", "corpus.bundle", "-q", "--compress", storage], dir.path());
        same_output_as_sources(&modules, lua_dir, dir.path());
    }
}

/// LuaRocks' `--version` and `help` through the module from `dir/corpus.bundle` print what
/// they print from the sources under `lua_dir`.
fn same_output_as_sources(modules: &Path, lua_dir: &str, dir: &Path) {
    for args in [&["--version"][..], &["help"]] {
        let mut command: Vec<&str> = vec!["runner.lua", "/usr/bin/luarocks"];
        command.extend_from_slice(args);
        let sources = Command::new(INTERPRETER)
            .env("CORPUS_PATH", format!("{lua_dir}/?.lua;{lua_dir}/?/init.lua"))
            .args(&command)
            .current_dir(dir)
            .output()
            .unwrap();
        let bundled =
            lua(modules, "assert(assert(require('luabundle').open('corpus.bundle')):install())", &command, dir);
        assert!(sources.status.success() && bundled.status.success(), "{}", String::from_utf8_lossy(&bundled.stderr));
        assert!(!sources.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&bundled.stdout),
            String::from_utf8_lossy(&sources.stdout),
            "luarocks {args:?}"
        );
    }
}

/// An nginx started on a loopback port for one test, stopped when dropped.
#[cfg(feature = "luajit")]
struct Nginx(std::process::Child);

#[cfg(feature = "luajit")]
impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of `GET path` on `port`, once nginx answers.
#[cfg(feature = "luajit")]
fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    for _ in 0..100 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            return response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(response);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nginx does not answer on port {port}");
}

#[test]
#[cfg(feature = "luajit")]
fn openresty_in_nginx_requires_from_a_bundle() {
    let lua_module = Path::new("/usr/lib/nginx/modules/ngx_http_lua_module.so");
    if !present("nginx", "nginx libnginx-mod-http-lua") {
        return;
    }
    assert!(lua_module.is_file(), "{} is missing: apt-get install libnginx-mod-http-lua", lua_module.display());
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    app(dir.path());
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    // A free loopback port: bound, then released for nginx.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let root = dir.path().display();
    let config = format!(
        r#"load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module {lua_module};
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log;
events {{ worker_connections 16; }}
http {{
  access_log off;
  lua_package_cpath "{modules}/?.so;;";
  init_by_lua_block {{
    BUNDLE = assert(require("luabundle").open("{root}/app.bundle"))
    assert(BUNDLE:install())
  }}
  server {{
    listen 127.0.0.1:{port};
    location /greet {{
      content_by_lua_block {{ ngx.say(require("app.util").greet("nginx")) }}
    }}
    location /loaded {{
      content_by_lua_block {{
        local names = {{}}
        for _, s in ipairs(BUNDLE:stats()) do names[#names + 1] = s.module end
        ngx.say(table.concat(names, " "))
      }}
    }}
  }}
}}
"#,
        lua_module = lua_module.display(),
        modules = modules.display(),
    );
    std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _nginx = Nginx(child);
    assert_eq!(get(port, "/greet"), "hello nginx\n");
    // Only what a request required was loaded.
    assert_eq!(get(port, "/loaded"), "app.util\n");
}

#[test]
#[cfg(feature = "luajit")]
fn neovim_loads_a_plugins_modules_from_a_bundle() {
    if !present("nvim", "neovim") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let modules = module_dir(dir.path());
    let plugin = dir.path().join("plugin/lua/greeter");
    std::fs::create_dir_all(&plugin).unwrap();
    // A plugin that uses Neovim's API, split in two modules.
    std::fs::write(plugin.join("init.lua"), "local text = require('greeter.text')\nlocal M = {}\nfunction M.greet(name)\n  vim.api.nvim_buf_set_lines(0, 0, -1, false, { text.hello(name) })\n  return vim.api.nvim_buf_get_lines(0, 0, 1, false)[1]\nend\nreturn M\n").unwrap();
    std::fs::write(
        plugin.join("text.lua"),
        "return { hello = function(name) return 'hello ' .. vim.fn.toupper(name) end }\n",
    )
    .unwrap();
    build(&["build", "plugin/lua", "-o", "plugin.bundle", "-q"], dir.path());
    let code = format!(
        "lua package.cpath = '{}/?.so;' .. package.cpath; local b = assert(require('luabundle').open('plugin.bundle')); assert(b:install()); local line = require('greeter').greet('nvim'); local names = {{}}; for _, s in ipairs(b:stats()) do names[#names + 1] = s.module end; io.stdout:write(line, ' | ', table.concat(names, ' '), '\\n')",
        modules.display()
    );
    let out = Command::new("nvim")
        .args(["--headless", "--clean", "-c", &code, "-c", "qa!"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "hello NVIM | greeter greeter.text", "{}", String::from_utf8_lossy(&out.stderr));
}
