//! Faults around an SD upload's `M28`/`M29` (the exchanges random schedules rarely hit), and
//! names `M28` would not take as names.

use super::*;
use crate::sim::MarlinVersion;

/// Uploads 200 lines to a Marlin `version` (with or without ADVANCED_OK) that loses the `ok`
/// of each command in `lose_ok_of` once, and checks the outcome: the upload succeeds, the
/// file is byte-exact, `M28` ran once and nothing else ran, the `ok` really was lost.
fn upload_losing_oks_of(lose_ok_of: &[&str], version: MarlinVersion, advanced_ok: bool) {
    let faults = Faults {
        lose_ok_of: lose_ok_of.iter().map(|c| (*c).to_owned()).collect(),
        ..Faults::none()
    };
    let sim = SimConfig {
        faults,
        version,
        advanced_ok,
        ..sim()
    };
    let case = format!("{lose_ok_of:?} {version:?} advanced_ok {advanced_ok}");
    let mut b = Bench::new(sim, SessionConfig::default());
    let lines = gcode_file(200);
    let before = b.printer().ledger().len();
    let report = upload(&mut b, "CUBE.GCO", lines.clone());
    let expected = stored_form(&lines);
    assert_eq!(
        report,
        Ok(UploadProgress {
            total: Some(lines.len() as u64),
            sent: 202,
            acknowledged: 202,
            bytes: expected.len() as u64,
        }),
        "{case}"
    );
    let file = &b.printer().sd_card().file("CUBE.GCO").expect("stored").data;
    assert!(*file == expected, "{case}: the file is byte-exact");
    let during: Vec<&str> = b.printer().ledger()[before..]
        .iter()
        .map(|e| e.command.as_str())
        .collect();
    assert_eq!(during, ["M28 CUBE.GCO"], "{case}");
    let lost = b.printer().stats().faults.lost_ok;
    assert_eq!(lost, lose_ok_of.len() as u64, "{case}: the oks were lost");
    // The session is back to normal: a command goes through and is answered.
    b.session().send("M105").unwrap();
    b.run_until(
        |b| b.h.session_ref().is_idle() && b.printer().is_idle(),
        Duration::from_secs(10),
    );
}

const MARLINS: [(MarlinVersion, bool); 4] = [
    (MarlinVersion::V1, false),
    (MarlinVersion::V2_0, false),
    (MarlinVersion::V2_1, false),
    (MarlinVersion::V2_1, true),
];

#[test]
fn upload_survives_a_lost_ok_of_m28() {
    for (version, advanced_ok) in MARLINS {
        upload_losing_oks_of(&["M28"], version, advanced_ok);
    }
}

#[test]
fn upload_survives_a_lost_ok_of_m29() {
    for (version, advanced_ok) in MARLINS {
        upload_losing_oks_of(&["M29"], version, advanced_ok);
    }
}

#[test]
fn upload_survives_lost_oks_of_both_m28_and_m29() {
    upload_losing_oks_of(&["M28", "M29"], MarlinVersion::V2_1, false);
}

/// `M28 B1 <name>` switches a Marlin with `BINARY_FILE_TRANSFER` to its binary protocol, and
/// `B0`/`D<n>` are taken off the name: such names are refused before anything is sent.
#[test]
fn upload_refuses_a_name_m28_reads_as_a_transfer_switch() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let before = b.printer().ledger().len();
    for name in ["B1PART.GCO", "B0.GCO", "D1234.GCO", "B1 part.gcode"] {
        let err = upload(&mut b, name, gcode_file(3)).unwrap_err();
        assert!(
            matches!(&err, SdError::InvalidName { name: n, reason } if n == name && reason.contains("binary transfer")),
            "{name}: {err}"
        );
    }
    assert_eq!(b.printer().ledger().len(), before, "nothing was sent");
    // Names that merely start with the letters are fine.
    upload(&mut b, "BENCHY.GCO", gcode_file(3)).unwrap();
    upload(&mut b, "DRAGON.GCO", gcode_file(3)).unwrap();
}
