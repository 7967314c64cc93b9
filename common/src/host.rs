//! The host inventory: what `scan host` prints as the `host` asset and what
//! the server's matcher reads (DESIGN §3).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::report::{Asset, AssetKind};

/// Operating-system identity, from `/etc/os-release` (and `sysinfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsIdentity {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`.
    #[serde(default)]
    pub version_id: String,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    #[serde(default)]
    pub codename: String,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default)]
    pub name: String,
    /// `ID_LIKE`, split on spaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// `dpkg`, `rpm` or `apk`.
    pub manager: String,
    pub name: String,
    pub version: String,
    /// The source package (vendor advisories key on it).
    pub source_name: String,
    pub source_version: String,
    #[serde(default)]
    pub arch: String,
}

/// Windows facts; reserved until a Windows build of the agent exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsInfo {
    pub build: u32,
    pub ubr: u32,
    pub edition: String,
    pub hotfixes: Vec<String>,
}

/// The `host` asset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostAsset {
    /// The hostname; the asset id.
    pub id: String,
    pub os: OsIdentity,
    /// Running kernel release (`uname -r`).
    pub kernel: String,
    #[serde(default)]
    pub uptime_secs: u64,
    #[serde(default)]
    pub cpu_count: usize,
    #[serde(default)]
    pub cpu_brand: String,
    #[serde(default)]
    pub memory_total_bytes: u64,
    #[serde(default)]
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsInfo>,
    /// How many entries `packages` has (absent when no inventory was taken,
    /// e.g. from an agent older than the package inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_count: Option<usize>,
    /// Whether installed updates wait for a reboot (`/run/reboot-required`,
    /// or a running kernel older than the newest installed); absent when
    /// not assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_required: Option<bool>,
    /// When the package manager's metadata was last refreshed (newest
    /// modification time of its index files), RFC 3339; absent when unknown.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub package_metadata_refreshed_at: Option<time::OffsetDateTime>,
    /// Whose metadata that is: `apt`, `dnf`, `yum`, `apk`, or `unknown` when
    /// none was found; absent when not assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_metadata_source: Option<String>,
}

impl HostAsset {
    pub fn into_asset(self) -> Asset {
        let id = self.id.clone();
        let mut details = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            // A struct of plain fields always serialises to an object.
            _ => Map::new(),
        };
        details.remove("id");
        Asset {
            kind: AssetKind::Host,
            id,
            details,
        }
    }

    /// Reads a host asset back; `None` if it is not one.
    pub fn from_asset(asset: &Asset) -> Option<HostAsset> {
        if asset.kind != AssetKind::Host {
            return None;
        }
        let mut m = asset.details.clone();
        m.insert("id".into(), Value::String(asset.id.clone()));
        serde_json::from_value(Value::Object(m)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_asset_has_design_shape_and_reads_back() {
        let h = HostAsset {
            id: "pacs01".into(),
            os: OsIdentity {
                id: "debian".into(),
                version_id: "12".into(),
                codename: "bookworm".into(),
                name: "Debian GNU/Linux 12 (bookworm)".into(),
                id_like: vec![],
            },
            kernel: "6.1.0-26-amd64".into(),
            packages: vec![Package {
                manager: "dpkg".into(),
                name: "libssl3".into(),
                version: "3.0.15-1~deb12u1".into(),
                source_name: "openssl".into(),
                source_version: "3.0.15-1~deb12u1".into(),
                arch: "amd64".into(),
            }],
            ..Default::default()
        };
        let a = h.clone().into_asset();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["kind"], "host");
        assert_eq!(v["id"], "pacs01");
        assert_eq!(v["os"]["codename"], "bookworm");
        assert_eq!(v["packages"][0]["source_name"], "openssl");
        assert_eq!(HostAsset::from_asset(&a), Some(h));
        // The optional inventory fields are absent until set.
        assert!(v.get("package_count").is_none());
        assert!(v.get("package_metadata_refreshed_at").is_none());
    }

    #[test]
    fn optional_inventory_fields_round_trip_and_default_when_absent() {
        let h = HostAsset {
            id: "pacs01".into(),
            package_count: Some(0),
            reboot_required: Some(true),
            package_metadata_refreshed_at: Some(
                time::OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
            ),
            package_metadata_source: Some("apt".into()),
            ..Default::default()
        };
        let a = h.clone().into_asset();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["package_metadata_refreshed_at"], "2025-10-09T08:53:20Z");
        assert_eq!(v["reboot_required"], true);
        assert_eq!(HostAsset::from_asset(&a), Some(h));
        let old: HostAsset =
            serde_json::from_str(r#"{"id": "x", "os": {"id": "debian"}, "kernel": "6.1"}"#)
                .unwrap();
        assert_eq!(old.package_count, None);
        assert_eq!(old.package_metadata_refreshed_at, None);
    }
}
