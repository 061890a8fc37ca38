//! Writes a generated Lua project for benchmarks: `cargo run --release --example generate_tree
//! -- DIR COUNT [MODULE_BYTES]` creates `DIR/gen/m00000.lua` ... with COUNT modules of about
//! MODULE_BYTES bytes each (default 5,500, as in the 10,000-module / 55 MB benchmark tree).
//! `benches/compare.sh` uses it.

#[path = "../benches/support.rs"]
mod support;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(count)) = (args.first(), args.get(1).and_then(|c| c.parse::<usize>().ok())) else {
        eprintln!("usage: generate_tree DIR COUNT [MODULE_BYTES]");
        std::process::exit(2);
    };
    let module_bytes = args.get(2).and_then(|b| b.parse().ok()).unwrap_or(5_500);
    support::generate_sized_project(std::path::Path::new(dir), count, module_bytes);
}
