//! Process counters, rendered in the Prometheus text exposition format
//! (version 0.0.4) at `/metrics`:
//! `trustwatch_reports_stored_total`, `trustwatch_reports_duplicate_total`,
//! `trustwatch_reports_rejected_total{reason}` and
//! `trustwatch_http_requests_total{route,status}` (route = matched path
//! template, or `unmatched`), and the feed cache's
//! (`crate::store::feedcache`) `trustwatch_feed_cache_{hits,misses,resets}_total`
//! counters and `trustwatch_feed_cache_{keys,entries}` gauges. Counters
//! only grow; they start at zero with the process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::feedcache::CacheStats;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    stored: AtomicU64,
    duplicate: AtomicU64,
    rejected: Mutex<BTreeMap<String, u64>>,
    http: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    pub fn report_stored(&self) {
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report_duplicate(&self) {
        self.duplicate.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report_rejected(&self, reason: &str) {
        let mut m = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason.to_owned()).or_insert(0) += 1;
    }

    pub fn http_request(&self, route: &str, status: u16) {
        let mut m = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((route.to_owned(), status)).or_insert(0) += 1;
    }

    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    pub fn duplicate(&self) -> u64 {
        self.duplicate.load(Ordering::Relaxed)
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP trustwatch_reports_stored_total Reports stored (committed).\n\
             # TYPE trustwatch_reports_stored_total counter\n\
             trustwatch_reports_stored_total {}",
            self.stored()
        );
        let _ = writeln!(
            out,
            "# HELP trustwatch_reports_duplicate_total Reports received again (already stored).\n\
             # TYPE trustwatch_reports_duplicate_total counter\n\
             trustwatch_reports_duplicate_total {}",
            self.duplicate()
        );
        out.push_str(
            "# HELP trustwatch_reports_rejected_total Reports refused, by reason.\n\
             # TYPE trustwatch_reports_rejected_total counter\n",
        );
        {
            let m = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
            for (reason, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "trustwatch_reports_rejected_total{{reason=\"{}\"}} {n}",
                    escape(reason)
                );
            }
        }
        out.push_str(
            "# HELP trustwatch_http_requests_total HTTP requests answered, by route and status.\n\
             # TYPE trustwatch_http_requests_total counter\n",
        );
        {
            let m = self.http.lock().unwrap_or_else(|e| e.into_inner());
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "trustwatch_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The feed cache's counters and gauges, in the same text format.
pub fn render_feed_cache(s: &CacheStats) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "hits_total",
            "counter",
            "Advisory lists served from memory.",
            s.hits as usize,
        ),
        (
            "misses_total",
            "counter",
            "Advisory lists read from the database.",
            s.misses as usize,
        ),
        (
            "resets_total",
            "counter",
            "Times the feed cache was emptied (feeds changed, or full).",
            s.resets as usize,
        ),
        ("keys", "gauge", "(ecosystem, package) lists held.", s.keys),
        ("entries", "gauge", "Advisory entries held.", s.entries),
    ] {
        let _ = writeln!(
            out,
            "# HELP trustwatch_feed_cache_{name} {help}\n\
             # TYPE trustwatch_feed_cache_{name} {kind}\n\
             trustwatch_feed_cache_{name} {value}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels() {
        let m = Metrics::default();
        m.report_stored();
        m.report_stored();
        m.report_duplicate();
        m.report_rejected("bad_encoding");
        m.http_request("/api/v1/orgs/{code}", 200);
        m.http_request("/api/v1/orgs/{code}", 200);
        m.http_request("we\"ird", 404);
        let t = m.render();
        assert!(t.contains("\ntrustwatch_reports_stored_total 2\n"), "{t}");
        assert!(t.contains("\ntrustwatch_reports_duplicate_total 1\n"));
        assert!(t.contains("trustwatch_reports_rejected_total{reason=\"bad_encoding\"} 1\n"));
        assert!(t.contains(
            "trustwatch_http_requests_total{route=\"/api/v1/orgs/{code}\",status=\"200\"} 2\n"
        ));
        assert!(t.contains("route=\"we\\\"ird\""));
    }
}
