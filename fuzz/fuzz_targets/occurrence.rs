//! The occurrence finder, every `Locator` kind: arbitrary sentence and word. The checks are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::run("occurrence", data));
