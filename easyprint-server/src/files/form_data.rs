//! A strict streaming `multipart/form-data` reader.
//!
//! Written here rather than taken from a general-purpose crate because those normalise what we
//! must refuse (for example a repeated part header silently replaces the first). This reader
//! keeps every header line as sent and rejects anything irregular:
//!
//! - the body must start with the first boundary (no preamble);
//! - header lines end in CRLF; bare CR or LF, folded continuation lines (obs-fold), header
//!   names with non-token characters, and control characters in values are errors;
//! - at most [`MAX_HEADERS`] header lines and [`MAX_HEADER_BYTES`] per part;
//! - after a boundary only `CRLF` (next part) or `--` (end) may follow (no padding);
//! - the body is read in chunks as they arrive; the whole stream is capped by `limit`.
//!
//! Stream errors pass through as the caller's [`FormDataError`] (a driver reports a stalled
//! client as [`FormDataError::Stalled`]); the reader itself never reads the clock.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use memchr::memmem;

/// Most header lines in one part.
pub const MAX_HEADERS: usize = 8;
/// Most bytes of one part's header block.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Why a body is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormDataError {
    /// The body is longer than the limit.
    #[error("body exceeds {0} bytes")]
    TooLarge(u64),
    /// The body breaks the grammar; the message says where.
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    /// Reading the body failed (client went away).
    #[error("reading the body failed: {0}")]
    Read(String),
    /// The client stopped sending for too long (reported by the stream's driver).
    #[error("the client stopped sending")]
    Stalled,
}

/// One header line of a part: lower-cased name and raw value (trimmed of spaces).
pub type PartHeader = (String, Vec<u8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Headers,
    Body,
    Done,
}

/// Reads parts from a byte stream.
#[derive(Debug)]
pub struct FormDataReader<S> {
    stream: S,
    buf: BytesMut,
    /// `--boundary`
    dash_boundary: Vec<u8>,
    /// `\r\n--boundary`
    delimiter: Vec<u8>,
    state: State,
    read: u64,
    limit: u64,
    eof: bool,
}

impl<S, E> FormDataReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<FormDataError>,
{
    /// A reader for `boundary` over `stream`, refusing bodies longer than `limit` bytes.
    pub fn new(stream: S, boundary: &str, limit: u64) -> Self {
        let dash_boundary = [b"--", boundary.as_bytes()].concat();
        let delimiter = [b"\r\n", dash_boundary.as_slice()].concat();
        FormDataReader {
            stream,
            buf: BytesMut::new(),
            dash_boundary,
            delimiter,
            state: State::Start,
            read: 0,
            limit,
            eof: false,
        }
    }

    /// Reads more bytes into the buffer; false at end of stream.
    async fn fill(&mut self) -> Result<bool, FormDataError> {
        if self.eof {
            return Ok(false);
        }
        match self.stream.next().await {
            Some(Ok(chunk)) => {
                self.read += chunk.len() as u64;
                if self.read > self.limit {
                    return Err(FormDataError::TooLarge(self.limit));
                }
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => Err(e.into()),
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    async fn need(&mut self, n: usize) -> Result<(), FormDataError> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(FormDataError::Malformed(
                    "body ends in the middle of a part",
                ));
            }
        }
        Ok(())
    }

    /// After a boundary: `CRLF` starts the next part, `--` ends the body.
    async fn after_boundary(&mut self) -> Result<(), FormDataError> {
        self.need(2).await?;
        match &self.buf[..2] {
            b"\r\n" => self.state = State::Headers,
            b"--" => self.state = State::Done,
            _ => {
                return Err(FormDataError::Malformed(
                    "unexpected bytes after a boundary",
                ))
            }
        }
        self.buf.advance(2);
        Ok(())
    }

    /// The headers of the next part, or `None` after the closing boundary.
    pub async fn next_part(&mut self) -> Result<Option<Vec<PartHeader>>, FormDataError> {
        if self.state == State::Body {
            while self.next_chunk().await?.is_some() {}
        }
        if self.state == State::Start {
            let len = self.dash_boundary.len();
            self.need(len).await?;
            if self.buf[..len] != self.dash_boundary[..] {
                return Err(FormDataError::Malformed(
                    "body does not start with the boundary",
                ));
            }
            self.buf.advance(len);
            self.after_boundary().await?;
        }
        if self.state == State::Done {
            return Ok(None);
        }
        let end = loop {
            if let Some(i) = memmem::find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > MAX_HEADER_BYTES {
                return Err(FormDataError::Malformed("part headers too long"));
            }
            if !self.fill().await? {
                return Err(FormDataError::Malformed("body ends inside part headers"));
            }
        };
        if end > MAX_HEADER_BYTES {
            return Err(FormDataError::Malformed("part headers too long"));
        }
        let block = self.buf.split_to(end + 4);
        let headers = parse_header_block(&block[..end])?;
        self.state = State::Body;
        Ok(Some(headers))
    }

    /// The next chunk of the current part's body, or `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, FormDataError> {
        if self.state != State::Body {
            return Ok(None);
        }
        loop {
            if let Some(i) = memmem::find(&self.buf, &self.delimiter) {
                if i > 0 {
                    return Ok(Some(self.buf.split_to(i).freeze()));
                }
                self.buf.advance(self.delimiter.len());
                self.after_boundary().await?;
                return Ok(None);
            }
            // Everything but a possible partial delimiter at the end is body.
            let safe = self.buf.len().saturating_sub(self.delimiter.len());
            if safe > 0 {
                return Ok(Some(self.buf.split_to(safe).freeze()));
            }
            if !self.fill().await? {
                return Err(FormDataError::Malformed(
                    "body ends in the middle of a part",
                ));
            }
        }
    }
}

fn parse_header_block(block: &[u8]) -> Result<Vec<PartHeader>, FormDataError> {
    let malformed = FormDataError::Malformed;
    let mut headers = Vec::new();
    for line in block.split(|&b| b == b'\n') {
        // Every line but the last was followed by '\n', which must have been CRLF; the block
        // itself ends right before the final CRLF CRLF.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\r') {
            return Err(malformed("bare CR in part headers"));
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err(malformed("folded (obs-fold) part header line"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(malformed("part header line without ':'"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(malformed("invalid part header name"));
        }
        let value = value.trim_ascii();
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(malformed("control character in a part header"));
        }
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            value.to_vec(),
        ));
        if headers.len() > MAX_HEADERS {
            return Err(malformed("too many part headers"));
        }
    }
    // Lines split on '\n' only: a '\n' not preceded by '\r' is a bare LF.
    if block
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || block[i - 1] != b'\r'))
    {
        return Err(malformed("bare LF in part headers"));
    }
    Ok(headers)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Chunks = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, FormDataError>>>;

    fn reader(body: &[u8], split: usize) -> FormDataReader<Chunks> {
        let chunks: Vec<Result<Bytes, FormDataError>> = body
            .chunks(split.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        FormDataReader::new(futures_util::stream::iter(chunks), "XyZ", 1 << 20)
    }

    async fn read_all(
        body: &[u8],
        split: usize,
    ) -> Result<Vec<(Vec<PartHeader>, Vec<u8>)>, FormDataError> {
        let mut r = reader(body, split);
        let mut parts = Vec::new();
        while let Some(headers) = r.next_part().await? {
            let mut content = Vec::new();
            while let Some(chunk) = r.next_chunk().await? {
                content.extend_from_slice(&chunk);
            }
            parts.push((headers, content));
        }
        Ok(parts)
    }

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.gcode\"\r\nContent-Type: application/octet-stream\r\n\r\nG28\r\n--X not a boundary\r\n--XyZ--\r\n";

    #[tokio::test]
    async fn parts_survive_any_chunking() {
        for split in 1..BODY.len() + 1 {
            let parts = read_all(BODY, split).await.unwrap();
            assert_eq!(parts.len(), 2, "split {split}");
            assert_eq!(parts[0].1, b"one");
            assert_eq!(parts[1].0.len(), 2);
            assert_eq!(parts[1].0[1].0, "content-type");
            assert_eq!(parts[1].1, b"G28\r\n--X not a boundary", "split {split}");
        }
    }

    #[tokio::test]
    async fn repeated_headers_are_kept() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nx\r\n--XyZ--";
        let parts = read_all(body, 7).await.unwrap();
        assert_eq!(parts[0].0.len(), 2);
    }

    #[tokio::test]
    async fn irregular_bodies_are_refused() {
        for (body, why) in [
            (
                &b"preamble\r\n--XyZ\r\nA: b\r\n\r\nx\r\n--XyZ--"[..],
                "preamble",
            ),
            (b"--XyZ\r\nA: b\r\n c\r\n\r\nx\r\n--XyZ--", "obs-fold"),
            (b"--XyZ\r\nA: b\nB: c\r\n\r\nx\r\n--XyZ--", "bare LF"),
            (b"--XyZ\r\nA: b\rB: c\r\n\r\nx\r\n--XyZ--", "bare CR"),
            (b"--XyZ\r\nA b\r\n\r\nx\r\n--XyZ--", "no colon"),
            (b"--XyZ\r\nA(: b\r\n\r\nx\r\n--XyZ--", "bad name"),
            (b"--XyZ\r\nA: b\x00\r\n\r\nx\r\n--XyZ--", "NUL"),
            (b"--XyZ  \r\nA: b\r\n\r\nx\r\n--XyZ--", "padding"),
            (b"--XyZ\r\nA: b\r\n\r\nx\r\n--XyZ", "truncated"),
            (b"--XyZ\r\nA: b\r\n\r\nxxxx", "no closing boundary"),
        ] {
            for split in [1, 3, 1000] {
                assert!(
                    matches!(
                        read_all(body, split).await,
                        Err(FormDataError::Malformed(_))
                    ),
                    "{why} split {split}"
                );
            }
        }
        let many: String = (0..20).map(|i| format!("H{i}: v\r\n")).collect();
        let body = format!("--XyZ\r\n{many}\r\nx\r\n--XyZ--");
        assert!(read_all(body.as_bytes(), 100).await.is_err());
    }

    #[tokio::test]
    async fn the_limit_applies_to_the_whole_stream() {
        let chunks: Vec<Result<Bytes, FormDataError>> = vec![Ok(Bytes::from_static(BODY))];
        let mut r = FormDataReader::new(futures_util::stream::iter(chunks), "XyZ", 10);
        assert_eq!(r.next_part().await, Err(FormDataError::TooLarge(10)));
    }
}
