//! `luabundle init`: writes a `luabundle.toml` for a directory by looking at its Lua files,
//! and prints the `build.rs` and runtime code to paste.

use std::path::{Path, PathBuf};

use clap::Args;
use luabundle::config::CONFIG_FILE_NAME;

/// `luabundle init` options.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The project directory.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Replace an existing luabundle.toml.
    #[arg(long)]
    force: bool,
}

/// Directories that usually hold a project's Lua modules, tried in this order.
const USUAL_ROOTS: &[&str] = &["src", "lua", "lib"];

pub fn init(args: InitArgs) -> anyhow::Result<i32> {
    let config = args.dir.join(CONFIG_FILE_NAME);
    if config.exists() && !args.force {
        eprintln!("error: {} exists; pass --force to replace it", config.display());
        return Ok(2);
    }
    let roots: Vec<&str> = USUAL_ROOTS.iter().copied().filter(|r| has_lua_files(&args.dir.join(r))).collect();
    let roots = if roots.is_empty() && has_lua_files(&args.dir) { vec!["."] } else { roots };
    if roots.is_empty() {
        eprintln!("error: no .lua files under {}", args.dir.display());
        return Ok(2);
    }
    // Every name nothing in the roots provides is taken as provided by the host.
    let mut builder = luabundle::Builder::new();
    builder.ignore_out_dir_env(true);
    for root in &roots {
        builder.root(args.dir.join(root));
    }
    builder.external("*").no_cache(true);
    let analysis = builder.analyse()?;
    let names: Vec<&str> = analysis.discovered.modules.iter().map(|m| m.name.as_str()).collect();
    let entry = names.iter().find(|n| **n == "main" || n.ends_with(".main")).or(names.first());
    let externals: Vec<String> = analysis.graph.externals_used.iter().map(|e| format!("{e:?}")).collect();
    let quoted_roots: Vec<String> = roots.iter().map(|r| format!("{r:?}")).collect();
    let mut text = format!("roots = [{}]\n", quoted_roots.join(", "));
    if let Some(entry) = entry {
        text.push_str(&format!("entry = {entry:?}\n"));
    }
    for external in &analysis.graph.externals_used {
        if let Some(close) = luabundle::analysis::graph::closest_name(external, &analysis.discovered.modules) {
            text.push_str(&format!("# {external:?} is required but not found; did you mean {close:?}?\n"));
        }
    }
    text.push_str(&format!("externals = [{}]\n", externals.join(", ")));
    text.push_str(
        "output = \"app.bundle\"\n\n# Named module sets, stored with everything they require:\n# [profiles]\n",
    );
    if let Some(entry) = entry {
        text.push_str(&format!("# minimal = [{entry:?}]\n"));
    }
    std::fs::write(&config, text)?;
    eprintln!("wrote {} ({} modules, {} externals)", config.display(), names.len(), externals.len());
    print_snippets(&args.dir, roots[0], entry.copied());
    Ok(0)
}

/// Whether `dir` holds Lua sources (`.lua`, or Luau's `.luau`) at any depth.
fn has_lua_files(dir: &Path) -> bool {
    dir.is_dir()
        && walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "lua" || x == "luau"))
}

fn print_snippets(dir: &Path, root: &str, entry: Option<&str>) {
    let entry = entry.unwrap_or("app.main");
    // The file names the roots and the output relative to itself.
    if dir == Path::new(".") {
        println!("Build it:  luabundle build");
    } else {
        println!("Build it:  luabundle build --config {}", dir.join(CONFIG_FILE_NAME).display());
    }
    println!();
    println!(
        "Or from build.rs ([build-dependencies] luabundle, default-features = false, features = [\"{}\"]):",
        luabundle::flavour::NAME
    );
    println!();
    println!("    fn main() {{");
    println!("        luabundle::Builder::new().root({root:?}).entry({entry:?}).build();");
    println!("    }}");
    println!();
    println!("and in the program ([dependencies] luabundle-runtime, mlua):");
    println!();
    println!("    static APP: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/app.bundle\"));");
    println!("    let bundle = luabundle_runtime::Bundle::from_static(APP)?;");
    println!("    let lua = mlua::Lua::new();");
    println!("    bundle.install(&lua)?;");
    println!("    lua.load(\"require('{entry}')\").exec()?;");
}
