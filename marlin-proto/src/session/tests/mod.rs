//! Step-by-step scenarios from the protocol notes (numbers refer to its scenario list), by
//! topic; the helpers here drive a session by hand in virtual time.

use super::*;
use crate::line::checksum;
use crate::response::{BusyReason, HostAction};

struct Host {
    s: Session,
    t: Instant,
}

fn line(n: i64, payload: &str) -> String {
    let mut v = Vec::new();
    frame_numbered(n, payload, &mut v);
    String::from_utf8(v).unwrap()
}

impl Host {
    fn new(config: SessionConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // the one clock read: an arbitrary origin
        let t = Instant::now();
        Self {
            s: Session::new(config, t),
            t,
        }
    }

    /// Handshake with a plain-`ok` Marlin and the given capability lines.
    fn connected(config: SessionConfig, hello_ok: &str, caps: &str) -> Self {
        let mut h = Self::new(config);
        assert_eq!(h.tx(), "N0 M110 N0*125\n");
        h.rx(&format!("{hello_ok}\n"));
        assert_eq!(h.tx(), "N1 M115*39\n");
        h.rx(&format!("FIRMWARE_NAME:Marlin 2.1.2.1 (Jun 11 2023) PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3\n{caps}{}\n", hello_ok.replace("N0", "N1")));
        let ev = h.events();
        assert!(matches!(ev.last(), Some(Event::Connected { .. })), "{ev:?}");
        h
    }

    fn plain() -> Self {
        Self::connected(SessionConfig::default(), "ok", "")
    }

    fn tx(&mut self) -> String {
        let mut out = Vec::new();
        self.s.poll_transmit(self.t, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn rx(&mut self, text: &str) {
        self.s.handle_rx(self.t, text.as_bytes());
    }

    /// Advances virtual time by `ms`, firing every deadline on the way.
    fn wait_ms(&mut self, ms: u64) {
        let end = self.t + Duration::from_millis(ms);
        while let Some(d) = self.s.poll_timeout().filter(|d| *d <= end) {
            self.t = self.t.max(d);
            self.s.handle_timeout(self.t);
        }
        self.t = end;
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn send(&mut self, text: &str) -> CommandId {
        self.s.send(text).unwrap().unwrap()
    }

    fn completed(&mut self) -> Vec<i64> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Completed { line, .. } => Some(line),
                _ => None,
            })
            .collect()
    }
}

fn advanced() -> Host {
    Host::connected(SessionConfig::default(), "ok N0 P15 B3", "")
}

/// A plain-`ok` Marlin with a credit window forced on (no ADVANCED_OK to match `ok`s).
fn blind_credit(slots: u32, rx_bytes: u32) -> Host {
    Host::connected(
        SessionConfig {
            flow: FlowPolicy::Credit { slots, rx_bytes },
            ..SessionConfig::default()
        },
        "ok",
        "",
    )
}

mod flow;
mod keepalive;
mod lifecycle;
mod lost_answers;
mod pacing;
mod quirks;
mod resend;
mod temperature;
mod window;
