//! Meshes: read STL (binary and ASCII), OBJ and 3MF, validate, place on the bed, check the fit,
//! and write the binary STL the engine reads (CuraEngine's CLI reads STL only).

mod obj;
pub mod shapes;
mod stl;
mod threemf;

use std::path::Path;

use thiserror::Error;

pub use obj::parse_obj;
pub use stl::{parse_stl, save_binary_stl, write_binary_stl};
pub use threemf::{parse_3mf, MAX_MODEL_PART_BYTES};

/// Most triangles accepted (a 50 M-triangle mesh is 2.5 GB of STL: far beyond any print).
pub const MAX_TRIANGLES: usize = 20_000_000;
/// Largest extent accepted on any axis, in mm (10 m: a unit mix-up, e.g. µm exported as mm).
pub const MAX_EXTENT_MM: f32 = 10_000.0;
/// Smallest largest-extent accepted, in mm (a model this small cannot print: likely m as mm).
pub const MIN_EXTENT_MM: f32 = 0.05;

/// Why a model was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file has no triangles.
    #[error("model has no triangles")]
    Empty,
    /// Every triangle has zero area.
    #[error("all {0} triangles are degenerate (zero area)")]
    AllDegenerate(usize),
    /// Too many triangles.
    #[error("model has {count} triangles, more than the limit of {MAX_TRIANGLES}")]
    TooManyTriangles {
        /// Triangle count found (or claimed by the header).
        count: u64,
    },
    /// A coordinate is NaN or infinite.
    #[error("triangle {triangle} has a non-finite coordinate")]
    NonFinite {
        /// Index of the triangle.
        triangle: usize,
    },
    /// The model is implausibly large or small.
    #[error("model size {x:.3} x {y:.3} x {z:.3} mm is not plausible (check the units)")]
    AbsurdSize {
        /// X extent (mm).
        x: f32,
        /// Y extent (mm).
        y: f32,
        /// Z extent (mm).
        z: f32,
    },
    /// Binary STL whose length disagrees with its triangle count.
    #[error(
        "binary STL claims {claimed} triangles but the file holds {actual} bytes of triangle data"
    )]
    TruncatedStl {
        /// Triangle count in the header.
        claimed: u32,
        /// Bytes present after the header.
        actual: usize,
    },
    /// Text that is not a valid ASCII STL / OBJ.
    #[error("{format} syntax error at line {line}: {message}")]
    Syntax {
        /// `ASCII STL`, `OBJ` or `3MF`.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// The file is not a format this crate reads.
    #[error("unsupported model format: {0}")]
    UnsupportedFormat(String),
    /// Reading failed.
    #[error("cannot read model {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
}

/// An axis-aligned box, in mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Minimum corner.
    pub min: [f32; 3],
    /// Maximum corner.
    pub max: [f32; 3],
}

impl BoundingBox {
    /// Size on each axis.
    pub fn size(&self) -> [f32; 3] {
        [
            self.max[0] - self.min[0],
            self.max[1] - self.min[1],
            self.max[2] - self.min[2],
        ]
    }
}

/// A triangle mesh (mm).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mesh {
    /// Triangles as three vertices each.
    pub triangles: Vec<[[f32; 3]; 3]>,
    /// Degenerate (zero-area) triangles dropped while validating.
    pub dropped_degenerate: usize,
}

impl Mesh {
    /// Bounding box (`None` for an empty mesh).
    pub fn bounding_box(&self) -> Option<BoundingBox> {
        let first = self.triangles.first()?[0];
        let mut bb = BoundingBox {
            min: first,
            max: first,
        };
        for v in self.triangles.iter().flatten() {
            for (a, c) in v.iter().enumerate() {
                bb.min[a] = bb.min[a].min(*c);
                bb.max[a] = bb.max[a].max(*c);
            }
        }
        Some(bb)
    }

    /// Check the mesh can be sliced: triangles present, finite, not all degenerate, plausible
    /// size. Drops degenerate triangles (counted in `dropped_degenerate`).
    pub fn validate(mut self) -> Result<Mesh, ModelError> {
        if self.triangles.is_empty() {
            return Err(ModelError::Empty);
        }
        if self.triangles.len() > MAX_TRIANGLES {
            return Err(ModelError::TooManyTriangles {
                count: self.triangles.len() as u64,
            });
        }
        if let Some(i) = self
            .triangles
            .iter()
            .position(|t| t.iter().flatten().any(|c| !c.is_finite()))
        {
            return Err(ModelError::NonFinite { triangle: i });
        }
        let before = self.triangles.len();
        self.triangles.retain(|t| !is_degenerate(t));
        self.dropped_degenerate += before - self.triangles.len();
        if self.triangles.is_empty() {
            return Err(ModelError::AllDegenerate(before));
        }
        let [x, y, z] = self.bounding_box().map(|b| b.size()).unwrap_or_default();
        let largest = x.max(y).max(z);
        if !(MIN_EXTENT_MM..=MAX_EXTENT_MM).contains(&largest) {
            return Err(ModelError::AbsurdSize { x, y, z });
        }
        Ok(self)
    }

    /// Move the mesh so its footprint is centred on the origin and it stands on z = 0 — where
    /// CuraEngine puts the bed centre (it adds half the bed when `machine_center_is_zero` is
    /// false).
    pub fn center_on_origin(&mut self) {
        let Some(bb) = self.bounding_box() else {
            return;
        };
        let dx = -(bb.min[0] + bb.max[0]) / 2.0;
        let dy = -(bb.min[1] + bb.max[1]) / 2.0;
        let dz = -bb.min[2];
        for v in self.triangles.iter_mut().flatten() {
            v[0] += dx;
            v[1] += dy;
            v[2] += dz;
        }
    }
}

/// Three coordinates from whitespace-separated words (STL `vertex`, OBJ `v`).
fn parse_xyz<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<[f32; 3], String> {
    let mut v = [0f32; 3];
    for c in &mut v {
        let w = words.next().ok_or("vertex needs three coordinates")?;
        *c = w.parse().map_err(|_| format!("bad coordinate `{w}`"))?;
    }
    Ok(v)
}

fn is_degenerate(t: &[[f32; 3]; 3]) -> bool {
    let [a, b, c] = t.map(|v| v.map(f64::from));
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let w = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let n = [
        u[1] * w[2] - u[2] * w[1],
        u[2] * w[0] - u[0] * w[2],
        u[0] * w[1] - u[1] * w[0],
    ];
    // Twice the area; below 1e-12 mm² nothing of it survives slicing.
    (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() < 1e-12
}

/// Read a model file (STL, OBJ or 3MF, by extension) and validate it.
pub fn load(path: &Path) -> Result<Mesh, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mesh = match ext.as_str() {
        "stl" => parse_stl(&bytes)?,
        "obj" => parse_obj(&bytes)?,
        "3mf" => parse_3mf(&bytes)?,
        other => {
            return Err(ModelError::UnsupportedFormat(format!(
                "`.{other}` (supported: .stl, .obj, .3mf)"
            )))
        }
    };
    mesh.validate()
}

/// The printable volume of a machine, in bed coordinates (origin at the front-left corner).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildVolume {
    /// Bed width (X), mm.
    pub width: f32,
    /// Bed depth (Y), mm.
    pub depth: f32,
    /// Printable height (Z), mm.
    pub height: f32,
    /// Forbidden areas (polygons in centre-origin coordinates, as Cura stores them).
    pub disallowed: Vec<Vec<[f32; 2]>>,
}

/// Why a placed model does not fit.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum FitError {
    /// Larger than the bed on some axis.
    #[error("model is {size:?} mm but the build volume is {volume:?} mm ({axis} too large)")]
    TooLarge {
        /// Model size.
        size: [f32; 3],
        /// Build volume.
        volume: [f32; 3],
        /// The first axis that does not fit.
        axis: char,
    },
    /// Overlaps one of the machine's disallowed areas (clips, bed edges).
    #[error("model footprint overlaps disallowed area {index} of the bed")]
    DisallowedArea {
        /// Index in `machine_disallowed_areas`.
        index: usize,
    },
}

impl BuildVolume {
    /// Check a centred mesh's bounding box fits: size within the volume and footprint clear of
    /// the disallowed areas (by bounding box: conservative).
    pub fn check(&self, centred: &BoundingBox) -> Result<(), FitError> {
        let size = centred.size();
        let volume = [self.width, self.depth, self.height];
        for (a, axis) in ['X', 'Y', 'Z'].into_iter().enumerate() {
            if size[a] > volume[a] + 1e-3 {
                return Err(FitError::TooLarge { size, volume, axis });
            }
        }
        for (index, poly) in self.disallowed.iter().enumerate() {
            if poly.is_empty() {
                continue;
            }
            let (mut lo, mut hi) = (poly[0], poly[0]);
            for p in poly {
                lo = [lo[0].min(p[0]), lo[1].min(p[1])];
                hi = [hi[0].max(p[0]), hi[1].max(p[1])];
            }
            // Cura's Y axis points away from the front: its polygons are mirrored in Y.
            let (ylo, yhi) = (-hi[1], -lo[1]);
            let overlaps = centred.min[0] < hi[0]
                && centred.max[0] > lo[0]
                && centred.min[1] < yhi
                && centred.max[1] > ylo;
            if overlaps {
                return Err(FitError::DisallowedArea { index });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tri(z: f32) -> [[f32; 3]; 3] {
        [[0.0, 0.0, z], [10.0, 0.0, z], [0.0, 10.0, z + 5.0]]
    }

    #[test]
    fn validation_classes() {
        assert_eq!(Mesh::default().validate(), Err(ModelError::Empty));
        let flat = Mesh {
            triangles: vec![[[1.0, 1.0, 1.0]; 3]],
            ..Mesh::default()
        };
        assert_eq!(flat.validate(), Err(ModelError::AllDegenerate(1)));
        let nan = Mesh {
            triangles: vec![
                tri(0.0),
                [[f32::NAN, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            ],
            ..Mesh::default()
        };
        assert_eq!(nan.validate(), Err(ModelError::NonFinite { triangle: 1 }));
        let huge = Mesh {
            triangles: vec![tri(0.0), tri(50_000.0)],
            ..Mesh::default()
        };
        assert!(matches!(
            huge.validate(),
            Err(ModelError::AbsurdSize { .. })
        ));
        let some_degenerate = Mesh {
            triangles: vec![tri(0.0), [[1.0, 1.0, 1.0]; 3]],
            ..Mesh::default()
        };
        assert_eq!(some_degenerate.validate().unwrap().dropped_degenerate, 1);
    }

    #[test]
    fn centring_and_fit() {
        let mut m = Mesh {
            triangles: vec![tri(3.0)],
            ..Mesh::default()
        };
        m.center_on_origin();
        let bb = m.bounding_box().unwrap();
        assert_eq!(bb.min, [-5.0, -5.0, 0.0]);
        assert_eq!(bb.max, [5.0, 5.0, 5.0]);
        let vol = BuildVolume {
            width: 235.0,
            depth: 235.0,
            height: 250.0,
            disallowed: vec![vec![
                [-117.5, 117.5],
                [-117.5, 108.0],
                [117.5, 108.0],
                [117.5, 117.5],
            ]],
        };
        assert_eq!(vol.check(&bb), Ok(()));
        let deep = BoundingBox {
            min: [-5.0, -115.0, 0.0],
            max: [5.0, 0.0, 5.0],
        };
        assert_eq!(vol.check(&deep), Err(FitError::DisallowedArea { index: 0 }));
        let big = BoundingBox {
            min: [-150.0, -5.0, 0.0],
            max: [150.0, 5.0, 5.0],
        };
        assert!(matches!(
            vol.check(&big),
            Err(FitError::TooLarge { axis: 'X', .. })
        ));
    }
}
