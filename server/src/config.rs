//! `serve` configuration: the TOML file given with `--config`, merged with
//! the command-line flags (flags win) into [`ServeOptions`].
//!
//! File format (every key optional, unknown keys refused):
//! ```toml
//! listen = "127.0.0.1:8443"
//! max_body_bytes = 8388608            # compressed request body limit
//! max_decompressed_bytes = 67108864   # limit after gunzip
//! ca_cert = "/etc/trustwatch-server/ca.pem"
//! ca_key = "/etc/trustwatch-server/ca-key.pem"
//! tls_cert = "/etc/trustwatch-server/server.pem"
//! tls_key = "/etc/trustwatch-server/server-key.pem"
//!
//! [eol]
//! ubuntu_pro = false    # the estate has Ubuntu Pro: ESM counts as support
//! windows_esu = false   # the estate pays for Windows Extended Security Updates
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::vuln::Policy;

/// Default `listen` address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default limit of a (possibly compressed) request body: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
/// Default limit of a report after decompression: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;

/// The `--config` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on, `IP:PORT` or `HOST:PORT` (port 0 picks a free one).
    pub listen: Option<String>,
    /// Largest request body accepted, counted as sent (compressed), in bytes.
    pub max_body_bytes: Option<u64>,
    /// Largest report accepted after gzip decompression, in bytes.
    pub max_decompressed_bytes: Option<u64>,
    /// PEM certificate of an existing CA to use instead of the generated one.
    pub ca_cert: Option<PathBuf>,
    /// PEM private key of that CA (required with `ca_cert`).
    pub ca_key: Option<PathBuf>,
    /// PEM server certificate (chain) to present instead of the generated one.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that server certificate (required with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// What the estate pays for, for end-of-life and advisory matching.
    #[serde(default)]
    pub eol: EolConfig,
}

/// The `[eol]` section: which extended-support periods count as support
/// (DESIGN §2). Debian LTS always counts; RHEL ELS never does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EolConfig {
    /// The estate has Ubuntu Pro: Ubuntu ESM counts as support and the
    /// `Ubuntu:Pro:…` advisories apply. Default false.
    #[serde(default)]
    pub ubuntu_pro: bool,
    /// The estate pays for Windows Extended Security Updates: ESU counts as
    /// support. Default false.
    #[serde(default)]
    pub windows_esu: bool,
}

impl EolConfig {
    /// The matching policy this section describes.
    pub fn policy(&self) -> Policy {
        Policy {
            ubuntu_pro: self.ubuntu_pro,
            windows_esu: self.windows_esu,
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0} and {1} must be given together")]
    Pair(&'static str, &'static str),
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// Flags of `serve` that override the file.
#[derive(Debug, Clone, Default)]
pub struct ServeFlags {
    pub listen: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The effective `serve` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Where the database, CA and server certificate live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: String,
    /// Largest request body as sent.
    pub max_body_bytes: u64,
    /// Largest report after decompression.
    pub max_decompressed_bytes: u64,
    /// Own CA (certificate, key) instead of the generated one.
    pub ca: Option<(PathBuf, PathBuf)>,
    /// Own server certificate (chain, key) instead of the generated one.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The matching policy (`[eol]`).
    pub policy: Policy,
}

impl ServeOptions {
    /// Defaults for a data directory (the generated CA and server certificate).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServeOptions {
            data_dir: data_dir.into(),
            listen: DEFAULT_LISTEN.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            ca: None,
            tls: None,
            policy: Policy::default(),
        }
    }

    /// Merges file and flags (flags win) over the defaults.
    pub fn resolve(
        data_dir: PathBuf,
        file: FileConfig,
        flags: ServeFlags,
    ) -> Result<Self, ConfigError> {
        let pair = |a: Option<PathBuf>,
                    b: Option<PathBuf>,
                    na: &'static str,
                    nb: &'static str|
         -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
            match (a, b) {
                (Some(a), Some(b)) => Ok(Some((a, b))),
                (None, None) => Ok(None),
                _ => Err(ConfigError::Pair(na, nb)),
            }
        };
        let ca = pair(
            flags.ca_cert.or(file.ca_cert),
            flags.ca_key.or(file.ca_key),
            "ca_cert",
            "ca_key",
        )?;
        let tls = pair(
            flags.tls_cert.or(file.tls_cert),
            flags.tls_key.or(file.tls_key),
            "tls_cert",
            "tls_key",
        )?;
        let max_body_bytes = flags
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        let max_decompressed_bytes = file
            .max_decompressed_bytes
            .unwrap_or(DEFAULT_MAX_DECOMPRESSED_BYTES);
        if max_body_bytes == 0 {
            return Err(ConfigError::Zero("max_body_bytes"));
        }
        if max_decompressed_bytes == 0 {
            return Err(ConfigError::Zero("max_decompressed_bytes"));
        }
        Ok(ServeOptions {
            data_dir,
            listen: flags
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            max_body_bytes,
            max_decompressed_bytes,
            ca,
            tls,
            policy: file.eol.policy(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file = FileConfig::parse(
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 100\nmax_decompressed_bytes = 1000\n",
        )
        .unwrap();
        let flags = ServeFlags {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let o = ServeOptions::resolve("d".into(), file, flags).unwrap();
        assert_eq!(o.listen, "127.0.0.1:0");
        assert_eq!(o.max_body_bytes, 100);
        assert_eq!(o.max_decompressed_bytes, 1000);
        let o = ServeOptions::resolve("d".into(), FileConfig::default(), ServeFlags::default())
            .unwrap();
        assert_eq!(o, ServeOptions::new("d"));
    }

    #[test]
    fn config_with_an_unknown_key_is_refused() {
        assert!(FileConfig::parse("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n").is_err());
    }

    #[test]
    fn eol_section_sets_the_policy_and_refuses_unknown_keys() {
        let file = FileConfig::parse("[eol]\nubuntu_pro = true\n").unwrap();
        let o = ServeOptions::resolve("d".into(), file, ServeFlags::default()).unwrap();
        assert!(o.policy.ubuntu_pro);
        assert!(!o.policy.windows_esu);
        assert!(FileConfig::parse("[eol]\nubuntu_esm = true\n").is_err());
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let file = FileConfig::parse("ca_cert = \"ca.pem\"\n").unwrap();
        assert!(matches!(
            ServeOptions::resolve("d".into(), file, ServeFlags::default()),
            Err(ConfigError::Pair("ca_cert", "ca_key"))
        ));
    }
}
