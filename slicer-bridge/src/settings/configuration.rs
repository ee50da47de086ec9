//! Cura's profile stack as its front end builds it: for each extruder a nozzle variant, a
//! material and a quality (per material where the machine has such profiles), an intent, and a
//! global quality — chosen by the rules of Cura's container tree (`MachineNode`, `VariantNode`,
//! `MaterialNode`, `QualityNode`, `CuraStackBuilder`).
//!
//! Containers, top wins (Cura's `CuraContainerStack` order): user → intent → quality →
//! material → variant → definition changes → definition. The global stack has the global
//! quality and no intent, material or nozzle variant; each extruder stack ends in the global
//! stack.
//!
//! Without material profiles (Debian's `cura` resources ship none; they are in the
//! `fdm-materials` package) every extruder gets the global quality, as Cura does for a material
//! it has no profiles for, and the material settings keep the definitions' defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use super::definitions::{DefinitionError, MachineDefinition, QualityProfile, Resources};
use super::materials::{MaterialFile, MATERIAL_SUFFIX};

/// Which quality profile to apply under the user's overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QualityChoice {
    /// The machine's preferred quality if the chosen nozzles and materials have it (what Cura
    /// starts with), else `normal`, else `standard`, else the finest available.
    #[default]
    Preferred,
    /// No quality profile: the machine definition's own values.
    None,
    /// A named `quality_type` (`draft`, `standard`, `high`...).
    Named(String),
}

/// What is loaded in one extruder (`None`: what Cura would pick).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtruderChoice {
    /// Nozzle variant name (`0.4mm Nozzle`, `AA 0.4`).
    pub variant: Option<String>,
    /// Material base file id (`generic_pla_175`).
    pub material: Option<String>,
}

/// A machine configuration: nozzles, materials, quality and intent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Nozzle variant for every extruder (unless [`Self::extruders`] says otherwise).
    pub variant: Option<String>,
    /// Material for every extruder (unless [`Self::extruders`] says otherwise).
    pub material: Option<String>,
    /// Per-extruder choices, by position.
    pub extruders: BTreeMap<usize, ExtruderChoice>,
    /// Quality profile.
    pub quality: QualityChoice,
    /// Intent category (`engineering`, `visual`, `quick`); `None` or `default`: no intent.
    pub intent: Option<String>,
}

/// A material as Cura loads it for one machine and nozzle: the file's common settings, then its
/// section for the machine, then its section for the nozzle.
#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    /// Container id: the base file, `<base>_<machine>` or `<base>_<machine>_<nozzle>`.
    pub id: String,
    /// Base file id (`generic_pla_175`): what a user picks.
    pub base_file: String,
    /// Display name (`PLA`).
    pub name: String,
    /// Brand (`Generic`).
    pub brand: String,
    /// Material type (`PLA`).
    pub material_type: String,
    /// GUID.
    pub guid: String,
    /// Filament diameter, mm.
    pub diameter: Option<f64>,
    /// Diameter rounded as Cura compares it (2 for 1.75 mm, 3 for 2.85 mm).
    pub approximate_diameter: Option<i64>,
    /// Whether the file says it works with this machine and nozzle.
    pub compatible: bool,
    /// The file.
    pub path: PathBuf,
    /// Setting values (literal text, Cura keys).
    pub values: BTreeMap<String, String>,
}

/// What one extruder stack holds between the user's changes and the extruder definition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtruderConfiguration {
    /// Nozzle variant.
    pub variant: Option<QualityProfile>,
    /// Material.
    pub material: Option<Material>,
    /// Quality (per material, or the global one).
    pub quality: Option<QualityProfile>,
    /// Intent.
    pub intent: Option<QualityProfile>,
}

/// A resolved [`Selection`]: the profiles of every stack.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Configuration {
    /// The global stack's quality.
    pub global_quality: Option<QualityProfile>,
    /// One entry per extruder.
    pub extruders: Vec<ExtruderConfiguration>,
    /// Quality types every extruder can use, finest first.
    pub available_quality_types: Vec<String>,
    /// Fallbacks taken (no material profiles installed, ...), worth showing a user.
    pub notes: Vec<String>,
}

/// An intent a configuration can use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IntentInfo {
    /// Category (`engineering`).
    pub category: String,
    /// Quality type it belongs to.
    pub quality_type: String,
    /// Display name.
    pub name: String,
}

/// Every quality, intent and variant file of a resources directory.
#[derive(Debug, Default)]
pub struct ProfileIndex {
    pub(crate) qualities: Vec<QualityProfile>,
    pub(crate) intents: Vec<QualityProfile>,
    pub(crate) variants: Vec<QualityProfile>,
}

/// Every readable material file, and the ones that could not be read.
#[derive(Debug, Default)]
pub struct MaterialIndex {
    pub(crate) files: Vec<MaterialFile>,
    pub(crate) errors: Vec<String>,
}

impl Resources {
    /// Directory of material profiles (`materials/`, from Debian's `fdm-materials`).
    pub fn materials_dir(&self) -> PathBuf {
        self.root().join("materials")
    }

    pub(crate) fn profile_index(&self) -> Result<Arc<ProfileIndex>, DefinitionError> {
        let mut cache = self
            .profiles_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(index) = &*cache {
            return Ok(index.clone());
        }
        let mut index = ProfileIndex::default();
        for dir in ["quality", "intent", "variants"] {
            for path in files_under(&self.root().join(dir), ".inst.cfg") {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| DefinitionError::Io {
                        path: path.clone(),
                        source,
                    })?;
                let profile = QualityProfile {
                    path: Some(path),
                    ..QualityProfile::parse(&text)
                };
                match profile.kind() {
                    "quality" => index.qualities.push(profile),
                    "intent" => index.intents.push(profile),
                    "variant" => index.variants.push(profile),
                    _ => {}
                }
            }
        }
        let index = Arc::new(index);
        *cache = Some(index.clone());
        Ok(index)
    }

    fn material_index(&self) -> Arc<MaterialIndex> {
        let mut cache = self
            .materials_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(index) = &*cache {
            return index.clone();
        }
        let mut index = MaterialIndex::default();
        for path in files_under(&self.materials_dir(), MATERIAL_SUFFIX) {
            // Like Cura, a broken material file is skipped, not fatal; it is reported.
            match MaterialFile::read(&path) {
                Ok(m) => index.files.push(m),
                Err(e) => index.errors.push(e.to_string()),
            }
        }
        index.files.sort_by(|a, b| a.base_file.cmp(&b.base_file));
        let index = Arc::new(index);
        *cache = Some(index.clone());
        index
    }

    /// Material files that could not be read (skipped, as Cura skips them).
    pub fn material_errors(&self) -> Vec<String> {
        self.material_index().errors.clone()
    }

    /// The nozzle variants of `machine` (empty when it has none), sorted by name.
    pub fn variants(
        &self,
        machine: &MachineDefinition,
    ) -> Result<Vec<QualityProfile>, DefinitionError> {
        if !meta_flag(machine, "has_variants", false) {
            return Ok(Vec::new());
        }
        let index = self.profile_index()?;
        let mut out: Vec<QualityProfile> = index
            .variants
            .iter()
            .filter(|v| v.definition == machine.id() && v.meta("hardware_type") == Some("nozzle"))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    /// Every material Cura offers for `machine` with nozzle `variant` (all diameters; see
    /// [`Material::approximate_diameter`] and [`Material::compatible`]), sorted by base file.
    /// Empty when no material profiles are installed.
    pub fn materials(&self, machine: &MachineDefinition, variant: Option<&str>) -> Vec<Material> {
        if !meta_flag(machine, "has_materials", true) {
            return Vec::new();
        }
        let excluded: BTreeSet<&str> = machine
            .global
            .metadata
            .get("exclude_materials")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let index = self.material_index();
        index
            .files
            .iter()
            .filter(|f| !excluded.contains(f.base_file.as_str()))
            .map(|f| material_for(f, machine.id(), variant))
            .filter(|m| !excluded.contains(m.id.as_str()))
            .collect()
    }

    /// The materials a user can load in extruder `position` with nozzle `variant`: those of
    /// [`Self::materials`] with the extruder's filament diameter and not marked incompatible.
    pub fn materials_for(
        &self,
        machine: &MachineDefinition,
        position: usize,
        variant: Option<&str>,
    ) -> Vec<Material> {
        let diameter = extruder_diameter(machine, position);
        let mut all = self.materials(machine, variant);
        all.retain(|m| fits(m, diameter));
        all
    }

    /// Resolve `selection` for `machine`: the profiles of every stack, by Cura's rules.
    pub fn configure(
        &self,
        machine: &MachineDefinition,
        selection: &Selection,
    ) -> Result<Configuration, DefinitionError> {
        let count = machine.extruders.len();
        if let Some((&n, _)) = selection.extruders.range(count..).next() {
            return Err(DefinitionError::NoSuchExtruder {
                machine: machine.id().to_owned(),
                extruder: n,
                count,
            });
        }
        let mut config = Configuration::default();
        let global_qualities = self.qualities(machine)?;
        let mut per_extruder_types: Vec<BTreeMap<String, QualityProfile>> = Vec::new();
        for position in 0..count {
            let choice = selection.extruders.get(&position);
            let variant = self.choose_variant(
                machine,
                choice
                    .and_then(|c| c.variant.as_deref())
                    .or(selection.variant.as_deref()),
            )?;
            let material = self.choose_material(
                machine,
                position,
                variant.as_ref().map(|v| v.name.as_str()),
                choice
                    .and_then(|c| c.material.as_deref())
                    .or(selection.material.as_deref()),
                &mut config.notes,
            )?;
            let qualities = match &material {
                Some(m) => self.material_qualities(machine, variant.as_ref(), m)?,
                None => global_qualities.clone(),
            };
            per_extruder_types.push(by_type(qualities));
            config.extruders.push(ExtruderConfiguration {
                variant,
                material,
                ..ExtruderConfiguration::default()
            });
        }
        config.available_quality_types = global_qualities
            .iter()
            .map(|q| q.quality_type.clone())
            .filter(|t| per_extruder_types.iter().all(|e| e.contains_key(t)))
            .collect();
        let quality_type = match &selection.quality {
            QualityChoice::None => None,
            QualityChoice::Named(q) => {
                if !config.available_quality_types.contains(q) {
                    return Err(DefinitionError::QualityNotFound {
                        quality: q.clone(),
                        machine: describe(machine, &config),
                        available: list(&config.available_quality_types),
                    });
                }
                Some(q.clone())
            }
            QualityChoice::Preferred => {
                // Cura takes an arbitrary one when the preferred type is missing (the Anet A8
                // prefers `standard`, which fdmprinter's qualities lack): `normal` is the
                // middle of the shipped ladders, a better guess than the finest.
                let preferred = machine.preferred_quality_type();
                let available = &config.available_quality_types;
                [preferred.as_str(), "normal", "standard"]
                    .iter()
                    .find_map(|want| available.iter().find(|t| t == want))
                    .or(available.first())
                    .cloned()
            }
        };
        let Some(quality_type) = quality_type else {
            if selection.intent.as_deref().is_some_and(|i| i != "default") {
                return Err(self.intent_error(machine, selection, "none", &config));
            }
            return Ok(config);
        };
        config.global_quality = global_qualities
            .iter()
            .find(|q| q.quality_type == quality_type)
            .cloned();
        for (ext, types) in config.extruders.iter_mut().zip(&per_extruder_types) {
            ext.quality = types.get(&quality_type).cloned();
        }
        if let Some(intent) = selection.intent.as_deref().filter(|i| *i != "default") {
            let index = self.profile_index()?;
            let mut found = false;
            for ext in &mut config.extruders {
                let chosen = matching_intents(&index, machine, ext)
                    .find(|i| i.intent_category() == Some(intent))
                    .cloned();
                ext.intent = chosen;
                found |= ext.intent.is_some();
            }
            if !found {
                return Err(self.intent_error(machine, selection, &quality_type, &config));
            }
        }
        Ok(config)
    }

    /// The intents available to `selection` (its nozzles, materials and quality types).
    pub fn intents(
        &self,
        machine: &MachineDefinition,
        selection: &Selection,
    ) -> Result<Vec<IntentInfo>, DefinitionError> {
        let probe = Selection {
            intent: None,
            ..selection.clone()
        };
        let config = self.configure(machine, &probe)?;
        let index = self.profile_index()?;
        let mut out = BTreeSet::new();
        for quality_type in &config.available_quality_types {
            let with_type = Selection {
                quality: QualityChoice::Named(quality_type.clone()),
                ..probe.clone()
            };
            for ext in self.configure(machine, &with_type)?.extruders {
                for i in matching_intents(&index, machine, &ext) {
                    out.insert(IntentInfo {
                        category: i.intent_category().unwrap_or_default().to_owned(),
                        quality_type: i.quality_type.clone(),
                        name: i.name.clone(),
                    });
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn intent_error(
        &self,
        machine: &MachineDefinition,
        selection: &Selection,
        quality: &str,
        config: &Configuration,
    ) -> DefinitionError {
        let available: Vec<String> = self
            .intents(machine, selection)
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.quality_type == quality)
            .map(|i| i.category)
            .collect();
        DefinitionError::IntentNotFound {
            intent: selection.intent.clone().unwrap_or_default(),
            machine: describe(machine, config),
            quality: quality.to_owned(),
            available: list(&available),
        }
    }

    /// Cura's `preferred_variant_name`, else the first variant; a named one must exist.
    fn choose_variant(
        &self,
        machine: &MachineDefinition,
        wanted: Option<&str>,
    ) -> Result<Option<QualityProfile>, DefinitionError> {
        let variants = self.variants(machine)?;
        if let Some(name) = wanted {
            return variants
                .iter()
                .find(|v| v.name == name)
                .cloned()
                .map(Some)
                .ok_or_else(|| DefinitionError::VariantNotFound {
                    variant: name.to_owned(),
                    machine: machine.id().to_owned(),
                    available: if variants.is_empty() {
                        "none (the machine has no nozzle variants)".to_owned()
                    } else {
                        list(&variants.iter().map(|v| v.name.clone()).collect::<Vec<_>>())
                    },
                });
        }
        let preferred = machine
            .global
            .metadata
            .get("preferred_variant_name")
            .and_then(Json::as_str);
        Ok(variants
            .iter()
            .find(|v| Some(v.name.as_str()) == preferred)
            .or(variants.first())
            .cloned())
    }

    /// Cura's `VariantNode.preferredMaterial`, or the named one, checked against the extruder's
    /// filament diameter and the file's compatibility flags.
    fn choose_material(
        &self,
        machine: &MachineDefinition,
        position: usize,
        variant: Option<&str>,
        wanted: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<Option<Material>, DefinitionError> {
        let unusable = |material: &str, reason: String| DefinitionError::MaterialNotUsable {
            material: material.to_owned(),
            machine: machine.id().to_owned(),
            extruder: position,
            reason,
        };
        if !meta_flag(machine, "has_materials", true) {
            return match wanted {
                Some(m) => Err(unusable(m, "the machine has no material profiles".into())),
                None => Ok(None),
            };
        }
        let diameter = extruder_diameter(machine, position);
        let materials = self.materials(machine, variant);
        if materials.is_empty() {
            if let Some(m) = wanted {
                return Err(unusable(
                    m,
                    format!(
                        "no material profiles are installed in {} (Debian: apt-get install fdm-materials)",
                        self.materials_dir().display()
                    ),
                ));
            }
            notes.push(format!(
                "extruder {position}: no material profiles installed; the global quality and the \
                 definitions' material defaults apply"
            ));
            return Ok(None);
        }
        if let Some(wanted) = wanted {
            let Some(m) = materials
                .iter()
                .find(|m| m.base_file == wanted || m.id == wanted)
            else {
                return Err(unusable(
                    wanted,
                    "unknown or excluded for this machine (see Resources::materials)".into(),
                ));
            };
            if m.approximate_diameter != diameter {
                return Err(unusable(
                    wanted,
                    format!(
                        "it is {} mm filament, the extruder takes {} mm",
                        m.diameter.unwrap_or(f64::NAN),
                        extruder_diameter_mm(machine, position)
                    ),
                ));
            }
            if !m.compatible {
                return Err(unusable(
                    wanted,
                    format!(
                        "its profile marks it incompatible with nozzle `{}`",
                        variant.unwrap_or("none")
                    ),
                ));
            }
            return Ok(Some(m.clone()));
        }
        let preferred = machine
            .global
            .metadata
            .get("preferred_material")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let found = materials
            .iter()
            .find(|m| m.base_file == preferred && fits(m, diameter))
            .or_else(|| {
                let p175 = format!("{preferred}_175");
                (diameter == Some(2))
                    .then(|| {
                        materials
                            .iter()
                            .find(|m| m.base_file == p175 && fits(m, diameter))
                    })
                    .flatten()
            })
            .or_else(|| materials.iter().find(|m| fits(m, diameter)));
        Ok(found.cloned())
    }

    /// Cura's `MaterialNode._loadAll`: the qualities for a material, by exact id, then by
    /// material type, then by GUID, then the global ones.
    fn material_qualities(
        &self,
        machine: &MachineDefinition,
        variant: Option<&QualityProfile>,
        material: &Material,
    ) -> Result<Vec<QualityProfile>, DefinitionError> {
        if !meta_flag(machine, "has_machine_quality", false) {
            return self.qualities(machine);
        }
        let index = self.profile_index()?;
        let definition = machine.quality_definition();
        let has_variants = meta_flag(machine, "has_variants", false);
        let candidates: Vec<&QualityProfile> = index
            .qualities
            .iter()
            .filter(|q| q.definition == definition && !q.quality_type.is_empty())
            .filter(|q| !has_variants || q.variant() == variant.map(|v| v.name.as_str()))
            .collect();
        let pick = |ids: &BTreeSet<&str>| -> Vec<QualityProfile> {
            candidates
                .iter()
                .filter(|q| q.material().is_some_and(|m| ids.contains(m)))
                .map(|q| (*q).clone())
                .collect()
        };
        let exact: BTreeSet<&str> = [material.id.as_str()].into();
        let mut found = pick(&exact);
        let materials = self.material_index();
        let rules: [fn(&MaterialFile, &Material) -> bool; 2] = [
            |m, me| m.material_type == me.material_type,
            |m, me| !me.guid.is_empty() && m.guid == me.guid,
        ];
        for same in rules {
            if !found.is_empty() {
                break;
            }
            let ids: BTreeSet<&str> = materials
                .files
                .iter()
                .filter(|m| same(m, material))
                .map(|m| m.base_file.as_str())
                .collect();
            found = pick(&ids);
            // Of several same-type profiles per quality type, prefer our own, then generic.
            found.sort_by_key(|q| {
                let m = q.material().unwrap_or_default();
                (
                    m != material.base_file,
                    !m.starts_with("generic_"),
                    m.to_owned(),
                )
            });
        }
        if found.is_empty() {
            found = candidates
                .iter()
                .filter(|q| q.global)
                .map(|q| (*q).clone())
                .collect();
        }
        Ok(found)
    }
}

/// Intents for an extruder's (per-material) quality: same definition, nozzle, material and
/// quality type (Cura's `QualityNode._loadAll`; global qualities have none).
fn matching_intents<'a>(
    index: &'a ProfileIndex,
    machine: &MachineDefinition,
    ext: &'a ExtruderConfiguration,
) -> impl Iterator<Item = &'a QualityProfile> + 'a {
    let definition = machine.quality_definition();
    let quality = ext.quality.as_ref().filter(|q| !q.global);
    index.intents.iter().filter(move |i| {
        let Some(q) = quality else { return false };
        i.definition == definition
            && i.quality_type == q.quality_type
            && i.material() == q.material()
            && i.variant() == ext.variant.as_ref().map(|v| v.name.as_str())
    })
}

/// The first profile per quality type.
fn by_type(qualities: Vec<QualityProfile>) -> BTreeMap<String, QualityProfile> {
    let mut out = BTreeMap::new();
    for q in qualities {
        out.entry(q.quality_type.clone()).or_insert(q);
    }
    out
}

/// A material file as loaded for `machine` and nozzle `variant`.
fn material_for(file: &MaterialFile, machine: &str, variant: Option<&str>) -> Material {
    let mut values = file.common.values.clone();
    let mut compatible = file.common.compatible.unwrap_or(true);
    let mut id = file.base_file.clone();
    if let Some(section) = file.section_for(machine) {
        values.extend(section.settings.values.clone());
        compatible = section.settings.compatible.unwrap_or(compatible);
        id = format!("{}_{machine}", file.base_file);
        if let Some((name, hotend)) =
            variant.and_then(|v| section.hotends.iter().find(|h| h.0 == v))
        {
            values.extend(hotend.values.clone());
            compatible = hotend.compatible.unwrap_or(compatible);
            id = format!("{id}_{}", name.replace(' ', "_"));
        }
    }
    if let Some(d) = file.diameter {
        values.insert("material_diameter".into(), d.to_string());
    }
    if !file.guid.is_empty() {
        values.insert("material_guid".into(), file.guid.clone());
    }
    Material {
        id,
        base_file: file.base_file.clone(),
        name: file.name.clone(),
        brand: file.brand.clone(),
        material_type: file.material_type.clone(),
        guid: file.guid.clone(),
        diameter: file.diameter,
        approximate_diameter: file.diameter.map(|d| d.round() as i64),
        compatible,
        path: file.path.clone(),
        values,
    }
}

/// The extruder definition's filament diameter, mm (Cura reads it from the definition).
fn extruder_diameter_mm(machine: &MachineDefinition, position: usize) -> f64 {
    let from = |chain: &super::definitions::DefinitionChain| {
        let def = chain.settings.get("material_diameter")?;
        def.props
            .get("value")
            .and_then(Json::as_f64)
            .or_else(|| def.props.get("default_value").and_then(Json::as_f64))
    };
    machine
        .extruders
        .get(position)
        .and_then(from)
        .or_else(|| from(&machine.global))
        .unwrap_or(2.85)
}

/// Whether a material can go in an extruder of (approximate) `diameter`.
fn fits(m: &Material, diameter: Option<i64>) -> bool {
    m.compatible && m.approximate_diameter == diameter
}

fn extruder_diameter(machine: &MachineDefinition, position: usize) -> Option<i64> {
    Some(extruder_diameter_mm(machine, position).round() as i64)
}

fn meta_flag(machine: &MachineDefinition, key: &str, default: bool) -> bool {
    match machine.global.metadata.get(key) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    }
}

fn describe(machine: &MachineDefinition, config: &Configuration) -> String {
    let parts: Vec<String> = config
        .extruders
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e.variant.as_ref().map_or("-", |v| v.name.as_str()),
                e.material.as_ref().map_or("-", |m| m.base_file.as_str())
            )
        })
        .collect();
    format!("{} ({})", machine.id(), parts.join(", "))
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Files under `dir` (recursively) whose name ends with `suffix`, sorted; a missing dir is empty.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
