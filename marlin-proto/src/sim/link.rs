//! A serial link in simulated time: bytes take `10 / baud` seconds each (8N1) and arrive
//! `latency` later (USB-serial bridge frames).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Speed and latency of one direction of a serial link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Baud rate (8N1: 10 bits per byte).
    pub baud: u32,
    /// Added delay before bytes arrive (USB full-speed frames: about 1 ms).
    pub latency: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            baud: 115_200,
            latency: Duration::from_millis(1),
        }
    }
}

impl LinkConfig {
    /// Time one byte occupies the wire.
    pub fn byte_time(&self) -> Duration {
        Duration::from_nanos(10_000_000_000 / u64::from(self.baud.max(1)))
    }
}

/// One direction of a link: what was written, and when each line arrives.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    byte_time: Duration,
    free_at: Option<Instant>,
    in_transit: VecDeque<(Instant, Vec<u8>)>,
    bytes: u64,
}

impl Link {
    /// An idle link.
    pub fn new(config: LinkConfig) -> Self {
        Self {
            byte_time: config.byte_time(),
            config,
            free_at: None,
            in_transit: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Queues `data` for transmission from `now`, one delivery per line.
    pub fn send(&mut self, now: Instant, data: &[u8]) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let start = self.free_at.map_or(now, |f| f.max(now));
            let end = start + self.byte_time * piece.len() as u32;
            self.free_at = Some(end);
            self.bytes += piece.len() as u64;
            self.in_transit
                .push_back((end + self.config.latency, piece.to_vec()));
        }
    }

    /// When the next piece arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_transit.front().map(|(t, _)| *t)
    }

    /// Appends everything that has arrived by `now`.
    pub fn deliver(&mut self, now: Instant, out: &mut Vec<u8>) {
        while let Some((t, _)) = self.in_transit.front() {
            if *t > now {
                break;
            }
            let (_, piece) = self.in_transit.pop_front().expect("front exists");
            out.extend_from_slice(&piece);
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Wire time the bytes written so far occupied.
    pub fn busy_time(&self) -> Duration {
        self.byte_time * self.bytes.min(u64::from(u32::MAX)) as u32
    }

    /// The link's configuration.
    pub fn config(&self) -> LinkConfig {
        self.config
    }
}
