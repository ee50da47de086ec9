//! Pieces every engine backend shares: model preparation, atomic publishing, reports.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::output::rewrite_header;
use super::{Progress, SliceError, SliceReport, SliceStats};
use crate::model::{self, BuildVolume, ModelError};

impl Progress {
    /// The final event of a successful slice.
    pub fn done() -> Self {
        Progress {
            stage: "done".into(),
            current: 1,
            total: 1,
            fraction: 1.0,
        }
    }
}

/// A binary: `explicit`, else `$env`, else `name` on `PATH`.
pub(crate) fn locate_binary(explicit: Option<&Path>, env: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Load and validate the model, centre it on the bed origin, check it fits `volume`, and
/// encode it as the binary STL the engines read.
pub(crate) fn placed_stl(path: &Path, volume: &BuildVolume) -> Result<Vec<u8>, SliceError> {
    let mut mesh = model::load(path)?;
    mesh.center_on_origin();
    let bbox = mesh.bounding_box().ok_or(ModelError::Empty)?;
    volume.check(&bbox)?;
    let mut stl = Vec::with_capacity(84 + mesh.triangles.len() * 50);
    model::write_binary_stl(&mesh, &mut stl).map_err(SliceError::io("encoding STL"))?;
    Ok(stl)
}

/// Publish a cache entry at `dest`: a hard link to the (read-only, synced) entry renamed into
/// place, so a hit copies nothing; a copy when linking is impossible (other file system).
pub(crate) fn publish_cached(cached: &Path, dest: &Path) -> Result<(), SliceError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".easyprint-slice-{}-{n}.link", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(cached, &tmp).is_ok() {
        if std::fs::rename(&tmp, dest).is_ok() {
            // Renaming onto a link to the same file is a no-op that leaves `tmp` behind.
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        let _ = std::fs::remove_file(&tmp);
    }
    publish(cached, dest, &[])
}

/// The report of a cache hit.
pub(crate) fn cached_report(
    engine: String,
    output: &Path,
    stats: SliceStats,
    started: Instant,
) -> SliceReport {
    SliceReport {
        output: output.to_owned(),
        engine,
        cache_hit: true,
        stats,
        warnings: Vec::new(),
        elapsed: started.elapsed(),
        engine_elapsed: std::time::Duration::ZERO,
    }
}

/// Publish `src` at `dest` atomically, replacing the header with `true_header`.
pub(crate) fn publish(src: &Path, dest: &Path, true_header: &[String]) -> Result<(), SliceError> {
    stage(src, dest, true_header)?.commit(dest)
}

/// G-code written and synced next to its destination, not yet visible there. Dropping it
/// removes it: a slice that fails its checks publishes nothing.
#[derive(Debug)]
pub(crate) struct Staged(tempfile::NamedTempFile);

impl Staged {
    /// Make it visible at `dest` (atomic rename).
    pub(crate) fn commit(self, dest: &Path) -> Result<(), SliceError> {
        self.0.persist(dest).map_err(|e| SliceError::Io {
            context: format!("publishing {}", dest.display()),
            source: e.error,
        })?;
        Ok(())
    }
}

/// Copy `src` next to `dest` with the header replaced, synced, ready to [`Staged::commit`].
pub(crate) fn stage(src: &Path, dest: &Path, true_header: &[String]) -> Result<Staged, SliceError> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".easyprint-slice-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(SliceError::io(format!(
            "creating a temporary file in {}",
            dir.display()
        )))?;
    let input = std::fs::File::open(src).map_err(SliceError::io("reading engine output"))?;
    rewrite_header(input, tmp.as_file_mut(), true_header)
        .map_err(SliceError::io("writing G-code"))?;
    tmp.as_file()
        .sync_all()
        .map_err(SliceError::io("syncing G-code"))?;
    Ok(Staged(tmp))
}
