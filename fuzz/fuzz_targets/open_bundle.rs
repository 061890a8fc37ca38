//! Arbitrary bytes, and valid bundles with bytes changed, opened as bundles: must give a
//! typed error or a bundle whose every module either verifies or is refused, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    luabundle_fuzz_support::open_bundle(data);
});

mod luabundle_fuzz_support {
    include!("../../tests/fuzz_support.rs");
}
