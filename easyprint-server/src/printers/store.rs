//! Printers changed at runtime, persisted in the server database and merged over the
//! configuration file's at start-up: a row replaces the configured printer with its id (or adds
//! one), a removed row hides it.

use rusqlite::{params, Connection};

use crate::config::{is_valid_printer_id, PrinterConfig};
use crate::db::unix_now;
use crate::error::ApiError;

/// Baud rates accepted for a serial port.
pub const BAUD_RATES: std::ops::RangeInclusive<u32> = 1200..=4_000_000;

/// Checks a printer an administrator wants to add or change, naming the bad field.
pub fn validate(printer: &PrinterConfig) -> Result<(), ApiError> {
    let bad = |field: &str, message: &str| {
        ApiError::bad_request("invalid_printer", format!("{field}: {message}"))
    };
    if !is_valid_printer_id(&printer.id) {
        return Err(bad("id", "must be 1 to 64 ASCII letters, digits, - or _"));
    }
    if let Some(name) = &printer.name {
        if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(bad(
                "name",
                "must be 1 to 100 bytes without control characters",
            ));
        }
    }
    // Only a device node is ever opened: never a file an administrator mistyped.
    let device = printer.port.starts_with("/dev/")
        && !printer
            .port
            .split('/')
            .any(|part| part == ".." || part == ".")
        && printer.port.len() <= 256
        && !printer.port.chars().any(char::is_control);
    if printer.port != "virtual" && !device {
        return Err(bad(
            "port",
            "must be \"virtual\" or a device path under /dev/",
        ));
    }
    if !BAUD_RATES.contains(&printer.baudrate) {
        return Err(bad("baudrate", "must be between 1200 and 4000000"));
    }
    let sim = &printer.simulation;
    let heating_ok = sim.heating_rate.is_finite() && sim.heating_rate > 0.0;
    let homing_ok = (0.0..=60.0).contains(&sim.homing_secs);
    if !heating_ok || !homing_ok || sim.link_baud < 1200 {
        return Err(bad(
            "simulation",
            "heating_rate must be positive, homing_secs 0 to 60, link_baud at least 1200",
        ));
    }
    if let Err((field, reason)) = printer.host_scripts.to_marlin() {
        return Err(bad(&format!("host_scripts.{field}"), &reason));
    }
    Ok(())
}

/// One stored change.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredPrinter {
    /// Added or changed: this configuration.
    Set(Box<PrinterConfig>),
    /// A configured printer removed.
    Removed(String),
}

/// Every stored change, oldest first.
pub fn load(conn: &Connection) -> Result<Vec<StoredPrinter>, ApiError> {
    let mut stmt = conn.prepare("SELECT id, settings, removed FROM printers ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, bool>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, settings, removed) = row?;
        if removed {
            out.push(StoredPrinter::Removed(id));
            continue;
        }
        match settings
            .as_deref()
            .map(serde_json::from_str::<PrinterConfig>)
        {
            Some(Ok(config)) => out.push(StoredPrinter::Set(Box::new(config))),
            // A row this version cannot read is skipped, not fatal: the server still starts.
            other => tracing::warn!(printer = %id, ?other, "unreadable stored printer skipped"),
        }
    }
    Ok(out)
}

/// Stores `printer` (replacing any earlier change to it).
pub fn save(conn: &Connection, printer: &PrinterConfig) -> Result<(), ApiError> {
    let settings = serde_json::to_string(printer).map_err(ApiError::internal)?;
    write(conn, &printer.id, Some(&settings), false)
}

/// Forgets a runtime printer, or hides a configured one (`configured`).
pub fn remove(conn: &Connection, id: &str, configured: bool) -> Result<(), ApiError> {
    if configured {
        write(conn, id, None, true)
    } else {
        conn.execute("DELETE FROM printers WHERE id = ?1", [id])?;
        Ok(())
    }
}

fn write(
    conn: &Connection,
    id: &str,
    settings: Option<&str>,
    removed: bool,
) -> Result<(), ApiError> {
    // A new sequence number keeps the merge order: configured first, then as added.
    conn.execute(
        "INSERT INTO printers (id, settings, removed, seq, updated_at)
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM printers), ?4)
         ON CONFLICT (id) DO UPDATE SET settings = ?2, removed = ?3, updated_at = ?4",
        params![id, settings, removed, unix_now()],
    )?;
    Ok(())
}

/// The configuration file's printers with the stored changes applied.
pub fn merge(configured: &[PrinterConfig], stored: Vec<StoredPrinter>) -> Vec<PrinterConfig> {
    let mut printers = configured.to_vec();
    for change in stored {
        match change {
            StoredPrinter::Removed(id) => printers.retain(|p| p.id != id),
            StoredPrinter::Set(config) => match printers.iter_mut().find(|p| p.id == config.id) {
                Some(slot) => *slot = *config,
                None => printers.push(*config),
            },
        }
    }
    printers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimulationConfig;

    fn printer(id: &str, port: &str) -> PrinterConfig {
        PrinterConfig {
            port: port.to_owned(),
            ..PrinterConfig::simulated(id, SimulationConfig::default())
        }
    }

    #[test]
    fn stored_changes_merge_over_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(&dir.path().join("db.sqlite")).unwrap();
        let configured = [printer("a", "/dev/ttyUSB0"), printer("b", "/dev/ttyUSB1")];
        db.call_blocking(|c| {
            save(c, &printer("c", "virtual"))?;
            save(c, &printer("a", "/dev/ttyACM0"))?;
            remove(c, "b", true)?;
            save(c, &printer("d", "virtual"))?;
            remove(c, "d", false)?;
            Ok(())
        })
        .unwrap();
        let stored = db.call_blocking(|c| load(c)).unwrap();
        let merged = merge(&configured, stored);
        let summary: Vec<(&str, &str)> = merged
            .iter()
            .map(|p| (p.id.as_str(), p.port.as_str()))
            .collect();
        assert_eq!(summary, [("a", "/dev/ttyACM0"), ("c", "virtual")]);
    }

    #[test]
    fn validation_names_the_field() {
        for (p, field) in [
            (printer("bad id", "virtual"), "id"),
            (printer("p", "/etc/passwd"), "port"),
            (printer("p", "/dev/../etc/passwd"), "port"),
            (printer("p", "relative/tty"), "port"),
            (
                PrinterConfig {
                    baudrate: 7,
                    ..printer("p", "virtual")
                },
                "baudrate",
            ),
            (
                PrinterConfig {
                    name: Some("a\nb".into()),
                    ..printer("p", "virtual")
                },
                "name",
            ),
        ] {
            let err = validate(&p).unwrap_err();
            assert!(err.to_string().starts_with(field), "{err}");
        }
        assert!(validate(&printer("p", "/dev/serial/by-id/usb-1a86")).is_ok());
        assert!(validate(&printer("p", "virtual")).is_ok());
    }
}
