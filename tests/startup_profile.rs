//! Start-up profiles: `luabundle run --profile-out` in each format, checked against the
//! formats' schemas and for the loads they must hold; `--repeat` and the budgets; and
//! `Installed::profile` from a host.

use std::path::Path;
use std::process::Command;

use crate::support::{demo_app_bundle as app_bundle, luabundle, present_or_skip};

/// The modules the demo app loads when its entry runs.
const APP_MODULES: [&str; 8] = [
    "app.main",
    "app.config",
    "app.util",
    "app.shapes",
    "app.shapes.circle",
    "app.shapes.square",
    "app.silent",
    "app.report",
];

/// Runs the app from `bundle` with `options`, returning stdout, stderr and the status code.
fn run(bundle: &Path, options: &[&str]) -> (String, String, Option<i32>) {
    let out = luabundle().arg("run").arg(bundle).args(options).output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// Validates `file` against `schema` (under tests/schemas) with Python's jsonschema.
fn validate(file: &Path, schema: &str) -> bool {
    let check =
        "import json, sys, jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))";
    let present = Command::new("python3").args(["-c", "import jsonschema"]).output().is_ok_and(|o| o.status.success());
    if !present_or_skip(present, "Python's jsonschema is missing", "python3-jsonschema") {
        return false;
    }
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas").join(schema);
    let out = Command::new("python3").args(["-c", check]).arg(file).arg(&schema).output().unwrap();
    assert!(
        out.status.success(),
        "{} against {}: {}",
        file.display(),
        schema.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn a_chrome_trace_holds_every_load_with_its_phases_nested() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = app_bundle(dir.path());
    let trace = dir.path().join("start.json");
    let (_, stderr, code) = run(&bundle, &["--profile-out", trace.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("wrote") && stderr.contains("8 loads"), "{stderr}");
    validate(&trace, "chrome-trace-event.schema.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let span =
        |e: &serde_json::Value| (e["ts"].as_f64().unwrap(), e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap());
    let modules: Vec<&serde_json::Value> = events.iter().filter(|e| e["cat"] == "module").collect();
    let mut names: Vec<&str> = modules.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    let mut expected = APP_MODULES.to_vec();
    expected.sort();
    assert_eq!(names, expected);
    let main = modules.iter().find(|e| e["name"] == "app.main").unwrap();
    let (start, end) = span(main);
    for module in &modules {
        let (s, e) = span(module);
        assert!(start <= s + 0.001 && e <= end + 0.001, "{} lies inside app.main's load", module["name"]);
        let args = &module["args"];
        let parts = ["read_us", "undump_us", "execute_us"].map(|k| args[k].as_f64().unwrap());
        assert!((parts.iter().sum::<f64>() - args["self_us"].as_f64().unwrap()).abs() < 0.01, "{args}");
        assert!(parts[1] > 0.0, "undumping takes time: {args}");
    }
    // Three phases per module, each inside its module's load.
    assert_eq!(events.iter().filter(|e| e["cat"] == "phase").count(), 3 * modules.len());
}

#[test]
fn a_speedscope_file_follows_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = app_bundle(dir.path());
    let file = dir.path().join("start.speedscope.json");
    let (_, stderr, code) = run(&bundle, &["--profile-out", file.to_str().unwrap(), "--profile-format", "speedscope"]);
    assert_eq!(code, Some(0), "{stderr}");
    validate(&file, "speedscope-file-format.schema.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let frames: Vec<&str> =
        json["shared"]["frames"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    for module in APP_MODULES {
        assert!(frames.contains(&module), "{module} in {frames:?}");
    }
    let timeline = &json["profiles"][0];
    assert_eq!((timeline["type"].as_str(), timeline["unit"].as_str()), (Some("evented"), Some("microseconds")));
    // Every frame opened is closed, innermost first, in time order.
    let mut open = Vec::new();
    let mut last = 0.0;
    for event in timeline["events"].as_array().unwrap() {
        let at = event["at"].as_f64().unwrap();
        assert!(at >= last);
        last = at;
        match event["type"].as_str().unwrap() {
            "O" => open.push(event["frame"].as_u64().unwrap()),
            _ => assert_eq!(open.pop(), event["frame"].as_u64()),
        }
    }
    assert!(open.is_empty());
    let memory = &json["profiles"][1];
    assert_eq!((memory["type"].as_str(), memory["unit"].as_str()), (Some("sampled"), Some("bytes")));
    assert_eq!(memory["samples"].as_array().unwrap().len(), APP_MODULES.len());
}

#[test]
fn collapsed_stacks_name_each_module_under_the_one_that_loaded_it() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = app_bundle(dir.path());
    let file = dir.path().join("start.folded");
    let (_, stderr, code) = run(&bundle, &["--profile-out", file.to_str().unwrap(), "--profile-format", "collapsed"]);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        assert!(count.parse::<u64>().is_ok(), "{line}");
        assert!(
            stack.starts_with("app.main") && ["read+verify", "undump", "execute"].iter().any(|p| stack.ends_with(p)),
            "{line}"
        );
    }
    assert!(text.lines().any(|l| l.starts_with("app.main;app.shapes;app.shapes.circle;")), "{text}");
}

#[test]
fn budgets_fail_the_run_naming_the_modules_over_them() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = app_bundle(dir.path());
    let (stdout, stderr, code) = run(&bundle, &["--max-module-time", "1us", "--max-startup", "1us"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.is_empty(), "the program ran");
    assert!(stderr.contains("budget exceeded: start-up took"), "{stderr}");
    assert!(stderr.contains("budget exceeded: app.main took"), "{stderr}");
    let (_, stderr, code) = run(&bundle, &["--max-module-time", "10s", "--max-startup", "10s"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Before the bundle too, with a repeat: the program runs three times.
    let once = run(&bundle, &[]).0;
    let out = luabundle().args(["run", "--repeat", "3", "--max-startup", "10s"]).arg(&bundle).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), once.repeat(3));
    let (_, stderr, code) = run(&bundle, &["--max-startup", "5 minutes"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is not a duration"), "{stderr}");
}

#[test]
fn a_host_gets_the_same_profile_from_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = luabundle_runtime::Bundle::open(app_bundle(dir.path())).unwrap();
    let lua = mlua::Lua::new();
    let installed = bundle.install(&lua).unwrap();
    lua.load("require('app.util') big = require('app.config')").exec().unwrap();
    let profile = installed.profile();
    assert!(profile
        .loads
        .iter()
        .all(|l| l.ok && l.read > std::time::Duration::ZERO && l.undump > std::time::Duration::ZERO));
    assert!(profile.total() > std::time::Duration::ZERO);
    assert!(profile.chrome_trace().contains("\"name\":\"app.util\""));
    assert!(profile.collapsed().contains("app.util;undump "));
}
