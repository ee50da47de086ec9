//! An audit of what a host wrote against what the firmware said, in the order the host saw
//! both: every numbered line is the next one, or a copy of one the firmware asked for again.

use crate::response::FirmwareLine;
use crate::session::cut_rx_lines;

/// A rule of the resend protocol the host broke, found by [`WireAudit`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireViolation {
    /// A new line number was not the one after the highest sent so far.
    #[error("line {sent} sent after line {highest}: line numbers skipped")]
    Skipped {
        /// The line sent.
        sent: i64,
        /// The highest line number sent before it.
        highest: i64,
    },
    /// A line went out again although no resend request for it (or an earlier line) came
    /// after its previous copy.
    #[error("line {line} re-sent unasked")]
    ResentUnasked {
        /// The line sent again.
        line: i64,
    },
    /// A host line started with `N` but had no `N<n> <payload>` shape.
    #[error("malformed numbered line from the host: {0:?}")]
    Malformed(String),
}

/// Checks a host's numbered lines against the firmware's resend requests: a line number is
/// either the highest so far plus one, or a line the firmware asked for again (a `Resend:`/
/// `rs` for it or an earlier line arrived after its previous copy went out). `M110` restarts
/// the numbering. Feed it in the order the host wrote and read
/// ([`host_wrote`](Self::host_wrote), [`firmware_said`](Self::firmware_said)); bytes may come
/// in any chunks.
///
/// ```
/// use easyprint_marlin::sim::{WireAudit, WireViolation};
///
/// let mut audit = WireAudit::default();
/// audit.host_wrote(b"N0 M110 N0*125\nN1 G28*18\nN2 G1 X5*103\n").unwrap();
/// audit.firmware_said(b"ok\nResend: 2\nok\n");
/// audit.host_wrote(b"N2 G1 X5*103\nN3 M105*36\n").unwrap();
/// assert_eq!(audit.host_wrote(b"N3 M105*36\n"), Err(WireViolation::ResentUnasked { line: 3 }));
/// assert_eq!(audit.resends_asked(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct WireAudit {
    /// Highest line number sent since the last `M110` (`None`: none yet).
    highest: Option<i64>,
    /// When each line's latest copy went out (sequence number).
    sent_at: std::collections::HashMap<i64, u64>,
    /// Resend requests, `(sequence number, line)`, oldest first.
    requests: Vec<(u64, i64)>,
    /// Increases with every line seen either way.
    seq: u64,
    host_partial: Vec<u8>,
    firmware_partial: Vec<u8>,
}

impl WireAudit {
    /// Bytes the host wrote; the first rule broken, if any (the audit goes on after it).
    pub fn host_wrote(&mut self, bytes: &[u8]) -> Result<(), WireViolation> {
        let mut first = Ok(());
        let mut partial = std::mem::take(&mut self.host_partial);
        for &b in bytes {
            if b != b'\n' {
                partial.push(b);
                continue;
            }
            let verdict = self.host_line(&partial);
            if first.is_ok() {
                first = verdict;
            }
            partial.clear();
        }
        self.host_partial = partial;
        first
    }

    /// Bytes the firmware wrote, as the host received them, cut into lines as the session
    /// cuts them (at `\n` or `\r`, and 1024 bytes at most).
    pub fn firmware_said(&mut self, bytes: &[u8]) {
        cut_rx_lines(&mut self.firmware_partial, bytes, |line| {
            self.seq += 1;
            if let FirmwareLine::Resend { line: Some(n) } = FirmwareLine::parse(line) {
                self.requests.push((self.seq, n));
            }
        });
    }

    /// Resend requests with a line number received so far.
    pub fn resends_asked(&self) -> usize {
        self.requests.len()
    }

    fn host_line(&mut self, line: &[u8]) -> Result<(), WireViolation> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(rest) = line.strip_prefix(b"N") else {
            return Ok(()); // unnumbered: emergency commands, Klipper
        };
        let malformed = || WireViolation::Malformed(String::from_utf8_lossy(line).into_owned());
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let n: i64 = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(malformed)?;
        let payload = rest[digits..].strip_prefix(b" ").ok_or_else(malformed)?;
        self.seq += 1;
        if payload.starts_with(b"M110") {
            // A hello restarts the numbering (its own number is the one it sets).
            self.highest = Some(n);
            self.sent_at.clear();
            self.requests.clear();
            self.sent_at.insert(n, self.seq);
            return Ok(());
        }
        let verdict = match self.highest {
            Some(h) if n == h + 1 => {
                self.highest = Some(n);
                Ok(())
            }
            Some(h) if n <= h => {
                let last = self.sent_at.get(&n).copied().unwrap_or(0);
                if self.asked_since(last, n) {
                    Ok(())
                } else {
                    Err(WireViolation::ResentUnasked { line: n })
                }
            }
            Some(h) => Err(WireViolation::Skipped {
                sent: n,
                highest: h,
            }),
            None => {
                self.highest = Some(n);
                Ok(())
            }
        };
        self.sent_at.insert(n, self.seq);
        verdict
    }

    /// Whether a request for `line` or an earlier one came after sequence number `after`.
    fn asked_since(&self, after: u64, line: i64) -> bool {
        self.requests
            .iter()
            .rev()
            .take_while(|(seq, _)| *seq > after)
            .any(|&(_, asked)| asked <= line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MAX_RX_LINE;

    #[test]
    fn new_lines_must_follow_the_highest() {
        let mut a = WireAudit::default();
        a.host_wrote(b"N0 M110 N0*125\nN1 G28*18\n").unwrap();
        assert_eq!(
            a.host_wrote(b"N3 G1 X1*0\n"),
            Err(WireViolation::Skipped {
                sent: 3,
                highest: 1
            })
        );
        // A hello restarts the numbering anywhere.
        a.host_wrote(b"N7 M110 N7*0\nN8 G1*0\n").unwrap();
    }

    #[test]
    fn a_copy_needs_a_request_after_the_last_copy() {
        let mut a = WireAudit::default();
        a.host_wrote(b"N0 M110 N0*0\nN1 G1*0\nN2 G1*0\nN3 G1*0\n")
            .unwrap();
        // Lines cut anywhere, `\r` ends a line as for the session.
        a.firmware_said(b"Error:checksum mismatch, Last Line: 1\rRes");
        a.firmware_said(b"end: 2\r\nok\n");
        a.host_wrote(b"N2 G1*0\nN3 ").unwrap();
        a.host_wrote(b"G1*0\n").unwrap();
        // Not again: the request was used up by the copies.
        assert_eq!(
            a.host_wrote(b"N3 G1*0\n"),
            Err(WireViolation::ResentUnasked { line: 3 })
        );
        // A request for a later line does not cover an earlier one.
        a.firmware_said(b"rs N3\n");
        assert_eq!(
            a.host_wrote(b"N2 G1*0\n"),
            Err(WireViolation::ResentUnasked { line: 2 })
        );
        assert_eq!(a.resends_asked(), 2);
        assert!(matches!(
            a.host_wrote(b"Nx G1\n"),
            Err(WireViolation::Malformed(_))
        ));
        // Unnumbered lines (emergency commands) are not the audit's business.
        a.host_wrote(b"M112\n").unwrap();
    }

    #[test]
    fn an_overlong_firmware_line_is_cut_as_the_session_cuts_it() {
        let mut a = WireAudit::default();
        a.host_wrote(b"N0 M110 N0*0\nN1 G1*0\n").unwrap();
        // The partial line would grow past the limit: it is cut, and the request stands
        // on a line of its own.
        a.firmware_said(&[b'x'; MAX_RX_LINE - 4]);
        a.firmware_said(b"Resend: 1");
        a.firmware_said(b"\n");
        a.host_wrote(b"N1 G1*0\n").unwrap();
        // Completed by a newline, an overlong line is one line: no request in it.
        a.firmware_said(&[b'x'; MAX_RX_LINE - 4]);
        a.firmware_said(b"Resend: 1\n");
        assert!(a.host_wrote(b"N1 G1*0\n").is_err());
    }
}
