//! Byte links to a printer: serial ports and pseudo-terminals (`serialport`), TCP (ser2net,
//! ESP3D), and in-memory pipes for tests. All blocking, used from one dedicated I/O thread.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
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

/// A blocking byte link with a read timeout.
pub trait Link: Send {
    /// Reads what is available, waiting at most `timeout`; `Ok(0)` when nothing came.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Writes all of `data`.
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
                .timeout(Duration::from_millis(5))
                .open()
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
            Ok(Box::new(TcpLink(stream)))
        }
    }
}

struct SerialLink(Box<dyn serialport::SerialPort>);

impl Link for SerialLink {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0
            .set_timeout(timeout.max(Duration::from_micros(100)))?;
        match self.0.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.0, data)
    }
}

struct TcpLink(TcpStream);

impl Link for TcpLink {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0
            .set_read_timeout(Some(timeout.max(Duration::from_micros(100))))?;
        match self.0.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the printer bridge",
            )),
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
        Write::write_all(&mut self.0, data)
    }
}

/// One end of an in-memory link (see [`memory_pair`]).
#[derive(Debug)]
pub struct MemoryLink {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

/// Two connected in-memory ends: what one writes, the other reads.
pub fn memory_pair() -> (MemoryLink, MemoryLink) {
    let (a_tx, b_rx) = mpsc::channel();
    let (b_tx, a_rx) = mpsc::channel();
    (
        MemoryLink {
            tx: a_tx,
            rx: a_rx,
            pending: Vec::new(),
        },
        MemoryLink {
            tx: b_tx,
            rx: b_rx,
            pending: Vec::new(),
        },
    )
}

impl Link for MemoryLink {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv_timeout(timeout) {
                Ok(chunk) => self.pending = chunk,
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(0),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "in-memory peer dropped",
                    ))
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.tx
            .send(data.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "in-memory peer dropped"))
    }
}
