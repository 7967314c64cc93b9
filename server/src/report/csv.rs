//! The CSV format of a report: one row per open finding, RFC 4180 (CRLF
//! line ends, a header row, fields quoted when they hold a comma, a quote,
//! CR or LF, quotes doubled). Safe to open in a spreadsheet: a field that
//! starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed
//! with `'` so that it is never taken as a formula.
//!
//! Columns: `org, org_name, code, severity, category, asset_kind, asset,
//! subject, title, status, first_seen, last_seen, evidence` (evidence is
//! the compact JSON object).

use std::collections::BTreeMap;

use crate::store::views::ReportFinding;

/// The header row.
pub const HEADER: [&str; 13] = [
    "org",
    "org_name",
    "code",
    "severity",
    "category",
    "asset_kind",
    "asset",
    "subject",
    "title",
    "status",
    "first_seen",
    "last_seen",
    "evidence",
];

/// One field, neutralised and quoted as needed.
pub fn field(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if neutral.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// One record (fields joined, CRLF-terminated).
pub fn record(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The whole CSV document; `names` maps organisation codes to names.
pub fn render(findings: &[ReportFinding], names: &BTreeMap<String, String>) -> String {
    let mut out = record(&HEADER);
    for f in findings {
        let evidence = f.evidence.to_string();
        let name = names.get(&f.org).map(String::as_str).unwrap_or("");
        out.push_str(&record(&[
            &f.org,
            name,
            &f.code,
            &f.severity,
            &f.category,
            &f.asset_kind,
            &f.asset,
            &f.subject,
            &f.title,
            &f.status,
            &f.first_seen,
            &f.last_seen,
            &evidence,
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_fields_are_left_alone() {
        assert_eq!(field("tls.protocol.tls1_0"), "tls.protocol.tls1_0");
        assert_eq!(field(""), "");
    }

    #[test]
    fn commas_quotes_and_newlines_are_quoted_with_quotes_doubled() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn formula_starting_cells_are_prefixed_with_a_quote() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2"), "'-2");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(field("a=b"), "a=b");
    }

    #[test]
    fn records_end_in_crlf_and_the_header_comes_first() {
        let f = ReportFinding {
            org: "RX1".into(),
            code: "legacy.telnet".into(),
            severity: "high".into(),
            category: "legacy".into(),
            asset_kind: "device".into(),
            asset: "10.0.0.5".into(),
            subject: String::new(),
            title: "Telnet, answering".into(),
            status: "open".into(),
            first_seen: "2025-10-01T00:00:00Z".into(),
            last_seen: "2025-10-01T00:00:00Z".into(),
            evidence: serde_json::json!({"banner": "=cmd|' /C calc'!A0"}),
        };
        let names = BTreeMap::from([("RX1".to_owned(), "Trust, \"One\"".to_owned())]);
        let doc = render(&[f], &names);
        let lines: Vec<&str> = doc.split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{doc:?}");
        assert!(lines[0].starts_with("org,org_name,code,"));
        assert!(lines[1].starts_with("RX1,\"Trust, \"\"One\"\"\",legacy.telnet,high,"));
        assert!(lines[1].contains(",\"Telnet, answering\","));
        assert_eq!(lines[2], "");
    }

    /// A minimal RFC 4180 reader, to check that what is written reads back.
    fn parse(doc: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = doc.chars().peekable();
        while let Some(c) = chars.next() {
            if quoted {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        cur.push('"');
                    } else {
                        quoted = false;
                    }
                } else {
                    cur.push(c);
                }
            } else if c == '"' {
                quoted = true;
            } else if c == ',' {
                row.push(std::mem::take(&mut cur));
            } else if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
                row.push(std::mem::take(&mut cur));
                rows.push(std::mem::take(&mut row));
            } else {
                cur.push(c);
            }
        }
        rows
    }

    proptest! {
        #[test]
        fn any_record_reads_back_as_its_neutralised_fields(fields in proptest::collection::vec("\\PC{0,12}|[=+@,\"\r\n-]{0,4}", 1..6)) {
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            let rows = parse(&record(&refs));
            prop_assert_eq!(rows.len(), 1);
            for (got, want) in rows[0].iter().zip(&fields) {
                let expect = if want.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    format!("'{want}")
                } else {
                    want.clone()
                };
                prop_assert_eq!(got, &expect);
                prop_assert!(!got.starts_with(['=', '+', '-', '@']));
            }
            prop_assert_eq!(rows[0].len(), fields.len());
        }
    }
}
