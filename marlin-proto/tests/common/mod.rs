//! What the tests share: the simulator's link, connecting over the real serial code path,
//! and waiting on conditions (never fixed sleeps); [`streams`]: streaming through the
//! in-process harness and checking the ledger.

// Each test file is its own crate and uses a part of this module.
#![allow(dead_code)]

pub mod streams;

use std::future::Future;
use std::time::Duration;

use easyprint_marlin::printer::{Printer, PrinterConfig, PrinterEvent, Status};
use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
use easyprint_marlin::transport::PortSpec;
use tokio::sync::broadcast;

/// How long any awaited condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The simulated link: 250000 baud, 1 ms latency.
pub fn link() -> LinkConfig {
    LinkConfig {
        baud: 250_000,
        latency: Duration::from_millis(1),
    }
}

/// A simulator with quick homing and the given move timing.
pub fn quick_sim(moves: MoveTiming) -> SimConfig {
    SimConfig {
        moves,
        homing_time: Duration::from_millis(50),
        ..SimConfig::default()
    }
}

/// Opens the virtual printer's pty with the real serial code path.
pub async fn connect_to(vp: &VirtualPrinter) -> Printer {
    connect_with(vp, PrinterConfig::default()).await
}

/// [`connect_to`] with a configuration.
pub async fn connect_with(vp: &VirtualPrinter, config: PrinterConfig) -> Printer {
    let spec = PortSpec::Serial {
        path: vp.path().to_string_lossy().into_owned(),
        baud: 250_000,
    };
    Printer::connect(&spec, config).await.unwrap()
}

/// `f`, or a panic naming `what` after [`PATIENCE`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting: {what}"))
}

/// Waits until the printer's status satisfies `what`.
pub async fn wait_status(printer: &Printer, what: impl Fn(&Status) -> bool) {
    let mut status = printer.status();
    within("a status", status.wait_for(|s| what(s)))
        .await
        .expect("printer open");
}

/// Waits for the first event `what` maps to `Some` (lagging behind is not an error).
pub async fn wait_event<T>(
    events: &mut broadcast::Receiver<PrinterEvent>,
    what: impl Fn(&PrinterEvent) -> Option<T>,
) -> T {
    within("an event", async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if let Some(t) = what(&e) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
}
