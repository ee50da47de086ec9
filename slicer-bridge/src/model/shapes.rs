//! Generated test and calibration meshes (closed, outward-facing triangles).

use super::Mesh;

type Tri = [[f32; 3]; 3];

fn quad(a: [f32; 3], b: [f32; 3], c: [f32; 3], d: [f32; 3]) -> [Tri; 2] {
    [[a, b, c], [a, c, d]]
}

fn mesh(triangles: Vec<Tri>) -> Mesh {
    Mesh {
        triangles,
        dropped_degenerate: 0,
    }
}

/// An axis-aligned box from `min` to `max` (12 triangles).
pub fn cuboid(min: [f32; 3], max: [f32; 3]) -> Mesh {
    let [x0, y0, z0] = min;
    let [x1, y1, z1] = max;
    let p = |x, y, z| [x, y, z];
    mesh(
        [
            quad(p(x0, y0, z0), p(x0, y1, z0), p(x1, y1, z0), p(x1, y0, z0)),
            quad(p(x0, y0, z1), p(x1, y0, z1), p(x1, y1, z1), p(x0, y1, z1)),
            quad(p(x0, y0, z0), p(x1, y0, z0), p(x1, y0, z1), p(x0, y0, z1)),
            quad(p(x0, y1, z0), p(x0, y1, z1), p(x1, y1, z1), p(x1, y1, z0)),
            quad(p(x0, y0, z0), p(x0, y0, z1), p(x0, y1, z1), p(x0, y1, z0)),
            quad(p(x1, y0, z0), p(x1, y1, z0), p(x1, y1, z1), p(x1, y0, z1)),
        ]
        .into_iter()
        .flatten()
        .collect(),
    )
}

/// A cylinder of radius `r` and height `h` on z = 0, centred on the z axis.
pub fn cylinder(r: f32, h: f32, segments: usize) -> Mesh {
    let segments = segments.max(3);
    let pt = |i: usize, z: f32| {
        let a = i as f32 / segments as f32 * std::f32::consts::TAU;
        [r * a.cos(), r * a.sin(), z]
    };
    let mut t = Vec::with_capacity(segments * 4);
    for i in 0..segments {
        let j = (i + 1) % segments;
        t.push([[0.0, 0.0, 0.0], pt(j, 0.0), pt(i, 0.0)]);
        t.push([[0.0, 0.0, h], pt(i, h), pt(j, h)]);
        t.extend(quad(pt(i, 0.0), pt(j, 0.0), pt(j, h), pt(i, h)));
    }
    mesh(t)
}

/// A sphere of radius `r` resting on z = 0, with `rings` x `2 * rings` facets (rings ≥ 2).
/// Pole facets are degenerate and dropped by validation.
pub fn sphere(r: f32, rings: usize) -> Mesh {
    let n = rings.max(2);
    let pt = |i: usize, j: usize| {
        let th = i as f32 / n as f32 * std::f32::consts::PI;
        let ph = j as f32 / (2 * n) as f32 * std::f32::consts::TAU;
        [
            r * th.sin() * ph.cos(),
            r * th.sin() * ph.sin(),
            r - r * th.cos(),
        ]
    };
    let mut t = Vec::with_capacity(n * n * 4);
    for i in 0..n {
        for j in 0..2 * n {
            let (a, b, c, d) = (pt(i, j), pt(i + 1, j), pt(i + 1, j + 1), pt(i, j + 1));
            t.push([a, b, c]);
            t.push([a, c, d]);
        }
    }
    mesh(t)
}

/// Several meshes as one (separate parts on one plate).
pub fn combine(parts: impl IntoIterator<Item = Mesh>) -> Mesh {
    mesh(parts.into_iter().flat_map(|m| m.triangles).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_have_expected_extents() {
        let bb = cuboid([0.0; 3], [1.0, 2.0, 3.0]).bounding_box().unwrap();
        assert_eq!(bb.size(), [1.0, 2.0, 3.0]);
        let c = cylinder(5.0, 2.0, 32).validate().unwrap();
        assert_eq!(c.triangles.len(), 128);
        let s = sphere(10.0, 16).validate().unwrap();
        let size = s.bounding_box().unwrap().size();
        assert!((size[2] - 20.0).abs() < 1e-3, "{size:?}");
        assert_eq!(
            combine([cuboid([0.0; 3], [1.0; 3]), cuboid([2.0; 3], [3.0; 3])])
                .triangles
                .len(),
            24
        );
    }
}
