//! Virtual folders: a validated display path per file, and a table of folders (so that empty
//! ones exist too), per user.
//!
//! Nothing here touches the disk: stored files keep their random names in one flat directory,
//! and a folder is only a prefix of display names (`parts/left.gcode` is the file
//! `left.gcode` in the folder `parts`). A folder path is therefore never a server path, but it
//! is still checked strictly so that what a client shows is what the user meant, and so that
//! no client ever receives a path it would resolve outside its own tree: every segment is a
//! plain name (no `.`/`..`, no separator, no control character, nothing that *becomes* one of
//! those under Unicode compatibility normalization, only NFC), the path is relative, and depth
//! and length are capped.

use rusqlite::{params, Connection};
use unicode_normalization::UnicodeNormalization;

use super::names::MAX_NAME_BYTES;
use crate::db::unix_now;
use crate::error::ApiError;

/// Deepest folder nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// Longest folder path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// A checked folder path: segments joined by `/`, no leading or trailing `/`; empty is the
/// root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FolderPath(String);

impl FolderPath {
    /// The root folder.
    pub fn root() -> FolderPath {
        FolderPath(String::new())
    }

    /// Parses a client's folder path (`path` form field, URL): one trailing `/` is allowed (as
    /// OctoPrint clients send `folder/`), anything unusual is a 400 `invalid_folder` naming it.
    pub fn parse(raw: &str) -> Result<FolderPath, ApiError> {
        let invalid = |why: &str| {
            ApiError::bad_request("invalid_folder", format!("invalid folder {raw:?}: {why}"))
        };
        let path = raw.strip_suffix('/').unwrap_or(raw);
        if path.is_empty() {
            return Ok(FolderPath::root());
        }
        if path.starts_with('/') {
            return Err(invalid("absolute paths are not allowed"));
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(invalid("longer than 1024 bytes"));
        }
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() > MAX_DEPTH {
            return Err(invalid("more than 16 levels deep"));
        }
        for segment in segments {
            check_segment(segment).map_err(invalid)?;
        }
        Ok(FolderPath(path.to_owned()))
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path (`a/b`, empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the folder's own name; empty for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The sub-folder `name` (checked like any segment).
    pub fn child(&self, name: &str) -> Result<FolderPath, ApiError> {
        let joined = self.join(name);
        FolderPath::parse(&joined)
    }

    /// `name` inside this folder, as a display path (`a/b/name`).
    pub fn join(&self, name: &str) -> String {
        if self.is_root() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.0)
        }
    }

    /// This folder and every folder above it, outermost first (none for the root).
    pub fn with_ancestors(&self) -> Vec<FolderPath> {
        if self.is_root() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut end = 0;
        for (i, c) in self.0.char_indices() {
            if c == '/' {
                out.push(FolderPath(self.0[..i].to_owned()));
            }
            end = i + c.len_utf8();
        }
        out.push(FolderPath(self.0[..end].to_owned()));
        out
    }
}

/// Why `segment` is not a usable folder name, if it is not.
fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("empty folder name (a doubled /)");
    }
    if segment.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    if segment.contains('\\') {
        return Err("contains a backslash");
    }
    if segment == "." || segment == ".." {
        return Err("'.' and '..' are not folder names");
    }
    if segment.len() > MAX_NAME_BYTES {
        return Err("a folder name is longer than 255 bytes");
    }
    if segment.trim() != segment {
        return Err("a folder name starts or ends with white space");
    }
    // Look-alikes that a client normalizing the text would turn into `..` or a separator
    // (fullwidth dots and slashes, one- and two-dot leaders...).
    let compatible: String = segment.nfkc().collect();
    if compatible == "." || compatible == ".." || compatible.contains(['/', '\\']) {
        return Err("becomes '.', '..' or a separator under Unicode normalization");
    }
    // One spelling per name: `é` precomposed, never `e` + combining accent as a twin folder.
    if !unicode_normalization::is_nfc(segment) {
        return Err("not in Unicode normalization form C");
    }
    Ok(())
}

/// The folder part and the file name of a display path (`a/b/x.gcode` → (`a/b`, `x.gcode`)).
pub fn split_display_path(display: &str) -> (&str, &str) {
    display.rsplit_once('/').unwrap_or(("", display))
}

/// Records `folder` and every folder above it for `owner_id` (existing ones are kept).
pub fn ensure(conn: &Connection, owner_id: i64, folder: &FolderPath) -> Result<(), ApiError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO folders (owner_id, path, created_at) VALUES (?1, ?2, ?3)",
    )?;
    let now = unix_now();
    for path in folder.with_ancestors() {
        insert.execute(params![owner_id, path.as_str(), now])?;
    }
    Ok(())
}

/// Whether `folder` exists for `owner_id` (the root always does).
pub fn exists(conn: &Connection, owner_id: i64, folder: &FolderPath) -> Result<bool, ApiError> {
    if folder.is_root() {
        return Ok(true);
    }
    Ok(conn
        .prepare_cached("SELECT 1 FROM folders WHERE owner_id = ?1 AND path = ?2")?
        .exists(params![owner_id, folder.as_str()])?)
}

/// Every folder of `owner_id`, sorted.
pub fn list(conn: &Connection, owner_id: i64) -> Result<Vec<String>, ApiError> {
    let mut statement =
        conn.prepare_cached("SELECT path FROM folders WHERE owner_id = ?1 ORDER BY path")?;
    let paths = statement
        .query_map([owner_id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(paths)
}

/// Removes the records of `folder` and the folders below it. The prefix is compared exactly
/// (`substr`, not `LIKE`, whose `%` and `_` a folder name may contain), with the separator, so
/// `parts` never matches `parts2`.
pub fn delete_tree(conn: &Connection, owner_id: i64, folder: &FolderPath) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM folders WHERE owner_id = ?1
           AND (path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/')",
        params![owner_id, folder.as_str()],
    )?;
    Ok(())
}

/// Whether display path `path` of `owner_id` is a file or a folder.
pub fn is_taken(conn: &Connection, owner_id: i64, path: &str) -> Result<bool, ApiError> {
    let file = conn
        .prepare_cached("SELECT 1 FROM files WHERE owner_id = ?1 AND display_name = ?2")?
        .exists(params![owner_id, path])?;
    let folder = conn
        .prepare_cached("SELECT 1 FROM folders WHERE owner_id = ?1 AND path = ?2")?
        .exists(params![owner_id, path])?;
    Ok(file || folder)
}

/// Renames display path `from` to `to` for `owner_id`: one file, or a folder with everything
/// in and below it (files and folder records), in one transaction. A name that is taken is a
/// 409 `already_exists` and nothing moves.
pub fn rename(
    conn: &mut Connection,
    owner_id: i64,
    from: &str,
    to: &str,
    folder: bool,
) -> Result<(), ApiError> {
    let taken = || {
        ApiError::conflict(
            "already_exists",
            format!("{to:?} already exists, nothing was moved"),
        )
    };
    let tx = conn.transaction()?;
    if is_taken(&tx, owner_id, to)? {
        return Err(taken());
    }
    // Exact prefix comparison again (see `delete_tree`): `parts` never matches `parts2`.
    let below = "substr(display_name, 1, length(?2) + 1) = ?2 || '/'";
    let moved = |r: rusqlite::Result<usize>| match r {
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Err(taken())
        }
        other => other.map_err(ApiError::from),
    };
    moved(tx.execute(
        "UPDATE files SET display_name = ?3 WHERE owner_id = ?1 AND display_name = ?2",
        params![owner_id, from, to],
    ))?;
    if folder {
        moved(tx.execute(
            &format!(
                "UPDATE files SET display_name = ?3 || substr(display_name, length(?2) + 1)
                 WHERE owner_id = ?1 AND {below}"
            ),
            params![owner_id, from, to],
        ))?;
        moved(tx.execute(
            &format!(
                "UPDATE folders SET path = ?3 || substr(path, length(?2) + 1)
                 WHERE owner_id = ?1 AND (path = ?2 OR {})",
                below.replace("display_name", "path")
            ),
            params![owner_id, from, to],
        ))?;
    }
    tx.commit()?;
    Ok(())
}

/// Whether display path `display` lies in `folder` or below it.
pub fn contains(folder: &FolderPath, display: &str) -> bool {
    folder.is_root()
        || display
            .strip_prefix(folder.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> String {
        match FolderPath::parse(raw) {
            Err(ApiError::BadRequest { code, message }) => {
                assert_eq!(code, "invalid_folder");
                message
            }
            other => panic!("{raw:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn plain_paths_are_accepted_with_one_trailing_slash() {
        assert_eq!(FolderPath::parse("").unwrap(), FolderPath::root());
        assert_eq!(FolderPath::parse("/").unwrap(), FolderPath::root());
        let p = FolderPath::parse("parts/left side/").unwrap();
        assert_eq!((p.as_str(), p.name()), ("parts/left side", "left side"));
        assert_eq!(p.join("a.gcode"), "parts/left side/a.gcode");
        let names: Vec<String> = p.with_ancestors().into_iter().map(|f| f.0).collect();
        assert_eq!(names, ["parts", "parts/left side"]);
        assert!(FolderPath::parse("ünïcode/日本").is_ok());
        assert!(FolderPath::parse("100%_done").is_ok());
    }

    #[test]
    fn hostile_paths_are_refused_with_the_reason() {
        for (raw, why) in [
            ("..", "'..'"),
            ("a/../b", "'..'"),
            ("./a", "'.'"),
            ("/etc", "absolute"),
            ("//x", "absolute"),
            ("a//b", "empty folder name"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("a\\..\\b", "backslash"),
            ("\u{FF0E}\u{FF0E}", "normalization"),
            ("\u{2025}", "normalization"),
            ("a\u{FF0F}b", "normalization"),
            ("e\u{301}", "form C"),
            (" a", "white space"),
        ] {
            let message = refused(raw);
            assert!(message.contains(why), "{raw:?}: {message}");
        }
        assert!(refused(&"x".repeat(256)).contains("255 bytes"));
        assert!(refused(&"abc/".repeat(300)).contains("1024 bytes"));
        assert!(refused(&"a/".repeat(17)).contains("16 levels"));
    }

    #[test]
    fn containment_is_by_whole_segments() {
        let parts = FolderPath::parse("parts").unwrap();
        assert!(contains(&parts, "parts/a.gcode"));
        assert!(contains(&parts, "parts/sub/a.gcode"));
        assert!(!contains(&parts, "parts2/a.gcode"));
        assert!(!contains(&parts, "parts"));
        assert!(contains(&FolderPath::root(), "x.gcode"));
        assert_eq!(split_display_path("a/b/x.gcode"), ("a/b", "x.gcode"));
        assert_eq!(split_display_path("x.gcode"), ("", "x.gcode"));
    }
}
