//! JSONL report input (`{"word", "sentence", "span"?, "sense"?}` per line). The checks are in `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::run("input_jsonl", data));
