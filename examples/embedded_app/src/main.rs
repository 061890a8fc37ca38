//! Embeds the bundle that build.rs wrote and runs its entry module.

static APP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/app.bundle"));

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bundle = luabundle_runtime::Bundle::from_static(APP)?;
    let lua = mlua::Lua::new();
    bundle.install(&lua)?;
    lua.load("require('app.main').start()").exec()?;

    // The same bundle through the convenience macro.
    let same = luabundle_runtime::include_bundle!("app.bundle")?;
    assert_eq!(same.index().unwrap(), bundle.index().unwrap());
    Ok(())
}
