//! G-code analysis (easyprint-gcode) for file metadata and ETAs, plus the index from
//! "commands acknowledged" to file line and byte offset that turns the printer's progress
//! counter into a resumable position.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use easyprint_gcode::analysis::{analyze_reader, Analysis, AnalysisConfig};
use serde_json::{json, Value};

use crate::cache::ContentCache;
use crate::printers::JobPosition;

/// A file's analysis and command-line index.
#[derive(Debug)]
pub struct FileAnalysis {
    /// easyprint-gcode's analysis.
    pub analysis: Analysis,
    /// For the n-th command streamed (0-based): its 1-based file line and the byte offset just
    /// past it. 16 bytes per command line.
    pub commands: Vec<(u64, u64)>,
}

impl FileAnalysis {
    /// Reads and analyses `path` (blocking: call from a blocking thread).
    pub fn of_file(path: &Path) -> std::io::Result<FileAnalysis> {
        let analysis = analyze_reader(std::fs::File::open(path)?, &AnalysisConfig::default())?;
        let mut commands = Vec::new();
        let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut line = Vec::new();
        let (mut number, mut offset) = (0u64, 0u64);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            number += 1;
            offset += n as u64;
            if command_text(&line).is_some() {
                commands.push((number, offset));
            }
        }
        Ok(FileAnalysis { analysis, commands })
    }

    /// The file position after `acknowledged` commands.
    pub fn position_after(&self, acknowledged: u64) -> JobPosition {
        match acknowledged
            .checked_sub(1)
            .and_then(|i| self.commands.get(i as usize))
        {
            Some(&(line, byte_offset)) => JobPosition { line, byte_offset },
            None => JobPosition::default(),
        }
    }

    /// The layer (0-based number and its start) that file line `line` belongs to.
    pub fn layer_at(&self, line: u64) -> Option<(u32, easyprint_gcode::analysis::Layer)> {
        let layers = &self.analysis.layers;
        let index = layers.partition_point(|l| l.line <= line).checked_sub(1)?;
        Some((u32::try_from(index).ok()?, layers[index]))
    }

    /// Filament length in mm (all extruders).
    pub fn filament_mm(&self) -> f64 {
        self.analysis.filament.iter().map(|f| f.length_mm).sum()
    }

    /// OctoPrint's `gcodeAnalysis` object plus our layer count.
    pub fn octoprint_json(&self) -> Value {
        let filament: serde_json::Map<String, Value> = self
            .analysis
            .filament
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    format!("tool{i}"),
                    json!({ "length": f.length_mm, "volume": f.volume_mm3 / 1000.0 }),
                )
            })
            .collect();
        json!({
            "estimatedPrintTime": self.analysis.estimated_time,
            "filament": filament,
            "layers": self.analysis.layer_count,
            "lines": self.analysis.lines,
        })
    }
}

/// The text sent to the printer for one file line: without comment and surrounding space,
/// `None` when nothing is left.
pub fn command_text(line: &[u8]) -> Option<&str> {
    let code = match memchr::memchr(b';', line) {
        Some(i) => &line[..i],
        None => line,
    };
    let text = std::str::from_utf8(code).ok()?.trim();
    (!text.is_empty()).then_some(text)
}

/// The command lines of a file, read lazily (the printer's I/O thread pulls them).
pub fn command_lines(path: &Path) -> std::io::Result<impl Iterator<Item = String> + Send> {
    command_lines_from(path, 0)
}

/// The command lines of a file from byte `offset` (a line start) on, read lazily.
pub fn command_lines_from(
    path: &Path,
    offset: u64,
) -> std::io::Result<impl Iterator<Item = String> + Send> {
    use std::io::Seek;
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let reader = std::io::BufReader::new(file);
    Ok(reader
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|line| command_text(&line).map(str::to_owned)))
}

/// Analyses by content hash, computed once (the newest few are kept).
#[derive(Debug)]
pub struct AnalysisCache(ContentCache<FileAnalysis>);

/// Analyses kept in memory.
const CACHE_ENTRIES: usize = 16;

impl Default for AnalysisCache {
    fn default() -> Self {
        AnalysisCache(ContentCache::new(CACHE_ENTRIES))
    }
}

impl AnalysisCache {
    /// The cached analysis of `sha256`, if any.
    pub fn cached(&self, sha256: &str) -> Option<Arc<FileAnalysis>> {
        self.0.cached(sha256)
    }

    /// The analysis of the file at `path` with content `sha256`, computed on a blocking thread
    /// when not cached.
    pub async fn get(&self, sha256: &str, path: PathBuf) -> std::io::Result<Arc<FileAnalysis>> {
        self.0
            .get_or_compute(sha256, move || FileAnalysis::of_file(&path))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_file_lines_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gcode");
        std::fs::write(&path, "; header\nG28\n\nG1 X10 ; move\n  ;x\nM84\n").unwrap();
        let a = FileAnalysis::of_file(&path).unwrap();
        assert_eq!(a.commands, vec![(2, 13), (4, 28), (6, 37)]);
        assert_eq!(a.position_after(0), JobPosition::default());
        assert_eq!(a.position_after(2).line, 4);
        let lines: Vec<String> = command_lines(&path).unwrap().collect();
        assert_eq!(lines, ["G28", "G1 X10", "M84"]);
        let rest: Vec<String> = command_lines_from(&path, 13).unwrap().collect();
        assert_eq!(rest, ["G1 X10", "M84"]);
    }
}
