//! The simulated printer's SD card: an in-memory FAT-like card with 8.3 names (and optional
//! long names), the file being written (`M28`…`M29`) and the file being printed (`M23`/`M24`).

use std::io::Write as _;
use std::time::{Duration, Instant};

/// One file on the simulated card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdFile {
    /// The 8.3 name, upper case (`CUBE.GCO`): what `M20` lists and `M23` opens.
    pub short_name: String,
    /// The long name, if the file has one (`M20 L` lists it).
    pub long_name: Option<String>,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// The firmware's SD build options that change what a host sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdConfig {
    /// `AUTO_REPORT_SD_STATUS` (`Cap:AUTOREPORT_SD_STATUS`): `M27 S<secs>` makes the firmware
    /// report progress by itself; without it `M27 S<secs>` reports once, like `M27`.
    pub autoreport: bool,
    /// `LONG_FILENAME_WRITE_SUPPORT` (`Cap:LFN_WRITE`): `M28`, `M23` and `M30` take long
    /// names; without it they take 8.3 names only.
    pub long_name_write: bool,
    /// Longest long name: Marlin's `LONG_FILENAME_LENGTH` less its terminator, 26 with the
    /// default two VFAT entries (65 with `SCROLL_LONG_FILENAMES`).
    pub long_name_max: usize,
}

impl Default for SdConfig {
    /// Autoreport on, long-name writing off (Marlin's defaults with `SDSUPPORT`).
    fn default() -> Self {
        Self {
            autoreport: true,
            long_name_write: false,
            long_name_max: 26,
        }
    }
}

/// An in-memory SD card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdCard {
    files: Vec<SdFile>,
    config: SdConfig,
}

impl SdCard {
    /// An empty card.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty card with these firmware options.
    pub fn with_config(config: SdConfig) -> Self {
        Self {
            files: Vec::new(),
            config,
        }
    }

    /// Whether the firmware can open `name`: an 8.3 name, or with `LFN_WRITE` a long name
    /// that fits its buffer.
    fn can_name(&self, name: &str) -> bool {
        is_short_name(name)
            || (self.config.long_name_write
                && (1..=self.config.long_name_max).contains(&name.chars().count())
                && !name.contains(['/', '\\']))
    }

    /// Every file, in creation order (the order `M20` lists them).
    pub fn files(&self) -> &[SdFile] {
        &self.files
    }

    /// The file with this short or long name (case-insensitive, as FAT).
    pub fn file(&self, name: &str) -> Option<&SdFile> {
        self.index(name).map(|i| &self.files[i])
    }

    /// Puts a file on the card (as if copied there by a PC). A name that is not a valid 8.3
    /// name becomes the long name and gets a `NAME~1.EXT` alias. Replaces a file of the same
    /// name. Returns the short name.
    pub fn insert(&mut self, name: &str, data: Vec<u8>) -> String {
        if let Some(i) = self.index(name) {
            self.files[i].data = data;
            return self.files[i].short_name.clone();
        }
        let (short_name, long_name) = if is_short_name(name) {
            (name.to_ascii_uppercase(), None)
        } else {
            (self.alias(name), Some(name.to_owned()))
        };
        self.files.push(SdFile {
            short_name: short_name.clone(),
            long_name,
            data,
        });
        short_name
    }

    /// Deletes a file; whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.index(name) {
            Some(i) => {
                self.files.remove(i);
                true
            }
            None => false,
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.files.iter().position(|f| {
            f.short_name.eq_ignore_ascii_case(name)
                || f.long_name
                    .as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case(name))
        })
    }

    /// Windows' `LONGNA~1.GCO` alias scheme: six characters of the base, `~n`, three of the
    /// extension, all upper case and stripped of characters 8.3 names cannot hold.
    fn alias(&self, long: &str) -> String {
        let clean = |s: &str, n: usize| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .take(n)
                .collect::<String>()
                .to_ascii_uppercase()
        };
        let (base, ext) = long.rsplit_once('.').unwrap_or((long, ""));
        let (base, ext) = (clean(base, 6), clean(ext, 3));
        (1..)
            .map(|n| {
                if ext.is_empty() {
                    format!("{base}~{n}")
                } else {
                    format!("{base}~{n}.{ext}")
                }
            })
            .find(|candidate| self.index(candidate).is_none())
            .expect("an unused alias exists")
    }
}

/// Whether `name` is a valid 8.3 name: 1–8 characters, optionally a dot and 1–3 more, from
/// the characters FAT short names allow.
pub(crate) fn is_short_name(name: &str) -> bool {
    let ok = |s: &str, max: usize| {
        (1..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~".contains(&b))
    };
    match name.split_once('.') {
        Some((base, ext)) => ok(base, 8) && ok(ext, 3),
        None => ok(name, 8),
    }
}

/// What the card is doing: the file being written and the file selected for printing.
#[derive(Debug, Clone, Default)]
pub(super) struct SdSession {
    /// `M28`: received numbered lines go to this file (its index), not to the planner.
    pub(super) saving: Option<String>,
    /// `M23`: the selected file (short name) and the byte position in it.
    pub(super) selected: Option<(String, usize)>,
    /// `M24` … `M25`: lines are read from the selected file.
    pub(super) printing: bool,
    /// `M27 S<n>`: the interval and when the next status report is due.
    pub(super) autoreport: Option<(Duration, Instant)>,
}

impl SdSession {
    /// The next command of the file being printed (comments stripped, empty lines skipped,
    /// like Marlin's `get_sdcard_commands`), or `None` at the end of the file.
    pub(super) fn next_command(&mut self, card: &SdCard) -> Option<String> {
        let (name, pos) = self.selected.as_mut()?;
        let data = &card.file(name)?.data;
        while *pos < data.len() {
            let end = data[*pos..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map_or(data.len(), |e| *pos + e);
            let raw = &data[*pos..end];
            *pos = (end + 1).min(data.len());
            let command = raw.split(|&b| b == b';').next().unwrap_or_default();
            let command = String::from_utf8_lossy(command).trim().to_owned();
            if !command.is_empty() {
                return Some(command);
            }
        }
        None
    }

    /// `SD printing byte a/b` or `Not SD printing` (`M27`).
    pub(super) fn status_line(&self, card: &SdCard) -> String {
        match &self.selected {
            Some((name, pos)) => {
                let size = card.file(name).map_or(0, |f| f.data.len());
                format!("SD printing byte {pos}/{size}")
            }
            None => "Not SD printing".to_owned(),
        }
    }
}

/// Marlin's `is_M29`: `M29` and `M29 …`, not `M290`.
pub(super) fn is_m29(text: &str) -> bool {
    text.find("M29")
        .is_some_and(|i| !text[i + 3..].starts_with(|c: char| c.is_ascii_digit()))
}

impl SdCard {
    /// `CardReader::write_command`: the command, then `\r\n`.
    pub(super) fn append_line(&mut self, name: &str, text: &str) {
        if let Some(i) = self.index(name) {
            let data = &mut self.files[i].data;
            data.extend_from_slice(text.as_bytes());
            data.extend_from_slice(b"\r\n");
        }
    }
}

impl SdSession {
    /// Runs an SD command (`M20`–`M30`, `M524`, `M1001`), writing its report to `out`.
    pub(super) fn command(
        &mut self,
        card: &mut SdCard,
        code: &str,
        text: &str,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        // String arguments (file names) are the rest of the line, as Marlin's `string_arg`.
        let arg = text
            .trim()
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest.trim());
        let number = |letter: char| {
            arg.split_ascii_whitespace()
                .find_map(|w| w.strip_prefix(letter)?.parse::<f64>().ok())
        };
        match code {
            "M20" => {
                let long = arg.split_ascii_whitespace().any(|w| w == "L");
                out.extend_from_slice(b"Begin file list\n");
                for f in card.files() {
                    let _ = write!(out, "{} {}", f.short_name, f.data.len());
                    if long {
                        let _ = write!(out, " {}", f.long_name.as_deref().unwrap_or(&f.short_name));
                    }
                    out.push(b'\n');
                }
                out.extend_from_slice(b"End file list\n");
            }
            "M21" => out.extend_from_slice(b"echo:SD card ok\n"),
            "M22" => {
                *self = Self::default();
                out.extend_from_slice(b"echo:SD card released\n");
            }
            "M23" => match card.file(arg).filter(|_| card.can_name(arg)) {
                Some(f) if !self.printing => {
                    let _ = writeln!(out, "File opened: {} Size: {}", f.short_name, f.data.len());
                    out.extend_from_slice(b"File selected\n");
                    self.selected = Some((f.short_name.clone(), 0));
                }
                _ => {
                    let _ = writeln!(out, "open failed, File: {arg}.");
                }
            },
            "M24" => self.printing = self.selected.is_some(),
            "M25" => self.printing = false,
            "M524" => {
                self.printing = false;
                self.selected = None;
            }
            "M26" => {
                if let (Some((name, pos)), Some(s)) = (self.selected.as_mut(), number('S')) {
                    let size = card.file(name).map_or(0, |f| f.data.len());
                    *pos = (s.max(0.0) as usize).min(size);
                }
            }
            "M27" => match number('S').filter(|_| card.config.autoreport) {
                Some(secs) => {
                    let every = Duration::from_secs(secs.clamp(0.0, 60.0) as u64);
                    self.autoreport = (!every.is_zero()).then(|| (every, now + every));
                }
                None => {
                    let _ = writeln!(out, "{}", self.status_line(card));
                }
            },
            "M28" => {
                if card.can_name(arg) {
                    card.remove(arg);
                    let short = card.insert(arg, Vec::new());
                    // Marlin echoes the name as given, upper-cased when it is a short one.
                    let shown = if is_short_name(arg) {
                        short.clone()
                    } else {
                        arg.to_owned()
                    };
                    let _ = writeln!(out, "Writing to file: {shown}");
                    self.saving = Some(short);
                } else {
                    let _ = writeln!(out, "open failed, File: {arg}.");
                }
            }
            "M30" => {
                if self
                    .selected
                    .as_ref()
                    .is_some_and(|(n, _)| card.file(arg).is_some_and(|f| &f.short_name == n))
                {
                    self.printing = false;
                    self.selected = None;
                }
                if card.can_name(arg) && card.remove(arg) {
                    let _ = writeln!(out, "File deleted:{arg}");
                } else {
                    let _ = writeln!(out, "Deletion failed, File: {arg}.");
                }
            }
            "M1001" => out.extend_from_slice(b"Done printing file\n"),
            // Outside a write `M29` only clears the (already clear) saving flag.
            "M29" => {}
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::{MoveTiming, SimConfig, SimPrinter};
    use crate::line::frame_numbered;

    fn printer() -> (SimPrinter, Instant) {
        let mut p = SimPrinter::new(SimConfig {
            moves: MoveTiming::Instant,
            homing_time: Duration::from_millis(100),
            ..SimConfig::default()
        });
        let mut banner = Vec::new();
        p.poll_transmit(&mut banner);
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
        let now = Instant::now();
        (p, now)
    }

    /// Sends numbered lines from `first` and returns everything the printer answered.
    fn talk(p: &mut SimPrinter, now: &mut Instant, first: i64, lines: &[&str]) -> String {
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let mut bytes = Vec::new();
            frame_numbered(first + i as i64, line, &mut bytes);
            p.handle_rx(*now, &bytes);
            for _ in 0..100 {
                *now += Duration::from_millis(10);
                p.handle_timeout(*now);
            }
            p.poll_transmit(&mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn listing_with_short_and_long_names() {
        let (mut p, mut now) = printer();
        p.sd_card_mut().insert("cube.gco", b"G28\n".to_vec());
        p.sd_card_mut()
            .insert("A Long Benchy Name.gcode", b"G1 X1\n".to_vec());
        p.sd_card_mut()
            .insert("A Long Benchy Other.gcode", Vec::new());
        let out = talk(&mut p, &mut now, 1, &["M20", "M20 L"]);
        assert_eq!(
            out,
            "Begin file list\nCUBE.GCO 4\nALONGB~1.GCO 6\nALONGB~2.GCO 0\nEnd file list\nok\n\
             Begin file list\nCUBE.GCO 4 CUBE.GCO\nALONGB~1.GCO 6 A Long Benchy Name.gcode\n\
             ALONGB~2.GCO 0 A Long Benchy Other.gcode\nEnd file list\nok\n"
        );
    }

    #[test]
    fn select_print_status_and_delete() {
        let (mut p, mut now) = printer();
        p.sd_card_mut().insert(
            "A.GCO",
            b"; comment\nG28\n\nG1 X5 ; go\r\nM117 done\n".to_vec(),
        );
        let out = talk(
            &mut p,
            &mut now,
            1,
            &["M27", "M23 nothere.g", "M23 a.gco", "M27"],
        );
        assert_eq!(
            out,
            "Not SD printing\nok\nopen failed, File: nothere.g.\nok\n\
             File opened: A.GCO Size: 37\nFile selected\nok\nSD printing byte 0/37\nok\n"
        );
        let out = talk(&mut p, &mut now, 5, &["M24"]);
        assert_eq!(out, "ok\nDone printing file\n");
        let sd: Vec<&str> = p
            .ledger()
            .iter()
            .filter(|e| e.line.is_none())
            .map(|e| e.command.as_str())
            .collect();
        assert_eq!(sd, ["G28", "G1 X5", "M117 done", "M1001"]);
        assert!(!p.is_sd_printing());
        let out = talk(&mut p, &mut now, 6, &["M30 A.GCO", "M30 A.GCO"]);
        assert_eq!(
            out,
            "File deleted:A.GCO\nok\nDeletion failed, File: A.GCO.\nok\n"
        );
    }

    #[test]
    fn pause_and_set_position_of_an_sd_print() {
        let (mut p, mut now) = printer();
        let file: String = (0..50).map(|i| format!("G1 X{i}\n")).collect();
        p.sd_card_mut().insert("B.GCO", file.into_bytes());
        talk(&mut p, &mut now, 1, &["M23 B.GCO", "M26 S30"]);
        let out = talk(&mut p, &mut now, 3, &["M27"]);
        assert_eq!(out, "SD printing byte 30/340\nok\n");
        let executed = p.ledger().len();
        talk(&mut p, &mut now, 4, &["M24", "M25"]);
        // Byte 30 is the start of `G1 X5`.
        assert_eq!(p.ledger()[executed + 1].command, "G1 X5");
    }

    #[test]
    fn writing_stores_numbered_lines_and_refuses_unnumbered_ones() {
        let (mut p, mut now) = printer();
        let out = talk(&mut p, &mut now, 1, &["M28 new.gco", "G28", "G1 X1 Y2"]);
        assert_eq!(out, "Writing to file: NEW.GCO\nok\nok\nok\n");
        // An unnumbered line while writing: a line error, not stored.
        p.handle_rx(now, b"G1 X9\n");
        let mut out = Vec::new();
        p.poll_transmit(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Error:No Checksum with line number, Last Line: 3\nResend: 4\nok\n"
        );
        let out = talk(&mut p, &mut now, 4, &["M29"]);
        assert_eq!(out, "Done saving file.\nok\n");
        assert_eq!(
            p.sd_card().file("NEW.GCO").unwrap().data,
            b"G28\r\nG1 X1 Y2\r\n"
        );
        let ran: Vec<&str> = p.ledger().iter().map(|e| e.command.as_str()).collect();
        assert_eq!(ran, ["M28 new.gco"]);
        let out = talk(&mut p, &mut now, 5, &["M28 toolongname.gcode"]);
        assert_eq!(out, "open failed, File: toolongname.gcode.\nok\n");
    }

    fn printer_with(sd: super::SdConfig) -> (SimPrinter, Instant) {
        let (p, now) = printer();
        let mut config = p.config().clone();
        config.sd = sd;
        let mut p = SimPrinter::new(config);
        let mut banner = Vec::new();
        p.poll_transmit(&mut banner);
        (p, now)
    }

    #[test]
    fn without_autoreport_m27_s_reports_once() {
        for autoreport in [true, false] {
            let (mut p, mut now) = printer_with(super::SdConfig {
                autoreport,
                ..super::SdConfig::default()
            });
            let caps = talk(&mut p, &mut now, 1, &["M115"]);
            assert!(
                caps.contains(&format!(
                    "Cap:AUTOREPORT_SD_STATUS:{}",
                    u8::from(autoreport)
                )),
                "{caps}"
            );
            p.sd_card_mut().insert("A.GCO", b"G4 P1\n".repeat(4000));
            // `talk` lets 1 s pass after each line.
            let out = talk(
                &mut p,
                &mut now,
                2,
                &["M23 A.GCO", "M27 S1", "M117 a", "M117 b"],
            );
            let reports = out.matches("SD printing byte 0/24000").count();
            if autoreport {
                assert_eq!(reports, 2, "{out}");
            } else {
                // Answered once, like `M27`.
                assert_eq!(reports, 1, "{out}");
                assert!(out.contains("File selected\nok\nSD printing byte 0/24000\nok\nok\nok\n"));
            }
        }
    }

    #[test]
    fn long_names_need_lfn_write() {
        let long = "Benchy 0.2mm PLA.gcode";
        for lfn in [false, true] {
            let (mut p, mut now) = printer_with(super::SdConfig {
                long_name_write: lfn,
                ..super::SdConfig::default()
            });
            let caps = talk(&mut p, &mut now, 1, &["M115"]);
            assert!(caps.contains(&format!("Cap:LFN_WRITE:{}", u8::from(lfn))));
            let m28 = format!("M28 {long}");
            let out = talk(&mut p, &mut now, 2, &[m28.as_str(), "G28", "M29"]);
            if !lfn {
                // `G28` ran and `M29` found nothing to close.
                assert_eq!(out, format!("open failed, File: {long}.\nok\nok\nok\n"));
                assert!(p.sd_card().files().is_empty());
                // A long name copied onto the card by a PC is out of reach as well.
                p.sd_card_mut().insert(long, b"G28\n".to_vec());
                let m23 = format!("M23 {long}");
                let out = talk(&mut p, &mut now, 5, &[m23.as_str(), "M23 BENCHY~1.GCO"]);
                assert!(out.starts_with(&format!(
                    "open failed, File: {long}.\nok\nFile opened: BENCHY~1.GCO"
                )));
                continue;
            }
            assert_eq!(
                out,
                format!("Writing to file: {long}\nok\nok\nDone saving file.\nok\n")
            );
            let file = p.sd_card().file("BENCHY~1.GCO").unwrap();
            assert_eq!(file.long_name.as_deref(), Some(long));
            assert_eq!(file.data, b"G28\r\n");
            let m23 = format!("M23 {long}");
            let m30 = format!("M30 {long}");
            let out = talk(&mut p, &mut now, 5, &[m23.as_str(), m30.as_str()]);
            assert_eq!(
                out,
                format!("File opened: BENCHY~1.GCO Size: 5\nFile selected\nok\nFile deleted:{long}\nok\n")
            );
        }
    }

    #[test]
    fn short_names() {
        use super::is_short_name;
        for ok in ["A", "CUBE.GCO", "12345678.ABC", "A-B_C.G"] {
            assert!(is_short_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".GCO",
            "123456789.G",
            "A.GCOD",
            "A B.G",
            "A.B.C",
            "../X.G",
            "A.",
        ] {
            assert!(!is_short_name(bad), "{bad}");
        }
    }
}
