//! STL, binary and ASCII.

use std::io::Write;

use super::{parse_xyz, Mesh, ModelError, MAX_TRIANGLES};

const HEADER: usize = 80;
const RECORD: usize = 50;

/// Parse an STL file (binary or ASCII; detected by content, not by the `solid` keyword alone:
/// many binary files start with "solid" too).
pub fn parse_stl(bytes: &[u8]) -> Result<Mesh, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::Empty);
    }
    if bytes.len() >= HEADER + 4 {
        let claimed = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]);
        let body = bytes.len() - HEADER - 4;
        if (claimed as usize).checked_mul(RECORD) == Some(body) {
            return parse_binary(bytes, claimed);
        }
        let looks_ascii = bytes.trim_ascii_start().starts_with(b"solid")
            && bytes[..bytes.len().min(1024)]
                .iter()
                .all(|b| b.is_ascii() && (*b >= 0x20 || b.is_ascii_whitespace()));
        if !looks_ascii {
            if claimed as usize > MAX_TRIANGLES {
                return Err(ModelError::TooManyTriangles {
                    count: u64::from(claimed),
                });
            }
            return Err(ModelError::TruncatedStl {
                claimed,
                actual: body,
            });
        }
    }
    parse_ascii(bytes)
}

fn parse_binary(bytes: &[u8], count: u32) -> Result<Mesh, ModelError> {
    if count as usize > MAX_TRIANGLES {
        return Err(ModelError::TooManyTriangles {
            count: u64::from(count),
        });
    }
    let triangles = bytes[HEADER + 4..]
        .chunks_exact(RECORD)
        .map(|rec| {
            let f = |o: usize| f32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
            // Bytes 0..12 are the normal, which the engine recomputes.
            let v = |k: usize| [f(12 + k * 12), f(16 + k * 12), f(20 + k * 12)];
            [v(0), v(1), v(2)]
        })
        .collect();
    Ok(Mesh {
        triangles,
        dropped_degenerate: 0,
    })
}

fn parse_ascii(bytes: &[u8]) -> Result<Mesh, ModelError> {
    let syntax = |line: usize, message: String| ModelError::Syntax {
        format: "ASCII STL",
        line,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| syntax(0, format!("not UTF-8 text: {e}")))?;
    let mut triangles = Vec::new();
    let mut current: Vec<[f32; 3]> = Vec::with_capacity(3);
    let mut saw_solid = false;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            None => {}
            Some("solid") => saw_solid = true,
            Some("vertex") => {
                let v = parse_xyz(&mut words).map_err(|m| syntax(lineno, m))?;
                if current.len() == 3 {
                    return Err(syntax(lineno, "more than three vertices in a facet".into()));
                }
                current.push(v);
            }
            Some("endloop") => {
                if current.len() != 3 {
                    return Err(syntax(
                        lineno,
                        format!("facet has {} vertices", current.len()),
                    ));
                }
                triangles.push([current[0], current[1], current[2]]);
                current.clear();
                if triangles.len() > MAX_TRIANGLES {
                    return Err(ModelError::TooManyTriangles {
                        count: triangles.len() as u64,
                    });
                }
            }
            Some("facet" | "outer" | "endfacet" | "endsolid") => {}
            Some(other) => {
                return Err(syntax(
                    lineno,
                    format!(
                        "unexpected `{}`",
                        other.chars().take(40).collect::<String>()
                    ),
                ))
            }
        }
    }
    if !saw_solid {
        return Err(syntax(1, "missing `solid`".into()));
    }
    Ok(Mesh {
        triangles,
        dropped_degenerate: 0,
    })
}

/// Write `mesh` to the file `path` as binary STL.
pub fn save_binary_stl(mesh: &Mesh, path: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_binary_stl(mesh, &mut out)?;
    out.flush()
}

/// Write `mesh` as binary STL (normals left zero: CuraEngine recomputes them).
pub fn write_binary_stl(mesh: &Mesh, out: &mut impl Write) -> std::io::Result<()> {
    let mut header = [0u8; HEADER];
    header[..14].copy_from_slice(b"easyprint mesh");
    out.write_all(&header)?;
    let count = u32::try_from(mesh.triangles.len())
        .map_err(|_| std::io::Error::other("too many triangles for STL"))?;
    out.write_all(&count.to_le_bytes())?;
    let mut record = [0u8; RECORD];
    for t in &mesh.triangles {
        for (k, v) in t.iter().enumerate() {
            for (a, c) in v.iter().enumerate() {
                let o = 12 + k * 12 + a * 4;
                record[o..o + 4].copy_from_slice(&c.to_le_bytes());
            }
        }
        out.write_all(&record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_roundtrip_and_errors() {
        let mesh = Mesh {
            triangles: vec![[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.5]]],
            dropped_degenerate: 0,
        };
        let mut bytes = Vec::new();
        write_binary_stl(&mesh, &mut bytes).unwrap();
        assert_eq!(parse_stl(&bytes).unwrap(), mesh);
        // Header claiming more triangles than present.
        bytes[80] = 7;
        assert!(matches!(
            parse_stl(&bytes),
            Err(ModelError::TruncatedStl { claimed: 7, .. })
        ));
        assert_eq!(parse_stl(&[]), Err(ModelError::Empty));
        // A header-only binary file parses to an empty mesh (validation rejects it).
        let mut empty = vec![0u8; 84];
        empty[..5].copy_from_slice(b"solid");
        assert!(parse_stl(&empty).unwrap().triangles.is_empty());
    }

    #[test]
    fn ascii() {
        let text = "solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid t\n";
        assert_eq!(parse_stl(text.as_bytes()).unwrap().triangles.len(), 1);
        let bad = text.replace("vertex 1 0 0", "vertex 1 x 0");
        assert!(matches!(
            parse_stl(bad.as_bytes()),
            Err(ModelError::Syntax { line: 5, .. })
        ));
        let garbage = "hello world this is not a model at all, just some text padding it out to the minimum size.";
        assert!(parse_stl(garbage.as_bytes()).is_err());
    }
}
