//! The `luabundle` command-line tool.

mod allocator;
mod cli;

/// The system allocator for `luabundle run`, mimalloc for the rest (see `allocator.rs`).
/// Library users keep their own allocator.
#[global_allocator]
static ALLOCATOR: allocator::Switching = allocator::Switching;

fn main() {
    if std::env::args_os().nth(1).is_none_or(|command| command != "run") {
        allocator::use_mimalloc();
    }
    // No transparent huge pages: faulting one in (after other processes freed memory) can
    // stall a short run such as `luabundle run` for tens of milliseconds.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only changes this process's policy.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    std::process::exit(cli::main());
}
