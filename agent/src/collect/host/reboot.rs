//! Whether installed updates wait for a reboot (`patch.kernel.reboot_required`).
//!
//! Two signals:
//! - the file `<root>/run/reboot-required` exists (Debian and Ubuntu
//!   maintainer scripts create it); `<root>/run/reboot-required.pkgs` lists
//!   the packages that asked, one a line (read up to [`MAX_PKGS_BYTES`],
//!   at most [`MAX_PKGS`] names kept);
//! - the running kernel is older than the newest installed kernel package.
//!   The running release (`uname -r`) is mapped to its package: dpkg
//!   `linux-image-<release>` (also `-unsigned`), rpm `kernel-core` (else
//!   `kernel`) whose `version-release.arch` is the release, apk
//!   `linux-<flavor>` for a release `<version>-<n>-<flavor>` (package
//!   version `<version>-r<n>`). Versions compare with the manager's own
//!   rules (`trustwatch_common::version`). When the running kernel maps to
//!   no installed package the kernel signal is silent (a custom or a
//!   container host's kernel says nothing about the packages).
//!
//! The kernel signal applies only to the live root: for a mounted image the
//! running kernel is not the image's, and the caller passes no release.

use std::cmp::Ordering;
use std::io;
use std::path::Path;

use serde_json::{json, Value};
use trustwatch_common::host::Package;
use trustwatch_common::version::{apk, dpkg, rpm};

use super::os_release::resolve_in_root;
use super::packages::{manager, valid_token};
use crate::fsio;

/// The marker file, relative to the root.
pub const REBOOT_REQUIRED: &str = "run/reboot-required";
/// The list of packages that asked for the reboot, relative to the root.
pub const REBOOT_REQUIRED_PKGS: &str = "run/reboot-required.pkgs";
/// Largest `.pkgs` file read.
pub const MAX_PKGS_BYTES: u64 = 1024 * 1024;
/// Most package names kept from it.
pub const MAX_PKGS: usize = 1000;

/// A kernel package and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPackage {
    pub name: String,
    pub version: String,
}

impl KernelPackage {
    fn of(p: &Package) -> KernelPackage {
        KernelPackage {
            name: p.name.clone(),
            version: p.version.clone(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"package": self.name, "version": self.version})
    }
}

/// What the reboot signals say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebootSignal {
    /// `run/reboot-required` exists.
    pub file_present: bool,
    /// The packages `run/reboot-required.pkgs` names.
    pub file_packages: Vec<String>,
    /// The running kernel release (live root only).
    pub running_kernel: Option<String>,
    /// The installed package (and version) of the running kernel.
    pub running_package: Option<KernelPackage>,
    /// The newest installed kernel package.
    pub newest_installed: Option<KernelPackage>,
    /// The newest installed kernel is newer than the running one.
    pub kernel_outdated: bool,
}

impl RebootSignal {
    /// Whether a reboot is needed.
    pub fn required(&self) -> bool {
        self.file_present || self.kernel_outdated
    }

    /// The finding's evidence.
    pub fn evidence(&self) -> Value {
        let mut reasons = Vec::new();
        if self.file_present {
            reasons.push(format!("/{REBOOT_REQUIRED} exists"));
        }
        if self.kernel_outdated {
            reasons.push("the running kernel is older than the newest installed kernel".to_owned());
        }
        json!({
            "reasons": reasons,
            "reboot_required_file": self.file_present,
            "reboot_required_packages": self.file_packages,
            "running_kernel": self.running_kernel,
            "running_kernel_package": self.running_package.as_ref().map(KernelPackage::to_json),
            "newest_installed_kernel": self.newest_installed.as_ref().map(KernelPackage::to_json),
        })
    }
}

/// Assesses the reboot signals of `root`. `running` is the running kernel
/// release, `None` when `root` is not the live system.
pub fn assess(
    root: &Path,
    packages: &[Package],
    running: Option<&str>,
) -> (RebootSignal, Vec<String>) {
    let mut errors = Vec::new();
    let mut signal = RebootSignal::default();
    match resolve_in_root(root, Path::new(REBOOT_REQUIRED)) {
        Ok(p) => signal.file_present = std::fs::symlink_metadata(p).is_ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!(
            "cannot check {}: {e}",
            root.join(REBOOT_REQUIRED).display()
        )),
    }
    match read_pkgs(root) {
        Ok(names) => signal.file_packages = names,
        Err(e) => errors.push(e),
    }
    if let Some(release) = running.filter(|r| !r.is_empty()) {
        signal.running_kernel = Some(release.to_owned());
        let (running_pkg, newest, outdated) = kernel_state(packages, release);
        signal.running_package = running_pkg;
        signal.newest_installed = newest;
        signal.kernel_outdated = outdated;
    } else {
        signal.newest_installed = newest_any(packages);
    }
    (signal, errors)
}

fn read_pkgs(root: &Path) -> Result<Vec<String>, String> {
    let shown = root.join(REBOOT_REQUIRED_PKGS);
    let path = match resolve_in_root(root, Path::new(REBOOT_REQUIRED_PKGS)) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", shown.display())),
    };
    match std::fs::metadata(&path) {
        Ok(m) if !m.is_file() => return Err(format!("{} is not a regular file", shown.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", shown.display())),
        Ok(_) => {}
    }
    let bytes = fsio::read_bounded(&path, MAX_PKGS_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", shown.display()))?;
    let mut names: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        let name = line.trim();
        if valid_token(name) && !names.iter().any(|n| n == name) {
            if names.len() == MAX_PKGS {
                break;
            }
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// The release a Debian/Ubuntu kernel image package carries.
pub fn dpkg_kernel_release(name: &str) -> Option<&str> {
    let rest = name
        .strip_prefix("linux-image-unsigned-")
        .or_else(|| name.strip_prefix("linux-image-"))?;
    if rest.ends_with("-dbg") || rest.ends_with("-dbgsym") {
        return None;
    }
    let release = rest.strip_suffix("-unsigned").unwrap_or(rest);
    release
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(release)
}

fn rpm_kernels(packages: &[Package]) -> Vec<&Package> {
    let rpm: Vec<&Package> = packages
        .iter()
        .filter(|p| p.manager == manager::RPM)
        .collect();
    let core: Vec<&Package> = rpm
        .iter()
        .copied()
        .filter(|p| p.name == "kernel-core")
        .collect();
    if core.is_empty() {
        rpm.into_iter().filter(|p| p.name == "kernel").collect()
    } else {
        core
    }
}

/// `[epoch:]version-release` without the epoch.
fn without_epoch(v: &str) -> &str {
    match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => v,
    }
}

/// The newest of `candidates` by `cmp` (pairs that do not compare are skipped).
fn newest_by<'a>(
    candidates: impl IntoIterator<Item = &'a Package>,
    cmp: impl Fn(&str, &str) -> Option<Ordering>,
) -> Option<&'a Package> {
    candidates.into_iter().fold(None, |best, p| match best {
        None => Some(p),
        Some(b) => match cmp(&p.version, &b.version) {
            Some(Ordering::Greater) => Some(p),
            _ => Some(b),
        },
    })
}

fn dpkg_cmp(a: &str, b: &str) -> Option<Ordering> {
    dpkg::compare(a, b).ok()
}

fn rpm_cmp(a: &str, b: &str) -> Option<Ordering> {
    rpm::compare(a, b).ok()
}

/// Splits an Alpine release `6.6.31-0-lts` into (`6.6.31`, `0`, `lts`).
fn apk_release(release: &str) -> Option<(&str, &str, &str)> {
    let mut parts = release.rsplitn(3, '-');
    let flavor = parts.next()?;
    let n = parts.next()?;
    let version = parts.next()?;
    (!version.is_empty()
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && !flavor.is_empty())
    .then_some((version, n, flavor))
}

/// The newest installed kernel, without knowing what runs.
fn newest_any(packages: &[Package]) -> Option<KernelPackage> {
    let deb = packages
        .iter()
        .filter(|p| p.manager == manager::DPKG && dpkg_kernel_release(&p.name).is_some());
    if let Some(p) = newest_by(deb, dpkg_cmp) {
        return Some(KernelPackage::of(p));
    }
    if let Some(p) = newest_by(rpm_kernels(packages), rpm_cmp) {
        return Some(KernelPackage::of(p));
    }
    let apk_kernels = packages.iter().filter(|p| {
        p.manager == manager::APK
            && p.name.starts_with("linux-")
            && !p.name.starts_with("linux-firmware")
            && !p.name.starts_with("linux-headers")
    });
    newest_by(apk_kernels, |a, b| Some(apk::compare(a, b))).map(KernelPackage::of)
}

/// (running kernel's package, newest installed, whether newest > running).
fn kernel_state(
    packages: &[Package],
    release: &str,
) -> (Option<KernelPackage>, Option<KernelPackage>, bool) {
    // dpkg
    let deb: Vec<&Package> = packages
        .iter()
        .filter(|p| p.manager == manager::DPKG && dpkg_kernel_release(&p.name).is_some())
        .collect();
    if !deb.is_empty() {
        let newest = newest_by(deb.iter().copied(), dpkg_cmp);
        let running = deb
            .iter()
            .find(|p| dpkg_kernel_release(&p.name) == Some(release));
        return verdict(running.copied(), newest, dpkg_cmp);
    }
    // rpm
    let rpms = rpm_kernels(packages);
    if !rpms.is_empty() {
        let newest = newest_by(rpms.iter().copied(), rpm_cmp);
        let running = rpms
            .iter()
            .find(|p| format!("{}.{}", without_epoch(&p.version), p.arch) == release);
        return verdict(running.copied(), newest, rpm_cmp);
    }
    // apk: one package per flavor, replaced in place on upgrade.
    if let Some((version, n, flavor)) = apk_release(release) {
        let name = format!("linux-{flavor}");
        if let Some(p) = packages
            .iter()
            .find(|p| p.manager == manager::APK && p.name == name)
        {
            let running = KernelPackage {
                name,
                version: format!("{version}-r{n}"),
            };
            let outdated = apk::compare(&p.version, &running.version) == Ordering::Greater;
            return (Some(running), Some(KernelPackage::of(p)), outdated);
        }
    }
    (None, newest_any(packages), false)
}

fn verdict(
    running: Option<&Package>,
    newest: Option<&Package>,
    cmp: fn(&str, &str) -> Option<Ordering>,
) -> (Option<KernelPackage>, Option<KernelPackage>, bool) {
    let outdated = match (running, newest) {
        (Some(r), Some(n)) => cmp(&n.version, &r.version) == Some(Ordering::Greater),
        _ => false,
    };
    (
        running.map(KernelPackage::of),
        newest.map(KernelPackage::of),
        outdated,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn p(manager: &str, name: &str, version: &str, arch: &str) -> Package {
        Package {
            manager: manager.into(),
            name: name.into(),
            version: version.into(),
            source_name: name.into(),
            source_version: version.into(),
            arch: arch.into(),
        }
    }

    fn debian() -> Vec<Package> {
        vec![
            p("dpkg", "linux-image-6.1.0-25-amd64", "6.1.106-3", "amd64"),
            p("dpkg", "linux-image-6.1.0-26-amd64", "6.1.112-1", "amd64"),
            p("dpkg", "linux-image-amd64", "6.1.112-1", "amd64"),
            p(
                "dpkg",
                "linux-image-6.1.0-26-amd64-dbg",
                "6.1.112-1",
                "amd64",
            ),
            p("dpkg", "bash", "5.2.15-2+b7", "amd64"),
        ]
    }

    #[test]
    fn debian_running_an_older_kernel_image_needs_a_reboot() {
        let root = tempfile::tempdir().unwrap();
        let (s, errors) = assess(root.path(), &debian(), Some("6.1.0-25-amd64"));
        assert!(errors.is_empty());
        assert!(s.kernel_outdated && s.required() && !s.file_present);
        assert_eq!(s.running_package.unwrap().version, "6.1.106-3");
        assert_eq!(
            s.newest_installed.unwrap().name,
            "linux-image-6.1.0-26-amd64"
        );
        let (s, _) = assess(root.path(), &debian(), Some("6.1.0-26-amd64"));
        assert!(!s.required());
    }

    #[test]
    fn a_kernel_that_is_no_installed_package_raises_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (s, _) = assess(root.path(), &debian(), Some("6.18.44-custom"));
        assert!(!s.required());
        assert_eq!(s.running_package, None);
        assert_eq!(s.newest_installed.unwrap().version, "6.1.112-1");
        let (s, _) = assess(root.path(), &[], Some("6.1.0-25-amd64"));
        assert_eq!(
            s,
            RebootSignal {
                running_kernel: Some("6.1.0-25-amd64".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn ubuntu_unsigned_and_epoch_kernels_compare_by_package_version() {
        let pkgs = vec![
            p(
                "dpkg",
                "linux-image-unsigned-6.8.0-45-generic",
                "6.8.0-45.45",
                "amd64",
            ),
            p(
                "dpkg",
                "linux-image-6.8.0-47-generic",
                "6.8.0-47.47",
                "amd64",
            ),
        ];
        let root = tempfile::tempdir().unwrap();
        let (s, _) = assess(root.path(), &pkgs, Some("6.8.0-45-generic"));
        assert!(s.kernel_outdated);
        assert_eq!(
            dpkg_kernel_release("linux-image-6.1.0-26-amd64-unsigned"),
            Some("6.1.0-26-amd64")
        );
        assert_eq!(dpkg_kernel_release("linux-image-amd64"), None);
        assert_eq!(dpkg_kernel_release("linux-image-6.1.0-26-amd64-dbg"), None);
    }

    #[test]
    fn rpm_kernel_core_versions_with_epochs_and_arch() {
        let pkgs = vec![
            p("rpm", "kernel-core", "5.14.0-427.13.1.el9_4", "x86_64"),
            p("rpm", "kernel-core", "5.14.0-503.11.1.el9_5", "x86_64"),
            p("rpm", "kernel", "5.14.0-503.11.1.el9_5", "x86_64"),
        ];
        let root = tempfile::tempdir().unwrap();
        let (s, _) = assess(root.path(), &pkgs, Some("5.14.0-427.13.1.el9_4.x86_64"));
        assert!(s.kernel_outdated);
        assert_eq!(s.newest_installed.unwrap().version, "5.14.0-503.11.1.el9_5");
        let (s, _) = assess(root.path(), &pkgs, Some("5.14.0-503.11.1.el9_5.x86_64"));
        assert!(!s.kernel_outdated);
        let old = vec![
            p("rpm", "kernel", "1:3.10.0-1160.el7", "x86_64"),
            p("rpm", "kernel", "1:3.10.0-1160.119.1.el7", "x86_64"),
        ];
        let (s, _) = assess(root.path(), &old, Some("3.10.0-1160.el7.x86_64"));
        assert!(s.kernel_outdated);
    }

    #[test]
    fn alpine_flavor_package_newer_than_the_running_release() {
        let pkgs = vec![
            p("apk", "linux-lts", "6.6.58-r0", "x86_64"),
            p("apk", "linux-firmware-none", "20241017-r0", "noarch"),
        ];
        let root = tempfile::tempdir().unwrap();
        let (s, _) = assess(root.path(), &pkgs, Some("6.6.31-0-lts"));
        assert!(s.kernel_outdated);
        assert_eq!(s.running_package.unwrap().version, "6.6.31-r0");
        let (s, _) = assess(root.path(), &pkgs, Some("6.6.58-0-lts"));
        assert!(!s.kernel_outdated);
        let (s, _) = assess(root.path(), &pkgs, Some("6.6.58-0-virt"));
        assert!(!s.kernel_outdated);
        assert_eq!(apk_release("6.6.31-0-lts"), Some(("6.6.31", "0", "lts")));
        assert_eq!(apk_release("6.6.31"), None);
    }

    #[test]
    fn the_reboot_required_file_and_its_packages_count_for_an_image_root() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("run")).unwrap();
        fs::write(
            root.path().join("run/reboot-required"),
            "*** System restart required ***\n",
        )
        .unwrap();
        fs::write(
            root.path().join("run/reboot-required.pkgs"),
            "linux-image-6.1.0-26-amd64\nlibc6\nlibc6\n\n  \nbad name\n",
        )
        .unwrap();
        let (s, errors) = assess(root.path(), &debian(), None);
        assert!(errors.is_empty());
        assert!(s.required() && s.file_present && !s.kernel_outdated);
        assert_eq!(s.file_packages, vec!["linux-image-6.1.0-26-amd64", "libc6"]);
        assert_eq!(s.running_kernel, None);
        let e = s.evidence();
        assert_eq!(e["reasons"], json!(["/run/reboot-required exists"]));
        assert_eq!(e["running_kernel"], Value::Null);
        assert_eq!(
            e["newest_installed_kernel"],
            json!({"package": "linux-image-6.1.0-26-amd64", "version": "6.1.112-1"})
        );
    }

    #[test]
    fn a_directory_as_the_pkgs_file_is_an_error_and_the_marker_still_counts() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("run/reboot-required.pkgs")).unwrap();
        fs::write(root.path().join("run/reboot-required"), "").unwrap();
        let (s, errors) = assess(root.path(), &[], None);
        assert!(s.file_present);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("not a regular file"), "{errors:?}");
    }
}
