//! [`JobControl`] and uploads with a real [`Session`] and the simulated firmware, in virtual
//! time: pause/resume/cancel scripts, firmware-initiated pauses, SD upload and print.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::sd::Upload;
use super::sd_host::SdHost;
use super::*;
use crate::session::Session;
use crate::sim::{Faults, Harness, LinkConfig, MoveTiming, SimConfig, SimPrinter};
use crate::SdStatus;

/// A [`Harness`] (session ⇄ links ⇄ simulated printer) with a job controller and an
/// optional upload.
struct Bench {
    h: Harness,
    control: JobControl,
    upload: Option<Upload>,
    sd: SdHost,
    job_events: Vec<JobEvent>,
    session_events: Vec<Event>,
}

fn sim() -> SimConfig {
    SimConfig {
        moves: MoveTiming::Fixed(Duration::from_millis(5)),
        heating_rate: 50.0,
        ..SimConfig::default()
    }
}

impl Bench {
    fn new(sim: SimConfig, session: SessionConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
        let now = Instant::now();
        let link = LinkConfig {
            baud: 250_000,
            latency: Duration::from_millis(1),
        };
        let mut b = Self {
            h: Harness::new(session, sim, link, now),
            control: JobControl::new(HostScripts::default()),
            upload: None,
            sd: SdHost::new(SdOptions::default()),
            job_events: Vec::new(),
            session_events: Vec::new(),
        };
        b.run_until(
            |b| b.h.session_ref().is_ready() && b.h.session_ref().is_idle(),
            Duration::from_secs(10),
        );
        b
    }

    fn session(&mut self) -> &mut Session {
        self.h.session()
    }

    fn printer(&self) -> &SimPrinter {
        self.h.printer()
    }

    /// One step: feed, transmit, then jump to the next deadline (the harness's or the pause
    /// timer's), deliver and time out.
    fn step(&mut self) -> bool {
        self.control.top_up(self.h.session());
        if let Some(u) = &mut self.upload {
            u.top_up(self.h.session());
        }
        self.h.transmit();
        self.drain();
        let timers = [self.control.poll_timeout(), self.sd.poll_timeout()];
        let Some(next) = self.h.next_deadline(timers.into_iter().flatten().min()) else {
            return false;
        };
        self.h.advance_to(next);
        let now = self.h.now();
        if self.control.poll_timeout().is_some_and(|t| t <= now) {
            self.control.handle_timeout(now, self.h.session());
        }
        if self.upload.is_none() {
            self.sd.handle_timeout(now, self.h.session());
        }
        self.drain();
        true
    }

    fn drain(&mut self) {
        let now = self.h.now();
        while let Some(ev) = self.h.session().poll_event() {
            let sd_handled = self.sd.handle_event(&ev);
            if !self.control.handle_event(now, &ev, self.h.session()) && !sd_handled {
                if let Some(u) = &mut self.upload {
                    u.handle_event(&ev, self.h.session());
                }
            }
            self.session_events.push(ev);
        }
        while let Some(ev) = self.control.poll_event() {
            if !matches!(ev, JobEvent::Progress(_)) {
                self.job_events.push(ev);
            }
        }
    }

    /// Feeds `bytes` to the session as if the firmware had written them.
    fn firmware_writes(&mut self, bytes: &[u8]) {
        let now = self.h.now();
        self.h.session().handle_rx(now, bytes);
        self.drain();
    }

    fn run_until(&mut self, done: impl Fn(&Self) -> bool, limit: Duration) {
        let deadline = self.h.now() + limit;
        while !done(self) {
            let fatal = self.h.session_ref().fatal();
            assert!(fatal.is_none(), "{fatal:?}");
            assert!(
                self.h.now() < deadline,
                "timed out; phase {:?}",
                self.control.phase()
            );
            if !self.step() {
                // Nothing pending: let virtual time pass (a pause timer may be all there is).
                let later = self.h.now() + Duration::from_millis(100);
                self.h.advance_to(later);
            }
        }
    }

    fn start(&mut self, job: &[String]) {
        let lines: Vec<String> = job.to_vec();
        assert!(self.control.start(Box::new(lines.into_iter()), None));
    }

    fn run_job_to_line(&mut self, n: u64) {
        self.run_until(
            |b| b.control.progress().is_some_and(|p| p.acknowledged >= n),
            Duration::from_secs(600),
        );
    }

    fn finish(&mut self) {
        self.run_until(
            |b| {
                b.job_events
                    .iter()
                    .any(|e| matches!(e, JobEvent::Finished(_) | JobEvent::Cancelled(_)))
                    && b.h.session_ref().is_idle()
                    && b.printer().is_idle()
            },
            Duration::from_secs(600),
        );
    }

    fn commands(&self) -> Vec<&str> {
        self.printer()
            .ledger()
            .iter()
            .map(|e| e.command.as_str())
            .filter(|c| !matches!(*c, "M105" | "M115" | "M110 N0") && !c.starts_with("M155"))
            .collect()
    }
}

/// A job whose lines are all different, so the ledger shows each one's fate.
fn job(prelude: &[&str], moves: usize, relative: bool) -> Vec<String> {
    let mut lines: Vec<String> = prelude.iter().map(|s| (*s).to_owned()).collect();
    for i in 0..moves {
        lines.push(if relative {
            format!(
                "G1 X0.{:03} Y-0.{:03} E0.0{:03}",
                i % 7 + 1,
                i % 5 + 1,
                i + 1
            )
        } else {
            format!("G1 X{}.{:03} Y{}.125 E{}.01234", 10 + i, i, 20 + i % 9, i)
        });
    }
    lines
}

/// The simulated state after `lines` alone, without any pause.
fn reference(lines: &[String]) -> ([f64; 4], (bool, bool), f64) {
    let mut b = Bench::new(sim(), SessionConfig::default());
    b.start(lines);
    b.finish();
    let p = b.printer();
    (p.position(), p.relative_modes(), p.feedrate())
}

fn num(command: &str, letter: char) -> f64 {
    command
        .split_whitespace()
        .find_map(|w| w.strip_prefix(letter)?.parse().ok())
        .unwrap_or_else(|| panic!("{letter} in {command}"))
}

/// Pauses after `at` acknowledged lines, resumes, finishes; checks the ledger is the job with
/// the pause and resume scripts inserted once at one point, and the printer returned to the
/// exact state it had there.
fn pause_and_resume(job: &[String], at: u64, session: SessionConfig, sim: SimConfig) {
    let mut b = Bench::new(sim, session);
    b.start(job);
    b.run_job_to_line(at);
    b.control.pause(b.h.session());
    b.run_until(
        |b| matches!(b.control.phase(), JobPhase::Paused { .. }),
        Duration::from_secs(60),
    );
    let Some(JobEvent::Paused(Some(point))) = b.job_events.last().cloned() else {
        panic!("{:?}", b.job_events)
    };
    // Parked: lifted, at the park position, retracted.
    let parked = b.printer().position();
    assert_eq!(&parked[..2], &[0.0, 0.0]);
    assert!(parked[2] >= point.position[2]);
    b.control.resume(b.h.session());
    b.finish();

    let ledger = b.commands();
    let m400 = ledger.iter().position(|c| *c == "M400").expect("M400");
    let done = m400;
    assert_eq!(
        &ledger[..done],
        &job[..done],
        "the lines before the pause, once, in order"
    );
    let pre = reference(&job[..done]);
    assert_eq!(
        point.position, pre.0,
        "the pause point is the exact position"
    );
    let scripts = HostScripts::default();
    let pause = scripts.pause.pause_lines(&point);
    let resume = scripts.pause.resume_lines(&point, false);
    let mut expected: Vec<&str> = job[..done].iter().map(String::as_str).collect();
    expected.extend(["M400", "M114"]);
    expected.extend(pause.iter().map(String::as_str));
    expected.extend(resume.iter().map(String::as_str));
    expected.extend(job[done..].iter().map(String::as_str));
    assert_eq!(ledger, expected);

    // The resume script returns to the exact coordinates and restores modes and feed rate.
    let back_xy = resume.iter().find(|l| l.contains(" X")).unwrap();
    let back_z = resume.iter().find(|l| l.starts_with("G1 Z")).unwrap();
    let g92 = resume.iter().find(|l| l.starts_with("G92 E")).unwrap();
    assert_eq!(
        [
            num(back_xy, 'X'),
            num(back_xy, 'Y'),
            num(back_z, 'Z'),
            num(g92, 'E')
        ],
        pre.0
    );
    let full = reference(job);
    assert_eq!(
        b.printer().position(),
        full.0,
        "the job ended where it ends unpaused"
    );
    assert_eq!(b.printer().relative_modes(), full.1);
    assert_eq!(b.printer().feedrate(), full.2);
}

#[test]
fn pause_parks_and_resume_returns_to_the_exact_position() {
    let job = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 60, false);
    pause_and_resume(&job, 30, SessionConfig::default(), sim());
}

#[test]
fn pause_during_relative_moves_and_relative_extrusion() {
    let job = job(&["G28", "G1 Z0.2 F900", "G91", "M83"], 60, true);
    pause_and_resume(&job, 25, SessionConfig::default(), sim());
}

#[test]
fn pause_with_relative_extrusion_only() {
    let job = job(&["G28", "G90", "M83", "G1 Z1.5 F900"], 40, false);
    pause_and_resume(&job, 11, SessionConfig::default(), sim());
}

#[test]
fn pause_while_resends_are_pending() {
    let job = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 120, false);
    for seed in 1..4 {
        let faults = Faults {
            seed,
            corrupt_line: 0.15,
            drop_byte: 0.05,
            ..Faults::none()
        };
        let faulty = SimConfig { faults, ..sim() };
        pause_and_resume(
            &job,
            40 + seed * 7,
            SessionConfig::default(),
            faulty.clone(),
        );
        // ADVANCED_OK and the credit window: several lines in flight when the pause comes.
        let advanced = SimConfig {
            advanced_ok: true,
            ..faulty
        };
        pause_and_resume(&job, 40 + seed * 5, SessionConfig::default(), advanced);
    }
}

#[test]
fn lift_is_bounded_by_max_z_and_never_goes_down() {
    let script = PauseScript {
        max_z: 200.0,
        lift_mm: 10.0,
        ..PauseScript::default()
    };
    let point = |z| PausePoint {
        position: [1.0, 2.0, z, 3.0],
        absolute_positioning: true,
        absolute_extrusion: true,
        inches: false,
        feedrate: Some(1800.0),
        hotend_target: Some(200.0),
    };
    assert!(script
        .pause_lines(&point(50.0))
        .contains(&"G1 Z60 F600".to_owned()));
    assert!(script
        .pause_lines(&point(195.5))
        .contains(&"G1 Z200 F600".to_owned()));
    let above = script.pause_lines(&point(204.0));
    assert!(!above.iter().any(|l| l.starts_with("G1 Z")), "{above:?}");
}

#[test]
fn resume_before_the_position_came_back_drops_the_pause() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let job = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 60, false);
    b.start(&job);
    b.run_job_to_line(20);
    b.control.pause(b.h.session());
    assert_eq!(b.control.phase(), JobPhase::Pausing);
    b.control.resume(b.h.session());
    assert_eq!(b.control.phase(), JobPhase::Printing);
    b.finish();
    // Resumed before `M400`/`M114` went out: no park, no return, every line once.
    assert_eq!(
        b.commands(),
        job.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(!b
        .job_events
        .iter()
        .any(|e| matches!(e, JobEvent::Paused(_))));
}

#[test]
fn pause_right_after_a_resume_keeps_the_return() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let job = job(&["G28", "G91", "M83", "G1 F2400"], 60, true);
    b.start(&job);
    b.run_job_to_line(20);
    b.control.pause(b.h.session());
    b.run_until(
        |b| matches!(b.control.phase(), JobPhase::Paused { .. }),
        Duration::from_secs(60),
    );
    // The return lines are queued, not written, when the second pause takes the queue back.
    b.control.resume(b.h.session());
    b.control.pause(b.h.session());
    b.control.resume(b.h.session());
    b.finish();
    assert_eq!(b.printer().position(), reference(&job).0);
    assert_eq!(
        b.commands()
            .iter()
            .filter(|c| c.starts_with("G92 E"))
            .count(),
        1
    );
}

#[test]
fn resume_while_parking_returns_after_the_parking_moves() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let job = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 60, false);
    b.start(&job);
    b.run_job_to_line(20);
    b.control.pause(b.h.session());
    // The M114 answer is in: the park lines are queued, not yet done.
    b.run_until(
        |b| b.control.phase() == JobPhase::Parking,
        Duration::from_secs(60),
    );
    b.control.resume(b.h.session());
    b.finish();
    let ledger = b.commands();
    let m114 = ledger.iter().position(|c| *c == "M114").unwrap();
    let pause = HostScripts::default().pause.pause_lines(&PausePoint {
        position: reference(&job[..m114 - 1]).0,
        absolute_positioning: true,
        absolute_extrusion: true,
        inches: false,
        feedrate: None,
        hotend_target: None,
    });
    assert_eq!(&ledger[m114 + 1..m114 + 1 + pause.len()], &pause[..]);
    let resume_at = m114 + 1 + pause.len();
    assert!(ledger[resume_at + 2].starts_with("G1 X"), "{ledger:?}");
    assert_eq!(
        &ledger[ledger.len() - (job.len() - (m114 - 1))..],
        &job[m114 - 1..]
    );
    assert_eq!(b.printer().position(), reference(&job).0);
}

#[test]
fn pause_near_max_z_in_the_simulator() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let mut scripts = HostScripts::default();
    scripts.pause.max_z = 180.0;
    b.control.set_scripts(scripts);
    let job = job(&["G28", "G90", "M82", "G1 Z175.25 F1200"], 20, false);
    b.start(&job);
    b.run_job_to_line(10);
    b.control.pause(b.h.session());
    b.run_until(
        |b| matches!(b.control.phase(), JobPhase::Paused { .. }),
        Duration::from_secs(60),
    );
    assert_eq!(b.printer().position()[2], 180.0);
    b.control.resume(b.h.session());
    b.finish();
    assert_eq!(b.printer().position()[2], 175.25);
}

#[test]
fn cancel_parks_and_turns_heaters_and_fan_off() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let job = job(
        &[
            "M140 S60",
            "M104 S200",
            "M106 S255",
            "G28",
            "G90",
            "M82",
            "G1 Z0.3 F1200",
        ],
        80,
        false,
    );
    b.start(&job);
    b.run_job_to_line(30);
    assert_eq!(b.printer().heater_targets(), (200.0, 60.0));
    b.control.cancel(b.h.session());
    b.finish();
    assert_eq!(b.printer().heater_targets(), (0.0, 0.0));
    let ledger = b.commands();
    let m400 = ledger.iter().position(|c| *c == "M400").unwrap();
    assert_eq!(&ledger[..m400], &job[..m400]);
    let tail = &ledger[m400..];
    assert_eq!(&tail[..2], &["M400", "M114"]);
    for needed in [
        "G1 E-2 F2100",
        "G1 X0 Y0 F6000",
        "M104 S0",
        "M140 S0",
        "M107",
        "M84",
    ] {
        assert!(tail.contains(&needed), "{needed} in {tail:?}");
    }
    assert!(!tail.iter().any(|c| job[m400..].iter().any(|j| j == c)));
    assert_eq!(b.control.phase(), JobPhase::Idle);
}

#[test]
fn cancel_while_paused_does_not_park_twice_and_a_new_job_waits_for_it() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let first = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 40, false);
    b.start(&first);
    b.run_job_to_line(20);
    b.control.pause(b.h.session());
    b.run_until(
        |b| matches!(b.control.phase(), JobPhase::Paused { .. }),
        Duration::from_secs(60),
    );
    b.control.cancel(b.h.session());
    let second = vec!["G1 X5 Y5 F3000".to_owned(), "M117 second".to_owned()];
    b.start(&second);
    b.run_until(
        |b| {
            b.job_events
                .iter()
                .any(|e| matches!(e, JobEvent::Finished(_)))
        },
        Duration::from_secs(60),
    );
    let ledger = b.commands();
    assert_eq!(ledger.iter().filter(|c| c.starts_with("G1 E-")).count(), 1);
    let m84 = ledger.iter().position(|c| *c == "M84").unwrap();
    assert_eq!(&ledger[m84 + 1..], &["G1 X5 Y5 F3000", "M117 second"]);
}

#[test]
fn hotend_turns_off_after_the_idle_timeout_and_resume_reheats() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let mut scripts = HostScripts::default();
    scripts.pause.hotend_off_after = Some(Duration::from_secs(30));
    b.control.set_scripts(scripts);
    let job = job(
        &["M104 S200", "G28", "G90", "M82", "G1 Z0.3 F1200"],
        30,
        false,
    );
    b.start(&job);
    b.run_job_to_line(15);
    b.control.pause(b.h.session());
    b.run_until(
        |b| b.control.phase() == JobPhase::Paused { cooled: true },
        Duration::from_secs(120),
    );
    b.run_until(
        |b| b.printer().heater_targets().0 == 0.0,
        Duration::from_secs(5),
    );
    assert!(b.job_events.contains(&JobEvent::HotendOff));
    b.control.resume(b.h.session());
    b.finish();
    let ledger = b.commands();
    let off = ledger.iter().position(|c| *c == "M104 S0").unwrap();
    let reheat = ledger.iter().position(|c| *c == "M109 S200").unwrap();
    let back = ledger
        .iter()
        .rposition(|c| c.starts_with("G1 X") && c.ends_with(" F6000"))
        .unwrap();
    assert!(off < reheat && reheat < back, "{ledger:?}");
    assert_eq!(b.printer().heater_targets().0, 200.0);
}

#[test]
fn firmware_pause_actions_drive_the_job() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let job = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 60, false);
    b.start(&job);
    b.run_job_to_line(20);
    // `//action:pause` asks the host to pause (with its script), `resume` to resume.
    b.firmware_writes(b"//action:pause\n");
    b.run_until(
        |b| matches!(b.control.phase(), JobPhase::Paused { .. }),
        Duration::from_secs(60),
    );
    b.firmware_writes(b"//action:resume\n");
    assert_eq!(b.control.phase(), JobPhase::Printing);
    b.run_job_to_line(40);
    b.firmware_writes(b"//action:cancel\n");
    b.finish();
    assert!(b
        .job_events
        .iter()
        .any(|e| matches!(e, JobEvent::Cancelled(_))));
    let ledger = b.commands();
    assert_eq!(ledger.iter().filter(|c| **c == "M114").count(), 2);
    assert_eq!(ledger.iter().filter(|c| **c == "M84").count(), 1);
}

#[test]
fn m600_pauses_in_the_firmware_and_the_host_waits_for_the_user() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let mut job = job(&["G28", "G90", "M82", "G1 Z0.3 F1200"], 40, false);
    job.insert(20, "M600".to_owned());
    b.start(&job);
    b.run_until(
        |b| b.control.phase() == JobPhase::PausedByFirmware && b.control.waiting_for_user(),
        Duration::from_secs(60),
    );
    assert!(b.job_events.contains(&JobEvent::Paused(None)));
    assert!(b.job_events.contains(&JobEvent::WaitingForUser));
    // No job line after M600 was sent while the firmware waits.
    let sent_before = b.control.progress().unwrap().sent;
    for _ in 0..200 {
        b.step();
    }
    assert_eq!(b.control.progress().unwrap().sent, sent_before);
    let now = b.h.now();
    b.session()
        .send_emergency(now, EmergencyCommand::Continue)
        .unwrap();
    b.finish();
    assert!(b.job_events.contains(&JobEvent::Resumed));
    let ledger: Vec<&str> = b.commands().into_iter().filter(|c| *c != "M108").collect();
    assert_eq!(ledger, job.iter().map(String::as_str).collect::<Vec<_>>());
}

// ----- SD -----------------------------------------------------------------------------------

fn upload(b: &mut Bench, name: &str, lines: Vec<String>) -> Result<UploadProgress, SdError> {
    let (tx, mut rx) = oneshot::channel();
    let total = lines.len() as u64;
    b.upload = Upload::start(
        b.session(),
        name.to_owned(),
        Box::new(lines.into_iter()),
        Some(total),
        tx,
    );
    b.run_until(
        |b| b.upload.as_ref().is_none_or(|u| u.is_done()),
        Duration::from_secs(600),
    );
    b.upload = None;
    rx.try_recv().expect("the upload answered")
}

fn gcode_file(n: usize) -> Vec<String> {
    let mut lines = vec![
        "; generated by a test".to_owned(),
        "G28 ; home".to_owned(),
        "G90".to_owned(),
        String::new(),
    ];
    lines.extend(
        (0..n).map(|i| format!("G1 X{}.5 Y{} E{}.25 F{} ;move", i % 90, i % 70, i, 1200 + i)),
    );
    lines
}

fn stored_form(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        if let Some(p) = crate::Payload::new(l, crate::Dialect::default()).unwrap() {
            out.extend_from_slice(p.as_str().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[test]
fn upload_stores_a_byte_exact_file_and_runs_nothing() {
    for (seed, corrupt, drop) in [(0, 0.0, 0.0), (7, 0.2, 0.0), (8, 0.0, 0.2), (9, 0.1, 0.1)] {
        let faults = Faults {
            seed,
            corrupt_line: corrupt,
            drop_byte: drop,
            ..Faults::none()
        };
        // Polled temperatures (no autoreport) for half the cases: no poll may reach the file.
        let sim = SimConfig {
            faults,
            autoreport_temp: seed % 2 == 0,
            ..sim()
        };
        let mut b = Bench::new(
            sim,
            SessionConfig {
                temperature_interval: Some(Duration::from_secs(1)),
                ..SessionConfig::default()
            },
        );
        let lines = gcode_file(400);
        let before = b.printer().ledger().len();
        let report = upload(&mut b, "CUBE.GCO", lines.clone()).unwrap();
        let expected = stored_form(&lines);
        let file = b.printer().sd_card().file("CUBE.GCO").expect("stored");
        assert_eq!(
            String::from_utf8_lossy(&file.data),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(report.bytes, expected.len() as u64);
        assert_eq!(report.acknowledged, 402);
        let during: Vec<&str> = b.printer().ledger()[before..]
            .iter()
            .map(|e| e.command.as_str())
            .collect();
        // `M29` is handled by the command queue, not run as G-code (as in Marlin).
        assert_eq!(during, ["M28 CUBE.GCO"], "seed {seed}");
        if corrupt + drop > 0.0 {
            assert!(b.printer().stats().line_errors > 0);
        }
    }
}

#[test]
fn upload_refuses_a_line_with_m29_and_deletes_the_partial_file() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let lines = vec!["G28".to_owned(), "M117 M29".to_owned(), "G1 X1".to_owned()];
    let err = upload(&mut b, "BAD.GCO", lines).unwrap_err();
    assert_eq!(
        err,
        SdError::InvalidLine {
            line: 2,
            reason: "it contains M29, which ends the upload".into()
        }
    );
    b.run_until(
        |b| b.h.session_ref().is_idle() && b.printer().is_idle(),
        Duration::from_secs(10),
    );
    assert!(b.printer().sd_card().file("BAD.GCO").is_none());
    assert!(!b.printer().ledger().iter().any(|e| e.command == "G28"));
}

#[test]
fn sd_print_runs_the_file_once_in_order_and_reports_progress() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let lines = gcode_file(600);
    upload(&mut b, "PART.GCO", lines.clone()).unwrap();
    b.session().send("M23 PART.GCO").unwrap();
    b.session().send("M27 S1").unwrap();
    b.session().send("M24").unwrap();
    b.run_until(
        |b| {
            b.session_events
                .contains(&Event::Sd(SdStatus::DonePrinting))
                && b.printer().is_idle()
        },
        Duration::from_secs(600),
    );
    let from_sd: Vec<&str> = b
        .printer()
        .ledger()
        .iter()
        .filter(|e| e.line.is_none())
        .map(|e| e.command.as_str())
        .collect();
    let mut expected: Vec<String> = lines
        .iter()
        .filter_map(|l| crate::Payload::new(l, crate::Dialect::default()).unwrap())
        .map(|p| p.as_str().to_owned())
        .collect();
    expected.push("M1001".to_owned());
    assert_eq!(from_sd, expected);
    let reports: Vec<(u64, u64)> = b
        .session_events
        .iter()
        .filter_map(|e| match e {
            Event::Sd(SdStatus::Printing { done, total }) => Some((*done, *total)),
            _ => None,
        })
        .collect();
    let size = b.printer().sd_card().file("PART.GCO").unwrap().data.len() as u64;
    assert!(reports.len() >= 2, "{reports:?}");
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(reports.iter().all(|r| r.1 == size && r.0 <= size));
    assert!(b.session_events.iter().any(|e| matches!(
        e,
        Event::Sd(SdStatus::FileOpened { name, size: s }) if name == "PART.GCO" && *s == size
    )));
}

/// The `SD printing byte` reports among the session's events.
fn sd_reports(b: &Bench) -> Vec<(u64, u64)> {
    b.session_events
        .iter()
        .filter_map(|e| match e {
            Event::Sd(SdStatus::Printing { done, total }) => Some((*done, *total)),
            _ => None,
        })
        .collect()
}

#[test]
fn without_sd_autoreport_the_host_polls_m27_until_the_print_is_done() {
    let no_autoreport = SimConfig {
        sd: crate::sim::SdConfig {
            autoreport: false,
            ..crate::sim::SdConfig::default()
        },
        ..sim()
    };
    let mut b = Bench::new(no_autoreport, SessionConfig::default());
    assert!(!b.h.session_ref().firmware().has("AUTOREPORT_SD_STATUS"));
    upload(&mut b, "PART.GCO", gcode_file(2000)).unwrap();
    b.session().send("M23 PART.GCO").unwrap();
    b.session().send("M24").unwrap();
    let started = b.h.now();
    b.sd.start_polling(started);
    b.run_until(
        |b| {
            b.session_events
                .contains(&Event::Sd(SdStatus::DonePrinting))
        },
        Duration::from_secs(600),
    );
    let size = b.printer().sd_card().file("PART.GCO").unwrap().data.len() as u64;
    let reports = sd_reports(&b);
    let elapsed = b.h.now() - started;
    // At most one poll per 2 s interval; at least one per two intervals (each poll waits
    // for a free command slot behind the file's lines, as in Marlin).
    let intervals = elapsed.as_secs() / 2;
    assert!(intervals >= 4, "the print took {elapsed:?}");
    assert!(
        (intervals / 2..=intervals).contains(&(reports.len() as u64)),
        "{} reports in {elapsed:?}",
        reports.len()
    );
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0), "{reports:?}");
    assert!(reports.iter().all(|r| r.1 == size && r.0 < size));
    // Polling stopped with the print: no M27 during the next minute.
    let polls = |b: &Bench| b.commands().iter().filter(|c| **c == "M27").count();
    let before = polls(&b);
    assert_eq!(before, reports.len());
    let later = b.h.now() + Duration::from_secs(60);
    b.run_until(|b| b.h.now() >= later, Duration::from_secs(61));
    assert_eq!(polls(&b), before);
    assert!(b.sd.poll_timeout().is_none());
}

#[test]
fn a_poll_answered_not_sd_printing_stops_polling() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let now = b.h.now();
    b.sd.start_polling(now);
    b.run_until(
        |b| b.session_events.contains(&Event::Sd(SdStatus::NotPrinting)),
        Duration::from_secs(10),
    );
    b.run_until(|b| b.h.session_ref().is_idle(), Duration::from_secs(1));
    assert!(b.sd.poll_timeout().is_none());
}

/// Lists the simulated card through [`SdHost`] keeping at most `max` entries.
fn list(b: &mut Bench, max: usize) -> SdListing {
    b.sd = SdHost::new(SdOptions {
        list_max_entries: max,
        ..SdOptions::default()
    });
    let (tx, mut rx) = oneshot::channel();
    b.sd.list(b.h.session(), tx);
    b.run_until(|b| b.h.session_ref().is_idle(), Duration::from_secs(600));
    rx.try_recv().expect("the listing answered").unwrap()
}

#[test]
fn listings_of_any_length_keep_at_most_the_configured_entries_and_say_so() {
    let mut b = Bench::new(sim(), SessionConfig::default());
    let card = b.h.printer_mut().sd_card_mut();
    let mut expected = Vec::new();
    for i in 0..3000 {
        let short = if i % 3 == 0 {
            card.insert(&format!("{i} part.gcode"), vec![b'G'; i % 50])
        } else {
            card.insert(&format!("F{i}.GCO"), vec![b'G'; i % 50])
        };
        expected.push((short, (i % 50) as u64));
    }
    // More than the session keeps of one response (256 lines), all of it in order.
    let all = list(&mut b, 5000);
    assert_eq!((all.total, all.truncated), (3000, false));
    let got: Vec<(String, u64)> = all
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.size))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(all.entries[3].long_name.as_deref(), Some("3 part.gcode"));
    assert_eq!(all.entries[4].long_name, None);
    // Bounded: the first 100 kept, every entry counted.
    let some = list(&mut b, 100);
    assert_eq!((some.total, some.truncated), (3000, true));
    assert_eq!(some.entries, all.entries[..100]);
    // Exactly at the bound: not truncated.
    let exact = list(&mut b, 3000);
    assert_eq!((exact.entries.len(), exact.truncated), (3000, false));
}

fn lfn_sim(long_name_write: bool) -> SimConfig {
    SimConfig {
        sd: crate::sim::SdConfig {
            long_name_write,
            ..crate::sim::SdConfig::default()
        },
        ..sim()
    }
}

#[test]
fn long_name_uploads_need_lfn_write() {
    let name = "Benchy 0.2mm PLA.gcode";
    let lines = gcode_file(50);
    let mut b = Bench::new(lfn_sim(true), SessionConfig::default());
    assert!(b.h.session_ref().firmware().has("LFN_WRITE"));
    let report = upload(&mut b, name, lines.clone()).unwrap();
    let file = b.printer().sd_card().file(name).expect("stored");
    assert_eq!(file.long_name.as_deref(), Some(name));
    assert_eq!(file.data, stored_form(&lines));
    assert_eq!(report.bytes, file.data.len() as u64);
    let listing = list(&mut b, 10);
    assert_eq!(listing.entries.len(), 1);
    assert_eq!(listing.entries[0].long_name.as_deref(), Some(name));
    assert_eq!(listing.entries[0].name, "BENCHY~1.GCO");

    // Without LONG_FILENAME_WRITE_SUPPORT the firmware refuses to create it.
    let mut b = Bench::new(lfn_sim(false), SessionConfig::default());
    assert!(!b.h.session_ref().firmware().has("LFN_WRITE"));
    let err = upload(&mut b, name, lines).unwrap_err();
    assert_eq!(err, SdError::OpenFailed { name: name.into() });
    assert!(b.printer().sd_card().files().is_empty());
}

#[test]
fn file_names_for_the_firmware() {
    assert_eq!(sd_file_name("a.g", false).unwrap(), "A.G");
    assert_eq!(sd_file_name("a.g", true).unwrap(), "A.G");
    let long = "x".repeat(SD_LONG_NAME_MAX);
    assert_eq!(sd_file_name(&long, true).unwrap(), long);
    assert_eq!(
        sd_file_name(&long, false),
        Err(SdError::LongNameUnsupported { name: long.clone() })
    );
    for bad in [
        "x".repeat(SD_LONG_NAME_MAX + 1),
        "a/b.gcode".into(),
        "..gcode".into(),
        " lead.gcode".into(),
        "semi;colon.gcode".into(),
        "star*.gcode".into(),
        "paren(1).gcode".into(),
        "caf\u{e9}.gcode".into(),
        "tab\t.gcode".into(),
    ] {
        for long_names in [false, true] {
            assert!(
                matches!(
                    sd_file_name(&bad, long_names),
                    Err(SdError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            failure_persistence: None,
            rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
            ..ProptestConfig::default()
        })]

        /// Any mix of positioning and extrusion modes, any pause point, with or without
        /// line faults and ADVANCED_OK: the job runs once in order around the scripts and the
        /// printer returns to the exact pause point.
        #[test]
        fn pause_anywhere_in_any_mode(
            positioning in prop::sample::select(vec!["G90", "G91"]),
            extrusion in prop::sample::select(vec!["", "M82", "M83"]),
            moves in 12usize..60,
            at_fraction in 0.0f64..1.0,
            seed in 0u64..1000,
            faulty in any::<bool>(),
            advanced_ok in any::<bool>(),
        ) {
            let mut prelude = vec!["G28", positioning];
            if !extrusion.is_empty() {
                prelude.push(extrusion);
            }
            prelude.push("G1 F2400");
            let job = job(&prelude, moves, positioning == "G91");
            let at = 4 + ((moves - 1) as f64 * at_fraction) as u64;
            let rate = if faulty { 0.1 } else { 0.0 };
            let sim = SimConfig {
                advanced_ok,
                homing_time: Duration::from_millis(20),
                faults: Faults { seed, corrupt_line: rate, drop_byte: rate / 2.0, ..Faults::none() },
                ..sim()
            };
            pause_and_resume(&job, at, SessionConfig::default(), sim);
        }

        /// Two pauses, each resumed at any moment (before the position came back, while
        /// parking, parked), the second one possibly right after the first resume: every job
        /// line runs once, in order, and the job ends where it ends unpaused (relative moves
        /// would carry any wrong return to the end).
        #[test]
        fn resume_at_any_moment(
            relative in any::<bool>(),
            moves in 20usize..60,
            at_fraction in 0.0f64..0.5,
            waits in prop::collection::vec(prop_oneof![Just(0usize), 1usize..5, 5usize..60], 3),
            seed in 0u64..1000,
            advanced_ok in any::<bool>(),
        ) {
            let prelude = if relative {
                ["G28", "G91", "M83", "G1 F2400"]
            } else {
                ["G28", "G90", "M82", "G1 F2400"]
            };
            let job = job(&prelude, moves, relative);
            let at = 4 + ((moves - 2) as f64 * at_fraction) as u64;
            let sim = SimConfig {
                advanced_ok,
                homing_time: Duration::from_millis(20),
                faults: Faults { seed, corrupt_line: 0.05, ..Faults::none() },
                ..sim()
            };
            let mut b = Bench::new(sim, SessionConfig::default());
            b.start(&job);
            b.run_job_to_line(at);
            let steps = |b: &mut Bench, n: usize| {
                for _ in 0..n {
                    if matches!(b.control.phase(), JobPhase::Paused { .. }) {
                        break;
                    }
                    b.step();
                }
            };
            b.control.pause(b.h.session());
            steps(&mut b, waits[0]);
            b.control.resume(b.h.session());
            steps(&mut b, waits[1]);
            b.control.pause(b.h.session());
            steps(&mut b, waits[2]);
            b.control.resume(b.h.session());
            b.finish();
            let ledger = b.commands();
            let mut next = 4;
            for c in &ledger {
                if next < job.len() && *c == job[next] {
                    next += 1;
                }
            }
            prop_assert_eq!(next, job.len(), "every move, in order");
            for line in &job[4..] {
                prop_assert_eq!(ledger.iter().filter(|c| **c == line).count(), 1);
            }
            prop_assert_eq!(b.printer().position(), reference(&job).0);
        }
    }
}

/// Without ADVANCED_OK a lost `ok` during an upload cannot be probed with an `M105` (it would
/// be stored): the session sends the unanswered line again, which the firmware either refuses
/// as a duplicate (it had it) or stores (it had lost it). The file comes out byte-exact.
#[test]
fn upload_survives_lost_oks_and_lost_lines_without_advanced_ok() {
    for (seed, lost_ok, lose_line, corrupt) in [
        (5, 0.02, 0.0, 0.0),
        (6, 0.0, 0.02, 0.0),
        (7, 0.02, 0.02, 0.05),
    ] {
        let faults = Faults {
            seed,
            lost_ok,
            lose_line,
            corrupt_line: corrupt,
            ..Faults::none()
        };
        let mut b = Bench::new(SimConfig { faults, ..sim() }, SessionConfig::default());
        assert!(!b.h.session_ref().firmware().advanced_ok);
        let lines = gcode_file(400);
        let before = b.printer().ledger().len();
        let report = upload(&mut b, "CUBE.GCO", lines.clone()).unwrap();
        let expected = stored_form(&lines);
        let file = &b.printer().sd_card().file("CUBE.GCO").expect("stored").data;
        assert!(*file == expected, "seed {seed}: the file is byte-exact");
        assert_eq!(
            (report.acknowledged, report.bytes),
            (402, expected.len() as u64)
        );
        let during: Vec<&str> = b.printer().ledger()[before..]
            .iter()
            .map(|e| e.command.as_str())
            .collect();
        assert_eq!(during, ["M28 CUBE.GCO"], "seed {seed}");
        let probes = b
            .session_events
            .iter()
            .filter(|e| matches!(e, Event::Warning(crate::Warning::Probed)))
            .count();
        assert!(probes > 0, "seed {seed}: faults were met");
    }
}

mod sd_faults;
