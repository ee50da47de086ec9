//! End to end through a real pseudo-terminal: `Printer` → serialport → pty → simulated Marlin.

mod common;

use std::time::Duration;

use common::{connect_to, link, wait_event, within};
use easyprint_marlin::printer::{
    ConnectError, Printer, PrinterConfig, PrinterEvent, PrinterState, Status,
};
use easyprint_marlin::sim::{MoveTiming, SimConfig, VirtualPrinter};
use easyprint_marlin::transport::{PortSpec, TransportError};
use easyprint_marlin::{Event, FatalError, SessionConfig};

fn fast_sim() -> SimConfig {
    SimConfig {
        moves: MoveTiming::Instant,
        advanced_ok: true,
        ..SimConfig::default()
    }
}

fn quick_handshake() -> PrinterConfig {
    PrinterConfig {
        session: SessionConfig {
            hello_timeout: Duration::from_millis(300),
            ..SessionConfig::default()
        },
        ..PrinterConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_job_through_a_real_pty_exactly_once() {
    let vp = VirtualPrinter::spawn(fast_sim(), link()).unwrap();
    let printer = connect_to(&vp).await;
    let fw = printer.status().borrow().firmware.clone().unwrap();
    assert!(fw.advanced_ok);
    assert!(fw.has("EMERGENCY_PARSER"));

    let reply = printer.send("M105").await.unwrap();
    assert!(reply[0].starts_with("ok T:"), "{reply:?}");

    let job: Vec<String> = (0..3000)
        .map(|i| format!("G1 X{} Y{} E{i}", i % 100, i % 37))
        .collect();
    let mut events = printer.events();
    printer.stream(job.clone(), Some(3000)).await.unwrap();
    let finished = wait_event(&mut events, |e| match e {
        PrinterEvent::JobFinished(p) => Some(*p),
        _ => None,
    })
    .await;
    assert_eq!(finished.acknowledged, 3000);
    assert_eq!(printer.status().borrow().state, PrinterState::Ready);
    drop(printer);

    let sim = vp.stop().unwrap();
    let executed: Vec<&str> = sim
        .ledger()
        .iter()
        .filter(|e| e.command.starts_with("G1"))
        .map(|e| e.command.as_str())
        .collect();
    assert_eq!(executed, job.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(sim.stats().rx_overflow_bytes, 0);
}

#[tokio::test]
async fn missing_port_is_a_clear_error() {
    let spec = PortSpec::Serial {
        path: "/dev/ttyDOESNOTEXIST9".into(),
        baud: 115_200,
    };
    let err = Printer::connect(&spec, PrinterConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ConnectError::Transport(TransportError::NotFound { .. })
    ));
    assert_eq!(
        err.to_string(),
        "serial port /dev/ttyDOESNOTEXIST9 does not exist"
    );
}

/// A real serial device (a pty) the user may not open. The test suite runs as root in CI, and root
/// opens anything: so the opening thread first takes an ordinary user's filesystem identity
/// (`setfsuid` is per thread on Linux and drops root's file-permission override with it).
#[test]
fn permission_denied_names_the_port_and_the_fix() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let spec = PortSpec::Serial {
        path: path.clone(),
        baud: 115_200,
    };
    let err = std::thread::spawn(move || {
        // 65534 is `nobody`; for a non-root user this fails harmlessly and the mode alone refuses.
        nix::unistd::setfsuid(nix::unistd::Uid::from_raw(65_534));
        easyprint_marlin::transport::open(&spec)
            .map(|_| ())
            .unwrap_err()
    })
    .join()
    .unwrap();
    assert!(
        matches!(&err, TransportError::PermissionDenied { path: p } if *p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("permission denied opening {path} (is the user in the dialout group?)")
    );
    drop(pty);
}

/// A pty whose far end never answers (or answers garbage, like a wrong baud rate).
fn dumb_pty(
    garbage: bool,
) -> (
    String,
    std::thread::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut t = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let _slave = pty.slave;
        let mut buf = [0u8; 256];
        while !s.load(Ordering::Relaxed) {
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&pty.master),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u16)).unwrap_or(0) > 0
                && nix::unistd::read(pty.master.as_raw_fd(), &mut buf).unwrap_or(0) > 0
                && garbage
            {
                let _ = nix::unistd::write(&pty.master, b"\x80\xfe\x13\x97\x00\xe6\x86\x1e\n");
            }
        }
    });
    (path, h, stop)
}

#[tokio::test]
async fn silent_port_and_wrong_baud_fail_the_handshake_clearly() {
    for garbage in [false, true] {
        let (path, h, stop) = dumb_pty(garbage);
        let spec = PortSpec::Serial {
            path,
            baud: 115_200,
        };
        let err = Printer::connect(&spec, quick_handshake())
            .await
            .unwrap_err();
        match (garbage, &err) {
            (false, ConnectError::Handshake(FatalError::NoResponse { attempts: 3 })) => {}
            (true, ConnectError::Handshake(FatalError::Garbled { attempts: 3, .. })) => {}
            _ => panic!("garbage={garbage}: {err:?}"),
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_cancel_and_emergency_stop() {
    let mut sim = fast_sim();
    sim.moves = MoveTiming::Fixed(Duration::from_millis(2));
    let vp = VirtualPrinter::spawn(sim, link()).unwrap();
    let printer = connect_to(&vp).await;
    let job: Vec<String> = (0..100_000)
        .map(|i| format!("G1 X{} E{i}", i % 50))
        .collect();
    // Conditions, not sleeps: the status watch, and the firmware's temperature autoreports
    // (every 2 s, `PrinterConfig`'s default) as the clock that proves nothing moves.
    async fn next_report(events: &mut tokio::sync::broadcast::Receiver<PrinterEvent>) {
        wait_event(events, |e| {
            matches!(e, PrinterEvent::Session(Event::Temperatures(_))).then_some(())
        })
        .await
    }
    let acknowledged = |s: &Status| s.job.map_or(0, |j| j.acknowledged);
    let mut status = printer.status();
    let mut reports = printer.events();
    printer.stream(job, None).await.unwrap();
    within(
        "the job started",
        status.wait_for(|s| acknowledged(s) >= 100),
    )
    .await
    .map(drop)
    .unwrap();
    printer.pause().unwrap();
    within(
        "paused",
        status.wait_for(|s| s.state == PrinterState::Paused),
    )
    .await
    .map(drop)
    .unwrap();
    // The lines already in flight finish (a few ms at most); two reports later, nothing.
    within("a temperature report", next_report(&mut reports)).await;
    let before = acknowledged(&status.borrow());
    within("a temperature report", next_report(&mut reports)).await;
    let after = acknowledged(&status.borrow());
    assert_eq!(
        after,
        before,
        "paused yet {} lines acknowledged",
        after - before
    );
    printer.resume().unwrap();
    within(
        "the job resumed",
        status.wait_for(|s| acknowledged(s) > after),
    )
    .await
    .map(drop)
    .unwrap();
    printer.cancel().unwrap();
    within(
        "cancelled",
        status.wait_for(|s| s.state == PrinterState::Ready),
    )
    .await
    .map(drop)
    .unwrap();
    let mut events = printer.events();
    printer.emergency_stop().unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while status.borrow().fatal.is_none() {
            status.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(status.borrow().fatal, Some(FatalError::EmergencyStop));
    // The firmware's kill message proves the M112 arrived (the link has latency).
    wait_event(&mut events, |e| {
        matches!(e, PrinterEvent::Session(Event::Message(m)) if m == "Killed by M112").then_some(())
    })
    .await;
    printer.close().await;
    let sim = vp.stop().unwrap();
    assert!(sim.is_halted(), "M112 reached the firmware");
}
