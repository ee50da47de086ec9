//! Taking acknowledgements in bursts: while the firmware holds plenty of queued work, the
//! driver may leave its answers unread for a short, bounded time, then answer every `ok` of
//! the burst with one write. Each `ok` read at once costs the host a wake-up (most of its CPU
//! at high line rates); read in bursts, a few `ok`s share one.

use super::*;

/// Completions per sample of the acknowledgement interval.
const ACK_SAMPLE: u32 = 8;

/// A deferral shorter than this saves nothing worth the timer.
const MIN_DEFERRAL: Duration = Duration::from_micros(250);

/// How fast the firmware works through its queue, measured from acknowledgements while lines
/// stream back to back.
#[derive(Debug, Default)]
pub(super) struct AckPace {
    /// When the current sample started.
    since: Option<Instant>,
    count: u32,
    /// Time per acknowledged command: the smaller of the last two samples, so a speed-up
    /// (short moves after long ones) counts at once and a slow-down only when confirmed.
    interval: Option<Duration>,
    last_sample: Option<Duration>,
}

impl AckPace {
    fn on_ack(&mut self, now: Instant) {
        let Some(since) = self.since else {
            self.since = Some(now);
            self.count = 0;
            return;
        };
        self.count += 1;
        if self.count == ACK_SAMPLE {
            let sample = now.saturating_duration_since(since) / ACK_SAMPLE;
            self.interval = Some(self.last_sample.map_or(sample, |l| l.min(sample)));
            self.last_sample = Some(sample);
            self.since = Some(now);
            self.count = 0;
        }
    }
}

impl Session {
    /// Until when the driver may leave bytes from the firmware unread (`None`: read them as
    /// they come). Only while a credit window is full with more lines queued, the planner at
    /// least three quarters full (as ADVANCED_OK's `P` tells: without it, never), no resend is
    /// under way, the acknowledgement rate is known and a burst would gather at least one and
    /// a half `ok`s on average: then the deferral is at most
    /// [`SessionConfig::ack_batching`], the time the firmware needs for the commands in
    /// flight (so it has their successors before its queue runs dry) and a quarter of the
    /// time it needs for all the work it holds, planner included (so the printer never runs
    /// dry waiting for the host).
    ///
    /// Deterministic: depends only on what the session received and when (`now`). The driver
    /// stops watching the port until the deadline (requests still wake it), then reads
    /// everything that came meanwhile and feeds it in one [`handle_rx`](Self::handle_rx).
    pub fn read_deferral(&self, now: Instant) -> Option<Instant> {
        let max = self.config.ack_batching;
        if max.is_zero()
            || self.phase != Phase::Ready
            || self.paused
            || self.queue.is_empty()
            || self.resend_cursor.is_some()
            || self.recovering.is_some()
            || self.awaiting_resend_ok.is_some()
        {
            return None;
        }
        let ActivePolicy::Credit { slots, .. } = self.policy() else {
            return None;
        };
        // The window must be well filled: the firmware's command queue is (or is about to be)
        // full, so the lines it holds keep it busy while the host sleeps.
        if self.gated < slots {
            return None;
        }
        let interval = self.pace.interval?;
        // ADVANCED_OK's `P`: the planner must be at least three quarters full, so the
        // firmware is what limits the stream. Otherwise the link (or the host) is, and a
        // deferral leaves the link idle for time it cannot make up (at 92 % link use a 5 ms
        // deferral with the planner half full starved the printer).
        let (Some(free), most) = (self.planner_free, self.learned_planner) else {
            return None;
        };
        if free * 4 > most {
            return None;
        }
        let planned = most - free;
        // At most a quarter of all the work held (planner included), so a misjudged pace
        // cannot starve the printer, and no longer than the firmware needs for the lines in
        // flight, so it still has their successors before its command queue runs dry. (A
        // third of the window, as before, kept bursts at two or three `ok`s at 1000 lines/s:
        // with the planner this full the firmware, not the link, sets the pace, and the
        // link's idle time costs nothing.)
        let window = interval.saturating_mul(self.gated);
        let work = interval.saturating_mul(self.gated + planned);
        let deferral = window.min(work / 4).min(max);
        // Worth it only if a burst gathers more than one `ok` (one and a half expected):
        // otherwise the timer's wake-up just replaces the `ok`'s, or adds to it.
        let gathers = deferral * 2 >= interval * 3;
        (deferral >= MIN_DEFERRAL && gathers).then(|| now + deferral)
    }

    /// Notes an acknowledged command (for [`read_deferral`](Self::read_deferral)).
    pub(super) fn note_ack(&mut self, now: Instant) {
        if self.gated == 0 {
            // The stream paused: its gaps say nothing about the firmware's pace.
            self.pace = AckPace::default();
            return;
        }
        self.pace.on_ack(now);
    }
}
