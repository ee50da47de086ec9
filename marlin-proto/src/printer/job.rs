//! The job being streamed and what happens around it: pause, resume, cancel and their
//! scripts, firmware-initiated pauses. Sans-IO like the session: it acts on a [`Session`],
//! takes the session's events and `now`, and reports [`JobEvent`]s.
//!
//! ```text
//!          pause                      all earlier lines        M114           parking
//!  Printing ────▶ Draining(pause) ──▶ acknowledged or back ──▶ Locating ──▶ Parking ──▶ Paused
//!     ▲  │ cancel        (queue cleared)                       (M400, M114)  answered  done │
//!     │  └────▶ Draining(cancel) ──▶ Locating ──▶ cancel script ──▶ Idle (or the next job)  │
//!     └──────────────────────────── resume: the return script, then the job ───────────────┘
//! ```
//!
//! A resume before `M114` answered drops the pause (nothing moved yet); a resume while
//! parking queues the return right behind the parking moves. A cancel while parked skips
//! retract, lift and park.
//!
//! Pausing takes back the lines still queued in the session (not yet written) through
//! [`Session::clear_queue`]: each comes back as [`Event::Abandoned`] while the session is
//! healthy; job lines are sent again first on resume, script lines at once, and no new line
//! goes out before every line handed over earlier is acknowledged or back, so every job line
//! runs exactly once, in order. `M400` + `M114` then wait for the planner and report the
//! position; the machine state the acknowledged job lines left behind (the `easyprint-gcode`
//! [`MachineState`]) gives the modes, the feed rate and the exact coordinates (`M114`
//! prints two decimals; when the two disagree by more than the rounding, `M114` wins).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use easyprint_gcode::machine_state::MachineState;
use easyprint_gcode::{LineParser, Mode, RawLine};

use super::scripts::{HostScripts, PausePoint};
use crate::response::{BusyReason, FirmwareLine, HostAction, Position};
use crate::session::{CommandId, Event, Session};

/// Lines kept queued in the session ahead of its flow-control window.
const LOOKAHEAD: usize = 16;
/// Half the last digit `M114` prints: within this, the stream's own coordinate is the exact one.
const M114_ROUNDING: f64 = 0.0051;

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

/// Where the job stands with respect to pausing and cancelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JobPhase {
    /// No job, nothing under way.
    #[default]
    Idle,
    /// Lines flow.
    Printing,
    /// Waiting for the lines in flight and the position (`M400`, `M114`).
    Pausing,
    /// The pause script (retract, lift, park) is on its way.
    Parking,
    /// Parked by the host's pause script.
    Paused {
        /// The hotend was turned off after the idle timeout.
        cooled: bool,
    },
    /// The firmware paused by itself (`//action:paused`, `M600`): no script ran.
    PausedByFirmware,
    /// The cancel script is on its way (a new job waits for it).
    Cancelling,
}

/// What the job controller reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobEvent {
    /// A job line was acknowledged.
    Progress(JobProgress),
    /// Every job line was acknowledged.
    Finished(JobProgress),
    /// The job was cancelled.
    Cancelled(JobProgress),
    /// The pause script finished (parked), or the firmware paused (`point` is `None`).
    Paused(Option<PausePoint>),
    /// The hotend was turned off while paused.
    HotendOff,
    /// Resuming: the return script (if any) and then the job's lines are on their way.
    Resumed,
    /// The firmware waits for the user (`M0`, `M600`): answer with `M108` or `M876`
    /// ([`EmergencyCommand`](crate::EmergencyCommand)).
    WaitingForUser,
    /// A script line could not be sent (a user template rendered to an invalid line).
    ScriptLineRefused {
        /// The line.
        line: String,
        /// Why.
        reason: String,
    },
}

struct Job {
    lines: Box<dyn Iterator<Item = String> + Send>,
    exhausted: bool,
    /// Job lines handed to the session and not acknowledged yet.
    outstanding: HashMap<CommandId, String>,
    /// Lines taken back from the session's queue on pause; sent first on resume.
    reclaimed: VecDeque<String>,
    /// Where the next line coming back goes in `reclaimed`: lines taken back by the latest
    /// clear come before those left over from an earlier one.
    reclaim_at: usize,
    progress: JobProgress,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Purpose {
    Pause,
    Cancel { parked: Option<PausePoint> },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Printing,
    /// The session's queue was cleared: waiting until every line handed to it before is
    /// acknowledged or back (script lines go out again), then `M400` + `M114`.
    Draining {
        purpose: Purpose,
    },
    Locating {
        m114: CommandId,
        purpose: Purpose,
    },
    Parking {
        last: Option<CommandId>,
        point: PausePoint,
    },
    Paused {
        since: Instant,
        cooled: bool,
        /// `None`: the firmware paused by itself.
        point: Option<PausePoint>,
    },
}

/// Streams a job through a [`Session`] and runs the host's pause, resume and cancel scripts.
/// The [`Printer`](super::Printer)'s I/O thread drives one; tests drive one in virtual time.
pub struct JobControl {
    scripts: HostScripts,
    job: Option<Job>,
    phase: Phase,
    /// What the acknowledged job lines (and scripts) left the machine in.
    machine: MachineState,
    parser: LineParser,
    /// Script commands handed to the session and not acknowledged yet.
    own: HashMap<CommandId, String>,
    /// The lines handed to the session before its queue was last cleared that are neither
    /// acknowledged nor back yet (no new job line goes out meanwhile).
    unsettled: HashSet<CommandId>,
    /// `busy: paused for user` was heard since the last acknowledgement.
    waiting_for_user: bool,
    events: VecDeque<JobEvent>,
}

impl std::fmt::Debug for JobControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobControl")
            .field("phase", &self.phase)
            .field("job", &self.job.as_ref().map(|j| j.progress))
            .finish_non_exhaustive()
    }
}

impl JobControl {
    /// A controller with no job.
    pub fn new(scripts: HostScripts) -> Self {
        Self {
            scripts,
            job: None,
            phase: Phase::Idle,
            machine: MachineState::new(),
            parser: LineParser::new(Mode::Lenient),
            own: HashMap::new(),
            unsettled: HashSet::new(),
            waiting_for_user: false,
            events: VecDeque::new(),
        }
    }

    /// Replaces the scripts (used from the next pause or cancel on).
    pub fn set_scripts(&mut self, scripts: HostScripts) {
        self.scripts = scripts;
    }

    /// The scripts in force.
    pub fn scripts(&self) -> &HostScripts {
        &self.scripts
    }

    /// Whether a job is running (printing, pausing or paused).
    pub fn has_job(&self) -> bool {
        self.job.is_some()
    }

    /// The job's progress, if one runs.
    pub fn progress(&self) -> Option<JobProgress> {
        self.job.as_ref().map(|j| j.progress)
    }

    /// Where the job stands.
    pub fn phase(&self) -> JobPhase {
        match self.phase {
            Phase::Idle => JobPhase::Idle,
            Phase::Printing => JobPhase::Printing,
            Phase::Locating {
                purpose: Purpose::Cancel { .. },
                ..
            }
            | Phase::Draining {
                purpose: Purpose::Cancel { .. },
            } => JobPhase::Cancelling,
            Phase::Locating { .. } | Phase::Draining { .. } => JobPhase::Pausing,
            Phase::Parking { .. } => JobPhase::Parking,
            Phase::Paused { point: None, .. } => JobPhase::PausedByFirmware,
            Phase::Paused { cooled, .. } => JobPhase::Paused { cooled },
        }
    }

    /// Whether the firmware said it waits for the user (`busy: paused for user`) since the
    /// last acknowledgement.
    pub fn waiting_for_user(&self) -> bool {
        self.waiting_for_user
    }

    /// The machine state the acknowledged lines left behind.
    pub fn machine(&self) -> &MachineState {
        &self.machine
    }

    /// Starts streaming `lines`; refused (`false`) while a job runs. While a cancel script
    /// is still on its way, the job starts after it.
    pub fn start(
        &mut self,
        lines: Box<dyn Iterator<Item = String> + Send>,
        total: Option<u64>,
    ) -> bool {
        if self.job.is_some() {
            return false;
        }
        self.job = Some(Job {
            lines,
            exhausted: false,
            outstanding: HashMap::new(),
            reclaimed: VecDeque::new(),
            reclaim_at: 0,
            progress: JobProgress {
                total,
                ..JobProgress::default()
            },
        });
        if self.phase == Phase::Idle {
            self.phase = Phase::Printing;
        }
        true
    }

    /// Pauses: stops feeding, waits for the lines in flight (`M400`), asks where the head is
    /// (`M114`), then retracts, lifts and parks. Nothing happens without a printing job.
    pub fn pause(&mut self, session: &mut Session) {
        if self.phase != Phase::Printing || self.job.is_none() {
            return;
        }
        self.take_back_queue(session);
        self.drain_then(session, Purpose::Pause);
    }

    /// Resumes: reheats if the hotend was turned off, returns to the exact position, primes,
    /// restores modes and feed rate, then the job continues where it stopped. A resume before
    /// the position came back drops the pause (nothing moved: the job simply goes on); a
    /// resume while parking returns right after the parking moves.
    pub fn resume(&mut self, session: &mut Session) {
        let (point, cooled) = match self.phase {
            Phase::Draining {
                purpose: Purpose::Pause,
            }
            | Phase::Locating {
                purpose: Purpose::Pause,
                ..
            } => (None, false),
            Phase::Parking { point, .. } => (Some(point), false),
            Phase::Paused { cooled, point, .. } => (point, cooled),
            _ => return,
        };
        if let Some(point) = point {
            let lines = self.scripts.pause.resume_lines(&point, cooled);
            self.send_script(session, lines);
        }
        self.phase = Phase::Printing;
        self.events.push_back(JobEvent::Resumed);
    }

    /// Cancels the job: lines not yet written are dropped (lines in flight complete), then
    /// retract, lift and park (unless parked already), heaters and fan off, motors off.
    pub fn cancel(&mut self, session: &mut Session) {
        let Some(job) = self.job.take() else { return };
        self.events.push_back(JobEvent::Cancelled(job.progress));
        // Its lines still in flight must be acknowledged (or come back) before the script.
        let parked = match self.phase {
            Phase::Paused { point, .. } => point,
            _ => None,
        };
        self.unsettled.extend(job.outstanding.into_keys());
        self.take_back_queue(session);
        self.drain_then(session, Purpose::Cancel { parked });
    }

    /// Keeps the session's queue topped up with job lines.
    pub fn top_up(&mut self, session: &mut Session) {
        if self.phase != Phase::Printing {
            return;
        }
        // After the queue was cleared, nothing new goes out until every line handed to the
        // session before is acknowledged or back: it would overtake the lines coming back.
        if !self.unsettled.is_empty() {
            return;
        }
        let Some(job) = &mut self.job else { return };
        while session.queued_len() < LOOKAHEAD {
            let line = match job.reclaimed.pop_front() {
                Some(line) => line,
                None if job.exhausted => break,
                None => match job.lines.next() {
                    Some(line) => line,
                    None => {
                        job.exhausted = true;
                        break;
                    }
                },
            };
            match session.send(&line) {
                Ok(Some(id)) => {
                    job.outstanding.insert(id, line);
                    job.progress.sent += 1;
                }
                Ok(None) => {}
                // The session failed (its fatal event ends the job) or the line is invalid:
                // stop here rather than skip it.
                Err(_) => {
                    job.exhausted = true;
                    break;
                }
            }
        }
        self.check_finished();
    }

    /// Acts on a session event. Returns whether it concerned the controller's own commands
    /// (job lines, scripts), which the caller then need not look up.
    pub fn handle_event(&mut self, now: Instant, event: &Event, session: &mut Session) -> bool {
        match event {
            Event::Completed { id, response, .. } => {
                self.waiting_for_user = false;
                let settled = self.unsettled.remove(id);
                let mine = self.on_completed(now, *id, response, session);
                if settled {
                    self.settle(session);
                }
                mine || settled
            }
            Event::Abandoned(id) => {
                let healthy = session.fatal().is_none();
                let settled = self.unsettled.remove(id);
                let mut mine = settled;
                if let Some(line) = self.own.remove(id) {
                    mine = true;
                    if healthy {
                        // A script line taken back with the queue goes out again, in order.
                        self.resend_own(session, *id, &line);
                    }
                } else if let Some(job) = &mut self.job {
                    if let Some(line) = job.outstanding.remove(id) {
                        mine = true;
                        if healthy {
                            // Taken back from the queue, in queue order.
                            job.reclaimed.insert(job.reclaim_at, line);
                            job.reclaim_at += 1;
                            job.progress.sent -= 1;
                        }
                    }
                }
                if settled {
                    self.settle(session);
                }
                mine
            }
            Event::Action(action) => {
                match action {
                    HostAction::Pause => self.pause(session),
                    HostAction::Resume => self.resume(session),
                    HostAction::Cancel => self.cancel(session),
                    HostAction::Paused if self.phase == Phase::Printing && self.job.is_some() => {
                        self.take_back_queue(session);
                        self.phase = Phase::Paused {
                            since: now,
                            cooled: false,
                            point: None,
                        };
                        self.events.push_back(JobEvent::Paused(None));
                    }
                    HostAction::Resumed => {
                        if let Phase::Paused { point: None, .. } = self.phase {
                            self.phase = Phase::Printing;
                            self.events.push_back(JobEvent::Resumed);
                        }
                    }
                    _ => {}
                }
                false
            }
            Event::Busy(BusyReason::PausedForUser | BusyReason::PausedForInput) => {
                if !self.waiting_for_user {
                    self.waiting_for_user = true;
                    self.events.push_back(JobEvent::WaitingForUser);
                }
                false
            }
            Event::Fatal(_) => {
                self.job = None;
                self.own.clear();
                self.unsettled.clear();
                self.phase = Phase::Idle;
                false
            }
            _ => false,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run (the hotend-off timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.phase, self.scripts.pause.hotend_off_after) {
            (
                Phase::Paused {
                    since,
                    cooled: false,
                    point: Some(p),
                },
                Some(after),
            ) if p.hotend_target.is_some_and(|t| t > 0.0) => Some(since + after),
            _ => None,
        }
    }

    /// Turns the hotend off once the pause lasted long enough.
    pub fn handle_timeout(&mut self, now: Instant, session: &mut Session) {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            if let Phase::Paused { cooled, .. } = &mut self.phase {
                *cooled = true;
            }
            let lines = self.scripts.pause.cool_lines();
            self.send_script(session, lines);
            self.events.push_back(JobEvent::HotendOff);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<JobEvent> {
        self.events.pop_front()
    }

    /// Clears the session's queue; its lines come back as [`Event::Abandoned`]: job lines
    /// to be sent first on resume, script lines to go out again at once.
    fn take_back_queue(&mut self, session: &mut Session) {
        self.unsettled.extend(self.own.keys().copied());
        session.clear_queue();
        if let Some(job) = &mut self.job {
            self.unsettled.extend(job.outstanding.keys().copied());
            job.reclaim_at = 0;
        }
    }

    /// Waits for the lines handed to the session before its queue was cleared, then
    /// locates the head for `purpose`.
    fn drain_then(&mut self, session: &mut Session, purpose: Purpose) {
        self.phase = Phase::Draining { purpose };
        self.settle(session);
    }

    /// In [`Phase::Draining`], once nothing is unsettled: `M400` + `M114`, or straight to
    /// the cancel script when the head is parked already.
    fn settle(&mut self, session: &mut Session) {
        let Phase::Draining { purpose } = self.phase else {
            return;
        };
        if !self.unsettled.is_empty() {
            return;
        }
        match purpose {
            Purpose::Cancel {
                parked: Some(point),
            } => {
                let lines = self
                    .scripts
                    .cancel
                    .cancel_lines(&self.scripts.pause, &point, true);
                self.send_script(session, lines);
                self.phase = self.after_cancel();
            }
            _ => self.locate(session, purpose),
        }
    }

    fn after_cancel(&self) -> Phase {
        if self.job.is_some() {
            Phase::Printing
        } else {
            Phase::Idle
        }
    }

    /// Sends a script line again (taken back with the queue), keeping the phase's hold on it.
    fn resend_own(&mut self, session: &mut Session, old: CommandId, line: &str) {
        let Some(new) = self.send_own(session, line) else {
            return;
        };
        match &mut self.phase {
            Phase::Locating { m114, .. } if *m114 == old => *m114 = new,
            Phase::Parking {
                last: Some(last), ..
            } if *last == old => *last = new,
            _ => {}
        }
    }

    fn locate(&mut self, session: &mut Session, purpose: Purpose) {
        let _ = self.send_own(session, "M400");
        match self.send_own(session, "M114") {
            Some(m114) => self.phase = Phase::Locating { m114, purpose },
            // The session failed: its fatal event ends everything.
            None => self.phase = Phase::Idle,
        }
    }

    fn send_own(&mut self, session: &mut Session, line: &str) -> Option<CommandId> {
        match session.send(line) {
            Ok(Some(id)) => {
                self.own.insert(id, line.to_owned());
                Some(id)
            }
            Ok(None) => None,
            Err(e) => {
                self.events.push_back(JobEvent::ScriptLineRefused {
                    line: line.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    /// Sends script lines; returns the last one's id.
    fn send_script(&mut self, session: &mut Session, lines: Vec<String>) -> Option<CommandId> {
        let mut last = None;
        for line in lines {
            if let Some(id) = self.send_own(session, &line) {
                last = Some(id);
            }
        }
        last
    }

    fn on_completed(
        &mut self,
        now: Instant,
        id: CommandId,
        response: &[String],
        session: &mut Session,
    ) -> bool {
        if let Some(job) = &mut self.job {
            if let Some(line) = job.outstanding.remove(&id) {
                job.progress.acknowledged += 1;
                let progress = job.progress;
                self.apply(&line);
                self.events.push_back(JobEvent::Progress(progress));
                self.check_finished();
                return true;
            }
        }
        if self.own.remove(&id).is_none() {
            return false;
        }
        match self.phase {
            Phase::Locating { m114, purpose } if m114 == id => {
                let reported =
                    response
                        .iter()
                        .find_map(|l| match FirmwareLine::parse(l.as_bytes()) {
                            FirmwareLine::Position(p) => Some(p),
                            _ => None,
                        });
                let point = self.pause_point(reported);
                match purpose {
                    Purpose::Pause => {
                        let lines = self.scripts.pause.pause_lines(&point);
                        let last = self.send_script(session, lines);
                        self.phase = Phase::Parking { last, point };
                        if last.is_none() {
                            self.parked(now);
                        }
                    }
                    Purpose::Cancel { parked } => {
                        let lines = self.scripts.cancel.cancel_lines(
                            &self.scripts.pause,
                            &parked.unwrap_or(point),
                            parked.is_some(),
                        );
                        self.send_script(session, lines);
                        self.phase = self.after_cancel();
                    }
                }
            }
            Phase::Parking {
                last: Some(last), ..
            } if last == id => self.parked(now),
            _ => {}
        }
        true
    }

    fn parked(&mut self, now: Instant) {
        let Phase::Parking { point, .. } = self.phase else {
            return;
        };
        self.phase = Phase::Paused {
            since: now,
            cooled: false,
            point: Some(point),
        };
        self.events.push_back(JobEvent::Paused(Some(point)));
    }

    /// The stream's state, with each coordinate checked against `M114`'s report.
    fn pause_point(&self, reported: Option<Position>) -> PausePoint {
        let m = &self.machine;
        let mut position = m.position();
        if let Some(p) = reported {
            let firmware = [Some(p.x), Some(p.y), Some(p.z), p.e];
            for (ours, theirs) in position.iter_mut().zip(firmware) {
                if let Some(theirs) = theirs.filter(|t| (*t - *ours).abs() > M114_ROUNDING) {
                    *ours = theirs;
                }
            }
        }
        PausePoint {
            position,
            absolute_positioning: m.absolute_positioning(),
            absolute_extrusion: m.absolute_extrusion(),
            inches: m.inches(),
            feedrate: m.feedrate_mm_min(),
            hotend_target: m.hotend_target(m.tool()),
        }
    }

    fn apply(&mut self, line: &str) {
        let raw = RawLine::Line {
            bytes: line.as_bytes(),
            number: 0,
            offset: 0,
        };
        if let Ok(parsed) = self.parser.parse(raw) {
            self.machine.apply(&parsed);
        }
    }

    fn check_finished(&mut self) {
        let done = self
            .job
            .as_ref()
            .is_some_and(|j| j.exhausted && j.outstanding.is_empty() && j.reclaimed.is_empty());
        if done && self.phase == Phase::Printing {
            let job = self.job.take().expect("checked");
            self.phase = Phase::Idle;
            self.events.push_back(JobEvent::Finished(job.progress));
        }
    }
}
