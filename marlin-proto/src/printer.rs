//! The tokio-facing [`Printer`] handle over a [`Session`] driven by a dedicated I/O thread.
//!
//! ```text
//!  async callers ── Request (std mpsc) + wake ──▶ I/O thread: Link ⇄ Session ──▶ watch<Status>
//!                                                 (raised priority)          ─▶ broadcast<PrinterEvent>
//! ```
//!
//! The I/O thread owns the session and the job being streamed, so a busy tokio runtime or a
//! loaded CPU cannot delay an `ok` → next-line turnaround. It sleeps in `epoll` (through `mio`)
//! until the port is readable, a request arrives (the handle wakes it with a `mio::Waker`), or
//! the session's next deadline ([`Session::poll_timeout`]) passes: an idle printer costs no
//! wake-ups at all.
// This is the driver: it is where the clock is read.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token, Waker};

use tokio::sync::{broadcast, oneshot, watch};

use crate::response::{Position, Temperatures};
use crate::session::{
    CommandId, EmergencyCommand, Event, FatalError, Firmware, SendError, Session, SessionConfig,
    TemperatureReporting,
};
use crate::transport::{self, Link, PortSpec, PriorityOutcome, TransportError};

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

/// Progress of the job being streamed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Lines handed to the session.
    pub sent: u64,
    /// Lines the firmware acknowledged.
    pub acknowledged: u64,
    /// Total lines, when known up front.
    pub total: Option<u64>,
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
}

/// Events published through a `broadcast` channel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PrinterEvent {
    /// A protocol event from the session (temperatures, busy, host actions, warnings, …).
    Session(Event),
    /// Job progress (at most every 250 ms, and at the end).
    Progress(JobProgress),
    /// The job's last line was acknowledged.
    JobFinished(JobProgress),
    /// The job was cancelled; queued lines were dropped.
    JobCancelled(JobProgress),
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
}

impl Default for PrinterConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig {
                temperature_interval: Some(Duration::from_secs(2)),
                ..SessionConfig::default()
            },
        }
    }
}

/// A connected printer. Cheap to share behind an `Arc`; every method takes `&self`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use easyprint_marlin::printer::{Printer, PrinterConfig};
/// use easyprint_marlin::transport::PortSpec;
///
/// let spec = PortSpec::Serial { path: "/dev/ttyUSB0".into(), baud: 115_200 };
/// let printer = Printer::connect(&spec, PrinterConfig::default()).await?;
/// let reply = printer.send("M105").await?;
/// println!("{reply:?}");
/// printer.stream(vec!["G28".to_string(), "G1 X10 F3000".to_string()], None).await?;
/// let mut status = printer.status();
/// while status.borrow().state == easyprint_marlin::printer::PrinterState::Printing {
///     status.changed().await?;
/// }
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
        });
        let (exited_tx, exited) = watch::channel(false);
        let ev = events.clone();
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

    /// Pauses the job: no new lines are sent (lines in flight still complete).
    pub fn pause(&self) -> Result<(), CommandError> {
        self.request(Request::Pause(true))
    }

    /// Resumes a paused job.
    pub fn resume(&self) -> Result<(), CommandError> {
        self.request(Request::Pause(false))
    }

    /// Cancels the job: queued lines are dropped; lines in flight still complete.
    pub fn cancel(&self) -> Result<(), CommandError> {
        self.request(Request::Cancel)
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

struct RunningJob {
    lines: Job,
    progress: JobProgress,
    ids_done: bool,
}

struct IoThread {
    link: Box<dyn Link>,
    poll: Poll,
    session: Session,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<PrinterEvent>,
    status: watch::Sender<Status>,
    waiting: HashMap<CommandId, oneshot::Sender<Result<Vec<String>, CommandError>>>,
    job: Option<RunningJob>,
    job_ids: std::collections::HashSet<CommandId>,
    paused: bool,
    last_progress: Instant,
    bytes_written: u64,
}

impl IoThread {
    fn new(
        link: Box<dyn Link>,
        poll: Poll,
        config: PrinterConfig,
        requests: mpsc::Receiver<Request>,
        events: broadcast::Sender<PrinterEvent>,
        status: watch::Sender<Status>,
    ) -> Self {
        Self {
            link,
            poll,
            session: Session::new(config.session, Instant::now()),
            requests,
            events,
            status,
            waiting: HashMap::new(),
            job: None,
            job_ids: Default::default(),
            paused: false,
            last_progress: Instant::now(),
            bytes_written: 0,
        }
    }

    fn run(mut self) {
        let priority = transport::raise_io_thread_priority();
        self.status.send_modify(|s| s.io_priority = priority);
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::with_capacity(4096);
        let mut ready = mio::Events::with_capacity(4);
        loop {
            // Requests first: they are cheap and may queue lines to send.
            loop {
                match self.requests.try_recv() {
                    Ok(Request::Close) | Err(mpsc::TryRecvError::Disconnected) => {
                        self.status.send_modify(|s| s.state = PrinterState::Closed);
                        return;
                    }
                    Ok(r) => self.handle_request(r),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            self.top_up_job();
            let now = Instant::now();
            out.clear();
            if self.session.poll_transmit(now, &mut out) > 0 {
                if let Err(e) = self.link.write_all(&out) {
                    self.fail_io(&e.to_string());
                    return;
                }
                self.bytes_written += out.len() as u64;
            }
            self.drain_events();
            // Sleep until the port is readable, a request wakes us, or the session's next
            // deadline; with none of those, indefinitely.
            let wait = self
                .session
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut ready, wait) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.fail_io(&format!("poll: {e}"));
                    return;
                }
            }
            if ready.iter().any(|e| e.token() == PORT) {
                // Edge-triggered: read until the port has nothing more.
                loop {
                    match self.link.read_timeout(&mut buf, Duration::ZERO) {
                        Ok(0) => break,
                        Ok(n) => self.session.handle_rx(Instant::now(), &buf[..n]),
                        Err(e) => {
                            self.fail_io(&e.to_string());
                            return;
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
        }
    }

    fn fail_io(&mut self, why: &str) {
        let text = format!("port error: {why}");
        self.status
            .send_modify(|s| s.state = PrinterState::Failed(text.clone()));
        for (_, w) in self.waiting.drain() {
            let _ = w.send(Err(CommandError::Closed));
        }
    }

    fn handle_request(&mut self, r: Request) {
        match r {
            Request::Send(text, reply) => match self.session.send(&text) {
                Ok(Some(id)) => {
                    self.waiting.insert(id, reply);
                }
                Ok(None) => {
                    let _ = reply.send(Ok(Vec::new()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Request::Stream(lines, total, reply) => {
                if self.job.is_some() {
                    let _ = reply.send(Err(CommandError::Busy));
                    return;
                }
                if let Some(f) = self.session.fatal() {
                    let _ = reply.send(Err(SendError::Failed(f.clone()).into()));
                    return;
                }
                self.job = Some(RunningJob {
                    lines,
                    progress: JobProgress {
                        total,
                        ..JobProgress::default()
                    },
                    ids_done: false,
                });
                self.paused = false;
                self.session.set_paused(false);
                self.set_state(PrinterState::Printing);
                let _ = reply.send(Ok(()));
            }
            Request::Pause(p) => {
                self.paused = p;
                self.session.set_paused(p);
                if self.job.is_some() {
                    self.set_state(if p {
                        PrinterState::Paused
                    } else {
                        PrinterState::Printing
                    });
                }
            }
            Request::Cancel => {
                if let Some(job) = self.job.take() {
                    self.session.clear_queue();
                    self.job_ids.clear();
                    let _ = self.events.send(PrinterEvent::JobCancelled(job.progress));
                    self.session.set_paused(false);
                    self.set_state(PrinterState::Ready);
                }
            }
            Request::Emergency(cmd) => {
                let _ = self.session.send_emergency(Instant::now(), cmd);
            }
            Request::EmergencyStop => self.session.emergency_stop(),
            Request::Close => {}
        }
    }

    /// Keeps a few job lines queued in the session ahead of its flow-control window.
    fn top_up_job(&mut self) {
        let Some(job) = &mut self.job else { return };
        if self.paused {
            return;
        }
        while self.session.queued_len() < 16 && !job.ids_done {
            let Some(line) = job.lines.next() else {
                job.ids_done = true;
                if self.job_ids.is_empty() {
                    self.finish_job();
                }
                return;
            };
            match self.session.send(&line) {
                Ok(Some(id)) => {
                    self.job_ids.insert(id);
                    job.progress.sent += 1;
                }
                Ok(None) => {}
                Err(_) => {
                    job.ids_done = true;
                    break;
                }
            }
        }
    }

    fn set_state(&mut self, state: PrinterState) {
        self.status.send_modify(|s| s.state = state);
    }

    fn drain_events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match &ev {
                Event::Connected {
                    firmware,
                    temperatures,
                    ..
                } => {
                    let (fw, reporting) = (firmware.clone(), *temperatures);
                    self.status.send_modify(|s| {
                        s.state = PrinterState::Ready;
                        s.firmware = Some(fw);
                        s.temperature_reporting = reporting;
                    });
                }
                Event::Completed { id, line, response } => {
                    self.status.send_if_modified(|s| {
                        s.current_line = Some(*line);
                        false
                    });
                    if self.job_ids.remove(id) {
                        self.job_line_done();
                        continue;
                    }
                    if let Some(w) = self.waiting.remove(id) {
                        let _ = w.send(Ok(response.clone()));
                    }
                }
                Event::Abandoned(id) => {
                    self.job_ids.remove(id);
                    if let Some(w) = self.waiting.remove(id) {
                        let _ = w.send(Err(CommandError::Abandoned));
                    }
                }
                Event::Temperatures(t) => {
                    let t = t.clone();
                    self.status.send_modify(|s| s.temperatures = Some(t));
                }
                Event::Position(p) => {
                    let p = *p;
                    self.status.send_modify(|s| s.position = Some(p));
                }
                Event::Fatal(f) => {
                    let f = f.clone();
                    self.job = None;
                    self.status.send_modify(|s| {
                        s.state = PrinterState::Failed(f.to_string());
                        s.fatal = Some(f);
                    });
                }
                _ => {}
            }
            let _ = self.events.send(PrinterEvent::Session(ev));
        }
    }

    fn finish_job(&mut self) {
        let Some(job) = self.job.take() else { return };
        let (progress, bytes) = (job.progress, self.bytes_written);
        let cpu = transport::thread_cpu_time();
        let _ = self.events.send(PrinterEvent::JobFinished(progress));
        self.status.send_modify(|s| {
            s.job = Some(progress);
            s.state = PrinterState::Ready;
            s.bytes_written = bytes;
            s.io_cpu = cpu.unwrap_or_default();
        });
    }

    fn job_line_done(&mut self) {
        let Some(job) = &mut self.job else { return };
        job.progress.acknowledged += 1;
        let progress = job.progress;
        let bytes = self.bytes_written;
        // Every job line sent was acknowledged and the iterator is exhausted (the session may
        // still hold its own commands, such as a temperature poll: they are not the job's).
        let finished = job.ids_done && self.job_ids.is_empty();
        self.status.send_if_modified(|s| {
            s.job = Some(progress);
            false
        });
        if finished {
            self.finish_job();
        } else if self.last_progress.elapsed() >= Duration::from_millis(250) {
            let cpu = transport::thread_cpu_time();
            self.last_progress = Instant::now();
            let _ = self.events.send(PrinterEvent::Progress(progress));
            self.status.send_modify(|s| {
                s.job = Some(progress);
                s.bytes_written = bytes;
                s.io_cpu = cpu.unwrap_or_default();
            });
        }
    }
}
