//! Strict parsing of upload forms (`multipart/form-data`).
//!
//! OctoPrint's CVE-2025-48067 and its bypasses (CVE-2026-54134) came from a lenient pipeline:
//! extra form fields (`file.path`), query parameters, urlencoded bodies with odd-case types,
//! CRLF smuggled inside `filename*=`, folded headers and escaped quotes all reached code that
//! trusted them to name server paths. Here nothing a client sends ever names a path, and the
//! parser *rejects* rather than normalises:
//!
//! - the body must be `multipart/form-data`; query parameters other than `apikey` are refused;
//! - only the fields `file`, `foldername`, `path`, `select`, `print`, `userdata`, `noOverwrite`
//!   are accepted, each at most once; `file` must carry a file name, the others must not;
//!   `path` and `foldername` are virtual folder names, checked by [`FolderPath`];
//! - each part has exactly one `Content-Disposition`, parsed by our own strict grammar (no
//!   unknown or repeated parameters, no backslash escape sequences, no control characters, `filename*`
//!   only as `UTF-8''` with valid percent-encoding), and no headers beyond the few a form
//!   part may carry;
//! - the file streams to a temporary file with a size cap (413); text fields are capped too.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use futures_util::StreamExt;

use super::folders::FolderPath;
use super::form_data::{FormDataError, FormDataReader, PartHeader};
use super::names::{sanitize_display_name, FileKind};
use super::store::{FileStore, TempUpload};
use crate::error::ApiError;

/// A received file, still in its temporary location.
#[derive(Debug)]
pub struct ReceivedFile {
    /// Sanitised display name.
    pub display_name: String,
    /// Kind decided from the display name's extension.
    pub kind: FileKind,
    /// The content on disk.
    pub temp: TempUpload,
}

/// The accepted fields of an upload form.
#[derive(Debug, Default)]
pub struct UploadForm {
    /// The `file` part.
    pub file: Option<ReceivedFile>,
    /// `path`: the folder the file goes into, or the new folder is created in (default: the
    /// root).
    pub path: FolderPath,
    /// `foldername`: create this folder instead of uploading a file.
    pub foldername: Option<String>,
    /// `select`: select the file for printing after upload.
    pub select: bool,
    /// `print`: start printing it (implies select).
    pub print: bool,
    /// `userdata`: client JSON stored with the file (validated as JSON).
    pub userdata: Option<String>,
    /// `noOverwrite`: refuse (409) instead of replacing a same-named file.
    pub no_overwrite: bool,
}

const FIELDS: [&str; 7] = [
    "file",
    "foldername",
    "path",
    "select",
    "print",
    "userdata",
    "noOverwrite",
];

/// Limits applied while reading an upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest accepted file part (413 above).
    pub max_file_bytes: u64,
    /// Longest pause between two received chunks (408 above).
    pub idle_timeout: std::time::Duration,
}

/// Reads an upload request.
pub async fn read_upload_form(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
    store: &FileStore,
    limits: UploadLimits,
) -> Result<UploadForm, ApiError> {
    let max_file_bytes = limits.max_file_bytes;
    check_query(query)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = form_data_boundary(content_type).ok_or_else(|| {
        ApiError::bad_request(
            "expected_multipart",
            format!("expected a multipart/form-data body, got Content-Type {content_type:?}"),
        )
    })?;
    // Room for the form's other fields and the multipart framing around the file.
    let limit = max_file_bytes.saturating_add(64 * 1024);
    // Every wait for the next chunk is bounded: a client that stops sending is cut off.
    let idle = limits.idle_timeout;
    let mut reader = FormDataReader::new(timed(body.into_data_stream(), idle), boundary, limit);

    let mut form = UploadForm::default();
    let mut seen: Vec<&'static str> = Vec::new();
    while let Some(part_headers) = reader.next_part().await.map_err(multipart_error)? {
        let disposition = part_disposition(&part_headers)?;
        let name = FIELDS
            .iter()
            .copied()
            .find(|f| *f == disposition.name)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "unexpected_field",
                    format!("unexpected form field {:?}", disposition.name),
                )
            })?;
        if seen.contains(&name) {
            return Err(ApiError::bad_request(
                "duplicate_field",
                format!("form field {name:?} sent more than once"),
            ));
        }
        seen.push(name);
        match (name, disposition.filename) {
            ("file", Some(raw_name)) => {
                let display_name = sanitize_display_name(&raw_name)?;
                let kind =
                    FileKind::from_name(&display_name).ok_or(ApiError::UnsupportedFileType)?;
                let mut temp = store.begin().await?;
                while let Some(chunk) = reader.next_chunk().await.map_err(multipart_error)? {
                    if temp.size() + chunk.len() as u64 > max_file_bytes {
                        // Dropping `temp` removes the partial file.
                        return Err(ApiError::PayloadTooLarge);
                    }
                    temp.write(&chunk).await?;
                }
                form.file = Some(ReceivedFile {
                    display_name,
                    kind,
                    temp,
                });
            }
            ("file", None) => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "form field \"file\" has no file name",
                ))
            }
            (_, Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("form field {name:?} must not carry a file name"),
                ))
            }
            (_, None) => {
                let cap = if name == "userdata" { 16 * 1024 } else { 1024 };
                let value = read_text(&mut reader, name, cap).await?;
                match name {
                    "path" => form.path = FolderPath::parse(&value)?,
                    "foldername" => form.foldername = Some(value),
                    "select" => form.select = parse_bool(name, &value)?,
                    "print" => form.print = parse_bool(name, &value)?,
                    "noOverwrite" => form.no_overwrite = parse_bool(name, &value)?,
                    "userdata" => {
                        serde_json::from_str::<serde::de::IgnoredAny>(&value).map_err(|e| {
                            ApiError::bad_request(
                                "invalid_field",
                                format!("form field \"userdata\" is not JSON: {e}"),
                            )
                        })?;
                        form.userdata = Some(value);
                    }
                    _ => unreachable!("FIELDS and this match list the same names"),
                }
            }
        }
    }
    match (&form.file, &form.foldername) {
        (None, None) => Err(ApiError::bad_request(
            "no_file",
            "No file to upload and no folder to create",
        )),
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "invalid_field",
            "send either \"file\" or \"foldername\", not both",
        )),
        _ => Ok(form),
    }
}

fn check_query(query: Option<&str>) -> Result<(), ApiError> {
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if key != "apikey" {
            return Err(ApiError::bad_request(
                "unexpected_query_parameter",
                format!("unexpected query parameter {key:?} on an upload"),
            ));
        }
    }
    Ok(())
}

/// The body as a stream whose every wait is bounded by `idle`; a stall ends it with
/// [`FormDataError::Stalled`].
fn timed(
    body: axum::body::BodyDataStream,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, FormDataError>> + Unpin {
    Box::pin(futures_util::stream::unfold(
        (body, false),
        move |(mut body, ended)| async move {
            if ended {
                return None;
            }
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), (body, false))),
                Ok(Some(Err(err))) => {
                    Some((Err(FormDataError::Read(err.to_string())), (body, true)))
                }
                Ok(None) => None,
                Err(_) => Some((Err(FormDataError::Stalled), (body, true))),
            }
        },
    ))
}

fn multipart_error(err: FormDataError) -> ApiError {
    match err {
        FormDataError::TooLarge(_) => ApiError::PayloadTooLarge,
        FormDataError::Stalled => ApiError::RequestTimeout,
        other => ApiError::bad_request("invalid_multipart", other.to_string()),
    }
}

/// The boundary of a `multipart/form-data` content type (RFC 2046: 1-70 characters).
fn form_data_boundary(content_type: &str) -> Option<&str> {
    let mut params = content_type.split(';');
    if !params
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    let mut boundary = None;
    for param in params {
        let (key, value) = param.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = match value.strip_prefix('"') {
                Some(quoted) => quoted.strip_suffix('"')?,
                None => value,
            };
            let valid = (1..=70).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
                && !value.ends_with(' ');
            if !valid || boundary.replace(value).is_some() {
                return None;
            }
        }
    }
    boundary
}

async fn read_text<S, E>(
    reader: &mut FormDataReader<S>,
    name: &str,
    cap: usize,
) -> Result<String, ApiError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: Into<FormDataError>,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > cap {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("form field {name:?} is longer than {cap} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| {
        ApiError::bad_request("invalid_field", format!("form field {name:?} is not UTF-8"))
    })
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" => Ok(true),
        "false" | "no" | "n" | "0" | "off" | "" => Ok(false),
        _ => Err(ApiError::bad_request(
            "invalid_field",
            format!("form field {name:?} must be true or false, got {value:?}"),
        )),
    }
}

/// The parts of a form part's `Content-Disposition` we use.
#[derive(Debug, PartialEq, Eq)]
pub struct Disposition {
    /// The `name` parameter.
    pub name: String,
    /// `filename` or the decoded `filename*`.
    pub filename: Option<String>,
}

/// Validates a part's headers and parses its single `Content-Disposition`.
fn part_disposition(headers: &[PartHeader]) -> Result<Disposition, ApiError> {
    let bad = |msg: String| ApiError::bad_request("invalid_part_header", msg);
    let mut disposition = None;
    for (name, value) in headers {
        match name.as_str() {
            "content-disposition" => {
                if disposition.replace(value).is_some() {
                    return Err(bad("more than one Content-Disposition in a part".into()));
                }
            }
            "content-type" => {}
            "content-transfer-encoding" => {
                let v = String::from_utf8_lossy(value).to_ascii_lowercase();
                if !matches!(v.as_str(), "binary" | "8bit" | "7bit") {
                    return Err(bad(format!("unsupported Content-Transfer-Encoding {v:?}")));
                }
            }
            other => return Err(bad(format!("unexpected part header {other:?}"))),
        }
    }
    let value = disposition.ok_or_else(|| bad("part without Content-Disposition".into()))?;
    let text =
        std::str::from_utf8(value).map_err(|_| bad("Content-Disposition is not UTF-8".into()))?;
    parse_disposition(text).map_err(|why| bad(format!("Content-Disposition {text:?}: {why}")))
}

/// Strict RFC 7578 `Content-Disposition: form-data; name=...; filename=...` parser.
pub fn parse_disposition(text: &str) -> Result<Disposition, &'static str> {
    let mut rest = text.trim();
    let kind_end = rest.find(';').unwrap_or(rest.len());
    if !rest[..kind_end].trim().eq_ignore_ascii_case("form-data") {
        return Err("not form-data");
    }
    rest = &rest[kind_end..];
    let (mut name, mut filename, mut filename_ext) = (None, None, None);
    while !rest.is_empty() {
        rest = rest.strip_prefix(';').ok_or("expected ';'")?.trim_start();
        let eq = rest.find('=').ok_or("parameter without value")?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or("unterminated quoted string")?;
            value = &quoted[..end];
            // Browsers send backslashes literally (HTML encodes `"` as %22), so a lone
            // backslash is data; but `\"` and `\\` would be escapes to a lenient parser and a
            // different string to us, so they are refused.
            if value.ends_with('\\') || value.contains("\\\\") {
                return Err("escape sequences in quoted strings are not accepted");
            }
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim_end();
            if value.is_empty() || value.contains(['"', ' ', '\\']) {
                return Err("invalid token value");
            }
            rest = &rest[end..];
        }
        let slot = match key.as_str() {
            "name" => &mut name,
            "filename" => &mut filename,
            "filename*" => &mut filename_ext,
            _ => return Err("unknown parameter"),
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err("repeated parameter");
        }
    }
    let name = name.ok_or("missing name")?;
    let filename = match (filename, filename_ext) {
        (Some(_), Some(_)) => return Err("both filename and filename*"),
        (plain, None) => plain,
        (None, Some(ext)) => Some(decode_ext_value(&ext)?),
    };
    Ok(Disposition { name, filename })
}

/// Decodes an RFC 5987 `UTF-8'lang'pct-encoded` value; other charsets are refused.
fn decode_ext_value(value: &str) -> Result<String, &'static str> {
    let mut parts = value.splitn(3, '\'');
    let (Some(charset), Some(_lang), Some(encoded)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed filename*");
    };
    if !charset.eq_ignore_ascii_case("utf-8") {
        return Err("filename* charset must be UTF-8");
    }
    let bytes = encoded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && !(i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit())
        {
            return Err("invalid percent-encoding in filename*");
        }
        i += 1;
    }
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "filename* is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_dispositions() {
        assert_eq!(
            parse_disposition(r#"form-data; name="file"; filename="cube.gcode""#),
            Ok(Disposition {
                name: "file".into(),
                filename: Some("cube.gcode".into())
            })
        );
        assert_eq!(
            parse_disposition("Form-Data; name=print"),
            Ok(Disposition {
                name: "print".into(),
                filename: None
            })
        );
        assert_eq!(
            parse_disposition("form-data; name=\"file\"; filename*=UTF-8''w%C3%BCrfel.stl")
                .unwrap()
                .filename
                .as_deref(),
            Some("würfel.stl")
        );
    }

    #[test]
    fn hostile_dispositions() {
        for bad in [
            r#"attachment; name="file""#,
            r#"form-data; name="file"; name="path""#,
            r#"form-data; name="file"; filename="a.gcode"; filename="b.gcode""#,
            r#"form-data; name="file"; filename="a\".gcode""#,
            r#"form-data; name="file"; filename="a\\b.gcode""#,
            r#"form-data; name="file"; filename="a.gcode"; path="/etc/passwd""#,
            r#"form-data; name="file"; filename="a.gcode"; filename*=UTF-8''b.gcode"#,
            r#"form-data; name="file"; filename*=ISO-8859-1''a.gcode"#,
            r#"form-data; name="file"; filename*=UTF-8''a%2.gcode"#,
            r#"form-data; name="file"; filename*=UTF-8''a%FF.gcode"#,
            r#"form-data; name="file"; filename="unterminated"#,
            r#"form-data; filename="a.gcode""#,
            r#"form-data; name=fi le"#,
        ] {
            assert!(parse_disposition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn crlf_in_ext_value_decodes_and_is_caught_by_name_rules() {
        let d =
            parse_disposition("form-data; name=\"file\"; filename*=UTF-8''a%0d%0a--b%0d%0a.gcode")
                .unwrap();
        let err = sanitize_display_name(d.filename.as_deref().unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid_file_name");
    }

    #[test]
    fn boundaries() {
        assert_eq!(
            form_data_boundary("multipart/form-data; boundary=abc"),
            Some("abc")
        );
        assert_eq!(
            form_data_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""),
            Some("a b")
        );
        for bad in [
            "application/x-www-form-urlencoded",
            "aPplicaTion/X-wWW-FOrm-uRLenCodEd; boundary=x",
            "multipart/mixed; boundary=x",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=a\rb",
        ] {
            assert_eq!(form_data_boundary(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_allow_list() {
        assert!(check_query(None).is_ok());
        assert!(check_query(Some("apikey=abc")).is_ok());
        assert!(check_query(Some("file.path=/etc/passwd")).is_err());
        assert!(check_query(Some("apikey=a&path=x")).is_err());
    }
}
