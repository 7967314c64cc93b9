//! The host collector: this machine's identity and basic facts (DESIGN §3,
//! `scan host`). OS identity comes from `<root>/etc/os-release` (or
//! `<root>/usr/lib/os-release`); hostname, kernel release, uptime, CPUs and
//! memory come from the running system via `sysinfo`. The package
//! inventory arrives in a later issue; `packages` is empty for now.

pub mod os_release;

use std::path::Path;

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
use trustwatch_common::host::HostAsset;
use trustwatch_common::report::{collector, CollectorError};

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

/// Builds the host asset from system facts and the os-release under `root`.
/// A missing hostname is a failure (the hostname is the asset id); other
/// gaps are reported as errors beside a partial asset.
pub fn inventory(
    facts: SystemFacts,
    root: &Path,
) -> Result<(HostAsset, Vec<CollectorError>), CollectFailed> {
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
    let host = HostAsset {
        id,
        os,
        kernel,
        uptime_secs: facts.uptime_secs,
        cpu_count: facts.cpu_count,
        cpu_brand: facts.cpu_brand,
        memory_total_bytes: facts.memory_total_bytes,
        packages: Vec::new(),
        windows: None,
    };
    Ok((host, errors))
}

/// The `host` collector.
#[derive(Debug, Default)]
pub struct HostCollector;

impl HostCollector {
    pub fn new() -> Self {
        HostCollector
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        collector::HOST
    }

    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> CollectFuture<'a> {
        let root = ctx.root.clone();
        Box::pin(async move {
            let (host, errors) =
                tokio::task::spawn_blocking(move || inventory(SystemFacts::gather(), &root))
                    .await
                    .map_err(|e| {
                        CollectFailed::new(format!("host inventory task failed: {e}"))
                    })??;
            Ok(CollectOutput {
                assets: vec![host.into_asset()],
                findings: Vec::new(),
                errors,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> SystemFacts {
        SystemFacts {
            hostname: Some("pacs01".into()),
            kernel: Some("6.1.0-26-amd64".into()),
            uptime_secs: 3600,
            cpu_count: 4,
            cpu_brand: "Test CPU".into(),
            memory_total_bytes: 8 << 30,
        }
    }

    #[test]
    fn inventory_of_an_image_root_reads_its_os_release() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        let (h, errors) = inventory(facts(), root.path()).unwrap();
        assert!(errors.is_empty());
        assert_eq!(h.id, "pacs01");
        assert_eq!(h.os.codename, "bookworm");
        assert_eq!(h.kernel, "6.1.0-26-amd64");
        assert!(h.packages.is_empty());
    }

    #[test]
    fn missing_os_release_is_reported_as_an_error_beside_the_asset() {
        let root = tempfile::tempdir().unwrap();
        let (h, errors) = inventory(facts(), root.path()).unwrap();
        assert_eq!(h.id, "pacs01");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].collector, "host");
        assert!(
            errors[0].reason.contains("os-release"),
            "{}",
            errors[0].reason
        );
    }

    #[test]
    fn unknown_hostname_fails_the_collector() {
        let root = tempfile::tempdir().unwrap();
        let f = SystemFacts {
            hostname: None,
            ..facts()
        };
        assert!(inventory(f, root.path()).is_err());
    }

    #[test]
    fn this_machine_has_a_hostname_kernel_and_cpus() {
        let f = SystemFacts::gather();
        assert!(f.hostname.is_some());
        assert!(f.kernel.as_deref().is_some_and(|k| !k.is_empty()));
        assert!(f.cpu_count >= 1);
        assert!(f.memory_total_bytes > 0);
    }
}
