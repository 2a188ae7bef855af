//! Arbitrary bytes, read as (lossy) UTF-8, given to the loader.
#![no_main]

#[path = "check.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::load_and_check(&String::from_utf8_lossy(data));
});
