//! The simulated printer on a real pseudo-terminal, in real time, so the host's real serial
//! path (the `serialport` crate on a tty) runs end to end.
// A real-time driver: it reads the clock and sleeps in `poll`.
#![allow(clippy::disallowed_methods)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use nix::sys::time::TimeSpec;

use super::link::{Link, LinkConfig};
use super::printer::{SimPrinter, SimStats};
use super::SimConfig;

/// A simulated printer serving a pseudo-terminal from its own thread. Dropping it (or
/// [`stop`](Self::stop)) ends the thread.
#[derive(Debug)]
pub struct VirtualPrinter {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SimStats>>,
    thread: Option<thread::JoinHandle<SimPrinter>>,
}

impl VirtualPrinter {
    /// Opens a pty and starts serving `config` on it, with `link` modelling the serial line
    /// in each direction (baud-limited, with latency).
    pub fn spawn(config: SimConfig, link: LinkConfig) -> io::Result<Self> {
        let pty = openpty(None, None).map_err(io::Error::from)?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .or_else(|_| nix::unistd::ttyname(pty.slave.as_fd()))
            .map_err(|e| io::Error::other(format!("cannot name the pty: {e}")))?;
        // Raw mode: no echo, no line editing, no CR/LF translation.
        let mut t = tcgetattr(&pty.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        let flags = fcntl(pty.master.as_raw_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
        fcntl(
            pty.master.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(io::Error::from)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(SimStats::default()));
        let (s, st) = (stop.clone(), stats.clone());
        let slave = pty.slave;
        let master = pty.master;
        let thread = thread::Builder::new()
            .name("virtual-printer".into())
            .spawn(move || serve(master, slave, config, link, s, st))?;
        Ok(Self {
            path,
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// The pty device to open as a serial port.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops serving and returns the printer (its ledger and stats).
    pub fn stop(mut self) -> Option<SimPrinter> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for VirtualPrinter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    master: OwnedFd,
    _slave: OwnedFd, // kept open so the pty survives the host closing and reopening it
    config: SimConfig,
    link: LinkConfig,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SimStats>>,
) -> SimPrinter {
    let _ = crate::transport::raise_io_thread_priority();
    let mut to_host = Link::new(link).with_usb_batching(config.usb_batching);
    let mut printer = SimPrinter::new(config);
    let mut to_printer = Link::new(link);
    let mut buf = vec![0u8; 8192];
    let mut chunk = Vec::new();
    let mut unwritten: Vec<u8> = Vec::new();
    let mut last_stats = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        chunk.clear();
        to_printer.deliver(now, &mut chunk);
        if !chunk.is_empty() {
            printer.handle_rx(now, &chunk);
        }
        if printer.poll_timeout().is_some_and(|t| t <= now) {
            printer.handle_timeout(now);
        }
        chunk.clear();
        printer.poll_transmit(&mut chunk);
        if !chunk.is_empty() {
            to_host.send(now, &chunk);
        }
        to_host.deliver(now, &mut unwritten);
        if !unwritten.is_empty() {
            match nix::unistd::write(&master, &unwritten) {
                Ok(n) => {
                    unwritten.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => {} // nobody has the slave open: output is lost, as on a real port
            }
        }
        if last_stats.elapsed() >= Duration::from_millis(50) {
            last_stats = now;
            if let Ok(mut s) = stats.lock() {
                *s = printer.stats().clone();
            }
        }
        let next = [
            printer.poll_timeout(),
            to_printer.next_arrival(),
            to_host.next_arrival(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::from_millis(20))
        .min(now + Duration::from_millis(20));
        let wait = if unwritten.is_empty() {
            next.saturating_duration_since(Instant::now())
        } else {
            Duration::from_micros(200) // the host is not reading: retry soon
        };
        // ppoll: microsecond timeouts, so a line due in 0.3 ms is not delayed to 1 ms.
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ts = TimeSpec::from_duration(wait);
        let ready = ppoll(&mut fds, Some(ts), None).unwrap_or(0);
        if ready > 0 {
            loop {
                match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                    Ok(0) => break,
                    Ok(n) => to_printer.send(Instant::now(), &buf[..n]),
                    Err(_) => break,
                }
            }
        }
    }
    if let Ok(mut s) = stats.lock() {
        *s = printer.stats().clone();
    }
    printer
}
