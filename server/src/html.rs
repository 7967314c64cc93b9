//! Hand-written HTML for the reports and the dashboard: the escaping helper
//! every piece of text and every attribute value goes through, URL
//! component encoding, number formatting, and the page shell (inline CSS,
//! no script). Invariant: no text that came from the store, a report, a
//! configuration or a request reaches a page without [`esc`] (or [`url`]
//! and then [`esc`] inside an attribute).

use std::fmt::Write;

/// Escapes text for an HTML text node or a quoted attribute value:
/// `& < > " '` become entities; everything else is kept.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a URL path segment or query value (RFC 3986
/// unreserved characters are kept).
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A score with one decimal, or an en dash when absent.
pub fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "\u{2013}".to_owned(), |x| format!("{x:.1}"))
}

/// The colour of a grade (also used by the charts).
pub fn grade_colour(grade: &str) -> &'static str {
    match grade {
        "A" => "#1a7f37",
        "B" => "#4d9a2a",
        "C" => "#b08800",
        "D" => "#d4610f",
        "F" => "#c62828",
        _ => "#6e7781",
    }
}

/// The colour of a severity.
pub fn severity_colour(sev: &str) -> &'static str {
    match sev {
        "critical" => "#8e0000",
        "high" => "#d32f2f",
        "medium" => "#f57c00",
        "low" => "#fbc02d",
        _ => "#90a4ae",
    }
}

/// A grade as a coloured badge.
pub fn grade_badge(grade: Option<&str>) -> String {
    match grade {
        Some(g) => format!(
            "<span class=\"grade\" style=\"background:{}\">{}</span>",
            grade_colour(g),
            esc(g)
        ),
        None => "<span class=\"grade none\">\u{2013}</span>".to_owned(),
    }
}

/// A severity as a coloured label.
pub fn severity_badge(sev: &str) -> String {
    format!(
        "<span class=\"sev\" style=\"background:{}\">{}</span>",
        severity_colour(sev),
        esc(sev)
    )
}

/// The style sheet of every page (inline: pages are self-contained).
pub const CSS: &str = "\
body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;margin:0;color:#1f2328;background:#f6f8fa;font-size:14px}\
header.top{background:#0b3d6e;color:#fff;padding:10px 24px;display:flex;align-items:center;gap:24px}\
header.top a{color:#fff;text-decoration:none}header.top .brand{font-weight:bold;font-size:18px}\
header.top form{margin-left:auto}main{padding:16px 24px;max-width:1200px}\
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}\
table{border-collapse:collapse;background:#fff;margin:6px 0 12px}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#eef1f4}th a{color:#0b3d6e}td.n,th.n{text-align:right}\
.grade{display:inline-block;min-width:20px;text-align:center;color:#fff;font-weight:bold;border-radius:3px;padding:0 5px}\
.grade.none{background:#8c959f}.sev{display:inline-block;color:#fff;border-radius:3px;padding:0 5px;font-size:12px}\
.meta{color:#57606a;font-size:12px}.cards{display:flex;gap:12px;flex-wrap:wrap}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:110px}\
.card .v{font-size:22px;font-weight:bold}.card .l{color:#57606a;font-size:12px}\
pre{background:#fff;border:1px solid #d0d7de;padding:8px;overflow:auto;max-width:1100px;white-space:pre-wrap;word-break:break-all}\
.err{color:#c62828}.chart{background:#fff;border:1px solid #d0d7de;margin:6px 0}\
form.login{background:#fff;border:1px solid #d0d7de;padding:16px;max-width:460px}\
form.login input[type=password]{width:100%;box-sizing:border-box;padding:6px;margin:6px 0 10px}\
button{background:#0b3d6e;color:#fff;border:0;padding:6px 14px;border-radius:4px;cursor:pointer}";

/// A whole page: doctype, title, inline CSS, then `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_tags_and_quotes_are_escaped() {
        assert_eq!(
            esc("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(esc("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
        assert_eq!(esc("Trust ü"), "Trust ü");
    }

    #[test]
    fn escaped_text_never_contains_markup_characters() {
        let nasty = "<img src=x onerror=\"alert('x')\">&amp;";
        let e = esc(nasty);
        assert!(!e.contains(['<', '>', '"', '\'']), "{e}");
        assert!(e.contains("&amp;amp;"));
    }

    #[test]
    fn url_components_are_percent_encoded() {
        assert_eq!(url("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
        assert_eq!(url("ehr:443"), "ehr%3A443");
        assert_eq!(url("Ab-1._~"), "Ab-1._~");
        assert_eq!(url("é"), "%C3%A9");
    }

    #[test]
    fn page_escapes_its_title() {
        let p = page("<b>x</b>", "<p>ok</p>");
        assert!(p.contains("<title>&lt;b&gt;x&lt;/b&gt;</title>"));
        assert!(p.contains("<p>ok</p>"));
        assert!(!p.contains("<script"));
    }
}
