//! The settings a user may change, described for a UI.

use super::resolve::{ResolvedSettings, SettingsError, SettingsStack, StackId};
use super::value::Value;

/// One user-changeable setting, with its current (resolved) value and bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingInfo {
    /// Key (`infill_sparse_density`).
    pub key: String,
    /// Label (`Infill Density`).
    pub label: String,
    /// Description from the definition.
    pub description: String,
    /// Category key (`infill`).
    pub category: String,
    /// Type (`float`, `int`, `bool`, `enum`, `str`, `extruder`, `[int]`...).
    pub setting_type: String,
    /// Unit (`mm`, `%`, `°C`...), empty if none.
    pub unit: String,
    /// Value for this profile (after formulas).
    pub value: Value,
    /// Hard lower bound, if any.
    pub minimum: Option<f64>,
    /// Hard upper bound, if any.
    pub maximum: Option<f64>,
    /// `(value, label)` options of an enum.
    pub options: Vec<(String, String)>,
    /// Whether Cura would show it as enabled for this profile.
    pub enabled: bool,
    /// Whether it can differ per extruder (then `value` is extruder 0's).
    pub per_extruder: bool,
}

/// Categories that describe the machine itself, changed in Cura's machine dialog, not per print.
const MACHINE_CATEGORIES: &[&str] = &["machine_settings"];

/// Every user-changeable setting of `stack`, in definition order, with values from `resolved`.
pub fn user_settings(
    stack: &SettingsStack,
    resolved: &ResolvedSettings,
) -> Result<Vec<SettingInfo>, SettingsError> {
    let chain = &stack.machine().global;
    let mut eval = stack.evaluator();
    let mut out = Vec::new();
    for key in &chain.order {
        let Some(def) = chain.settings.get(key) else {
            continue;
        };
        if MACHINE_CATEGORIES.contains(&def.category.as_str()) || def.category.is_empty() {
            continue;
        }
        let per_extruder = def.flag("settable_per_extruder", true);
        let at = if per_extruder && !resolved.extruders.is_empty() {
            StackId::Extruder(0)
        } else {
            StackId::Global
        };
        let value = match at {
            StackId::Extruder(n) => resolved.extruder(n, key),
            StackId::Global => resolved.get(key),
        }
        .cloned()
        .unwrap_or(Value::None);
        let mut bound = |prop: &str| -> Result<Option<f64>, SettingsError> {
            Ok(eval.property(at, key, prop)?.and_then(|v| v.as_f64()))
        };
        let (minimum, maximum) = (bound("minimum_value")?, bound("maximum_value")?);
        out.push(SettingInfo {
            key: key.clone(),
            label: def.str_prop("label").unwrap_or(key).to_owned(),
            description: def.str_prop("description").unwrap_or("").to_owned(),
            category: def.category.clone(),
            setting_type: def.setting_type().to_owned(),
            unit: def.str_prop("unit").unwrap_or("").to_owned(),
            value,
            minimum,
            maximum,
            options: def.options(),
            enabled: eval
                .property(at, key, "enabled")?
                .is_none_or(|v| v.truthy()),
            per_extruder,
        });
    }
    Ok(out)
}
