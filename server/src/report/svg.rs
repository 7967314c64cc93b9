//! Hand-written inline SVG charts (no script): the score history as a line
//! over grade bands, and open findings per category as bars stacked by
//! severity. Every mark carries its data as attributes (`data-day`,
//! `data-score`, `data-category`, `data-severity`, `data-count`) and a
//! `<title>` tooltip, so a browser's DOM shows exactly what was drawn.
//! Every text is escaped ([`crate::html::esc`]).

use std::fmt::Write;

use time::Date;

use super::HistoryPoint;
use crate::html::{esc, severity_colour};
use crate::store::scores::parse_day;
use crate::store::views::CategoryCount;

const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 36.0;

/// Grade bands drawn behind the history: (from, to, label, fill).
const BANDS: [(f64, f64, &str, &str); 5] = [
    (90.0, 100.0, "A", "#e6f4ea"),
    (80.0, 90.0, "B", "#eef6e2"),
    (70.0, 80.0, "C", "#fdf6dc"),
    (60.0, 70.0, "D", "#fdebdc"),
    (0.0, 60.0, "F", "#fbe4e4"),
];

fn y_of(score: f64) -> f64 {
    let s = score.clamp(0.0, 100.0);
    TOP + (H - TOP - BOTTOM) * (100.0 - s) / 100.0
}

fn days_between(a: Date, b: Date) -> i64 {
    (b - a).whole_days()
}

/// The score-history line chart: one point per day of `points` (oldest
/// first), x proportional to the date so that missing days show as gaps.
pub fn history_chart(points: &[HistoryPoint]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart trend-chart\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"Score history\">"
    );
    let plot_w = W - LEFT - RIGHT;
    for (lo, hi, label, fill) in BANDS {
        let _ = write!(
            s,
            "<rect class=\"band\" x=\"{LEFT}\" y=\"{:.1}\" width=\"{plot_w}\" height=\"{:.1}\" \
             fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#8c959f\">{label}</text>",
            y_of(hi),
            y_of(lo) - y_of(hi),
            W - RIGHT - 10.0,
            y_of(hi) + 11.0
        );
    }
    for v in (0..=100).step_by(20) {
        let y = y_of(f64::from(v));
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#d0d7de\" \
             stroke-width=\"0.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" \
             text-anchor=\"end\" fill=\"#57606a\">{v}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 3.0
        );
    }
    let dated: Vec<(Date, &HistoryPoint)> = points
        .iter()
        .filter_map(|p| parse_day(&p.day).map(|d| (d, p)))
        .collect();
    let (Some(first), Some(last)) = (dated.first(), dated.last()) else {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">\
             no score history yet</text></svg>",
            LEFT + plot_w / 2.0,
            H / 2.0
        );
        return s;
    };
    let span = days_between(first.0, last.0).max(0);
    let x_of = |d: Date| -> f64 {
        if span == 0 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + 8.0 + (plot_w - 16.0) * days_between(first.0, d) as f64 / span as f64
        }
    };
    let line: Vec<String> = dated
        .iter()
        .map(|(d, p)| format!("{:.1},{:.1}", x_of(*d), y_of(p.score)))
        .collect();
    let _ = write!(
        s,
        "<polyline class=\"trend\" fill=\"none\" stroke=\"#0b3d6e\" stroke-width=\"2\" \
         points=\"{}\"/>",
        line.join(" ")
    );
    for (d, p) in &dated {
        let _ = write!(
            s,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#0b3d6e\" \
             data-day=\"{}\" data-score=\"{:.1}\" data-grade=\"{}\"><title>{}: {:.1} ({})</title></circle>",
            x_of(*d),
            y_of(p.score),
            esc(&p.day),
            p.score,
            esc(&p.grade),
            esc(&p.day),
            p.score,
            esc(&p.grade)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\" fill=\"#57606a\">{}</text>",
        H - 12.0,
        esc(&first.1.day)
    );
    if span > 0 {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" \
             fill=\"#57606a\">{}</text>",
            W - RIGHT,
            H - 12.0,
            esc(&last.1.day)
        );
    }
    s.push_str("</svg>");
    s
}

/// Open findings per category, one bar per category stacked by severity
/// (worst on the left), with the total at the end of each bar.
pub fn category_chart(counts: &[CategoryCount]) -> String {
    const ROW: f64 = 30.0;
    const LABEL: f64 = 80.0;
    let legend_h = 30.0;
    let height = TOP + ROW * counts.len() as f64 + legend_h;
    let bar_w = W - LABEL - 60.0;
    let max = counts.iter().map(CategoryCount::total).max().unwrap_or(0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart category-chart\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" role=\"img\" \
         aria-label=\"Open findings by category\">"
    );
    for (i, c) in counts.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\" \
             fill=\"#1f2328\">{}</text>",
            LABEL - 8.0,
            y + 15.0,
            esc(&c.category)
        );
        let mut x = LABEL;
        for (sev, n) in c.by_severity() {
            if n == 0 {
                continue;
            }
            let w = if max == 0 {
                0.0
            } else {
                bar_w * n as f64 / max as f64
            };
            let _ = write!(
                s,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"20\" \
                 fill=\"{}\" data-category=\"{}\" data-severity=\"{sev}\" data-count=\"{n}\">\
                 <title>{}: {n} {sev}</title></rect>",
                severity_colour(sev),
                esc(&c.category),
                esc(&c.category)
            );
            x += w;
        }
        let _ = write!(
            s,
            "<text class=\"total\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1f2328\" \
             data-category=\"{}\">{}</text>",
            x + 6.0,
            y + 15.0,
            esc(&c.category),
            c.total()
        );
    }
    let ly = TOP + ROW * counts.len() as f64 + 8.0;
    let mut lx = LABEL;
    for sev in ["critical", "high", "medium", "low", "info"] {
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#57606a\">{sev}</text>",
            severity_colour(sev),
            lx + 16.0,
            ly + 10.0
        );
        lx += 80.0;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(day: &str, score: f64, grade: &str) -> HistoryPoint {
        HistoryPoint {
            day: day.into(),
            score,
            grade: grade.into(),
        }
    }

    #[test]
    fn history_has_one_point_per_day_with_its_score_and_later_days_to_the_right() {
        let svg = history_chart(&[
            p("2025-10-01", 55.0, "F"),
            p("2025-10-02", 72.5, "C"),
            p("2025-10-05", 91.0, "A"),
        ]);
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 3);
        assert!(svg.contains("data-day=\"2025-10-02\" data-score=\"72.5\" data-grade=\"C\""));
        let cx = |day: &str| -> f64 {
            let i = svg.find(&format!("data-day=\"{day}\"")).unwrap();
            let before = &svg[..i];
            let c = before.rfind("cx=\"").unwrap();
            before[c + 4..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(cx("2025-10-01") < cx("2025-10-02") && cx("2025-10-02") < cx("2025-10-05"));
        // Three days of gap are wider than one.
        assert!(cx("2025-10-05") - cx("2025-10-02") > 2.0 * (cx("2025-10-02") - cx("2025-10-01")));
    }

    #[test]
    fn higher_scores_are_drawn_higher() {
        assert!(y_of(90.0) < y_of(50.0));
        assert_eq!(y_of(150.0), y_of(100.0));
    }

    #[test]
    fn empty_history_says_so() {
        let svg = history_chart(&[]);
        assert!(svg.contains("no score history yet"));
        assert!(!svg.contains("<circle"));
    }

    #[test]
    fn category_bars_carry_their_counts_and_zero_segments_are_not_drawn() {
        let svg = category_chart(&[
            CategoryCount {
                category: "tls".into(),
                high: 2,
                low: 1,
                ..Default::default()
            },
            CategoryCount {
                category: "legacy".into(),
                critical: 3,
                ..Default::default()
            },
        ]);
        assert!(svg.contains("data-category=\"tls\" data-severity=\"high\" data-count=\"2\""));
        assert!(
            svg.contains("data-category=\"legacy\" data-severity=\"critical\" data-count=\"3\"")
        );
        assert!(!svg.contains("data-category=\"tls\" data-severity=\"critical\""));
        assert_eq!(svg.matches("class=\"bar\"").count(), 3);
    }

    #[test]
    fn category_names_are_escaped() {
        let svg = category_chart(&[CategoryCount {
            category: "<script>alert(1)</script>".into(),
            low: 1,
            ..Default::default()
        }]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }
}
