//! Resolving every setting the way Cura's front end does: container stacks (user → quality →
//! machine definition chain for the global stack; user → extruder definition → global stack for
//! each extruder), formula evaluation with `resolve` and `limit_to_extruder`, memoisation and
//! cycle detection.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use serde_json::Value as Json;
use thiserror::Error;

use super::configuration::Configuration;
use super::definitions::{MachineDefinition, QualityProfile, SettingDef};
use super::eval::{evaluate, EvalError, Scope};
use super::expr::{parse, Expr, ParseError};
use super::value::Value;

/// A value in a container: a literal or a formula.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// A literal.
    Literal(Value),
    /// A formula (Python expression) to evaluate in the stack that asks for it.
    Formula(String),
}

/// Which stack a setting is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StackId {
    /// The machine (global) stack.
    Global,
    /// Extruder train `n`.
    Extruder(usize),
}

/// Errors that stop settings from resolving (bad user input or broken definitions).
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The key is not a setting of this machine.
    #[error("unknown setting `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownSetting {
        /// The key given.
        key: String,
        /// The closest existing key, if one is close.
        suggestion: Option<String>,
    },
    /// The text does not parse as the setting's type.
    #[error("setting `{key}`: {message} (got `{text}`)")]
    InvalidValue {
        /// The key.
        key: String,
        /// The text given.
        text: String,
        /// What was expected.
        message: String,
    },
    /// The value is outside `minimum_value`/`maximum_value`.
    #[error("setting `{key}` = {value} is out of range: {bound}")]
    OutOfRange {
        /// The key.
        key: String,
        /// The resolved value.
        value: String,
        /// Which bound failed (`must be >= 0.001`).
        bound: String,
        /// Whether the user set it (false: derived from a user setting or the profile).
        user_set: bool,
    },
    /// An override names an extruder the machine lacks.
    #[error("extruder {extruder} does not exist (machine has {count})")]
    NoSuchExtruder {
        /// Requested position.
        extruder: usize,
        /// Number of extruders.
        count: usize,
    },
    /// A formula does not parse.
    #[error("setting `{key}` property `{property}`: {source}")]
    Parse {
        /// The key.
        key: String,
        /// The property (`value`, `minimum_value`...).
        property: String,
        /// The parse error.
        source: ParseError,
    },
    /// Settings depend on each other in a loop.
    #[error("{0}")]
    Eval(EvalError),
}

/// A formula that failed to evaluate and was replaced by 0 (as Cura does).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The setting.
    pub key: String,
    /// Where it was evaluated.
    pub stack: StackId,
    /// The property (`value`, `resolve`, ...).
    pub property: String,
    /// Why it failed.
    pub error: EvalError,
}

/// A user override: `key=text`, optionally for one extruder only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Extruder position, or `None` for "wherever Cura would put it".
    pub extruder: Option<usize>,
    /// Setting key.
    pub key: String,
    /// Value text: a literal of the setting's type, or `=formula`.
    pub text: String,
}

impl Override {
    /// Parse `key=value` or `key@N=value` (extruder N).
    ///
    /// ```
    /// use easyprint_slicer::settings::Override;
    /// let o = Override::parse("layer_height=0.2").unwrap();
    /// assert_eq!((o.key.as_str(), o.text.as_str(), o.extruder), ("layer_height", "0.2", None));
    /// assert_eq!(Override::parse("material_diameter@0=1.75").unwrap().extruder, Some(0));
    /// ```
    pub fn parse(s: &str) -> Result<Self, SettingsError> {
        let Some((k, v)) = s.split_once('=') else {
            return Err(SettingsError::InvalidValue {
                key: s.to_owned(),
                text: s.to_owned(),
                message: "expected key=value".to_owned(),
            });
        };
        let k = k.trim();
        let (key, extruder) = match k.split_once('@') {
            Some((key, n)) => (
                key,
                Some(n.parse().map_err(|_| SettingsError::InvalidValue {
                    key: key.to_owned(),
                    text: s.to_owned(),
                    message: "extruder after @ must be a number".to_owned(),
                })?),
            ),
            None => (k, None),
        };
        Ok(Self {
            extruder,
            key: key.to_owned(),
            text: v.trim().to_owned(),
        })
    }
}

/// Every setting resolved: what the engine must be given.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSettings {
    /// Machine id.
    pub machine: String,
    /// Global stack values, by key.
    pub global: BTreeMap<String, Value>,
    /// Per-extruder values, by position.
    pub extruders: Vec<BTreeMap<String, Value>>,
    /// Keys the user set (for display and validation).
    pub user_keys: BTreeSet<String>,
    /// Formulas that failed and were replaced by 0, as Cura does.
    pub diagnostics: Vec<Diagnostic>,
}

impl ResolvedSettings {
    /// A global value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.global.get(key)
    }

    /// A global value as a number.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.global.get(key).and_then(Value::as_f64)
    }

    /// An extruder value.
    pub fn extruder(&self, position: usize, key: &str) -> Option<&Value> {
        self.extruders.get(position).and_then(|e| e.get(key))
    }
}

/// What a container is, in Cura's stack order (the user's changes above, the definition below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ContainerKind {
    /// An intent profile (`engineering`, `visual`...).
    Intent,
    /// A quality profile (global, or per material and nozzle).
    Quality,
    /// A material profile.
    Material,
    /// A nozzle variant.
    Variant,
    /// The machine's own changes to its definition (Cura's "Machine Settings" dialog).
    DefinitionChanges,
}

impl ContainerKind {
    /// Cura's container index (0 is the user's changes, 1 quality changes, 7 the definition),
    /// as `valueFromContainer` counts.
    pub fn cura_index(self) -> i64 {
        match self {
            ContainerKind::Intent => 2,
            ContainerKind::Quality => 3,
            ContainerKind::Material => 4,
            ContainerKind::Variant => 5,
            ContainerKind::DefinitionChanges => 6,
        }
    }
}

/// One container of a stack: values given as text (`=` starts a formula).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// What it is (decides its place in the stack).
    pub kind: ContainerKind,
    /// Where it came from (profile name, material id, `machine settings`).
    pub id: String,
    /// `key -> text`.
    pub values: BTreeMap<String, String>,
}

impl Container {
    /// A container of `kind` from a profile file's values.
    pub fn from_profile(kind: ContainerKind, profile: &QualityProfile) -> Self {
        Self {
            kind,
            id: profile
                .path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| profile.name.clone()),
            values: profile.values.clone(),
        }
    }
}

/// The container stacks of one machine plus the user's choices.
#[derive(Debug, Clone)]
pub struct SettingsStack {
    machine: MachineDefinition,
    quality: Option<QualityProfile>,
    /// Global stack containers between the user's changes and the definition, top first.
    global_containers: Vec<Container>,
    /// The same per extruder.
    extruder_containers: Vec<Vec<Container>>,
    configuration: Option<Configuration>,
    user_global: BTreeMap<String, RawValue>,
    user_extruders: Vec<BTreeMap<String, RawValue>>,
}

impl SettingsStack {
    /// Stacks for `machine` with an optional global quality profile (on the global stack only)
    /// and no user overrides. [`Self::configured`] builds Cura's full stack.
    pub fn new(machine: MachineDefinition, quality: Option<QualityProfile>) -> Self {
        let n = machine.extruders.len();
        Self {
            global_containers: quality
                .iter()
                .map(|q| Container::from_profile(ContainerKind::Quality, q))
                .collect(),
            extruder_containers: vec![Vec::new(); n],
            configuration: None,
            machine,
            quality,
            user_global: BTreeMap::new(),
            user_extruders: vec![BTreeMap::new(); n],
        }
    }

    /// Cura's full stacks for a resolved configuration (see
    /// [`Resources::configure`](super::Resources::configure)): the global quality on the
    /// global stack; intent, quality, material and nozzle variant on each extruder stack.
    pub fn configured(machine: MachineDefinition, configuration: Configuration) -> Self {
        let mut stack = Self::new(machine, configuration.global_quality.clone());
        for (containers, ext) in stack
            .extruder_containers
            .iter_mut()
            .zip(&configuration.extruders)
        {
            let profile = |kind, p: &Option<QualityProfile>| {
                p.as_ref().map(|p| Container::from_profile(kind, p))
            };
            containers.extend(profile(ContainerKind::Intent, &ext.intent));
            containers.extend(profile(ContainerKind::Quality, &ext.quality));
            containers.extend(ext.material.as_ref().map(|m| Container {
                kind: ContainerKind::Material,
                id: m.id.clone(),
                values: m.values.clone(),
            }));
            containers.extend(profile(ContainerKind::Variant, &ext.variant));
        }
        stack.configuration = Some(configuration);
        stack
    }

    /// The configuration the stacks were built from ([`Self::configured`]).
    pub fn configuration(&self) -> Option<&Configuration> {
        self.configuration.as_ref()
    }

    /// The containers of `stack` between the user's changes and the definition, top first.
    pub fn containers(&self, stack: StackId) -> &[Container] {
        match stack {
            StackId::Global => &self.global_containers,
            StackId::Extruder(n) => self
                .extruder_containers
                .get(n)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        }
    }

    /// Change the machine itself (Cura's definition changes, below every profile: a custom
    /// bed size, start G-code, nozzle size...). Checked like [`Self::set`].
    pub fn set_machine_setting(&mut self, o: &Override) -> Result<(), SettingsError> {
        let (def, per_extruder) = self.checked_definition(o)?;
        if o.text.strip_prefix('=').is_none() {
            parse_literal(def, &o.text)?;
        }
        let targets: Vec<StackId> = match o.extruder {
            Some(n) => vec![StackId::Extruder(n)],
            None if per_extruder => (0..self.extruder_containers.len())
                .map(StackId::Extruder)
                .collect(),
            None => vec![StackId::Global],
        };
        for target in targets {
            let containers = match target {
                StackId::Global => &mut self.global_containers,
                StackId::Extruder(n) => &mut self.extruder_containers[n],
            };
            let pos = match containers
                .iter()
                .position(|c| c.kind == ContainerKind::DefinitionChanges)
            {
                Some(p) => p,
                None => {
                    containers.push(Container {
                        kind: ContainerKind::DefinitionChanges,
                        id: "machine settings".to_owned(),
                        values: BTreeMap::new(),
                    });
                    containers.len() - 1
                }
            };
            containers[pos].values.insert(o.key.clone(), o.text.clone());
        }
        Ok(())
    }

    /// The definition of an override's key, whether it is per extruder, and its extruder
    /// checked against the machine.
    fn checked_definition(&self, o: &Override) -> Result<(&SettingDef, bool), SettingsError> {
        let Some(def) = self.definition(&o.key) else {
            return Err(SettingsError::UnknownSetting {
                key: o.key.clone(),
                suggestion: self.closest_key(&o.key),
            });
        };
        let count = self.user_extruders.len();
        if let Some(n) = o.extruder.filter(|n| *n >= count) {
            return Err(SettingsError::NoSuchExtruder { extruder: n, count });
        }
        Ok((def, def.flag("settable_per_extruder", true)))
    }

    /// The machine definition.
    pub fn machine(&self) -> &MachineDefinition {
        &self.machine
    }

    /// The quality profile applied, if any.
    pub fn quality(&self) -> Option<&QualityProfile> {
        self.quality.as_ref()
    }

    /// The definition of `key`, from the global chain or an extruder chain.
    pub fn definition(&self, key: &str) -> Option<&SettingDef> {
        self.machine.global.settings.get(key).or_else(|| {
            self.machine
                .extruders
                .iter()
                .find_map(|e| e.settings.get(key))
        })
    }

    /// Apply a user override, checking the key exists and the literal parses as its type.
    /// Settable-per-extruder keys go to the extruder stacks (all, or the one named), the
    /// others to the global stack — where Cura's UI puts them.
    pub fn set(&mut self, o: &Override) -> Result<(), SettingsError> {
        let (def, per_extruder) = self.checked_definition(o)?;
        let raw = match o.text.strip_prefix('=') {
            Some(f) => {
                parse(f).map_err(|source| SettingsError::Parse {
                    key: o.key.clone(),
                    property: "value".to_owned(),
                    source,
                })?;
                RawValue::Formula(f.to_owned())
            }
            None => RawValue::Literal(parse_literal(def, &o.text)?),
        };
        match o.extruder {
            Some(n) => {
                self.user_extruders[n].insert(o.key.clone(), raw);
            }
            None if per_extruder => {
                for e in &mut self.user_extruders {
                    e.insert(o.key.clone(), raw.clone());
                }
            }
            None => {
                self.user_global.insert(o.key.clone(), raw);
            }
        }
        Ok(())
    }

    fn closest_key(&self, key: &str) -> Option<String> {
        let all = self.machine.global.settings.keys().chain(
            self.machine
                .extruders
                .iter()
                .flat_map(|e| e.settings.keys()),
        );
        all.map(|k| (levenshtein(k, key), k))
            .filter(|(d, _)| *d <= key.len().max(4) / 3)
            .min()
            .map(|(_, k)| k.clone())
    }

    /// Resolve every setting of the global stack and of each extruder, then validate ranges.
    ///
    /// Like Cura (which checks the user's changes and the settings related to them), a range
    /// violation is an error when the user set the key or when the user's changes caused it; a
    /// violation the untouched machine profile already has (a few shipped definitions have
    /// some) is left alone, as Cura's front end leaves it.
    pub fn resolve(&self) -> Result<ResolvedSettings, SettingsError> {
        let mut r = Resolver::new(self);
        let (global, extruders) = r.all_values()?;
        let machine_keys = self
            .global_containers
            .iter()
            .chain(self.extruder_containers.iter().flatten())
            .filter(|c| c.kind == ContainerKind::DefinitionChanges)
            .flat_map(|c| c.values.keys());
        let user_keys: BTreeSet<String> = self
            .user_global
            .keys()
            .chain(self.user_extruders.iter().flat_map(BTreeMap::keys))
            .chain(machine_keys)
            .cloned()
            .collect();
        if !user_keys.is_empty() {
            let violations = r.violations(&global, &extruders, &user_keys)?;
            if !violations.is_empty() {
                // The same stacks without the user's and the machine settings' changes.
                let mut untouched = self.clone();
                untouched.user_global.clear();
                untouched
                    .user_extruders
                    .iter_mut()
                    .for_each(BTreeMap::clear);
                for c in untouched
                    .global_containers
                    .iter_mut()
                    .chain(untouched.extruder_containers.iter_mut().flatten())
                    .filter(|c| c.kind == ContainerKind::DefinitionChanges)
                {
                    c.values.clear();
                }
                let mut base = Resolver::new(&untouched);
                let (bg, be) = base.all_values()?;
                let before = base.violations(&bg, &be, &BTreeSet::new())?;
                if let Some(v) = violations.into_iter().find(|v| {
                    matches!(v, SettingsError::OutOfRange { user_set: true, .. })
                        || !before.contains(v)
                }) {
                    return Err(v);
                }
            }
        }
        Ok(ResolvedSettings {
            machine: self.machine.id().to_owned(),
            global,
            extruders,
            user_keys,
            diagnostics: r.diagnostics,
        })
    }

    /// Evaluate one property (`value`, `minimum_value`, `enabled`...) of `key` in `stack`.
    /// For many properties use [`Self::evaluator`], which shares the work between them.
    pub fn property(
        &self,
        stack: StackId,
        key: &str,
        property: &str,
    ) -> Result<Option<Value>, SettingsError> {
        self.evaluator().property(stack, key, property)
    }

    /// An evaluator that memoises setting values across many [`PropertyEvaluator::property`]
    /// calls (a UI listing bounds and `enabled` for every setting).
    pub fn evaluator(&self) -> PropertyEvaluator<'_> {
        PropertyEvaluator(Resolver::new(self))
    }
}

/// Evaluates properties of settings in one stack set, memoising shared dependencies.
pub struct PropertyEvaluator<'a>(Resolver<'a>);

impl std::fmt::Debug for PropertyEvaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropertyEvaluator")
            .field("machine", &self.0.stack.machine.id())
            .finish_non_exhaustive()
    }
}

impl PropertyEvaluator<'_> {
    /// Evaluate one property (`value`, `minimum_value`, `enabled`...) of `key` in `stack`;
    /// `None` when the setting does not have it.
    pub fn property(
        &mut self,
        stack: StackId,
        key: &str,
        property: &str,
    ) -> Result<Option<Value>, SettingsError> {
        self.0.property(stack, key, property)
    }

    /// Formulas that failed so far and were replaced by 0, as Cura does.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.0.diagnostics
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parse a user/quality literal as the setting's type.
pub fn parse_literal(def: &SettingDef, text: &str) -> Result<Value, SettingsError> {
    let bad = |message: &str| SettingsError::InvalidValue {
        key: def.key.clone(),
        text: text.to_owned(),
        message: message.to_owned(),
    };
    let t = text.trim();
    Ok(match def.setting_type() {
        "float" => {
            let f: f64 = t.parse().map_err(|_| bad("expected a number"))?;
            if !f.is_finite() {
                return Err(bad("expected a finite number"));
            }
            Value::Float(f)
        }
        "int" => match t.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => return Err(bad("expected an integer")),
        },
        "bool" => match t {
            "true" | "True" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "False" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad("expected true or false")),
        },
        "enum" => {
            let options = def.options();
            if !options.iter().any(|(k, _)| k == t) {
                let names: Vec<&str> = options.iter().map(|(k, _)| k.as_str()).collect();
                return Err(bad(&format!("expected one of {}", names.join(", "))));
            }
            Value::Str(t.to_owned())
        }
        "extruder" | "optional_extruder" => {
            t.parse::<i64>()
                .map_err(|_| bad("expected an extruder number"))?;
            Value::Str(t.to_owned())
        }
        "[int]" | "polygon" | "polygons" => {
            let json: Json = serde_json::from_str(t).map_err(|_| bad("expected a JSON list"))?;
            if !json.is_array() {
                return Err(bad("expected a list"));
            }
            Value::from_json(&json)
        }
        _ => Value::Str(text.to_owned()),
    })
}

type MemoKey = (StackId, String, String);

struct Resolver<'a> {
    stack: &'a SettingsStack,
    parsed: HashMap<String, Rc<Expr>>,
    /// Values computed outside any `resolve` (the common case), looked up without allocating.
    memo_plain: HashMap<StackId, HashMap<String, Value>>,
    /// Values computed while some `resolve` was in progress (they may differ).
    memo: HashMap<MemoKey, Value>,
    in_progress: Vec<MemoKey>,
    /// Global keys whose `resolve` is being evaluated (Cura's `_resolving_settings`).
    resolving: BTreeSet<String>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Resolver<'a> {
    fn new(stack: &'a SettingsStack) -> Self {
        Self {
            stack,
            parsed: HashMap::new(),
            memo_plain: HashMap::new(),
            memo: HashMap::new(),
            in_progress: Vec::new(),
            resolving: BTreeSet::new(),
            diagnostics: Vec::new(),
        }
    }

    fn global_def(&self, key: &str) -> Option<&'a SettingDef> {
        self.stack.machine.global.settings.get(key)
    }

    fn extruder_def(&self, n: usize, key: &str) -> Option<&'a SettingDef> {
        self.stack
            .machine
            .extruders
            .get(n)
            .and_then(|e| e.settings.get(key))
            .or_else(|| self.global_def(key))
    }

    fn def_in(&self, stack: StackId, key: &str) -> Option<&'a SettingDef> {
        match stack {
            StackId::Global => self.global_def(key),
            StackId::Extruder(n) => self.extruder_def(n, key),
        }
    }

    /// The raw `value` of `key` as the containers of `stack` give it (no evaluation): the
    /// user's changes, the profiles, the definition; an extruder stack then asks the global
    /// stack (Cura's `getRawProperty` through `next_stack`).
    fn raw(&self, stack: StackId, key: &str) -> Option<RawValue> {
        if let StackId::Extruder(n) = stack {
            if let Some(v) = self.stack.user_extruders.get(n).and_then(|u| u.get(key)) {
                return Some(v.clone());
            }
            if let Some(def) = self.extruder_def(n, key) {
                if let Some(v) = container_value(def, self.stack.containers(stack), key) {
                    return Some(v);
                }
            }
            if let Some(def) = self
                .stack
                .machine
                .extruders
                .get(n)
                .and_then(|e| e.settings.get(key))
            {
                if let Some(v) = definition_value(def) {
                    return Some(v);
                }
            }
            return self.raw(StackId::Global, key);
        }
        if let Some(v) = self.stack.user_global.get(key) {
            return Some(v.clone());
        }
        let def = self.global_def(key)?;
        container_value(def, &self.stack.global_containers, key).or_else(|| definition_value(def))
    }

    fn parsed(
        &mut self,
        key: &str,
        property: &str,
        formula: &str,
    ) -> Result<Rc<Expr>, SettingsError> {
        if let Some(e) = self.parsed.get(formula) {
            return Ok(e.clone());
        }
        let e = Rc::new(parse(formula).map_err(|source| SettingsError::Parse {
            key: key.to_owned(),
            property: property.to_owned(),
            source,
        })?);
        self.parsed.insert(formula.to_owned(), e.clone());
        Ok(e)
    }

    /// Evaluate a raw value in `stack`. Runtime errors become 0 plus a diagnostic, as in Cura;
    /// cycles and parse errors are fatal.
    fn eval_raw(
        &mut self,
        stack: StackId,
        key: &str,
        property: &str,
        raw: RawValue,
    ) -> Result<Value, SettingsError> {
        let formula = match raw {
            RawValue::Literal(v) => return Ok(v),
            RawValue::Formula(f) => f,
        };
        let expr = self.parsed(key, property, &formula)?;
        let mut scope = FormulaScope {
            resolver: self,
            stack,
            fatal: None,
        };
        let result = evaluate(&expr, &mut scope);
        if let Some(fatal) = scope.fatal.take() {
            return Err(fatal);
        }
        match result {
            Ok(v) => Ok(v),
            Err(error @ EvalError::Cycle(_)) => Err(SettingsError::Eval(error)),
            Err(error) => {
                self.diagnostics.push(Diagnostic {
                    key: key.to_owned(),
                    stack,
                    property: property.to_owned(),
                    error,
                });
                Ok(Value::Int(0))
            }
        }
    }

    /// A property other than `value`, from the definitions, evaluated in `stack`.
    fn property(
        &mut self,
        stack: StackId,
        key: &str,
        property: &str,
    ) -> Result<Option<Value>, SettingsError> {
        if property == "value" {
            return self.get(stack, key).map(Some);
        }
        let Some(def) = self.def_in(stack, key) else {
            return Ok(None);
        };
        match def.props.get(property) {
            None => Ok(None),
            Some(Json::String(f)) => {
                let f = f.clone();
                self.eval_raw(stack, key, property, RawValue::Formula(f))
                    .map(Some)
            }
            Some(other) => Ok(Some(Value::from_json(other))),
        }
    }

    fn memo_key(&self, stack: StackId, key: &str) -> MemoKey {
        let resolving = self.resolving.iter().cloned().collect::<Vec<_>>().join(",");
        (stack, key.to_owned(), resolving)
    }

    /// Cura's `stack.getProperty(key, "value")`.
    fn get(&mut self, stack: StackId, key: &str) -> Result<Value, SettingsError> {
        if self.resolving.is_empty() {
            if let Some(v) = self.memo_plain.get(&stack).and_then(|m| m.get(key)) {
                return Ok(v.clone());
            }
        }
        let mk = self.memo_key(stack, key);
        if let Some(v) = self.memo.get(&mk) {
            return Ok(v.clone());
        }
        if self.in_progress.contains(&mk) {
            let mut path: Vec<String> = self
                .in_progress
                .iter()
                .skip_while(|k| **k != mk)
                .map(|(s, k, _)| stack_label(*s, k))
                .collect();
            path.push(stack_label(stack, key));
            return Err(SettingsError::Eval(EvalError::Cycle(path)));
        }
        self.in_progress.push(mk.clone());
        let result = match stack {
            StackId::Global => self.get_global(key),
            StackId::Extruder(n) => self.get_extruder(n, key),
        };
        self.in_progress.pop();
        let v = result?;
        if mk.2.is_empty() {
            self.memo_plain
                .entry(stack)
                .or_default()
                .insert(mk.1, v.clone());
        } else {
            self.memo.insert(mk, v.clone());
        }
        Ok(v)
    }

    fn limit_to_extruder(
        &mut self,
        stack: StackId,
        key: &str,
    ) -> Result<Option<usize>, SettingsError> {
        let Some(v) = self.property(stack, key, "limit_to_extruder")? else {
            return Ok(None);
        };
        let n = match &v {
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            other => other.as_f64().map(|f| f.round() as i64),
        };
        Ok(match n {
            // Cura maps -1 to the default extruder only on the global stack.
            Some(-1) if stack == StackId::Global => Some(0),
            Some(n) if n >= 0 => usize::try_from(n).ok(),
            _ => None,
        })
    }

    fn get_global(&mut self, key: &str) -> Result<Value, SettingsError> {
        let Some(def) = self.global_def(key) else {
            return Ok(Value::None);
        };
        if def.props.contains_key("resolve")
            && !self.resolving.contains(key)
            && !self.stack.user_global.contains_key(key)
        {
            self.resolving.insert(key.to_owned());
            let resolved = self.property(StackId::Global, key, "resolve");
            self.resolving.remove(key);
            let resolved = resolved?;
            if let Some(v) = resolved {
                if v != Value::None {
                    return Ok(v);
                }
            }
        }
        if let Some(n) = self.limit_to_extruder(StackId::Global, key)? {
            if n < self.stack.machine.extruders.len() && def.flag("settable_per_extruder", true) {
                let v = self.get(StackId::Extruder(n), key)?;
                if v != Value::None {
                    return Ok(v);
                }
            }
        }
        match self.raw(StackId::Global, key) {
            Some(raw) => self.eval_raw(StackId::Global, key, "value", raw),
            None => Ok(Value::None),
        }
    }

    fn get_extruder(&mut self, n: usize, key: &str) -> Result<Value, SettingsError> {
        let Some(def) = self.extruder_def(n, key) else {
            return Ok(Value::None);
        };
        if !def.flag("settable_per_extruder", true) {
            return self.get(StackId::Global, key);
        }
        if let Some(target) = self.limit_to_extruder(StackId::Extruder(n), key)? {
            if target != n && target < self.stack.machine.extruders.len() {
                let v = self.get(StackId::Extruder(target), key)?;
                if v != Value::None {
                    return Ok(v);
                }
            }
        }
        match self.raw(StackId::Extruder(n), key) {
            Some(raw) => self.eval_raw(StackId::Extruder(n), key, "value", raw),
            None => Ok(Value::None),
        }
    }

    /// Cura's `ExtruderManager.getExtruderValue`: the extruder's raw value evaluated there,
    /// falling back to the global value.
    fn extruder_value(&mut self, n: usize, key: &str) -> Result<Value, SettingsError> {
        match self.raw(StackId::Extruder(n), key) {
            Some(raw) => {
                // Memoise under a distinct stack label: raw evaluation skips limit_to_extruder.
                self.eval_raw(StackId::Extruder(n), key, "value", raw)
            }
            None => self.get(StackId::Global, key),
        }
    }

    #[allow(clippy::type_complexity)]
    fn all_values(
        &mut self,
    ) -> Result<(BTreeMap<String, Value>, Vec<BTreeMap<String, Value>>), SettingsError> {
        let machine = &self.stack.machine;
        let mut global = BTreeMap::new();
        for key in &machine.global.order {
            global.insert(key.clone(), self.get(StackId::Global, key)?);
        }
        let mut extruders = Vec::new();
        for (i, chain) in machine.extruders.iter().enumerate() {
            let mut values = BTreeMap::new();
            for key in machine.global.order.iter().chain(&chain.order) {
                if !values.contains_key(key) {
                    values.insert(key.clone(), self.get(StackId::Extruder(i), key)?);
                }
            }
            extruders.push(values);
        }
        Ok((global, extruders))
    }

    /// Every enabled (or user-set) numeric setting outside its hard bounds.
    fn violations(
        &mut self,
        global: &BTreeMap<String, Value>,
        extruders: &[BTreeMap<String, Value>],
        user_keys: &BTreeSet<String>,
    ) -> Result<Vec<SettingsError>, SettingsError> {
        let mut checks: Vec<(StackId, &String, &Value)> = Vec::new();
        for (k, v) in global {
            let per_extruder = self
                .global_def(k)
                .is_some_and(|d| d.flag("settable_per_extruder", true));
            if !per_extruder {
                checks.push((StackId::Global, k, v));
            }
        }
        for (i, values) in extruders.iter().enumerate() {
            for (k, v) in values {
                if self
                    .extruder_def(i, k)
                    .is_some_and(|d| d.flag("settable_per_extruder", true))
                {
                    checks.push((StackId::Extruder(i), k, v));
                }
            }
        }
        let mut out = Vec::new();
        for (stack, key, value) in checks {
            let Some(x) = value.as_f64() else { continue };
            if matches!(value, Value::Bool(_)) {
                continue;
            }
            let user_set = user_keys.contains(key);
            if !user_set {
                let enabled = self.property(stack, key, "enabled")?;
                if enabled.is_some_and(|e| !e.truthy()) {
                    continue;
                }
            }
            for (prop, is_min) in [("minimum_value", true), ("maximum_value", false)] {
                let Some(bound) = self.property(stack, key, prop)? else {
                    continue;
                };
                let Some(b) = bound.as_f64() else { continue };
                if (is_min && x < b) || (!is_min && x > b) {
                    out.push(SettingsError::OutOfRange {
                        key: key.clone(),
                        value: value.to_string(),
                        bound: format!("must be {} {bound}", if is_min { ">=" } else { "<=" }),
                        user_set,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn stack_label(stack: StackId, key: &str) -> String {
    match stack {
        StackId::Global => key.to_owned(),
        StackId::Extruder(n) => format!("{key}@{n}"),
    }
}

/// The first value the containers give for `key` (a literal that does not parse as the
/// setting's type is skipped, as Cura skips it).
fn container_value(def: &SettingDef, containers: &[Container], key: &str) -> Option<RawValue> {
    containers.iter().find_map(|c| {
        let text = c.values.get(key)?;
        match text.strip_prefix('=') {
            Some(f) => Some(RawValue::Formula(f.to_owned())),
            None => parse_literal(def, text).ok().map(RawValue::Literal),
        }
    })
}

/// A definition's `value` (formula or literal), falling back to `default_value` (UM's rule).
fn definition_value(def: &SettingDef) -> Option<RawValue> {
    match def.props.get("value") {
        Some(Json::String(f)) => Some(RawValue::Formula(f.clone())),
        Some(other) => Some(RawValue::Literal(Value::from_json(other))),
        None => def
            .props
            .get("default_value")
            .map(|d| RawValue::Literal(Value::from_json(d))),
    }
}

struct FormulaScope<'r, 'a> {
    resolver: &'r mut Resolver<'a>,
    stack: StackId,
    /// A fatal error (cycle, parse error in a dependency) to surface after evaluation.
    fatal: Option<SettingsError>,
}

impl FormulaScope<'_, '_> {
    fn lift(&mut self, r: Result<Value, SettingsError>) -> Result<Value, EvalError> {
        r.map_err(|e| {
            let as_eval = match &e {
                SettingsError::Eval(inner) => inner.clone(),
                other => EvalError::Argument {
                    function: "setting".to_owned(),
                    message: other.to_string(),
                },
            };
            self.fatal.get_or_insert(e);
            as_eval
        })
    }

    fn extruder_index(&self, v: &Value) -> Result<usize, EvalError> {
        let n = match v {
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            other => other.as_f64().map(|f| f as i64),
        };
        let count = self.resolver.stack.machine.extruders.len();
        match n {
            Some(-1) => Ok(0),
            Some(n) if n >= 0 && (n as usize) < count => Ok(n as usize),
            _ => Err(EvalError::Argument {
                function: "extruderValue".to_owned(),
                message: format!("no extruder {v} (machine has {count})"),
            }),
        }
    }
}

fn key_arg(function: &str, args: &[Value], i: usize) -> Result<String, EvalError> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s.clone()),
        _ => Err(EvalError::Argument {
            function: function.to_owned(),
            message: format!("argument {} must be a setting key", i + 1),
        }),
    }
}

impl Scope for FormulaScope<'_, '_> {
    fn setting(&mut self, name: &str) -> Result<Value, EvalError> {
        let r = self.resolver.get(self.stack, name);
        self.lift(r)
    }

    fn cura_function(&mut self, name: &str, args: &[Value]) -> Option<Result<Value, EvalError>> {
        let count = self.resolver.stack.machine.extruders.len();
        let result = (|| -> Result<Value, EvalError> {
            match name {
                "extruderValue" => {
                    let n = self.extruder_index(args.first().unwrap_or(&Value::None))?;
                    let key = key_arg(name, args, 1)?;
                    let r = self.resolver.extruder_value(n, &key);
                    self.lift(r)
                }
                "extruderValues" | "anyExtruderWithMaterial" => {
                    let key = key_arg(name, args, 0)?;
                    let mut out = Vec::new();
                    for n in 0..count {
                        let r = self.resolver.extruder_value(n, &key);
                        let v = self.lift(r)?;
                        if v != Value::None {
                            out.push(v);
                        }
                    }
                    if out.is_empty() {
                        let r = self.resolver.get(StackId::Global, &key);
                        out.push(self.lift(r)?);
                    }
                    if name == "anyExtruderWithMaterial" {
                        return Ok(Value::Bool(out.iter().any(Value::truthy)));
                    }
                    Ok(Value::List(out))
                }
                "anyExtruderNrWithOrDefault" => {
                    let key = key_arg(name, args, 0)?;
                    for n in 0..count {
                        let r = self.resolver.extruder_value(n, &key);
                        if self.lift(r)?.truthy() {
                            return Ok(Value::Int(n as i64));
                        }
                    }
                    Ok(Value::Int(0))
                }
                "resolveOrValue" | "getDefaultExtruderValue" => {
                    let key = key_arg(name, args, 0)?;
                    let r = if name == "resolveOrValue" {
                        self.resolver.get(StackId::Global, &key)
                    } else {
                        self.resolver.extruder_value(0, &key)
                    };
                    self.lift(r)
                }
                "defaultExtruderPosition" => Ok(Value::Str("0".to_owned())),
                "valueFromContainer" | "extruderValueFromContainer" => {
                    let key = key_arg(name, args, 0)?;
                    let index = args.get(1).and_then(Value::as_i64).unwrap_or(0);
                    let resolver = &*self.resolver;
                    let def = resolver.global_def(&key);
                    let raw = match index {
                        0 => resolver.stack.user_global.get(&key).cloned(),
                        1..=6 => def.and_then(|def| {
                            let at: Vec<Container> = resolver
                                .stack
                                .global_containers
                                .iter()
                                .filter(|c| c.kind.cura_index() == index)
                                .cloned()
                                .collect();
                            container_value(def, &at, &key)
                        }),
                        _ => def.and_then(definition_value),
                    };
                    match raw {
                        Some(raw) => {
                            let stack = self.stack;
                            let r = self.resolver.eval_raw(stack, &key, "value", raw);
                            self.lift(r)
                        }
                        None => Ok(Value::None),
                    }
                }
                _ => Err(EvalError::UnknownFunction(name.to_owned())),
            }
        })();
        match result {
            Err(EvalError::UnknownFunction(_)) => None,
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Resources;

    /// A two-extruder machine exercising resolve, limit_to_extruder and per-extruder values.
    fn fixture(settings: &str) -> (tempfile::TempDir, Resources) {
        let dir = tempfile::tempdir().unwrap();
        let defs = dir.path().join("definitions");
        let extr = dir.path().join("extruders");
        std::fs::create_dir_all(&defs).unwrap();
        std::fs::create_dir_all(&extr).unwrap();
        std::fs::write(
            defs.join("fdmprinter.def.json"),
            format!(r#"{{"name": "base", "settings": {{"cat": {{"type": "category", "children": {settings}}}}}}}"#),
        )
        .unwrap();
        std::fs::write(
            defs.join("twin.def.json"),
            r#"{"name": "Twin", "inherits": "fdmprinter",
                "metadata": {"visible": true, "machine_extruder_trains": {"0": "twin_e0", "1": "twin_e1"}},
                "overrides": {"density": {"default_value": 30}}}"#,
        )
        .unwrap();
        std::fs::write(
            extr.join("fdmextruder.def.json"),
            r#"{"name": "e", "settings": {"m": {"type": "category", "children": {
                "extruder_nr": {"type": "extruder", "default_value": "0", "settable_per_extruder": true},
                "nozzle": {"type": "float", "default_value": 0.4, "settable_per_extruder": true}}}}}"#,
        )
        .unwrap();
        for (i, nozzle) in [(0, 0.4), (1, 0.6)] {
            std::fs::write(
                extr.join(format!("twin_e{i}.def.json")),
                format!(r#"{{"name": "E{i}", "inherits": "fdmextruder", "overrides": {{"extruder_nr": {{"default_value": "{i}"}}, "nozzle": {{"default_value": {nozzle}}}}}}}"#),
            )
            .unwrap();
        }
        let r = Resources::at(dir.path()).unwrap();
        (dir, r)
    }

    const SETTINGS: &str = r#"{
        "infill_extruder_nr": {"type": "extruder", "default_value": "-1", "settable_per_extruder": false},
        "density": {"type": "float", "default_value": 20, "minimum_value": "0", "maximum_value": "100", "limit_to_extruder": "infill_extruder_nr"},
        "line": {"type": "float", "default_value": 1, "value": "nozzle * 2"},
        "widest": {"type": "float", "default_value": 0, "value": "max(extruderValues('line'))", "settable_per_extruder": false},
        "mode": {"type": "enum", "options": {"a": "A", "b": "B"}, "default_value": "a",
                 "resolve": "'b' if 'b' in extruderValues('mode') else 'a'", "settable_per_extruder": false}
    }"#;

    #[test]
    fn per_extruder_limit_and_resolve() {
        let (_d, r) = fixture(SETTINGS);
        let mut stack = SettingsStack::new(r.load_machine("twin").unwrap(), None);
        let v = stack.resolve().unwrap();
        assert_eq!(v.extruder(0, "line"), Some(&Value::Float(0.8)));
        assert_eq!(v.extruder(1, "line"), Some(&Value::Float(1.2)));
        assert_eq!(v.get("widest"), Some(&Value::Float(1.2)));
        assert_eq!(v.get("density"), Some(&Value::Int(30)));
        // limit_to_extruder: the global value follows the infill extruder's.
        stack
            .set(&Override::parse("density@1=55").unwrap())
            .unwrap();
        stack
            .set(&Override::parse("infill_extruder_nr=1").unwrap())
            .unwrap();
        let v = stack.resolve().unwrap();
        assert_eq!(v.get("density"), Some(&Value::Float(55.0)));
        // Cura redirects every stack's lookup of a limited setting to the limiting extruder.
        assert_eq!(v.extruder(0, "density"), Some(&Value::Float(55.0)));
        // resolve: one extruder asking for "b" wins; a global user value overrides resolve.
        stack.set(&Override::parse("mode@0=b").unwrap()).unwrap();
        assert_eq!(
            stack.resolve().unwrap().get("mode"),
            Some(&Value::Str("b".into()))
        );
        assert!(matches!(
            stack.set(&Override::parse("mode@2=b").unwrap()),
            Err(SettingsError::NoSuchExtruder {
                extruder: 2,
                count: 2
            })
        ));
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let (_d, r) = fixture(
            r#"{"a": {"type": "float", "default_value": 1, "value": "b + 1"},
                "b": {"type": "float", "default_value": 1, "value": "a * 2"}}"#,
        );
        let err = SettingsStack::new(r.load_machine("twin").unwrap(), None)
            .resolve()
            .unwrap_err();
        match err {
            SettingsError::Eval(EvalError::Cycle(path)) => {
                assert!(path.len() >= 3, "{path:?}");
                assert_eq!(path.first(), path.last());
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn runtime_errors_become_zero_with_a_diagnostic() {
        let (_d, r) = fixture(r#"{"q": {"type": "float", "default_value": 1, "value": "1 / 0"}}"#);
        let v = SettingsStack::new(r.load_machine("twin").unwrap(), None)
            .resolve()
            .unwrap();
        assert_eq!(v.get("q"), Some(&Value::Int(0)));
        assert!(v
            .diagnostics
            .iter()
            .any(|d| d.key == "q" && d.error == EvalError::DivisionByZero));
    }
}
