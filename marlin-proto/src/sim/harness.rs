//! A session and a simulated printer joined by two simulated links, in virtual time.

use std::time::{Duration, Instant};

use super::audit::{WireAudit, WireViolation};
use super::link::{Link, LinkConfig};
use super::printer::SimPrinter;
use super::SimConfig;
use crate::session::{Event, FatalError, Session, SessionConfig};

/// What happened during [`Harness::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Job commands acknowledged.
    pub completed: u64,
    /// Job commands given to the session (comment-only lines excluded).
    pub submitted: u64,
    /// Virtual time from start to end.
    pub elapsed: Duration,
    /// The session's fatal error, if it failed.
    pub fatal: Option<FatalError>,
    /// Whether the run hit its time limit before finishing.
    pub timed_out: bool,
    /// Bytes the host wrote.
    pub host_bytes: u64,
    /// Host-to-printer wire time divided by elapsed time.
    pub link_utilisation: f64,
    /// Resend requests the session acted on.
    pub resends: u64,
    /// Warnings the session reported.
    pub warnings: u64,
}

/// A deterministic pair: [`Session`] ⇄ [`Link`]s ⇄ [`SimPrinter`], driven in virtual time
/// (like quinn-proto's test `Pair`). Nothing sleeps: time jumps to the next deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// use easyprint_marlin::sim::{Harness, LinkConfig, SimConfig};
/// use easyprint_marlin::SessionConfig;
///
/// let mut h = Harness::new(SessionConfig::default(), SimConfig::default(),
///                          LinkConfig::default(), Instant::now());
/// let job = (0..100).map(|i| format!("G1 X{} F6000", i % 10));
/// let report = h.run(job, Duration::from_secs(600));
/// assert_eq!(report.completed, 100);
/// assert!(report.fatal.is_none());
/// assert_eq!(h.printer().ledger().iter().filter(|e| e.command.starts_with("G1")).count(), 100);
/// ```
#[derive(Debug)]
pub struct Harness {
    session: Session,
    printer: SimPrinter,
    to_printer: Link,
    to_host: Link,
    now: Instant,
    start: Instant,
    buf: Vec<u8>,
    /// Events drained from the session, kept when recording is on.
    events: Vec<Event>,
    record_events: bool,
    /// Most commands kept queued in the session ahead of the window.
    lookahead: usize,
    /// Checks every numbered line the session writes, when on.
    audit: Option<WireAudit>,
    /// What the audit found.
    violations: Vec<WireViolation>,
}

impl Harness {
    /// A pair that has not connected yet (the first [`run`](Self::run) connects).
    pub fn new(session: SessionConfig, printer: SimConfig, link: LinkConfig, now: Instant) -> Self {
        Self {
            session: Session::new(session, now),
            to_host: Link::new(link).with_usb_batching(printer.usb_batching),
            printer: SimPrinter::new(printer),
            to_printer: Link::new(link),
            now,
            start: now,
            buf: Vec::new(),
            events: Vec::new(),
            record_events: false,
            lookahead: 8,
            audit: None,
            violations: Vec::new(),
        }
    }

    /// Keeps every session event for [`events`](Self::events) (off by default).
    pub fn record_events(&mut self, on: bool) {
        self.record_events = on;
    }

    /// Audits the wire from now on (off by default): every numbered line the session writes
    /// must be the next one or a copy the firmware asked for ([`WireAudit`]); breaches are
    /// kept for [`wire_violations`](Self::wire_violations).
    pub fn audit_wire(&mut self) {
        self.audit.get_or_insert_with(WireAudit::default);
    }

    /// The wire audit, if [`audit_wire`](Self::audit_wire) turned it on.
    pub fn wire_audit(&self) -> Option<&WireAudit> {
        self.audit.as_ref()
    }

    /// Rules of the resend protocol the session broke while audited.
    pub fn wire_violations(&self) -> &[WireViolation] {
        &self.violations
    }

    /// Recorded events.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The host session.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The host session, read-only (for checks inside `&self` closures).
    pub fn session_ref(&self) -> &Session {
        &self.session
    }

    /// The simulated printer.
    pub fn printer(&self) -> &SimPrinter {
        &self.printer
    }

    /// Virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Streams `job` until every command is acknowledged and the printer is idle, the session
    /// fails, or `limit` of virtual time passes.
    pub fn run<I>(&mut self, job: I, limit: Duration) -> RunReport
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut job = job.into_iter().peekable();
        let deadline = self.now + limit;
        let run_start = self.now;
        let bytes_before = self.to_printer.bytes();
        let mut report = RunReport {
            completed: 0,
            submitted: 0,
            elapsed: Duration::ZERO,
            fatal: None,
            timed_out: false,
            host_bytes: 0,
            link_utilisation: 0.0,
            resends: 0,
            warnings: 0,
        };
        loop {
            // Keep a few commands queued ahead of the flow-control window.
            while self.session.queued_len() < self.lookahead {
                let Some(text) = job.next() else { break };
                match self.session.send(text.as_ref()) {
                    Ok(Some(_)) => report.submitted += 1,
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
            self.transmit();
            while let Some(ev) = self.session.poll_event() {
                match &ev {
                    Event::Completed { .. } => report.completed += 1,
                    Event::Resending { .. } => report.resends += 1,
                    Event::Warning(_) => report.warnings += 1,
                    _ => {}
                }
                if self.record_events {
                    self.events.push(ev);
                }
            }
            if let Some(f) = self.session.fatal() {
                report.fatal = Some(f.clone());
                break;
            }
            let done = job.peek().is_none() && self.is_settled();
            if done {
                break;
            }
            let Some(next) = self.next_deadline(None) else {
                // Nothing can ever happen again: a deadlock the session should have prevented.
                report.timed_out = true;
                break;
            };
            if next > deadline {
                report.timed_out = true;
                self.now = deadline;
                break;
            }
            self.advance_to(next);
        }
        report.elapsed = self.now - run_start;
        report.host_bytes = self.to_printer.bytes() - bytes_before;
        let wire = self.to_printer.config().byte_time() * report.host_bytes as u32;
        report.link_utilisation = if report.elapsed.is_zero() {
            0.0
        } else {
            wire.as_secs_f64() / report.elapsed.as_secs_f64()
        };
        let _ = self.start;
        report
    }

    /// Whether nothing is left to do: the session idle and ready, the printer idle, nothing
    /// on either link.
    pub fn is_settled(&self) -> bool {
        self.session.is_idle()
            && self.session.is_ready()
            && self.printer.is_idle()
            && self.to_printer.next_arrival().is_none()
            && self.to_host.next_arrival().is_none()
    }

    /// The first half of a step: what the session and the printer have to write goes onto
    /// the links. Session events stay queued for the caller ([`Session::poll_event`]).
    pub fn transmit(&mut self) {
        self.buf.clear();
        if self.session.poll_transmit(self.now, &mut self.buf) > 0 {
            self.to_printer.send(self.now, &self.buf);
            if let Some(audit) = &mut self.audit {
                if let Err(v) = audit.host_wrote(&self.buf) {
                    self.violations.push(v);
                }
            }
        }
        self.buf.clear();
        self.printer.poll_transmit(&mut self.buf);
        if !self.buf.is_empty() {
            self.to_host.send(self.now, &self.buf);
        }
    }

    /// When something happens next: the earliest of the session's and the printer's
    /// deadlines, the next arrival on either link, and `also` (a caller's own timer, such as
    /// a job controller's). `None`: nothing will ever happen unless the caller acts.
    pub fn next_deadline(&self, also: Option<Instant>) -> Option<Instant> {
        [
            self.session.poll_timeout(),
            self.printer.poll_timeout(),
            self.to_printer.next_arrival(),
            self.to_host.next_arrival(),
            also,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The second half of a step: virtual time jumps to `t` (never backwards), what arrived
    /// by then is delivered to each side, and due timeouts fire.
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.buf.clear();
        self.to_printer.deliver(self.now, &mut self.buf);
        if !self.buf.is_empty() {
            self.printer.handle_rx(self.now, &self.buf);
        }
        self.printer.handle_timeout(self.now);
        self.buf.clear();
        self.to_host.deliver(self.now, &mut self.buf);
        if !self.buf.is_empty() {
            if let Some(audit) = &mut self.audit {
                audit.firmware_said(&self.buf);
            }
            self.session.handle_rx(self.now, &self.buf);
        }
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
    }

    /// One whole step: [`transmit`](Self::transmit), then
    /// [`advance_to`](Self::advance_to) the [`next_deadline`](Self::next_deadline) (with
    /// `also`). Returns the new virtual time, or `None` (time unchanged) when nothing is
    /// pending. Session events are left for the caller to drain.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use easyprint_marlin::sim::{Harness, LinkConfig, SimConfig};
    /// use easyprint_marlin::SessionConfig;
    ///
    /// let mut h = Harness::new(SessionConfig::default(), SimConfig::default(),
    ///                          LinkConfig::default(), Instant::now());
    /// let limit = h.now() + Duration::from_secs(10);
    /// while !(h.session().is_ready() && h.is_settled()) {
    ///     assert!(h.step(None).is_some_and(|t| t < limit));
    /// }
    /// let id = h.session().send("M105").unwrap().unwrap();
    /// let mut response = None;
    /// while response.is_none() {
    ///     h.step(None);
    ///     while let Some(ev) = h.session().poll_event() {
    ///         if let easyprint_marlin::Event::Completed { id: done, response: r, .. } = ev {
    ///             if done == id { response = Some(r) }
    ///         }
    ///     }
    /// }
    /// assert!(response.unwrap()[0].starts_with("ok T:"));
    /// ```
    pub fn step(&mut self, also: Option<Instant>) -> Option<Instant> {
        self.transmit();
        let next = self.next_deadline(also)?;
        self.advance_to(next);
        Some(self.now)
    }

    /// The simulated printer, to change it between steps (its SD card, say).
    pub fn printer_mut(&mut self) -> &mut SimPrinter {
        &mut self.printer
    }
}
