//! Resuming an interrupted print: the server restarts mid-print, a person resumes the job, and
//! the printer (a simulated Marlin on a pty that outlives both servers, like a real printer
//! does) receives the prelude with the checkpoint's temperatures and E, then exactly the
//! file's remaining lines.

use std::time::Duration;

use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::pipeline::{
    config_for_pty, post_json, print_and_wait, ready, wait_for, wait_job_state, wait_printer,
};

/// Moves of the test print (100 ms each on the simulator).
const MOVES: usize = 120;
/// File lines before the first move.
const HEADER: &[&str] = &[
    "; resume test",
    "M140 S60",
    "M104 S210",
    "M190 S60",
    "M109 S210",
    "G28",
    "G90",
    "M82",
    "G92 E0",
    "G1 Z0.3 F600",
    "M106 S200",
];

/// Two layers: the second starts half way with `G1 Z0.6`.
fn print_file() -> String {
    let mut lines: Vec<String> = HEADER.iter().map(|l| (*l).to_owned()).collect();
    for i in 0..MOVES {
        if i == MOVES / 2 {
            lines.push("G1 Z0.6".into());
        }
        let x = if i % 2 == 0 { 20 } else { 10 };
        lines.push(format!("G1 X{x} Y10 E{:.1} F6000", (i + 1) as f64 * 0.5));
    }
    lines.extend(["M107".into(), "M104 S0".into(), "M140 S0".into()]);
    lines.join("\n") + "\n"
}

/// The last value of axis `letter` in the first `line` lines of `gcode` (0 when never set).
fn axis_after(gcode: &str, line: u64, letter: char) -> f64 {
    gcode
        .lines()
        .take(usize::try_from(line).unwrap())
        .filter(|l| l.starts_with("G1 "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.strip_prefix(letter)?.parse().ok())
        .last()
        .unwrap_or(0.0)
}

/// The 1-based line of the `G1 Z` move that starts the layer `line` is in.
fn layer_start(gcode: &str, line: u64) -> u64 {
    let at = gcode
        .lines()
        .take(usize::try_from(line).unwrap())
        .enumerate()
        .filter(|(_, l)| l.starts_with("G1 Z"))
        .map(|(i, _)| i)
        .last()
        .unwrap();
    at as u64 + 1
}

/// Commands the host sends on its own (handshake, temperature polls).
fn is_host_chatter(command: &str) -> bool {
    ["M105", "M110", "M115", "M155"]
        .iter()
        .any(|c| command == *c || command.starts_with(&format!("{c} ")))
}

#[tokio::test]
async fn an_interrupted_print_resumes_after_its_last_confirmed_line() {
    resume_scenario(ResumeFrom::LastLine).await;
}

#[tokio::test]
async fn an_interrupted_print_resumes_from_the_start_of_its_layer() {
    resume_scenario(ResumeFrom::LayerStart).await;
}

#[derive(Clone, Copy, PartialEq)]
enum ResumeFrom {
    LastLine,
    LayerStart,
}

async fn resume_scenario(from: ResumeFrom) {
    let sim = VirtualPrinter::spawn(
        SimConfig {
            moves: MoveTiming::Kinematic,
            heating_rate: 10_000.0,
            homing_time: Duration::ZERO,
            ..SimConfig::default()
        },
        LinkConfig {
            baud: 1_000_000,
            latency: Duration::ZERO,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_pty(sim.path(), dir.path());
    let gcode = print_file();

    let (first, key) = ready(spawn_app_from(config.clone()).await).await;
    let id = print_and_wait(&first, &key, "resume.gcode", gcode.as_bytes()).await;
    // A checkpoint a few moves into the print.
    wait_for(
        &first,
        &key,
        &format!("/api/v1/jobs/{id}"),
        Duration::from_secs(20),
        "a checkpoint inside the moves",
        |j| j["progress"]["line"].as_u64().unwrap_or(0) > HEADER.len() as u64 + 5,
    )
    .await;
    first.stop().await;

    let second = spawn_app_from(config).await;
    wait_printer(&second, &key).await;
    let job = wait_job_state(&second, &key, id, "interrupted", Duration::from_secs(5)).await;
    let progress = &job["progress"];
    let line = progress["line"].as_u64().unwrap();
    assert!(line > HEADER.len() as u64 + 5, "{job}");
    assert!(
        line < (HEADER.len() + MOVES) as u64,
        "the print was not over: {job}"
    );
    // The checkpoint carries the machine state at that line, from the file.
    assert_eq!(progress["e"], axis_after(&gcode, line, 'E'), "{job}");
    assert_eq!(progress["hotend_c"], 210.0);
    assert_eq!(progress["bed_c"], 60.0);
    assert_eq!(progress["fan"], 200);
    assert_eq!(progress["z"], axis_after(&gcode, line, 'Z'), "{job}");
    assert_eq!(progress["feedrate_mm_min"], 6000.0);

    // A bad body is refused and changes nothing.
    let resume_path = format!("/api/v1/jobs/{id}/resume");
    let response = post_json(&second, &key, &resume_path, json!({ "from": "somewhere" })).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(second_state(&second, &key, id).await, "interrupted");

    let (request, start) = match from {
        ResumeFrom::LastLine => (json!({}), line + 1),
        // The layer's first Z move counts as done: the prelude declares the layer's height.
        ResumeFrom::LayerStart => (
            json!({ "from": "layer_start" }),
            layer_start(&gcode, line) + 1,
        ),
    };
    let response = post_json(&second, &key, &resume_path, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let resumed = body(response).await;
    assert_eq!(resumed["state"], "printing", "{resumed}");
    assert_eq!(resumed["resume"]["start_line"], start, "{resumed}");
    let prelude: Vec<String> = resumed["resume"]["prelude"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    // The state after the line before `start`: the fan comes on at the header's last line.
    let fan_on = start > HEADER.len() as u64;
    for expected in [
        "M190 S60".to_owned(),
        "M109 T0 S210".to_owned(),
        "G28 X Y".to_owned(),
        format!("G92 Z{}", axis_after(&gcode, start - 1, 'Z')),
        format!("G92 E{}", axis_after(&gcode, start - 1, 'E')),
        format!("G1 F{}", axis_after(&gcode, start - 1, 'F')),
    ] {
        assert!(
            prelude.contains(&expected),
            "{expected} missing: {prelude:?}"
        );
    }
    assert_eq!(
        prelude.contains(&"M106 P0 S200".to_owned()),
        fan_on,
        "{prelude:?}"
    );
    assert!(!prelude
        .iter()
        .any(|l| l == "G28" || l.contains('Z') && l.starts_with("G28")));
    // Resuming twice is refused while it prints.
    let again = post_json(&second, &key, &resume_path, json!({})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    wait_job_state(&second, &key, id, "done", Duration::from_secs(60)).await;
    second.stop().await;

    let printer = sim.stop().expect("the simulator ran");
    let executed: Vec<&str> = printer
        .ledger()
        .iter()
        .map(|e| e.command.as_str())
        .filter(|c| !is_host_chatter(c))
        .collect();
    let remaining = gcode
        .lines()
        .skip(usize::try_from(start - 1).unwrap())
        .filter(|l| !l.starts_with(';'));
    let expected: Vec<&str> = prelude
        .iter()
        .map(String::as_str)
        .chain(remaining)
        .collect();
    assert!(
        executed.ends_with(&expected),
        "the printer's last commands are not the prelude and the rest of the file:\n\
         expected {expected:?}\nexecuted tail {:?}",
        &executed[executed.len().saturating_sub(expected.len() + 5)..]
    );
}

async fn second_state(app: &TestApp, key: &str, id: i64) -> String {
    let (_, job) = get_json(app, key, &format!("/api/v1/jobs/{id}")).await;
    job["state"].as_str().unwrap().to_owned()
}
