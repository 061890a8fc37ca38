//! Trust under attack and accident: inputs that used to crash or hang the tool, outputs that
//! could destroy files, and security promises, each class checked through the real CLI.

use std::path::Path;

use crate::support::luabundle;

/// Whether the linked Lua VM compiles `text` (the reference for what must build).
fn lua_compiles(text: &str) -> bool {
    #[cfg(not(feature = "luau"))]
    return mlua::Lua::new().load(text).into_function().is_ok();
    #[cfg(feature = "luau")]
    return mlua::chunk::Compiler::new().compile(text).is_ok();
}

/// Long unary and right-associative chains (what the parser recurses on), and long
/// left-associative ones (which it does not): `build`, `check` and `graph` finish with Lua's
/// verdict, a refusal naming the file, line and column, never a crash.
#[test]
fn expression_chains_get_lua_s_verdict_and_never_crash_the_tool() {
    let chains = [
        ("minus", format!("return {}1\n", "- ".repeat(30_000))),
        ("not", format!("return {}true\n", "not ".repeat(40_000))),
        ("length", format!("return {}'x'\n", "#".repeat(30_000))),
        ("bnot", format!("return {}1\n", "~".repeat(30_000))),
        ("concat", format!("return {}\n", vec!["'a'"; 70_000].join(" .. "))),
        ("power", format!("return {}\n", vec!["2"; 80_000].join("^"))),
        ("just_too_deep", format!("local x = 1\nreturn {}1\n", "- ".repeat(198))),
        ("sum", format!("local ok = pcall(require, 'x')\nreturn {}\n", vec!["1"; 100_000].join(" + "))),
        ("conjunction", format!("local ok = pcall(require, 'x')\nreturn {}\n", vec!["1"; 100_000].join(" and "))),
        ("calls", format!("local ok = pcall(require, 'x')\nreturn f{}\n", "(1)".repeat(50_000))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut refused = 0;
    for (name, text) in &chains {
        let root = dir.path().join(name);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("m.lua"), text).unwrap();
        let accepted = lua_compiles(text);
        for command in ["build", "check", "graph"] {
            let mut cmd = luabundle();
            cmd.arg(command).arg(&root).arg("--no-cache");
            if command == "build" {
                cmd.arg("-o").arg(dir.path().join(format!("{name}.bundle")));
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            if accepted {
                assert_eq!(code, Some(0), "{command} {name}: {stderr}");
            } else {
                assert_eq!(code, Some(1), "{command} {name}: {stderr}");
                // The chain is on the file's last line.
                let place = format!("{name}/m.lua:{}:", text.lines().count());
                assert!(stderr.contains(&place), "{command} {name}: {stderr}");
            }
        }
        refused += usize::from(!accepted);
    }
    // The unary and right-associative chains are beyond every VM's limit.
    assert!(refused >= 6, "{refused}");
}

/// Every `.lua` file under `dir`, recursively.
fn lua_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok) {
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "lua") {
            found.push(entry.into_path());
        }
    }
}

/// The nesting guard counts an upper bound of Lua's levels: it must never refuse a file the
/// VM compiles. Checked on every Lua file of Debian's packages and of the fixtures.
#[test]
fn the_nesting_guard_refuses_no_file_lua_compiles() {
    let mut files = Vec::new();
    lua_files(&crate::support::fixture(""), &mut files);
    lua_files(Path::new("/usr/share/lua"), &mut files);
    let mut compiled = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let text = luabundle::input::source::prepare(&text);
        if lua_compiles(&text) {
            compiled += 1;
            assert_eq!(luabundle::internals::too_deep(&text), None, "{}", path.display());
        }
    }
    assert!(compiled >= 40, "{compiled}");
}

/// Runs `cmd` and returns its output, failing the test if it takes longer than `limit`
/// (a hang), instead of hanging the suite.
fn finishes_within(cmd: &mut std::process::Command, limit: std::time::Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} hung: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The `luabundle` binary as a plain command, run in `dir`.
fn tool(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("luabundle"));
    cmd.current_dir(dir);
    cmd
}

fn mkfifo(path: &Path) {
    assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
}

const SECONDS: std::time::Duration = std::time::Duration::from_secs(20);

/// A project with a module that requires another: `src/main.lua`, `src/util.lua`.
fn project(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.lua"), "return require('util').answer").unwrap();
    std::fs::write(src.join("util.lua"), "return { answer = 42 }").unwrap();
    src
}

#[test]
fn special_files_as_inputs_are_refused_at_once_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for config in [fifo.as_path(), Path::new("/dev/urandom"), Path::new("/dev/zero")] {
        let out = finishes_within(tool(dir.path()).arg("check").arg(&src).arg("--config").arg(config), SECONDS);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
    // The cache's own files swapped for links to such files: the build goes on without them.
    let build = |dir: &Path| {
        let out =
            finishes_within(tool(dir).arg("build").arg(&src).args(["--entry", "main", "-o", "app.bundle"]), SECONDS);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // The file table keeps only files older than the clock's resolution.
    for file in ["main.lua", "util.lua"] {
        assert!(std::process::Command::new("touch")
            .args(["-d", "2020-01-01"])
            .arg(src.join(file))
            .status()
            .unwrap()
            .success());
    }
    build(dir.path());
    let cache_files: Vec<_> = walkdir::WalkDir::new(dir.path().join(".luabundle-cache"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    assert!(cache_files.iter().any(|p| p.ends_with("files.stat")), "{cache_files:?}");
    assert!(cache_files.iter().any(|p| p.extension().is_some_and(|e| e == "rec")), "{cache_files:?}");
    for target in [fifo.as_path(), Path::new("/dev/zero")] {
        for file in &cache_files {
            let _ = std::fs::remove_file(file);
            std::os::unix::fs::symlink(target, file).unwrap();
        }
        std::fs::remove_file(dir.path().join("app.bundle")).unwrap();
        build(dir.path());
        assert!(luabundle_runtime::Bundle::open(dir.path().join("app.bundle")).is_ok());
    }
}

#[test]
fn devices_fifos_and_standard_output_are_written_to_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let run = |args: &[&str]| finishes_within(tool(dir.path()).args(args), SECONDS);
    let build = |output: &str| run(&["build", src.to_str().unwrap(), "--entry", "main", "--no-cache", "-o", output]);
    // Every output option, to /dev/null: the device stays a device.
    let out = build("/dev/null");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(run(&["build", src.to_str().unwrap(), "--manifest", "/dev/null", "-o", "a.bundle"]).status.success());
    assert!(run(&["graph", src.to_str().unwrap(), "-o", "/dev/null"]).status.success());
    assert!(run(&["inspect", "a.bundle", "-o", "/dev/null"]).status.success());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    // `-o -` and `-o /dev/stdout` stream the bundle to standard output.
    for output in ["-", "/dev/stdout"] {
        let out = build(output);
        assert!(out.status.success(), "{output}: {}", String::from_utf8_lossy(&out.stderr));
        let bundle = luabundle_runtime::Bundle::from_bytes(out.stdout).unwrap();
        assert_eq!(bundle.index().unwrap().modules.len(), 2, "{output}");
    }
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
    // A FIFO nobody reads is refused at once; one with a reader gets the bundle.
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let out = build(fifo.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process is reading"));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    // The reader's open must come first, or the writer is (rightly) refused.
    let mut written = None;
    for _ in 0..100 {
        let out = build(fifo.to_str().unwrap());
        if out.status.success() {
            written = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(written.is_some(), "the FIFO never got its reader");
    let received = reader.join().unwrap();
    assert!(luabundle_runtime::Bundle::from_bytes(received).is_ok());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A directory is refused with what to do instead.
    let out = build(dir.path().to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is a directory"), "{:?}", out);
}

#[test]
fn an_output_reached_through_a_link_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::write(dir.path().join("real/app.bundle"), "old").unwrap();
    std::os::unix::fs::symlink("real/app.bundle", dir.path().join("link.bundle")).unwrap();
    let out = finishes_within(
        tool(dir.path()).arg("build").arg(&src).args(["--entry", "main", "--no-cache", "-o", "link.bundle"]),
        SECONDS,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::symlink_metadata(dir.path().join("link.bundle")).unwrap().file_type().is_symlink());
    assert!(luabundle_runtime::Bundle::open(dir.path().join("real/app.bundle")).is_ok());
}

#[test]
fn new_outputs_follow_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    // The umask is inherited: set it for the child through a shell.
    let script = format!(
        "umask 027 && exec {} build {} --entry main --no-cache -o app.bundle",
        assert_cmd::cargo::cargo_bin("luabundle").display(),
        src.display()
    );
    let out = finishes_within(std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir.path()), SECONDS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("app.bundle")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn absurd_job_counts_are_capped_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let out = finishes_within(tool(dir.path()).arg("check").arg(&src).args(["-j", "100000"]), SECONDS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("-j 100000 is more than the 256 worker threads"), "{stderr}");
}

#[test]
#[cfg(not(feature = "luau"))]
fn a_computed_require_with_a_pathological_pattern_does_not_hang_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("main.lua"),
        "local s = string.rep('a', 100000)\nlocal name = s:match('.-.-.-.-.-.-b') or 'x'\nreturn require(name)\n",
    )
    .unwrap();
    let out = finishes_within(tool(dir.path()).arg("check").arg(&src).arg("--no-cache"), SECONDS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dynamic-require"), "{stderr}");
}

#[test]
fn a_build_waiting_for_the_lock_says_who_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    // Another build holds the lock (this test plays it, with its own pid in the file).
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.path().join(".app.bundle.lock"))
        .unwrap();
    lock.lock().unwrap();
    std::io::Write::write_all(&mut &lock, std::process::id().to_string().as_bytes()).unwrap();
    let mut child = tool(dir.path())
        .arg("build")
        .arg(&src)
        .args(["--entry", "main", "--no-cache", "-o", "app.bundle"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let expected = format!("waiting for the lock held by pid {} on", std::process::id());
    let wanted = expected.clone();
    let reader = std::thread::spawn(move || {
        // Lines up to the one that says it waits (or the end, if it never does).
        let mut lines = std::io::BufReader::new(stderr);
        let mut read = String::new();
        while std::io::BufRead::read_line(&mut lines, &mut read).unwrap() > 0 && !read.contains(&wanted) {}
        (read, lines)
    });
    let (first, mut stderr) = reader.join().unwrap();
    seen.push_str(&first);
    assert!(seen.contains(&expected), "{seen}");
    assert!(child.try_wait().unwrap().is_none(), "the build did not wait");
    lock.unlock().unwrap();
    let status = child.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    assert!(status.success(), "{seen}");
    assert!(luabundle_runtime::Bundle::open(dir.path().join("app.bundle")).is_ok());
}

#[test]
fn no_output_is_written_over_an_input_or_another_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let main = std::fs::read(src.join("main.lua")).unwrap();
    let run = |args: &[&str]| finishes_within(tool(dir.path()).args(args), SECONDS);
    let s = src.to_str().unwrap();
    // A source file as -o or --manifest: refused, the file intact.
    let mut cases = vec![
        vec!["build", s, "--entry", "main", "-o", "src/main.lua"],
        vec!["build", s, "--entry", "main", "-o", "app.bundle", "--manifest", "src/util.lua"],
    ];
    // Luau builds have no plain-Lua output.
    if !cfg!(feature = "luau") {
        cases.push(vec!["build", s, "--entry", "main", "--format", "lua", "-o", "src/main.lua"]);
    }
    for args in cases {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("error[output-is-input]"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(src.join("main.lua")).unwrap(), main);
    assert_eq!(std::fs::read(src.join("util.lua")).unwrap(), b"return { answer = 42 }");
    // -o and --manifest naming one file, or the configuration file: refused before anything runs.
    let out = run(&["build", s, "-o", "same", "--manifest", "./same"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("both name"));
    assert!(!dir.path().join("same").exists());
    std::fs::write(dir.path().join("luabundle.toml"), "roots = [\"src\"]\n").unwrap();
    let out = run(&["build", "--entry", "main", "-o", "luabundle.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("luabundle.toml")).unwrap(), "roots = [\"src\"]\n");
    std::fs::remove_file(dir.path().join("luabundle.toml")).unwrap();
    // An output written inside a root is not a source of the next build.
    for _ in 0..if cfg!(feature = "luau") { 0 } else { 2 } {
        let out = run(&["build", s, "--entry", "main", "--format", "lua", "-o", "src/bundled.lua"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("2 modules from 2 files"), "{stderr}");
    }
}

/// `.luabundle-*.tmp` files beside `output`.
fn temporaries_beside(output: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".luabundle-"))
        .collect()
}

#[test]
fn an_interrupted_write_leaves_no_temporary_file_and_stale_ones_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // A bundle of about 200 MB, so that its write takes long enough to be interrupted.
    let blob = format!("return [[{}]]\n", "x".repeat(8 << 20));
    for i in 0..12 {
        std::fs::write(src.join(format!("m{i}.lua")), &blob).unwrap();
    }
    let output = dir.path().join("out").join("big.bundle");
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let mut interrupted = false;
    for signal in ["TERM", "INT"] {
        let mut child = tool(dir.path())
            .arg("build")
            .arg(&src)
            .args(["--no-cache", "--embed-source", "-o"])
            .arg(&output)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < SECONDS {
            if !temporaries_beside(&output).is_empty() {
                let mut kill = std::process::Command::new("kill");
                kill.arg(format!("-{signal}")).arg(child.id().to_string());
                assert!(kill.status().unwrap().success());
                interrupted = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let status = child.wait().unwrap();
        if interrupted {
            use std::os::unix::process::ExitStatusExt;
            assert!(status.signal().is_some(), "{signal}: {status:?}");
            assert_eq!(temporaries_beside(&output), Vec::<std::path::PathBuf>::new(), "{signal}");
        }
        let _ = std::fs::remove_file(&output);
    }
    assert!(interrupted, "the write was never caught in progress");
    // A temporary file of a process that no longer runs is removed by the next write; one of
    // a running process is not.
    let stale = output.with_file_name(".luabundle-999999999-abcdef.tmp");
    let live = output.with_file_name(format!(".luabundle-{}-abcdef.tmp", std::process::id()));
    std::fs::write(&stale, "partial").unwrap();
    std::fs::write(&live, "partial").unwrap();
    let small = project(&dir.path().join("small"));
    let out = finishes_within(tool(dir.path()).arg("build").arg(&small).arg("-o").arg(&output), SECONDS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stale.exists() && live.exists());
}

#[test]
fn a_public_key_is_never_taken_for_a_secret_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let run = |args: &[&std::ffi::OsStr]| finishes_within(tool(dir.path()).args(args), SECONDS);
    assert!(run(&["keygen".as_ref(), "k".as_ref()]).status.success());
    let out = run(&[
        "build".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        "a.bundle".as_ref(),
        "--sign".as_ref(),
        "k.pub".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("k.pub is a public key"), "{out:?}");
    assert!(!dir.path().join("a.bundle").exists());
    assert!(run(&[
        "build".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        "a.bundle".as_ref(),
        "--sign".as_ref(),
        "k".as_ref()
    ])
    .status
    .success());
    let out = run(&["verify".as_ref(), "a.bundle".as_ref(), "--key".as_ref(), "k".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("k is a secret key"), "{out:?}");
    assert!(std::fs::read_to_string(dir.path().join("k")).unwrap().starts_with("luabundle ed25519 secret key\n"));
    assert!(std::fs::read_to_string(dir.path().join("k.pub")).unwrap().starts_with("luabundle ed25519 public key\n"));
}

#[test]
fn a_rebuild_rewrites_a_bundle_signed_otherwise_or_damaged_anywhere() {
    use luabundle_runtime::format::{HEADER_LEN, SIGNATURE_LEN, TRAILER_LEN};
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let run = |args: &[&str]| finishes_within(tool(dir.path()).args(args), SECONDS);
    assert!(run(&["keygen", "k1"]).status.success());
    assert!(run(&["keygen", "k2"]).status.success());
    let s = src.to_str().unwrap();
    let verified_by = |key: &str| run(&["verify", "app.bundle", "--key", key]).status.success();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", s, "--entry", "main", "-o", "app.bundle"];
        args.extend_from_slice(extra);
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    for cache in [&[][..], &["--no-cache"][..]] {
        build(&[&["--sign", "k1"][..], cache].concat());
        assert!(verified_by("k1.pub"));
        // Another key: the signature is the new key's.
        let stderr = build(&[&["--sign", "k2"][..], cache].concat());
        assert!(!stderr.contains("(unchanged)"), "{stderr}");
        assert!(verified_by("k2.pub") && !verified_by("k1.pub"), "{cache:?}");
        // A damaged signature, a damaged module, a damaged index: rewritten, valid again.
        let len = std::fs::metadata(dir.path().join("app.bundle")).unwrap().len() as usize;
        for at in [len - TRAILER_LEN - SIGNATURE_LEN + 20, HEADER_LEN + 40, len - TRAILER_LEN - SIGNATURE_LEN - 3] {
            let mut bytes = std::fs::read(dir.path().join("app.bundle")).unwrap();
            bytes[at] ^= 0x55;
            std::fs::write(dir.path().join("app.bundle"), &bytes).unwrap();
            assert!(!verified_by("k2.pub"), "damage at {at} not seen");
            let stderr = build(&[&["--sign", "k2"][..], cache].concat());
            assert!(!stderr.contains("(unchanged)"), "damage at {at}: {stderr}");
            assert!(verified_by("k2.pub"), "{cache:?}: damage at {at} not repaired");
        }
    }
    // With the cache, an untouched bundle is still found unchanged; without it, it is
    // always written.
    assert!(build(&["--sign", "k2"]).contains("(unchanged)"));
    assert!(!build(&["--sign", "k2", "--no-cache"]).contains("(unchanged)"));
}

/// A crafted bytecode file on `package.path` (the kind that crashes Lua 5.4) is refused by
/// `luabundle run`'s `require`, as a text-only `load` refuses it.
#[test]
#[cfg(not(feature = "luau"))]
fn luabundle_run_never_loads_bytecode_from_package_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    let mut crafted = luabundle_runtime::target::linked().bytecode_header.clone();
    crafted.extend_from_slice(&[0xff; 64]);
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/evil.lua"), crafted).unwrap();
    assert!(finishes_within(tool(dir.path()).arg("build").arg(&src).args(["-o", "app.bundle"]), SECONDS)
        .status
        .success());
    let out = finishes_within(
        tool(dir.path()).env("LUA_PATH", "lib/?.lua").args(["run", "app.bundle", "-e", "require 'evil'"]),
        SECONDS,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error loading module 'evil'"), "{stderr}");
    assert!(stderr.contains("binary chunk") || stderr.contains("wrong mode"), "{stderr}");
}

/// Names in a bundle come from whoever built it: `inspect` shows control characters escaped,
/// so a crafted name cannot drive the terminal; `verify --json` answers in JSON on failure.
#[test]
fn bundle_text_reaches_the_terminal_escaped_and_failures_answer_in_json() {
    use luabundle_runtime::format::{self, BlobKind, BundleContents, ModuleInput};
    let dir = tempfile::tempdir().unwrap();
    let mut target = luabundle_runtime::target::linked().clone();
    target.flavour = luabundle_runtime::target::SOURCE_FLAVOUR.into();
    target.bytecode_header.clear();
    let bytes = format::encode(&BundleContents {
        target,
        modules: vec![ModuleInput {
            name: "evil\u{1b}]0;owned\u{7}\u{1b}[2J".into(),
            chunk_name: "@evil.lua".into(),
            path: "evil\r.lua".into(),
            kind: BlobKind::Source,
            bytes: b"return 1".to_vec(),
            encoding: format::Encoding::Plain,
            source: None,
            deps: vec![],
        }],
        entry: None,
        externals: vec!["ext\u{1b}[31m".into()],
        profiles: vec![],
        groups: vec![],
    })
    .unwrap();
    std::fs::write(dir.path().join("crafted.bundle"), &bytes).unwrap();
    let out = finishes_within(tool(dir.path()).args(["inspect", "crafted.bundle"]), SECONDS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(!listing.contains('\u{1b}') && !listing.contains('\u{7}') && !listing.contains('\r'), "{listing:?}");
    assert!(listing.contains("evil\\u{1b}]0;owned\\u{7}") && listing.contains("ext\\u{1b}[31m"), "{listing}");
    // A damaged bundle: `verify --json` says so in JSON, with the failing exit code.
    std::fs::write(dir.path().join("short.bundle"), &bytes[..100]).unwrap();
    let out = finishes_within(tool(dir.path()).args(["verify", "--json", "short.bundle"]), SECONDS);
    assert_eq!(out.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["ok"], false);
    assert!(answer["error"].as_str().unwrap().contains("too short"), "{answer}");
}

/// Nothing a program calls as `require` is invisible: unusual spellings are sites, and
/// `require` passed on as a value is reported; an eager cycle through local functions
/// called at load time is an error; a group naming a module that does not exist is one.
#[test]
fn no_require_cycle_or_group_member_goes_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let write = |name: &str, text: &str| std::fs::write(src.join(name), text).unwrap();
    write("x.lua", "return 1");
    write(
        "forms.lua",
        "local a = (require)('x')\nlocal b = _G['require']('x')\nlocal t = { r = require }\nreturn t.r('x')\n",
    );
    let check = |entry: &str, extra: &[&str]| {
        let out = finishes_within(
            tool(dir.path()).args(["check", "src", "--no-cache", "--entry", entry]).args(extra),
            SECONDS,
        );
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let graph = finishes_within(tool(dir.path()).args(["graph", "src", "--no-cache", "--entry", "forms"]), SECONDS);
    let dot = String::from_utf8_lossy(&graph.stdout);
    assert!(dot.contains("\"forms\" -> \"x\"") && dot.contains("src/forms.lua:1 src/forms.lua:2"), "{dot}");
    let (code, stderr) = check("forms", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("src/forms.lua:3:17") && stderr.contains("taken as a value"), "{stderr}");
    // a -> (outer -> inner) -> b -> a, all at load time.
    write("a.lua", "local function inner() return require 'b' end\nlocal function outer() return inner() end\nouter()\nreturn {}\n");
    write("b.lua", "return require 'a'\n");
    let (code, stderr) = check("a", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("error[require-cycle]: require cycle: `a` > `b` > `a`"), "{stderr}");
    // A group member that no root provides.
    let config = dir.path().join("luabundle.toml");
    std::fs::write(&config, "roots = [\"src\"]\n[groups]\nall = [\"x\", \"forms\", \"y\"]\n").unwrap();
    let out = finishes_within(tool(dir.path()).args(["check", "--no-cache"]), SECONDS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[group-member-missing]: group `all`: member `y` is not a module of this build"),
        "{stderr}"
    );
}

/// Numerals Lua refuses (`1_000`, and `0b1010` outside LuaJIT) are reported on the line Lua
/// names (5.1, 5.4 and LuaJIT: the numeral itself; 5.2 and 5.3 read `1_000` as `1 _000` and
/// complain a line later), not where the parser trips.
#[test]
#[cfg(not(feature = "luau"))] // Luau accepts both spellings
fn numerals_lua_refuses_are_reported_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let files = [
        ("m.lua", "local a = 1\nlocal x = 1_000\nreturn x\n"),
        ("n.lua", "local a = 1\n\nlocal y = 0b1010\nreturn y\n"),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).unwrap();
    }
    let out = finishes_within(tool(dir.path()).args(["check", "src", "--no-cache"]), SECONDS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut refused = 0;
    for (name, text) in files {
        let lua = mlua::Lua::new();
        let Err(err) = lua.load(text).set_name(format!("@src/{name}")).into_function() else {
            assert!(!stderr.contains(&format!("src/{name}:")), "{stderr}");
            continue;
        };
        refused += 1;
        let message = err.to_string();
        let line = message.split(&format!("src/{name}:")).nth(1).and_then(|rest| rest.split(':').next()).unwrap();
        let place = format!("src/{name}:{line}:");
        assert!(stderr.contains(&place), "{place} ({message}): {stderr}");
    }
    // The vendored LuaJIT reads both spellings; every other VM refuses `1_000` at least.
    assert!(refused >= 1 || cfg!(feature = "luajit"));
    assert_eq!(out.status.code(), Some(if refused > 0 { 1 } else { 0 }), "{stderr}");
}

/// A lock file planted as a link to another file is never followed (writing the pid into it
/// would overwrite that file): the build refuses, saying what to remove.
#[test]
fn a_lock_file_planted_as_a_link_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let src = project(dir.path());
    std::fs::write(dir.path().join("victim"), "precious").unwrap();
    std::os::unix::fs::symlink(dir.path().join("victim"), dir.path().join(".app.bundle.lock")).unwrap();
    let out = finishes_within(tool(dir.path()).arg("build").arg(&src).args(["-o", "app.bundle"]), SECONDS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".app.bundle.lock is a symbolic link, not a lock file; remove it"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("victim")).unwrap(), "precious");
}
