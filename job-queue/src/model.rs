//! The job domain model: identifiers, what a job prints, what it needs from a printer.
//!
//! Plain data with validation; no I/O and no clock reads (time is always passed in as
//! a [`Timestamp`]).

use std::fmt;

use thiserror::Error;

use crate::state::JobState;

/// Milliseconds since the Unix epoch (UTC), as given by the caller.
///
/// The core never reads a clock: every operation that needs "now" takes one, which keeps
/// tests deterministic and lets a host use whatever clock it trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The time `millis` milliseconds after `self` (saturating).
    pub fn plus_millis(self, millis: u64) -> Timestamp {
        let millis = i64::try_from(millis).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A job's identifier, assigned by the store at enqueue and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Identifies one attempt at slicing or printing a job; it doubles as the lease's fencing
/// token: a worker whose run is no longer the job's current run has lost its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {}", self.0)
    }
}

/// Lowercase hex SHA-256 (or any 16..=128 hex digit digest) naming a stored file by content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(String);

impl ContentHash {
    /// Validates and normalises (to lowercase) a hex digest.
    ///
    /// ```
    /// use easyprint_queue::ContentHash;
    /// let h = ContentHash::parse("AB12cd34ab12cd34").unwrap();
    /// assert_eq!(h.as_str(), "ab12cd34ab12cd34");
    /// assert!(ContentHash::parse("not hex").is_err());
    /// ```
    pub fn parse(hex: &str) -> Result<ContentHash, JobSpecError> {
        let ok_len = (16..=128).contains(&hex.len());
        if !ok_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(JobSpecError::BadContentHash(
                hex.chars().take(140).collect(),
            ));
        }
        Ok(ContentHash(hex.to_ascii_lowercase()))
    }

    /// The lowercase hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a job's source must be sliced first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A 3D model (STL, 3MF…): the job starts `queued` and goes through `slicing`.
    Model,
    /// Ready-to-print G-code: the job starts `ready`.
    Gcode,
}

impl SourceKind {
    /// Stable lowercase name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Model => "model",
            SourceKind::Gcode => "gcode",
        }
    }

    /// Inverse of [`SourceKind::as_str`].
    pub fn from_name(name: &str) -> Option<SourceKind> {
        match name {
            "model" => Some(SourceKind::Model),
            "gcode" => Some(SourceKind::Gcode),
            _ => None,
        }
    }
}

/// The file a job prints, by content hash (files are stored elsewhere, deduplicated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSource {
    /// Digest of the file's bytes.
    pub hash: ContentHash,
    /// The name the user gave the file (display only; never used as a path).
    pub file_name: String,
    /// Model or G-code.
    pub kind: SourceKind,
}

/// Build volume in millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildVolume {
    /// X extent.
    pub x_mm: f64,
    /// Y extent.
    pub y_mm: f64,
    /// Z extent.
    pub z_mm: f64,
}

impl BuildVolume {
    /// A volume of `x_mm` × `y_mm` × `z_mm`.
    pub const fn new(x_mm: f64, y_mm: f64, z_mm: f64) -> BuildVolume {
        BuildVolume { x_mm, y_mm, z_mm }
    }

    /// True if an object of size `needed` fits inside `self` (no rotation).
    pub fn fits(&self, needed: &BuildVolume) -> bool {
        needed.x_mm <= self.x_mm && needed.y_mm <= self.y_mm && needed.z_mm <= self.z_mm
    }
}

/// What a printer must offer to take a job; `None` fields match any printer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Requirements {
    /// Nozzle diameter in micrometres (0.4 mm = 400); integers avoid float equality traps.
    pub nozzle_um: Option<u32>,
    /// Loaded material, compared case-insensitively (`"PLA"` = `"pla"`).
    pub material: Option<String>,
    /// Size of the part: the printer's build volume must be at least this big.
    pub min_build_volume: Option<BuildVolume>,
}

/// Which printers may take a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Exactly this printer.
    Printer(String),
    /// Any printer meeting the requirements.
    Any(Requirements),
}

/// What a printer offers, given when it claims work.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterProfile {
    /// The printer's stable identifier.
    pub id: String,
    /// Installed nozzle in micrometres.
    pub nozzle_um: u32,
    /// Loaded material, if known (a job requiring a material never matches `None`).
    pub material: Option<String>,
    /// Usable build volume.
    pub build_volume: BuildVolume,
}

impl PrinterProfile {
    /// The same matching rule the stores apply in SQL, for callers and tests.
    pub fn accepts(&self, target: &Target) -> bool {
        match target {
            Target::Printer(id) => id == &self.id,
            Target::Any(req) => {
                req.nozzle_um.is_none_or(|n| n == self.nozzle_um)
                    && req.material.as_ref().is_none_or(|m| {
                        self.material
                            .as_ref()
                            .is_some_and(|have| have.eq_ignore_ascii_case(m))
                    })
                    && req
                        .min_build_volume
                        .as_ref()
                        .is_none_or(|v| self.build_volume.fits(v))
            }
        }
    }
}

/// A request to add a job, validated by [`NewJob::validate`] before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Who asked for the print.
    pub owner: String,
    /// The file to print.
    pub source: JobSource,
    /// Slicer settings as a JSON object (ignored for G-code sources, still stored).
    pub settings: serde_json::Value,
    /// Where it may print.
    pub target: Target,
    /// Higher runs first; ties keep queue order.
    pub priority: i32,
    /// How many times to print it (≥ 1).
    pub copies: u32,
    /// Do not start before this time (scheduled prints).
    pub not_before: Option<Timestamp>,
}

/// Longest owner / file / printer / material / reason text accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

impl NewJob {
    /// A job with defaults: any printer, priority 0, one copy, no schedule, `{}` settings.
    pub fn new(owner: impl Into<String>, source: JobSource) -> NewJob {
        NewJob {
            owner: owner.into(),
            source,
            settings: serde_json::Value::Object(Default::default()),
            target: Target::Any(Requirements::default()),
            priority: 0,
            copies: 1,
            not_before: None,
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), JobSpecError> {
        check_text("owner", &self.owner)?;
        check_text("file name", &self.source.file_name)?;
        if self.copies == 0 {
            return Err(JobSpecError::ZeroCopies);
        }
        if !self.settings.is_object() {
            return Err(JobSpecError::SettingsNotObject);
        }
        self.target.validate()
    }
}

impl Target {
    /// Checks the printer id or requirements, naming the first bad field.
    pub fn validate(&self) -> Result<(), JobSpecError> {
        match self {
            Target::Printer(id) => check_text("target printer", id)?,
            Target::Any(req) => {
                if let Some(m) = &req.material {
                    check_text("material", m)?;
                }
                if req.nozzle_um == Some(0) {
                    return Err(JobSpecError::BadNumber("nozzle diameter"));
                }
                if let Some(v) = &req.min_build_volume {
                    let ok = [v.x_mm, v.y_mm, v.z_mm]
                        .iter()
                        .all(|d| d.is_finite() && *d >= 0.0);
                    if !ok {
                        return Err(JobSpecError::BadNumber("build volume"));
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), JobSpecError> {
    if text.trim().is_empty() {
        return Err(JobSpecError::EmptyText(field));
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(JobSpecError::TextTooLong {
            field,
            len: text.len(),
        });
    }
    if text.chars().any(char::is_control) {
        return Err(JobSpecError::ControlCharacter(field));
    }
    Ok(())
}

/// A job description that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JobSpecError {
    /// Not a hex digest of 16..=128 digits.
    #[error("content hash {0:?} is not 16 to 128 hex digits")]
    BadContentHash(String),
    /// A required text field is empty or blank.
    #[error("{0} is empty")]
    EmptyText(&'static str),
    /// A text field exceeds [`MAX_TEXT_LEN`].
    #[error("{field} is {len} bytes long, the limit is 1024")]
    TextTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A text field contains a control character (newline, NUL, escape…).
    #[error("{0} contains a control character")]
    ControlCharacter(&'static str),
    /// `copies` was zero.
    #[error("copies must be at least 1")]
    ZeroCopies,
    /// Settings must be a JSON object.
    #[error("slicing settings must be a JSON object")]
    SettingsNotObject,
    /// A numeric field is zero, negative or not finite.
    #[error("{0} must be a positive finite number")]
    BadNumber(&'static str),
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Identifier.
    pub id: JobId,
    /// Who asked for it.
    pub owner: String,
    /// The file it was created from.
    pub source: JobSource,
    /// The G-code to print: the source itself for G-code jobs, the slicer's output once sliced.
    pub gcode: Option<ContentHash>,
    /// Slicer settings (JSON object).
    pub settings: serde_json::Value,
    /// Which printers may take it.
    pub target: Target,
    /// Higher first.
    pub priority: i32,
    /// Position among equal priorities (lower first); reordering changes it.
    pub rank: f64,
    /// Copies requested.
    pub copies: u32,
    /// Copies finished so far.
    pub copies_done: u32,
    /// Earliest start.
    pub not_before: Option<Timestamp>,
    /// Current state.
    pub state: JobState,
    /// Print attempts started so far (retries and copies included).
    pub attempts: u32,
    /// Why it last failed or was interrupted, if it did.
    pub failure: Option<String>,
    /// The current lease, while slicing, printing or paused.
    pub lease: Option<Lease>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// Last change of any field except progress.
    pub updated_at: Timestamp,
    /// When it reached done, failed or cancelled.
    pub finished_at: Option<Timestamp>,
}

/// The right of one worker to drive one run of a job until `expires_at`; renewed by heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// The run: the fencing token every worker call must present.
    pub run: RunId,
    /// Worker (host process, slicer…) holding it.
    pub worker: String,
    /// Printer it prints on (`None` while slicing).
    pub printer: Option<String>,
    /// Past this time without a heartbeat the job is taken away (printing → interrupted).
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> PrinterProfile {
        PrinterProfile {
            id: "ender".into(),
            nozzle_um: 400,
            material: Some("PLA".into()),
            build_volume: BuildVolume::new(220.0, 220.0, 250.0),
        }
    }

    #[test]
    fn printer_matching_rules() {
        let p = profile();
        assert!(p.accepts(&Target::Any(Requirements::default())));
        assert!(p.accepts(&Target::Printer("ender".into())));
        assert!(!p.accepts(&Target::Printer("anet".into())));
        let req = |n, m: Option<&str>, z| {
            Target::Any(Requirements {
                nozzle_um: n,
                material: m.map(String::from),
                min_build_volume: Some(BuildVolume::new(10.0, 10.0, z)),
            })
        };
        assert!(p.accepts(&req(Some(400), Some("pla"), 250.0)));
        assert!(!p.accepts(&req(Some(600), None, 1.0)));
        assert!(!p.accepts(&req(None, Some("PETG"), 1.0)));
        assert!(!p.accepts(&req(None, None, 250.5)));
    }

    #[test]
    fn new_job_validation_names_the_field() {
        let src = JobSource {
            hash: ContentHash::parse("00112233445566778899aabbccddeeff").unwrap(),
            file_name: "cube.stl".into(),
            kind: SourceKind::Model,
        };
        let mut job = NewJob::new("ann", src);
        assert_eq!(job.validate(), Ok(()));
        job.owner = "a\nb".into();
        assert_eq!(job.validate(), Err(JobSpecError::ControlCharacter("owner")));
        job.owner = " ".into();
        assert_eq!(job.validate(), Err(JobSpecError::EmptyText("owner")));
        job.owner = "ann".into();
        job.copies = 0;
        assert_eq!(job.validate(), Err(JobSpecError::ZeroCopies));
        job.copies = 1;
        job.settings = serde_json::json!([1]);
        assert_eq!(job.validate(), Err(JobSpecError::SettingsNotObject));
    }
}
