//! STL and OBJ readers plus validation on arbitrary bytes: typed errors, never panics.
#![no_main]

use easyprint_slicer::model::{parse_obj, parse_stl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mesh) = parse_stl(data) {
        let _ = mesh.validate();
    }
    if let Ok(mesh) = parse_obj(data) {
        let _ = mesh.validate();
    }
});
