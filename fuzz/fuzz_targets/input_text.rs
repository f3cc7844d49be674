//! Plain-text sentence input: the report's `RecordReader` and the strict reader of `compare`/the UI. The checks are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::run("input_text", data));
