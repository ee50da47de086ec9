//! Display names of uploaded files and the allowed file types.
//!
//! A display name is only ever *shown*: files are stored under random names
//! ([`super::store`]), so nothing here decides a path on disk. Names are still cleaned so they
//! are safe to put in JSON, HTML and headers: control characters (NUL, CR, LF and the rest) are
//! rejected rather than removed, directory parts are dropped, and the length is capped.

use crate::error::ApiError;

/// Longest display name accepted, in bytes (a common file-system name limit).
pub const MAX_NAME_BYTES: usize = 255;

/// What kind of file an upload is, decided by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// G-code, printable as is.
    Gcode,
    /// A model that must be sliced first.
    Model(ModelFormat),
}

/// The model formats the slicer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// STL, binary or ASCII.
    Stl,
    /// 3MF (zip container).
    ThreeMf,
    /// Wavefront OBJ.
    Obj,
}

impl FileKind {
    /// The kind for a file name's extension (case-insensitive), if it is allowed.
    pub fn from_name(name: &str) -> Option<FileKind> {
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "gcode" | "gco" | "g" => FileKind::Gcode,
            "stl" => FileKind::Model(ModelFormat::Stl),
            "3mf" => FileKind::Model(ModelFormat::ThreeMf),
            "obj" => FileKind::Model(ModelFormat::Obj),
            _ => return None,
        })
    }

    /// Extension used for the stored file: a constant of ours, never the client's bytes.
    pub fn stored_extension(self) -> &'static str {
        match self {
            FileKind::Gcode => "gcode",
            FileKind::Model(ModelFormat::Stl) => "stl",
            FileKind::Model(ModelFormat::ThreeMf) => "3mf",
            FileKind::Model(ModelFormat::Obj) => "obj",
        }
    }

    /// Parses [`FileKind::stored_extension`] back.
    pub fn from_stored_extension(ext: &str) -> Option<FileKind> {
        FileKind::from_name(&format!("x.{ext}"))
    }

    /// OctoPrint's `type` and `typePath` for this kind.
    pub fn octoprint_type(self) -> (&'static str, [&'static str; 2]) {
        match self {
            FileKind::Gcode => ("machinecode", ["machinecode", "gcode"]),
            FileKind::Model(ModelFormat::Stl) => ("model", ["model", "stl"]),
            FileKind::Model(ModelFormat::ThreeMf) => ("model", ["model", "3mf"]),
            FileKind::Model(ModelFormat::Obj) => ("model", ["model", "obj"]),
        }
    }
}

/// Turns a client-supplied file name into a display name, or explains why it is refused.
///
/// Directory parts (`/` and `\`) are dropped, surrounding white space trimmed. Control
/// characters anywhere are an error (400 `invalid_file_name`), as are empty names, `.`/`..`,
/// and names longer than [`MAX_NAME_BYTES`].
pub fn sanitize_display_name(raw: &str) -> Result<String, ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(
            "invalid_file_name",
            format!("invalid file name {raw:?}: {why}"),
        )
    };
    if raw.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." {
        return Err(invalid("no file name"));
    }
    if base.len() > MAX_NAME_BYTES {
        return Err(invalid("longer than 255 bytes"));
    }
    Ok(base.to_owned())
}

/// The `n`-th candidate name for a generated file: `stem.ext`, then `stem (2).ext`,
/// `stem (3).ext`... The stem is shortened (at a character boundary) so the name stays within
/// [`MAX_NAME_BYTES`].
pub fn numbered_name(stem: &str, ext: &str, n: u32) -> String {
    let suffix = if n <= 1 {
        format!(".{ext}")
    } else {
        format!(" ({n}).{ext}")
    };
    let mut end = stem.len().min(MAX_NAME_BYTES.saturating_sub(suffix.len()));
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &stem[..end])
}

/// `Content-Disposition: attachment` value for a download, with an ASCII `filename` fallback
/// and the exact name as RFC 5987 `filename*`.
pub fn attachment_disposition(display_name: &str) -> String {
    let fallback: String = display_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // attr-char of RFC 5987: ALPHA / DIGIT / "!#$&+-.^_`|~"; everything else is escaped.
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(display_name, ATTR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(FileKind::from_name("a.GCODE"), Some(FileKind::Gcode));
        assert_eq!(FileKind::from_name("a.g"), Some(FileKind::Gcode));
        assert_eq!(
            FileKind::from_name("part.3mf"),
            Some(FileKind::Model(ModelFormat::ThreeMf))
        );
        for bad in ["a.html", "a.svg", "a.gcode.exe", "gcode", "a.", ""] {
            assert_eq!(FileKind::from_name(bad), None, "{bad}");
        }
        for kind in [FileKind::Gcode, FileKind::Model(ModelFormat::Obj)] {
            assert_eq!(
                FileKind::from_stored_extension(kind.stored_extension()),
                Some(kind)
            );
        }
    }

    #[test]
    fn paths_are_stripped() {
        for (raw, want) in [
            ("../../etc/passwd.gcode", "passwd.gcode"),
            ("..\\..\\x.gcode", "x.gcode"),
            ("/abs/path.gcode", "path.gcode"),
            ("%2e%2e%2fx.gcode", "%2e%2e%2fx.gcode"),
            ("  spaced.stl ", "spaced.stl"),
            ("<script>.gcode", "<script>.gcode"),
            ("\u{202e}edoc.gcode", "\u{202e}edoc.gcode"),
        ] {
            assert_eq!(sanitize_display_name(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn hostile_names_are_rejected() {
        let long = format!("{}.gcode", "a".repeat(300));
        for raw in [
            "a\0.gcode",
            "a\r\nX-Evil: 1.gcode",
            "a\n.gcode",
            "dir/",
            "..",
            "a/..",
            "",
            long.as_str(),
        ] {
            let err = sanitize_display_name(raw).unwrap_err();
            assert_eq!(err.code(), "invalid_file_name", "{raw:?}");
        }
    }

    #[test]
    fn disposition_is_header_safe() {
        let d = attachment_disposition("ü \"x\";.gcode");
        assert_eq!(
            d,
            "attachment; filename=\"_ _x_;.gcode\"; filename*=UTF-8''%C3%BC%20%22x%22%3B.gcode"
        );
        assert!(axum::http::HeaderValue::from_str(&d).is_ok());
    }

    #[test]
    fn numbered_names_stay_within_the_limit() {
        assert_eq!(numbered_name("cube", "gcode", 1), "cube.gcode");
        assert_eq!(numbered_name("cube", "gcode", 2), "cube (2).gcode");
        let long = "é".repeat(200);
        let name = numbered_name(&long, "gcode", 12);
        assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with("é (12).gcode"));
    }
}
