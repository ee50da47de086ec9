//! Serves a simulated Marlin printer on a pseudo-terminal and prints the pty path.
//!
//! ```text
//! virtual-printer [--flavor NAME] [--baud N] [--advanced-ok] [--instant] [--no-emergency-parser]
//! ```
//! `--flavor` answers as another firmware: marlin (default), prusa, repetier, smoothieware,
//! reprapfirmware, klipper (see `SimFlavor`).
//! Open the printed path with any host (OctoPrint, Pronterface, easyprint) at any baud rate.
//! Stops on end of standard input (Ctrl-D) and prints what the printer executed.

use std::io::Read;
use std::time::Duration;

use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, SimFlavor, VirtualPrinter};

fn main() {
    // The flavor sets its firmware's options first; the other flags then change them.
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flavor = SimFlavor::Marlin;
    if let Some(i) = args.iter().position(|a| a == "--flavor") {
        let name = args.get(i + 1).cloned().unwrap_or_default();
        flavor = match name.as_str() {
            "marlin" => SimFlavor::Marlin,
            "prusa" => SimFlavor::Prusa,
            "repetier" => SimFlavor::Repetier,
            "smoothieware" => SimFlavor::Smoothieware,
            "reprapfirmware" => SimFlavor::RepRapFirmware,
            "klipper" => SimFlavor::Klipper,
            other => usage(&format!("unknown flavor {other:?}")),
        };
        args.drain(i..i + 2);
    }
    let mut config = SimConfig::flavored(flavor);
    let mut link = LinkConfig::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--baud" => {
                link.baud = args
                    .next()
                    .and_then(|b| b.parse().ok())
                    .unwrap_or_else(|| usage("--baud needs a number"));
            }
            "--advanced-ok" => config.advanced_ok = true,
            "--instant" => {
                config.moves = MoveTiming::Instant;
                link.latency = Duration::ZERO;
            }
            "--no-emergency-parser" => config.emergency_parser = false,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let vp = match VirtualPrinter::spawn(config, link) {
        Ok(vp) => vp,
        Err(e) => {
            eprintln!("virtual-printer: cannot open a pseudo-terminal: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", vp.path().display());
    // Block until stdin closes.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let stats = vp.stats();
    if let Some(printer) = vp.stop() {
        eprintln!(
            "executed {} commands; {} line errors; planner underruns {} ({:?} starved)",
            printer.ledger().len(),
            stats.line_errors,
            stats.underruns,
            stats.starved
        );
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("virtual-printer: {problem}");
    }
    eprintln!(
        "usage: virtual-printer [--flavor marlin|prusa|repetier|smoothieware|reprapfirmware|klipper] [--baud N] [--advanced-ok] [--instant] [--no-emergency-parser]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}
