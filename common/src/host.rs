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
    }
}
