//! Runnable examples of the easyprint crates; see the `[[example]]` list in Cargo.toml.
