//! The tokio-facing [`Printer`] handle over a [`Session`](crate::Session) driven by a dedicated I/O thread.
//!
//! ```text
//!  async callers ── Request (std mpsc) + wake ──▶ I/O thread: Link ⇄ Session ──▶ watch<Status>
//!                                                 (raised priority)          ─▶ broadcast<PrinterEvent>
//! ```
//!
//! The I/O thread owns the session and the job being streamed, so a busy tokio runtime or a
//! loaded CPU cannot delay an `ok` → next-line turnaround. It sleeps in `epoll` (through `mio`)
//! until the port is readable, a request arrives (the handle wakes it with a `mio::Waker`), or
//! the session's next deadline ([`Session::poll_timeout`](crate::Session::poll_timeout)) passes: an idle printer costs no
//! wake-ups at all.
//!
//! - [`JobControl`] (sans-IO): the job, pause/resume/cancel with the host's [`HostScripts`],
//!   firmware-initiated pauses.
//! - `sd`: SD card names and uploads; `sd_host`: `M27` polls and bounded `M20` listings.
//! - `io`: the I/O thread.

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token, Waker};

use tokio::sync::{broadcast, oneshot, watch};

use crate::response::{Position, Temperatures};
use crate::session::{
    EmergencyCommand, Event, FatalError, Firmware, SendError, SessionConfig, TemperatureReporting,
};
use crate::transport::{self, Link, PortSpec, PriorityOutcome, TransportError};

mod io;
mod job;
mod scripts;
mod sd;
mod sd_host;

use io::IoThread;
pub use job::{JobControl, JobEvent, JobPhase, JobProgress};
pub use scripts::{
    CancelScript, GcodeTemplate, HostScripts, PausePoint, PauseScript, TemplateError,
};
pub use sd::{
    sd_file_name, sd_name, SdEntry, SdError, SdProgress, UploadProgress, SD_LONG_NAME_MAX,
};
pub use sd_host::{SdListing, SdOptions};

/// What the printer is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrinterState {
    /// Handshake under way.
    Connecting,
    /// Connected and idle.
    Ready,
    /// Streaming a job.
    Printing,
    /// A job is paused (host side: no new lines are sent).
    Paused,
    /// The session failed; the text says why.
    Failed(String),
    /// The handle was closed.
    Closed,
}

/// A snapshot of the printer, published through a `watch` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// State.
    pub state: PrinterState,
    /// The last temperature report.
    pub temperatures: Option<Temperatures>,
    /// How temperature reports keep coming (autoreport, polled, or off).
    pub temperature_reporting: TemperatureReporting,
    /// The last position report.
    pub position: Option<Position>,
    /// The last line number acknowledged.
    pub current_line: Option<i64>,
    /// Job progress, while a job runs or after it ended.
    pub job: Option<JobProgress>,
    /// Firmware identity and capabilities, once connected.
    pub firmware: Option<Firmware>,
    /// Why the session failed, if it did.
    pub fatal: Option<FatalError>,
    /// What raising the I/O thread's priority achieved.
    pub io_priority: PriorityOutcome,
    /// CPU time the I/O thread has used (updated with job progress).
    pub io_cpu: Duration,
    /// Bytes written to the port.
    pub bytes_written: u64,
    /// Where the job stands with respect to pause and cancel scripts.
    pub job_phase: JobPhase,
    /// The firmware waits for the user (`busy: paused for user`, `M0`/`M600`).
    pub waiting_for_user: bool,
    /// The SD print's progress, from `M27` reports.
    pub sd: Option<SdProgress>,
    /// The SD upload under way.
    pub upload: Option<UploadProgress>,
}

/// Events published through a `broadcast` channel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PrinterEvent {
    /// A protocol event from the session (temperatures, busy, host actions, warnings, …).
    /// A job's and an upload's own lines are not reported one by one here (each event wakes
    /// every subscriber): their progress comes as [`PrinterEvent::Progress`] and
    /// [`PrinterEvent::Upload`].
    Session(Event),
    /// Job progress (at most every 250 ms, and at the end).
    Progress(JobProgress),
    /// The job's last line was acknowledged.
    JobFinished(JobProgress),
    /// The job was cancelled; queued lines were dropped.
    JobCancelled(JobProgress),
    /// Pause, resume, waiting for the user, script trouble (progress, end and cancel come
    /// as the variants above).
    Job(JobEvent),
    /// SD upload progress (at most every 250 ms).
    Upload(UploadProgress),
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The port could not be opened.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The handshake failed (silent port, wrong baud, …).
    #[error("printer did not complete the handshake: {0}")]
    Handshake(FatalError),
    /// Reading or writing the port failed during the handshake.
    #[error("{0}")]
    Port(String),
    /// The I/O thread stopped unexpectedly.
    #[error("the printer I/O thread stopped")]
    Stopped,
    /// The I/O thread's poller (epoll) or waker could not be set up.
    #[error("cannot set up the I/O thread's poller: {0}")]
    Poller(#[source] std::io::Error),
}

/// Why a command or job request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command was refused or the session failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The session failed before the command was acknowledged.
    #[error("the command was abandoned: the session failed")]
    Abandoned,
    /// A job is already streaming.
    #[error("a job is already running")]
    Busy,
    /// The handle is closed.
    #[error("the printer connection is closed")]
    Closed,
}

type Job = Box<dyn Iterator<Item = String> + Send>;

enum Request {
    Send(String, oneshot::Sender<Result<Vec<String>, CommandError>>),
    Stream(Job, Option<u64>, oneshot::Sender<Result<(), CommandError>>),
    Pause(bool),
    Cancel,
    Scripts(Box<HostScripts>),
    Upload(
        String,
        Job,
        Option<u64>,
        oneshot::Sender<Result<UploadProgress, SdError>>,
    ),
    SdList(oneshot::Sender<Result<SdListing, SdError>>),
    /// Poll `M27` (the firmware has no SD autoreport).
    SdPoll,
    Emergency(EmergencyCommand),
    EmergencyStop,
    Close,
}

/// Options for [`Printer::connect`].
#[derive(Debug, Clone)]
pub struct PrinterConfig {
    /// Protocol settings. The default differs from [`SessionConfig::default`] in one way:
    /// temperatures are kept coming every 2 s (`M155 S2` autoreports when the firmware has
    /// them, else polled `M105`), so [`Status::temperatures`] stays current.
    pub session: SessionConfig,
    /// The pause/resume/cancel scripts the job controller starts with
    /// ([`Printer::set_host_scripts`] replaces them later).
    pub host_scripts: HostScripts,
    /// SD progress interval and listing bound.
    pub sd: SdOptions,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig {
                temperature_interval: Some(Duration::from_secs(2)),
                ..SessionConfig::default()
            },
            host_scripts: HostScripts::default(),
            sd: SdOptions::default(),
        }
    }
}

/// A connected printer. Cheap to share behind an `Arc`; every method takes `&self`.
///
/// Here the printer is the simulated Marlin served on a real pseudo-terminal
/// ([`VirtualPrinter`](crate::sim::VirtualPrinter)); a real one is
/// `PortSpec::Serial { path: "/dev/ttyUSB0".into(), baud: 115_200 }`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use easyprint_marlin::printer::{Printer, PrinterConfig, PrinterEvent};
/// use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
/// use easyprint_marlin::transport::PortSpec;
///
/// let sim = SimConfig {
///     moves: MoveTiming::Instant,
///     homing_time: Duration::from_millis(20),
///     ..SimConfig::default()
/// };
/// let virtual_printer = VirtualPrinter::spawn(sim, LinkConfig::default())?;
/// let path = virtual_printer.path().to_string_lossy().into_owned();
/// let spec = PortSpec::Serial { path, baud: 115_200 };
/// let printer = Printer::connect(&spec, PrinterConfig::default()).await?;
///
/// let reply = printer.send("M105").await?;
/// assert!(reply[0].starts_with("ok T:"), "{reply:?}");
///
/// let mut events = printer.events();
/// let job = ["G28", "G1 X10 F3000", "G1 X20"].map(String::from);
/// printer.stream(job, Some(3)).await?;
/// loop {
///     if let PrinterEvent::JobFinished(progress) = events.recv().await? {
///         assert_eq!(progress.acknowledged, 3);
///         break;
///     }
/// }
/// printer.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Printer {
    requests: mpsc::Sender<Request>,
    waker: Arc<Waker>,
    events: broadcast::Sender<PrinterEvent>,
    status: watch::Receiver<Status>,
    /// Becomes true once the I/O thread has returned and the port is closed.
    exited: watch::Receiver<bool>,
    sd: SdOptions,
}

/// The poller token of the port.
const PORT: Token = Token(0);
/// The poller token of the handle's waker.
const WAKE: Token = Token(1);

impl Printer {
    /// Opens the port and completes the handshake.
    pub async fn connect(spec: &PortSpec, config: PrinterConfig) -> Result<Self, ConnectError> {
        let link = transport::open(spec)?;
        Self::connect_link(link, config).await
    }

    /// Completes the handshake over an already open link (TCP, in-memory, a pty …).
    pub async fn connect_link(
        link: Box<dyn Link>,
        config: PrinterConfig,
    ) -> Result<Self, ConnectError> {
        let poll = Poll::new().map_err(ConnectError::Poller)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(ConnectError::Poller)?);
        poll.registry()
            .register(&mut SourceFd(&link.as_raw_fd()), PORT, Interest::READABLE)
            .map_err(ConnectError::Poller)?;
        let (req_tx, req_rx) = mpsc::channel();
        let (events, _) = broadcast::channel(1024);
        let (status_tx, mut status) = watch::channel(Status {
            state: PrinterState::Connecting,
            temperatures: None,
            temperature_reporting: TemperatureReporting::Off,
            position: None,
            current_line: None,
            job: None,
            firmware: None,
            fatal: None,
            io_priority: PriorityOutcome::Unchanged,
            io_cpu: Duration::ZERO,
            bytes_written: 0,
            job_phase: JobPhase::Idle,
            waiting_for_user: false,
            sd: None,
            upload: None,
        });
        let (exited_tx, exited) = watch::channel(false);
        let ev = events.clone();
        let sd = config.sd;
        thread::Builder::new()
            .name("marlin-io".into())
            .spawn(move || {
                IoThread::new(link, poll, config, req_rx, ev, status_tx).run();
                // `run` consumed the thread's state: the port is closed now.
                exited_tx.send_replace(true);
            })
            .map_err(|_| ConnectError::Stopped)?;
        let printer = Self {
            requests: req_tx,
            waker,
            events,
            status: status.clone(),
            exited,
            sd,
        };
        loop {
            let state = status.borrow_and_update().state.clone();
            match state {
                PrinterState::Connecting => {}
                PrinterState::Failed(text) => {
                    return Err(match status.borrow().fatal.clone() {
                        Some(f) => ConnectError::Handshake(f),
                        None => ConnectError::Port(text),
                    });
                }
                PrinterState::Closed => return Err(ConnectError::Stopped),
                _ => return Ok(printer),
            }
            if status.changed().await.is_err() {
                return Err(ConnectError::Stopped);
            }
        }
    }

    /// Sends one command and waits for its acknowledgement; returns the lines the firmware
    /// wrote for it (see [`Event::Completed`]).
    pub async fn send(&self, command: &str) -> Result<Vec<String>, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.request(Request::Send(command.to_owned(), tx))?;
        rx.await.map_err(|_| CommandError::Closed)?
    }

    /// Starts streaming `lines` (comment and empty lines are skipped). Returns once the job is
    /// accepted; follow it through [`status`](Self::status) or [`events`](Self::events).
    pub async fn stream<I>(&self, lines: I, total: Option<u64>) -> Result<(), CommandError>
    where
        I: IntoIterator<Item = String>,
        I::IntoIter: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.request(Request::Stream(Box::new(lines.into_iter()), total, tx))?;
        rx.await.map_err(|_| CommandError::Closed)?
    }

    /// Pauses the job: no new job lines are sent (lines in flight complete); then the host's
    /// pause script runs (see [`HostScripts`]): `M400`, `M114`, retract, lift, park.
    /// [`Status::job_phase`] tells when the head is parked; so does [`JobEvent::Paused`].
    pub fn pause(&self) -> Result<(), CommandError> {
        self.request(Request::Pause(true))
    }

    /// Resumes a paused job: reheat if the hotend was turned off, return to the exact
    /// position, prime, restore modes and feed rate, then the job's next line.
    pub fn resume(&self) -> Result<(), CommandError> {
        self.request(Request::Pause(false))
    }

    /// Cancels the job: queued lines are dropped (lines in flight complete); then the cancel
    /// script runs: retract, lift, park (unless paused), heaters and fan off, motors off.
    /// A job streamed right after starts once the script is on its way.
    pub fn cancel(&self) -> Result<(), CommandError> {
        self.request(Request::Cancel)
    }

    /// Replaces the pause/resume/cancel scripts (defaults: [`HostScripts::default`]).
    pub fn set_host_scripts(&self, scripts: HostScripts) -> Result<(), CommandError> {
        self.request(Request::Scripts(Box::new(scripts)))
    }

    /// Checks `name` for this firmware ([`sd_file_name`]: long names need `Cap:LFN_WRITE`).
    fn sd_file_name(&self, name: &str) -> Result<String, SdError> {
        sd_file_name(name, self.has_capability("LFN_WRITE"))
    }

    fn has_capability(&self, name: &str) -> bool {
        self.status
            .borrow()
            .firmware
            .as_ref()
            .is_some_and(|f| f.has(name))
    }

    /// Uploads `lines` to the SD card as `name` (an 8.3 name, or a long one when the firmware
    /// reports `Cap:LFN_WRITE`; see [`sd_file_name`]): `M28`, the lines numbered
    /// with checksums (resends as usual), `M29`. The file holds each line as the session
    /// sends it (comments and surrounding spaces stripped) followed by `\r\n`. Nothing else
    /// is sent meanwhile (commands from [`send`](Self::send) wait). Progress:
    /// [`Status::upload`] and [`PrinterEvent::Upload`].
    pub async fn sd_upload<I>(
        &self,
        name: &str,
        lines: I,
        total: Option<u64>,
    ) -> Result<UploadProgress, SdError>
    where
        I: IntoIterator<Item = String>,
        I::IntoIter: Send + 'static,
    {
        let name = self.sd_file_name(name)?;
        let (tx, rx) = oneshot::channel();
        self.request(Request::Upload(
            name,
            Box::new(lines.into_iter()),
            total,
            tx,
        ))?;
        rx.await.map_err(|_| CommandError::Closed)?
    }

    /// Lists the SD card (`M20 L`), any number of files: the first
    /// [`SdOptions::list_max_entries`] are kept, the others counted
    /// ([`SdListing::truncated`]).
    pub async fn sd_list(&self) -> Result<SdListing, SdError> {
        let (tx, rx) = oneshot::channel();
        self.request(Request::SdList(tx))?;
        rx.await.map_err(|_| CommandError::Closed)?
    }

    /// Selects `name` (`M23`) and starts printing it from the SD card (`M24`). Progress comes
    /// every [`SdOptions::status_interval`] in [`Status::sd`] and as
    /// [`Event::Sd`] events: the firmware autoreports (`M27 S<secs>`) when it has
    /// `AUTOREPORT_SD_STATUS`, else the host polls `M27` until the print is done.
    pub async fn sd_print(&self, name: &str) -> Result<(), SdError> {
        let name = self.sd_file_name(name)?;
        if matches!(
            self.status.borrow().state,
            PrinterState::Printing | PrinterState::Paused
        ) {
            return Err(CommandError::Busy.into());
        }
        let command = format!("M23 {name}");
        let response = self.send(&command).await?;
        if sd::answered(&response, |s| {
            matches!(s, crate::SdStatus::OpenFailed { .. })
        }) {
            return Err(SdError::OpenFailed { name });
        }
        if !sd::answered(&response, |s| *s == crate::SdStatus::FileSelected) {
            return Err(SdError::UnexpectedAnswer {
                command,
                answer: response,
            });
        }
        let autoreport = self.has_capability("AUTOREPORT_SD_STATUS");
        if autoreport {
            let secs = self.sd.status_interval.as_secs().max(1);
            self.send(&format!("M27 S{secs}")).await?;
        }
        self.send("M24").await?;
        if !autoreport {
            self.request(Request::SdPoll)?;
        }
        Ok(())
    }

    /// Pauses the SD print (`M25`).
    pub async fn sd_pause(&self) -> Result<(), SdError> {
        self.send("M25").await?;
        Ok(())
    }

    /// Resumes the SD print (`M24`).
    pub async fn sd_resume(&self) -> Result<(), SdError> {
        self.send("M24").await?;
        Ok(())
    }

    /// Aborts the SD print (`M524`).
    pub async fn sd_cancel(&self) -> Result<(), SdError> {
        self.send("M524").await?;
        Ok(())
    }

    /// Asks for the SD print's progress (`M27`); `None` when not SD printing.
    pub async fn sd_status(&self) -> Result<Option<SdProgress>, SdError> {
        let response = self.send("M27").await?;
        Ok(response
            .iter()
            .find_map(|l| match crate::FirmwareLine::parse(l.as_bytes()) {
                crate::FirmwareLine::Sd(crate::SdStatus::Printing { done, total }) => {
                    Some(SdProgress {
                        done,
                        total,
                        printing: true,
                        finished: false,
                    })
                }
                _ => None,
            }))
    }

    /// Deletes `name` from the SD card (`M30`).
    pub async fn sd_delete(&self, name: &str) -> Result<(), SdError> {
        let name = self.sd_file_name(name)?;
        let response = self.send(&format!("M30 {name}")).await?;
        if response.iter().any(|l| l.starts_with("File deleted")) {
            Ok(())
        } else {
            Err(SdError::DeleteFailed { name })
        }
    }

    /// `M108`/`M410`/`M876`, out of band when the firmware has an emergency parser.
    pub fn emergency(&self, command: EmergencyCommand) -> Result<(), CommandError> {
        self.request(Request::Emergency(command))
    }

    /// `M112` at once; the session fails with [`FatalError::EmergencyStop`].
    pub fn emergency_stop(&self) -> Result<(), CommandError> {
        self.request(Request::EmergencyStop)
    }

    /// A watch of the printer's status.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// A new subscription to printer events.
    pub fn events(&self) -> broadcast::Receiver<PrinterEvent> {
        self.events.subscribe()
    }

    /// Closes the connection and waits until the I/O thread has closed the port (a job still
    /// streaming stops where it is). Dropping the handle closes it too, without waiting.
    pub async fn close(&self) {
        let _ = self.request(Request::Close);
        let mut exited = self.exited.clone();
        // An error means the thread is gone (and its sender with it): closed as well.
        let _ = exited.wait_for(|done| *done).await;
    }

    fn request(&self, r: Request) -> Result<(), CommandError> {
        self.requests.send(r).map_err(|_| CommandError::Closed)?;
        self.waker.wake().map_err(|_| CommandError::Closed)
    }
}

impl Drop for Printer {
    /// Asks the I/O thread to close the port and returns at once: dropping never blocks the
    /// caller (an async runtime, a UI thread). Use [`Printer::close`] to wait for the port to
    /// be closed (before reopening it, say).
    fn drop(&mut self) {
        let _ = self.request(Request::Close);
    }
}

#[cfg(test)]
mod tests;
