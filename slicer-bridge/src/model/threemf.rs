//! 3MF (a zip holding XML): the build items' meshes, with component and item transforms and
//! the model unit applied, merged into one plate.
//!
//! Hostile files are bounded: entries are looked up by name and never extracted to disk (so
//! `../` names cannot escape anywhere), the model part is read through a byte limit that does
//! not trust the zip's declared sizes (zip bombs stop at the limit), and the vertex, triangle
//! and component-nesting counts are capped.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{Mesh, ModelError, MAX_TRIANGLES};

/// Largest uncompressed model part read, bytes.
pub const MAX_MODEL_PART_BYTES: u64 = 512 * 1024 * 1024;
/// Deepest component nesting followed.
const MAX_COMPONENT_DEPTH: usize = 16;

type Transform = [f32; 12];
const IDENTITY: Transform = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];

fn bad(message: impl Into<String>) -> ModelError {
    ModelError::Syntax {
        format: "3MF",
        line: 0,
        message: message.into(),
    }
}

#[derive(Debug, Default)]
struct Object {
    vertices: Vec<[f32; 3]>,
    triangles: Vec<[usize; 3]>,
    components: Vec<(String, Transform)>,
}

/// Read a 3MF file's build plate as one mesh (mm).
pub fn parse_3mf(bytes: &[u8]) -> Result<Mesh, ModelError> {
    parse_3mf_limited(bytes, MAX_MODEL_PART_BYTES)
}

fn parse_3mf_limited(bytes: &[u8], limit: u64) -> Result<Mesh, ModelError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("not a valid zip: {e}")))?;
    let part = model_part_name(&mut zip)?;
    let mut xml = Vec::new();
    {
        let entry = zip
            .by_name(&part)
            .map_err(|e| bad(format!("no model part `{part}`: {e}")))?;
        entry
            .take(limit + 1)
            .read_to_end(&mut xml)
            .map_err(|e| bad(format!("cannot inflate `{part}`: {e}")))?;
    }
    if xml.len() as u64 > limit {
        return Err(bad(format!(
            "model part inflates beyond {limit} bytes (zip bomb?)"
        )));
    }
    parse_model_xml(&xml)
}

/// The model part: the start part named in `_rels/.rels`, else the conventional path.
fn model_part_name(zip: &mut zip::ZipArchive<Cursor<&[u8]>>) -> Result<String, ModelError> {
    let mut rels = Vec::new();
    if let Ok(entry) = zip.by_name("_rels/.rels") {
        let _ = entry.take(1 << 20).read_to_end(&mut rels);
    }
    let mut reader = Reader::from_reader(rels.as_slice());
    let mut buf = Vec::new();
    while let Ok(event) = reader.read_event_into(&mut buf) {
        match event {
            Event::Empty(e) | Event::Start(e) if e.local_name().as_ref() == b"Relationship" => {
                let ty = attr(&e, b"Type").unwrap_or_default();
                if ty.ends_with("/3dmodel") {
                    if let Some(target) = attr(&e, b"Target") {
                        let name = target.trim_start_matches('/').to_owned();
                        if name.split('/').any(|c| c == ".." || c.is_empty()) {
                            return Err(bad(format!("unsafe part name `{target}`")));
                        }
                        return Ok(name);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok("3D/3dmodel.model".to_owned())
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn num(e: &BytesStart<'_>, name: &[u8]) -> Result<f32, ModelError> {
    let v = attr(e, name).ok_or_else(|| {
        bad(format!(
            "missing attribute {}",
            String::from_utf8_lossy(name)
        ))
    })?;
    v.trim()
        .parse()
        .map_err(|_| bad(format!("bad number `{v}`")))
}

fn transform(e: &BytesStart<'_>) -> Result<Transform, ModelError> {
    let Some(text) = attr(e, b"transform") else {
        return Ok(IDENTITY);
    };
    let values: Vec<f32> = text
        .split_whitespace()
        .map(|v| {
            v.parse()
                .map_err(|_| bad(format!("bad transform `{text}`")))
        })
        .collect::<Result<_, _>>()?;
    values
        .try_into()
        .map_err(|_| bad(format!("transform needs 12 numbers: `{text}`")))
}

/// 3MF row-vector convention: p' = p · M, with the translation in the last row.
fn apply(m: &Transform, p: [f32; 3]) -> [f32; 3] {
    [
        p[0] * m[0] + p[1] * m[3] + p[2] * m[6] + m[9],
        p[0] * m[1] + p[1] * m[4] + p[2] * m[7] + m[10],
        p[0] * m[2] + p[1] * m[5] + p[2] * m[8] + m[11],
    ]
}

/// `a` then `b`.
fn compose(a: &Transform, b: &Transform) -> Transform {
    let mut out = [0f32; 12];
    for r in 0..4 {
        for c in 0..3 {
            let mut v = if r == 3 { b[9 + c] } else { 0.0 };
            for k in 0..3 {
                v += a[r * 3 + k] * b[k * 3 + c];
            }
            out[r * 3 + c] = v;
        }
    }
    out
}

fn unit_scale(unit: &str) -> Result<f32, ModelError> {
    Ok(match unit {
        "" | "millimeter" => 1.0,
        "micron" => 0.001,
        "centimeter" => 10.0,
        "inch" => 25.4,
        "foot" => 304.8,
        "meter" => 1000.0,
        other => return Err(bad(format!("unknown unit `{other}`"))),
    })
}

fn parse_model_xml(xml: &[u8]) -> Result<Mesh, ModelError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut objects: HashMap<String, Object> = HashMap::new();
    let mut current: Option<(String, Object)> = None;
    let mut items: Vec<(String, Transform)> = Vec::new();
    let mut scale = 1.0;
    let mut total = 0usize;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            bad(format!(
                "XML error at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match &event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"model" => scale = unit_scale(&attr(e, b"unit").unwrap_or_default())?,
                b"object" => {
                    let id = attr(e, b"id").ok_or_else(|| bad("object without id"))?;
                    current = Some((id, Object::default()));
                }
                b"vertex" => {
                    let (_, o) = current
                        .as_mut()
                        .ok_or_else(|| bad("vertex outside an object"))?;
                    o.vertices
                        .push([num(e, b"x")?, num(e, b"y")?, num(e, b"z")?]);
                    total += 1;
                }
                b"triangle" => {
                    let (_, o) = current
                        .as_mut()
                        .ok_or_else(|| bad("triangle outside an object"))?;
                    let idx = |n: &[u8]| -> Result<usize, ModelError> {
                        let v = attr(e, n).ok_or_else(|| bad("triangle without v1/v2/v3"))?;
                        v.trim()
                            .parse()
                            .map_err(|_| bad(format!("bad vertex index `{v}`")))
                    };
                    o.triangles.push([idx(b"v1")?, idx(b"v2")?, idx(b"v3")?]);
                    total += 1;
                }
                b"component" => {
                    let (_, o) = current
                        .as_mut()
                        .ok_or_else(|| bad("component outside an object"))?;
                    let id =
                        attr(e, b"objectid").ok_or_else(|| bad("component without objectid"))?;
                    o.components.push((id, transform(e)?));
                }
                b"item" => {
                    let id =
                        attr(e, b"objectid").ok_or_else(|| bad("build item without objectid"))?;
                    items.push((id, transform(e)?));
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == b"object" => {
                if let Some((id, o)) = current.take() {
                    objects.insert(id, o);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if total > MAX_TRIANGLES * 2 {
            return Err(ModelError::TooManyTriangles {
                count: total as u64,
            });
        }
        buf.clear();
    }
    let mut mesh = Mesh::default();
    let root = [
        scale, 0.0, 0.0, 0.0, scale, 0.0, 0.0, 0.0, scale, 0.0, 0.0, 0.0,
    ];
    for (id, t) in &items {
        emit(&objects, id, &compose(t, &root), 0, &mut mesh)?;
    }
    Ok(mesh)
}

fn emit(
    objects: &HashMap<String, Object>,
    id: &str,
    t: &Transform,
    depth: usize,
    mesh: &mut Mesh,
) -> Result<(), ModelError> {
    if depth > MAX_COMPONENT_DEPTH {
        return Err(bad("components nested too deeply (cycle?)"));
    }
    let o = objects
        .get(id)
        .ok_or_else(|| bad(format!("build refers to missing object {id}")))?;
    for tri in &o.triangles {
        let mut out = [[0f32; 3]; 3];
        for (k, &i) in tri.iter().enumerate() {
            let v = o
                .vertices
                .get(i)
                .ok_or_else(|| bad(format!("object {id}: vertex index {i} out of range")))?;
            out[k] = apply(t, *v);
        }
        mesh.triangles.push(out);
        if mesh.triangles.len() > MAX_TRIANGLES {
            return Err(ModelError::TooManyTriangles {
                count: mesh.triangles.len() as u64,
            });
        }
    }
    for (child, ct) in &o.components {
        emit(objects, child, &compose(ct, t), depth + 1, mesh)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut out);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, data) in files {
                z.start_file(*name, opts).unwrap();
                z.write_all(data).unwrap();
            }
            z.finish().unwrap();
        }
        out.into_inner()
    }

    const MODEL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<model unit="centimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">
 <resources>
  <object id="1" type="model"><mesh>
   <vertices><vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/><vertex x="0" y="0" z="1"/></vertices>
   <triangles><triangle v1="0" v2="2" v3="1"/><triangle v1="0" v2="1" v3="3"/><triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/></triangles>
  </mesh></object>
  <object id="2" type="model"><components><component objectid="1" transform="1 0 0 0 1 0 0 0 1 5 0 0"/></components></object>
 </resources>
 <build><item objectid="1"/><item objectid="2" transform="1 0 0 0 1 0 0 0 1 0 0 2"/></build>
</model>"#;

    #[test]
    fn items_components_units() {
        let rels = br#"<Relationships><Relationship Target="/3D/3dmodel.model" Id="r" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>"#;
        let bytes = zip_of(&[
            ("_rels/.rels", rels),
            ("3D/3dmodel.model", MODEL.as_bytes()),
        ]);
        let mesh = parse_3mf(&bytes).unwrap();
        assert_eq!(mesh.triangles.len(), 8);
        let bb = mesh.bounding_box().unwrap();
        // cm → mm; the second copy is moved 5 cm in X and 2 cm up.
        assert_eq!(bb.min, [0.0, 0.0, 0.0]);
        assert_eq!(bb.max, [60.0, 10.0, 30.0]);
    }

    #[test]
    fn hostile_archives() {
        assert!(parse_3mf(b"not a zip").is_err());
        let rels = br#"<Relationships><Relationship Target="/../../etc/passwd" Type="x/3dmodel"/></Relationships>"#;
        let e = parse_3mf(&zip_of(&[("_rels/.rels", rels)])).unwrap_err();
        assert!(e.to_string().contains("unsafe"), "{e}");
        let dangling = MODEL.replace(r#"<item objectid="1"/>"#, r#"<item objectid="9"/>"#);
        assert!(parse_3mf(&zip_of(&[("3D/3dmodel.model", dangling.as_bytes())])).is_err());
        let cycle = MODEL.replace(r#"component objectid="1""#, r#"component objectid="2""#);
        let e = parse_3mf(&zip_of(&[("3D/3dmodel.model", cycle.as_bytes())])).unwrap_err();
        assert!(e.to_string().contains("nested"), "{e}");
        // 4 MiB of spaces compress to a few KiB: reading stops at the limit.
        let zeros = vec![b' '; 4 << 20];
        let bomb = zip_of(&[("3D/3dmodel.model", &zeros)]);
        assert!(bomb.len() < 64 << 10);
        let e = parse_3mf_limited(&bomb, 256 << 10).unwrap_err();
        assert!(e.to_string().contains("zip bomb"), "{e}");
    }
}
