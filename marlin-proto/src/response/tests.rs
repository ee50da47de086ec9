use super::*;

fn p(s: &str) -> FirmwareLine {
    FirmwareLine::parse(s.as_bytes())
}

fn ok(line: Option<i64>, planner: Option<u32>, slots: Option<u32>) -> FirmwareLine {
    FirmwareLine::Ok(OkLine {
        line,
        planner_free: planner,
        slots_free: slots,
        temperatures: None,
        firmware: None,
    })
}

#[test]
fn klipper_m115_answer_inside_the_ok() {
    let FirmwareLine::Ok(ok) = p("ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0-1-gabc") else {
        panic!("not an ok");
    };
    let info = ok.firmware.expect("firmware info");
    assert_eq!(info.name, "Klipper");
    assert_eq!(info.field("FIRMWARE_VERSION"), Some("v0.12.0-1-gabc"));
    assert_eq!((ok.line, ok.temperatures), (None, None));
}

#[test]
fn ok_variants() {
    assert_eq!(p("ok"), ok(None, None, None));
    assert_eq!(p("ok\r"), ok(None, None, None));
    assert_eq!(p("ok N1645 P57 B63"), ok(Some(1645), Some(57), Some(63)));
    assert_eq!(p("ok P15 B3"), ok(None, Some(15), Some(3)));
    assert_eq!(p("ok 103256"), ok(Some(103256), None, None));
    // Truncated ADVANCED_OK still acknowledges.
    assert_eq!(p("ok N11365 P1"), ok(Some(11365), Some(1), None));
    // Corrupted acknowledgements are not acknowledgements.
    assert!(matches!(p("o"), FirmwareLine::Unknown(_)));
    assert!(matches!(p("kok"), FirmwareLine::Unknown(_)));
    assert!(matches!(p("okk"), FirmwareLine::Unknown(_)));
    assert!(matches!(
        p("Error:checksum mismat4 P1 B15"),
        FirmwareLine::Error(FirmwareError::Other(_))
    ));
}

#[test]
fn ok_with_temperatures() {
    let FirmwareLine::Ok(ok) = p("ok T:201.23 /200.00 B:60.01 /60.00 @:80 B@:127") else {
        panic!()
    };
    let t = ok.temperatures.unwrap();
    assert_eq!(
        t.get(&Heater::Tool(None)),
        Some(&Reading {
            heater: Heater::Tool(None),
            actual: 201.23,
            target: Some(200.0)
        })
    );
    assert_eq!(t.get(&Heater::Bed).unwrap().actual, 60.01);
    assert_eq!(
        t.power,
        vec![
            HeaterPower {
                heater: Heater::Tool(None),
                power: 80.0
            },
            HeaterPower {
                heater: Heater::Bed,
                power: 127.0
            }
        ]
    );
    assert_eq!(ok.line, None);
    // Klipper style.
    let FirmwareLine::Ok(ok) = p("ok B:20.0 /0.0 T0:20.0 /0.0") else {
        panic!()
    };
    let t = ok.temperatures.unwrap();
    assert_eq!(t.get(&Heater::Tool(Some(0))).unwrap().target, Some(0.0));
}

#[test]
fn temperature_grammar() {
    let FirmwareLine::Temperatures(t) = p(
        " T:210.00 /210.00 B:60.00 /60.00 T0:210.00 /210.00 T1:25.50 /0.00 C:35.1 /40.0 @:64 B@:0 @0:64 @1:0",
    ) else {
        panic!()
    };
    assert_eq!(t.readings.len(), 5);
    assert_eq!(t.get(&Heater::Tool(Some(1))).unwrap().actual, 25.5);
    assert_eq!(t.get(&Heater::Chamber).unwrap().target, Some(40.0));
    assert_eq!(t.power.len(), 4);
    // No space before '/', negative (disconnected), raw ADC suffix, missing target.
    let FirmwareLine::Temperatures(t) = p("T:-14.00/0 B:22.5 (1023) /0.00 (4000)") else {
        panic!()
    };
    assert_eq!(t.get(&Heater::Tool(None)).unwrap().actual, -14.0);
    assert_eq!(t.get(&Heater::Bed).unwrap().actual, 22.5);
    // Heating progress: E is the extruder index, W the residency.
    let FirmwareLine::Temperatures(t) = p("T:195.1 E:0 W:?") else {
        panic!()
    };
    assert_eq!(t.readings.len(), 1);
    assert_eq!(t.residency, None);
    let FirmwareLine::Temperatures(t) = p(" T:199.9 /200.00 B:60.00 /60.00 @:127 B@:0 W:5") else {
        panic!()
    };
    assert_eq!(t.residency, Some(5.0));
}

#[test]
fn resend_grammar() {
    for s in [
        "Resend: 12",
        "Resend:12",
        "rs N12",
        "rs 12",
        "Resend: N:12",
        "RESEND: 12",
    ] {
        assert_eq!(p(s), FirmwareLine::Resend { line: Some(12) }, "{s}");
    }
    assert_eq!(
        p("rs N2 Expected checksum 67"),
        FirmwareLine::Resend { line: Some(2) }
    );
    assert_eq!(p("Resend: -5"), FirmwareLine::Resend { line: Some(-5) });
    assert_eq!(p("Resend:"), FirmwareLine::Resend { line: None });
    // Not a resend.
    assert!(matches!(p("rsync"), FirmwareLine::Unknown(_)));
}

#[test]
fn error_grammar() {
    assert_eq!(
        p("Error:Line Number is not Last Line Number+1, Last Line: 11"),
        FirmwareLine::Error(FirmwareError::LineNumber { last: Some(11) })
    );
    assert_eq!(
        p("Serial Error: Line Number is not Last Line Number+1, Last Line:807"),
        FirmwareLine::Error(FirmwareError::LineNumber { last: Some(807) })
    );
    assert_eq!(
        p("Error:expected line 103257 got 103256"),
        FirmwareLine::Error(FirmwareError::LineNumber { last: None })
    );
    assert_eq!(
        p("Error:checksum mismatch, Last Line: 11"),
        FirmwareLine::Error(FirmwareError::Checksum { last: Some(11) })
    );
    assert_eq!(
        p("Error:No Checksum with line number, Last Line: 3"),
        FirmwareLine::Error(FirmwareError::NoChecksum { last: Some(3) })
    );
    assert_eq!(
        p("Error:No Line Number with checksum, Last Line: 3"),
        FirmwareLine::Error(FirmwareError::NoLineNumber { last: Some(3) })
    );
    assert_eq!(
        p("Error:Printer halted. kill() called!"),
        FirmwareLine::Error(FirmwareError::Halted)
    );
    assert_eq!(
        p("Error:Thermal Runaway, system stopped! Heater_ID: bed"),
        FirmwareLine::Error(FirmwareError::Thermal {
            cause: "Thermal Runaway".into(),
            heater: "bed".into()
        })
    );
    assert_eq!(
        p("Error:Printer stopped due to errors. Fix the error and use M999 to restart."),
        FirmwareLine::Error(FirmwareError::Stopped)
    );
    assert_eq!(
        p("Printer stopped due to errors. Fix the error and use M999 to restart."),
        FirmwareLine::Error(FirmwareError::Stopped)
    );
    assert_eq!(
        p("Error:0"),
        FirmwareLine::Error(FirmwareError::Other("0".into()))
    );
    assert_eq!(
        p("!! STOP called because of BLTouch error - restart with M999"),
        FirmwareLine::Fatal("STOP called because of BLTouch error - restart with M999".into())
    );
}

#[test]
fn busy_wait_start_echo() {
    assert_eq!(
        p("echo:busy: processing"),
        FirmwareLine::Busy(BusyReason::Processing)
    );
    assert_eq!(
        p("busy:processing"),
        FirmwareLine::Busy(BusyReason::Processing)
    );
    assert_eq!(
        p("echo:busy: paused for user"),
        FirmwareLine::Busy(BusyReason::PausedForUser)
    );
    assert_eq!(
        p("echo:busy: paused for input"),
        FirmwareLine::Busy(BusyReason::PausedForInput)
    );
    assert_eq!(p("wait"), FirmwareLine::Wait);
    assert_eq!(p("start"), FirmwareLine::Start);
    assert_eq!(p("start\r"), FirmwareLine::Start);
    assert_eq!(
        p("echo:Unknown command: \"G999\""),
        FirmwareLine::UnknownCommand("G999".into())
    );
    assert_eq!(
        p("echo: cold extrusion prevented"),
        FirmwareLine::Echo("cold extrusion prevented".into())
    );
    assert_eq!(p(""), FirmwareLine::Empty);
    assert_eq!(p("  \r"), FirmwareLine::Empty);
}

#[test]
fn position_ignores_count_section() {
    assert_eq!(
        p("X:10.00 Y:20.00 Z:5.00 E:0.00 Count X:800 Y:1600 Z:2000"),
        FirmwareLine::Position(Position {
            x: 10.0,
            y: 20.0,
            z: 5.0,
            e: Some(0.0)
        })
    );
    assert_eq!(
        p("X:1.00 Y:2.00 Z:3.00 E0:4.00 E1:5.00 Count A:1 B:2 C:3"),
        FirmwareLine::Position(Position {
            x: 1.0,
            y: 2.0,
            z: 3.0,
            e: Some(4.0)
        })
    );
}

#[test]
fn sd_lines() {
    assert_eq!(
        p("SD printing byte 123/4567"),
        FirmwareLine::Sd(SdStatus::Printing {
            done: 123,
            total: 4567
        })
    );
    assert_eq!(
        p("Not SD printing"),
        FirmwareLine::Sd(SdStatus::NotPrinting)
    );
    assert_eq!(
        p("Done saving file."),
        FirmwareLine::Sd(SdStatus::DoneSaving)
    );
}

#[test]
fn sd_workflow_lines() {
    assert_eq!(p("Begin file list"), FirmwareLine::Sd(SdStatus::ListBegin));
    assert_eq!(p("End file list"), FirmwareLine::Sd(SdStatus::ListEnd));
    assert_eq!(
        p("File opened: CUBE.GCO Size: 12345"),
        FirmwareLine::Sd(SdStatus::FileOpened {
            name: "CUBE.GCO".into(),
            size: 12345
        })
    );
    // Names may contain spaces on firmwares with long-name support.
    assert_eq!(
        p("echo:File opened: my part.gco Size: 7"),
        FirmwareLine::Sd(SdStatus::FileOpened {
            name: "my part.gco".into(),
            size: 7
        })
    );
    assert_eq!(p("File selected"), FirmwareLine::Sd(SdStatus::FileSelected));
    assert_eq!(
        p("Writing to file: PART.GCO"),
        FirmwareLine::Sd(SdStatus::Writing {
            name: "PART.GCO".into()
        })
    );
    assert_eq!(
        p("open failed, File: nothere.gco."),
        FirmwareLine::Sd(SdStatus::OpenFailed {
            name: "nothere.gco".into()
        })
    );
    assert_eq!(
        p("echo:open failed, File: X.G."),
        FirmwareLine::Sd(SdStatus::OpenFailed { name: "X.G".into() })
    );
    assert_eq!(
        p("Done printing file"),
        FirmwareLine::Sd(SdStatus::DonePrinting)
    );
    // A size that is not a number is not a file-opened line.
    assert!(matches!(
        p("File opened: A Size: many"),
        FirmwareLine::Unknown(_)
    ));
}

#[test]
fn m115_and_capabilities() {
    let FirmwareLine::FirmwareInfo(info) = p(
        "FIRMWARE_NAME:Marlin 2.1.2.1 (Jun 11 2023 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 Pro EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff",
    ) else {
        panic!()
    };
    assert_eq!(info.name, "Marlin 2.1.2.1 (Jun 11 2023 12:00:00)");
    assert_eq!(info.field("MACHINE_TYPE"), Some("Ender-3 Pro"));
    assert_eq!(info.field("EXTRUDER_COUNT"), Some("1"));
    assert_eq!(
        info.field("UUID"),
        Some("cede2a2f-41a2-4748-9b12-c55c62f367ff")
    );
    let FirmwareLine::FirmwareInfo(info) = p("NAME. Malyan VER: 3.8 MODEL: M100 HW: HB02") else {
        panic!()
    };
    assert_eq!(info.name, "Malyan");
    assert_eq!(
        p("Cap:EMERGENCY_PARSER:1"),
        FirmwareLine::Capability {
            name: "EMERGENCY_PARSER".into(),
            enabled: true
        }
    );
    assert_eq!(
        p("Cap:SOME_FUTURE_THING:0"),
        FirmwareLine::Capability {
            name: "SOME_FUTURE_THING".into(),
            enabled: false
        }
    );
}

#[test]
fn host_actions() {
    assert_eq!(p("//action:pause"), FirmwareLine::Action(HostAction::Pause));
    assert_eq!(
        p("// action:cancel"),
        FirmwareLine::Action(HostAction::Cancel)
    );
    assert_eq!(
        p("//action:notification Heating done"),
        FirmwareLine::Action(HostAction::Notification("Heating done".into()))
    );
    assert_eq!(
        p("//action:prompt_begin Paused"),
        FirmwareLine::Action(HostAction::PromptBegin("Paused".into()))
    );
    assert_eq!(
        p("//action:prompt_button PurgeMore"),
        FirmwareLine::Action(HostAction::PromptButton("PurgeMore".into()))
    );
    assert_eq!(
        p("//action:prompt_show"),
        FirmwareLine::Action(HostAction::PromptShow)
    );
    assert_eq!(
        p("//action:prompt_end"),
        FirmwareLine::Action(HostAction::PromptEnd)
    );
    assert_eq!(
        p("//action:sd_inserted now"),
        FirmwareLine::Action(HostAction::Other {
            name: "sd_inserted".into(),
            params: "now".into()
        })
    );
    assert_eq!(p("// debug"), FirmwareLine::Comment("debug".into()));
}

#[test]
fn garbage_is_unknown_never_a_panic() {
    assert!(matches!(
        FirmwareLine::parse(b"\x80\x00\xff\xfeok"),
        FirmwareLine::Unknown(_)
    ));
    assert!(matches!(p("Marlin 2.1.2"), FirmwareLine::Unknown(_)));
    assert!(matches!(p("X:abc"), FirmwareLine::Unknown(_)));
}

#[test]
fn other_firmwares_lines() {
    // Repetier.
    assert_eq!(p("skip 42"), FirmwareLine::Skip { line: 42 });
    assert_eq!(p("ok 42"), ok(Some(42), None, None));
    assert!(matches!(p("skip it"), FirmwareLine::Unknown(_)));
    assert_eq!(
        p("fatal:Heater decoupled during hold - Printer stopped and heaters disabled due to this error. Fix error and restart with M999."),
        FirmwareLine::Error(FirmwareError::Fatal("Heater decoupled during hold - Printer stopped and heaters disabled due to this error. Fix error and restart with M999.".to_owned()))
    );
    assert_eq!(
        p("busy:paused for user interaction"),
        FirmwareLine::Busy(BusyReason::Other("paused for user interaction".to_owned()))
    );
    // Prusa-Firmware.
    assert_eq!(
        p("Unknown M code: M9999 S1"),
        FirmwareLine::UnknownCommand("M9999 S1".to_owned())
    );
    assert_eq!(
        p("echo:Printer stopped due to errors. Supervision required."),
        FirmwareLine::Error(FirmwareError::Stopped)
    );
    // Smoothieware.
    assert_eq!(p("rs N12"), FirmwareLine::Resend { line: Some(12) });
    assert!(matches!(
        p("Temperature reading is unreliable on T HALT asserted - reset or M999 required"),
        FirmwareLine::Error(FirmwareError::Fatal(_))
    ));
    // RepRapFirmware: a space after each colon.
    let FirmwareLine::FirmwareInfo(info) =
        p("FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.3 ELECTRONICS: Duet 3 MB6HC v1.01 or later")
    else {
        panic!("not firmware info");
    };
    assert_eq!(info.name, "RepRapFirmware for Duet 3 MB6HC");
}
