//! WiC input: the report's `RecordReader` and the evaluation's `WicSet::read`. The checks are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::run("input_wic", data));
