//! Wavefront OBJ (vertices and faces; polygons are fan-triangulated, negative indices count
//! back from the last vertex). Texture, normal and material data are ignored.

use super::{parse_xyz, Mesh, ModelError, MAX_TRIANGLES};

/// Parse OBJ text into a mesh.
pub fn parse_obj(bytes: &[u8]) -> Result<Mesh, ModelError> {
    let syntax = |line: usize, message: String| ModelError::Syntax {
        format: "OBJ",
        line,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| syntax(0, format!("not UTF-8 text: {e}")))?;
    let mut vertices: Vec<[f32; 3]> = Vec::new();
    let mut triangles = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("v") => {
                vertices.push(parse_xyz(&mut words).map_err(|m| syntax(lineno, m))?);
            }
            Some("f") => {
                let mut idx = Vec::new();
                for w in words {
                    let first = w.split('/').next().unwrap_or("");
                    let i: i64 = first
                        .parse()
                        .map_err(|_| syntax(lineno, format!("bad vertex index `{w}`")))?;
                    let resolved = if i > 0 {
                        i - 1
                    } else if i < 0 {
                        vertices.len() as i64 + i
                    } else {
                        -1
                    };
                    let Some(v) = usize::try_from(resolved).ok().and_then(|r| vertices.get(r))
                    else {
                        return Err(syntax(
                            lineno,
                            format!("vertex index {i} out of range (have {})", vertices.len()),
                        ));
                    };
                    idx.push(*v);
                }
                if idx.len() < 3 {
                    return Err(syntax(lineno, format!("face has {} vertices", idx.len())));
                }
                for k in 1..idx.len() - 1 {
                    triangles.push([idx[0], idx[k], idx[k + 1]]);
                }
                if triangles.len() > MAX_TRIANGLES {
                    return Err(ModelError::TooManyTriangles {
                        count: triangles.len() as u64,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(Mesh {
        triangles,
        dropped_degenerate: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quads_and_negative_indices() {
        let text = "# square\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1/1/1 2/2/1 3/3/1 4/4/1\nv 0 0 1\nf -1 -5 -4\n";
        let m = parse_obj(text.as_bytes()).unwrap();
        assert_eq!(m.triangles.len(), 3);
        assert_eq!(m.triangles[2][0], [0.0, 0.0, 1.0]);
        assert_eq!(m.triangles[2][1], [0.0, 0.0, 0.0]);
        assert!(matches!(
            parse_obj(b"v 0 0 0\nf 1 2 3\n"),
            Err(ModelError::Syntax { line: 2, .. })
        ));
        assert!(matches!(
            parse_obj(b"v 0 0 0\nf 1 1\n"),
            Err(ModelError::Syntax { .. })
        ));
    }
}
