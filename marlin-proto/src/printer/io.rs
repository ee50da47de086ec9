//! The I/O thread: owns the link, the [`Session`], the [`JobControl`] and an upload; sleeps
//! in `epoll` until the port is readable, a request arrives, or a deadline passes.
// This is the driver: it is where the clock is read.
#![allow(clippy::disallowed_methods)]

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll};
use tokio::sync::{broadcast, oneshot, watch};

use super::sd::Upload;
use super::sd_host::SdHost;
use super::{
    CommandError, JobControl, JobEvent, JobPhase, JobProgress, PrinterConfig, PrinterEvent,
    PrinterState, Request, SdProgress, Status, PORT,
};
use crate::session::{CommandId, Event, SendError, Session};
use crate::transport::{self, Link};

/// A caller's command waiting for its acknowledgement (the text is kept to send it again if a
/// pause or an upload takes it back from the session's queue).
struct Waiter {
    text: String,
    reply: oneshot::Sender<Result<Vec<String>, CommandError>>,
}

pub(super) struct IoThread {
    link: Box<dyn Link>,
    poll: Poll,
    session: Session,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<PrinterEvent>,
    status: watch::Sender<Status>,
    waiting: HashMap<CommandId, Waiter>,
    control: JobControl,
    upload: Option<Upload>,
    sd: SdHost,
    /// Callers' commands held back while an upload runs (they would be written to the file).
    held: VecDeque<Waiter>,
    last_progress: Instant,
    bytes_written: u64,
}

impl IoThread {
    pub(super) fn new(
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
            control: JobControl::new(config.host_scripts),
            upload: None,
            sd: SdHost::new(config.sd),
            held: VecDeque::new(),
            last_progress: Instant::now(),
            bytes_written: 0,
        }
    }

    pub(super) fn run(mut self) {
        let priority = transport::raise_io_thread_priority();
        self.status.send_modify(|s| s.io_priority = priority);
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::with_capacity(4096);
        let mut ready = mio::Events::with_capacity(4);
        // Until when the port is left unwatched (see `Session::read_deferral`).
        let mut deferring: Option<Instant> = None;
        let mut may_defer = true;
        // Whether the poller reports the port's bytes (off while deferring).
        let mut watching = true;
        let mut now = Instant::now();
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
            self.drain_events();
            self.control.top_up(&mut self.session);
            if let Some(upload) = &mut self.upload {
                upload.top_up(&mut self.session);
            }
            self.drain_events();
            out.clear();
            if self.session.poll_transmit(now, &mut out) > 0 {
                if let Err(e) = self.link.write_all(&out) {
                    self.fail_io(&e.to_string());
                    return;
                }
                self.bytes_written += out.len() as u64;
            }
            self.drain_events();
            if deferring.is_none() {
                // While the firmware holds plenty of work, leave the port unwatched for a few
                // milliseconds: its `ok`s then wake this thread once per burst, not once each.
                // The interest changes only when watching does: one burst after another costs
                // no `epoll_ctl` at all.
                deferring = may_defer.then(|| self.session.read_deferral(now)).flatten();
                if watching == deferring.is_some() {
                    watching = !watching;
                    if let Err(e) = self.watch_port(watching) {
                        self.fail_io(&format!("poll: {e}"));
                        return;
                    }
                }
            }
            // Sleep until the port is readable (unless deferring), a request wakes us, or the
            // next deadline (the session's, the pause timer's or the deferral's); with none of
            // those, indefinitely.
            let wait = [
                self.session.poll_timeout(),
                self.control.poll_timeout(),
                self.sd.poll_timeout(),
                deferring,
            ]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut ready, wait) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.fail_io(&format!("poll: {e}"));
                    return;
                }
            }
            // One clock read per wake-up serves what follows (it costs a syscall's worth on
            // some virtual machines).
            now = Instant::now();
            // At the end of a deferral, whatever came meanwhile is read now.
            let deferral_over = deferring.is_some_and(|t| t <= now);
            if deferral_over || ready.iter().any(|e| e.token() == PORT) {
                // A burst that gathered nothing is not tried again before the next bytes come
                // (the timer's wake-up was wasted).
                may_defer = false;
                // Edge-triggered: read until the port has nothing more. A read that did not
                // fill the buffer took everything there was (bytes that come later raise a
                // new edge, or are reported when the port is watched again): no trailing
                // read just to hear `EAGAIN`.
                loop {
                    match self.link.read_timeout(&mut buf, Duration::ZERO) {
                        Ok(0) => break,
                        Ok(n) => {
                            may_defer = true;
                            self.session.handle_rx(now, &buf[..n]);
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) => {
                            self.fail_io(&e.to_string());
                            return;
                        }
                    }
                }
            }
            if deferral_over {
                // The port stays unwatched until the next pass decides: another burst, or
                // watching again (whose `epoll_ctl` reports bytes that came since this read).
                deferring = None;
            }
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
            if self.control.poll_timeout().is_some_and(|t| t <= now) {
                self.control.handle_timeout(now, &mut self.session);
            }
            if self.upload.is_none() {
                self.sd.handle_timeout(now, &mut self.session);
            }
        }
    }

    /// Watches the port for bytes to read (`true`) or stops (`false`). Stopping watches for
    /// priority data instead, which serial ports never signal: one `epoll_ctl(MOD)` each way,
    /// cheaper than taking the port out of the poller and putting it back.
    fn watch_port(&mut self, on: bool) -> std::io::Result<()> {
        let fd = self.link.as_raw_fd();
        let interest = if on {
            Interest::READABLE
        } else {
            Interest::PRIORITY
        };
        self.poll
            .registry()
            .reregister(&mut SourceFd(&fd), PORT, interest)
    }

    fn fail_io(&mut self, why: &str) {
        let text = format!("port error: {why}");
        self.status
            .send_modify(|s| s.state = PrinterState::Failed(text.clone()));
        for (_, w) in self.waiting.drain() {
            let _ = w.reply.send(Err(CommandError::Closed));
        }
    }

    /// Whether callers' commands wait: during an upload they would be written to the file,
    /// and a cancel script goes before anything sent after the cancel.
    fn holding(&self) -> bool {
        self.upload.is_some() || self.control.phase() == JobPhase::Cancelling
    }

    /// Queues a caller's command (held back while [`holding`](Self::holding)).
    fn send_for(&mut self, waiter: Waiter) {
        if self.holding() {
            self.held.push_back(waiter);
            return;
        }
        match self.session.send(&waiter.text) {
            Ok(Some(id)) => {
                self.waiting.insert(id, waiter);
            }
            Ok(None) => {
                let _ = waiter.reply.send(Ok(Vec::new()));
            }
            Err(e) => {
                let _ = waiter.reply.send(Err(e.into()));
            }
        }
    }

    fn handle_request(&mut self, r: Request) {
        match r {
            Request::Send(text, reply) => self.send_for(Waiter { text, reply }),
            Request::Stream(lines, total, reply) => {
                if let Some(f) = self.session.fatal() {
                    let _ = reply.send(Err(SendError::Failed(f.clone()).into()));
                    return;
                }
                if self.upload.is_some() || !self.control.start(lines, total) {
                    let _ = reply.send(Err(CommandError::Busy));
                    return;
                }
                self.session.set_paused(false);
                self.publish_phase();
                let _ = reply.send(Ok(()));
            }
            Request::Pause(true) => {
                self.control.pause(&mut self.session);
                self.publish_phase();
            }
            Request::Pause(false) => {
                self.control.resume(&mut self.session);
                self.publish_phase();
            }
            Request::Cancel => self.control.cancel(&mut self.session),
            Request::Scripts(scripts) => self.control.set_scripts(*scripts),
            Request::Upload(name, lines, total, reply) => {
                if self.upload.is_some() || self.control.has_job() {
                    let _ = reply.send(Err(CommandError::Busy.into()));
                    return;
                }
                // Commands still queued would land in the file: take them back until the
                // upload is over.
                self.session.clear_queue();
                self.sd.stop_polling();
                self.upload = Upload::start(&mut self.session, name, lines, total, reply);
            }
            Request::SdList(reply) if self.upload.is_some() => {
                let _ = reply.send(Err(CommandError::Busy.into()));
            }
            Request::SdList(reply) => self.sd.list(&mut self.session, reply),
            Request::SdPoll => self.sd.start_polling(Instant::now()),
            Request::Emergency(cmd) => {
                let _ = self.session.send_emergency(Instant::now(), cmd);
            }
            Request::EmergencyStop => self.session.emergency_stop(),
            Request::Close => {}
        }
    }

    /// Hands every pending session event to the job controller, the upload and the callers,
    /// then publishes what changed.
    fn drain_events(&mut self) {
        // One clock read per batch: the events came from one read or one transmit (a clock
        // read costs a syscall's worth on some virtual machines).
        let mut now = None;
        while let Some(ev) = self.session.poll_event() {
            let now = *now.get_or_insert_with(Instant::now);
            // Every part sees every event (a fatal one ends each of them).
            let sd_handled = self.sd.handle_event(&ev);
            let mut handled = self.control.handle_event(now, &ev, &mut self.session) || sd_handled;
            if !handled {
                if let Some(upload) = &mut self.upload {
                    handled = upload.handle_event(&ev, &mut self.session);
                    if upload.is_done() {
                        self.upload = None;
                        self.status.send_modify(|s| s.upload = None);
                    }
                }
            }
            match &ev {
                Event::Completed { id, line, response } => {
                    self.status.send_if_modified(|s| {
                        s.current_line = Some(*line);
                        false
                    });
                    if !handled {
                        if let Some(w) = self.waiting.remove(id) {
                            let _ = w.reply.send(Ok(response.clone()));
                        }
                    }
                }
                Event::Abandoned(id) => {
                    if let Some(w) = self.waiting.remove(id) {
                        if self.session.fatal().is_some() {
                            let _ = w.reply.send(Err(CommandError::Abandoned));
                        } else {
                            // Taken back from the queue (a pause or an upload): send again.
                            self.send_for(w);
                        }
                    }
                }
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
                Event::Temperatures(t) => {
                    let t = t.clone();
                    self.status.send_modify(|s| s.temperatures = Some(t));
                }
                Event::Position(p) => {
                    let p = *p;
                    self.status.send_modify(|s| s.position = Some(p));
                }
                Event::Sd(crate::SdStatus::FileOpened { size, .. }) => {
                    let total = *size;
                    self.status.send_modify(|s| {
                        s.sd = Some(SdProgress {
                            done: 0,
                            total,
                            printing: false,
                            finished: false,
                        })
                    });
                }
                Event::Sd(crate::SdStatus::Printing { done, total }) => {
                    let (done, total) = (*done, *total);
                    self.status.send_modify(|s| {
                        s.sd = Some(SdProgress {
                            done,
                            total,
                            printing: true,
                            finished: false,
                        })
                    });
                }
                Event::Sd(crate::SdStatus::DonePrinting) => {
                    self.status.send_modify(|s| {
                        let sd = s.sd.get_or_insert(SdProgress {
                            done: 0,
                            total: 0,
                            printing: false,
                            finished: false,
                        });
                        sd.printing = false;
                        sd.finished = true;
                        sd.done = sd.total;
                    });
                }
                Event::Fatal(f) => {
                    let f = f.clone();
                    self.status.send_modify(|s| {
                        s.state = PrinterState::Failed(f.to_string());
                        s.fatal = Some(f);
                    });
                }
                _ => {}
            }
            // A job's or an upload's own lines are reported through their progress (at most
            // every 250 ms), not one event each: every event wakes each subscriber.
            if !(handled && matches!(ev, Event::Completed { .. })) {
                let _ = self.events.send(PrinterEvent::Session(ev));
            }
        }
        self.drain_job_events();
        if !self.held.is_empty() && !self.holding() {
            for w in std::mem::take(&mut self.held) {
                self.send_for(w);
            }
        }
    }

    fn drain_job_events(&mut self) {
        // Only the latest progress counts (one clock read per batch, not per line).
        let mut progress = None;
        while let Some(ev) = self.control.poll_event() {
            let event = match ev {
                JobEvent::Progress(p) => {
                    progress = Some(p);
                    continue;
                }
                JobEvent::Finished(p) => {
                    self.publish_end(p);
                    PrinterEvent::JobFinished(p)
                }
                JobEvent::Cancelled(p) => {
                    self.publish_end(p);
                    PrinterEvent::JobCancelled(p)
                }
                other => PrinterEvent::Job(other),
            };
            if let Some(p) = progress.take() {
                self.job_progress(p);
            }
            let _ = self.events.send(event);
        }
        if let Some(p) = progress {
            self.job_progress(p);
        }
        if let Some(upload) = &self.upload {
            let p = upload.progress();
            if self.last_progress.elapsed() >= Duration::from_millis(250) {
                self.last_progress = Instant::now();
                let _ = self.events.send(PrinterEvent::Upload(p));
                self.status.send_modify(|s| s.upload = Some(p));
            }
        }
        self.publish_phase();
    }

    /// Publishes the job's phase and the printer state that follows from it.
    fn publish_phase(&mut self) {
        let phase = self.control.phase();
        let has_job = self.control.has_job();
        let waiting = self.control.waiting_for_user();
        self.status.send_if_modified(|s| {
            let state = match (&s.state, has_job, phase) {
                (PrinterState::Ready | PrinterState::Printing | PrinterState::Paused, true, p) => {
                    // A job started during a cancel script waits only for that script.
                    if matches!(p, JobPhase::Printing | JobPhase::Cancelling) {
                        PrinterState::Printing
                    } else {
                        PrinterState::Paused
                    }
                }
                (PrinterState::Printing | PrinterState::Paused, false, _) => PrinterState::Ready,
                (other, _, _) => other.clone(),
            };
            let changed = s.state != state || s.job_phase != phase || s.waiting_for_user != waiting;
            s.state = state;
            s.job_phase = phase;
            s.waiting_for_user = waiting;
            changed
        });
    }

    fn publish_end(&mut self, progress: JobProgress) {
        let bytes = self.bytes_written;
        let cpu = transport::thread_cpu_time();
        self.status.send_modify(|s| {
            s.job = Some(progress);
            s.bytes_written = bytes;
            s.io_cpu = cpu.unwrap_or_default();
        });
    }

    fn job_progress(&mut self, progress: JobProgress) {
        self.status.send_if_modified(|s| {
            s.job = Some(progress);
            false
        });
        if self.last_progress.elapsed() >= Duration::from_millis(250) {
            let bytes = self.bytes_written;
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
