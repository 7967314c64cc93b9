//! From an OS identity to the advisory ecosystems, version rules and
//! package names that apply to it, and from an OSV ecosystem string to the
//! key it is stored under.
//!
//! | OS (`os-release` `ID`) | ecosystems looked up | scheme | package name |
//! |---|---|---|---|
//! | `debian` 12 | `Debian:12` | dpkg | source |
//! | `ubuntu` 22.04 | `Ubuntu:22.04`, `Ubuntu:22.04:LTS` (+ `Ubuntu:Pro:22.04[:LTS]` with Ubuntu Pro) | dpkg | source |
//! | `alpine` 3.20.3 | `Alpine:v3.20` | apk | origin (source) |
//! | `almalinux` 9.4 | `AlmaLinux:9` | rpm | binary |
//! | `rocky` 9.4 | `Rocky Linux:9` | rpm | binary |
//! | `rhel` 9.4 | `Red Hat:9` | rpm | binary |
//!
//! Red Hat ecosystems are CPE-like (`Red Hat:enterprise_linux:9::baseos`);
//! the main stream (`enterprise_linux`) is stored under `Red Hat:<major>`,
//! the per-minor extended streams (`rhel_eus`, `rhel_aus`, `rhel_e4s`,
//! `rhel_tus`, …) under `Red Hat:<product>:<version>`, which no host maps
//! to: `os-release` does not say which extended stream a host follows, and a
//! guess could raise a false alarm.

use trustwatch_common::host::OsIdentity;
use trustwatch_common::version::{apk::ApkVersion, DpkgVersion, RpmVersion, Scheme};

use super::Policy;

/// Which name of an installed package the vendor's advisories use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKey {
    /// The source package (Debian, Ubuntu) or origin (Alpine).
    Source,
    /// The binary package (RPM distributions).
    Binary,
}

/// What applies to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Normalised ecosystem keys to look advisories up under.
    pub ecosystems: Vec<String>,
    pub scheme: Scheme,
    pub name_key: NameKey,
    /// The package manager whose packages are matched (`dpkg`, `rpm`, `apk`).
    pub manager: &'static str,
}

/// The stored key and version scheme of an OSV ecosystem string, or `None`
/// when trustwatch does not match that ecosystem.
pub fn normalise(raw: &str) -> Option<(String, Scheme)> {
    let base = raw.split(':').next().unwrap_or("");
    match base {
        "Debian" | "Ubuntu" => Some((raw.to_owned(), Scheme::Dpkg)),
        "Alpine" => Some((raw.to_owned(), Scheme::Apk)),
        "AlmaLinux" | "Rocky Linux" => Some((raw.to_owned(), Scheme::Rpm)),
        "Red Hat" => {
            let parts: Vec<&str> = raw.split(':').collect();
            let product = parts.get(1).copied().unwrap_or("");
            let version = parts.get(2).copied().unwrap_or("");
            if product.is_empty() || version.is_empty() {
                return Some((raw.to_owned(), Scheme::Rpm));
            }
            if product == "enterprise_linux" {
                let major = version.split('.').next().unwrap_or(version);
                Some((format!("Red Hat:{major}"), Scheme::Rpm))
            } else {
                Some((format!("Red Hat:{product}:{version}"), Scheme::Rpm))
            }
        }
        _ => None,
    }
}

/// The version scheme of a stored ecosystem key.
pub fn scheme_of(key: &str) -> Option<Scheme> {
    normalise(key).map(|(_, s)| s)
}

/// True when the distribution's comparator accepts `v`.
pub fn version_parses(scheme: Scheme, v: &str) -> bool {
    match scheme {
        Scheme::Dpkg => DpkgVersion::parse(v).is_ok(),
        Scheme::Rpm => RpmVersion::parse(v).is_ok(),
        Scheme::Apk => ApkVersion::parse(v).is_ok(),
    }
}

/// The first `n` dot-separated components of a version id.
fn components(v: &str, n: usize) -> Option<String> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() < n
        || parts[..n]
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(parts[..n].join("."))
}

/// The release key of an OS for end-of-life lookups and ecosystems: `12`
/// for Debian, `22.04` for Ubuntu, `3.20` for Alpine, the major version for
/// the EL family, `VERSION_ID` itself for Windows.
pub fn release_of(os: &OsIdentity) -> Option<String> {
    let v = os.version_id.trim();
    match os.id.as_str() {
        "debian" | "rhel" | "almalinux" | "rocky" => components(v, 1),
        "ubuntu" | "alpine" => components(v, 2),
        "windows" | "windows-server" => (!v.is_empty()).then(|| v.to_owned()),
        _ => None,
    }
}

/// What applies to a host with this OS, or `None` when trustwatch has no
/// advisories for it (an unknown distribution, or no `VERSION_ID`).
pub fn target(os: &OsIdentity, policy: &Policy) -> Option<Target> {
    let release = release_of(os)?;
    let (ecosystems, scheme, name_key, manager) = match os.id.as_str() {
        "debian" => (
            vec![format!("Debian:{release}")],
            Scheme::Dpkg,
            NameKey::Source,
            "dpkg",
        ),
        "ubuntu" => {
            let mut e = vec![format!("Ubuntu:{release}"), format!("Ubuntu:{release}:LTS")];
            if policy.ubuntu_pro {
                e.push(format!("Ubuntu:Pro:{release}"));
                e.push(format!("Ubuntu:Pro:{release}:LTS"));
            }
            (e, Scheme::Dpkg, NameKey::Source, "dpkg")
        }
        "alpine" => (
            vec![format!("Alpine:v{release}")],
            Scheme::Apk,
            NameKey::Source,
            "apk",
        ),
        "almalinux" => (
            vec![format!("AlmaLinux:{release}")],
            Scheme::Rpm,
            NameKey::Binary,
            "rpm",
        ),
        "rocky" => (
            vec![format!("Rocky Linux:{release}")],
            Scheme::Rpm,
            NameKey::Binary,
            "rpm",
        ),
        "rhel" => (
            vec![format!("Red Hat:{release}")],
            Scheme::Rpm,
            NameKey::Binary,
            "rpm",
        ),
        _ => return None,
    };
    Some(Target {
        ecosystems,
        scheme,
        name_key,
        manager,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, v: &str) -> OsIdentity {
        OsIdentity {
            id: id.into(),
            version_id: v.into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_distribution_maps_to_its_release_scoped_ecosystem() {
        let p = Policy::default();
        assert_eq!(
            target(&os("debian", "12"), &p).unwrap().ecosystems,
            ["Debian:12"]
        );
        assert_eq!(
            target(&os("alpine", "3.20.3"), &p).unwrap().ecosystems,
            ["Alpine:v3.20"]
        );
        assert_eq!(
            target(&os("almalinux", "9.4"), &p).unwrap().ecosystems,
            ["AlmaLinux:9"]
        );
        assert_eq!(
            target(&os("rocky", "9.4"), &p).unwrap().ecosystems,
            ["Rocky Linux:9"]
        );
        assert_eq!(
            target(&os("rhel", "9.4"), &p).unwrap().ecosystems,
            ["Red Hat:9"]
        );
        let u = target(&os("ubuntu", "22.04"), &p).unwrap();
        assert_eq!(u.ecosystems, ["Ubuntu:22.04", "Ubuntu:22.04:LTS"]);
        assert_eq!(u.name_key, NameKey::Source);
        assert_eq!(
            target(&os("almalinux", "9.4"), &p).unwrap().name_key,
            NameKey::Binary
        );
    }

    #[test]
    fn ubuntu_pro_streams_apply_only_under_the_pro_policy() {
        let pro = Policy {
            ubuntu_pro: true,
            ..Default::default()
        };
        let e = target(&os("ubuntu", "14.04"), &pro).unwrap().ecosystems;
        assert!(e.contains(&"Ubuntu:Pro:14.04:LTS".to_owned()));
        let e = target(&os("ubuntu", "14.04"), &Policy::default())
            .unwrap()
            .ecosystems;
        assert!(!e.iter().any(|x| x.contains("Pro")));
    }

    #[test]
    fn unknown_or_versionless_systems_have_no_target() {
        let p = Policy::default();
        assert!(target(&os("debian", ""), &p).is_none());
        assert!(target(&os("gentoo", "2.15"), &p).is_none());
        assert!(target(&os("ubuntu", "22"), &p).is_none());
    }

    #[test]
    fn red_hat_main_stream_is_keyed_by_major_and_extended_streams_apart() {
        assert_eq!(
            normalise("Red Hat:enterprise_linux:9::baseos").unwrap().0,
            "Red Hat:9"
        );
        assert_eq!(
            normalise("Red Hat:rhel_aus:8.6::appstream").unwrap().0,
            "Red Hat:rhel_aus:8.6"
        );
        assert_eq!(normalise("Ubuntu:Pro:14.04:LTS").unwrap().1, Scheme::Dpkg);
        assert!(normalise("RubyGems").is_none());
        assert!(normalise("Debian").is_some());
    }
}
