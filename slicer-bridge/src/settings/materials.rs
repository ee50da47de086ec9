//! Cura material profiles (`*.xml.fdm_material`, Debian package `fdm-materials`): an XML file
//! per material with common settings, per-machine sections and per-nozzle (hotend) sections,
//! read as Cura's `XmlMaterialProfile` reads them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::definitions::DefinitionError;

/// File name suffix of a material profile.
pub const MATERIAL_SUFFIX: &str = ".xml.fdm_material";

/// Largest material file read (the shipped ones are under 40 KB): bounds memory on bad input.
const MAX_MATERIAL_FILE: u64 = 4 * 1024 * 1024;

const CURA_NS: &[u8] = b"http://www.ultimaker.com/cura";

/// XML setting names → Cura setting keys (Cura's `XmlMaterialProfile` map).
const SETTING_MAP: &[(&str, &str)] = &[
    ("print temperature", "default_material_print_temperature"),
    ("heated bed temperature", "default_material_bed_temperature"),
    ("standby temperature", "material_standby_temperature"),
    ("processing temperature graph", "material_flow_temp_graph"),
    ("print cooling", "cool_fan_speed"),
    ("retraction amount", "retraction_amount"),
    ("retraction speed", "retraction_speed"),
    ("adhesion tendency", "material_adhesion_tendency"),
    ("surface energy", "material_surface_energy"),
    ("shrinkage percentage", "material_shrinkage_percentage"),
    ("build volume temperature", "build_volume_temperature"),
    (
        "anti ooze retract position",
        "material_anti_ooze_retracted_position",
    ),
    (
        "anti ooze retract speed",
        "material_anti_ooze_retraction_speed",
    ),
    (
        "break preparation position",
        "material_break_preparation_retracted_position",
    ),
    (
        "break preparation speed",
        "material_break_preparation_speed",
    ),
    (
        "break preparation temperature",
        "material_break_preparation_temperature",
    ),
    ("break position", "material_break_retracted_position"),
    ("flush purge speed", "material_flush_purge_speed"),
    ("flush purge length", "material_flush_purge_length"),
    (
        "end of filament purge speed",
        "material_end_of_filament_purge_speed",
    ),
    (
        "end of filament purge length",
        "material_end_of_filament_purge_length",
    ),
    ("maximum park duration", "material_maximum_park_duration"),
    ("no load move factor", "material_no_load_move_factor"),
    ("break speed", "material_break_speed"),
    ("break temperature", "material_break_temperature"),
];

/// Product names in material files → machine ids, `#` standing for a number (Cura's
/// `product_to_id.json`); other names go through [`possible_ids_from_name`].
const PRODUCT_MAP: &[(&str, &str)] = &[
    ("Ultimaker #", "ultimaker#"),
    ("Ultimaker # Extended", "ultimaker#_extended"),
    ("Ultimaker # Extended+", "ultimaker#_extended_plus"),
    ("Ultimaker # Go", "ultimaker#_go"),
    ("Ultimaker #+", "ultimaker#_plus"),
    ("Ultimaker #+ Connect", "ultimaker#_plus_connect"),
    ("Ultimaker S#", "ultimaker_s#"),
    ("Ultimaker Original", "ultimaker_original"),
    ("Ultimaker Original+", "ultimaker_original_plus"),
    (
        "Ultimaker Original Dual Extrusion",
        "ultimaker_original_dual",
    ),
    ("IMADE3D JellyBOX", "imade3d_jellybox"),
    ("DUAL600", "strateo3d"),
    ("IDEX420", "strateo3d_IDEX420"),
    ("IDEX420 Duplicate", "strateo3d_IDEX420_duplicate"),
    ("IDEX420 Mirror", "strateo3d_IDEX420_mirror"),
];

/// Settings of one level of a material file (common, machine or hotend).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaterialSettings {
    /// Cura setting key → literal text.
    pub values: BTreeMap<String, String>,
    /// `hardware compatible` at this level, if given.
    pub compatible: Option<bool>,
}

/// A `<machine>` section: the machines it names, their settings and nozzle sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MachineSection {
    /// `product` attributes of its `<machine_identifier>`s.
    pub products: Vec<String>,
    /// Settings for these machines.
    pub settings: MaterialSettings,
    /// `<hotend id="...">` sections: variant (nozzle) name and its settings.
    pub hotends: Vec<(String, MaterialSettings)>,
}

/// One parsed material file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaterialFile {
    /// The file's stem (`generic_pla_175`): Cura's `base_file` and the base material's id.
    pub base_file: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Display name (`label`, else material and colour).
    pub name: String,
    /// Brand (`Generic`).
    pub brand: String,
    /// Material type (`PLA`): qualities fall back to any material of the same type.
    pub material_type: String,
    /// Colour name.
    pub color_name: String,
    /// The material's GUID.
    pub guid: String,
    /// Filament diameter, mm.
    pub diameter: Option<f64>,
    /// Settings for every machine.
    pub common: MaterialSettings,
    /// Machine-specific sections.
    pub machines: Vec<MachineSection>,
}

impl MaterialFile {
    /// Read and parse a material file.
    pub fn read(path: &Path) -> Result<Self, DefinitionError> {
        let io = |source| DefinitionError::Io {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_MATERIAL_FILE {
            return Err(invalid(
                path,
                &format!("{len} bytes, more than the {MAX_MATERIAL_FILE} accepted"),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let base = name.strip_suffix(MATERIAL_SUFFIX).unwrap_or(name);
        Self::parse(&text, base, path)
    }

    /// Parse the XML `text` of material `base_file` (`path` is for messages).
    pub fn parse(text: &str, base_file: &str, path: &Path) -> Result<Self, DefinitionError> {
        let mut m = MaterialFile {
            base_file: base_file.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        };
        let mut reader = NsReader::from_str(text);
        reader.config_mut().trim_text(true);
        // Element names from the root down (local names).
        let mut open: Vec<String> = Vec::new();
        let mut label: Option<String> = None;
        // The setting being read: key, whether Cura-namespaced, graph points so far.
        let mut setting: Option<(String, bool, Vec<String>)> = None;
        let mut text_buf = String::new();
        loop {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| invalid(path, &format!("XML error: {e}")))?;
            let cura_ns = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == CURA_NS);
            match event {
                Event::Start(e) => {
                    let local = local_name(&e);
                    text_buf.clear();
                    start_element(&mut m, &open, &local, &e, cura_ns, &mut setting);
                    open.push(local);
                }
                Event::Empty(e) => {
                    let local = local_name(&e);
                    start_element(&mut m, &open, &local, &e, cura_ns, &mut setting);
                    if local == "point" {
                        continue;
                    }
                    open.push(local);
                    end_element(&mut m, &mut open, &mut setting, "", &mut label);
                }
                Event::Text(t) => {
                    let t = t
                        .unescape()
                        .map_err(|e| invalid(path, &format!("XML text: {e}")))?;
                    text_buf.push_str(&t);
                }
                Event::CData(t) => text_buf.push_str(&String::from_utf8_lossy(&t)),
                Event::End(_) => {
                    let text = std::mem::take(&mut text_buf);
                    end_element(&mut m, &mut open, &mut setting, text.trim(), &mut label);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !open.is_empty() {
            return Err(invalid(path, "XML ends inside an element"));
        }
        if m.material_type.is_empty() && m.guid.is_empty() {
            return Err(invalid(
                path,
                "no <metadata> with a material name or GUID: not a Cura material profile",
            ));
        }
        m.name = match label {
            Some(l) if !l.is_empty() => l,
            _ if m.color_name != "Generic" && !m.color_name.is_empty() => {
                format!("{} {}", m.color_name, m.material_type)
            }
            _ => m.material_type.clone(),
        };
        Ok(m)
    }

    /// Whether a `<machine>` section names `machine_id`.
    pub fn section_for(&self, machine_id: &str) -> Option<&MachineSection> {
        self.machines.iter().find(|s| {
            s.products
                .iter()
                .any(|p| product_machine_ids(p).iter().any(|id| id == machine_id))
        })
    }
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn start_element(
    m: &mut MaterialFile,
    open: &[String],
    local: &str,
    e: &BytesStart<'_>,
    cura_ns: bool,
    setting: &mut Option<(String, bool, Vec<String>)>,
) {
    let parent = open.last().map(String::as_str);
    match (parent, local) {
        (Some("settings"), "machine") => m.machines.push(MachineSection::default()),
        (Some("machine"), "machine_identifier") => {
            if let (Some(section), Some(p)) = (m.machines.last_mut(), attr(e, "product")) {
                section.products.push(p);
            }
        }
        (Some("machine"), "hotend") => {
            if let Some(section) = m.machines.last_mut() {
                section.hotends.push((
                    attr(e, "id").unwrap_or_default(),
                    MaterialSettings::default(),
                ));
            }
        }
        (_, "setting") => {
            *setting = attr(e, "key").map(|k| (k, cura_ns, Vec::new()));
        }
        (Some("setting"), "point") => {
            if let (Some((_, _, points)), Some(f), Some(t)) =
                (setting.as_mut(), attr(e, "flow"), attr(e, "temperature"))
            {
                if let (Ok(f), Ok(t)) = (f.trim().parse::<f64>(), t.trim().parse::<f64>()) {
                    points.push(format!("[{f:?}, {t:?}]"));
                }
            }
        }
        _ => {}
    }
}

fn end_element(
    m: &mut MaterialFile,
    open: &mut Vec<String>,
    setting: &mut Option<(String, bool, Vec<String>)>,
    text: &str,
    label: &mut Option<String>,
) {
    let Some(local) = open.pop() else { return };
    let parent = open.last().map(String::as_str);
    let grandparent = open.len().checked_sub(2).map(|i| open[i].as_str());
    match (grandparent, parent, local.as_str()) {
        (Some("metadata"), Some("name"), field) => match field {
            "brand" => m.brand = text.to_owned(),
            "material" => m.material_type = text.to_owned(),
            "color" => m.color_name = text.to_owned(),
            "label" => *label = Some(text.to_owned()),
            _ => {}
        },
        (_, Some("metadata"), "GUID") => m.guid = text.to_owned(),
        (_, Some("properties"), "diameter") => m.diameter = text.parse().ok(),
        (_, level, "setting") => {
            let Some((key, cura_ns, points)) = setting.take() else {
                return;
            };
            let target = match level {
                Some("settings") => Some(&mut m.common),
                Some("machine") => m.machines.last_mut().map(|s| &mut s.settings),
                Some("hotend") => m
                    .machines
                    .last_mut()
                    .and_then(|s| s.hotends.last_mut())
                    .map(|h| &mut h.1),
                _ => None,
            };
            let Some(target) = target else { return };
            if cura_ns {
                // Cura-namespaced settings use Cura's keys; yes/no are booleans.
                let value = match text.to_ascii_lowercase().as_str() {
                    "yes" => "True".to_owned(),
                    "no" => "False".to_owned(),
                    _ => text.to_owned(),
                };
                target.values.insert(key, value);
            } else if key == "hardware compatible" {
                target.compatible = Some(matches!(text, "yes" | "unknown"));
            } else if let Some((_, cura_key)) = SETTING_MAP.iter().find(|(k, _)| *k == key) {
                let value = if key == "processing temperature graph" {
                    format!("[{}]", points.join(", "))
                } else {
                    text.to_owned()
                };
                target.values.insert((*cura_key).to_owned(), value);
            }
        }
        _ => {}
    }
}

/// The machine ids a `product` attribute can mean (Cura's product map, else its name rules:
/// spaces removed, spaces as underscores, numbers joined to the word before them).
pub fn product_machine_ids(product: &str) -> Vec<String> {
    for (pattern, id) in PRODUCT_MAP {
        if let Some(number) = match_pattern(pattern, product) {
            return vec![id.replace('#', &number)];
        }
    }
    possible_ids_from_name(product)
}

fn match_pattern(pattern: &str, product: &str) -> Option<String> {
    match pattern.split_once('#') {
        None => (pattern == product).then(String::new),
        Some((pre, post)) => {
            let middle = product.strip_prefix(pre)?.strip_suffix(post)?;
            (!middle.is_empty() && middle.bytes().all(|b| b.is_ascii_digit()))
                .then(|| middle.to_owned())
        }
    }
}

/// Cura's `getPossibleDefinitionIDsFromName`.
pub fn possible_ids_from_name(name: &str) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut merged: Vec<String> = Vec::new();
    for part in lower.split(' ').filter(|p| !p.is_empty()) {
        match merged.last_mut() {
            Some(last) if part.bytes().all(|b| b.is_ascii_digit()) => last.push_str(part),
            _ => merged.push(part.to_owned()),
        }
    }
    let mut ids = vec![
        lower.replace(' ', ""),
        lower.replace(' ', "_"),
        merged.join("_"),
    ];
    ids.sort();
    ids.dedup();
    ids
}

fn invalid(path: &Path, message: &str) -> DefinitionError {
    DefinitionError::Invalid {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<fdmmaterial xmlns="http://www.ultimaker.com/material" xmlns:cura="http://www.ultimaker.com/cura" version="1.3">
  <metadata>
    <name><brand>Acme</brand><material>PETG</material><color>Red &amp; Hot</color></name>
    <GUID>1234</GUID>
  </metadata>
  <properties><density>1.27</density><diameter>1.75</diameter></properties>
  <settings>
    <setting key="print temperature">235</setting>
    <setting key="processing temperature graph"><point flow="2" temperature="230"/><point flow="10" temperature="250"/></setting>
    <setting key="unknown thing">1</setting>
    <cura:setting key="retraction_combing">no</cura:setting>
    <machine>
      <machine_identifier manufacturer="X" product="Ultimaker 3 Extended"/>
      <machine_identifier manufacturer="X" product="Acme Mega 2"/>
      <setting key="heated bed temperature">80</setting>
      <hotend id="AA 0.4"><setting key="hardware compatible">no</setting><setting key="print temperature">240</setting></hotend>
      <hotend id="BB 0.4"/>
    </machine>
  </settings>
</fdmmaterial>"#;

    #[test]
    fn parses_levels_namespaces_and_graphs() {
        let m = MaterialFile::parse(SAMPLE, "acme_petg", Path::new("x")).unwrap();
        assert_eq!(
            (m.brand.as_str(), m.material_type.as_str(), m.guid.as_str()),
            ("Acme", "PETG", "1234")
        );
        assert_eq!(m.name, "Red & Hot PETG");
        assert_eq!(m.diameter, Some(1.75));
        assert_eq!(m.common.values["default_material_print_temperature"], "235");
        assert_eq!(
            m.common.values["material_flow_temp_graph"],
            "[[2.0, 230.0], [10.0, 250.0]]"
        );
        assert_eq!(m.common.values["retraction_combing"], "False");
        assert!(!m.common.values.contains_key("unknown thing"));
        let s = m.section_for("ultimaker3_extended").unwrap();
        assert_eq!(s.settings.values["default_material_bed_temperature"], "80");
        assert_eq!(s.hotends.len(), 2);
        assert_eq!(s.hotends[0].0, "AA 0.4");
        assert_eq!(s.hotends[0].1.compatible, Some(false));
        assert!(m.section_for("acme_mega2").is_some());
        assert!(m.section_for("ultimaker3").is_none());
    }

    #[test]
    fn rejects_what_is_not_a_material() {
        for bad in ["<a><b></a>", "<fdmmaterial></fdmmaterial>", "<x", ""] {
            assert!(
                MaterialFile::parse(bad, "b", Path::new("b")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn product_names_map_to_machine_ids() {
        assert_eq!(product_machine_ids("Ultimaker S5"), ["ultimaker_s5"]);
        assert_eq!(product_machine_ids("Ultimaker 2+"), ["ultimaker2_plus"]);
        assert_eq!(
            product_machine_ids("IMADE3D JellyBOX"),
            ["imade3d_jellybox"]
        );
        assert!(product_machine_ids("creality_ender3").contains(&"creality_ender3".to_owned()));
        assert!(product_machine_ids("Acme Mega 2").contains(&"acme_mega2".to_owned()));
    }
}
