//! The CuraEngine backend: locate the engine, turn resolved settings into its command line,
//! run it supervised, check and publish the output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::cura_log::{CuraLog, Progress};
use easyprint_gcode::analysis::{Analysis, AnalysisConfig};

use super::common::{cached_report, locate_binary, placed_stl, publish_cached, stage};
use super::output::{follow_output, header_number, true_header, OutputScanner, CURA_END_MARKER};
use super::supervise::{self, RunEnd};
use super::{Profile, RunOptions, SliceError, SliceReport, SliceRequest, SliceStats, Slicer};
use crate::cache::KeyBuilder;
use crate::model::{self, BuildVolume};
use crate::settings::gcode_tokens::{bed_temp_prepend, fill, print_temp_prepend};
use crate::settings::{ResolvedSettings, Resources, SettingsStack, Value};

/// Environment variable naming the CuraEngine binary.
pub const ENGINE_ENV: &str = "EASYPRINT_CURAENGINE";

/// A located CuraEngine binary and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuraEngine {
    path: PathBuf,
    version: String,
}

impl CuraEngine {
    /// Use the binary at `path`, asking it for its version.
    pub fn at(path: impl Into<PathBuf>) -> Result<Self, SliceError> {
        let path = path.into();
        let out = Command::new(&path).arg("help").output().map_err(|e| {
            SliceError::EngineNotFound(format!("cannot run CuraEngine at {}: {e}", path.display()))
        })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = text
            .split_whitespace()
            .skip_while(|w| *w != "version")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| {
                SliceError::EngineNotFound(format!(
                    "{} does not look like CuraEngine (no version in its help output)",
                    path.display()
                ))
            })?;
        Ok(Self { path, version })
    }

    /// Find the engine: `explicit`, else `$EASYPRINT_CURAENGINE`, else `CuraEngine` on `PATH`.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, SliceError> {
        let path = locate_binary(explicit, ENGINE_ENV, "CuraEngine").ok_or_else(|| {
            SliceError::EngineNotFound(format!(
                "CuraEngine not found (${ENGINE_ENV} unset, not on PATH); install it with \
                 `apt-get install cura-engine` (Debian/Ubuntu) or set {ENGINE_ENV}=/path/to/CuraEngine"
            ))
        })?;
        Self::at(path)
    }

    /// Binary path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Version (`4.13.0`).
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// How CuraEngine is run.
#[derive(Debug, Clone, Default)]
pub struct CuraOptions {
    /// Engine worker threads (`-m`); `None` = the engine's default (all cores).
    pub threads: Option<usize>,
    /// Supervision, isolation, concurrency and cache (shared with the other engines).
    pub run: RunOptions,
}

/// CuraEngine behind the [`Slicer`] trait; the [crate example](crate) slices a cube with it.
#[derive(Debug, Clone)]
pub struct CuraSlicer {
    engine: CuraEngine,
    resources: Resources,
    options: CuraOptions,
}

/// A machine's settings resolved for one profile.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The stacks (machine definition, quality, overrides).
    pub stack: SettingsStack,
    /// Every resolved value.
    pub settings: ResolvedSettings,
}

impl CuraSlicer {
    /// A slicer from a located engine and resources.
    pub fn new(engine: CuraEngine, resources: Resources, options: CuraOptions) -> Self {
        Self {
            engine,
            resources,
            options,
        }
    }

    /// Locate the engine and the resources the default ways.
    pub fn discover(options: CuraOptions) -> Result<Self, SliceError> {
        Ok(Self::new(
            CuraEngine::locate(None)?,
            Resources::discover(None)?,
            options,
        ))
    }

    /// The Cura resources in use.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// The engine in use.
    pub fn cura_engine(&self) -> &CuraEngine {
        &self.engine
    }

    /// Resolve `profile`: machine chain, nozzle variant, material, quality and intent chosen
    /// as Cura chooses them, machine settings, overrides, formulas, validation.
    pub fn prepare(&self, profile: &Profile) -> Result<Prepared, SliceError> {
        let machine = self.resources.load_machine(&profile.machine)?;
        let configuration = self.resources.configure(&machine, &profile.selection())?;
        let mut stack = SettingsStack::configured(machine, configuration);
        for o in &profile.machine_settings {
            stack.set_machine_setting(o)?;
        }
        for o in &profile.overrides {
            stack.set(o)?;
        }
        let settings = stack.resolve()?;
        Ok(Prepared { stack, settings })
    }

    /// The `-s key=value` groups the engine gets: global ones, then one group per extruder.
    /// Start/end G-code placeholders are filled; `None` values are left out.
    pub fn setting_args(settings: &ResolvedSettings) -> (Vec<String>, Vec<Vec<String>>) {
        let initial = 0;
        let kv = |k: &str, v: &Value| format!("{k}={v}");
        let mut global = Vec::with_capacity(settings.global.len() + 2);
        let start = settings
            .get("machine_start_gcode")
            .map(ToString::to_string)
            .unwrap_or_default();
        for (k, v) in &settings.global {
            match (k.as_str(), v) {
                (_, Value::None) => {}
                ("machine_start_gcode" | "machine_end_gcode", v) => {
                    global.push(format!("{k}={}", fill(&v.to_string(), settings, initial)));
                }
                _ => global.push(kv(k, v)),
            }
        }
        global.push(format!(
            "material_bed_temp_prepend={}",
            Value::Bool(bed_temp_prepend(&start))
        ));
        global.push(format!(
            "material_print_temp_prepend={}",
            Value::Bool(print_temp_prepend(&start))
        ));
        let extruders = settings
            .extruders
            .iter()
            .enumerate()
            .map(|(i, values)| {
                values
                    .iter()
                    .filter(|(_, v)| **v != Value::None)
                    .map(|(k, v)| match k.as_str() {
                        "machine_extruder_start_code" | "machine_extruder_end_code" => {
                            format!("{k}={}", fill(&v.to_string(), settings, i))
                        }
                        _ => kv(k, v),
                    })
                    .collect()
            })
            .collect();
        (global, extruders)
    }

    /// The full engine command line for a prepared profile (what [`Slicer::slice`] runs).
    pub fn command(&self, prepared: &Prepared, model: &Path, output: &Path) -> Command {
        let machine = prepared.stack.machine();
        let (global, extruders) = Self::setting_args(&prepared.settings);
        let mut args: Vec<OsString> = vec!["slice".into(), "-v".into(), "-p".into()];
        if let Some(n) = self.options.threads {
            args.push(format!("-m{}", n.max(1)).into());
        }
        // Every -s must come after its -j: a -j loads defaults over earlier values.
        args.push("-j".into());
        args.push(machine.global.paths[0].clone().into());
        for s in global {
            args.push("-s".into());
            args.push(s.into());
        }
        for (i, values) in extruders.into_iter().enumerate() {
            args.push(format!("-e{i}").into());
            if let Some(path) = machine.extruders.get(i).and_then(|e| e.paths.first()) {
                args.push("-j".into());
                args.push(path.clone().into());
            }
            for s in values {
                args.push("-s".into());
                args.push(s.into());
            }
        }
        args.push("-l".into());
        args.push(model.into());
        args.push("-o".into());
        args.push(output.into());
        let mut cmd = Command::new(self.engine.path());
        cmd.args(args);
        let search = std::env::join_paths([
            self.resources.definitions_dir(),
            self.resources.extruders_dir(),
        ])
        .unwrap_or_default();
        cmd.env("CURA_ENGINE_SEARCH_PATH", search);
        cmd
    }

    /// Key of the raw request: engine, resources, profile and the model file's bytes.
    fn request_key(&self, profile: &Profile, model: &Path) -> Result<String, SliceError> {
        let bytes = std::fs::read(model).map_err(|e| model::ModelError::Io {
            path: model.display().to_string(),
            message: e.to_string(),
        })?;
        let mut key = KeyBuilder::new(&self.engine());
        key.part(self.resources.root().as_os_str().as_encoded_bytes())
            .part(format!("{profile:?}").as_bytes())
            .part(model.extension().unwrap_or_default().as_encoded_bytes())
            .part(&bytes);
        Ok(key.finish())
    }

    fn cache_key(&self, prepared: &Prepared, placed_stl: &[u8]) -> String {
        let mut key = KeyBuilder::new(&self.engine());
        key.part(placed_stl);
        let (global, extruders) = Self::setting_args(&prepared.settings);
        key.part(prepared.settings.machine.as_bytes());
        for s in global {
            key.part(s.as_bytes());
        }
        for (i, e) in extruders.iter().enumerate() {
            key.part(format!("-e{i}").as_bytes());
            for s in e {
                key.part(s.as_bytes());
            }
        }
        key.finish()
    }
}

/// Files whose change invalidates a request-level cache entry.
fn input_files(prepared: &Prepared) -> Vec<PathBuf> {
    let machine = prepared.stack.machine();
    let mut files: Vec<PathBuf> = machine.global.paths.clone();
    files.extend(
        machine
            .extruders
            .iter()
            .flat_map(|e| e.paths.iter().cloned()),
    );
    if let Some(config) = prepared.stack.configuration() {
        files.extend(config.global_quality.iter().filter_map(|q| q.path.clone()));
        for ext in &config.extruders {
            files.extend(
                [&ext.variant, &ext.quality, &ext.intent]
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.path.clone()),
            );
            files.extend(ext.material.as_ref().map(|m| m.path.clone()));
        }
    }
    files
}

/// The machine's printable volume from resolved settings.
fn build_volume(s: &ResolvedSettings) -> BuildVolume {
    let n = |k: &str| s.number(k).unwrap_or(0.0) as f32;
    let disallowed = match s.get("machine_disallowed_areas") {
        Some(Value::List(polys)) => polys
            .iter()
            .filter_map(|p| match p {
                Value::List(points) => Some(
                    points
                        .iter()
                        .filter_map(|pt| match pt {
                            Value::List(xy) if xy.len() == 2 => {
                                Some([xy[0].as_f64()? as f32, xy[1].as_f64()? as f32])
                            }
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    BuildVolume {
        width: n("machine_width"),
        depth: n("machine_depth"),
        height: n("machine_height"),
        disallowed,
    }
}

fn stats_from(
    log: &CuraLog,
    header: &[String],
    analysis: &Analysis,
    layer_count: u64,
) -> SliceStats {
    let engine_bbox = (|| {
        let n = |k: &str| header_number(header, k);
        Some([
            [n(";MINX:")?, n(";MINY:")?, n(";MINZ:")?],
            [n(";MAXX:")?, n(";MAXY:")?, n(";MAXZ:")?],
        ])
    })();
    SliceStats {
        print_time_s: log
            .print_time_s
            .or_else(|| header_number(header, ";TIME:").map(|t| t as u64)),
        estimated_time_s: Some(analysis.estimated_time),
        // Metres in the header; keep micrometre precision without float noise.
        filament_mm: header_number(header, ";Filament used:").map(|m| (m * 1e6).round() / 1e3),
        filament_mm3: log.filament_mm3,
        layer_count,
        bbox: analysis.print_bbox.map(|b| [b.min, b.max]).or(engine_bbox),
    }
}

impl Slicer for CuraSlicer {
    fn engine(&self) -> String {
        format!("CuraEngine {}", self.engine.version)
    }

    fn slice(&self, mut request: SliceRequest<'_>) -> Result<SliceReport, SliceError> {
        let started = Instant::now();
        let mut report_progress = |p: &Progress| {
            if let Some(cb) = request.progress.as_mut() {
                cb(p);
            }
        };
        let done = Progress::done();
        // 0. Fast path: the same request (model bytes + profile) with unchanged definitions.
        let request_key = match &self.options.run.cache {
            Some(_) => Some(self.request_key(request.profile, request.model)?),
            None => None,
        };
        if let (Some(cache), Some(rk)) = (&self.options.run.cache, &request_key) {
            if let Some((cached, stats)) = cache.get_request(rk).and_then(|k| cache.get(&k)) {
                publish_cached(&cached, request.output)?;
                report_progress(&done);
                return Ok(cached_report(self.engine(), request.output, stats, started));
            }
        }
        // 1. Settings and model are checked before the engine starts.
        let prepared = self.prepare(request.profile)?;
        let stl = placed_stl(request.model, &build_volume(&prepared.settings))?;

        // 2. Cache, keyed by placed model + resolved settings + engine.
        let cached = self.options.run.cache.as_ref();
        let key = cached
            .map(|_| self.cache_key(&prepared, &stl))
            .unwrap_or_default();
        if let Some(cache) = cached {
            if let Some((cached, stats)) = cache.get(&key) {
                publish_cached(&cached, request.output)?;
                if let Some(rk) = &request_key {
                    let _ = cache.put_request(rk, &key, &input_files(&prepared));
                }
                report_progress(&done);
                return Ok(cached_report(self.engine(), request.output, stats, started));
            }
        }

        if request.cancel.is_cancelled() {
            return Err(SliceError::Cancelled);
        }
        // 3. Run the engine in a private directory (removed on every path out).
        let work = tempfile::Builder::new()
            .prefix("easyprint-slice-")
            .tempdir()
            .map_err(SliceError::io("creating a work directory"))?;
        let model_path = work.path().join("model.stl");
        let engine_out = work.path().join("out.gcode");
        std::fs::write(&model_path, &stl).map_err(SliceError::io("writing the placed model"))?;
        let cmd = self.command(&prepared, &model_path, &engine_out);
        let Some(_slot) = self.options.run.limit.acquire(&request.cancel) else {
            return Err(SliceError::Cancelled);
        };
        let mut log = CuraLog::default();
        let config = AnalysisConfig {
            filament_diameter: prepared
                .settings
                .extruder(0, "material_diameter")
                .and_then(Value::as_f64)
                .unwrap_or(1.75),
            ..AnalysisConfig::default()
        };
        let engine_started = Instant::now();
        // The output is analysed while the engine writes it (it exports layer by layer).
        let engine_done = AtomicBool::new(false);
        let (end, followed) = std::thread::scope(|scope| {
            let follower = scope.spawn(|| {
                let scanner = OutputScanner::new(config, CURA_END_MARKER);
                follow_output(&engine_out, scanner, &engine_done)
            });
            let end = supervise::run(
                cmd,
                self.options.run.idle_priority,
                &request.cancel,
                self.options.run.timeout,
                |stream, line| {
                    if stream == supervise::Stream::Stderr {
                        if let Some(p) = log.feed(line) {
                            report_progress(&p);
                        }
                    }
                },
            );
            engine_done.store(true, Ordering::SeqCst);
            let followed = follower
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("analysis thread panicked")));
            (end, followed)
        });
        let end = end.map_err(|e| {
            SliceError::EngineNotFound(format!(
                "cannot start {}: {e}",
                self.engine.path().display()
            ))
        })?;
        let engine_elapsed = engine_started.elapsed();
        let status = match end {
            RunEnd::Cancelled => return Err(SliceError::Cancelled),
            RunEnd::TimedOut => {
                return Err(SliceError::Timeout(
                    self.options.run.timeout.unwrap_or_default(),
                ))
            }
            RunEnd::Exited(status) => status,
        };
        if let Some(missing) = log.missing_definition() {
            return Err(SliceError::MissingDefinition(missing.to_owned()));
        }
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(SliceError::EngineCrashed {
                signal,
                errors: log.errors,
            });
        }
        match status.code() {
            Some(0) => {}
            code => {
                return Err(SliceError::EngineFailed {
                    code: code.unwrap_or(-1),
                    errors: log.errors,
                })
            }
        }
        if !log.errors.is_empty() {
            return Err(SliceError::EngineReportedErrors { errors: log.errors });
        }
        // Staging (copy with the engine's header, fsync) is committed only if the checks pass.
        let staged = stage(&engine_out, request.output, &log.header);
        let facts = followed.map_err(SliceError::io("reading engine output"))?;
        let layer_count = facts.analysis.metadata.layer_count.unwrap_or(0);
        if layer_count == 0 || facts.analysis.metadata.layer_markers == 0 {
            return Err(SliceError::NoLayers);
        }
        if !facts.ends_cleanly {
            return Err(SliceError::EngineFailed {
                code: 0,
                errors: vec!["output ends before the end G-code".into()],
            });
        }
        let header = true_header(&log.header, &facts.analysis);
        let stats = stats_from(&log, &header, &facts.analysis, layer_count);
        if stats.filament_mm.is_some_and(|f| f <= 0.0) {
            return Err(SliceError::NoLayers);
        }

        // 5. Publish with the true header, then cache.
        let staged = if header.len() == log.header.len() {
            staged?
        } else {
            // The engine's report lacked some figures: restage with the analysis' ones.
            drop(staged);
            stage(&engine_out, request.output, &header)?
        };
        staged.commit(request.output)?;
        if let Some(cache) = &self.options.run.cache {
            // A failed cache write costs only a future re-slice.
            if cache.put(&key, request.output, &stats).is_ok() {
                if let Some(rk) = &request_key {
                    let _ = cache.put_request(rk, &key, &input_files(&prepared));
                }
            }
        }
        report_progress(&done);
        Ok(SliceReport {
            output: request.output.to_owned(),
            engine: self.engine(),
            cache_hit: false,
            stats,
            warnings: log.warnings,
            elapsed: started.elapsed(),
            engine_elapsed,
        })
    }
}
