//! The `luabundle` command-line tool.

mod cli;

/// The command allocates many small strings (module records, syntax trees); mimalloc does
/// that faster than the system allocator. Library users keep their own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // No transparent huge pages: faulting one in (after other processes freed memory) can
    // stall a short run such as `luabundle run` for tens of milliseconds.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only changes this process's policy.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    std::process::exit(cli::main());
}
