//! Feeds the WebSocket topics from a printer's `watch` and `broadcast` channels. Temperatures
//! come from the printer itself: easyprint-marlin's default `PrinterConfig` switches the
//! firmware's autoreport on (`M155 S2`) or, without it, polls `M105` every 2 s. Everything here
//! only reads the printer's channels: a slow WebSocket client or a busy runtime never reaches
//! the I/O thread.

use std::sync::Arc;
use std::time::Duration;

use easyprint_marlin::printer::{Printer, PrinterEvent};
use easyprint_marlin::session::Event;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{PrinterHandle, TemperatureSnapshot};
use crate::state::AppState;
use crate::ws::hub::{Audience, Topic};

/// Shortest time between two `printer_status` updates of one printer.
const STATUS_INTERVAL: Duration = Duration::from_millis(100);

pub(super) fn spawn(
    state: AppState,
    handle: Arc<PrinterHandle>,
    printer: Arc<Printer>,
    stop: CancellationToken,
) {
    tokio::spawn(follow_status(
        state.clone(),
        handle.clone(),
        printer.clone(),
        stop.clone(),
    ));
    tokio::spawn(follow_events(state, handle.clone(), printer, stop));
}

async fn follow_status(
    state: AppState,
    handle: Arc<PrinterHandle>,
    printer: Arc<Printer>,
    stop: CancellationToken,
) {
    let mut status = printer.status();
    drop(printer);
    loop {
        let slot = handle.slot();
        state
            .hub
            .publish(Topic::PrinterStatus, handle.id(), Audience::Everyone, &slot);
        if slot.state.is_operational() {
            handle.wake.notify_one();
        }
        tokio::select! {
            () = stop.cancelled() => break,
            changed = status.changed() => if changed.is_err() { break },
        }
        // The watch keeps only the latest status, so waiting here coalesces bursts (the status
        // changes with every acknowledged line while printing) into at most 10 updates a second.
        tokio::time::sleep(STATUS_INTERVAL).await;
    }
    state.hub.publish(
        Topic::PrinterStatus,
        handle.id(),
        Audience::Everyone,
        &handle.slot(),
    );
}

async fn follow_events(
    state: AppState,
    handle: Arc<PrinterHandle>,
    printer: Arc<Printer>,
    stop: CancellationToken,
) {
    let mut events = printer.events();
    drop(printer);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(PrinterEvent::Session(Event::Temperatures(t))) => {
                let snapshot = TemperatureSnapshot::from_report(&t);
                handle.set_temperatures(snapshot);
                state.hub.publish(
                    Topic::Temperatures,
                    handle.id(),
                    Audience::Everyone,
                    &snapshot,
                );
            }
            Ok(PrinterEvent::Session(Event::Message(text))) => terminal(&state, &handle, &text),
            Ok(PrinterEvent::Session(Event::Action(action))) => {
                terminal(&state, &handle, &format!("action: {action:?}"));
            }
            Ok(PrinterEvent::Session(Event::Warning(w))) => {
                terminal(&state, &handle, &format!("warning: {w:?}"));
            }
            Ok(PrinterEvent::Session(Event::Fatal(f))) => {
                terminal(&state, &handle, &format!("error: {f}"));
            }
            Ok(_) => {}
            // Missed events are only terminal lines; the status watch carries the rest.
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// Publishes one terminal line (printer output or a command someone sent).
pub(crate) fn terminal(state: &AppState, handle: &PrinterHandle, text: &str) {
    state.hub.publish(
        Topic::Terminal,
        handle.id(),
        Audience::Everyone,
        &json!({ "line": text }),
    );
}
