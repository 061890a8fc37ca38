//! The `luabundle` command-line tool.

mod cli;

/// The command allocates many small strings (module records, syntax trees); mimalloc does
/// that faster than the system allocator. Library users keep their own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
