//! The host collector: this machine's identity, package inventory and
//! patch signals (DESIGN §3, `scan host`).
//!
//! - OS identity from `<root>/etc/os-release` (or `<root>/usr/lib/os-release`),
//!   [`os_release`];
//! - hostname, running kernel, uptime, CPUs and memory of the running system
//!   via `sysinfo` ([`SystemFacts`]);
//! - installed packages from the dpkg, rpm and apk databases under the root,
//!   [`packages`];
//! - `patch.kernel.reboot_required` ([`reboot`]) and `patch.updates.stale`
//!   ([`freshness`]), judged here because they need no feed.
//!
//! With `root` other than `/` (a mounted image or a container's root) the
//! files come from that root, while hostname, kernel and uptime are still the
//! running system's; the running kernel then says nothing about the image,
//! so only the image's `run/reboot-required` file can raise a reboot.
//! Problems reading any one source are errors beside a partial asset; only
//! an unknown hostname fails the collector (the hostname is the asset id).

pub mod freshness;
pub mod os_release;
pub mod packages;
pub mod reboot;

use std::path::Path;

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
use time::OffsetDateTime;
use trustwatch_common::host::HostAsset;
use trustwatch_common::report::{collector, CollectorError};
use trustwatch_common::{Finding, FindingCode};

use super::{CollectContext, CollectFailed, CollectFuture, CollectOutput, Collector};

/// Facts about the running system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemFacts {
    pub hostname: Option<String>,
    pub kernel: Option<String>,
    pub uptime_secs: u64,
    pub cpu_count: usize,
    pub cpu_brand: String,
    pub memory_total_bytes: u64,
}

impl SystemFacts {
    /// Reads the facts of this machine.
    pub fn gather() -> SystemFacts {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        let cpu_brand = sys
            .cpus()
            .iter()
            .map(|c| c.brand().trim())
            .find(|b| !b.is_empty())
            .unwrap_or_default()
            .to_owned();
        SystemFacts {
            hostname: System::host_name().filter(|h| !h.trim().is_empty()),
            kernel: System::kernel_version(),
            uptime_secs: System::uptime(),
            cpu_count: sys.cpus().len(),
            cpu_brand,
            memory_total_bytes: sys.total_memory(),
        }
    }
}

/// The hostname of this machine, or `unknown` (for the report's `agent`).
pub fn hostname() -> String {
    System::host_name()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether `root` is the running system's own root.
pub fn is_live_root(root: &Path) -> bool {
    std::fs::canonicalize(root).is_ok_and(|p| p == Path::new("/"))
}

/// How the inventory is taken.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Package databases (how rpm is queried).
    pub packages: packages::Options,
    /// Treat `root` as the running system (the running kernel is the
    /// root's); `None` decides with [`is_live_root`].
    pub live: Option<bool>,
}

/// What the host collector found.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInventory {
    pub host: HostAsset,
    pub findings: Vec<Finding>,
    pub errors: Vec<CollectorError>,
}

/// Inventories the system at `root`, judging time-dependent signals at `now`.
pub fn inventory(
    facts: SystemFacts,
    root: &Path,
    now: OffsetDateTime,
    opts: &HostOptions,
) -> Result<HostInventory, CollectFailed> {
    let id = facts
        .hostname
        .ok_or_else(|| CollectFailed::new("cannot determine this machine's hostname"))?;
    let mut errors = Vec::new();
    let err = |reason: String| CollectorError {
        collector: collector::HOST.to_owned(),
        target: None,
        reason,
    };
    let os = match os_release::read(root) {
        Ok((os, _)) => os,
        Err(e) => {
            errors.push(err(e.to_string()));
            Default::default()
        }
    };
    let kernel = facts.kernel.unwrap_or_else(|| {
        errors.push(err("cannot determine the running kernel release".into()));
        String::new()
    });
    let live = opts.live.unwrap_or_else(|| is_live_root(root));

    let inv = packages::inventory(root, &opts.packages);
    errors.extend(inv.errors.into_iter().map(err));

    let mut findings = Vec::new();
    let running = (live && !kernel.is_empty()).then_some(kernel.as_str());
    let (signal, reboot_errors) = reboot::assess(root, &inv.packages, running);
    errors.extend(reboot_errors.into_iter().map(err));
    if signal.required() {
        findings.push(Finding::new(
            FindingCode::PatchKernelRebootRequired,
            id.clone(),
            signal.evidence(),
        ));
    }

    let (refresh, fresh_errors) = freshness::newest(root);
    errors.extend(fresh_errors.into_iter().map(err));
    if let Some(r) = refresh.as_ref().filter(|r| r.is_stale(now)) {
        findings.push(Finding::new(
            FindingCode::PatchUpdatesStale,
            id.clone(),
            r.evidence(now),
        ));
    }

    let host = HostAsset {
        id,
        os,
        kernel,
        uptime_secs: facts.uptime_secs,
        cpu_count: facts.cpu_count,
        cpu_brand: facts.cpu_brand,
        memory_total_bytes: facts.memory_total_bytes,
        package_count: Some(inv.packages.len()),
        packages: inv.packages,
        windows: None,
        reboot_required: Some(signal.required()),
        package_metadata_refreshed_at: refresh.as_ref().map(|r| r.modified),
        package_metadata_source: Some(
            refresh
                .as_ref()
                .map_or(freshness::UNKNOWN, |r| r.source)
                .to_owned(),
        ),
    };
    Ok(HostInventory {
        host,
        findings,
        errors,
    })
}

/// The `host` collector.
#[derive(Debug, Default)]
pub struct HostCollector {
    opts: HostOptions,
}

impl HostCollector {
    /// A collector with the default options (`rpm` from `PATH`).
    pub fn new() -> Self {
        HostCollector::default()
    }

    /// A collector with these options.
    pub fn with_options(opts: HostOptions) -> Self {
        HostCollector { opts }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        collector::HOST
    }

    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> CollectFuture<'a> {
        let root = ctx.root.clone();
        let now = ctx.clock.now();
        let opts = self.opts.clone();
        Box::pin(async move {
            let inv = tokio::task::spawn_blocking(move || {
                inventory(SystemFacts::gather(), &root, now, &opts)
            })
            .await
            .map_err(|e| CollectFailed::new(format!("host inventory task failed: {e}")))??;
            Ok(CollectOutput {
                assets: vec![inv.host.into_asset()],
                findings: inv.findings,
                errors: inv.errors,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn facts() -> SystemFacts {
        SystemFacts {
            hostname: Some("pacs01".into()),
            kernel: Some("6.1.0-25-amd64".into()),
            uptime_secs: 3600,
            cpu_count: 4,
            cpu_brand: "Test CPU".into(),
            memory_total_bytes: 8 << 30,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap()
    }

    fn opts(live: bool) -> HostOptions {
        HostOptions {
            packages: packages::Options { rpm: None },
            live: Some(live),
        }
    }

    fn debian_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        fs::write(
            root.path().join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: linux-image-6.1.0-25-amd64\nStatus: install ok installed\nSource: linux-signed-amd64 (6.1.106+3)\nVersion: 6.1.106-3\nArchitecture: amd64\n\n\
             Package: linux-image-6.1.0-26-amd64\nStatus: install ok installed\nSource: linux-signed-amd64 (6.1.112+1)\nVersion: 6.1.112-1\nArchitecture: amd64\n",
        )
        .unwrap();
        root
    }

    #[test]
    fn inventory_of_an_image_root_reads_its_os_release_and_packages() {
        let root = debian_root();
        let inv = inventory(facts(), root.path(), now(), &opts(false)).unwrap();
        assert!(inv.errors.is_empty(), "{:?}", inv.errors);
        let h = &inv.host;
        assert_eq!(h.id, "pacs01");
        assert_eq!(h.os.codename, "bookworm");
        assert_eq!(h.kernel, "6.1.0-25-amd64");
        assert_eq!(h.packages.len(), 2);
        assert_eq!(h.package_count, Some(2));
        assert_eq!(h.packages[0].source_name, "linux-signed-amd64");
        // Not the live system: the running kernel does not judge the image.
        assert_eq!(h.reboot_required, Some(false));
        assert_eq!(h.package_metadata_source.as_deref(), Some("unknown"));
        assert_eq!(h.package_metadata_refreshed_at, None);
        assert!(inv.findings.is_empty(), "{:?}", inv.findings);
    }

    #[test]
    fn live_root_running_an_older_kernel_raises_reboot_required() {
        let root = debian_root();
        let inv = inventory(facts(), root.path(), now(), &opts(true)).unwrap();
        assert_eq!(inv.findings.len(), 1);
        let f = &inv.findings[0];
        assert_eq!(f.code, FindingCode::PatchKernelRebootRequired);
        assert_eq!(f.asset, "pacs01");
        assert_eq!(f.evidence["running_kernel"], "6.1.0-25-amd64");
        assert_eq!(
            f.evidence["newest_installed_kernel"]["package"],
            "linux-image-6.1.0-26-amd64"
        );
        assert_eq!(inv.host.reboot_required, Some(true));
    }

    #[test]
    fn missing_os_release_is_reported_as_an_error_beside_the_asset() {
        let root = tempfile::tempdir().unwrap();
        let inv = inventory(facts(), root.path(), now(), &opts(false)).unwrap();
        assert_eq!(inv.host.id, "pacs01");
        assert_eq!(inv.errors.len(), 2, "{:?}", inv.errors);
        assert!(inv.errors.iter().all(|e| e.collector == "host"));
        assert!(
            inv.errors[0].reason.contains("os-release"),
            "{}",
            inv.errors[0].reason
        );
        assert!(inv.errors[1].reason.starts_with("no package database"));
        assert_eq!(inv.host.package_count, Some(0));
    }

    #[test]
    fn unknown_hostname_fails_the_collector() {
        let root = tempfile::tempdir().unwrap();
        let f = SystemFacts {
            hostname: None,
            ..facts()
        };
        assert!(inventory(f, root.path(), now(), &opts(false)).is_err());
    }

    #[test]
    fn this_machine_has_a_hostname_kernel_and_cpus() {
        let f = SystemFacts::gather();
        assert!(f.hostname.is_some());
        assert!(f.kernel.as_deref().is_some_and(|k| !k.is_empty()));
        assert!(f.cpu_count >= 1);
        assert!(f.memory_total_bytes > 0);
    }

    #[test]
    fn only_slash_is_the_live_root() {
        assert!(is_live_root(Path::new("/")));
        assert!(is_live_root(Path::new("/usr/..")));
        let root = tempfile::tempdir().unwrap();
        assert!(!is_live_root(root.path()));
    }

    #[test]
    fn this_machines_dpkg_status_is_inventoried_without_error_and_fast() {
        let status = Path::new("/var/lib/dpkg/status");
        if !status.exists() {
            // Not a dpkg system: nothing to prove here.
            return;
        }
        let started = std::time::Instant::now();
        let inv = packages::inventory(Path::new("/"), &packages::Options { rpm: None });
        let took = started.elapsed();
        let dpkg: Vec<_> = inv
            .packages
            .iter()
            .filter(|p| p.manager == "dpkg")
            .collect();
        assert!(
            inv.errors.iter().all(|e| !e.contains("dpkg")),
            "{:?}",
            inv.errors
        );
        assert!(dpkg.len() > 10, "only {} dpkg packages", dpkg.len());
        assert!(dpkg
            .iter()
            .any(|p| p.name == "dpkg" && p.source_name == "dpkg"));
        assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
    }
}
