//! The printers this server drives: one [`PrinterHandle`] per configured printer, over
//! easyprint-marlin's [`Printer`] (a serial port, or `virtual`: the simulator on a real pty in
//! this process).
//!
//! The marlin I/O thread owns the serial line; this module only sends it requests and reads its
//! `watch`/`broadcast` channels, so nothing here (HTTP handlers, WebSocket clients) can slow the
//! printer down. The `monitor` submodule feeds the WebSocket topics; [`commands`] turns typed requests into
//! G-code that cannot smuggle a second command onto the line.

pub mod commands;
pub mod eta;
mod monitor;
mod registry;
pub mod store;

pub use registry::PrinterRegistry;

pub(crate) use monitor::terminal;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use easyprint_marlin::printer::{Printer, PrinterConfig as MarlinConfig, PrinterState, Status};
use easyprint_marlin::response::{Heater, Temperatures};
use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
use easyprint_marlin::transport::PortSpec;
use easyprint_queue::{HistoryFilter, JobId, Lease, RunKind, RunRecord};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{HostScriptsConfig, PrinterConfig, SimulationConfig};
use crate::error::ApiError;
use crate::pipeline::analysis::FileAnalysis;
use eta::{EstimateOrigin, PaceTracker};

/// Connection state of one printer, named as OctoPrint names it in `/api/connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not connected (OctoPrint: "Closed").
    Closed,
    /// Opening the port and completing the handshake.
    Connecting,
    /// Connected and idle.
    Operational,
    /// Streaming a job.
    Printing,
    /// A job is paused.
    Paused,
    /// The connection failed; see [`PrinterSlot::error`].
    Error,
}

impl ConnectionState {
    /// OctoPrint's text for this state.
    pub fn octoprint_text(self) -> &'static str {
        match self {
            ConnectionState::Closed => "Closed",
            ConnectionState::Connecting => "Connecting",
            ConnectionState::Operational => "Operational",
            ConnectionState::Printing => "Printing",
            ConnectionState::Paused => "Paused",
            ConnectionState::Error => "Error",
        }
    }

    /// Whether the printer can take commands.
    pub fn is_operational(self) -> bool {
        matches!(
            self,
            ConnectionState::Operational | ConnectionState::Printing | ConnectionState::Paused
        )
    }

    fn from_status(status: &Status) -> ConnectionState {
        match status.state {
            PrinterState::Connecting => ConnectionState::Connecting,
            PrinterState::Ready => ConnectionState::Operational,
            PrinterState::Printing => ConnectionState::Printing,
            PrinterState::Paused => ConnectionState::Paused,
            PrinterState::Failed(_) => ConnectionState::Error,
            _ => ConnectionState::Closed,
        }
    }
}

/// One heater's reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeaterReading {
    /// Current temperature, °C.
    pub actual: f64,
    /// Target, °C (0 when off or not reported).
    pub target: f64,
}

/// The temperatures the API reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct TemperatureSnapshot {
    /// The (first) hotend.
    pub tool0: Option<HeaterReading>,
    /// The bed.
    pub bed: Option<HeaterReading>,
}

impl TemperatureSnapshot {
    fn from_report(t: &Temperatures) -> TemperatureSnapshot {
        let reading = |h: &Heater| {
            t.get(h).map(|r| HeaterReading {
                actual: r.actual,
                target: r.target.unwrap_or(0.0),
            })
        };
        TemperatureSnapshot {
            tool0: reading(&Heater::Tool(Some(0))).or_else(|| reading(&Heater::Tool(None))),
            bed: reading(&Heater::Bed),
        }
    }
}

/// Where a running print is, in the file's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct JobPosition {
    /// 1-based line number of the last line the printer acknowledged (0: none yet).
    pub line: u64,
    /// Byte offset just past that line.
    pub byte_offset: u64,
}

/// The print a printer is streaming.
#[derive(Debug, Clone)]
pub struct ActiveJob {
    /// The queue job.
    pub job_id: JobId,
    /// The lease this printer holds on it.
    pub lease: Lease,
    /// Id of the owning user.
    pub owner_id: i64,
    /// The job's file as the queue and history name it (a model's name for a sliced job).
    pub file_name: String,
    /// The G-code file being streamed: its path in the owner's files.
    pub gcode_path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its analysis (estimates, layers, line index).
    pub analysis: Arc<FileAnalysis>,
    /// When streaming started.
    pub started: Instant,
    /// Last acknowledged position.
    pub position: JobPosition,
    /// Paused by a person.
    pub paused: bool,
    /// File commands not streamed (before a resume point).
    pub skipped_commands: u64,
    /// Lines of a resume prelude streamed before the file's.
    pub prelude_lines: u64,
    /// The pace kept against the analysis' estimate (see [`eta`]).
    pub pace: PaceTracker,
}

impl ActiveJob {
    /// The file position once the printer acknowledged `acknowledged` of the lines streamed
    /// (prelude lines first, then the file's commands from the resume point).
    pub fn position_after(&self, acknowledged: u64) -> JobPosition {
        let file_commands = acknowledged.saturating_sub(self.prelude_lines);
        self.analysis
            .position_after(self.skipped_commands + file_commands)
    }

    /// Fraction of the file's bytes acknowledged, 0–100.
    pub fn completion_percent(&self) -> f64 {
        if self.size == 0 {
            return 100.0;
        }
        (self.position.byte_offset as f64 / self.size as f64 * 100.0).min(100.0)
    }

    /// Moves to `position`, acknowledged at `now`.
    pub fn advance(&mut self, position: JobPosition, now: Instant) {
        self.position = position;
        self.pace.observe(
            now,
            self.analysis.analysis.time_at_offset(position.byte_offset),
        );
    }

    /// Estimated seconds left: the analysis' timeline from the current position, scaled by
    /// the pace observed so far.
    pub fn time_left(&self) -> (f64, EstimateOrigin) {
        self.pace.time_left(
            self.analysis
                .analysis
                .remaining_time_at_offset(self.position.byte_offset),
        )
    }

    /// [`ActiveJob::time_left`] in seconds.
    pub fn time_left_secs(&self) -> f64 {
        self.time_left().0
    }
}

/// A snapshot of one printer for the API.
#[derive(Debug, Clone, Serialize)]
pub struct PrinterSlot {
    /// Stable identifier from the configuration.
    pub id: String,
    /// Display name (the id when none was configured).
    pub name: String,
    /// Serial device path or `virtual`.
    pub port: String,
    /// Baud rate.
    pub baudrate: u32,
    /// Connects when the server starts.
    pub autoconnect: bool,
    /// How the simulated printer behaves (`virtual` only).
    pub simulation: Option<SimulationConfig>,
    /// Pause, resume and cancel scripts.
    pub host_scripts: HostScriptsConfig,
    /// Current connection state.
    pub state: ConnectionState,
    /// Why the last connection failed or ended, if it did.
    pub error: Option<String>,
    /// Last temperature report.
    pub temperatures: Option<TemperatureSnapshot>,
    /// The queue job being printed, if any.
    pub job: Option<JobSummary>,
    /// The print that ended last on this printer, from the queue's history (so a reloaded page
    /// or a restarted server still shows it).
    pub last_job: Option<LastJob>,
}

/// A print that ended, as the API shows it: the printer's latest ended print run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastJob {
    /// Queue job id.
    pub id: i64,
    /// File name.
    pub file: String,
    /// How it ended: `completed`, `failed`, `cancelled` or `interrupted`.
    pub result: &'static str,
    /// Why it failed or was interrupted.
    pub failure: Option<String>,
    /// When it started, milliseconds since the Unix epoch.
    pub started_at: i64,
    /// When it ended, milliseconds since the Unix epoch.
    pub ended_at: i64,
}

impl LastJob {
    /// The history filter selecting `printer`'s latest ended print run.
    pub fn filter(printer: &str) -> HistoryFilter {
        HistoryFilter {
            printer: Some(printer.to_owned()),
            kind: Some(RunKind::Print),
            ended: true,
            limit: 1,
            ..HistoryFilter::default()
        }
    }

    /// The run as the API shows it; `None` for a run that has not ended.
    pub fn of(run: &RunRecord) -> Option<LastJob> {
        Some(LastJob {
            id: run.job.0,
            file: run.file_name.clone(),
            result: run.result?.as_str(),
            failure: run.failure.clone(),
            started_at: run.started_at.0,
            ended_at: run.ended_at?.0,
        })
    }
}

/// The running print as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// Queue job id.
    pub id: i64,
    /// The job's file, as the queue and history name it (`cube.stl` for a sliced model).
    pub file: String,
    /// The G-code being streamed, its path in the owner's files (`cube.gcode`).
    pub gcode: String,
    /// Percent of the file acknowledged.
    pub completion: f64,
    /// Last acknowledged line and byte offset.
    pub position: JobPosition,
    /// Seconds since the print started.
    pub print_time: f64,
    /// Estimated seconds left.
    pub print_time_left: f64,
    /// What the estimate rests on: `analysis`, or `mixed-analysis` once the observed pace is
    /// blended in (OctoPrint's names).
    pub print_time_left_origin: &'static str,
    /// Paused by a person.
    pub paused: bool,
}

impl JobSummary {
    /// Summarises an active job.
    pub fn of(job: &ActiveJob) -> JobSummary {
        let (print_time_left, origin) = job.time_left();
        JobSummary {
            id: job.job_id.0,
            file: job.file_name.clone(),
            gcode: job.gcode_path.clone(),
            completion: job.completion_percent(),
            position: job.position,
            print_time: job.started.elapsed().as_secs_f64(),
            print_time_left,
            print_time_left_origin: origin.as_str(),
            paused: job.paused,
        }
    }
}

/// An open connection: the marlin handle, the simulator behind it (if virtual) and the
/// monitor tasks' stop token.
struct Link {
    printer: Arc<Printer>,
    simulator: Option<VirtualPrinter>,
    stop: CancellationToken,
}

/// One configured printer and its connection, if any.
pub struct PrinterHandle {
    /// Its configuration.
    pub config: PrinterConfig,
    link: Mutex<Option<Link>>,
    /// Serialises connect and disconnect.
    connecting: tokio::sync::Mutex<()>,
    error: Mutex<Option<String>>,
    temperatures: Mutex<Option<TemperatureSnapshot>>,
    /// The print being streamed.
    pub active: Mutex<Option<ActiveJob>>,
    /// The print that ended last (see [`PrinterSlot::last_job`]).
    last_job: Mutex<Option<LastJob>>,
    /// The file OctoPrint clients selected (`/api/files/local/<f>` `select`), by file id.
    pub selected: Mutex<Option<String>>,
    /// Woken when the printer may take a job (connected, job finished, queue changed).
    pub wake: Notify,
    /// Cancelled when the printer is removed or replaced: its job runner stops.
    pub retired: CancellationToken,
    /// Held while a job is claimed and started, so two starts never race.
    pub starting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PrinterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrinterHandle")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PrinterHandle {
    /// A closed printer with this configuration.
    pub fn new(config: PrinterConfig) -> PrinterHandle {
        PrinterHandle {
            config,
            link: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            error: Mutex::new(None),
            temperatures: Mutex::new(None),
            active: Mutex::new(None),
            last_job: Mutex::new(None),
            selected: Mutex::new(None),
            wake: Notify::new(),
            retired: CancellationToken::new(),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    /// The stable id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The connected marlin handle, if any.
    pub fn printer(&self) -> Option<Arc<Printer>> {
        lock(&self.link).as_ref().map(|l| l.printer.clone())
    }

    /// The connected marlin handle, or 409 "Printer is not operational".
    pub fn operational(&self) -> Result<Arc<Printer>, ApiError> {
        match self.printer() {
            Some(p) if ConnectionState::from_status(&p.status().borrow()).is_operational() => Ok(p),
            _ => Err(ApiError::PrinterNotOperational),
        }
    }

    /// Current state.
    pub fn state(&self) -> ConnectionState {
        match self.printer() {
            Some(p) => ConnectionState::from_status(&p.status().borrow()),
            None if lock(&self.error).is_some() => ConnectionState::Error,
            None => ConnectionState::Closed,
        }
    }

    /// Last temperatures.
    pub fn temperatures(&self) -> Option<TemperatureSnapshot> {
        *lock(&self.temperatures)
    }

    /// A copy of the active job.
    pub fn active_job(&self) -> Option<ActiveJob> {
        lock(&self.active).clone()
    }

    /// Sets the print that ended last, as read back from the queue's history.
    pub fn set_last_job(&self, last: Option<LastJob>) {
        *lock(&self.last_job) = last;
    }

    /// Snapshot for the API.
    pub fn slot(&self) -> PrinterSlot {
        let state = self.state();
        PrinterSlot {
            id: self.config.id.clone(),
            name: self
                .config
                .name
                .clone()
                .unwrap_or_else(|| self.config.id.clone()),
            port: self.config.port.clone(),
            baudrate: self.config.baudrate,
            autoconnect: self.config.autoconnect,
            simulation: (self.config.port == "virtual").then(|| self.config.simulation.clone()),
            host_scripts: self.config.host_scripts.clone(),
            state,
            error: match state {
                ConnectionState::Error => self.printer().map_or_else(
                    || lock(&self.error).clone(),
                    |p| match &p.status().borrow().state {
                        PrinterState::Failed(text) => Some(text.clone()),
                        _ => None,
                    },
                ),
                _ => None,
            },
            temperatures: self.temperatures(),
            job: lock(&self.active).as_ref().map(JobSummary::of),
            last_job: lock(&self.last_job).clone(),
        }
    }

    /// Opens the port (starting the simulator for `virtual`) and completes the handshake.
    /// Connecting an operational printer does nothing.
    pub async fn connect(self: &Arc<Self>, state: &crate::AppState) -> Result<(), ApiError> {
        let _guard = self.connecting.lock().await;
        if self.state().is_operational() {
            return Ok(());
        }
        self.take_link().await;
        let config = self.config.clone();
        // Checked when the configuration was loaded or the printer was changed.
        let host_scripts = config.host_scripts.to_marlin().map_err(|(field, reason)| {
            let text = format!("invalid host_scripts.{field}: {reason}");
            self.fail(text.clone());
            ApiError::conflict("connect_failed", text)
        })?;
        let (spec, simulator) = if config.port == "virtual" {
            let sim = spawn_simulator(&config.simulation).map_err(|e| {
                self.fail(format!("cannot start the simulated printer: {e}"));
                ApiError::conflict("connect_failed", format!("simulator: {e}"))
            })?;
            let path = sim.path().display().to_string();
            (
                PortSpec::Serial {
                    path,
                    baud: config.baudrate,
                },
                Some(sim),
            )
        } else {
            (
                PortSpec::Serial {
                    path: config.port.clone(),
                    baud: config.baudrate,
                },
                None,
            )
        };
        let marlin = MarlinConfig {
            host_scripts,
            ..MarlinConfig::default()
        };
        let printer = match Printer::connect(&spec, marlin).await {
            Ok(p) => Arc::new(p),
            Err(e) => {
                let text = format!("cannot connect to {}: {e}", config.port);
                self.fail(text.clone());
                close_link(None, simulator).await;
                return Err(ApiError::conflict("connect_failed", text));
            }
        };
        *lock(&self.error) = None;
        let stop = CancellationToken::new();
        monitor::spawn(state.clone(), self.clone(), printer.clone(), stop.clone());
        *lock(&self.link) = Some(Link {
            printer,
            simulator,
            stop,
        });
        self.wake.notify_one();
        Ok(())
    }

    /// Closes the connection (the print, if any, stops where it is).
    pub async fn disconnect(&self) {
        let _guard = self.connecting.lock().await;
        self.take_link().await;
        *lock(&self.error) = None;
    }

    async fn take_link(&self) {
        let link = lock(&self.link).take();
        if let Some(link) = link {
            link.stop.cancel();
            close_link(Some(link.printer), link.simulator).await;
        }
    }

    fn fail(&self, text: String) {
        tracing::warn!(printer = %self.config.id, "{text}");
        *lock(&self.error) = Some(text);
    }

    fn set_temperatures(&self, t: TemperatureSnapshot) {
        *lock(&self.temperatures) = Some(t);
    }

    /// Sends one validated command and waits for its acknowledgement.
    pub async fn send(&self, command: &commands::Command) -> Result<Vec<String>, ApiError> {
        let printer = self.operational()?;
        printer
            .send(command.as_str())
            .await
            .map_err(|e| ApiError::conflict("command_failed", e.to_string()))
    }
}

/// Closes the port and waits for the I/O thread to let go of it, so a reconnect (or a restarted
/// server) can open it again at once; then drops the [`VirtualPrinter`], whose drop joins its
/// thread, off the async runtime. The printer goes first, so it never sees its port vanish.
async fn close_link(printer: Option<Arc<Printer>>, simulator: Option<VirtualPrinter>) {
    if let Some(printer) = printer {
        printer.close().await;
    }
    let _ = tokio::task::spawn_blocking(move || drop(simulator)).await;
}

fn spawn_simulator(sim: &SimulationConfig) -> std::io::Result<VirtualPrinter> {
    let mut config = SimConfig::default();
    if sim.instant_moves {
        config.moves = MoveTiming::Instant;
        config.command_time = Duration::ZERO;
    }
    config.heating_rate = sim.heating_rate.max(0.1);
    config.homing_time = Duration::from_secs_f64(sim.homing_secs.clamp(0.0, 60.0));
    let link = LinkConfig {
        baud: sim.link_baud.max(1200),
        latency: if sim.instant_moves {
            Duration::ZERO
        } else {
            LinkConfig::default().latency
        },
    };
    VirtualPrinter::spawn(config, link)
}
