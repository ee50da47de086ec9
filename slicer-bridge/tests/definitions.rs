//! Every formula in Cura's shipped definitions parses, and resolves for real machines.
//! Reads the Cura resources that `scripts/install-deps` installs.

use easyprint_slicer::settings::{
    expr::parse, user_settings, Override, Resources, SettingsError, SettingsStack, StackId, Value,
};

const FORMULA_PROPERTIES: &[&str] = &[
    "value",
    "resolve",
    "enabled",
    "minimum_value",
    "maximum_value",
    "minimum_value_warning",
    "maximum_value_warning",
    "limit_to_extruder",
    "warning_value",
    "error_value",
];

fn resources() -> Resources {
    Resources::discover(None).expect("Cura resources (scripts/install-deps installs them)")
}

#[test]
fn every_shipped_formula_parses() {
    let r = resources();
    let mut count = 0;
    let mut failures = Vec::new();
    for dir in [r.definitions_dir(), r.extruders_dir()] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut stack: Vec<&serde_json::Value> = Vec::new();
            stack.extend(json.get("settings"));
            stack.extend(json.get("overrides"));
            while let Some(node) = stack.pop() {
                let Some(obj) = node.as_object() else {
                    continue;
                };
                for (key, def) in obj {
                    for prop in FORMULA_PROPERTIES {
                        if let Some(f) = def.get(*prop).and_then(|v| v.as_str()) {
                            count += 1;
                            if let Err(e) = parse(f) {
                                failures.push(format!("{}: {key}.{prop}: {e}", path.display()));
                            }
                        }
                    }
                    stack.extend(def.get("children"));
                }
            }
        }
    }
    assert!(count > 5000, "only {count} formulas found");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Resolve every setting and evaluate every formula property in every stack of `id`.
fn check_machine(r: &Resources, id: &str) -> Vec<String> {
    let machine = r.load_machine(id).unwrap();
    let configuration = r.configure(&machine, &Default::default()).unwrap();
    let stack = SettingsStack::configured(machine, configuration);
    let resolved = match stack.resolve() {
        Ok(v) => v,
        Err(e) => return vec![format!("{id}: {e}")],
    };
    let mut problems: Vec<String> = resolved
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{id}: {}.{} in {:?}: {}",
                d.key, d.property, d.stack, d.error
            )
        })
        .collect();
    let chain = &stack.machine().global;
    let mut eval = stack.evaluator();
    let stacks = std::iter::once(StackId::Global)
        .chain((0..stack.machine().extruders.len()).map(StackId::Extruder));
    for s in stacks {
        for (key, def) in &chain.settings {
            for prop in FORMULA_PROPERTIES.iter().skip(1) {
                if def.props.get(*prop).is_some_and(|v| v.is_string()) {
                    if let Err(e) = eval.property(s, key, prop) {
                        problems.push(format!("{id}: {key}.{prop} in {s:?}: {e}"));
                    }
                }
            }
        }
    }
    problems.extend(eval.diagnostics().iter().map(|d| {
        format!(
            "{id}: {}.{} in {:?}: {}",
            d.key, d.property, d.stack, d.error
        )
    }));
    problems
}

#[test]
fn formulas_evaluate_for_several_machines() {
    let r = resources();
    let mut problems = Vec::new();
    for id in [
        "creality_ender3",
        "anet3d_a8",
        "prusa_i3",
        "ultimaker2",
        "ultimaker_s5",
        "custom",
    ] {
        problems.extend(check_machine(&r, id));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_visible_machine_resolves() {
    let r = resources();
    let machines = r.machines().unwrap();
    assert!(machines.len() > 100);
    assert!(machines.iter().any(|m| m.id == "anet3d_a8"));
    let mut problems = Vec::new();
    let mut missing_extruders = 0;
    for m in &machines {
        // Debian's package lacks a few extruder files; that must be a clear NotFound.
        let machine = match r.load_machine(&m.id) {
            Ok(machine) => machine,
            Err(easyprint_slicer::settings::DefinitionError::NotFound { id, .. }) => {
                assert!(id.contains("extruder"), "{id}");
                missing_extruders += 1;
                continue;
            }
            Err(e) => panic!("{}: {e}", m.id),
        };
        // Cura's default configuration: preferred nozzle, material, quality (per material
        // where the machine has such profiles).
        let configured = r
            .configure(&machine, &Default::default())
            .map_err(|e| e.to_string())
            .and_then(|c| {
                SettingsStack::configured(machine, c)
                    .resolve()
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = configured {
            problems.push(format!("{}: {e}", m.id));
        }
    }
    assert!(
        missing_extruders < machines.len() / 20,
        "{missing_extruders} missing"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn derived_settings_follow_user_changes() {
    let r = resources();
    let machine = r.load_machine("creality_ender3").unwrap();
    let mut stack = SettingsStack::new(machine, None);
    let base = stack.resolve().unwrap();
    // Cura's Ender 3 profile says skirt (a `value` the engine alone would ignore).
    assert_eq!(base.get("adhesion_type"), Some(&Value::Str("skirt".into())));
    assert_eq!(base.number("machine_depth"), Some(235.0));
    stack
        .set(&Override::parse("infill_sparse_density=50").unwrap())
        .unwrap();
    stack
        .set(&Override::parse("wall_thickness=1.6").unwrap())
        .unwrap();
    let r2 = stack.resolve().unwrap();
    // creality_base picks cubic infill at 50 %: line distance = 0.4 * 100 / 50 * 3.
    assert_eq!(
        r2.extruder(0, "infill_pattern"),
        Some(&Value::Str("cubic".into()))
    );
    let ild = r2
        .extruder(0, "infill_line_distance")
        .unwrap()
        .as_f64()
        .unwrap();
    assert!((ild - 2.4).abs() < 1e-9, "{ild}");
    stack
        .set(&Override::parse("infill_pattern=grid").unwrap())
        .unwrap();
    let r3 = stack.resolve().unwrap();
    let ild = r3
        .extruder(0, "infill_line_distance")
        .unwrap()
        .as_f64()
        .unwrap();
    assert!((ild - 1.6).abs() < 1e-9, "{ild}");
    assert_eq!(
        r2.extruder(0, "wall_line_count").and_then(Value::as_i64),
        Some(4)
    );
    // Global values of limit_to_extruder settings come from the extruder.
    assert_eq!(r2.number("infill_sparse_density"), Some(50.0));
}

#[test]
fn bad_overrides_are_rejected_clearly() {
    let r = resources();
    let machine = r.load_machine("anet3d_a8").unwrap();
    let mut stack = SettingsStack::new(machine, None);
    let e = stack
        .set(&Override::parse("layer_hieght=0.2").unwrap())
        .unwrap_err();
    assert!(
        matches!(e, SettingsError::UnknownSetting { ref suggestion, .. } if suggestion.as_deref() == Some("layer_height")),
        "{e}"
    );
    assert!(e.to_string().contains("did you mean `layer_height`"));
    let e = stack
        .set(&Override::parse("layer_height=thick").unwrap())
        .unwrap_err();
    assert!(matches!(e, SettingsError::InvalidValue { .. }), "{e}");
    let e = stack
        .set(&Override::parse("adhesion_type=glue").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("skirt"), "{e}");
    stack
        .set(&Override::parse("layer_height=-1").unwrap())
        .unwrap();
    let e = stack.resolve().unwrap_err();
    assert!(
        matches!(e, SettingsError::OutOfRange { ref key, user_set: true, .. } if key == "layer_height"),
        "{e}"
    );
}

#[test]
fn quality_profiles_apply() {
    let r = resources();
    let machine = r.load_machine("creality_ender3").unwrap();
    let qualities = r.qualities(&machine).unwrap();
    assert!(qualities.iter().any(|q| q.quality_type == "standard"));
    let draft = r
        .quality(&machine, "draft")
        .or_else(|_| r.quality(&machine, "low"))
        .unwrap();
    let lh: f64 = draft.values["layer_height"].parse().unwrap();
    let resolved = SettingsStack::new(machine.clone(), Some(draft))
        .resolve()
        .unwrap();
    assert_eq!(resolved.number("layer_height"), Some(lh));
    assert!(matches!(
        r.quality(&machine, "nonexistent"),
        Err(easyprint_slicer::settings::DefinitionError::QualityNotFound { .. })
    ));
}

#[test]
fn ui_catalog_lists_user_settings() {
    let r = resources();
    let machine = r.load_machine("anet3d_a8").unwrap();
    let stack = SettingsStack::new(machine, None);
    let resolved = stack.resolve().unwrap();
    let list = user_settings(&stack, &resolved).unwrap();
    let density = list
        .iter()
        .find(|s| s.key == "infill_sparse_density")
        .unwrap();
    assert_eq!(density.unit, "%");
    assert_eq!(density.minimum, Some(0.0));
    let adhesion = list.iter().find(|s| s.key == "adhesion_type").unwrap();
    assert!(adhesion.options.iter().any(|(k, _)| k == "raft"));
    assert!(!list.iter().any(|s| s.key == "machine_width"));
}
