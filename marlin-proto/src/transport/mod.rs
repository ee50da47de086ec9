//! Byte links to a printer: serial ports and pseudo-terminals (`serialport`), TCP (ser2net,
//! ESP3D), and in-process socket pairs for tests. Used from one dedicated I/O thread, which
//! sleeps on the link's file descriptor (see [`Link`]) until bytes arrive.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

mod priority;

pub use priority::{raise_io_thread_priority, thread_cpu_time, PriorityOutcome};

/// Where the printer is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortSpec {
    /// A serial device or pseudo-terminal, e.g. `/dev/ttyUSB0`.
    Serial {
        /// Device path.
        path: String,
        /// Baud rate (ignored by native-USB boards and ptys).
        baud: u32,
    },
    /// A raw TCP socket bridged to the printer's serial port.
    Tcp {
        /// Address of the bridge.
        addr: SocketAddr,
    },
}

/// Why a port could not be opened or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The device does not exist.
    #[error("serial port {path} does not exist")]
    NotFound {
        /// Device path.
        path: String,
    },
    /// The device exists but this user may not open it (add the user to the `dialout` group).
    #[error("permission denied opening {path} (is the user in the dialout group?)")]
    PermissionDenied {
        /// Device path.
        path: String,
    },
    /// Any other failure opening the port.
    #[error("cannot open {what}: {source}")]
    Open {
        /// What was being opened.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// How long a write may block before the port counts as stalled (a printer that stopped
/// reading, an XOFF that never ends).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A byte link to a printer. Its file descriptor ([`AsRawFd`]) must become readable when bytes
/// arrive: the I/O thread sleeps on it (and on its own waker) instead of polling.
pub trait Link: Send + AsRawFd {
    /// Reads what is available, waiting at most `timeout` (zero: do not wait); `Ok(0)` when
    /// nothing came.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Writes all of `data`, failing after [`WRITE_TIMEOUT`] without progress.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
}

/// Opens `spec`, mapping the common failures to clear errors.
pub fn open(spec: &PortSpec) -> Result<Box<dyn Link>, TransportError> {
    match spec {
        PortSpec::Serial { path, baud } => {
            if !std::path::Path::new(path).exists() {
                return Err(TransportError::NotFound { path: path.clone() });
            }
            let port = serialport::new(path, *baud)
                .timeout(WRITE_TIMEOUT)
                .open_native()
                .map_err(|e| {
                    let io: io::Error = e.into();
                    match io.kind() {
                        io::ErrorKind::PermissionDenied => {
                            TransportError::PermissionDenied { path: path.clone() }
                        }
                        io::ErrorKind::NotFound => TransportError::NotFound { path: path.clone() },
                        _ => TransportError::Open {
                            what: path.clone(),
                            source: io,
                        },
                    }
                })?;
            // Non-blocking: the I/O thread reads after each readiness event with one `read`
            // per chunk and writes with one `write` per burst (serialport's own read and
            // write add a `poll` before each); `write_nonblocking` waits only when full.
            set_nonblocking(port.as_raw_fd()).map_err(|e| TransportError::Open {
                what: path.clone(),
                source: e.into(),
            })?;
            Ok(Box::new(SerialLink(port)))
        }
        PortSpec::Tcp { addr } => {
            let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5)).map_err(|e| {
                TransportError::Open {
                    what: addr.to_string(),
                    source: e,
                }
            })?;
            let _ = stream.set_nodelay(true);
            stream
                .set_write_timeout(Some(WRITE_TIMEOUT))
                .map_err(|e| TransportError::Open {
                    what: addr.to_string(),
                    source: e,
                })?;
            Ok(Box::new(SocketLink {
                socket: stream,
                closed: "connection closed by the printer bridge",
            }))
        }
    }
}

struct SerialLink(serialport::TTYPort);

impl AsRawFd for SerialLink {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn set_nonblocking(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl Link for SerialLink {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if timeout.is_zero() {
            // One syscall: the descriptor is non-blocking (see `open`).
            return match nix::unistd::read(self.0.as_raw_fd(), buf) {
                Ok(n) => Ok(n),
                Err(nix::errno::Errno::EAGAIN) => Ok(0),
                Err(e) => Err(e.into()),
            };
        }
        // The port's timeout only bounds the `poll` before each read or write.
        serialport::SerialPort::set_timeout(&mut self.0, timeout)?;
        let read = self.0.read(buf);
        serialport::SerialPort::set_timeout(&mut self.0, WRITE_TIMEOUT)?;
        match read {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        write_nonblocking(self.0.as_raw_fd(), data)
    }
}

/// Writes all of `data` to the non-blocking `fd`: straight away, and only when the port's
/// buffer is full (`EAGAIN`) waits in `poll` for room, at most [`WRITE_TIMEOUT`] without
/// progress. (serialport's own `write` polls before every write: one syscall more per burst.)
#[allow(unsafe_code)]
fn write_nonblocking(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // SAFETY: `fd` belongs to the link that called this, which keeps it open throughout.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let timeout = PollTimeout::try_from(WRITE_TIMEOUT).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                match poll(&mut fds, timeout) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "the port accepted no bytes for {} s",
                                WRITE_TIMEOUT.as_secs()
                            ),
                        ))
                    }
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What a link over a stream socket needs (TCP and Unix streams have it all).
trait Socket: Read + Write + AsRawFd + Send {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }
}

impl Socket for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        UnixStream::set_nonblocking(self, nonblocking)
    }
}

/// A link over a stream socket; `closed` says what the peer closing means.
#[derive(Debug)]
struct SocketLink<S> {
    socket: S,
    closed: &'static str,
}

impl<S: Socket> AsRawFd for SocketLink<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl<S: Socket> Link for SocketLink<S> {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // A zero timeout reads without blocking.
        if timeout.is_zero() {
            self.socket.set_nonblocking(true)?;
        } else {
            self.socket.set_read_timeout(Some(timeout))?;
        }
        let read = self.socket.read(buf);
        if timeout.is_zero() {
            self.socket.set_nonblocking(false)?;
        }
        match read {
            Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, self.closed)),
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.socket.write_all(data)
    }
}

/// One end of an in-process link (see [`memory_pair`]): a Unix socket pair, so the I/O thread
/// sleeps on it exactly as on a serial port.
#[derive(Debug)]
pub struct MemoryLink(SocketLink<UnixStream>);

/// Two connected in-process ends: what one writes, the other reads.
pub fn memory_pair() -> io::Result<(MemoryLink, MemoryLink)> {
    let (a, b) = UnixStream::pair()?;
    let end = |socket: UnixStream| -> io::Result<MemoryLink> {
        socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(MemoryLink(SocketLink {
            socket,
            closed: "in-process peer closed",
        }))
    };
    Ok((end(a)?, end(b)?))
}

impl AsRawFd for MemoryLink {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Link for MemoryLink {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0.read_timeout(buf, timeout)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }
}

#[cfg(test)]
mod tests;
