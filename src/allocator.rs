//! The command's allocator: the system's until the command is known, then mimalloc for every
//! command but `run`.
//!
//! Builds allocate many small strings (module records, syntax trees), which mimalloc serves
//! about a fifth faster than the system allocator. But mimalloc's first allocation sets up
//! an arena, which costs `luabundle run` about 0.5 ms of a 3 ms start, and `run` allocates
//! little. So allocations start in the system allocator (the Rust runtime allocates before
//! `main`), [`use_mimalloc`] switches new allocations over, and each free goes to whichever
//! allocator owns the pointer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

/// The system allocator, or mimalloc once [`use_mimalloc`] was called.
pub struct Switching;

/// Whether new allocations go to mimalloc. Set once, early in `main`, before any thread.
static MIMALLOC: AtomicBool = AtomicBool::new(false);

/// Sends every later allocation to mimalloc.
///
/// mimalloc normally sets itself up from a load-time constructor, before `main`, which costs a
/// `luabundle run` that never uses it about 0.2 ms. Built with `MI_PRIM_HAS_PROCESS_ATTACH`
/// (`.cargo/config.toml` sets it) it has no constructor, and the set-up the constructor would
/// have done runs here instead; built without it, the constructor already ran and nothing is
/// repeated.
pub fn use_mimalloc() {
    // SAFETY: called once, from the main thread, before any thread exists and before any
    // allocation goes to mimalloc: the state its process-load hook expects.
    unsafe {
        if !_mi_process_is_initialized {
            _mi_auto_process_init();
        }
    }
    MIMALLOC.store(true, Ordering::Release);
}

// mimalloc's process-load hook and its "set up" flag. They are internal to the C library but
// linked statically into this binary; the lock file pins the version they come from.
unsafe extern "C" {
    static _mi_process_is_initialized: bool;
    fn _mi_auto_process_init();
}

fn mimalloc_now() -> bool {
    MIMALLOC.load(Ordering::Acquire)
}

/// Whether mimalloc owns `ptr`. Before the switch no pointer is mimalloc's; after it, its
/// page map answers (and says no for any pointer outside its arenas).
fn owned_by_mimalloc(ptr: *mut u8) -> bool {
    // SAFETY: mi_is_in_heap_region only reads mimalloc's page map, for any pointer value.
    mimalloc_now() && unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) }
}

// SAFETY: every block is freed, resized or zero-allocated by the allocator that made it:
// `owned_by_mimalloc` tells the two apart, and a resize across them copies.
unsafe impl GlobalAlloc for Switching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        unsafe {
            if mimalloc_now() {
                MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        unsafe {
            if mimalloc_now() {
                MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` goes back to the allocator that owns it, with its layout.
        unsafe {
            if owned_by_mimalloc(ptr) {
                MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let owner_is_mimalloc = owned_by_mimalloc(ptr);
        // SAFETY: a resize within one allocator is forwarded; across them, the block is
        // copied into a new one from the current allocator and the old one freed by its owner.
        unsafe {
            match (owner_is_mimalloc, mimalloc_now()) {
                (true, true) => MiMalloc.realloc(ptr, layout, new_size),
                (false, false) => System.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}
