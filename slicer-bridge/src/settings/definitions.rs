//! Cura resources on disk: machine and extruder definitions (`*.def.json`, with `inherits`) and
//! quality profiles (`*.inst.cfg`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Map, Value as Json};
use thiserror::Error;

use super::configuration::{MaterialIndex, ProfileIndex};

/// Environment variable naming the Cura resources directory (the one holding `definitions/`).
pub const RESOURCES_ENV: &str = "EASYPRINT_CURA_RESOURCES";

/// Where Cura's resources are looked for when no directory is given.
pub const RESOURCE_CANDIDATES: &[&str] = &[
    "/usr/share/cura/resources",
    "/usr/local/share/cura/resources",
    "/opt/cura/share/cura/resources",
    "/usr/lib/cura/resources",
];

/// Longest inheritance chain accepted (Cura's deepest is 4): guards against `inherits` loops.
const MAX_INHERITANCE_DEPTH: usize = 16;

/// Errors while locating or reading Cura definitions.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// No resources directory was found.
    #[error(
        "no Cura resources found (looked in {searched}); on Debian/Ubuntu install the `cura` package, \
         or unpack only its resources (`apt-get download cura && dpkg-deb -x cura_*.deb x`, then copy \
         x/usr/share/cura/resources to /usr/share/cura/resources), or point {RESOURCES_ENV} at a \
         directory holding definitions/ and extruders/ (e.g. a Cura install's share/cura/resources)"
    )]
    ResourcesNotFound {
        /// Directories that were tried.
        searched: String,
    },
    /// A definition id has no file.
    #[error("no definition `{id}` ({id}.def.json) in {searched}")]
    NotFound {
        /// The definition id.
        id: String,
        /// Directories searched.
        searched: String,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid JSON or lacks required structure.
    #[error("invalid definition {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `inherits` loops or is absurdly deep.
    #[error("inheritance chain of `{0}` is cyclic or deeper than {MAX_INHERITANCE_DEPTH}")]
    InheritanceLoop(String),
    /// The requested quality type does not exist for this machine (or not for the chosen
    /// nozzles and materials).
    #[error("no quality `{quality}` for machine `{machine}`; available: {available}")]
    QualityNotFound {
        /// Requested quality type.
        quality: String,
        /// Machine id (with the chosen nozzles and materials).
        machine: String,
        /// Quality types that exist.
        available: String,
    },
    /// The requested nozzle variant does not exist for this machine.
    #[error("no nozzle variant `{variant}` for machine `{machine}`; available: {available}")]
    VariantNotFound {
        /// Requested variant name.
        variant: String,
        /// Machine id.
        machine: String,
        /// Variant names that exist.
        available: String,
    },
    /// The requested material is unknown, or does not fit the extruder.
    #[error(
        "material `{material}` cannot be used in extruder {extruder} of `{machine}`: {reason}"
    )]
    MaterialNotUsable {
        /// Requested material (base file id, e.g. `generic_pla_175`).
        material: String,
        /// Machine id.
        machine: String,
        /// Extruder position.
        extruder: usize,
        /// Why (unknown, wrong diameter, incompatible nozzle, excluded, none installed).
        reason: String,
    },
    /// The requested intent category is not available for the chosen profile.
    #[error(
        "no intent `{intent}` for `{machine}` with quality `{quality}`; available: {available}"
    )]
    IntentNotFound {
        /// Requested intent category.
        intent: String,
        /// Machine id.
        machine: String,
        /// The quality type in use.
        quality: String,
        /// Categories that exist.
        available: String,
    },
    /// A per-extruder choice names an extruder the machine lacks.
    #[error("machine `{machine}` has no extruder {extruder} (it has {count})")]
    NoSuchExtruder {
        /// Machine id.
        machine: String,
        /// Requested position.
        extruder: usize,
        /// Number of extruders.
        count: usize,
    },
}

/// Parsed definition files, keyed by path, with the (size, mtime) they were parsed at.
type ParsedFiles = HashMap<PathBuf, ((u64, SystemTime), Arc<Map<String, Json>>)>;

/// A Cura resources directory (`definitions/`, `extruders/`, `quality/`, `intent/`,
/// `variants/`, and `materials/` when Debian's `fdm-materials` is installed).
///
/// Parsed definition files are kept (and re-read when their size or mtime changes): every
/// machine shares `fdmprinter.def.json`, the largest file. The profile index (qualities,
/// intents, variants) and the material index are read once. Clones share the caches.
#[derive(Debug, Clone)]
pub struct Resources {
    root: PathBuf,
    parsed: Arc<Mutex<ParsedFiles>>,
    profiles: Arc<Mutex<Option<Arc<ProfileIndex>>>>,
    materials: Arc<Mutex<Option<Arc<MaterialIndex>>>>,
}

impl PartialEq for Resources {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Eq for Resources {}

impl Resources {
    /// Use `root` (the directory holding `definitions/`).
    pub fn at(root: impl Into<PathBuf>) -> Result<Self, DefinitionError> {
        let root = root.into();
        if root
            .join("definitions")
            .join("fdmprinter.def.json")
            .is_file()
        {
            Ok(Self {
                root,
                parsed: Arc::default(),
                profiles: Arc::default(),
                materials: Arc::default(),
            })
        } else {
            Err(DefinitionError::ResourcesNotFound {
                searched: format!("{} (no definitions/fdmprinter.def.json)", root.display()),
            })
        }
    }

    /// Find resources: `explicit` if given, else `$EASYPRINT_CURA_RESOURCES`, else the usual
    /// install locations ([`RESOURCE_CANDIDATES`]).
    pub fn discover(explicit: Option<&Path>) -> Result<Self, DefinitionError> {
        if let Some(dir) = explicit {
            return Self::at(dir);
        }
        if let Some(dir) = std::env::var_os(RESOURCES_ENV) {
            return Self::at(PathBuf::from(dir));
        }
        for candidate in RESOURCE_CANDIDATES {
            if let Ok(r) = Self::at(candidate) {
                return Ok(r);
            }
        }
        Err(DefinitionError::ResourcesNotFound {
            searched: format!(
                "${RESOURCES_ENV} (unset), {}",
                RESOURCE_CANDIDATES.join(", ")
            ),
        })
    }

    /// The resources root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn profiles_cache(&self) -> &Mutex<Option<Arc<ProfileIndex>>> {
        &self.profiles
    }

    pub(crate) fn materials_cache(&self) -> &Mutex<Option<Arc<MaterialIndex>>> {
        &self.materials
    }

    /// Directory of machine definitions.
    pub fn definitions_dir(&self) -> PathBuf {
        self.root.join("definitions")
    }

    /// Directory of extruder definitions.
    pub fn extruders_dir(&self) -> PathBuf {
        self.root.join("extruders")
    }

    /// Path of definition `id`, in `definitions/` or `extruders/`.
    pub fn definition_path(&self, id: &str) -> Result<PathBuf, DefinitionError> {
        let file = format!("{id}.def.json");
        // Ids are file stems: refuse anything that could walk out of the directories.
        if !id.is_empty() && !id.contains(['/', '\\']) && !id.starts_with('.') {
            for dir in [self.definitions_dir(), self.extruders_dir()] {
                let p = dir.join(&file);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(DefinitionError::NotFound {
            id: id.to_owned(),
            searched: format!(
                "{}, {}",
                self.definitions_dir().display(),
                self.extruders_dir().display()
            ),
        })
    }

    /// Read one definition file (not its parents).
    pub fn read_definition(
        &self,
        id: &str,
    ) -> Result<(PathBuf, Arc<Map<String, Json>>), DefinitionError> {
        let path = self.definition_path(id)?;
        let meta = std::fs::metadata(&path).map_err(|source| DefinitionError::Io {
            path: path.clone(),
            source,
        })?;
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, obj)) = parsed.get(&path) {
            if *s == stamp {
                return Ok((path, obj.clone()));
            }
        }
        let obj = Arc::new(read_json(&path)?);
        parsed.insert(path.clone(), (stamp, obj.clone()));
        Ok((path, obj))
    }

    /// Load `id` with its whole `inherits` chain merged.
    pub fn load_chain(&self, id: &str) -> Result<DefinitionChain, DefinitionError> {
        let mut files = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(cur) = next {
            if files.len() >= MAX_INHERITANCE_DEPTH
                || files.iter().any(|(i, _, _): &(String, _, _)| *i == cur)
            {
                return Err(DefinitionError::InheritanceLoop(id.to_owned()));
            }
            let (path, obj) = self.read_definition(&cur)?;
            next = obj
                .get("inherits")
                .and_then(Json::as_str)
                .map(str::to_owned);
            files.push((cur, path, obj));
        }
        // Merge from the root (fdmprinter / fdmextruder) down to the leaf.
        let mut chain = DefinitionChain {
            id: id.to_owned(),
            ids: files.iter().map(|(i, _, _)| i.clone()).collect(),
            paths: files.iter().map(|(_, p, _)| p.clone()).collect(),
            settings: BTreeMap::new(),
            order: Vec::new(),
            metadata: Map::new(),
            name: String::new(),
        };
        for (_, path, obj) in files.iter().rev() {
            if let Some(name) = obj.get("name").and_then(Json::as_str) {
                chain.name = name.to_owned();
            }
            if let Some(Json::Object(meta)) = obj.get("metadata") {
                for (k, v) in meta {
                    chain.metadata.insert(k.clone(), v.clone());
                }
            }
            if let Some(settings) = obj.get("settings") {
                let Json::Object(tree) = settings else {
                    return Err(invalid(path, "`settings` is not an object"));
                };
                for (key, def) in tree {
                    chain.add_tree(path, key, def, key, None)?;
                }
            }
            if let Some(overrides) = obj.get("overrides") {
                let Json::Object(over) = overrides else {
                    return Err(invalid(path, "`overrides` is not an object"));
                };
                for (key, props) in over {
                    let Json::Object(props) = props else {
                        return Err(invalid(path, &format!("override `{key}` is not an object")));
                    };
                    // Membership via the map: a scan of `order` made loading quadratic.
                    if !chain.settings.contains_key(key) {
                        chain.order.push(key.clone());
                    }
                    let def = chain
                        .settings
                        .entry(key.clone())
                        .or_insert_with(|| SettingDef::new(key, "", None));
                    for (p, v) in props {
                        if p != "children" {
                            def.props.insert(p.clone(), v.clone());
                        }
                    }
                }
            }
        }
        Ok(chain)
    }

    /// Load a machine: its definition chain and its extruder trains.
    pub fn load_machine(&self, id: &str) -> Result<MachineDefinition, DefinitionError> {
        let global = self.load_chain(id)?;
        let mut extruders = Vec::new();
        match global.metadata.get("machine_extruder_trains") {
            Some(Json::Object(trains)) => {
                let mut trains: Vec<(usize, String)> = trains
                    .iter()
                    .filter_map(|(pos, ext)| Some((pos.parse().ok()?, ext.as_str()?.to_owned())))
                    .collect();
                trains.sort();
                for (pos, ext) in trains {
                    extruders.push(self.load_chain(&ext).map_err(|e| match e {
                        DefinitionError::NotFound { searched, .. } => DefinitionError::NotFound {
                            id: format!("{ext} (extruder {pos} of {id})"),
                            searched,
                        },
                        other => other,
                    })?);
                }
            }
            // Machines without trains get Cura's generic extruder.
            _ => extruders.push(self.load_chain("fdmextruder")?),
        }
        Ok(MachineDefinition { global, extruders })
    }

    /// All machines a user can pick (definitions whose metadata says `visible`), sorted by name.
    pub fn machines(&self) -> Result<Vec<MachineInfo>, DefinitionError> {
        let dir = self.definitions_dir();
        let entries = std::fs::read_dir(&dir).map_err(|source| DefinitionError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".def.json") else {
                continue;
            };
            let Ok(obj) = read_json(&entry.path()) else {
                continue;
            };
            let meta = obj.get("metadata").and_then(Json::as_object);
            let visible = meta
                .and_then(|m| m.get("visible"))
                .and_then(Json::as_bool)
                .unwrap_or(false);
            if !visible {
                continue;
            }
            out.push(MachineInfo {
                id: id.to_owned(),
                name: obj
                    .get("name")
                    .and_then(Json::as_str)
                    .unwrap_or(id)
                    .to_owned(),
                manufacturer: meta
                    .and_then(|m| m.get("manufacturer"))
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        out.sort_by_key(|m| m.name.to_lowercase());
        Ok(out)
    }

    /// Global quality profiles that apply to `machine` (Cura's `quality_definition` rule).
    pub fn qualities(
        &self,
        machine: &MachineDefinition,
    ) -> Result<Vec<QualityProfile>, DefinitionError> {
        let wanted = machine.quality_definition();
        let index = self.profile_index()?;
        let global = |definition: &str| -> Vec<QualityProfile> {
            index
                .qualities
                .iter()
                .filter(|q| q.global && !q.quality_type.is_empty() && q.definition == definition)
                .cloned()
                .collect()
        };
        // Cura's MachineNode: the machine's own global qualities, else fdmprinter's.
        let mut out = global(&wanted);
        if out.is_empty() && wanted != "fdmprinter" {
            out = global("fdmprinter");
        }
        out.sort_by(|a, b| a.weight.cmp(&b.weight).reverse());
        Ok(out)
    }

    /// The global quality profile of type `quality_type` for `machine`.
    pub fn quality(
        &self,
        machine: &MachineDefinition,
        quality_type: &str,
    ) -> Result<QualityProfile, DefinitionError> {
        let all = self.qualities(machine)?;
        let available = all
            .iter()
            .map(|q| q.quality_type.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        all.iter()
            .find(|q| q.quality_type == quality_type)
            .cloned()
            .ok_or_else(|| DefinitionError::QualityNotFound {
                quality: quality_type.to_owned(),
                machine: machine.global.id.clone(),
                available,
            })
    }
}

fn invalid(path: &Path, message: &str) -> DefinitionError {
    DefinitionError::Invalid {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

fn read_json(path: &Path) -> Result<Map<String, Json>, DefinitionError> {
    let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Io {
        path: path.to_owned(),
        source,
    })?;
    match serde_json::from_str(&text) {
        Ok(Json::Object(o)) => Ok(o),
        Ok(_) => Err(invalid(path, "top level is not an object")),
        Err(e) => Err(invalid(path, &e.to_string())),
    }
}

/// A machine a user can choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    /// Definition id (`creality_ender3`).
    pub id: String,
    /// Display name (`Creality Ender-3`).
    pub name: String,
    /// Manufacturer from the metadata (may be empty).
    pub manufacturer: String,
}

/// One setting's definition after inheritance (properties merged child-over-parent).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDef {
    /// The key (`infill_sparse_density`).
    pub key: String,
    /// Top-level category key (`infill`).
    pub category: String,
    /// Parent setting key, if nested.
    pub parent: Option<String>,
    /// Raw properties (`type`, `default_value`, `value`, `minimum_value`, ...).
    pub props: Map<String, Json>,
}

impl SettingDef {
    fn new(key: &str, category: &str, parent: Option<&str>) -> Self {
        Self {
            key: key.to_owned(),
            category: category.to_owned(),
            parent: parent.map(str::to_owned),
            props: Map::new(),
        }
    }

    /// A string property (`type`, `label`, `unit`, a formula...).
    pub fn str_prop(&self, name: &str) -> Option<&str> {
        self.props.get(name).and_then(Json::as_str)
    }

    /// The setting's type (`float`, `int`, `bool`, `enum`, `str`, `[int]`, `polygon`, `extruder`...).
    pub fn setting_type(&self) -> &str {
        self.str_prop("type").unwrap_or("")
    }

    /// A boolean property such as `settable_per_extruder`; `default` when absent (Cura's
    /// `settable_*` flags default to true).
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.props.get(name) {
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) => s == "True" || s == "true",
            _ => default,
        }
    }

    /// `(value, label)` pairs of an enum setting, in definition order.
    pub fn options(&self) -> Vec<(String, String)> {
        match self.props.get("options") {
            Some(Json::Object(o)) => o
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or(k).to_owned()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A definition with its inheritance chain merged.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionChain {
    /// Leaf id.
    pub id: String,
    /// Ids from leaf to root.
    pub ids: Vec<String>,
    /// Files from leaf to root.
    pub paths: Vec<PathBuf>,
    /// Display name.
    pub name: String,
    /// Merged settings.
    pub settings: BTreeMap<String, SettingDef>,
    /// Setting keys in definition (UI) order.
    pub order: Vec<String>,
    /// Merged metadata (child keys win).
    pub metadata: Map<String, Json>,
}

impl DefinitionChain {
    fn add_tree(
        &mut self,
        path: &Path,
        key: &str,
        def: &Json,
        category: &str,
        parent: Option<&str>,
    ) -> Result<(), DefinitionError> {
        let Json::Object(props) = def else {
            return Err(invalid(path, &format!("setting `{key}` is not an object")));
        };
        let is_category = props.get("type").and_then(Json::as_str) == Some("category");
        if !is_category {
            if !self.settings.contains_key(key) {
                self.order.push(key.to_owned());
            }
            let entry = self
                .settings
                .entry(key.to_owned())
                .or_insert_with(|| SettingDef::new(key, category, parent));
            for (p, v) in props {
                if p != "children" {
                    entry.props.insert(p.clone(), v.clone());
                }
            }
        }
        if let Some(Json::Object(children)) = props.get("children") {
            let child_parent = if is_category { None } else { Some(key) };
            for (ck, cdef) in children {
                self.add_tree(path, ck, cdef, category, child_parent)?;
            }
        }
        Ok(())
    }
}

/// A machine definition with its extruder trains.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineDefinition {
    /// The machine's merged definition (machine → parents → fdmprinter).
    pub global: DefinitionChain,
    /// Extruder definitions by position (extruder → fdmextruder).
    pub extruders: Vec<DefinitionChain>,
}

impl MachineDefinition {
    /// Machine id.
    pub fn id(&self) -> &str {
        &self.global.id
    }

    /// Which definition quality profiles are filed under (Cura: `quality_definition` when the
    /// machine has its own qualities, else `fdmprinter`).
    pub fn quality_definition(&self) -> String {
        let meta = &self.global.metadata;
        if meta.get("has_machine_quality").and_then(Json::as_bool) != Some(true) {
            return "fdmprinter".to_owned();
        }
        meta.get("quality_definition")
            .and_then(Json::as_str)
            .unwrap_or(&self.global.id)
            .to_owned()
    }

    /// The quality type Cura would pick (`preferred_quality_type`, default `normal`).
    pub fn preferred_quality_type(&self) -> String {
        self.global
            .metadata
            .get("preferred_quality_type")
            .and_then(Json::as_str)
            .unwrap_or("normal")
            .to_owned()
    }
}

/// A profile file (`*.inst.cfg`): a quality, an intent or a nozzle variant — values (literals or
/// `=formula`) applied above the machine definition, with the metadata that says where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QualityProfile {
    /// File it came from.
    pub path: Option<PathBuf>,
    /// Display name.
    pub name: String,
    /// Definition it belongs to.
    pub definition: String,
    /// `quality_type` (`standard`, `draft`, ...).
    pub quality_type: String,
    /// Ordering weight (higher = finer, Cura sorts by it).
    pub weight: i64,
    /// Whether it is a global (not per-material) profile.
    pub global: bool,
    /// `key -> raw text` (`=` prefix marks a formula).
    pub values: BTreeMap<String, String>,
    /// Every `[metadata]` entry (`type`, `material`, `variant`, `intent_category`...).
    pub metadata: BTreeMap<String, String>,
}

impl QualityProfile {
    /// Parse the INI text of an `.inst.cfg` file.
    pub fn parse(text: &str) -> Self {
        let mut q = QualityProfile::default();
        let mut section = String::new();
        let mut last_key: Option<String> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                section = trimmed[1..trimmed.len() - 1].to_owned();
                last_key = None;
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            // configparser continuation lines (indented) extend the previous value.
            if line.starts_with([' ', '\t']) {
                if let (Some(k), "values") = (&last_key, section.as_str()) {
                    if let Some(v) = q.values.get_mut(k) {
                        v.push('\n');
                        v.push_str(trimmed);
                    }
                }
                continue;
            }
            let Some((k, v)) = trimmed.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            match (section.as_str(), k.as_str()) {
                ("general", "name") => q.name = v.clone(),
                ("general", "definition") => q.definition = v.clone(),
                ("metadata", "quality_type") => q.quality_type = v.clone(),
                ("metadata", "weight") => q.weight = v.parse().unwrap_or(0),
                ("metadata", "global_quality") => q.global = v.eq_ignore_ascii_case("true"),
                ("values", _) => {
                    last_key = Some(k.clone());
                    q.values.insert(k, v);
                    continue;
                }
                _ => {}
            }
            if section == "metadata" {
                q.metadata.insert(k, v);
            }
        }
        q
    }

    /// A metadata entry.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The file's kind: `quality`, `intent`, `variant`...
    pub fn kind(&self) -> &str {
        self.meta("type").unwrap_or("")
    }

    /// The material id a per-material quality or intent is for.
    pub fn material(&self) -> Option<&str> {
        self.meta("material")
    }

    /// The nozzle variant name a quality or intent is for.
    pub fn variant(&self) -> Option<&str> {
        self.meta("variant")
    }

    /// An intent's category (`engineering`, `visual`, `quick`).
    pub fn intent_category(&self) -> Option<&str> {
        self.meta("intent_category")
    }
}
