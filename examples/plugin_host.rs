//! A plugin host: bundles `fixtures/host_app` (with its luabundle.toml: externals, a profile
//! and a group), then runs it twice — once with everything, once with only the `minimal`
//! profile — giving the Lua code a native `llm` module implemented in Rust and logging every
//! load.
//!
//! Run with `cargo run --example plugin_host`.

use std::error::Error;

use luabundle_runtime::{Bundle, LoadEvent};
use mlua::{Lua, Value};

fn main() -> Result<(), Box<dyn Error>> {
    // Build the bundle (a build.rs would do this at compile time).
    let out = std::env::temp_dir().join("luabundle-plugin-host.bundle");
    let mut builder = luabundle::Builder::new();
    builder.config_file(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/host_app/luabundle.toml"))?;
    builder.output(&out).no_cache(true).try_build()?;
    let bundle = Bundle::open(&out)?;

    // The native module: initialised on the first require("llm"), not before.
    let llm = |lua: &Lua| -> mlua::Result<Value> {
        let module = lua.create_table()?;
        module
            .set("complete", lua.create_function(|_, prompt: String| Ok(format!("(model says hello to {prompt})")))?)?;
        Ok(Value::Table(module))
    };

    let lua = Lua::new();
    let installed = bundle
        .installer()
        .native("llm", llm)
        .on_load(|event| {
            if let LoadEvent::After { module, duration, .. } = event {
                println!("  loaded {module} in {} µs", duration.as_micros());
            }
        })
        .install(&lua)?;
    println!("full bundle:");
    let answer: String = lua.load("return require('ai').uses_native.answer()").eval()?;
    println!("  answer: {answer}");
    for s in installed.stats() {
        println!("  {:<18} {:?} loads={} bytes={}", s.module, s.origin, s.loads, s.bytes);
    }

    let minimal = Lua::new();
    bundle.installer().profile("minimal").install(&minimal)?;
    println!("minimal profile:");
    let doubled: i64 = minimal.load("return require('app.util').double(21)").eval()?;
    println!("  app.util.double(21) = {doubled}");
    let refused = minimal.load("require('app.extra')").exec().unwrap_err();
    println!("  app.extra: {}", refused.to_string().lines().next().unwrap_or_default());
    Ok(())
}
