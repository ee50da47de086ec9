//! Checking the engine's G-code and replacing the CLI's placeholder header with true figures.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use easyprint_gcode::analysis::{Analysis, AnalysisConfig, Analyzer};

/// What the output check found: the `gcode` crate's analysis plus whether the file is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFacts {
    /// One-pass analysis (layers, extrusion bounding box, filament, time estimate, metadata).
    pub analysis: Analysis,
    /// Whether the engine's end marker (`;End of Gcode`) is present: a killed engine leaves a
    /// file that stops mid-layer.
    pub ends_cleanly: bool,
}

/// CuraEngine's last comment: a file without it was cut short.
pub const CURA_END_MARKER: &[u8] = b";End of Gcode";

/// Incremental form of [`analyze_output`]: feed chunks as they arrive.
#[derive(Debug)]
pub struct OutputScanner {
    analyzer: Analyzer,
    /// Last bytes seen: the end marker may straddle two chunks.
    tail: Vec<u8>,
    end_marker: Vec<u8>,
    ends_cleanly: bool,
}

impl OutputScanner {
    /// A scanner looking for `end_marker` (the engine's last line).
    pub fn new(config: AnalysisConfig, end_marker: &[u8]) -> Self {
        Self {
            analyzer: Analyzer::new(config),
            tail: Vec::new(),
            end_marker: end_marker.to_vec(),
            ends_cleanly: false,
        }
    }

    /// Feed the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.analyzer.feed(chunk);
        let m = self.end_marker.len();
        self.tail.extend_from_slice(chunk);
        if self.tail.windows(m).any(|w| w == self.end_marker) {
            self.ends_cleanly = true;
        }
        let keep = self.tail.len().saturating_sub(m);
        self.tail.drain(..keep);
    }

    /// The analysis of everything fed.
    pub fn finish(self) -> OutputFacts {
        OutputFacts {
            analysis: self.analyzer.finish(),
            ends_cleanly: self.ends_cleanly,
        }
    }
}

/// Analyse G-code from `reader` in one streaming pass (bounded memory), noting whether the
/// engine's `end_marker` (its last line) is present.
pub fn analyze_output(
    mut reader: impl Read,
    config: AnalysisConfig,
    end_marker: &[u8],
) -> std::io::Result<OutputFacts> {
    let mut scanner = OutputScanner::new(config, end_marker);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(scanner.finish()),
            Ok(n) => scanner.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Analyse a file while another process appends to it (the engine writes its output as it
/// slices), so little is left to do when it exits. Once `writer_done` is set, reads to the end
/// and returns.
pub(crate) fn follow_output(
    path: &std::path::Path,
    mut scanner: OutputScanner,
    writer_done: &std::sync::atomic::AtomicBool,
) -> std::io::Result<OutputFacts> {
    use std::sync::atomic::Ordering;
    let idle = std::time::Duration::from_millis(20);
    let mut file = loop {
        // Checked before opening: after the writer is done a missing file stays missing.
        let done = writer_done.load(Ordering::SeqCst);
        match std::fs::File::open(path) {
            Ok(f) => break f,
            Err(e) if done => return Err(e),
            Err(_) => std::thread::sleep(idle),
        }
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let done = writer_done.load(Ordering::SeqCst);
        match file.read(&mut buf) {
            Ok(0) if done => return Ok(scanner.finish()),
            Ok(0) => std::thread::sleep(idle),
            Ok(n) => scanner.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Header lines with true figures: the engine's own report where it gave one, the analysis for
/// anything it did not (so a missing `-v` block still yields a true header).
pub fn true_header(engine_header: &[String], analysis: &Analysis) -> Vec<String> {
    let mut out: Vec<String> = engine_header.to_vec();
    let mut add = |key: &str, value: String| {
        if !out.iter().any(|l| header_key(l) == Some(key)) {
            out.push(format!("{key}{value}"));
        }
    };
    add(
        ";TIME:",
        format!("{}", analysis.estimated_time.round() as u64),
    );
    let metres: f64 = analysis.filament.iter().map(|f| f.length_mm).sum::<f64>() / 1000.0;
    add(
        ";Filament used:",
        format!(" {}m", (metres * 1e5).round() / 1e5),
    );
    if let Some(bb) = analysis.print_bbox.or(analysis.extrusion_bbox) {
        for (a, axis) in ["X", "Y", "Z"].iter().enumerate() {
            add(
                &format!(";MIN{axis}:"),
                format!("{}", (bb.min[a] * 1e3).round() / 1e3),
            );
            add(
                &format!(";MAX{axis}:"),
                format!("{}", (bb.max[a] * 1e3).round() / 1e3),
            );
        }
    }
    out
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
    }

    #[test]
    fn following_a_growing_file_sees_everything() {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gcode");
        let done = AtomicBool::new(false);
        let followed = std::thread::scope(|scope| {
            let follower = scope.spawn(|| {
                let scanner = OutputScanner::new(AnalysisConfig::default(), CURA_END_MARKER);
                follow_output(&path, scanner, &done)
            });
            // The file appears late and grows in pieces, as the engine writes it.
            std::thread::sleep(std::time::Duration::from_millis(30));
            let mut f = std::fs::File::create(&path).unwrap();
            for piece in PLACEHOLDER.as_bytes().chunks(7) {
                f.write_all(piece).unwrap();
                f.flush().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            done.store(true, Ordering::SeqCst);
            follower.join().unwrap().unwrap()
        });
        let whole = analyze_output(
            PLACEHOLDER.as_bytes(),
            AnalysisConfig::default(),
            CURA_END_MARKER,
        )
        .unwrap();
        assert_eq!(followed, whole);
        assert!(followed.ends_cleanly);
        // A writer that never created the file: an error once it is done, not a hang.
        let done = AtomicBool::new(true);
        let scanner = OutputScanner::new(AnalysisConfig::default(), CURA_END_MARKER);
        assert!(follow_output(&dir.path().join("missing"), scanner, &done).is_err());
    }

    #[test]
    fn analysis_fills_what_the_engine_did_not_report() {
        // Read in 3-byte pieces so the end marker straddles reads.
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let facts = analyze_output(
            Slow(PLACEHOLDER.as_bytes()),
            AnalysisConfig::default(),
            CURA_END_MARKER,
        )
        .unwrap();
        assert!(facts.ends_cleanly);
        assert_eq!(facts.analysis.metadata.layer_count, Some(2));
        let header = true_header(&[";TIME:99".to_owned()], &facts.analysis);
        assert_eq!(header[0], ";TIME:99");
        assert!(
            header.iter().any(|l| l == ";Filament used: 0.001m"),
            "{header:?}"
        );
        assert!(
            header.iter().any(|l| l.starts_with(";MAXX:1")),
            "{header:?}"
        );
        let cut = &PLACEHOLDER[..PLACEHOLDER.find(";End").unwrap()];
        assert!(
            !analyze_output(cut.as_bytes(), AnalysisConfig::default(), CURA_END_MARKER)
                .unwrap()
                .ends_cleanly
        );
    }
}
