//! The finalfusion reader on small files. The checks are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::run("vectors_finalfusion", data));
