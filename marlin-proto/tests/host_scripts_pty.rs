//! Pause/resume/cancel scripts and the SD card through a real pseudo-terminal:
//! `Printer` → serialport → pty → simulated Marlin.

mod common;

use std::time::Duration;

use common::{connect_to, connect_with, link, quick_sim, wait_event, wait_status, within};
use easyprint_marlin::printer::{
    HostScripts, JobEvent, JobPhase, Printer, PrinterConfig, PrinterEvent, PrinterState, SdError,
    SdOptions,
};
use easyprint_marlin::sim::{Faults, MoveTiming, SdConfig, SimConfig, SimPrinter, VirtualPrinter};
use easyprint_marlin::{Dialect, Event, Payload, SdStatus};
use tokio::sync::broadcast::error::RecvError;

/// What the simulator ran, without the session's own lines (handshake, temperatures) and
/// `skip`.
fn ran<'a>(sim: &'a SimPrinter, skip: &[&str]) -> Vec<&'a str> {
    sim.ledger()
        .iter()
        .map(|e| e.command.as_str())
        .filter(|c| !matches!(*c, "M105" | "M115" | "M110 N0") && !c.starts_with("M155"))
        .filter(|c| !skip.contains(c))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_over_a_pty_return_to_the_exact_position_once() {
    let sim = quick_sim(MoveTiming::Fixed(Duration::from_millis(2)));
    let vp = VirtualPrinter::spawn(sim, link()).unwrap();
    let printer = connect_to(&vp).await;
    let mut job: Vec<String> = vec!["G28".into(), "G91".into(), "M83".into(), "G1 F1800".into()];
    job.extend(
        (0..1000).map(|i| format!("G1 X0.{:03} Y-0.0{} E0.0{:03}", i % 13 + 1, i % 7, i + 1)),
    );
    let mut events = printer.events();
    printer.stream(job.clone(), None).await.unwrap();
    wait_status(&printer, |s| s.job.is_some_and(|j| j.acknowledged > 300)).await;
    printer.pause().unwrap();
    // The state says paused at once; the phase says parked once the script ran.
    wait_status(&printer, |s| s.state == PrinterState::Paused).await;
    let point = wait_event(&mut events, |e| match e {
        PrinterEvent::Job(JobEvent::Paused(p)) => Some(p.expect("the host's pause")),
        _ => None,
    })
    .await;
    assert_eq!(
        printer.status().borrow().job_phase,
        JobPhase::Paused { cooled: false }
    );
    assert!(!point.absolute_positioning && !point.absolute_extrusion);
    printer.resume().unwrap();
    wait_event(&mut events, |e| {
        matches!(e, PrinterEvent::JobFinished(_)).then_some(())
    })
    .await;
    printer.close().await;
    let sim = vp.stop().unwrap();

    let ledger = ran(&sim, &[]);
    let done = ledger.iter().position(|c| *c == "M400").unwrap();
    let scripts = HostScripts::default();
    let mut expected: Vec<String> = job[..done].to_vec();
    expected.extend(["M400".to_owned(), "M114".to_owned()]);
    expected.extend(scripts.pause.pause_lines(&point));
    expected.extend(scripts.pause.resume_lines(&point, false));
    expected.extend(job[done..].iter().cloned());
    assert_eq!(ledger, expected);
    // Relative moves after the return: the end point is the sum of every move, exactly as
    // if the job had never paused (park moves and the return cancel out).
    let mut end = [0.0f64; 4];
    for line in &job[4..] {
        for (i, axis) in ['X', 'Y', 'Z', 'E'].into_iter().enumerate() {
            if let Some(v) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(axis)?.parse::<f64>().ok())
            {
                end[i] += v;
            }
        }
    }
    let at = sim.position();
    for i in 0..4 {
        assert!(
            (at[i] - end[i]).abs() < 1e-6,
            "axis {i}: {} vs {}",
            at[i],
            end[i]
        );
    }
    assert_eq!(sim.relative_modes(), (true, true));
    assert_eq!(sim.feedrate(), 1800.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_over_a_pty_leaves_heaters_off() {
    let sim = SimConfig {
        heating_rate: 500.0,
        ..quick_sim(MoveTiming::Fixed(Duration::from_millis(2)))
    };
    let vp = VirtualPrinter::spawn(sim, link()).unwrap();
    let printer = connect_to(&vp).await;
    let mut job: Vec<String> = vec!["M140 S60".into(), "M109 S200".into(), "G28".into()];
    job.extend((0..3000).map(|i| format!("G1 X{} Y{} E{i}", i % 100, i % 37)));
    printer.stream(job, None).await.unwrap();
    wait_status(&printer, |s| s.job.is_some_and(|j| j.acknowledged > 100)).await;
    printer.cancel().unwrap();
    wait_status(&printer, |s| s.state == PrinterState::Ready).await;
    // The script's last line is M84; its acknowledgement proves the rest ran.
    printer.send("M400").await.unwrap();
    printer.close().await;
    let sim = vp.stop().unwrap();
    assert_eq!(sim.heater_targets(), (0.0, 0.0));
    let last: Vec<&str> = sim
        .ledger()
        .iter()
        .rev()
        .map(|e| e.command.as_str())
        .filter(|c| *c != "M105")
        .take(4)
        .collect();
    assert_eq!(last, ["M400", "M84", "M400", "M107"]);
}

fn stored_form(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        if let Some(p) = Payload::new(l, Dialect::default()).unwrap() {
            out.extend_from_slice(p.as_str().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd_upload_list_print_and_delete_over_a_pty() {
    let sim = SimConfig {
        moves: MoveTiming::Instant,
        faults: Faults {
            seed: 3,
            corrupt_line: 0.05,
            drop_byte: 0.05,
            ..Faults::none()
        },
        ..SimConfig::default()
    };
    let vp = VirtualPrinter::spawn(sim, link()).unwrap();
    let printer = connect_to(&vp).await;
    let mut lines = vec![
        "; a test part".to_owned(),
        "G28 ; home".to_owned(),
        "G90".to_owned(),
    ];
    lines.extend((0..1000).map(|i| format!("G1 X{}.5 Y{} E{}.125 ; move {i}", i % 90, i % 70, i)));
    let report = printer
        .sd_upload("part.gco", lines.clone(), Some(lines.len() as u64))
        .await
        .unwrap();
    let expected = stored_form(&lines);
    assert_eq!(report.acknowledged, 1002);
    assert_eq!(report.bytes, expected.len() as u64);

    let listing = printer.sd_list().await.unwrap();
    assert_eq!((listing.entries.len(), listing.total), (1, 1));
    assert!(!listing.truncated);
    assert_eq!(listing.entries[0].name, "PART.GCO");
    assert_eq!(listing.entries[0].size, expected.len() as u64);

    let mut events = printer.events();
    printer.sd_print("part.gco").await.unwrap();
    wait_event(&mut events, |e| {
        matches!(
            e,
            PrinterEvent::Session(easyprint_marlin::Event::Sd(
                easyprint_marlin::SdStatus::DonePrinting
            ))
        )
        .then_some(())
    })
    .await;
    let sd = printer.status().borrow().sd.expect("SD progress reported");
    assert!(sd.finished && !sd.printing && sd.done == sd.total);
    assert_eq!(sd.total, expected.len() as u64);

    assert!(matches!(
        printer.sd_print("nothere.gco").await,
        Err(SdError::OpenFailed { .. })
    ));
    assert!(matches!(
        printer
            .sd_upload("../etc/x.gco", Vec::<String>::new(), None)
            .await,
        Err(SdError::InvalidName { .. })
    ));
    printer
        .sd_upload("small.g", vec!["M117 hi".to_owned()], None)
        .await
        .unwrap();
    assert_eq!(printer.sd_list().await.unwrap().entries.len(), 2);
    printer.sd_delete("SMALL.G").await.unwrap();
    let names: Vec<String> = printer
        .sd_list()
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["PART.GCO"]);
    assert!(matches!(
        printer.sd_delete("SMALL.G").await,
        Err(SdError::DeleteFailed { .. })
    ));
    printer.close().await;
    let sim = vp.stop().unwrap();
    assert!(sim.stats().line_errors > 0, "faults caused resends");
    let stored = &sim.sd_card().file("PART.GCO").unwrap().data;
    assert!(stored == &expected, "the stored file is byte-exact");
    let from_sd: Vec<&str> = sim
        .ledger()
        .iter()
        .filter(|e| e.line.is_none())
        .map(|e| e.command.as_str())
        .collect();
    let mut want: Vec<String> = lines
        .iter()
        .filter_map(|l| Payload::new(l, Dialect::default()).unwrap())
        .map(|p| p.as_str().to_owned())
        .collect();
    want.push("M1001".into());
    assert_eq!(from_sd, want, "the SD print ran every line once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m600_over_a_pty_waits_for_the_user_then_continues() {
    let sim = quick_sim(MoveTiming::Fixed(Duration::from_millis(1)));
    let vp = VirtualPrinter::spawn(sim, link()).unwrap();
    let printer = connect_to(&vp).await;
    let mut job: Vec<String> = vec!["G28".into(), "G90".into()];
    job.extend((0..200).map(|i| format!("G1 X{} Y{} E{i}", i % 100, i % 37)));
    job.insert(100, "M600".into());
    let mut events = printer.events();
    printer.stream(job.clone(), None).await.unwrap();
    wait_status(&printer, |s| {
        s.waiting_for_user && s.job_phase == JobPhase::PausedByFirmware
    })
    .await;
    assert_eq!(printer.status().borrow().state, PrinterState::Paused);
    printer
        .emergency(easyprint_marlin::EmergencyCommand::Continue)
        .unwrap();
    wait_event(&mut events, |e| {
        matches!(e, PrinterEvent::JobFinished(_)).then_some(())
    })
    .await;
    assert!(!printer.status().borrow().waiting_for_user);
    printer.close().await;
    let sim = vp.stop().unwrap();
    let ledger = ran(&sim, &["M108"]);
    assert_eq!(ledger, job);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd_long_names_polled_progress_and_a_bounded_listing_over_a_pty() {
    // A firmware with LONG_FILENAME_WRITE_SUPPORT and without AUTO_REPORT_SD_STATUS.
    let sim = SimConfig {
        sd: SdConfig {
            autoreport: false,
            long_name_write: true,
            ..SdConfig::default()
        },
        ..quick_sim(MoveTiming::Fixed(Duration::from_millis(1)))
    };
    let vp = VirtualPrinter::spawn(sim, link()).unwrap();
    async fn sd_size(printer: &Printer, long: &str) -> u64 {
        let listing = printer.sd_list().await.unwrap();
        let entry = listing
            .entries
            .iter()
            .find(|e| e.long_name.as_deref() == Some(long));
        entry.expect("listed").size
    }
    let config = PrinterConfig {
        sd: SdOptions {
            status_interval: Duration::from_millis(100),
            list_max_entries: 2,
        },
        ..PrinterConfig::default()
    };
    let printer = connect_with(&vp, config).await;
    let long = "Benchy 0.2mm PLA.gcode";
    let lines: Vec<String> = (0..1500)
        .map(|i| format!("G1 X{} Y{}", i % 90, i % 70))
        .collect();
    printer.sd_upload(long, lines.clone(), None).await.unwrap();
    for name in ["a.gco", "b.gco"] {
        printer
            .sd_upload(name, vec!["M117 hi".to_owned()], None)
            .await
            .unwrap();
    }
    let listing = printer.sd_list().await.unwrap();
    assert_eq!((listing.total, listing.truncated), (3, true));
    assert_eq!(listing.entries.len(), 2);
    assert_eq!(listing.entries[0].long_name.as_deref(), Some(long));

    let mut events = printer.events();
    printer.sd_print(long).await.unwrap();
    // Progress events from the host's M27 polls, as autoreports would bring them.
    let reports = within("the SD print", async {
        let mut reports = Vec::new();
        loop {
            match events.recv().await {
                Ok(PrinterEvent::Session(Event::Sd(SdStatus::Printing { done, total }))) => {
                    reports.push((done, total))
                }
                Ok(PrinterEvent::Session(Event::Sd(SdStatus::DonePrinting))) => return reports,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    let size = sd_size(&printer, long).await;
    assert!(reports.len() >= 3, "{reports:?}");
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0), "{reports:?}");
    assert!(reports.iter().all(|r| r.1 == size), "{reports:?}");
    let sd = printer.status().borrow().sd.expect("SD progress reported");
    assert!(sd.finished && sd.done == sd.total && sd.total == size);
    printer.close().await;
    let sim = vp.stop().unwrap();
    let polls = sim.ledger().iter().filter(|e| e.command == "M27").count();
    assert!(polls >= reports.len(), "{polls} polls");
    let ran: Vec<&str> = sim
        .ledger()
        .iter()
        .filter(|e| e.line.is_none() && e.command.starts_with("G1"))
        .map(|e| e.command.as_str())
        .collect();
    assert_eq!(ran, lines);

    // Without LFN_WRITE the handle refuses a long name before sending anything.
    let vp = VirtualPrinter::spawn(quick_sim(MoveTiming::Instant), link()).unwrap();
    let printer = connect_to(&vp).await;
    assert_eq!(
        printer.sd_upload(long, lines, None).await.unwrap_err(),
        SdError::LongNameUnsupported { name: long.into() }
    );
    printer.close().await;
    assert!(vp.stop().unwrap().sd_card().files().is_empty());
}
