//! PrusaSlicer configuration: printer, print and filament presets, each a flat `.ini`
//! (PrusaSlicer's `--save` / "Export Config" format) or a named preset of a config bundle
//! (`[printer:Name]` sections with `inherits`, like the vendor bundles in
//! `/usr/share/PrusaSlicer/profiles`), merged in PrusaSlicer's order: printer, print, filament,
//! then the quality's layer height, then the user's overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::SliceError;

/// Deepest `inherits` chain followed (the vendor bundles use 3 or 4 levels).
const MAX_INHERITS_DEPTH: usize = 16;

/// Keys of bundle presets that describe the preset (inheritance, compatibility, naming), not
/// the print: never passed to the engine.
const PRESET_METADATA: &[&str] = &[
    "inherits",
    "renamed_from",
    "alias",
    "compatible_printers",
    "compatible_printers_condition",
    "compatible_prints",
    "compatible_prints_condition",
    "filament_vendor",
    "printer_variant",
    "print_settings_id",
    "printer_settings_id",
    "filament_settings_id",
    "default_print_profile",
    "default_filament_profile",
];

/// One preset: a flat `.ini`, or the named `[kind:name]` section of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrusaPreset {
    /// The file.
    pub path: PathBuf,
    /// The preset's name in a bundle (`Creality Ender-3 (0.4 mm nozzle)`); `None` for a flat
    /// `.ini`.
    pub name: Option<String>,
}

impl PrusaPreset {
    /// A flat `.ini` file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            name: None,
        }
    }

    /// Preset `name` of the bundle at `path`.
    pub fn bundle(path: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            name: Some(name.into()),
        }
    }
}

/// PrusaSlicer's three presets, loaded in this order (a later one wins where they overlap).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrusaPresets {
    /// Printer preset (bed, nozzle, start G-code...).
    pub printer: Option<PrusaPreset>,
    /// Print preset (layer height, infill, supports...).
    pub print: Option<PrusaPreset>,
    /// Filament preset (temperatures, diameter...).
    pub filament: Option<PrusaPreset>,
}

/// Parse PrusaSlicer's `key = value` ini (flat: sections are ignored).
pub fn parse_ini(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with(';'))
        .filter(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// A bundle's sections: `(kind, name) -> key -> value`.
type Sections = BTreeMap<(String, String), BTreeMap<String, String>>;

fn parse_bundle(text: &str) -> Sections {
    let mut out = Sections::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            continue;
        }
        if let Some(header) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            current = header
                .split_once(':')
                .map(|(k, n)| (k.trim().to_owned(), n.trim().to_owned()));
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
            continue;
        }
        if let (Some(c), Some((k, v))) = (&current, t.split_once('=')) {
            out.entry(c.clone())
                .or_default()
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

fn read(path: &Path) -> Result<String, SliceError> {
    std::fs::read_to_string(path).map_err(SliceError::io(format!(
        "reading PrusaSlicer preset {}",
        path.display()
    )))
}

fn preset_error(path: &Path, message: String) -> SliceError {
    SliceError::Preset {
        path: path.to_owned(),
        message,
    }
}

/// The values of preset `name` of `kind` in `sections`, its `inherits` parents applied first
/// (in the order listed), its own keys last.
fn resolve(
    sections: &Sections,
    path: &Path,
    kind: &str,
    name: &str,
    depth: usize,
) -> Result<BTreeMap<String, String>, SliceError> {
    if depth > MAX_INHERITS_DEPTH {
        return Err(preset_error(
            path,
            format!("`inherits` of [{kind}:{name}] loops or is deeper than {MAX_INHERITS_DEPTH}"),
        ));
    }
    let Some(own) = sections.get(&(kind.to_owned(), name.to_owned())) else {
        let available: Vec<&str> = sections
            .keys()
            .filter(|(k, n)| k == kind && !n.starts_with('*'))
            .map(|(_, n)| n.as_str())
            .collect();
        let shown = available.len().min(60);
        let more = match available.len() - shown {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(preset_error(
            path,
            format!(
                "no [{kind}:{name}] preset; there are: {}{more}",
                available[..shown].join("; ")
            ),
        ));
    };
    let mut values = BTreeMap::new();
    if let Some(parents) = own.get("inherits") {
        for parent in parents.split(';').map(|p| p.trim().trim_matches('"')) {
            if !parent.is_empty() {
                values.extend(resolve(sections, path, kind, parent, depth + 1)?);
            }
        }
    }
    values.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(values)
}

/// The values of one preset.
pub fn load_preset(
    preset: &PrusaPreset,
    kind: &str,
) -> Result<BTreeMap<String, String>, SliceError> {
    let text = read(&preset.path)?;
    match &preset.name {
        None => Ok(parse_ini(&text)),
        Some(name) => resolve(&parse_bundle(&text), &preset.path, kind, name, 0),
    }
}

/// The print preset a quality names: `Some(layer height)` for a number (`0.2`, `0.20mm`).
pub fn quality_layer_height(quality: &str) -> Option<f64> {
    let number = quality.trim().trim_end_matches("mm").trim();
    number
        .parse::<f64>()
        .ok()
        .filter(|h| *h > 0.0 && h.is_finite())
}

/// Whether a preset key is preset metadata (never given to the engine).
pub fn is_preset_metadata(key: &str) -> bool {
    PRESET_METADATA.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = "[vendor]\nname = X\n\n[print:*common*]\nlayer_height = 0.3\nperimeters = 2\n\n\
        [print:*fine*]\nlayer_height = 0.1\n\n[print:Fine]\ninherits = *common*; *fine*\nfill_density = 20%\n\n\
        [print:Loop]\ninherits = Loop\n";

    #[test]
    fn bundle_presets_inherit_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.ini");
        std::fs::write(&path, BUNDLE).unwrap();
        let v = load_preset(&PrusaPreset::bundle(&path, "Fine"), "print").unwrap();
        assert_eq!(v["layer_height"], "0.1");
        assert_eq!(v["perimeters"], "2");
        assert_eq!(v["fill_density"], "20%");
        let missing = load_preset(&PrusaPreset::bundle(&path, "Coarse"), "print").unwrap_err();
        assert!(missing.to_string().contains("Fine"), "{missing}");
        let looped = load_preset(&PrusaPreset::bundle(&path, "Loop"), "print").unwrap_err();
        assert!(looped.to_string().contains("loops"), "{looped}");
    }

    #[test]
    fn qualities_are_layer_heights() {
        assert_eq!(quality_layer_height("0.2"), Some(0.2));
        assert_eq!(quality_layer_height("0.20mm"), Some(0.2));
        assert_eq!(quality_layer_height("draft"), None);
        assert_eq!(quality_layer_height("-1"), None);
    }
}
