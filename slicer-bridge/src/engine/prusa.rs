//! The PrusaSlicer backend: printer, print and filament presets ([`Profile::prusa`]: flat
//! `.ini` files or named presets of config bundles), the quality's layer height and the
//! overrides, merged into one config file, run with the same supervision, isolation, checks
//! and cache as CuraEngine.
//!
//! With this backend `overrides` use PrusaSlicer's option names (`layer_height=0.2`,
//! `fill_density=30%`); a named quality is a layer height (`0.2`, `0.20mm`) or the name of a
//! print preset in the printer's (or print's) bundle. PrusaSlicer has no thread-count option:
//! its thread pool (oneTBB) sizes itself from the CPUs the process may run on, so
//! [`PrusaSlicer::with_threads`] restricts the engine's CPU affinity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use easyprint_gcode::analysis::AnalysisConfig;

use super::common::{cached_report, locate_binary, placed_stl, publish, publish_cached};
use super::isolation;
use super::output::analyze_output;
use super::prusa_config::{is_preset_metadata, load_preset, quality_layer_height};
pub use super::prusa_config::{parse_ini, PrusaPreset, PrusaPresets};
use super::supervise::{self, RunEnd, Stream};
use super::{
    Profile, Progress, QualityChoice, RunOptions, SliceError, SliceReport, SliceRequest,
    SliceStats, Slicer,
};
use crate::cache::KeyBuilder;
use crate::model::BuildVolume;
use crate::settings::SettingsError;

/// Environment variable naming the PrusaSlicer binary.
pub const PRUSA_ENV: &str = "EASYPRINT_PRUSASLICER";

/// The last line PrusaSlicer writes: a file without it was cut short.
const END_MARKER: &[u8] = b"; prusaslicer_config = end";

/// PrusaSlicer's command line behind the [`Slicer`] trait.
#[derive(Debug, Clone)]
pub struct PrusaSlicer {
    path: PathBuf,
    version: String,
    /// Every option with its default (from `--save`): the known keys.
    defaults: BTreeMap<String, String>,
    options: RunOptions,
    /// CPUs the engine may use (its thread count); `None`: all.
    threads: Option<usize>,
}

/// The merged configuration of a profile, and the preset keys this PrusaSlicer does not know
/// (left out: vendor bundles carry keys of newer versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrusaConfig {
    /// Every option, as it goes to `--load`.
    pub values: BTreeMap<String, String>,
    /// `file: key` of preset keys that were left out.
    pub ignored: Vec<String>,
}

fn work_dir() -> Result<tempfile::TempDir, SliceError> {
    tempfile::Builder::new()
        .prefix("easyprint-slice-")
        .tempdir()
        .map_err(SliceError::io("creating a work directory"))
}

impl PrusaSlicer {
    /// Use the binary at `path`: asks for its version and its option defaults.
    pub fn at(path: impl Into<PathBuf>, options: RunOptions) -> Result<Self, SliceError> {
        let path = path.into();
        let not_found = |why: String| {
            SliceError::EngineNotFound(format!("PrusaSlicer at {}: {why}", path.display()))
        };
        let work = work_dir()?;
        let saved = work.path().join("defaults.ini");
        let run = |args: &[&std::ffi::OsStr]| {
            Command::new(&path)
                .arg("--datadir")
                .arg(work.path().join("data"))
                .args(args)
                .env("HOME", work.path())
                .output()
                .map_err(|e| not_found(format!("cannot run it: {e}")))
        };
        let help = run(&["--help".as_ref()])?;
        run(&["--save".as_ref(), saved.as_os_str()])?;
        let text = String::from_utf8_lossy(&help.stdout);
        let version = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("PrusaSlicer-"))
            .map(|v| v.split('+').next().unwrap_or(v).to_owned());
        let defaults = std::fs::read_to_string(&saved).map(|t| parse_ini(&t));
        match (version, defaults) {
            (Some(version), Ok(defaults)) if !defaults.is_empty() => Ok(Self {
                path,
                version,
                defaults,
                options,
                threads: None,
            }),
            _ => Err(not_found(
                "does not look like PrusaSlicer (no version or no --save output)".into(),
            )),
        }
    }

    /// Find it: `explicit`, else `$EASYPRINT_PRUSASLICER`, else `prusa-slicer` on `PATH`.
    pub fn locate(explicit: Option<&Path>, options: RunOptions) -> Result<Self, SliceError> {
        let path = locate_binary(explicit, PRUSA_ENV, "prusa-slicer").ok_or_else(|| {
            SliceError::EngineNotFound(format!(
                "PrusaSlicer not found (${PRUSA_ENV} unset, no prusa-slicer on PATH); install it with \
                 `apt-get install prusa-slicer` (Debian/Ubuntu) or set {PRUSA_ENV}"
            ))
        })?;
        Self::at(path, options)
    }

    /// The version (`2.5.0`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Let the engine use at most `n` CPUs (at least 1): its thread count.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// The effective config: defaults, then the printer, print and filament presets, then the
    /// quality's layer height, then the overrides. Unknown override keys are rejected here,
    /// before the engine starts; unknown preset keys are left out and listed.
    pub fn config(&self, profile: &Profile) -> Result<PrusaConfig, SliceError> {
        let mut values = self.defaults.clone();
        let mut ignored = Vec::new();
        let presets = &profile.prusa;
        let kinds = [
            ("printer", &presets.printer),
            ("print", &presets.print),
            ("filament", &presets.filament),
        ];
        for (kind, preset) in kinds {
            let Some(preset) = preset else { continue };
            for (k, v) in load_preset(preset, kind)? {
                let key = k.replace('-', "_");
                if is_preset_metadata(&key) {
                    continue;
                }
                if self.defaults.contains_key(&key) {
                    values.insert(key, v);
                } else {
                    ignored.push(format!("{}: {key}", preset.path.display()));
                }
            }
        }
        match &profile.quality {
            QualityChoice::Named(q) => match quality_layer_height(q) {
                Some(h) => {
                    values.insert("layer_height".into(), h.to_string());
                }
                None => {
                    let bundle = [&presets.print, &presets.printer]
                        .into_iter()
                        .flatten()
                        .find(|p| p.name.is_some())
                        .ok_or_else(|| SettingsError::InvalidValue {
                            key: "quality".into(),
                            text: q.clone(),
                            message: "PrusaSlicer qualities are layer heights (0.2, 0.20mm) or \
                                      print presets of a bundle given as printer or print preset"
                                .into(),
                        })?;
                    let print = PrusaPreset::bundle(&bundle.path, q.clone());
                    for (k, v) in load_preset(&print, "print")? {
                        if self.defaults.contains_key(&k) && !is_preset_metadata(&k) {
                            values.insert(k, v);
                        }
                    }
                }
            },
            QualityChoice::Preferred | QualityChoice::None => {}
        }
        for o in &profile.overrides {
            let key = o.key.trim().replace('-', "_");
            if !self.defaults.contains_key(&key) {
                return Err(SettingsError::UnknownSetting {
                    key,
                    suggestion: None,
                }
                .into());
            }
            if o.text.contains('\n') {
                return Err(SettingsError::InvalidValue {
                    key,
                    text: o.text.clone(),
                    message: "multi-line values must be written as \\n".into(),
                }
                .into());
            }
            values.insert(key, o.text.trim().to_owned());
        }
        Ok(PrusaConfig { values, ignored })
    }

    /// The bed's corners (`bed_shape` points' bounds), mm.
    fn bed_bounds(config: &BTreeMap<String, String>) -> ([f32; 2], [f32; 2]) {
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        for point in config
            .get("bed_shape")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
        {
            if let Some((x, y)) = point.split_once('x') {
                if let (Ok(x), Ok(y)) = (x.trim().parse::<f32>(), y.trim().parse::<f32>()) {
                    lo = [lo[0].min(x), lo[1].min(y)];
                    hi = [hi[0].max(x), hi[1].max(y)];
                }
            }
        }
        if lo[0] > hi[0] {
            return ([0.0; 2], [0.0; 2]);
        }
        (lo, hi)
    }

    fn build_volume(config: &BTreeMap<String, String>) -> BuildVolume {
        let (lo, hi) = Self::bed_bounds(config);
        let height = config
            .get("max_print_height")
            .and_then(|h| h.parse().ok())
            .unwrap_or(0.0);
        BuildVolume {
            width: hi[0] - lo[0],
            depth: hi[1] - lo[1],
            height,
            disallowed: Vec::new(),
        }
    }

    fn request_key(&self, config: &BTreeMap<String, String>, stl: &[u8]) -> String {
        let mut key = KeyBuilder::new(&self.engine());
        key.part(stl);
        for (k, v) in config {
            key.part(k.as_bytes()).part(v.as_bytes());
        }
        key.finish()
    }
}

/// `NN => text` progress lines on stdout (coarse and not in order: kept monotonic).
fn progress_line(line: &str, best: &mut f64) -> Option<Progress> {
    let (pct, text) = line.trim().split_once(" => ")?;
    let pct: f64 = pct.trim().parse().ok()?;
    *best = best.max((pct / 100.0).clamp(0.0, 1.0));
    Some(Progress {
        stage: text.trim().to_owned(),
        current: pct as u64,
        total: 100,
        fraction: *best,
    })
}

fn is_error_line(line: &str) -> bool {
    let l = line.trim();
    l.contains("[error]")
        || l.starts_with("Unknown option")
        || l.starts_with("Error")
        || l.contains("Invalid value")
        || l.starts_with("No such file")
        || l.starts_with("terminate called")
        || l.starts_with("what():")
        || l.contains("could not fit on the bed")
}

impl Slicer for PrusaSlicer {
    fn engine(&self) -> String {
        format!("PrusaSlicer {}", self.version)
    }

    fn slice(&self, mut request: SliceRequest<'_>) -> Result<SliceReport, SliceError> {
        let started = Instant::now();
        let PrusaConfig {
            values: config,
            ignored,
        } = self.config(request.profile)?;
        let volume = Self::build_volume(&config);
        let stl = placed_stl(request.model, &volume)?;
        let key = self.request_key(&config, &stl);
        let mut report_progress = |p: &Progress| {
            if let Some(cb) = request.progress.as_mut() {
                cb(p);
            }
        };
        if let Some((cached, stats)) = self.options.cache.as_ref().and_then(|c| c.get(&key)) {
            publish_cached(&cached, request.output)?;
            report_progress(&Progress::done());
            return Ok(cached_report(self.engine(), request.output, stats, started));
        }

        if request.cancel.is_cancelled() {
            return Err(SliceError::Cancelled);
        }
        let work = work_dir()?;
        let model_path = work.path().join("model.stl");
        let ini = work.path().join("profile.ini");
        let engine_out = work.path().join("out.gcode");
        std::fs::write(&model_path, &stl).map_err(SliceError::io("writing the placed model"))?;
        let ini_text: String = config.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        std::fs::write(&ini, ini_text).map_err(SliceError::io("writing the profile"))?;
        // The bed need not start at 0 (the Ender-3 bundle's starts at 3,3).
        let (lo, hi) = Self::bed_bounds(&config);
        let centre = format!("{},{}", (lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0);
        let mut cmd = Command::new(&self.path);
        cmd.arg("--datadir")
            .arg(work.path().join("data"))
            .arg("--load")
            .arg(&ini)
            .args(["--export-gcode", "--center", &centre, "--output"])
            .arg(&engine_out)
            .arg(&model_path)
            // A private HOME: the run never reads or writes the user's PrusaSlicer profiles.
            .env("HOME", work.path());
        if let Some(n) = self.threads {
            isolation::limit_cpus(&mut cmd, n);
        }
        let Some(_slot) = self.options.limit.acquire(&request.cancel) else {
            return Err(SliceError::Cancelled);
        };
        let mut errors = Vec::new();
        let mut best = 0.0;
        let engine_started = Instant::now();
        let end = supervise::run(
            cmd,
            self.options.idle_priority,
            &request.cancel,
            self.options.timeout,
            |stream, line| {
                if stream == Stream::Stdout {
                    if let Some(p) = progress_line(line, &mut best) {
                        report_progress(&p);
                    }
                }
                if is_error_line(line) && errors.len() < 64 {
                    errors.push(line.trim().to_owned());
                }
            },
        )
        .map_err(|e| {
            SliceError::EngineNotFound(format!("cannot start {}: {e}", self.path.display()))
        })?;
        let engine_elapsed = engine_started.elapsed();
        let status = match end {
            RunEnd::Cancelled => return Err(SliceError::Cancelled),
            RunEnd::TimedOut => {
                return Err(SliceError::Timeout(
                    self.options.timeout.unwrap_or_default(),
                ))
            }
            RunEnd::Exited(status) => status,
        };
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(SliceError::EngineCrashed { signal, errors });
        }
        if status.code() != Some(0) {
            return Err(SliceError::EngineFailed {
                code: status.code().unwrap_or(-1),
                errors,
            });
        }
        let config_diameter = config
            .get("filament_diameter")
            .and_then(|d| d.split(',').next()?.trim().parse().ok())
            .unwrap_or(1.75);
        let facts = std::fs::File::open(&engine_out)
            .and_then(|f| {
                analyze_output(
                    f,
                    AnalysisConfig {
                        filament_diameter: config_diameter,
                        ..AnalysisConfig::default()
                    },
                    END_MARKER,
                )
            })
            .map_err(SliceError::io("reading engine output"))?;
        let a = &facts.analysis;
        let filament: f64 = a.filament.iter().map(|f| f.length_mm).sum();
        if a.layer_count == 0 || filament <= 0.0 {
            return Err(SliceError::NoLayers);
        }
        if !facts.ends_cleanly {
            return Err(SliceError::EngineFailed {
                code: 0,
                errors: vec!["output ends before PrusaSlicer's closing config block".into()],
            });
        }
        let stats = SliceStats {
            print_time_s: a.metadata.estimated_time.map(|t| t.round() as u64),
            estimated_time_s: Some(a.estimated_time),
            filament_mm: a
                .metadata
                .filament_used_mm
                .iter()
                .copied()
                .reduce(|x, y| x + y)
                .or(Some(filament)),
            filament_mm3: a
                .metadata
                .filament_used_cm3
                .iter()
                .copied()
                .reduce(|x, y| x + y)
                .map(|c| c * 1000.0),
            layer_count: a.layer_count,
            bbox: a.print_bbox.map(|b| [b.min, b.max]),
        };
        publish(&engine_out, request.output, &[])?;
        if let Some(cache) = &self.options.cache {
            let _ = cache.put(&key, request.output, &stats);
        }
        report_progress(&Progress::done());
        Ok(SliceReport {
            output: request.output.to_owned(),
            engine: self.engine(),
            cache_hit: false,
            stats,
            warnings: ignored
                .into_iter()
                .map(|k| format!("preset key unknown to this PrusaSlicer, left out: {k}"))
                .collect(),
            elapsed: started.elapsed(),
            engine_elapsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_stays_monotonic() {
        let mut best = 0.0;
        let f: Vec<f64> = [
            "10 => Processing triangulated mesh",
            "70 => Infilling layers",
            "30 => Preparing infill",
            "noise",
        ]
        .iter()
        .filter_map(|l| progress_line(l, &mut best))
        .map(|p| p.fraction)
        .collect();
        assert_eq!(f, [0.1, 0.7, 0.7]);
    }

    #[test]
    fn ini_and_bed() {
        let c = parse_ini("# c\nbed_shape = 0x0,250x0,250x210,0x210\nmax_print_height = 200\nstart_gcode = G28\\nG1\n");
        assert_eq!(c["start_gcode"], "G28\\nG1");
        let v = PrusaSlicer::build_volume(&c);
        assert_eq!((v.width, v.depth, v.height), (250.0, 210.0, 200.0));
        assert!(is_error_line("Unknown option --foo-bar"));
    }
}
