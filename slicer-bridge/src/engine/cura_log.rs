//! Sans-IO parser of CuraEngine 4.x stderr: progress lines, `[ERROR]`/`[WARNING]` lines, the
//! real G-code header block and the print-time / filament summary.

/// Most error / warning lines kept (the engine can emit thousands of "layer is empty" lines).
const MAX_KEPT_LINES: usize = 64;

/// One progress step reported by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Stage name (`slice`, `layerparts`, `inset+skin`, `support`, `export`, `process`).
    pub stage: String,
    /// Step within the stage.
    pub current: u64,
    /// Steps in the stage.
    pub total: u64,
    /// Overall fraction 0..=1, never decreasing within one run.
    pub fraction: f64,
}

/// What the engine said on stderr, accumulated line by line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CuraLog {
    /// `[ERROR]` lines (the first 64; [`error_count`](Self::error_count) counts them all).
    pub errors: Vec<String>,
    /// `[WARNING]` lines worth showing (the first 64; the settings dump and the
    /// "no default_value" noise are skipped).
    pub warnings: Vec<String>,
    /// The real header lines (`;TIME:1144`...) printed after slicing.
    pub header: Vec<String>,
    /// `Print time (s):`.
    pub print_time_s: Option<u64>,
    /// `Filament (mm^3):`.
    pub filament_mm3: Option<f64>,
    /// Highest progress fraction seen.
    pub fraction: f64,
    /// Total error lines seen (including those not kept).
    pub error_count: usize,
    in_header: bool,
}

impl CuraLog {
    /// Feed one stderr line; returns a progress event when the line was one.
    pub fn feed(&mut self, line: &str) -> Option<Progress> {
        let line = line.trim_end_matches(['\r', '\n']);
        if self.in_header {
            if line == "End of gcode header." {
                self.in_header = false;
            } else if line.starts_with(';') {
                self.header.push(line.to_owned());
            }
            return None;
        }
        if let Some(rest) = line.strip_prefix("Progress:") {
            return self.progress(rest);
        }
        if line == "Gcode header after slicing:" {
            self.in_header = true;
            self.header.clear();
        } else if let Some(v) = line.strip_prefix("Print time (s):") {
            self.print_time_s = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("Filament (mm^3):") {
            self.filament_mm3 = v.trim().parse().ok();
        } else if let Some(msg) = line.strip_prefix("[ERROR]") {
            self.error_count += 1;
            if self.errors.len() < MAX_KEPT_LINES {
                self.errors.push(msg.trim().to_owned());
            }
        } else if let Some(msg) = line.strip_prefix("[WARNING]") {
            let msg = msg.trim();
            let noise = msg.starts_with("-s ")
                || msg.contains("has no default_value")
                || msg.starts_with("Unrecognized data type in JSON setting");
            if !noise && self.warnings.len() < MAX_KEPT_LINES {
                self.warnings.push(msg.to_owned());
            }
        }
        None
    }

    fn progress(&mut self, rest: &str) -> Option<Progress> {
        // `<stage>:<cur>:<total>\t<fraction>%`; the fraction is 0..1 despite the `%`.
        let (counts, fraction) = rest.split_once('\t')?;
        let mut parts = counts.rsplitn(3, ':');
        let total = parts.next()?.trim().parse().ok()?;
        let current = parts.next()?.trim().parse().ok()?;
        let stage = parts.next()?.to_owned();
        let f: f64 = fraction.trim().trim_end_matches('%').trim().parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        self.fraction = self.fraction.max(f.clamp(0.0, 1.0));
        Some(Progress {
            stage,
            current,
            total,
            fraction: self.fraction,
        })
    }

    /// Whether any error says a definition file could not be found or loaded.
    pub fn missing_definition(&self) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| {
                e.contains("Couldn't find definition")
                    || e.contains("Failed to load JSON")
                    || e.contains("Couldn't open JSON")
                    || e.contains("Inherited JSON file")
            })
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_progress_header_and_summary() {
        let mut log = CuraLog::default();
        let p = log.feed("Progress:inset+skin:3:100\t0.250000%").unwrap();
        assert_eq!(
            (p.stage.as_str(), p.current, p.total),
            ("inset+skin", 3, 100)
        );
        assert_eq!(p.fraction, 0.25);
        // A late lower fraction never moves the overall progress backwards.
        assert_eq!(
            log.feed("Progress:export:1:2\t0.2%").unwrap().fraction,
            0.25
        );
        for line in [
            "Gcode header after slicing:",
            ";FLAVOR:Marlin",
            ";TIME:1144",
            "End of gcode header.",
            "Print time (s): 1144",
            "Filament (mm^3): 5102",
            "[ERROR] Couldn't find definition file with ID: anet3d_extruder_0",
            "[WARNING] JSON setting foo has no default_value!",
            "[WARNING] Mesh has disconnected faces!",
        ] {
            assert!(log.feed(line).is_none());
        }
        assert_eq!(log.header, [";FLAVOR:Marlin", ";TIME:1144"]);
        assert_eq!(log.print_time_s, Some(1144));
        assert_eq!(log.filament_mm3, Some(5102.0));
        assert!(log.missing_definition().is_some());
        assert_eq!(log.warnings, ["Mesh has disconnected faces!"]);
        assert!(log.feed("Progress:garbage").is_none());
    }
}
