//! Cura's profile stack (nozzle variant → material → quality → intent) as Cura's front end
//! builds it, against the real resources, material profiles (Debian's `fdm-materials`) and
//! CuraEngine that `scripts/install-deps` installs.

use std::path::Path;

use easyprint_gcode::analysis::{analyze, AnalysisConfig};
use easyprint_slicer::model::save_binary_stl;
use easyprint_slicer::model::shapes::cuboid;
use easyprint_slicer::settings::{
    DefinitionError, Override, QualityChoice, Resources, Selection, SettingsStack, StackId, Value,
};
use easyprint_slicer::{
    CancelToken, CuraOptions, CuraSlicer, Profile, RunOptions, SliceError, SliceRequest, Slicer,
};

fn resources() -> Resources {
    let r = Resources::discover(None).expect("Cura resources (scripts/install-deps installs them)");
    assert!(
        r.materials_dir().is_dir(),
        "no material profiles in {}: scripts/install-deps installs Debian's fdm-materials",
        r.materials_dir().display()
    );
    r
}

fn file_name(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn number(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).expect("a number")
}

#[test]
fn every_installed_material_file_parses() {
    let r = resources();
    let machine = r.load_machine("fdmprinter").unwrap();
    let all = r.materials(&machine, None);
    assert!(all.len() > 200, "only {} materials", all.len());
    assert_eq!(r.material_errors(), Vec::<String>::new());
    let pla = all
        .iter()
        .find(|m| m.base_file == "generic_pla_175")
        .unwrap();
    assert_eq!(
        (pla.material_type.as_str(), pla.approximate_diameter),
        ("PLA", Some(2))
    );
    assert_eq!(pla.values["default_material_print_temperature"], "200");
}

#[test]
fn ender3_gets_cura_preferred_nozzle_material_and_per_material_quality() {
    let r = resources();
    let machine = r.load_machine("creality_ender3").unwrap();
    let names: Vec<String> = r
        .variants(&machine)
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(names.contains(&"0.4mm Nozzle".to_owned()), "{names:?}");
    let c = r.configure(&machine, &Selection::default()).unwrap();
    let e = &c.extruders[0];
    assert_eq!(e.variant.as_ref().unwrap().name, "0.4mm Nozzle");
    // preferred_material is generic_pla; the extruder takes 1.75 mm, so Cura adds `_175`, and
    // the file's Creality section makes it machine-specific.
    let m = e.material.as_ref().unwrap();
    assert_eq!(m.id, "generic_pla_175_creality_ender3");
    assert_eq!(m.values["default_material_bed_temperature"], "50");
    assert_eq!(
        file_name(&e.quality.as_ref().unwrap().path),
        "base_0.4_PLA_standard.inst.cfg"
    );
    assert_eq!(
        file_name(&c.global_quality.as_ref().unwrap().path),
        "base_global_standard.inst.cfg"
    );
    let s = SettingsStack::configured(machine, c).resolve().unwrap();
    // The material's Creality section (print 200, bed 50, retraction 5 mm) reaches the values.
    assert_eq!(number(s.extruder(0, "material_print_temperature")), 200.0);
    assert_eq!(number(s.extruder(0, "material_bed_temperature")), 50.0);
    assert_eq!(number(s.extruder(0, "retraction_amount")), 5.0);
    assert_eq!(number(s.get("layer_height")), 0.2);
}

#[test]
fn material_and_nozzle_choices_are_checked() {
    let r = resources();
    let machine = r.load_machine("creality_ender3").unwrap();
    let with = |variant: Option<&str>, material: Option<&str>| Selection {
        variant: variant.map(str::to_owned),
        material: material.map(str::to_owned),
        ..Selection::default()
    };
    let petg = r
        .configure(
            &machine,
            &with(Some("0.6mm Nozzle"), Some("generic_petg_175")),
        )
        .unwrap();
    assert_eq!(
        file_name(&petg.extruders[0].quality.as_ref().unwrap().path),
        "base_0.6_PETG_standard.inst.cfg"
    );
    let s = SettingsStack::configured(machine.clone(), petg)
        .resolve()
        .unwrap();
    assert_eq!(number(s.extruder(0, "machine_nozzle_size")), 0.6);
    // 2.85 mm filament does not fit the Ender's 1.75 mm extruder.
    match r.configure(&machine, &with(None, Some("ultimaker_petg_black"))) {
        Err(DefinitionError::MaterialNotUsable { reason, .. }) => {
            assert!(reason.contains("2.85 mm filament"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Unknown, and excluded by the machine's `exclude_materials`.
    for unusable in ["no_such_material", "generic_pla"] {
        match r.configure(&machine, &with(None, Some(unusable))) {
            Err(DefinitionError::MaterialNotUsable { reason, .. }) => {
                assert!(reason.contains("unknown or excluded"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    match r.configure(&machine, &with(Some("0.35mm"), None)) {
        Err(e @ DefinitionError::VariantNotFound { .. }) => {
            assert!(e.to_string().contains("0.4mm Nozzle"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // Per-material qualities: the 1.0 mm nozzle only has `draft`.
    let big = with(Some("1.0mm Nozzle"), None);
    let c = r.configure(&machine, &big).unwrap();
    assert_eq!(c.available_quality_types, ["draft"]);
    let fine = Selection {
        quality: QualityChoice::Named("super".into()),
        ..big
    };
    assert!(matches!(
        r.configure(&machine, &fine),
        Err(DefinitionError::QualityNotFound { .. })
    ));
    let other_extruder = Selection {
        extruders: [(1, Default::default())].into(),
        ..Selection::default()
    };
    assert!(matches!(
        r.configure(&machine, &other_extruder),
        Err(DefinitionError::NoSuchExtruder {
            extruder: 1,
            count: 1,
            ..
        })
    ));
}

#[test]
fn intents_sit_above_the_quality_on_each_extruder() {
    let r = resources();
    let machine = r.load_machine("ultimaker_s5").unwrap();
    let base = Selection::default();
    let intents = r.intents(&machine, &base).unwrap();
    assert!(
        intents
            .iter()
            .any(|i| i.category == "engineering" && i.quality_type == "normal"),
        "{intents:?}"
    );
    let plain = r.configure(&machine, &base).unwrap();
    let engineering = Selection {
        intent: Some("engineering".into()),
        ..base.clone()
    };
    let c = r.configure(&machine, &engineering).unwrap();
    for e in &c.extruders {
        assert_eq!(
            file_name(&e.intent.as_ref().unwrap().path),
            "um_s5_aa0.4_PLA_Normal_Quality_Accurate.inst.cfg"
        );
    }
    let before = SettingsStack::configured(machine.clone(), plain)
        .resolve()
        .unwrap();
    let after = SettingsStack::configured(machine.clone(), c)
        .resolve()
        .unwrap();
    // The accurate intent prints walls at one speed and slows the outer wall's jerk.
    assert_ne!(
        before.extruders[0]["jerk_wall"],
        after.extruders[0]["jerk_wall"]
    );
    let missing = Selection {
        intent: Some("sparkly".into()),
        ..base
    };
    match r.configure(&machine, &missing) {
        Err(e @ DefinitionError::IntentNotFound { .. }) => {
            assert!(e.to_string().contains("engineering"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn machine_settings_sit_below_every_profile_and_user_changes_above() {
    let r = resources();
    let machine = r.load_machine("creality_ender3").unwrap();
    let c = r.configure(&machine, &Selection::default()).unwrap();
    let mut stack = SettingsStack::configured(machine, c);
    let set_machine = |s: &mut SettingsStack, kv: &str| {
        s.set_machine_setting(&Override::parse(kv).unwrap())
            .unwrap()
    };
    // The material sets it (Creality section: 200): the machine setting below it loses.
    set_machine(&mut stack, "default_material_print_temperature=230");
    // The nozzle variant sets it (0.4): the machine setting loses.
    set_machine(&mut stack, "machine_nozzle_size=0.6");
    // Nothing above sets the bed size: the machine setting wins over the definition.
    set_machine(&mut stack, "machine_width=300");
    let s = stack.resolve().unwrap();
    assert_eq!(number(s.extruder(0, "material_print_temperature")), 200.0);
    assert_eq!(number(s.extruder(0, "machine_nozzle_size")), 0.4);
    assert_eq!(number(s.get("machine_width")), 300.0);
    // The user's change beats the material.
    stack
        .set(&Override::parse("material_print_temperature=215").unwrap())
        .unwrap();
    let s = stack.resolve().unwrap();
    assert_eq!(number(s.extruder(0, "material_print_temperature")), 215.0);
    assert!(matches!(
        stack.property(StackId::Global, "machine_width", "value"),
        Ok(Some(Value::Float(w))) if w == 300.0
    ));
}

/// The same resources without `materials/`: a copy made of links.
fn resources_without_materials(dir: &Path) -> Resources {
    let real = resources();
    for sub in ["definitions", "extruders", "quality", "intent", "variants"] {
        std::os::unix::fs::symlink(real.root().join(sub), dir.join(sub)).unwrap();
    }
    Resources::at(dir).unwrap()
}

#[test]
fn without_material_profiles_the_global_quality_applies_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let r = resources_without_materials(dir.path());
    let machine = r.load_machine("two_trees_bluer").unwrap();
    let c = r.configure(&machine, &Selection::default()).unwrap();
    assert!(c.extruders[0].material.is_none());
    assert!(
        c.notes.iter().any(|n| n.contains("no material profiles")),
        "{:?}",
        c.notes
    );
    assert_eq!(c.extruders[0].quality, c.global_quality);
    let s = SettingsStack::configured(machine.clone(), c)
        .resolve()
        .unwrap();
    // fdmprinter's material defaults (no PLA-specific 190 °C from the per-material quality).
    assert_eq!(number(s.extruder(0, "material_print_temperature")), 210.0);
    match r.configure(
        &machine,
        &Selection {
            material: Some("generic_pla_175".into()),
            ..Selection::default()
        },
    ) {
        Err(e @ DefinitionError::MaterialNotUsable { .. }) => {
            assert!(e.to_string().contains("fdm-materials"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

fn slice_cube(profile: &Profile, dir: &Path) -> String {
    let slicer = CuraSlicer::discover(CuraOptions {
        threads: Some(1),
        run: RunOptions::default(),
    })
    .expect("CuraEngine (scripts/install-deps installs it)");
    let model = dir.join("cube.stl");
    save_binary_stl(&cuboid([-5.0, -5.0, 0.0], [5.0, 5.0, 2.0]), &model).unwrap();
    let out = dir.join("cube.gcode");
    slicer
        .slice(SliceRequest {
            model: &model,
            profile,
            output: &out,
            progress: None,
            cancel: CancelToken::new(),
        })
        .map_err(|e: SliceError| e.to_string())
        .unwrap();
    std::fs::read_to_string(out).unwrap()
}

/// Z of each `;LAYER:n`: where its first extrusion happens (the engine may move to the next
/// layer's Z before its marker).
fn layer_heights(gcode: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut z, mut waiting) = (0.0, false);
    for line in gcode.lines() {
        if line.starts_with(";LAYER:") {
            waiting = true;
        } else if line.starts_with("G0") || line.starts_with("G1") {
            let word = |c: char| line.split_whitespace().find_map(|w| w.strip_prefix(c));
            if let Some(v) = word('Z') {
                z = v.parse().unwrap();
            }
            if waiting && word('E').is_some() && word('X').is_some() {
                out.push(z);
                waiting = false;
            }
        }
    }
    out
}

#[test]
fn per_material_quality_values_reach_the_gcode() {
    let dir = tempfile::tempdir().unwrap();
    let base = || {
        Profile::machine("two_trees_bluer")
            .set("adhesion_type=none")
            .unwrap()
    };
    // Two Trees' PLA "standard" quality for the 0.4 mm nozzle: 195 °C first layer, then 190 °C,
    // bed 60 °C; the global "standard" quality gives 0.2 mm layers.
    let pla = slice_cube(
        &base().material("generic_pla_175").quality_type("standard"),
        dir.path(),
    );
    assert!(pla.contains("M190 S60"), "bed temperature");
    assert!(pla.contains("M109 S195"), "first layer temperature");
    assert!(
        pla.contains("M104 S190"),
        "print temperature after the first layer"
    );
    let z = layer_heights(&pla);
    assert!((z[1] - z[0] - 0.2).abs() < 1e-6, "{z:?}");
    let a = analyze(pla.as_bytes(), &AnalysisConfig::default());
    assert_eq!(a.diagnostic_count, 0, "{:?}", a.diagnostics);
    // PETG's file: 225 °C, then 220 °C, bed 80 °C; "super" quality: 0.12 mm layers.
    let petg = slice_cube(
        &base().material("generic_petg_175").quality_type("super"),
        dir.path(),
    );
    assert!(petg.contains("M190 S80"), "bed temperature");
    assert!(petg.contains("M109 S225"), "first layer temperature");
    let z = layer_heights(&petg);
    assert!((z[1] - z[0] - 0.12).abs() < 1e-6, "{z:?}");
}

/// Cura's default configuration of (nearly) every machine has a quality on every stack; the
/// few without are machines whose profiles Cura 4.13 itself cannot match ("Not supported").
#[test]
fn default_configurations_have_qualities() {
    let r = resources();
    let (mut total, mut without) = (0, Vec::new());
    for m in r.machines().unwrap() {
        let Ok(machine) = r.load_machine(&m.id) else {
            continue; // a missing extruder file: definitions.rs checks that case
        };
        total += 1;
        let c = r.configure(&machine, &Selection::default()).unwrap();
        if c.global_quality.is_none() || c.extruders.iter().any(|e| e.quality.is_none()) {
            without.push(m.id);
        }
    }
    assert!(total > 300, "{total}");
    assert!(without.len() <= 3, "{without:?}");
}
