//! Settings resolution (every setting of a machine, Cura's formulas evaluated) and formula
//! parsing. Reads the Cura resources that scripts/install-deps installs.

use criterion::{criterion_group, criterion_main, Criterion};
use easyprint_slicer::settings::{expr::parse, Override, Resources, Selection, SettingsStack};

fn resolve(c: &mut Criterion) {
    let resources = Resources::discover(None).expect("Cura resources");
    let machine = resources.load_machine("creality_ender3").expect("machine");
    c.bench_function("load_machine creality_ender3", |b| {
        b.iter(|| resources.load_machine("creality_ender3").unwrap())
    });
    // Cura's default configuration: nozzle, material (fdm-materials), per-material quality.
    let selection = Selection::default();
    c.bench_function("configure creality_ender3 (default stack)", |b| {
        b.iter(|| resources.configure(&machine, &selection).unwrap())
    });
    let configured = resources.configure(&machine, &selection).unwrap();
    let full = SettingsStack::configured(machine.clone(), configured);
    c.bench_function("resolve creality_ender3 (full default stack)", |b| {
        b.iter(|| full.resolve().unwrap())
    });
    let plain = SettingsStack::new(machine.clone(), None);
    c.bench_function("resolve creality_ender3 (no overrides)", |b| {
        b.iter(|| plain.resolve().unwrap())
    });
    let mut user = SettingsStack::new(machine, None);
    for o in [
        "layer_height=0.2",
        "infill_sparse_density=40",
        "support_enable=true",
    ] {
        user.set(&Override::parse(o).unwrap()).unwrap();
    }
    c.bench_function("resolve creality_ender3 (3 overrides, validated)", |b| {
        b.iter(|| user.resolve().unwrap())
    });
    let formula = "machine_width - max(extruderValue(adhesion_extruder_nr, 'brim_width') * extruderValue(adhesion_extruder_nr, 'initial_layer_line_width_factor') / 100 if adhesion_type == 'brim' else (extruderValue(adhesion_extruder_nr, 'raft_margin') if adhesion_type == 'raft' else 0), max(extruderValues('travel_avoid_distance'))) - 1";
    c.bench_function("parse long formula", |b| b.iter(|| parse(formula).unwrap()));
}

criterion_group!(benches, resolve);
criterion_main!(benches);
