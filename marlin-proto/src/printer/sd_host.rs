//! What the I/O thread does for the SD card besides uploads (sans-IO, like [`JobControl`]):
//! polls `M27` while the card prints on a firmware without SD autoreport, and collects `M20 L`
//! listings entry by entry, so a card with any number of files costs bounded memory.
//!
//! [`JobControl`]: super::JobControl

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::sd::{parse_entry, SdEntry, SdError};
use super::CommandError;
use crate::response::SdStatus;
use crate::session::{CommandId, Event, Session, Warning};

/// SD options of a [`Printer`](super::Printer) (see [`PrinterConfig::sd`](super::PrinterConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdOptions {
    /// How often the firmware reports an SD print's progress: the `M27 S<secs>` autoreport
    /// interval (whole seconds, at least 1) when the firmware has `AUTOREPORT_SD_STATUS`,
    /// else the interval of the host's `M27` polls.
    pub status_interval: Duration,
    /// Most entries [`Printer::sd_list`](super::Printer::sd_list) keeps; the rest are counted
    /// and the listing says it was truncated.
    pub list_max_entries: usize,
}

impl Default for SdOptions {
    /// Progress every 2 s; up to 1000 entries.
    fn default() -> Self {
        Self {
            status_interval: Duration::from_secs(2),
            list_max_entries: 1000,
        }
    }
}

/// A listing of the SD card (`M20 L`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdListing {
    /// The first entries, in the firmware's order, at most
    /// [`SdOptions::list_max_entries`].
    pub entries: Vec<SdEntry>,
    /// How many entries the firmware listed.
    pub total: u64,
    /// Whether entries were left out (`total` is larger than `entries.len()`).
    pub truncated: bool,
}

type ListReply = oneshot::Sender<Result<SdListing, SdError>>;

/// A listing being received.
struct Listing {
    id: CommandId,
    inside: bool,
    max: usize,
    listing: SdListing,
    reply: ListReply,
}

/// `M27` polls and `M20 L` listings for the I/O thread.
pub(super) struct SdHost {
    options: SdOptions,
    /// When the next `M27` poll is due, while polling.
    next_poll: Option<Instant>,
    /// The poll whose answer has not come yet (never two at once).
    poll_out: Option<CommandId>,
    listing: Option<Listing>,
}

impl SdHost {
    pub(super) fn new(options: SdOptions) -> Self {
        Self {
            options,
            next_poll: None,
            poll_out: None,
            listing: None,
        }
    }

    /// Starts polling `M27` every [`SdOptions::status_interval`] until the firmware says the
    /// print is done or that it is not SD printing.
    pub(super) fn start_polling(&mut self, now: Instant) {
        self.next_poll = Some(now + self.options.status_interval);
    }

    /// Stops polling (an upload starts: a poll would be written to the file).
    pub(super) fn stop_polling(&mut self) {
        self.next_poll = None;
    }

    /// The next poll's deadline.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.next_poll.filter(|_| self.poll_out.is_none())
    }

    /// Sends the poll when due.
    pub(super) fn handle_timeout(&mut self, now: Instant, session: &mut Session) {
        let Some(due) = self.poll_timeout() else {
            return;
        };
        if now < due {
            return;
        }
        match session.send("M27") {
            Ok(Some(id)) => self.poll_out = Some(id),
            // A failed session ends polling with everything else.
            _ => self.next_poll = None,
        }
        // Keep the cadence from now: a late wake-up polls once, not in a burst.
        self.next_poll = self.next_poll.map(|_| now + self.options.status_interval);
    }

    /// Sends `M20 L` and collects the answer; at most one listing at a time.
    pub(super) fn list(&mut self, session: &mut Session, reply: ListReply) {
        if self.listing.is_some() {
            let _ = reply.send(Err(CommandError::Busy.into()));
            return;
        }
        match session.send("M20 L") {
            Ok(Some(id)) => {
                self.listing = Some(Listing {
                    id,
                    inside: false,
                    max: self.options.list_max_entries,
                    listing: SdListing::default(),
                    reply,
                })
            }
            Ok(None) => {
                let _ = reply.send(Err(CommandError::Abandoned.into()));
            }
            Err(e) => {
                let _ = reply.send(Err(CommandError::from(e).into()));
            }
        }
    }

    /// Acts on a session event; returns whether it was the answer to one of its commands.
    pub(super) fn handle_event(&mut self, event: &Event) -> bool {
        match event {
            Event::Sd(SdStatus::DonePrinting) => self.next_poll = None,
            Event::Sd(SdStatus::ListBegin) => {
                if let Some(l) = &mut self.listing {
                    l.inside = true;
                }
            }
            Event::Sd(SdStatus::ListEnd) => {
                if let Some(l) = &mut self.listing {
                    l.inside = false;
                }
            }
            // Entries are lines the protocol does not know.
            Event::Warning(Warning::UnknownLine(text)) => {
                if let Some(l) = self.listing.as_mut().filter(|l| l.inside) {
                    if let Some(entry) = parse_entry(text) {
                        l.listing.total += 1;
                        if l.listing.entries.len() < l.max {
                            l.listing.entries.push(entry);
                        } else {
                            l.listing.truncated = true;
                        }
                    }
                }
            }
            Event::Completed { id, response, .. } => {
                if self.poll_out == Some(*id) {
                    self.poll_out = None;
                    let not_printing = super::sd::answered(response, |s| {
                        matches!(s, SdStatus::NotPrinting | SdStatus::DonePrinting)
                    });
                    if not_printing {
                        self.next_poll = None;
                    }
                    return true;
                }
                if self.listing.as_ref().is_some_and(|l| l.id == *id) {
                    if let Some(l) = self.listing.take() {
                        let _ = l.reply.send(Ok(l.listing));
                    }
                    return true;
                }
            }
            Event::Abandoned(id) => {
                if self.poll_out == Some(*id) {
                    self.poll_out = None;
                    return true;
                }
                if self.listing.as_ref().is_some_and(|l| l.id == *id) {
                    if let Some(l) = self.listing.take() {
                        let _ = l.reply.send(Err(CommandError::Abandoned.into()));
                    }
                    return true;
                }
            }
            Event::Fatal(_) => {
                self.next_poll = None;
                self.poll_out = None;
                if let Some(l) = self.listing.take() {
                    let _ = l.reply.send(Err(CommandError::Abandoned.into()));
                }
            }
            _ => {}
        }
        false
    }
}
