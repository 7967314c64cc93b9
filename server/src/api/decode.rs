//! Turning the bytes of a `POST /api/v1/reports` body into a validated
//! [`Report`]: optional gzip (one or more members; a truncated or corrupt
//! stream is refused), a cap on the decompressed size checked while
//! streaming (a bomb stops at the cap), JSON `trustwatch.report/v1`, then
//! [`Report::validate`]. Total: every input yields `Ok` or a
//! [`DecodeError`], never a panic. Also produces the gzip blob the store
//! keeps.

use std::io::{Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use trustwatch_common::Report;

/// A decoded report and what the store keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub report: Report,
    /// Length of the JSON text.
    pub json_len: usize,
    /// The JSON, gzip-compressed (the body itself when it came gzipped).
    pub blob: Vec<u8>,
}

/// Why a body is not a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("the report exceeds {0} bytes once decompressed")]
    TooLarge(u64),
    #[error("the gzip stream is truncated or corrupt: {0}")]
    BadEncoding(String),
    #[error("{0}")]
    InvalidReport(String),
}

/// Decodes a body; `gzip` when it came with `Content-Encoding: gzip`.
pub fn decode_report(
    body: &[u8],
    gzip: bool,
    max_decompressed: u64,
) -> Result<Decoded, DecodeError> {
    let json: Vec<u8> = if gzip {
        let mut out = Vec::new();
        MultiGzDecoder::new(body)
            .take(max_decompressed.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| DecodeError::BadEncoding(e.to_string()))?;
        if out.len() as u64 > max_decompressed {
            return Err(DecodeError::TooLarge(max_decompressed));
        }
        if out.is_empty() && !body.is_empty() {
            // flate2 reads a stream that ends inside the header as empty.
            return Err(DecodeError::BadEncoding("no complete gzip member".into()));
        }
        out
    } else {
        if body.len() as u64 > max_decompressed {
            return Err(DecodeError::TooLarge(max_decompressed));
        }
        body.to_vec()
    };
    let report: Report =
        serde_json::from_slice(&json).map_err(|e| DecodeError::InvalidReport(e.to_string()))?;
    report
        .validate()
        .map_err(|e| DecodeError::InvalidReport(e.to_string()))?;
    let blob = if gzip {
        body.to_vec()
    } else {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&json)
            .and_then(|_| enc.finish())
            .map_err(|e| DecodeError::InvalidReport(format!("cannot compress: {e}")))?
    };
    Ok(Decoded {
        report,
        json_len: json.len(),
        blob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn report_json() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schema": "trustwatch.report/v1",
            "report_id": uuid::Uuid::now_v7(),
            "collected_at": "2025-10-09T08:53:20Z",
            "agent": {"id": uuid::Uuid::now_v7(), "hostname": "h", "version": "0.1.0"},
            "agent_version": "0.1.0",
            "started_at": "2025-10-09T08:53:20Z",
            "finished_at": "2025-10-09T08:53:20Z",
            "collectors": ["host"],
            "assets": [{"kind": "host", "id": "h"}],
            "findings": [],
            "errors": []
        }))
        .unwrap()
    }

    #[test]
    fn plain_and_gzip_reports_decode_alike() {
        let j = report_json();
        let a = decode_report(&j, false, 1 << 20).unwrap();
        let b = decode_report(&gz(&j), true, 1 << 20).unwrap();
        assert_eq!(a.report, b.report);
        assert_eq!(a.json_len, j.len());
        let mut back = Vec::new();
        MultiGzDecoder::new(&a.blob[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn truncated_gzip_is_bad_encoding() {
        let g = gz(&report_json());
        for cut in [1, 5, 10, g.len() / 2, g.len() - 1] {
            assert!(
                matches!(
                    decode_report(&g[..cut], true, 1 << 20),
                    Err(DecodeError::BadEncoding(_))
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        let bomb = gz(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            decode_report(&bomb, true, 1 << 20),
            Err(DecodeError::TooLarge(1 << 20))
        );
    }

    #[test]
    fn json_that_is_not_a_report_is_invalid_report() {
        for body in [&b"{}"[..], b"[1,2]", b"null", b"\xff\xfe", b""] {
            assert!(matches!(
                decode_report(body, false, 1 << 20),
                Err(DecodeError::InvalidReport(_))
            ));
        }
        let mut v: serde_json::Value = serde_json::from_slice(&report_json()).unwrap();
        v["schema"] = "trustwatch.report/v0".into();
        let e = decode_report(&serde_json::to_vec(&v).unwrap(), false, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("schema"), "{e}");
    }

    #[test]
    fn corrupt_crc_is_bad_encoding() {
        let mut g = gz(&report_json());
        let n = g.len();
        g[n - 6] ^= 0xff;
        assert!(matches!(
            decode_report(&g, true, 1 << 20),
            Err(DecodeError::BadEncoding(_))
        ));
    }
}
