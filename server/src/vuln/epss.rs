//! FIRST EPSS scores (CSV, as published, optionally gzip-compressed).
//!
//! Format: an optional first comment line
//! `#model_version:v2025.03.14,score_date:2025-03-20T00:00:00Z`, then the
//! header `cve,epss,percentile`, then one row per CVE. Invariants enforced
//! (a violation names the line and fails the whole import): each row has
//! exactly three fields, a well-formed CVE id, and two decimal numbers in
//! [0, 1]; no line is longer than [`MAX_LINE`] bytes; the file is UTF-8.
//! Rows are read one at a time, so a file of any length needs one line of
//! memory. A score file is a full snapshot: importing one replaces the
//! previous.

use std::io::{BufRead, Read};

use super::osv::is_cve;

/// Longest line accepted.
pub const MAX_LINE: u64 = 4096;

/// Why a score file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpssError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {what}")]
    Bad { line: u64, what: String },
}

/// What the comment line says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub model_version: Option<String>,
    /// `score_date`, unix milliseconds.
    pub score_date: Option<i64>,
}

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub cve: String,
    pub epss: f64,
    pub percentile: f64,
}

/// Reads rows one at a time.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Reader<R> {
    /// Reads the comment and header lines.
    pub fn new(inner: R) -> Result<(Self, Header), EpssError> {
        let mut r = Reader {
            inner,
            line: 0,
            buf: Vec::new(),
        };
        let mut header = Header::default();
        let mut first = r
            .next_line()?
            .ok_or_else(|| r.bad("the file is empty".into()))?;
        if let Some(comment) = first.strip_prefix('#') {
            for part in comment.split(',') {
                match part.split_once(':') {
                    Some(("model_version", v)) => header.model_version = Some(v.trim().to_owned()),
                    Some(("score_date", v)) => {
                        header.score_date = crate::clock::parse_rfc3339(v.trim())
                            .ok()
                            .map(crate::clock::to_ms)
                    }
                    _ => {}
                }
            }
            first = r
                .next_line()?
                .ok_or_else(|| r.bad("no header line after the comment".into()))?;
        }
        if first.trim() != "cve,epss,percentile" {
            return Err(r.bad(format!(
                "expected the header \"cve,epss,percentile\", found {:?}",
                first.chars().take(80).collect::<String>()
            )));
        }
        Ok((r, header))
    }

    fn bad(&self, what: String) -> EpssError {
        EpssError::Bad {
            line: self.line,
            what,
        }
    }

    fn next_line(&mut self) -> Result<Option<String>, EpssError> {
        self.buf.clear();
        let n = (&mut self.inner)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() != Some(&b'\n') && self.buf.len() as u64 > MAX_LINE {
            return Err(self.bad(format!("line longer than {MAX_LINE} bytes")));
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        match std::str::from_utf8(&self.buf) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(self.bad("not UTF-8".into())),
        }
    }

    /// The next row, or `None` at the end.
    pub fn next_score(&mut self) -> Result<Option<Score>, EpssError> {
        loop {
            let Some(line) = self.next_line()? else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 3 {
                return Err(self.bad(format!(
                    "expected 3 fields (cve,epss,percentile), found {}",
                    fields.len()
                )));
            }
            let cve = fields[0].trim();
            if !is_cve(cve) {
                return Err(self.bad(format!(
                    "{:?} is not a CVE id",
                    cve.chars().take(40).collect::<String>()
                )));
            }
            let num = |s: &str, what: &str| -> Result<f64, EpssError> {
                let s = s.trim();
                let ok = !s.is_empty()
                    && s.bytes().all(|b| {
                        b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-'
                    });
                match s.parse::<f64>() {
                    Ok(v) if ok && (0.0..=1.0).contains(&v) => Ok(v),
                    _ => Err(self.bad(format!(
                        "{cve}: {what} {:?} is not a number between 0 and 1",
                        s.chars().take(40).collect::<String>()
                    ))),
                }
            };
            let epss = num(fields[1], "epss")?;
            let percentile = num(fields[2], "percentile")?;
            return Ok(Some(Score {
                cve: cve.to_owned(),
                epss,
                percentile,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<(Header, Vec<Score>), EpssError> {
        let (mut r, h) = Reader::new(text.as_bytes())?;
        let mut v = Vec::new();
        while let Some(s) = r.next_score()? {
            v.push(s);
        }
        Ok((h, v))
    }

    #[test]
    fn comment_header_and_rows_are_read() {
        let (h, v) = all(
            "#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z\r\ncve,epss,percentile\nCVE-1999-0001,0.018,0.9248\n",
        )
        .unwrap();
        assert_eq!(h.model_version.as_deref(), Some("v2026.06.15"));
        assert!(h.score_date.is_some());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cve, "CVE-1999-0001");
        assert!((v[0].percentile - 0.9248).abs() < 1e-12);
    }

    #[test]
    fn bad_rows_are_refused_with_their_line_number() {
        for (text, line) in [
            ("cve,epss,percentile\nCVE-1999-0001,0.5\n", 2),
            (
                "cve,epss,percentile\nCVE-1999-0001,0.5,0.5\nCVE-1999-0002,1.5,0.5\n",
                3,
            ),
            ("cve,epss,percentile\nCVE-1999-0001,NaN,0.5\n", 2),
            ("cve,epss,percentile\nnot-a-cve,0.1,0.5\n", 2),
            ("cve,score\n", 1),
        ] {
            match all(text) {
                Err(EpssError::Bad { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_endless_line_is_refused_without_reading_it_all() {
        let text = format!("cve,epss,percentile\n{}", "9".repeat(100_000));
        assert!(matches!(all(&text), Err(EpssError::Bad { line: 2, .. })));
    }
}
