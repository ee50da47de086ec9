//! A serial link in simulated time: bytes take `10 / baud` seconds each (8N1) and arrive
//! `latency` later (USB-serial bridge frames), or, with [`UsbBatching`], when the bridge's
//! latency timer or packet size releases them.

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

/// How a USB-serial bridge hands device→host bytes to the host: it holds them until its
/// latency timer expires or a packet fills, whichever comes first (then the link's
/// `latency`, the USB frame, applies). Host→device bytes are not held.
///
/// FTDI chips (FT232R and kin) default to a 16 ms timer (`latency_timer` in sysfs; 1 ms is the
/// lowest) and 62-byte packets (64 minus two status bytes); the timer restarts with every
/// packet sent. WCH CH340/CH341 bridges flush on their own short idle timeout and 32-byte
/// packets: model them with [`UsbBatching::new`] and measured values.
///
/// ```
/// use std::time::{Duration, Instant};
/// use easyprint_marlin::sim::{Link, LinkConfig, UsbBatching};
///
/// let t0 = Instant::now();
/// let config = LinkConfig { baud: 250_000, latency: Duration::from_millis(1) };
/// let mut link = Link::new(config).with_usb_batching(Some(UsbBatching::FTDI_DEFAULT));
/// link.send(t0, b"ok\n");
/// // Three bytes do not fill a packet: they wait for the 16 ms timer (running from the first
/// // byte here), then the USB frame.
/// assert_eq!(link.next_arrival(), Some(t0 + config.byte_time() + Duration::from_millis(17)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsbBatching {
    /// Pending bytes are sent when this long passed since the last packet.
    pub timer: Duration,
    /// Pending bytes are sent at once when this many are waiting.
    pub packet_bytes: usize,
}

impl UsbBatching {
    /// An FTDI bridge with its default 16 ms latency timer.
    pub const FTDI_DEFAULT: Self = Self::ftdi(Duration::from_millis(16));

    /// An FTDI bridge with latency timer `timer` (62-byte packets).
    pub const fn ftdi(timer: Duration) -> Self {
        Self::new(timer, 62)
    }

    /// A bridge with the given timer and packet payload size (at least one byte).
    pub const fn new(timer: Duration, packet_bytes: usize) -> Self {
        Self {
            timer,
            packet_bytes: if packet_bytes == 0 { 1 } else { packet_bytes },
        }
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
    batching: Option<UsbBatching>,
    /// With batching: each byte and when it reached the bridge.
    at_bridge: VecDeque<(Instant, u8)>,
    /// With batching: when the bridge last sent a packet (its timer restarts then).
    last_packet: Option<Instant>,
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
            batching: None,
            at_bridge: VecDeque::new(),
            last_packet: None,
        }
    }

    /// Holds bytes in a USB-serial bridge as `batching` says (`None`: every line arrives
    /// `latency` after its last byte).
    pub fn with_usb_batching(mut self, batching: Option<UsbBatching>) -> Self {
        self.batching = batching;
        self
    }

    /// Queues `data` for transmission from `now`, one delivery per line.
    pub fn send(&mut self, now: Instant, data: &[u8]) {
        if self.batching.is_some() {
            let mut t = self.free_at.map_or(now, |f| f.max(now));
            for &b in data {
                t += self.byte_time;
                self.at_bridge.push_back((t, b));
            }
            self.free_at = Some(t);
            self.bytes += data.len() as u64;
            return;
        }
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let start = self.free_at.map_or(now, |f| f.max(now));
            let end = start + self.byte_time * piece.len() as u32;
            self.free_at = Some(end);
            self.bytes += piece.len() as u64;
            self.in_transit
                .push_back((end + self.config.latency, piece.to_vec()));
        }
    }

    /// The bridge's next packet: when it leaves, and how many bytes it carries.
    fn next_packet(&self) -> Option<(Instant, usize)> {
        let b = self.batching?;
        let (first, _) = *self.at_bridge.front()?;
        let timer = b.timer.max(Duration::from_micros(1));
        // The timer runs from the last packet (or from the first byte ever).
        let tick = match self.last_packet {
            Some(last) if first > last => {
                let periods = (first - last).as_nanos().div_ceil(timer.as_nanos());
                last + timer * u32::try_from(periods).unwrap_or(u32::MAX)
            }
            Some(last) => last + timer,
            None => first + timer,
        };
        if let Some(&(full, _)) = self.at_bridge.get(b.packet_bytes - 1) {
            if full <= tick {
                return Some((full, b.packet_bytes));
            }
        }
        let waiting = self
            .at_bridge
            .iter()
            .take_while(|(t, _)| *t <= tick)
            .count();
        Some((tick, waiting.min(b.packet_bytes)))
    }

    /// When the next piece arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        if self.batching.is_some() {
            return self.next_packet().map(|(t, _)| t + self.config.latency);
        }
        self.in_transit.front().map(|(t, _)| *t)
    }

    /// Appends everything that has arrived by `now`.
    pub fn deliver(&mut self, now: Instant, out: &mut Vec<u8>) {
        if self.batching.is_some() {
            while let Some((sent, n)) = self.next_packet() {
                if sent + self.config.latency > now {
                    break;
                }
                out.extend(self.at_bridge.drain(..n).map(|(_, b)| b));
                self.last_packet = Some(sent);
            }
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batched() -> (Link, Duration) {
        let config = LinkConfig {
            baud: 250_000,
            latency: Duration::from_millis(1),
        };
        let link = Link::new(config).with_usb_batching(Some(UsbBatching::FTDI_DEFAULT));
        (link, config.byte_time())
    }

    #[test]
    fn a_short_answer_waits_for_the_latency_timer() {
        #[allow(clippy::disallowed_methods)] // origin of virtual time
        let t0 = Instant::now();
        let (mut link, byte) = batched();
        link.send(t0, b"ok\n");
        let mut out = Vec::new();
        link.deliver(t0 + byte * 3 + Duration::from_millis(16), &mut out);
        assert!(out.is_empty(), "held until the timer and the USB frame");
        // The timer runs from the first byte.
        let at = t0 + byte + Duration::from_millis(17);
        assert_eq!(link.next_arrival(), Some(at));
        link.deliver(at, &mut out);
        assert_eq!(out, b"ok\n");
        // The timer restarted with that packet: the next `ok` waits for its next expiry.
        let t1 = t0 + Duration::from_millis(20);
        link.send(t1, b"ok\n");
        let tick = t0 + byte + Duration::from_millis(32);
        assert_eq!(link.next_arrival(), Some(tick + Duration::from_millis(1)));
    }

    #[test]
    fn a_full_packet_goes_at_once() {
        #[allow(clippy::disallowed_methods)] // origin of virtual time
        let t0 = Instant::now();
        let (mut link, byte) = batched();
        let data = [b'x'; 100];
        link.send(t0, &data);
        // 62 bytes fill a packet: it leaves when the 62nd byte is in.
        assert_eq!(
            link.next_arrival(),
            Some(t0 + byte * 62 + Duration::from_millis(1))
        );
        let mut out = Vec::new();
        link.deliver(t0 + byte * 62 + Duration::from_millis(1), &mut out);
        assert_eq!(out.len(), 62);
        // The other 38 wait for the timer, restarted by that packet.
        let at = t0 + byte * 62 + Duration::from_millis(17);
        assert_eq!(link.next_arrival(), Some(at));
        link.deliver(at, &mut out);
        assert_eq!(out.len(), 100);
    }
}
