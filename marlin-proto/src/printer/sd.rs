//! The SD card over serial: names, listings, and uploads (`M28` … `M29`).
//!
//! While the firmware writes to a file, every numbered line it receives is stored instead of
//! run, so during an upload the session sends no lines of its own
//! ([`Session::set_host_commands`]) and the I/O thread holds back the caller's commands.

use std::collections::HashSet;

use tokio::sync::oneshot;

use super::CommandError;
use crate::line::{Dialect, Payload};
use crate::response::{FirmwareLine, SdStatus};
use crate::session::{CommandId, Event, Session};

/// Why an SD operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdError {
    /// The name is not a valid 8.3 name.
    #[error("invalid sd file name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The name is not an 8.3 name and the firmware cannot take long ones: it does not report
    /// `Cap:LFN_WRITE` (Marlin's `LONG_FILENAME_WRITE_SUPPORT`).
    #[error("the printer takes 8.3 file names only (no LONG_FILENAME_WRITE_SUPPORT): {name:?}")]
    LongNameUnsupported {
        /// The name given.
        name: String,
    },
    /// The firmware could not open (or create) the file.
    #[error("the printer could not open {name} on its sd card")]
    OpenFailed {
        /// The name.
        name: String,
    },
    /// The firmware could not delete the file.
    #[error("the printer could not delete {name} from its sd card")]
    DeleteFailed {
        /// The name.
        name: String,
    },
    /// A line of the file cannot be uploaded; the partial file was closed and deleted.
    #[error("line {line} of the upload: {reason}")]
    InvalidLine {
        /// 1-based line number in the uploaded lines.
        line: u64,
        /// Why.
        reason: String,
    },
    /// The firmware did not confirm the file was saved.
    #[error("the printer did not confirm saving {name}")]
    NotSaved {
        /// The name.
        name: String,
    },
    /// The firmware's answer was not what the command produces.
    #[error("unexpected answer to {command}: {answer:?}")]
    UnexpectedAnswer {
        /// The command sent.
        command: String,
        /// The response lines.
        answer: Vec<String>,
    },
    /// Sending the command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// A file the firmware listed (`M20 L`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdEntry {
    /// The 8.3 name (what [`Printer::sd_print`](super::Printer::sd_print) takes).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The long name, when the firmware reports one.
    pub long_name: Option<String>,
}

/// Progress of an SD print (from `M27` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdProgress {
    /// Bytes of the file done.
    pub done: u64,
    /// File size.
    pub total: u64,
    /// Whether the firmware reported progress since the file was selected (and has not
    /// finished).
    pub printing: bool,
    /// `Done printing file` came.
    pub finished: bool,
}

/// Progress and result of an upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadProgress {
    /// Lines handed to the session (empty and comment-only lines are skipped).
    pub sent: u64,
    /// Lines the firmware acknowledged (stored).
    pub acknowledged: u64,
    /// Bytes the file holds for the acknowledged lines (each line's stored text and `\r\n`).
    pub bytes: u64,
    /// Total lines given, when known up front.
    pub total: Option<u64>,
}

/// Checks an 8.3 name and returns it upper-cased (FAT short names are).
///
/// ```
/// use easyprint_marlin::printer::sd_name;
/// assert_eq!(sd_name("cube.gco").unwrap(), "CUBE.GCO");
/// assert!(sd_name("../x.gco").is_err());
/// assert!(sd_name("averylongname.gcode").is_err());
/// ```
pub fn sd_name(name: &str) -> Result<String, SdError> {
    let bad = |reason| SdError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(bad("paths and `..` are not allowed"));
    }
    let allowed = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'-@^_`{}~".contains(&b))
    };
    let (base, ext) = name.split_once('.').unwrap_or((name, ""));
    if base.is_empty() || base.len() > 8 {
        return Err(bad("the name before the dot must have 1 to 8 characters"));
    }
    if ext.len() > 3 || (name.contains('.') && ext.is_empty()) {
        return Err(bad("the extension must have 1 to 3 characters"));
    }
    if !allowed(base) || !allowed(ext) {
        return Err(bad("only letters, digits and !#$%&'-@^_`{}~ are allowed"));
    }
    Ok(name.to_ascii_uppercase())
}

/// Longest long name sent to a firmware with `LFN_WRITE`: Marlin's `LONG_FILENAME_LENGTH`
/// with its default two VFAT entries, less the terminator.
pub const SD_LONG_NAME_MAX: usize = 26;

/// Checks a file name for a firmware: an 8.3 name (upper-cased, see [`sd_name`]), or, when
/// `long_names` (the firmware reports `Cap:LFN_WRITE`), a long name of up to
/// [`SD_LONG_NAME_MAX`] printable ASCII characters, kept as given.
///
/// ```
/// use easyprint_marlin::printer::{sd_file_name, SdError};
/// assert_eq!(sd_file_name("cube.gco", false).unwrap(), "CUBE.GCO");
/// assert_eq!(sd_file_name("Benchy 0.2mm.gcode", true).unwrap(), "Benchy 0.2mm.gcode");
/// assert!(matches!(
///     sd_file_name("Benchy 0.2mm.gcode", false),
///     Err(SdError::LongNameUnsupported { .. })
/// ));
/// ```
pub fn sd_file_name(name: &str, long_names: bool) -> Result<String, SdError> {
    let short = sd_name(name);
    if short.is_ok() {
        return short;
    }
    let bad = |reason| {
        Err(SdError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return bad("paths and `..` are not allowed");
    }
    if name.trim() != name || name.is_empty() {
        return bad("it is empty or starts or ends with a space");
    }
    if !name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return bad("only printable ASCII characters are allowed");
    }
    if name.contains([';', '*', '(', ')', '"']) {
        return bad("`;`, `*`, `(`, `)` and `\"` would be read as a comment or a checksum");
    }
    if name.len() > SD_LONG_NAME_MAX {
        return bad("a long name has at most 26 characters (Marlin's LONG_FILENAME_LENGTH)");
    }
    if !long_names {
        return Err(SdError::LongNameUnsupported {
            name: name.to_owned(),
        });
    }
    Ok(name.to_owned())
}

/// Parses one `M20 L` entry: `<8.3 name> <size>[ <long name>]`.
pub(super) fn parse_entry(line: &str) -> Option<SdEntry> {
    let mut parts = line.trim().splitn(3, ' ');
    let (name, size) = (parts.next()?, parts.next()?);
    Some(SdEntry {
        name: name.to_owned(),
        size: size.parse().ok()?,
        long_name: parts
            .next()
            .map(str::trim)
            .filter(|l| *l != name)
            .map(str::to_owned),
    })
}

/// Whether any response line is this SD status.
pub(super) fn answered(response: &[String], want: impl Fn(&SdStatus) -> bool) -> bool {
    response
        .iter()
        .any(|l| matches!(FirmwareLine::parse(l.as_bytes()), FirmwareLine::Sd(s) if want(&s)))
}

type Lines = Box<dyn Iterator<Item = String> + Send>;
type Reply = oneshot::Sender<Result<UploadProgress, SdError>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `M28` sent; no file line goes out before it confirmed `Writing to file`.
    Opening(CommandId),
    Writing,
    /// `M29` sent.
    Closing(CommandId),
}

/// An upload driven by the I/O thread.
pub(super) struct Upload {
    name: String,
    lines: Lines,
    read: u64,
    phase: Phase,
    outstanding: HashSet<CommandId>,
    /// Bytes of each outstanding line as stored.
    sizes: std::collections::HashMap<CommandId, u64>,
    progress: UploadProgress,
    reply: Option<Reply>,
    /// The firmware said what the phase's command answers (`Writing to file`, `Done saving
    /// file.`), whichever command's response the line was counted in: when the command's
    /// `ok` was lost, the session learns it ran from a later line's resend request, and the
    /// line is not in its response.
    confirmed: bool,
}

/// Lines kept queued ahead of the flow-control window.
const LOOKAHEAD: usize = 16;

impl Upload {
    /// Starts an upload: the session stops writing lines of its own and `M28` goes out.
    pub(super) fn start(
        session: &mut Session,
        name: String,
        lines: Lines,
        total: Option<u64>,
        reply: Reply,
    ) -> Option<Self> {
        if let Err(e) = upload_name(&name) {
            let _ = reply.send(Err(e));
            return None;
        }
        session.set_host_commands(false);
        let m28 = match session.send(&format!("M28 {name}")) {
            Ok(Some(id)) => id,
            other => {
                session.set_host_commands(true);
                let err = match other {
                    Err(e) => CommandError::from(e).into(),
                    // `M28 <name>` is never empty; refuse rather than assume.
                    _ => SdError::OpenFailed { name },
                };
                let _ = reply.send(Err(err));
                return None;
            }
        };
        Some(Self {
            name,
            lines,
            read: 0,
            phase: Phase::Opening(m28),
            outstanding: HashSet::new(),
            sizes: Default::default(),
            progress: UploadProgress {
                total,
                ..UploadProgress::default()
            },
            reply: Some(reply),
            confirmed: false,
        })
    }

    /// The progress so far.
    pub(super) fn progress(&self) -> UploadProgress {
        self.progress
    }

    /// Queues file lines while writing; `M29` after the last.
    pub(super) fn top_up(&mut self, session: &mut Session) {
        if self.phase != Phase::Writing {
            return;
        }
        let dialect = Dialect {
            paren_comments: session.firmware().has("PAREN_COMMENTS"),
        };
        while session.queued_len() < LOOKAHEAD {
            let Some(line) = self.lines.next() else {
                self.close(session);
                return;
            };
            self.read += 1;
            let payload = match Payload::new(&line, dialect) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => return self.abort(session, e.to_string()),
            };
            if is_m29(payload.as_str()) {
                return self.abort(session, "it contains M29, which ends the upload".into());
            }
            match session.send(payload.as_str()) {
                Ok(Some(id)) => {
                    self.outstanding.insert(id);
                    self.sizes.insert(id, payload.len() as u64 + 2);
                    self.progress.sent += 1;
                }
                Ok(None) => {}
                Err(e) => return self.abort(session, e.to_string()),
            }
        }
    }

    fn close(&mut self, session: &mut Session) {
        match session.send("M29") {
            Ok(Some(id)) => {
                self.phase = Phase::Closing(id);
                self.confirmed = false;
            }
            _ => self.finish(session, Err(CommandError::Abandoned.into())),
        }
    }

    /// Closes and deletes the partial file, and reports why.
    fn abort(&mut self, session: &mut Session, reason: String) {
        let _ = session.send("M29");
        let _ = session.send(&format!("M30 {}", self.name));
        let line = self.read;
        self.finish(session, Err(SdError::InvalidLine { line, reason }));
    }

    fn finish(&mut self, session: &mut Session, result: Result<UploadProgress, SdError>) {
        session.set_host_commands(true);
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }

    /// Whether the upload is over (its result was sent).
    pub(super) fn is_done(&self) -> bool {
        self.reply.is_none()
    }

    /// Acts on a session event; returns whether it concerned the upload's commands.
    pub(super) fn handle_event(&mut self, event: &Event, session: &mut Session) -> bool {
        match event {
            Event::Completed { id, response, .. } => {
                if self.outstanding.remove(id) {
                    self.progress.acknowledged += 1;
                    self.progress.bytes += self.sizes.remove(id).unwrap_or(0);
                    return true;
                }
                match self.phase {
                    Phase::Opening(m28) if m28 == *id => {
                        let writing = |s: &SdStatus| matches!(s, SdStatus::Writing { .. });
                        if self.confirmed || answered(response, writing) {
                            self.phase = Phase::Writing;
                        } else {
                            let name = self.name.clone();
                            self.finish(session, Err(SdError::OpenFailed { name }));
                        }
                        true
                    }
                    Phase::Closing(m29) if m29 == *id => {
                        let saved = |s: &SdStatus| *s == SdStatus::DoneSaving;
                        let result = if self.confirmed || answered(response, saved) {
                            Ok(self.progress)
                        } else {
                            Err(SdError::NotSaved {
                                name: self.name.clone(),
                            })
                        };
                        self.finish(session, result);
                        true
                    }
                    _ => false,
                }
            }
            Event::Sd(status) => {
                self.confirmed |= match self.phase {
                    Phase::Opening(_) => matches!(status, SdStatus::Writing { .. }),
                    Phase::Closing(_) => *status == SdStatus::DoneSaving,
                    Phase::Writing => false,
                };
                // Others may want it too (status, events).
                false
            }
            Event::Fatal(_) => {
                self.finish(session, Err(CommandError::Abandoned.into()));
                false
            }
            Event::Abandoned(id) => {
                let mine = self.outstanding.remove(id)
                    || matches!(self.phase, Phase::Opening(i) | Phase::Closing(i) if i == *id);
                if mine {
                    self.finish(session, Err(CommandError::Abandoned.into()));
                }
                mine
            }
            _ => false,
        }
    }
}

/// Refuses a name `M28` would not take as a name: Marlin built with `BINARY_FILE_TRANSFER`
/// reads a leading `B` and digit as its binary-transfer switch (`M28 B1 name`: the binary
/// protocol, which the host does not speak; `B0` is dropped from the name) and one built with
/// `DMA_FILE_TRANSFER` a leading `D` and digits as a transfer size.
fn upload_name(name: &str) -> Result<(), SdError> {
    let mut bytes = name.bytes();
    let flag = matches!(bytes.next(), Some(b'B' | b'D'))
        && bytes.next().is_some_and(|b| b.is_ascii_digit());
    if flag {
        return Err(SdError::InvalidName {
            name: name.to_owned(),
            reason: "M28 reads a leading `B` or `D` and a digit as a transfer-mode switch \
                     (binary transfer, `M28 B1`, is not supported)",
        });
    }
    Ok(())
}

/// Marlin's `is_M29`: `M29` not followed by a digit anywhere in the line.
fn is_m29(text: &str) -> bool {
    text.match_indices("M29")
        .any(|(i, _)| !text[i + 3..].starts_with(|c: char| c.is_ascii_digit()))
}
