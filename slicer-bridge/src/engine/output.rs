//! Checking the engine's G-code and replacing the CLI's placeholder header with true figures.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};

/// What a quick scan of the G-code found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GcodeFacts {
    /// `;LAYER_COUNT:` value.
    pub layer_count: u64,
    /// Number of `;LAYER:` markers.
    pub layer_markers: u64,
    /// Last `;TIME_ELAPSED:` (total print time, s).
    pub last_time_elapsed: Option<f64>,
    /// Whether the end G-code ran (`;End of Gcode` marker or anything after the last layer).
    pub ends_cleanly: bool,
}

/// Scan G-code comments for layer markers and timing (streaming, bounded memory).
pub fn scan(reader: impl Read) -> std::io::Result<GcodeFacts> {
    let mut facts = GcodeFacts::default();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.first() != Some(&b';') {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if let Some(n) = text.strip_prefix(";LAYER_COUNT:") {
            facts.layer_count = n.trim().parse().unwrap_or(0);
        } else if text.starts_with(";LAYER:") {
            facts.layer_markers += 1;
        } else if let Some(t) = text.strip_prefix(";TIME_ELAPSED:") {
            facts.last_time_elapsed = t.trim().parse().ok();
        } else if text.starts_with(";End of Gcode") {
            facts.ends_cleanly = true;
        }
    }
    Ok(facts)
}

/// The key of a header comment: `;TIME:6666` → `;TIME:`, `;Filament used: 0m` → `;Filament used:`.
fn header_key(line: &str) -> Option<&str> {
    let i = line.find(':')?;
    Some(&line[..=i])
}

/// Copy G-code from `src` to `dst`, replacing each header comment (`;KEY:value` before the
/// first command) whose key appears in `true_header` by the true line. Returns how many lines
/// were replaced.
pub fn rewrite_header(
    src: impl Read,
    dst: impl Write,
    true_header: &[String],
) -> std::io::Result<usize> {
    let mut reader = BufReader::with_capacity(1 << 16, src);
    let mut writer = BufWriter::with_capacity(1 << 16, dst);
    let mut replaced = 0;
    let mut line = Vec::new();
    // Header: leading comment and blank lines.
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            writer.flush()?;
            return Ok(replaced);
        }
        let is_header = line.first() == Some(&b';') || line.iter().all(u8::is_ascii_whitespace);
        if !is_header {
            writer.write_all(&line)?;
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_end();
        let replacement = header_key(trimmed).and_then(|k| {
            true_header
                .iter()
                .find(|t| header_key(t) == Some(k) && t.as_str() != trimmed)
        });
        match replacement {
            Some(r) => {
                writer.write_all(r.as_bytes())?;
                writer.write_all(b"\n")?;
                replaced += 1;
            }
            None => writer.write_all(&line)?,
        }
    }
    std::io::copy(&mut reader, &mut writer)?;
    writer.flush()?;
    Ok(replaced)
}

/// Parse a number from a header line (`;Filament used: 1.89346m` → 1.89346).
pub fn header_number(header: &[String], key: &str) -> Option<f64> {
    let line = header.iter().find(|l| l.starts_with(key))?;
    let v = line[key.len()..].trim().trim_end_matches('m');
    // Multi-extruder headers list "a, b": take the sum.
    v.split(',').map(|p| p.trim().parse::<f64>().ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACEHOLDER: &str = ";FLAVOR:Marlin\n;TIME:6666\n;Filament used: 0m\n;Layer height: 0.3\n;MINX:2.14748e+06\n\n;Generated with Cura_SteamEngine 4.13.0\nM140 S60\n;LAYER_COUNT:2\n;LAYER:0\nG1 X1 E1\n;TIME_ELAPSED:10.5\n;LAYER:1\n;TIME_ELAPSED:20.25\n;End of Gcode\n;MINX:keep\n";

    #[test]
    fn header_is_replaced_and_body_kept() {
        let truth: Vec<String> = [
            ";FLAVOR:Marlin",
            ";TIME:1144",
            ";Filament used: 2.12153m",
            ";MINX:92.2",
        ]
        .map(String::from)
        .to_vec();
        let mut out = Vec::new();
        let n = rewrite_header(PLACEHOLDER.as_bytes(), &mut out, &truth).unwrap();
        assert_eq!(n, 3);
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with(";FLAVOR:Marlin\n;TIME:1144\n;Filament used: 2.12153m\n;Layer height: 0.3\n;MINX:92.2\n\n;Generated"));
        // Comments after the first command are not header lines.
        assert!(out.ends_with(";MINX:keep\n"));
        assert_eq!(header_number(&truth, ";Filament used:"), Some(2.12153));
        let facts = scan(out.as_bytes()).unwrap();
        assert_eq!(facts.layer_count, 2);
        assert_eq!(facts.layer_markers, 2);
        assert_eq!(facts.last_time_elapsed, Some(20.25));
        assert!(facts.ends_cleanly);
    }
}
