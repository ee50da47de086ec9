//! The serial link over a real pseudo-terminal: writes larger than the tty's buffer wait for
//! room (the `EAGAIN` path of the non-blocking port) and arrive whole and in order; reads
//! return what came and nothing when nothing did.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

use super::{open, PortSpec};

/// A raw pty: the master (the "printer" side) and the slave's path.
fn pty() -> (std::fs::File, String, std::os::fd::OwnedFd) {
    let pty = openpty(None, None).unwrap();
    let mut t = tcgetattr(&pty.slave).unwrap();
    cfmakeraw(&mut t);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &t).unwrap();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).unwrap();
    (
        std::fs::File::from(pty.master),
        path.to_string_lossy().into_owned(),
        pty.slave,
    )
}

#[test]
fn a_write_larger_than_the_tty_buffer_waits_for_room_and_arrives_in_order() {
    let (mut master, path, _slave) = pty();
    let mut link = open(&PortSpec::Serial {
        path,
        baud: 115_200,
    })
    .unwrap();
    // 256 KiB: far more than a pty holds, so the non-blocking write meets `EAGAIN` and must
    // wait for the reader (which takes 1000 bytes at a time).
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        while got.len() < expected.len() {
            let n = master.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == expected, "bytes lost or reordered");
        master
    });
    link.write_all(&data).unwrap();
    let mut master = reader.join().unwrap();
    // The other way: nothing waiting reads as nothing, without blocking.
    let mut buf = [0u8; 64];
    assert_eq!(link.read_timeout(&mut buf, Duration::ZERO).unwrap(), 0);
    std::io::Write::write_all(&mut master, b"ok\n").unwrap();
    let n = link.read_timeout(&mut buf, Duration::from_secs(5)).unwrap();
    assert_eq!(&buf[..n], b"ok\n");
}
