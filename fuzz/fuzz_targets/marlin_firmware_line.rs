//! The firmware-line parser never panics, whatever the bytes.
#![no_main]

use easyprint_marlin::FirmwareLine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = FirmwareLine::parse(data);
});
