//! Arbitrary bytes through the server's strict upload parsing: the streaming form-data reader
//! (split into chunks at fuzzer-chosen points), the Content-Disposition grammar and display-name
//! cleaning. Must never panic; parts never hold more bytes than the input; accepted display
//! names never contain control characters or path separators.
#![no_main]

use bytes::Bytes;
use easyprint_server::files::form_data::FormDataReader;
use easyprint_server::files::multipart::parse_disposition;
use easyprint_server::files::names::sanitize_display_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let chunks: Vec<Result<Bytes, easyprint_server::files::form_data::FormDataError>> = body
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut reader = FormDataReader::new(futures_util::stream::iter(chunks), "b", 1 << 20);
        let mut total = 0;
        while let Ok(Some(headers)) = reader.next_part().await {
            for (_, value) in &headers {
                if let Ok(text) = std::str::from_utf8(value) {
                    if let Ok(d) = parse_disposition(text) {
                        if let Some(name) = d.filename {
                            if let Ok(clean) = sanitize_display_name(&name) {
                                assert!(!clean.chars().any(char::is_control));
                                assert!(!clean.contains(['/', '\\']));
                                assert!(!clean.is_empty() && clean.len() <= 255);
                            }
                        }
                    }
                }
            }
            while let Ok(Some(part)) = reader.next_chunk().await {
                total += part.len();
            }
        }
        assert!(total <= body.len());
    });
});
