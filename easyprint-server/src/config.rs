//! Server configuration: a TOML file plus `EASYPRINT_*` environment overrides.
//!
//! Every field has a default, so an empty file is a valid configuration. Overrides are applied
//! after the file is parsed, so a service manager can change the listen address or data directory
//! without editing the file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use easyprint_marlin::printer::{CancelScript, GcodeTemplate, HostScripts, PauseScript};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file that was read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has fields of the wrong type.
    #[error("invalid config file {path}")]
    Parse {
        /// The file that was parsed.
        path: PathBuf,
        /// The parser's error, with line and column.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// An `EASYPRINT_*` environment variable has a value that does not parse.
    #[error("invalid value {value:?} in environment variable {name}")]
    Env {
        /// The variable's name.
        name: &'static str,
        /// The offending value.
        value: String,
    },
    /// A value parsed but makes no sense (for example a zero limit).
    #[error("invalid setting {field}: {reason}")]
    Invalid {
        /// The setting's dotted name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A printer's host scripts do not make sense (a bad number or G-code template).
    #[error("invalid setting printers.host_scripts.{field} of printer {printer}: {reason}")]
    HostScripts {
        /// The printer's id.
        printer: String,
        /// The setting's dotted name under `host_scripts`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on (`EASYPRINT_LISTEN`).
    pub listen: SocketAddr,
    /// Directory for the database, uploads and temporary files (`EASYPRINT_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Reverse proxies whose `X-Forwarded-For` header is believed (addresses or CIDR networks,
    /// `EASYPRINT_TRUSTED_PROXIES`, comma separated). Empty: the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Extra origins (like `https://printer.example`) allowed to open the WebSocket besides the
    /// server's own.
    pub allowed_origins: Vec<String>,
    /// Mark cookies `Secure` (set this when the server is only reached over HTTPS).
    pub secure_cookies: bool,
    /// Resource limits.
    pub limits: Limits,
    /// Accounts created at start-up when they do not exist yet.
    pub users: Vec<ConfiguredUser>,
    /// Printers this server drives.
    pub printers: Vec<PrinterConfig>,
    /// The printer id OctoPrint clients print on when they have not chosen one through
    /// `/api/connection` (needed with several printers: slicers never choose).
    pub default_printer: Option<String>,
    /// Slicing of uploaded models.
    pub slicer: SlicerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("easyprint-data"),
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            secure_cookies: false,
            limits: Limits::default(),
            users: Vec::new(),
            printers: Vec::new(),
            default_printer: None,
            slicer: SlicerConfig::default(),
        }
    }
}

/// Resource limits. Defaults follow OctoPrint and Moonraker where they agree.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted upload in bytes (`EASYPRINT_MAX_UPLOAD_BYTES`, default 1 GiB).
    pub max_upload_bytes: u64,
    /// Uploads received at the same time (default 4); more answer 503.
    pub max_concurrent_uploads: usize,
    /// Seconds an upload may stall without sending a byte before it is aborted with 408
    /// (default 60; slow-loris protection).
    pub upload_idle_timeout_secs: u64,
    /// Largest accepted non-upload request body (JSON) in bytes (default 64 KiB).
    pub max_body_bytes: usize,
    /// Simultaneous WebSocket clients (default 100); more are closed with code 1008.
    pub max_ws_clients: usize,
    /// Event messages (terminal lines, notifications) queued for one WebSocket client before it
    /// is considered stuck and dropped (default 1024).
    pub ws_client_queue: usize,
    /// Seconds a WebSocket client may go without answering a ping (default 60).
    pub ws_idle_timeout_secs: u64,
    /// Lifetime of a login session in seconds (default 7 days).
    pub session_ttl_secs: u64,
    /// Seconds a client may take to send a request's headers (default 10; slow-loris
    /// protection: the connection is closed).
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a non-upload request body (default 30; 408).
    pub body_timeout_secs: u64,
    /// Bytes of uploads one user may store (default 20 GiB); an upload beyond it is refused
    /// with 413 `quota_exceeded`.
    pub user_quota_bytes: u64,
    /// Free disk space uploads must leave (default 512 MiB), so the queue, the history and the
    /// slicer always have room; an upload that would go below it gets 507
    /// `insufficient_storage`.
    pub min_free_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: 1 << 30,
            max_concurrent_uploads: 4,
            upload_idle_timeout_secs: 60,
            max_body_bytes: 64 * 1024,
            max_ws_clients: 100,
            ws_client_queue: 1024,
            ws_idle_timeout_secs: 60,
            session_ttl_secs: 7 * 24 * 3600,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            user_quota_bytes: 20 << 30,
            min_free_bytes: 512 << 20,
        }
    }
}

/// An account declared in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredUser {
    /// Login name.
    pub name: String,
    /// Argon2 PHC string (`$argon2id$...`), as printed by `easyprint user hash`.
    pub password_hash: String,
    /// Whether the account is an administrator.
    #[serde(default)]
    pub admin: bool,
}

/// A printer declared in the configuration file (or added at runtime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterConfig {
    /// Stable identifier used in URLs and WebSocket keys.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
    /// Serial device path, or `virtual` for the simulated printer.
    pub port: String,
    /// Baud rate (default 115200).
    #[serde(default = "default_baud")]
    pub baudrate: u32,
    /// Connect when the server starts (default true).
    #[serde(default = "default_true")]
    pub autoconnect: bool,
    /// How the simulated printer behaves (only for `port = "virtual"`).
    #[serde(default)]
    pub simulation: SimulationConfig,
    /// What the host does when a print is paused, resumed or cancelled.
    #[serde(default)]
    pub host_scripts: HostScriptsConfig,
}

/// The host's pause, resume and cancel scripts for a printer (easyprint-marlin's
/// `HostScripts`), `[printers.host_scripts.pause]` and `[printers.host_scripts.cancel]` in the
/// configuration file, `"host_scripts": {"pause": {…}, "cancel": {…}}` in the printer API.
/// Every field is optional; the defaults are easyprint-marlin's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostScriptsConfig {
    /// Pause (park) and resume (return).
    pub pause: PauseScriptConfig,
    /// Cancel.
    pub cancel: CancelScriptConfig,
}

/// What a pause does after the moves in flight finished, and how resume returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PauseScriptConfig {
    /// Filament retracted at the pause and primed back at resume, in mm.
    pub retract_mm: f64,
    /// Extra filament primed at resume (ooze while parked), in mm.
    pub extra_prime_mm: f64,
    /// Retract and prime feed rate, mm/min.
    pub retract_feedrate: f64,
    /// Nozzle lift at the pause, in mm (never above `max_z`).
    pub lift_mm: f64,
    /// The machine's highest Z, in mm.
    pub max_z: f64,
    /// Move to `park_xy` once lifted.
    pub park: bool,
    /// Park position, `[x, y]` in mm.
    pub park_xy: [f64; 2],
    /// XY travel feed rate, mm/min.
    pub travel_feedrate: f64,
    /// Z feed rate, mm/min.
    pub z_feedrate: f64,
    /// Turn the hotend off after this many seconds paused (resume reheats first).
    pub hotend_off_after_secs: Option<u64>,
    /// G-code run once parked: one command a line, `{x}` `{y}` `{z}` `{e}` `{f}` stand for
    /// the pause point.
    pub after_pause: String,
    /// G-code run at resume before the return moves (same placeholders).
    pub before_resume: String,
}

impl Default for PauseScriptConfig {
    fn default() -> Self {
        let d = PauseScript::default();
        PauseScriptConfig {
            retract_mm: d.retract_mm,
            extra_prime_mm: d.extra_prime_mm,
            retract_feedrate: d.retract_feedrate,
            lift_mm: d.lift_mm,
            max_z: d.max_z,
            park: d.park_xy.is_some(),
            park_xy: d.park_xy.unwrap_or([0.0, 0.0]),
            travel_feedrate: d.travel_feedrate,
            z_feedrate: d.z_feedrate,
            hotend_off_after_secs: d.hotend_off_after.map(|t| t.as_secs()),
            after_pause: String::new(),
            before_resume: String::new(),
        }
    }
}

/// What a cancel does after the moves in flight finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CancelScriptConfig {
    /// Hotend and bed off.
    pub heaters_off: bool,
    /// Part fan off.
    pub fan_off: bool,
    /// Motors off.
    pub motors_off: bool,
    /// G-code run last (placeholders as in the pause script).
    pub after_cancel: String,
}

impl Default for CancelScriptConfig {
    fn default() -> Self {
        let d = CancelScript::default();
        CancelScriptConfig {
            heaters_off: d.heaters_off,
            fan_off: d.fan_off,
            motors_off: d.motors_off,
            after_cancel: String::new(),
        }
    }
}

impl HostScriptsConfig {
    /// The scripts for easyprint-marlin, or the field (dotted, under `host_scripts`) that is
    /// wrong and why.
    pub fn to_marlin(&self) -> Result<HostScripts, (&'static str, String)> {
        let p = &self.pause;
        let numbers = [
            ("pause.retract_mm", p.retract_mm, 0.0),
            ("pause.extra_prime_mm", p.extra_prime_mm, 0.0),
            ("pause.lift_mm", p.lift_mm, 0.0),
            ("pause.max_z", p.max_z, f64::MIN_POSITIVE),
            (
                "pause.retract_feedrate",
                p.retract_feedrate,
                f64::MIN_POSITIVE,
            ),
            (
                "pause.travel_feedrate",
                p.travel_feedrate,
                f64::MIN_POSITIVE,
            ),
            ("pause.z_feedrate", p.z_feedrate, f64::MIN_POSITIVE),
        ];
        for (field, value, least) in numbers {
            if !value.is_finite() || value < least || value > 100_000.0 {
                let what = if least > 0.0 {
                    "positive"
                } else {
                    "zero or more"
                };
                return Err((field, format!("must be {what} and at most 100000")));
            }
        }
        if !p
            .park_xy
            .iter()
            .all(|v| v.is_finite() && v.abs() <= 10_000.0)
        {
            return Err(("pause.park_xy", "must be two numbers within ±10000".into()));
        }
        let template = |field: &'static str, text: &str| {
            GcodeTemplate::parse(text).map_err(|e| (field, e.to_string()))
        };
        Ok(HostScripts {
            pause: PauseScript {
                retract_mm: p.retract_mm,
                extra_prime_mm: p.extra_prime_mm,
                retract_feedrate: p.retract_feedrate,
                lift_mm: p.lift_mm,
                max_z: p.max_z,
                park_xy: p.park.then_some(p.park_xy),
                travel_feedrate: p.travel_feedrate,
                z_feedrate: p.z_feedrate,
                hotend_off_after: p.hotend_off_after_secs.map(Duration::from_secs),
                after_pause: template("pause.after_pause", &p.after_pause)?,
                before_resume: template("pause.before_resume", &p.before_resume)?,
            },
            cancel: CancelScript {
                heaters_off: self.cancel.heaters_off,
                fan_off: self.cancel.fan_off,
                motors_off: self.cancel.motors_off,
                after_cancel: template("cancel.after_cancel", &self.cancel.after_cancel)?,
            },
        })
    }
}

/// Behaviour of a `virtual` printer (easyprint-marlin's simulator on a pseudo-terminal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationConfig {
    /// Moves take no time (tests) instead of their length over the feed rate.
    pub instant_moves: bool,
    /// Heating speed in °C per second.
    pub heating_rate: f64,
    /// Duration of `G28` in seconds.
    pub homing_secs: f64,
    /// Simulated serial line speed in baud (the pty itself has none).
    pub link_baud: u32,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            instant_moves: false,
            heating_rate: 20.0,
            homing_secs: 2.0,
            link_baud: 250_000,
        }
    }
}

impl SimulationConfig {
    /// Everything as fast as the simulator allows (tests).
    pub fn instant() -> SimulationConfig {
        SimulationConfig {
            instant_moves: true,
            heating_rate: 10_000.0,
            homing_secs: 0.0,
            link_baud: 2_000_000,
        }
    }
}

impl PrinterConfig {
    /// A simulated printer with the given id.
    pub fn simulated(id: &str, simulation: SimulationConfig) -> PrinterConfig {
        PrinterConfig {
            id: id.to_owned(),
            name: None,
            port: "virtual".to_owned(),
            baudrate: default_baud(),
            autoconnect: true,
            simulation,
            host_scripts: HostScriptsConfig::default(),
        }
    }
}

/// Slicing of uploaded models with CuraEngine.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlicerConfig {
    /// Cura machine definition id (see `/usr/share/cura/resources/definitions`).
    pub machine: String,
    /// Setting overrides as `key=value` (Cura setting keys).
    pub settings: Vec<String>,
    /// Longest a slice may take, in seconds.
    pub timeout_secs: u64,
    /// Load the machine catalogue and the configured machine's profile in the background when
    /// the first person signs in (default true), so the first slice dialog opens at once.
    pub preload_profiles: bool,
}

impl Default for SlicerConfig {
    fn default() -> Self {
        SlicerConfig {
            machine: "creality_ender3".to_owned(),
            settings: Vec::new(),
            timeout_secs: 600,
            preload_profiles: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_baud() -> u32 {
    115_200
}

impl Config {
    /// Reads `path`, then applies environment overrides and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.with_env_overrides(|name| std::env::var(name).ok())
    }

    /// Applies `EASYPRINT_*` overrides read through `lookup` and validates the result.
    ///
    /// `lookup` is a parameter so tests need not touch the process environment.
    pub fn with_env_overrides(
        mut self,
        lookup: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        fn parse<T: FromStr>(name: &'static str, value: String) -> Result<T, ConfigError> {
            value
                .trim()
                .parse()
                .map_err(|_| ConfigError::Env { name, value })
        }
        if let Some(v) = lookup("EASYPRINT_LISTEN") {
            self.listen = parse("EASYPRINT_LISTEN", v)?;
        }
        if let Some(v) = lookup("EASYPRINT_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = lookup("EASYPRINT_MAX_UPLOAD_BYTES") {
            self.limits.max_upload_bytes = parse("EASYPRINT_MAX_UPLOAD_BYTES", v)?;
        }
        if let Some(v) = lookup("EASYPRINT_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse_net(s).ok_or(()))
                .collect::<Result<_, ()>>()
                .map_err(|()| ConfigError::Env {
                    name: "EASYPRINT_TRUSTED_PROXIES",
                    value: v.clone(),
                })?;
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::Invalid { field, reason });
        if self.limits.max_upload_bytes == 0 {
            return invalid("limits.max_upload_bytes", "must be greater than zero");
        }
        if self.limits.max_concurrent_uploads == 0 {
            return invalid("limits.max_concurrent_uploads", "must be greater than zero");
        }
        if self.limits.upload_idle_timeout_secs == 0 {
            return invalid(
                "limits.upload_idle_timeout_secs",
                "must be greater than zero",
            );
        }
        if self.limits.max_ws_clients == 0 {
            return invalid("limits.max_ws_clients", "must be greater than zero");
        }
        if self.limits.ws_client_queue == 0 {
            return invalid("limits.ws_client_queue", "must be greater than zero");
        }
        if self.limits.session_ttl_secs == 0 {
            return invalid("limits.session_ttl_secs", "must be greater than zero");
        }
        let mut ids = std::collections::HashSet::new();
        for printer in &self.printers {
            if !is_valid_printer_id(&printer.id) {
                return invalid(
                    "printers.id",
                    "must be 1 to 64 ASCII letters, digits, - or _",
                );
            }
            if !ids.insert(printer.id.as_str()) {
                return invalid("printers.id", "must be unique");
            }
            if let Err((field, reason)) = printer.host_scripts.to_marlin() {
                return Err(ConfigError::HostScripts {
                    printer: printer.id.clone(),
                    field,
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// Whether `id` can name a printer: 1 to 64 ASCII letters, digits, `-` or `_`.
pub fn is_valid_printer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses `10.0.0.1` or `10.0.0.0/8` (a bare address is a one-address network).
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.listen.port(), 5000);
        assert_eq!(config.limits.max_upload_bytes, 1 << 30);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<Config>("listn = \"1.2.3.4:5\"").unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn env_overrides_win_and_are_validated() {
        let config: Config = toml::from_str("listen = \"127.0.0.1:1\"").unwrap();
        let config = config
            .with_env_overrides(|name| match name {
                "EASYPRINT_LISTEN" => Some("0.0.0.0:8080".into()),
                "EASYPRINT_TRUSTED_PROXIES" => Some("10.0.0.1, 192.168.0.0/16".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(config.trusted_proxies[0].contains(&"10.0.0.1".parse::<IpAddr>().unwrap()));

        let err = Config::default()
            .with_env_overrides(|name| (name == "EASYPRINT_LISTEN").then(|| "nope".into()))
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                name: "EASYPRINT_LISTEN",
                ..
            }
        ));
    }

    #[test]
    fn duplicate_printer_ids_are_rejected() {
        let config: Config = toml::from_str(
            "[[printers]]\nid = \"a\"\nport = \"virtual\"\n[[printers]]\nid = \"a\"\nport = \"/dev/ttyUSB0\"\n",
        )
        .unwrap();
        let err = config.with_env_overrides(|_| None).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                field: "printers.id",
                ..
            }
        ));
    }

    #[test]
    fn host_scripts_come_from_the_file_and_are_checked() {
        let text = "[[printers]]\nid = \"a\"\nport = \"virtual\"\n\
                    [printers.host_scripts.pause]\nlift_mm = 3.5\npark = false\n\
                    after_pause = \"M117 paused at {z}\\nM300\"\n\
                    [printers.host_scripts.cancel]\nmotors_off = false\n";
        let config: Config = toml::from_str(text).unwrap();
        let config = config.with_env_overrides(|_| None).unwrap();
        let scripts = config.printers[0].host_scripts.to_marlin().unwrap();
        assert_eq!(scripts.pause.lift_mm, 3.5);
        assert_eq!(scripts.pause.park_xy, None);
        assert_eq!(scripts.pause.retract_mm, PauseScript::default().retract_mm);
        assert_eq!(
            scripts.pause.after_pause.lines(),
            ["M117 paused at {z}", "M300"]
        );
        assert!(!scripts.cancel.motors_off && scripts.cancel.heaters_off);

        let bad = text.replace("{z}", "{w}");
        let config: Config = toml::from_str(&bad).unwrap();
        let err = config.with_env_overrides(|_| None).unwrap_err();
        assert!(
            matches!(&err, ConfigError::HostScripts { printer, field: "pause.after_pause", .. } if printer == "a"),
            "{err:?}"
        );
        assert!(err.to_string().contains("unknown placeholder {w}"), "{err}");
        let typo = text.replace("lift_mm", "lift");
        assert!(toml::from_str::<Config>(&typo).is_err());
    }
}
