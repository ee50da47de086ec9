//! The slicer's catalogue (Cura machine definitions and their quality profiles) for the UI's
//! slice dialog, and per-job slicing settings checked against it and turned into Cura
//! overrides.
//!
//! Reading every definition takes a while (hundreds of JSON files, about a second), so the
//! machine list is read once and kept; a machine's qualities and defaults are resolved once per
//! machine (the newest [`MACHINES_KEPT`] are kept). [`Profiles::warm`] does both for the
//! configured machine on a background thread at start-up, and requests that arrive while a load
//! is under way wait for it instead of loading again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use easyprint_slicer::settings::{
    MachineInfo, QualityProfile, Resources, Selection, SettingsStack, Value,
};
use easyprint_slicer::{Profile, QualityChoice};
use serde::{Deserialize, Serialize};

use crate::config::SlicerConfig;
use crate::error::ApiError;

/// Machines whose qualities and defaults are kept resolved.
pub const MACHINES_KEPT: usize = 16;

/// A machine in the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct MachineSummary {
    /// Cura definition id (`creality_ender3`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Manufacturer (may be empty).
    pub manufacturer: String,
}

/// A quality a machine offers.
#[derive(Debug, Clone, Serialize)]
pub struct QualityInfo {
    /// Cura's `quality_type` (`standard`, `draft`...), what [`SliceSettings::quality`] takes.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Layer height in mm, when the profile sets a plain number.
    pub layer_height: Option<f64>,
}

/// Where supports are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// No supports.
    None,
    /// Only supports standing on the build plate.
    Buildplate,
    /// Supports may also stand on the model.
    Everywhere,
}

/// What holds the first layer down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adhesion {
    /// Nothing.
    None,
    /// A skirt around the model (primes the nozzle).
    Skirt,
    /// A brim attached to the model.
    Brim,
    /// A raft under the model.
    Raft,
}

impl Adhesion {
    fn cura(self) -> &'static str {
        match self {
            Adhesion::None => "none",
            Adhesion::Skirt => "skirt",
            Adhesion::Brim => "brim",
            Adhesion::Raft => "raft",
        }
    }
}

/// A machine's slicing defaults (its preferred quality with the server's overrides).
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    /// Quality used when none is chosen.
    pub quality: Option<String>,
    /// Infill density, percent.
    pub infill_percent: f64,
    /// Supports.
    pub support: Support,
    /// Bed adhesion.
    pub adhesion: Adhesion,
    /// Nozzle temperature, °C.
    pub nozzle_temp: f64,
    /// Bed temperature, °C.
    pub bed_temp: f64,
}

/// A machine's qualities and defaults.
#[derive(Debug, Clone, Serialize)]
pub struct MachineProfile {
    /// Cura definition id.
    pub id: String,
    /// Qualities, finest first.
    pub qualities: Vec<QualityInfo>,
    /// Defaults.
    pub defaults: Defaults,
}

/// Slicing settings of one job; every field is optional (the machine's defaults apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceSettings {
    /// Cura machine id (default: the configured machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// Quality type (`standard`, `draft`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Infill density, 0–100 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infill_percent: Option<f64>,
    /// Supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<Support>,
    /// Bed adhesion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adhesion: Option<Adhesion>,
    /// Nozzle temperature, °C (0–[`MAX_NOZZLE_C`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nozzle_temp: Option<f64>,
    /// Bed temperature, °C (0–[`MAX_BED_C`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bed_temp: Option<f64>,
}

/// Highest nozzle temperature accepted, °C.
pub const MAX_NOZZLE_C: f64 = 350.0;
/// Highest bed temperature accepted, °C.
pub const MAX_BED_C: f64 = 150.0;

fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "invalid_slicing_setting",
        format!("slicing.{field}: {message}"),
    )
}

fn check_range(field: &str, value: Option<f64>, max: f64) -> Result<(), ApiError> {
    match value {
        Some(v) if !(v.is_finite() && (0.0..=max).contains(&v)) => {
            Err(invalid(field, format_args!("{v} is outside 0 to {max}")))
        }
        _ => Ok(()),
    }
}

impl SliceSettings {
    /// Checks the numbers' ranges (the machine and quality are checked by
    /// [`Profiles::validate`]).
    pub fn check_ranges(&self) -> Result<(), ApiError> {
        check_range("infill_percent", self.infill_percent, 100.0)?;
        check_range("nozzle_temp", self.nozzle_temp, MAX_NOZZLE_C)?;
        check_range("bed_temp", self.bed_temp, MAX_BED_C)
    }

    /// The settings stored in a queue job (`{"slicing": {...}}` plus `print`), read back; a
    /// job without them (an OctoPrint upload) gets the defaults.
    pub fn from_job(settings: &serde_json::Value) -> Result<SliceSettings, serde_json::Error> {
        match settings.get("slicing") {
            Some(v) => SliceSettings::deserialize(v),
            None => Ok(SliceSettings::default()),
        }
    }

    /// The easyprint-slicer profile: the machine (default: the configured one) with the
    /// configured overrides when it is the configured machine, then these settings as Cura
    /// keys.
    pub fn profile(&self, config: &SlicerConfig) -> Result<Profile, String> {
        let machine = self.machine.as_deref().unwrap_or(&config.machine);
        let mut profile = Profile::machine(machine);
        if machine == config.machine {
            for setting in &config.settings {
                profile = profile
                    .set(setting)
                    .map_err(|e| format!("slicer setting {setting:?}: {e}"))?;
            }
        }
        if let Some(q) = &self.quality {
            profile.quality = QualityChoice::Named(q.clone());
        }
        for key_value in self.cura_overrides() {
            profile = profile
                .set(&key_value)
                .map_err(|e| format!("slicer setting {key_value:?}: {e}"))?;
        }
        Ok(profile)
    }

    /// These settings as Cura `key=value` overrides.
    pub fn cura_overrides(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = self.infill_percent {
            out.push(format!("infill_sparse_density={p}"));
        }
        match self.support {
            Some(Support::None) => out.push("support_enable=false".into()),
            Some(Support::Buildplate) => {
                out.push("support_enable=true".into());
                out.push("support_type=buildplate".into());
            }
            Some(Support::Everywhere) => {
                out.push("support_enable=true".into());
                out.push("support_type=everywhere".into());
            }
            None => {}
        }
        if let Some(a) = self.adhesion {
            out.push(format!("adhesion_type={}", a.cura()));
        }
        if let Some(t) = self.nozzle_temp {
            out.push(format!("material_print_temperature={t}"));
            out.push(format!("material_print_temperature_layer_0={t}"));
        }
        if let Some(t) = self.bed_temp {
            out.push(format!("material_bed_temperature={t}"));
            out.push(format!("material_bed_temperature_layer_0={t}"));
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The catalogue, shared by every request.
#[derive(Debug)]
pub struct Profiles {
    resources: OnceLock<Option<Resources>>,
    /// Held while the list loads, so concurrent callers wait for that one load.
    machines: Mutex<Option<Arc<Vec<MachineSummary>>>>,
    details: Mutex<HashMap<String, Arc<MachineProfile>>>,
    /// Held while a machine resolves (same reason; `details` stays free for cache hits).
    resolving: Mutex<()>,
    /// Loads from disk so far (machine list and machine profiles).
    loads: AtomicUsize,
    warmed: tokio::sync::watch::Sender<bool>,
    warming: std::sync::atomic::AtomicBool,
}

impl Default for Profiles {
    fn default() -> Profiles {
        Profiles {
            resources: OnceLock::new(),
            machines: Mutex::default(),
            details: Mutex::default(),
            resolving: Mutex::default(),
            loads: AtomicUsize::new(0),
            warmed: tokio::sync::watch::channel(false).0,
            warming: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

const NO_RESOURCES: &str = "Cura's definitions are not installed on the server";

impl Profiles {
    fn resources(&self) -> Result<&Resources, ApiError> {
        self.resources
            .get_or_init(|| match Resources::discover(None) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "slicer profiles unavailable");
                    None
                }
            })
            .as_ref()
            .ok_or(ApiError::Unavailable(NO_RESOURCES))
    }

    /// True exactly once: for the caller that should run [`Profiles::warm`].
    pub fn start_warming(&self) -> bool {
        !self.warming.swap(true, Ordering::Relaxed)
    }

    /// Whether [`Profiles::start_warming`] has been called.
    pub fn warming_started(&self) -> bool {
        self.warming.load(Ordering::Relaxed)
    }

    /// Loads the machine list and the configured machine's qualities and defaults (blocking:
    /// run it on a blocking thread), so the first request finds them ready. A failure is
    /// logged; requests then report it themselves.
    pub fn warm(&self, config: &SlicerConfig) {
        let started = std::time::Instant::now();
        match self
            .machines()
            .and_then(|_| self.machine(&config.machine, config))
        {
            Ok(_) => tracing::debug!(elapsed = ?started.elapsed(), "slicer profiles loaded"),
            Err(e) => tracing::warn!(error = %e, "slicer profiles not preloaded"),
        }
        self.warmed.send_replace(true);
    }

    /// Completes once [`Profiles::warm`] has run (at once if it already has).
    pub async fn warmed(&self) {
        let mut receiver = self.warmed.subscribe();
        // The sender lives as long as `self`, so this only ends when warmed.
        let _ = receiver.wait_for(|&warm| warm).await;
    }

    /// How many times the catalogue was read from disk (the machine list, each machine's
    /// profile): shared loads keep it at one per item.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::Relaxed)
    }

    /// Every machine a user can pick, sorted by name (blocking the first time: call from a
    /// blocking thread).
    pub fn machines(&self) -> Result<Arc<Vec<MachineSummary>>, ApiError> {
        let mut kept = lock(&self.machines);
        if let Some(list) = kept.clone() {
            return Ok(list);
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let list: Vec<MachineSummary> = self
            .resources()?
            .machines()
            .map_err(ApiError::internal)?
            .into_iter()
            .map(
                |MachineInfo {
                     id,
                     name,
                     manufacturer,
                 }| MachineSummary {
                    id,
                    name,
                    manufacturer,
                },
            )
            .collect();
        let list = Arc::new(list);
        *kept = Some(list.clone());
        Ok(list)
    }

    /// A machine's qualities and defaults (blocking: call from a blocking thread). 404 for an
    /// unknown machine.
    pub fn machine(
        &self,
        id: &str,
        config: &SlicerConfig,
    ) -> Result<Arc<MachineProfile>, ApiError> {
        if let Some(found) = lock(&self.details).get(id) {
            return Ok(found.clone());
        }
        if !self.machines()?.iter().any(|m| m.id == id) && id != config.machine {
            return Err(ApiError::NotFound("machine"));
        }
        let _resolving = lock(&self.resolving);
        // Someone else may have resolved it while this thread waited.
        if let Some(found) = lock(&self.details).get(id) {
            return Ok(found.clone());
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let resources = self.resources()?;
        let machine = resources.load_machine(id).map_err(|e| {
            tracing::warn!(machine = id, error = %e, "cannot load machine definition");
            ApiError::NotFound("machine")
        })?;
        // The qualities Cura offers for the machine's default nozzle and material (per-material
        // quality files narrow the global list), and the defaults as that full stack resolves.
        let configuration = resources
            .configure(&machine, &Selection::default())
            .map_err(ApiError::internal)?;
        let qualities: Vec<QualityProfile> = resources
            .qualities(&machine)
            .map_err(ApiError::internal)?
            .into_iter()
            .filter(|q| {
                configuration
                    .available_quality_types
                    .contains(&q.quality_type)
            })
            .collect();
        let default_quality = configuration
            .global_quality
            .clone()
            .or_else(|| qualities.first().cloned());
        let infos = qualities.iter().map(quality_info).collect();
        let mut stack = SettingsStack::configured(machine, configuration);
        if id == config.machine {
            for setting in &config.settings {
                let o = easyprint_slicer::settings::Override::parse(setting)
                    .map_err(ApiError::internal)?;
                stack.set(&o).map_err(ApiError::internal)?;
            }
        }
        let resolved = stack.resolve().map_err(ApiError::internal)?;
        let get = |key: &str| {
            resolved
                .extruder(0, key)
                .or_else(|| resolved.get(key))
                .cloned()
                .unwrap_or(Value::None)
        };
        let support = if get("support_enable").truthy() {
            match get("support_type").to_string().as_str() {
                "everywhere" => Support::Everywhere,
                _ => Support::Buildplate,
            }
        } else {
            Support::None
        };
        let adhesion = match get("adhesion_type").to_string().as_str() {
            "skirt" => Adhesion::Skirt,
            "brim" => Adhesion::Brim,
            "raft" => Adhesion::Raft,
            _ => Adhesion::None,
        };
        let profile = Arc::new(MachineProfile {
            id: id.to_owned(),
            qualities: infos,
            defaults: Defaults {
                quality: default_quality.map(|q| q.quality_type),
                infill_percent: get("infill_sparse_density").as_f64().unwrap_or(0.0),
                support,
                adhesion,
                nozzle_temp: get("material_print_temperature").as_f64().unwrap_or(0.0),
                bed_temp: get("material_bed_temperature").as_f64().unwrap_or(0.0),
            },
        });
        let mut details = lock(&self.details);
        if details.len() >= MACHINES_KEPT {
            // Any entry will do: a miss only costs resolving it again.
            if let Some(key) = details.keys().next().cloned() {
                details.remove(&key);
            }
        }
        details.insert(id.to_owned(), profile.clone());
        Ok(profile)
    }

    /// Checks machine and quality of `settings` against the catalogue (blocking: call from a
    /// blocking thread), with errors naming the field.
    pub fn validate(
        &self,
        settings: &SliceSettings,
        config: &SlicerConfig,
    ) -> Result<(), ApiError> {
        settings.check_ranges()?;
        let machine_id = settings.machine.as_deref().unwrap_or(&config.machine);
        let machine = match self.machine(machine_id, config) {
            Ok(m) => m,
            Err(ApiError::NotFound(_)) => {
                return Err(invalid(
                    "machine",
                    format_args!("no machine {machine_id:?}"),
                ))
            }
            Err(e) => return Err(e),
        };
        if let Some(q) = &settings.quality {
            if !machine.qualities.iter().any(|x| &x.id == q) {
                let available: Vec<&str> =
                    machine.qualities.iter().map(|x| x.id.as_str()).collect();
                return Err(invalid(
                    "quality",
                    format_args!(
                        "no quality {q:?} for {machine_id}; available: {}",
                        available.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn quality_info(q: &QualityProfile) -> QualityInfo {
    QualityInfo {
        id: q.quality_type.clone(),
        name: if q.name.is_empty() {
            q.quality_type.clone()
        } else {
            q.name.clone()
        },
        layer_height: q.values.get("layer_height").and_then(|v| v.parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_map_to_cura_keys() {
        let s = SliceSettings {
            infill_percent: Some(35.0),
            support: Some(Support::Everywhere),
            adhesion: Some(Adhesion::Brim),
            nozzle_temp: Some(215.0),
            bed_temp: Some(65.0),
            ..Default::default()
        };
        assert_eq!(
            s.cura_overrides(),
            [
                "infill_sparse_density=35",
                "support_enable=true",
                "support_type=everywhere",
                "adhesion_type=brim",
                "material_print_temperature=215",
                "material_print_temperature_layer_0=215",
                "material_bed_temperature=65",
                "material_bed_temperature_layer_0=65",
            ]
        );
        let none = SliceSettings {
            support: Some(Support::None),
            ..Default::default()
        };
        assert_eq!(none.cura_overrides(), ["support_enable=false"]);
    }

    #[test]
    fn ranges_are_checked_and_named() {
        for (s, field) in [
            (
                SliceSettings {
                    infill_percent: Some(101.0),
                    ..Default::default()
                },
                "slicing.infill_percent",
            ),
            (
                SliceSettings {
                    nozzle_temp: Some(f64::NAN),
                    ..Default::default()
                },
                "slicing.nozzle_temp",
            ),
            (
                SliceSettings {
                    bed_temp: Some(-1.0),
                    ..Default::default()
                },
                "slicing.bed_temp",
            ),
        ] {
            let err = s.check_ranges().unwrap_err();
            assert_eq!(err.code(), "invalid_slicing_setting");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn job_settings_round_trip() {
        let s = SliceSettings {
            machine: Some("creality_ender3".into()),
            adhesion: Some(Adhesion::Raft),
            ..Default::default()
        };
        let stored = serde_json::json!({ "slicing": s, "print": false });
        assert_eq!(SliceSettings::from_job(&stored).unwrap(), s);
        assert_eq!(
            SliceSettings::from_job(&serde_json::json!({})).unwrap(),
            SliceSettings::default()
        );
    }
}
