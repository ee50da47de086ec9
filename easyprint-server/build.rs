//! Embeds the built web interface (`web/dist/`, made by `scripts/build-web`) into the binary.
//!
//! Generates `$OUT_DIR/web_assets.rs`: one `include_bytes!` per file with its content type and,
//! when the build script of `web/` wrote one, its precompressed `.gz` twin. When `web/dist/` does
//! not exist the table is empty and the server still compiles; `/` then names the command that
//! builds the interface. A build script rather than a crate: the table is a few lines, and the
//! assets are already content-hashed and gzipped by the web build, so nothing is left to do at
//! compile or run time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("web").join("dist");
    // A directory is scanned recursively by cargo; `web/` always exists (it holds the sources),
    // so creating `dist/` later is noticed too.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed={}", dist.display());
    } else {
        println!("cargo:rerun-if-changed={}", manifest.join("web").display());
    }
    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &mut files);
    }
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let name = file.to_string_lossy();
        if name.ends_with(".gz") {
            continue;
        }
        let relative = file
            .strip_prefix(&dist)
            .expect("collected under dist")
            .to_string_lossy()
            .replace('\\', "/");
        let gz = PathBuf::from(format!("{name}.gz"));
        let gzip = if files.contains(&gz) {
            format!("Some(include_bytes!({:?}))", gz.display().to_string())
        } else {
            "None".to_owned()
        };
        writeln!(
            table,
            "    WebAsset {{ path: {relative:?}, content_type: {:?}, body: include_bytes!({:?}), gzip: {gzip} }},",
            content_type(&relative),
            file.display().to_string(),
        )
        .expect("writing to a String");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("web_assets.rs"), table).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("web/dist is readable");
    for entry in entries {
        let path = entry.expect("web/dist is readable").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
