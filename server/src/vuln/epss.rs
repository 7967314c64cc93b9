//! FIRST EPSS scores (CSV, as published, optionally gzip-compressed).
//!
//! Format: an optional first comment line
//! `#model_version:v2025.03.14,score_date:2025-03-20T00:00:00Z`, then the
//! header `cve,epss,percentile`, then one row per CVE. Invariants enforced
//! (a violation names the line and fails the whole import): each row has
//! exactly three fields, a well-formed CVE id, and two decimal numbers in
//! [0, 1]; no line is longer than [`MAX_LINE`] bytes; the file is UTF-8;
//! every row ends with a line end (a last row without one is taken for a
//! cut file: its last value might be cut short, like `0.91` read as `0.9`).
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
    /// Whether the last line read ended with `\n`.
    ended: bool,
}

impl<R: BufRead> Reader<R> {
    /// Reads the comment and header lines.
    pub fn new(inner: R) -> Result<(Self, Header), EpssError> {
        let mut r = Reader {
            inner,
            line: 0,
            buf: Vec::new(),
            ended: false,
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
        self.ended = self.buf.last() == Some(&b'\n');
        if !self.ended && self.buf.len() as u64 > MAX_LINE {
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
            if !self.ended {
                return Err(
                    self.bad("the last row has no line end (is the file cut short?)".into())
                );
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

    #[test]
    fn a_last_row_without_a_line_end_is_refused_as_cut_short() {
        // `0.91` cut to `0.9` would otherwise read as a valid score.
        for text in [
            "cve,epss,percentile\nCVE-1999-0001,0.5,0.91\nCVE-1999-0002,0.5,0.9",
            "cve,epss,percentile\nCVE-1999-0001,0.5,0.9\r",
        ] {
            assert!(
                matches!(all(text), Err(EpssError::Bad { ref what, .. }) if what.contains("line end")),
                "{text:?}"
            );
        }
        // A header alone, or trailing blank lines, are still fine.
        assert_eq!(all("cve,epss,percentile").unwrap().1, []);
        assert_eq!(
            all("cve,epss,percentile\nCVE-1999-0001,0.5,0.9\n  ")
                .unwrap()
                .1
                .len(),
            1
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use time::format_description::well_known::Rfc3339;
        use time::OffsetDateTime;

        /// A score as text, and the value it must read as.
        fn score() -> impl Strategy<Value = (String, f64)> {
            prop_oneof![
                // FIRST's own shape, five decimals: the text and the
                // quotient are both the correctly rounded k / 100000.
                (0u32..=100_000).prop_map(|k| (
                    format!("{}.{:05}", k / 100_000, k % 100_000),
                    f64::from(k) / 1e5
                )),
                // Shortest round-tripping text of any value in [0, 1].
                (0.0f64..=1.0).prop_map(|x| (format!("{x}"), x)),
                (0.0f64..=1.0).prop_map(|x| (format!("{x:e}"), x)),
                Just(("0".to_owned(), 0.0)),
                Just(("1".to_owned(), 1.0)),
                Just(("1.0".to_owned(), 1.0)),
            ]
        }

        /// Field text that is not a number in [0, 1].
        fn bad_score() -> impl Strategy<Value = String> {
            prop_oneof![
                (1.000_001f64..1e6).prop_map(|x| format!("{x}")),
                (1e-9f64..1e3).prop_map(|x| format!("-{x}")),
                Just("1.00001".to_owned()),
                Just("1e1".to_owned()),
                Just("NaN".to_owned()),
                Just("inf".to_owned()),
                Just("+0.5".to_owned()),
                Just("0x1".to_owned()),
                Just("0.5.5".to_owned()),
                Just("1e".to_owned()),
                Just(".".to_owned()),
                Just(String::new()),
                Just("½".to_owned()),
            ]
        }

        /// A generated file: its text, and what it must read as.
        #[derive(Debug, Clone)]
        struct Case {
            text: String,
            header: Header,
            rows: Vec<Score>,
            /// Each row's line number.
            lines: Vec<u64>,
            /// Each row's fields as written, to rebuild one row.
            fields: Vec<[String; 3]>,
            eol: &'static str,
        }

        fn case() -> impl Strategy<Value = Case> {
            let row = (
                "CVE-[0-9]{4}-[0-9]{4,7}",
                score(),
                score(),
                // Blank or white lines before the row (skipped).
                prop::collection::vec(prop_oneof![Just(""), Just("   "), Just("\t")], 0..2),
                prop_oneof![Just(""), Just(" ")],
            );
            (
                prop::option::of((
                    prop::option::of("v[0-9]{4}\\.[0-9]{2}\\.[0-9]{2}"),
                    prop::option::of(0i64..4_102_444_800),
                )),
                prop::collection::vec(row, 0..12),
                prop_oneof![Just("\n"), Just("\r\n")],
            )
                .prop_map(|(comment, rows, eol)| {
                    let mut text = String::new();
                    let mut line = 0;
                    let mut header = Header::default();
                    if let Some((version, date)) = comment {
                        let mut parts = Vec::new();
                        if let Some(v) = version {
                            parts.push(format!("model_version:{v}"));
                            header.model_version = Some(v);
                        }
                        if let Some(secs) = date {
                            let t = OffsetDateTime::from_unix_timestamp(secs)
                                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                            parts.push(format!(
                                "score_date:{}",
                                t.format(&Rfc3339).unwrap_or_default()
                            ));
                            header.score_date = Some(secs * 1000);
                        }
                        text += &format!("#{}{eol}", parts.join(","));
                        line += 1;
                    }
                    text += "cve,epss,percentile";
                    text += eol;
                    line += 1;
                    let mut out = Case {
                        text,
                        header,
                        rows: Vec::new(),
                        lines: Vec::new(),
                        fields: Vec::new(),
                        eol,
                    };
                    for (cve, (et, e), (pt, p), blanks, pad) in rows {
                        for b in blanks {
                            out.text += b;
                            out.text += eol;
                            line += 1;
                        }
                        out.text += &format!("{pad}{cve},{et}{pad},{pt}{eol}");
                        line += 1;
                        out.lines.push(line);
                        out.fields.push([cve.clone(), et, pt]);
                        out.rows.push(Score {
                            cve,
                            epss: e,
                            percentile: p,
                        });
                    }
                    out
                })
        }

        fn all(bytes: &[u8]) -> Result<(Header, Vec<Score>), EpssError> {
            let (mut r, h) = Reader::new(bytes)?;
            let mut v = Vec::new();
            while let Some(s) = r.next_score()? {
                v.push(s);
            }
            Ok((h, v))
        }

        fn fail(e: EpssError) -> TestCaseError {
            TestCaseError::fail(e.to_string())
        }

        fn holds_invariants(rows: &[Score]) -> Result<(), TestCaseError> {
            for s in rows {
                prop_assert!(is_cve(&s.cve), "{:?}", s.cve);
                prop_assert!((0.0..=1.0).contains(&s.epss), "{}", s.epss);
                prop_assert!((0.0..=1.0).contains(&s.percentile), "{}", s.percentile);
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn any_bytes_give_scores_or_an_error(
                bytes in prop::collection::vec(any::<u8>(), 0..2048),
                with_header in any::<bool>(),
            ) {
                let mut b = Vec::new();
                if with_header {
                    b.extend_from_slice(b"cve,epss,percentile\n");
                }
                b.extend_from_slice(&bytes);
                if let Ok((_, rows)) = all(&b) {
                    holds_invariants(&rows)?;
                }
            }

            /// Text from the alphabet of a score file, shuffled: whatever
            /// reads keeps the promises.
            #[test]
            fn csv_shaped_noise_gives_only_well_formed_rows_or_an_error(
                body in "([CVE0-9.,e+-]|\r|\n| ){0,400}",
            ) {
                if let Ok((_, rows)) = all(format!("cve,epss,percentile\n{body}").as_bytes()) {
                    holds_invariants(&rows)?;
                }
            }

            #[test]
            fn a_well_formed_file_reads_as_exactly_what_was_written(c in case()) {
                let (h, rows) = all(c.text.as_bytes()).map_err(fail)?;
                prop_assert_eq!(h, c.header);
                prop_assert_eq!(rows, c.rows);
            }

            /// A cut file is refused, or reads as the rows before the cut,
            /// each exactly (rows lost at a line end cannot be told from a
            /// shorter file), never as a row with a shortened value.
            #[test]
            fn a_truncated_file_is_refused_or_reads_as_a_prefix_of_exact_rows(
                c in case(), cut in any::<prop::sample::Index>(),
            ) {
                let b = c.text.as_bytes();
                let cut = cut.index(b.len());
                if let Ok((h, rows)) = all(&b[..cut]) {
                    prop_assert_eq!(h, c.header);
                    prop_assert!(rows.len() <= c.rows.len());
                    prop_assert_eq!(&rows[..], &c.rows[..rows.len()], "cut at {}", cut);
                }
            }

            /// One flipped byte: an error, or the same number of rows of
            /// which at most one differs (or only the comment line), each
            /// keeping the promises.
            #[test]
            fn a_flipped_byte_is_refused_or_changes_at_most_one_well_formed_row(
                c in case(),
                at in any::<prop::sample::Index>(),
                x in 1u8..=255,
            ) {
                let mut b = c.text.clone().into_bytes();
                let at = at.index(b.len());
                b[at] ^= x;
                if let Ok((h, rows)) = all(&b) {
                    holds_invariants(&rows)?;
                    prop_assert_eq!(rows.len(), c.rows.len());
                    let changed = rows.iter().zip(&c.rows).filter(|(a, b)| a != b).count()
                        + usize::from(h != c.header);
                    prop_assert!(changed <= 1, "{} changes", changed);
                }
            }

            #[test]
            fn a_score_out_of_range_is_refused_naming_its_line(
                c in case().prop_filter("has rows", |c| !c.rows.is_empty()),
                which in any::<prop::sample::Index>(),
                percentile in any::<bool>(),
                bad in bad_score(),
            ) {
                let i = which.index(c.rows.len());
                let mut f = c.fields[i].clone();
                f[if percentile { 2 } else { 1 }] = bad.clone();
                let lines: Vec<&str> = c.text.split(c.eol).collect();
                let n = usize::try_from(c.lines[i] - 1).unwrap_or(usize::MAX);
                let mut lines: Vec<String> = lines.into_iter().map(str::to_owned).collect();
                lines[n] = f.join(",");
                let text = lines.join(c.eol);
                match all(text.as_bytes()) {
                    Err(EpssError::Bad { line, what }) => {
                        prop_assert_eq!(line, c.lines[i]);
                        prop_assert!(what.contains("between 0 and 1"), "{}", what);
                    }
                    other => prop_assert!(false, "{:?} gave {:?}", bad, other),
                }
            }

            /// A score date that is no instant (a 30 February, a 25th
            /// hour) leaves the date unknown, never a neighbouring day.
            #[test]
            fn an_impossible_score_date_is_left_unknown(
                (y, mo, d, h) in prop_oneof![
                    (1990u32..2100, Just(2u32), 30u32..=31, 0u32..24),
                    (
                        1990u32..2100,
                        prop_oneof![Just(4u32), Just(6), Just(9), Just(11)],
                        Just(31u32),
                        0u32..24
                    ),
                    (1990u32..2100, 13u32..=99, 1u32..=28, 0u32..24),
                    (1990u32..2100, 1u32..=12, 1u32..=28, 24u32..=99),
                ],
            ) {
                let text = format!(
                    "#model_version:v1,score_date:{y:04}-{mo:02}-{d:02}T{h:02}:00:00Z\n\
                     cve,epss,percentile\n"
                );
                let (h, rows) = all(text.as_bytes()).map_err(fail)?;
                prop_assert_eq!(h.score_date, None);
                prop_assert_eq!(h.model_version.as_deref(), Some("v1"));
                prop_assert!(rows.is_empty());
            }

            /// The line cap is exact: a row of up to [`MAX_LINE`] bytes is
            /// read, one byte more is refused naming its line.
            #[test]
            fn a_row_is_read_up_to_the_line_cap_and_refused_past_it(pad in 4000usize..4200) {
                let row = format!("{}CVE-2024-0001,0.5,0.25", " ".repeat(pad));
                let text = format!("cve,epss,percentile\n{row}\n");
                let got = all(text.as_bytes());
                if row.len() as u64 <= MAX_LINE {
                    let (_, rows) = got.map_err(fail)?;
                    prop_assert_eq!(rows.len(), 1);
                } else {
                    prop_assert!(matches!(got, Err(EpssError::Bad { line: 2, .. })), "{:?}", got);
                }
            }
        }
    }
}
