//! Start/end G-code placeholders (`{machine_depth}`, `{material_print_temperature, 0}`), filled
//! the way Cura's front end fills them before handing the G-code to the engine.

use std::collections::BTreeMap;

use super::resolve::ResolvedSettings;
use super::value::Value;

/// Temperature keys whose presence in the start G-code stops the engine prepending its own
/// heat-up commands (Cura's `material_bed_temp_prepend` / `material_print_temp_prepend`).
const BED_TEMPERATURE_KEYS: &[&str] = &[
    "material_bed_temperature",
    "material_bed_temperature_layer_0",
];
const PRINT_TEMPERATURE_KEYS: &[&str] = &[
    "material_print_temperature",
    "material_print_temperature_layer_0",
    "default_material_print_temperature",
    "material_initial_print_temperature",
    "material_final_print_temperature",
    "material_standby_temperature",
];

/// The extra tokens Cura's front end offers besides setting keys.
fn extra_tokens(
    values: &BTreeMap<String, Value>,
    initial_extruder: usize,
) -> BTreeMap<String, Value> {
    let mut extra = BTreeMap::new();
    for (alias, key) in [
        ("print_bed_temperature", "material_bed_temperature"),
        ("print_temperature", "material_print_temperature"),
        ("travel_speed", "speed_travel"),
    ] {
        if let Some(v) = values.get(key) {
            extra.insert(alias.to_owned(), v.clone());
        }
    }
    extra.insert(
        "initial_extruder_nr".to_owned(),
        Value::Int(initial_extruder as i64),
    );
    extra
}

/// Whether `gcode` mentions one of `keys` as a placeholder (`{key}` or `{key, n}`).
fn mentions(gcode: &str, keys: &[&str]) -> bool {
    keys.iter().any(|k| {
        gcode.match_indices(&format!("{{{k}")).any(|(i, m)| {
            let rest = &gcode[i + m.len()..];
            rest.starts_with('}')
                || rest
                    .strip_prefix(',')
                    .and_then(|r| r.split_once('}'))
                    .is_some_and(|(n, _)| {
                        let n = n.trim_start();
                        !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_')
                    })
        })
    })
}

/// Whether the engine should prepend bed heating (no bed temperature placeholder in `start`).
pub fn bed_temp_prepend(start: &str) -> bool {
    !mentions(start, BED_TEMPERATURE_KEYS)
}

/// Whether the engine should prepend nozzle heating (no nozzle temperature placeholder).
pub fn print_temp_prepend(start: &str) -> bool {
    !mentions(start, PRINT_TEMPERATURE_KEYS)
}

/// Replace `{key}` and `{key, extruder}` placeholders in `template`.
///
/// A plain `{key}` takes the value of `default_extruder` (or the global value when that
/// extruder lacks the key); `{key, n}` takes extruder `n`'s. Unknown keys stay literal, `{{` and
/// `}}` are escapes, as with Python's `str.format` that Cura uses.
///
/// ```
/// # use std::collections::BTreeMap;
/// use easyprint_slicer::settings::{gcode_tokens::fill, ResolvedSettings, Value};
/// let mut global = BTreeMap::new();
/// global.insert("machine_depth".to_owned(), Value::Int(235));
/// let s = ResolvedSettings { machine: "m".into(), global, extruders: vec![BTreeMap::new()],
///     user_keys: Default::default(), diagnostics: vec![] };
/// assert_eq!(fill("G1 Y{machine_depth} {nope} {{x}}", &s, 0), "G1 Y235 {nope} {x}");
/// ```
pub fn fill(template: &str, settings: &ResolvedSettings, default_extruder: usize) -> String {
    let global_extra = extra_tokens(&settings.global, default_extruder);
    let lookup = |key: &str, extruder: Option<usize>| -> Option<String> {
        let n = extruder.unwrap_or(default_extruder);
        if let Some(e) = settings.extruders.get(n) {
            if let Some(v) = e.get(key) {
                return Some(v.to_string());
            }
            if let Some(v) = extra_tokens(e, default_extruder).get(key) {
                return Some(v.to_string());
            }
        }
        settings
            .global
            .get(key)
            .or_else(|| global_extra.get(key))
            .map(ToString::to_string)
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        let Some(end) = tail.find('}') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let field = &tail[1..end];
        let (key, extruder) = match field.split_once(',') {
            Some((k, n)) => {
                let n = n.trim();
                let idx = n.parse::<usize>().ok().or_else(|| {
                    settings
                        .global
                        .get(n)
                        .or_else(|| global_extra.get(n))
                        .and_then(|v| match v {
                            Value::Str(s) => s.parse().ok(),
                            other => other.as_i64().and_then(|i| usize::try_from(i).ok()),
                        })
                });
                (k.trim(), idx.map(Some))
            }
            None => (field.trim(), Some(None)),
        };
        match extruder.and_then(|e| lookup(key, e)) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ResolvedSettings {
        let mut global = BTreeMap::new();
        global.insert("material_bed_temperature".to_owned(), Value::Float(60.0));
        global.insert("initial_extruder_nr".to_owned(), Value::Int(0));
        let mut e0 = BTreeMap::new();
        e0.insert("material_print_temperature".to_owned(), Value::Float(200.0));
        let mut e1 = BTreeMap::new();
        e1.insert("material_print_temperature".to_owned(), Value::Float(230.0));
        ResolvedSettings {
            machine: "m".into(),
            global,
            extruders: vec![e0, e1],
            user_keys: Default::default(),
            diagnostics: vec![],
        }
    }

    #[test]
    fn extruder_specific_and_default() {
        let s = settings();
        assert_eq!(
            fill(
                "M104 S{material_print_temperature} T1 S{material_print_temperature, 1}",
                &s,
                0
            ),
            "M104 S200.0 T1 S230.0"
        );
        assert_eq!(
            fill("M109 S{material_print_temperature, initial_extruder_nr} M190 S{print_bed_temperature}", &s, 1),
            "M109 S200.0 M190 S60.0"
        );
        assert_eq!(fill("a } b { c", &s, 0), "a } b { c");
    }

    #[test]
    fn prepend_detection() {
        assert!(!bed_temp_prepend(
            "M190 S{material_bed_temperature_layer_0}"
        ));
        assert!(!print_temp_prepend("M109 S{material_print_temperature, 0}"));
        assert!(bed_temp_prepend("G28\nM104 S{material_print_temperature}"));
        assert!(print_temp_prepend("{material_print_temperature_x}"));
    }
}
