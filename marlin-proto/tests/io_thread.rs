//! The `Printer` I/O thread's life cycle over a real pty: it sleeps while nothing happens,
//! dropping the handle never blocks, and `close` waits until the port is closed.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use easyprint_marlin::printer::{CommandError, Printer, PrinterConfig, PrinterState};
use easyprint_marlin::sim::{LinkConfig, MoveTiming, SimConfig, VirtualPrinter};
use easyprint_marlin::transport::{self, Link, PortSpec};
use easyprint_marlin::SessionConfig;

/// A real serial link that counts reads, can hold a write until released, and reports when
/// it is dropped (the port closed).
struct Watched {
    inner: Box<dyn Link>,
    reads: Arc<AtomicUsize>,
    hold_writes: Arc<AtomicBool>,
    entered_write: mpsc::Sender<()>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
    closed: Arc<AtomicBool>,
}

struct Probe {
    reads: Arc<AtomicUsize>,
    hold_writes: Arc<AtomicBool>,
    entered_write: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
    closed: Arc<AtomicBool>,
}

fn watched(vp: &VirtualPrinter) -> (Box<dyn Link>, Probe) {
    let inner = transport::open(&PortSpec::Serial {
        path: vp.path().to_string_lossy().into_owned(),
        baud: 250_000,
    })
    .unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let probe = Probe {
        reads: Arc::default(),
        hold_writes: Arc::default(),
        entered_write: entered_rx,
        release: release_tx,
        closed: Arc::default(),
    };
    let link = Watched {
        inner,
        reads: probe.reads.clone(),
        hold_writes: probe.hold_writes.clone(),
        entered_write: entered_tx,
        release: Arc::new(Mutex::new(release_rx)),
        closed: probe.closed.clone(),
    };
    (Box::new(link), probe)
}

impl AsRawFd for Watched {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl Link for Watched {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_timeout(buf, timeout)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.hold_writes.load(Ordering::SeqCst) {
            let _ = self.entered_write.send(());
            let _ = self.release.lock().unwrap().recv();
        }
        self.inner.write_all(data)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

fn sim() -> VirtualPrinter {
    VirtualPrinter::spawn(
        SimConfig {
            moves: MoveTiming::Instant,
            ..SimConfig::default()
        },
        LinkConfig {
            baud: 250_000,
            latency: Duration::ZERO,
        },
    )
    .unwrap()
}

/// Idle and connected, the I/O thread does not wake up at all: it sleeps on the port, the
/// waker and the session's deadline (none while nothing is outstanding). The old loop read
/// every 20 ms. Load on the machine can only make this pass more easily.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_io_thread_does_not_wake_up() {
    let vp = sim();
    let (link, probe) = watched(&vp);
    // No temperature reporting: autoreports would (rightly) wake the thread every 2 s.
    let config = PrinterConfig {
        session: SessionConfig::default(),
        ..PrinterConfig::default()
    };
    let printer = Printer::connect_link(link, config).await.unwrap();
    // The handshake's last `ok` may still be draining: wait until reads stop growing.
    let reply = printer.send("M105").await.unwrap();
    assert!(reply[0].starts_with("ok T:"), "{reply:?}");
    let before = probe.reads.load(Ordering::SeqCst);
    // A negative property needs some time to pass; 300 ms is 15 polls of the old loop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_reads = probe.reads.load(Ordering::SeqCst) - before;
    assert_eq!(
        idle_reads, 0,
        "the I/O thread woke up {idle_reads} times while idle"
    );
    // A request still wakes it at once.
    let reply = printer.send("M105").await.unwrap();
    assert!(reply[0].starts_with("ok T:"), "{reply:?}");
    printer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_never_waits_for_the_io_thread() {
    let vp = sim();
    let (link, probe) = watched(&vp);
    let printer = Printer::connect_link(link, PrinterConfig::default())
        .await
        .unwrap();
    // Park the I/O thread inside a write.
    probe.hold_writes.store(true, Ordering::SeqCst);
    let printer = Arc::new(printer);
    let p = printer.clone();
    let reply = tokio::spawn(async move { p.send("M105").await });
    probe.entered_write.recv().unwrap();
    // Dropping the handle while the thread is stuck returns at once (joining would deadlock:
    // the write is only released after the drop).
    let (dropped_tx, dropped_rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(printer);
        let _ = dropped_tx.send(());
    });
    // The bound only turns a deadlock into a failure; a passing run returns immediately.
    dropped_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("drop returned while the I/O thread was blocked");
    assert!(!probe.closed.load(Ordering::SeqCst));
    // Once released, the thread finishes the write, sees the close request and closes the port.
    probe.hold_writes.store(false, Ordering::SeqCst);
    probe.release.send(()).unwrap();
    // The reply may have been read before the close request was seen, or not.
    match reply.await.unwrap() {
        Ok(lines) => assert!(lines[0].starts_with("ok T:"), "{lines:?}"),
        Err(e) => assert_eq!(e, CommandError::Closed),
    }
    while !probe.closed.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_until_the_port_is_closed() {
    let vp = sim();
    let (link, probe) = watched(&vp);
    let printer = Printer::connect_link(link, PrinterConfig::default())
        .await
        .unwrap();
    let status = printer.status();
    printer.close().await;
    assert!(
        probe.closed.load(Ordering::SeqCst),
        "port still open after close()"
    );
    assert_eq!(status.borrow().state, PrinterState::Closed);
    assert_eq!(printer.send("M105").await, Err(CommandError::Closed));
    // Closing twice is harmless.
    printer.close().await;
}
