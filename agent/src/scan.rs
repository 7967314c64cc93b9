//! `scan host`: the host inventory (OS, kernel, packages, reboot and update
//! signals) as a `trustwatch.scan/v1` document, and its table form for
//! people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use trustwatch_common::host::HostAsset;
use trustwatch_common::ScanDocument;

use crate::clock::Clock;
use crate::collect::host::HostCollector;
use crate::collect::{CollectContext, Collector};
use crate::round::run_round;

/// Inventories this machine, or the image mounted at `root`.
pub async fn scan_host(root: PathBuf, clock: Arc<dyn Clock>) -> ScanDocument {
    let ctx = CollectContext { clock, root };
    let items: Vec<(Arc<dyn Collector>, Option<std::time::Duration>)> =
        vec![(Arc::new(HostCollector::new()), None)];
    run_round(&items, &ctx).await.into_scan_document()
}

fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", secs % 60)
    }
}

fn human_bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let f = b as f64;
    if f >= GIB {
        format!("{:.1} GiB", f / GIB)
    } else {
        format!("{:.1} MiB", f / MIB)
    }
}

/// The document as a table a person can read.
pub fn render_table(doc: &ScanDocument) -> String {
    let mut out = String::new();
    for asset in &doc.assets {
        let Some(h) = HostAsset::from_asset(asset) else {
            let _ = writeln!(out, "{} {}", asset.kind.as_str(), asset.id);
            continue;
        };
        let os = &h.os;
        let mut facts = vec![os.id.clone()];
        if !os.version_id.is_empty() {
            facts.push(os.version_id.clone());
        }
        if !os.codename.is_empty() {
            facts.push(os.codename.clone());
        }
        let _ = writeln!(out, "Host      {}", h.id);
        let _ = writeln!(out, "OS        {} ({})", os.name, facts.join(" "));
        if !os.id_like.is_empty() {
            let _ = writeln!(out, "Like      {}", os.id_like.join(", "));
        }
        let _ = writeln!(out, "Kernel    {}", h.kernel);
        let _ = writeln!(out, "Uptime    {}", human_duration(h.uptime_secs));
        let _ = writeln!(out, "CPUs      {} x {}", h.cpu_count, h.cpu_brand);
        let _ = writeln!(out, "Memory    {}", human_bytes(h.memory_total_bytes));
        let mut by_manager: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &h.packages {
            *by_manager.entry(p.manager.as_str()).or_default() += 1;
        }
        let managers: Vec<String> = by_manager.iter().map(|(m, n)| format!("{m} {n}")).collect();
        if managers.is_empty() {
            let _ = writeln!(out, "Packages  {}", h.packages.len());
        } else {
            let _ = writeln!(
                out,
                "Packages  {} ({})",
                h.packages.len(),
                managers.join(", ")
            );
        }
        let reboot = match h.reboot_required {
            Some(true) => "required",
            Some(false) => "not required",
            None => "not assessed",
        };
        let _ = writeln!(out, "Reboot    {reboot}");
        let refreshed = match (&h.package_metadata_refreshed_at, &h.package_metadata_source) {
            (Some(t), src) => format!(
                "{} ({})",
                t.format(&Rfc3339).unwrap_or_default(),
                src.as_deref().unwrap_or("unknown")
            ),
            (None, _) => "unknown".to_owned(),
        };
        let _ = writeln!(out, "Updated   {refreshed}");
    }
    if doc.findings.is_empty() {
        let _ = writeln!(out, "Findings  none");
    } else {
        let _ = writeln!(out, "Findings");
        for f in &doc.findings {
            let _ = writeln!(
                out,
                "  [{}] {} {}: {}",
                f.severity, f.code, f.asset, f.title
            );
        }
    }
    for e in &doc.errors {
        let target = e
            .target
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "Error     {}{target}: {}", e.collector, e.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use time::OffsetDateTime;

    fn debian_root(now: OffsetDateTime, refreshed_days_ago: i64) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["etc", "var/lib/dpkg", "var/lib/apt/lists", "run"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(
            r.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        std::fs::write(
            r.join("var/lib/dpkg/status"),
            "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.15-1~deb12u1\n",
        )
        .unwrap();
        std::fs::write(r.join("run/reboot-required"), "").unwrap();
        let f =
            std::fs::File::create(r.join("var/lib/apt/lists/x_dists_bookworm_InRelease")).unwrap();
        let t = now - time::Duration::days(refreshed_days_ago);
        f.set_times(std::fs::FileTimes::new().set_modified(t.into()))
            .unwrap();
        root
    }

    #[tokio::test]
    async fn scan_host_json_has_the_scan_schema_one_host_asset_and_the_patch_findings() {
        let now = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        let root = debian_root(now, 30);
        let doc = scan_host(root.path().to_owned(), Arc::new(FixedClock(now))).await;
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["schema"], "trustwatch.scan/v1");
        assert_eq!(v["started_at"], "2025-10-09T08:53:20Z");
        assert_eq!(v["finished_at"], "2025-10-09T08:53:20Z");
        assert_eq!(v["agent_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["assets"].as_array().unwrap().len(), 1);
        let a = &v["assets"][0];
        assert_eq!(a["kind"], "host");
        assert!(a["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(
            a["os"],
            serde_json::json!({"id": "debian", "version_id": "12", "codename": "bookworm",
                               "name": "Debian GNU/Linux 12 (bookworm)"})
        );
        assert!(a["kernel"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(
            a["packages"],
            serde_json::json!([{"manager": "dpkg", "name": "libssl3", "version": "3.0.15-1~deb12u1",
                                "source_name": "openssl", "source_version": "3.0.15-1~deb12u1", "arch": "amd64"}])
        );
        assert_eq!(a["package_count"], 1);
        assert_eq!(a["reboot_required"], true);
        assert_eq!(a["package_metadata_refreshed_at"], "2025-09-09T08:53:20Z");
        assert_eq!(a["package_metadata_source"], "apt");
        assert!(a["cpu_count"].as_u64().is_some_and(|n| n >= 1));
        let codes: Vec<_> = doc.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            vec!["patch.kernel.reboot_required", "patch.updates.stale"]
        );
        assert_eq!(v["errors"], serde_json::json!([]));
        let table = render_table(&doc);
        for want in [
            "Debian GNU/Linux 12 (bookworm) (debian 12 bookworm)",
            "Packages  1 (dpkg 1)",
            "Reboot    required",
            "Updated   2025-09-09T08:53:20Z (apt)",
            "[medium] patch.updates.stale",
        ] {
            assert!(table.contains(want), "{want:?} not in\n{table}");
        }
    }

    #[tokio::test]
    async fn fresh_metadata_by_the_clock_raises_no_staleness() {
        let now = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        let root = debian_root(now, 3);
        let doc = scan_host(root.path().to_owned(), Arc::new(FixedClock(now))).await;
        let codes: Vec<_> = doc.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec!["patch.kernel.reboot_required"]);
    }

    #[tokio::test]
    async fn scan_host_of_an_empty_root_reports_the_missing_os_release_and_packages() {
        let root = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        let doc = scan_host(root.path().to_owned(), Arc::new(FixedClock(now))).await;
        assert_eq!(doc.assets.len(), 1);
        assert_eq!(doc.errors.len(), 2);
        assert!(doc.findings.is_empty());
        let table = render_table(&doc);
        assert!(table.contains("Error     host: no os-release"), "{table}");
        assert!(
            table.contains("Error     host: no package database"),
            "{table}"
        );
        assert!(table.contains("Updated   unknown"), "{table}");
    }

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(human_duration(59), "0m 59s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600 + 12 * 60), "3d 4h 12m");
        assert_eq!(human_bytes(16 << 30), "16.0 GiB");
    }
}
