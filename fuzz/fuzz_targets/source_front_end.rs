//! Arbitrary bytes as a source file: normalise, guard nesting, parse, find requires. Must
//! give diagnostics or sites, never a crash or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    luabundle_fuzz_support::source_front_end(data);
});

mod luabundle_fuzz_support {
    include!("../../tests/fuzz_support.rs");
}
