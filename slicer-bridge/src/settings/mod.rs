//! Cura settings: definitions with inheritance, the formula language, resolution of every
//! setting as Cura's front end does it, validation, start/end G-code placeholders and a catalog
//! of user-changeable settings for a UI.
//!
//! ```no_run
//! use easyprint_slicer::settings::{Override, Resources, SettingsStack};
//! let resources = Resources::discover(None)?;
//! let machine = resources.load_machine("creality_ender3")?;
//! let mut stack = SettingsStack::new(machine, None);
//! stack.set(&Override::parse("infill_sparse_density=50")?)?;
//! stack.set(&Override::parse("infill_pattern=grid")?)?;
//! let resolved = stack.resolve()?;
//! // The engine only reads the derived key: the resolver computes it.
//! assert_eq!(resolved.extruder(0, "infill_line_distance").and_then(|v| v.as_f64()), Some(1.6));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalog;
pub mod configuration;
pub mod definitions;
pub mod eval;
pub mod expr;
pub mod gcode_tokens;
pub mod materials;
pub mod resolve;
pub mod value;

pub use catalog::{user_settings, SettingInfo};
pub use configuration::{
    Configuration, ExtruderChoice, ExtruderConfiguration, IntentInfo, Material, QualityChoice,
    Selection,
};
pub use definitions::{
    DefinitionChain, DefinitionError, MachineDefinition, MachineInfo, QualityProfile, Resources,
    SettingDef,
};
pub use resolve::{
    Diagnostic, Override, PropertyEvaluator, RawValue, ResolvedSettings, SettingsError,
    SettingsStack, StackId,
};
pub use value::Value;
