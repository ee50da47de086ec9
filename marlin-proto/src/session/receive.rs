//! Dispatching each received firmware line, and what the firmware reports about itself
//! (errors, `wait`, `start`, messages).

use super::*;

impl Session {
    pub(super) fn handle_line(&mut self, now: Instant, raw: &[u8]) {
        let parsed = FirmwareLine::parse(raw);
        if !matches!(
            parsed,
            FirmwareLine::Ok(_)
                | FirmwareLine::Empty
                | FirmwareLine::Temperatures(_)
                | FirmwareLine::Busy(_)
                | FirmwareLine::Unknown(_)
        ) {
            self.rx_understood = true;
            // Detect: a resend's `ok` comes right after it; any other line means none is coming.
            if self.resend_ok() == ResendOk::Detect
                && !matches!(
                    parsed,
                    FirmwareLine::Resend { .. } | FirmwareLine::Skip { .. }
                )
            {
                self.awaiting_resend_ok = None;
            }
        }
        if !matches!(
            parsed,
            FirmwareLine::Unknown(_) | FirmwareLine::Empty | FirmwareLine::Error(_)
        ) {
            self.split_error = None;
        }
        match parsed {
            FirmwareLine::Ok(ok) => self.on_ok(now, ok, raw),
            FirmwareLine::Resend { line } => self.on_resend(now, line),
            FirmwareLine::Error(e) => self.on_error(e, raw),
            FirmwareLine::Busy(reason) => {
                self.last_progress = now;
                self.events.push_back(Event::Busy(reason));
            }
            FirmwareLine::Wait => self.on_wait(now),
            FirmwareLine::Skip { .. } => self.on_skip(now),
            FirmwareLine::Start => self.on_start(),
            FirmwareLine::Temperatures(t) => self.events.push_back(Event::Temperatures(t)),
            FirmwareLine::Position(p) => {
                self.keep_response(raw);
                self.events.push_back(Event::Position(p));
            }
            FirmwareLine::Sd(s) => {
                self.keep_response(raw);
                self.events.push_back(Event::Sd(s));
            }
            FirmwareLine::FirmwareInfo(info) => {
                self.keep_response(raw);
                self.firmware.info = Some(info);
                self.identified_after_ok();
            }
            FirmwareLine::Capability { name, enabled } => {
                self.keep_response(raw);
                if name == "PAREN_COMMENTS" {
                    self.dialect.paren_comments = enabled;
                }
                self.firmware.capabilities.push((name, enabled));
            }
            FirmwareLine::Action(a) => self.events.push_back(Event::Action(a)),
            FirmwareLine::UnknownCommand(c) => {
                self.keep_response(raw);
                self.events
                    .push_back(Event::Warning(Warning::UnknownCommand(c)));
            }
            FirmwareLine::Fatal(text) if self.quirks().bang_is_fatal => {
                self.fail(FatalError::FirmwareFatal(text))
            }
            FirmwareLine::Fatal(text) => {
                // Klipper: an error for the running command; its `ok` follows.
                self.keep_response(raw);
                self.last_message = Some(text.clone());
                self.events.push_back(Event::Warning(Warning::FirmwareError(
                    FirmwareError::Other(text),
                )));
            }
            FirmwareLine::Echo(text) => {
                self.keep_response(raw);
                self.last_message = Some(text.clone());
                self.events.push_back(Event::Message(text));
            }
            FirmwareLine::Comment(text)
                if self.quirks().shutdown_message == Some(text.as_str()) =>
            {
                let reason = self.last_message.take();
                self.fail(FatalError::Halted { reason });
            }
            FirmwareLine::Comment(text) => self.events.push_back(Event::Message(text)),
            FirmwareLine::Empty => {}
            FirmwareLine::Unknown(text) => self.on_unknown(text),
        }
    }

    pub(super) fn keep_response(&mut self, raw: &[u8]) {
        if self.response.len() < 256 {
            self.response
                .push(String::from_utf8_lossy(raw.trim_ascii()).into_owned());
        }
    }

    pub(super) fn on_unknown(&mut self, text: String) {
        if let Some(heater) = self.split_error.take() {
            // Old Marlin: `Error:0` then `: Extruder switched off. MAXTEMP triggered !`.
            if let Some(cause) = text.strip_prefix(':') {
                self.fail(FatalError::Thermal {
                    cause: cause.trim().to_owned(),
                    heater,
                });
                return;
            }
        }
        if self.response.len() < 256 {
            self.response.push(text.clone());
        }
        self.events
            .push_back(Event::Warning(Warning::UnknownLine(text)));
    }

    pub(super) fn on_error(&mut self, e: FirmwareError, raw: &[u8]) {
        match e {
            FirmwareError::Halted => {
                let reason = self.last_message.take();
                self.fail(FatalError::Halted { reason });
            }
            FirmwareError::Stopped => self.fail(FatalError::Stopped),
            FirmwareError::Fatal(text) => self.fail(FatalError::FirmwareFatal(text)),
            FirmwareError::Thermal { cause, heater } => {
                self.fail(FatalError::Thermal { cause, heater })
            }
            e if e.is_line_error() => self.last_error = Some(e),
            FirmwareError::Other(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
                self.split_error = Some(text);
            }
            e => {
                self.keep_response(raw);
                self.last_message = Some(e.to_string());
                self.events
                    .push_back(Event::Warning(Warning::FirmwareError(e)));
            }
        }
    }

    pub(super) fn on_start(&mut self) {
        match self.phase {
            Phase::Failed => {}
            Phase::Connecting | Phase::Identifying => {
                self.phase = Phase::Connecting;
                self.hello_due = true;
            }
            Phase::Ready => {
                let unfinished = self
                    .in_flight
                    .iter()
                    .filter(|f| f.kind == Kind::Command)
                    .count()
                    + self.queue.len()
                    + self
                        .resend_cursor
                        .map_or(0, |c| (self.rewind_end() - c) as usize);
                if unfinished > 0 {
                    self.fail(FatalError::FirmwareReset {
                        last_acknowledged: self.last_acked,
                        unfinished,
                    });
                } else {
                    self.phase = Phase::Connecting;
                    self.hello_due = true;
                    self.hello_attempts = 0;
                    self.firmware = Firmware::default();
                    // Autoreports stopped with the reset; they are re-armed once connected.
                    self.temperatures = TemperatureReporting::Off;
                    self.next_temperature_poll = None;
                    self.events.push_back(Event::FirmwareReset);
                }
            }
        }
    }
}
