//! A print on a real pty keeps streaming while 200 WebSocket clients connect, leave, read and
//! stall: the printer's stream never waits for a client.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::*;
use crate::pipeline::{config_for_pty, print_and_wait, wait_job_state, wait_printer};
use crate::ws::{connect, connect_to, send_json};

/// Moves of 10 mm at 100 mm/s: about 0.1 s each, so the simulator's 16-block planner holds
/// more than a second of work. Only a stream that stops for that long can starve it.
const MOVES: usize = 100;
const READERS: usize = 50;
const STALLERS: usize = 50;
const CHURNERS: usize = 100;

fn print_file() -> String {
    let mut lines = vec![
        "G28".to_owned(),
        "G90".into(),
        "M82".into(),
        "G92 E0".into(),
        "G1 Z0.3 F600".into(),
    ];
    for i in 0..MOVES {
        let x = if i % 2 == 0 { 20 } else { 10 };
        lines.push(format!("G1 X{x} Y10 E{:.1} F6000", (i + 1) as f64 * 0.5));
    }
    lines.join("\n") + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_print_streams_untouched_while_200_websocket_clients_come_go_and_stall() {
    let sim = VirtualPrinter::spawn(
        SimConfig {
            moves: MoveTiming::Kinematic,
            homing_time: Duration::ZERO,
            ..SimConfig::default()
        },
        LinkConfig {
            baud: 115_200,
            latency: Duration::ZERO,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for_pty(sim.path(), dir.path());
    config.limits.max_ws_clients = 300;
    let app = spawn_app_from(config).await;
    let (_, key) = app.admin_and_key().await;
    let auth = [("x-api-key", key.clone())];
    wait_printer(&app, &key).await;

    let gcode = print_file();
    let id = print_and_wait(&app, &key, "busy.gcode", gcode.as_bytes()).await;

    let topics = json!(["terminal", "job_progress", "printer_status", "temperatures"]);
    let mut stallers = Vec::new();
    for _ in 0..STALLERS {
        let mut socket = connect(&app, &auth).await.unwrap();
        send_json(&mut socket, json!({ "subscribe": topics })).await;
        stallers.push(socket); // never read again
    }
    let stop = Arc::new(AtomicBool::new(false));
    let messages = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut socket = connect(&app, &auth).await.unwrap();
        send_json(&mut socket, json!({ "subscribe": topics })).await;
        let (stop, messages) = (stop.clone(), messages.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
                    Ok(Some(Ok(_))) => {
                        messages.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => break,
                    Err(_) => {}
                }
            }
        }));
    }
    let churned = Arc::new(AtomicU64::new(0));
    let churners: Vec<_> = (0..CHURNERS)
        .map(|_| {
            let (app_addr, auth, stop, churned) =
                (app.addr, auth.clone(), stop.clone(), churned.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut socket) = connect_to(app_addr, &auth).await else {
                        continue;
                    };
                    send_json(&mut socket, json!({ "subscribe": ["terminal", "queue"] })).await;
                    let _ = tokio::time::timeout(Duration::from_millis(20), socket.next()).await;
                    drop(socket);
                    churned.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    wait_job_state(&app, &key, id, "done", Duration::from_secs(120)).await;
    stop.store(true, Ordering::Relaxed);
    for task in churners.into_iter().chain(readers) {
        task.await.unwrap();
    }
    drop(stallers);
    app.stop().await;

    let stats = sim.stats();
    let printer = sim.stop().expect("the simulator ran");
    let ran: Vec<&str> = printer
        .ledger()
        .iter()
        .map(|e| e.command.as_str())
        .filter(|c| {
            !["M105", "M110", "M115", "M155"]
                .iter()
                .any(|h| c.starts_with(h))
        })
        .collect();
    let expected: Vec<&str> = gcode.lines().collect();
    assert_eq!(ran, expected, "every line ran once, in order");
    assert!(churned.load(Ordering::Relaxed) > 0, "clients churned");
    assert!(messages.load(Ordering::Relaxed) > 0, "readers were served");
    eprintln!(
        "busy clients: {} churned connections, {} messages read, simulator {stats:?}",
        churned.load(Ordering::Relaxed),
        messages.load(Ordering::Relaxed)
    );
    assert_eq!(stats.line_errors, 0, "{stats:?}");
    // The planner holds over a second of moves: it only runs dry if the stream stopped.
    assert_eq!(stats.underruns, 0, "the printer waited for data: {stats:?}");
    assert!(
        stats.max_line_gap < Duration::from_secs(1),
        "longest gap between lines {:?}",
        stats.max_line_gap
    );
}
