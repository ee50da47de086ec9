//! RepRapFirmware's serial line handling in Marlin emulation (`StringParser::LineFinished`):
//! line numbers are recorded but not checked, and a line whose checksum is wrong is dropped
//! without any answer.

use super::repetier::split_line_number;
use super::{Command, SimPrinter};
use crate::line::checksum;

impl SimPrinter {
    /// A complete line read from serial.
    pub(super) fn reprap_line(&mut self, raw: &[u8]) {
        let raw = raw.trim_ascii();
        let text = String::from_utf8_lossy(raw).into_owned();
        let unsummed = match text.rfind('*') {
            Some(a) => {
                if text[a + 1..].trim().parse::<u8>().ok() != Some(checksum(&raw[..a])) {
                    // Bad checksum: `Init()` and nothing else.
                    self.stats.line_errors += 1;
                    return;
                }
                &text[..a]
            }
            None => text.as_str(),
        };
        let (number, body) = split_line_number(unsummed);
        if let Some(n) = number {
            self.last_n = n;
        }
        self.ring.push_back(Command {
            line: number,
            text: body.trim().to_owned(),
            from_sd: false,
        });
    }
}
