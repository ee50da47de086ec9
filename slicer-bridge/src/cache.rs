//! Slice cache: G-code keyed by model content + resolved settings + engine version.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::engine::SliceStats;

/// Builds a cache key from everything that determines the output bytes.
#[derive(Debug, Clone, Default)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// A new key, namespaced by engine (name + version).
    pub fn new(engine: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"easyprint-slicer-cache-v1\0");
        h.update(engine.as_bytes());
        h.update([0]);
        Self(h)
    }

    /// Add a length-prefixed part (model bytes, one setting...).
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// The hex key.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// A directory of cached slices (`<key>.gcode` + `<key>.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceCache {
    dir: PathBuf,
}

impl SliceCache {
    /// Use (and create) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{key}.gcode")),
            self.dir.join(format!("{key}.json")),
        )
    }

    /// The cached G-code path and stats for `key`, if present and complete.
    pub fn get(&self, key: &str) -> Option<(PathBuf, SliceStats)> {
        let (gcode, meta) = self.paths(key);
        // The metadata is written last: its presence marks a complete entry.
        let text = std::fs::read_to_string(&meta).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        if !gcode.is_file() {
            return None;
        }
        // Floats are stored as Rust's shortest round-trip text: a hit returns identical stats.
        let float = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
        let bbox = v["bbox"].as_array().and_then(|c| {
            let f: Vec<f64> = c.iter().filter_map(float).collect();
            (f.len() == 6).then(|| [[f[0], f[1], f[2]], [f[3], f[4], f[5]]])
        });
        let stats = SliceStats {
            print_time_s: v["print_time_s"].as_u64(),
            estimated_time_s: float(&v["estimated_time_s"]),
            filament_mm: float(&v["filament_mm"]),
            filament_mm3: float(&v["filament_mm3"]),
            layer_count: v["layer_count"].as_u64().unwrap_or(0),
            bbox,
        };
        Some((gcode, stats))
    }

    /// Store a finished slice (copied atomically and synced; a crash leaves no half entry).
    /// Entries are read-only: hits are published as hard links to them.
    pub fn put(&self, key: &str, gcode: &Path, stats: &SliceStats) -> std::io::Result<()> {
        let (gpath, mpath) = self.paths(key);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::copy(&mut std::fs::File::open(gcode)?, tmp.as_file_mut())?;
        tmp.as_file().sync_all()?;
        let mut perms = tmp.as_file().metadata()?.permissions();
        perms.set_readonly(true);
        tmp.as_file().set_permissions(perms)?;
        tmp.persist(&gpath).map_err(|e| e.error)?;
        let text = |f: Option<f64>| f.map(|x| x.to_string());
        let meta = json!({
            "print_time_s": stats.print_time_s,
            "estimated_time_s": text(stats.estimated_time_s),
            "filament_mm": text(stats.filament_mm),
            "filament_mm3": text(stats.filament_mm3),
            "layer_count": stats.layer_count,
            "bbox": stats.bbox.map(|[a, b]| [a, b].concat().iter().map(f64::to_string).collect::<Vec<_>>()),
        });
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(meta.to_string().as_bytes())?;
        tmp.persist(&mpath).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A file whose identity (size + mtime) a request-level entry depends on.
fn file_stamp(path: &Path) -> Option<(u64, u128)> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.len(), mtime))
}

impl SliceCache {
    /// Remember that request `request_key` produced result `result_key`, valid while the
    /// `inputs` files (definitions, profiles) keep their size and mtime. Lets a repeated
    /// request skip settings resolution and model parsing.
    pub fn put_request(
        &self,
        request_key: &str,
        result_key: &str,
        inputs: &[PathBuf],
    ) -> std::io::Result<()> {
        let files: Vec<serde_json::Value> = inputs
            .iter()
            .filter_map(|p| {
                let (len, mtime) = file_stamp(p)?;
                Some(json!([p.to_string_lossy(), len, mtime.to_string()]))
            })
            .collect();
        let entry = json!({ "result": result_key, "inputs": files });
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(entry.to_string().as_bytes())?;
        tmp.persist(self.dir.join(format!("req-{request_key}.json")))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// The result key recorded for `request_key`, if its input files are unchanged.
    pub fn get_request(&self, request_key: &str) -> Option<String> {
        let text =
            std::fs::read_to_string(self.dir.join(format!("req-{request_key}.json"))).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        for f in v["inputs"].as_array()? {
            let path = Path::new(f.get(0)?.as_str()?);
            let len = f.get(1)?.as_u64()?;
            let mtime: u128 = f.get(2)?.as_str()?.parse().ok()?;
            if file_stamp(path)? != (len, mtime) {
                return None;
            }
        }
        v["result"].as_str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_part() {
        let k = |parts: &[&[u8]]| {
            let mut b = KeyBuilder::new("CuraEngine 4.13.0");
            for p in parts {
                b.part(p);
            }
            b.finish()
        };
        assert_eq!(k(&[b"ab", b"c"]), k(&[b"ab", b"c"]));
        assert_ne!(k(&[b"ab", b"c"]), k(&[b"a", b"bc"]));
        assert_ne!(k(&[b"x"]), KeyBuilder::new("CuraEngine 5").finish());
    }

    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SliceCache::new(dir.path().join("c")).unwrap();
        let src = dir.path().join("a.gcode");
        std::fs::write(&src, b"G1 X1\n").unwrap();
        assert!(cache.get("k").is_none());
        let stats = SliceStats {
            print_time_s: Some(5),
            estimated_time_s: Some(0.1 + 0.2),
            filament_mm: Some(1.5),
            filament_mm3: None,
            layer_count: 3,
            bbox: Some([[1.0, 2.0, 0.2], [3.0, 4.0, 5.0]]),
        };
        cache.put("k", &src, &stats).unwrap();
        let (path, got) = cache.get("k").unwrap();
        assert_eq!(got, stats);
        assert_eq!(std::fs::read(path).unwrap(), b"G1 X1\n");
        // Request entries die with a change to an input file.
        let def = dir.path().join("machine.def.json");
        std::fs::write(&def, b"{}").unwrap();
        cache
            .put_request("r", "k", std::slice::from_ref(&def))
            .unwrap();
        assert_eq!(cache.get_request("r").as_deref(), Some("k"));
        std::fs::write(&def, b"{\"changed\": 1}").unwrap();
        assert_eq!(cache.get_request("r"), None);
    }
}
