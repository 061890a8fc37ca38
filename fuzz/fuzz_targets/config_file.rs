//! Arbitrary bytes as one of the files luabundle reads besides sources and bundles (see
//! `tests/fuzz_support.rs`). Must give an error or a result, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    luabundle_fuzz_support::config_file(data);
});

mod luabundle_fuzz_support {
    include!("../../tests/fuzz_support.rs");
}
