//! The agent's configuration file (TOML).
//!
//! It is read in two steps: serde fills the `Raw*` structs (every table
//! `deny_unknown_fields`, so a misspelt key is an error, not a silent
//! default), then [`RawConfig::validate`] turns them into [`Config`], whose
//! values are checked and typed (durations parsed, the URL checked to be
//! https, TLS targets `host:port`, ranges CIDR). Every validation error names
//! the offending field, like `collect.tls.targets[1]`.
//!
//! A missing *default* config file means built-in defaults; a missing file
//! that was named explicitly is an error.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use trustwatch_common::identity::parse_duration;

use crate::fsio;

/// The config file used when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/trustwatch/agent.toml";
/// The state directory used when neither the config nor `--state-dir` names one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/trustwatch";
/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("config file {path} is not valid TOML for the agent: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Raw form (what serde reads)
// ---------------------------------------------------------------------------

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory holding credentials, enrolment record, spool and status
    /// (default `/var/lib/trustwatch`; `--state-dir` overrides it).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Base URL of the server (`https://host:port`); when set it overrides
    /// the URL recorded at enrolment.
    #[serde(default)]
    pub server_url: Option<String>,
    /// Collector settings.
    #[serde(default)]
    pub collect: RawCollect,
    /// Bounds of the on-disk spool.
    #[serde(default)]
    pub spool: RawSpool,
    /// How reports are uploaded.
    #[serde(default)]
    pub ship: RawShip,
}

/// `[collect]`: one table per collector.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollect {
    /// `[collect.host]`: this machine's inventory.
    #[serde(default)]
    pub host: RawHost,
    /// `[collect.tls]`: TLS endpoints to assess.
    #[serde(default)]
    pub tls: RawTls,
    /// `[collect.network]`: address ranges to sweep.
    #[serde(default)]
    pub network: RawNetwork,
}

/// `[collect.host]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Time between runs, e.g. `1h` (default `1h`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Random extra wait `0..jitter` added to each interval (default 10% of it).
    #[serde(default)]
    pub jitter: Option<String>,
    /// Whether the collector runs at all (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Root of the filesystem to inventory (default `/`; a mounted image's
    /// root to inventory that image instead).
    #[serde(default)]
    pub root: Option<PathBuf>,
}

/// `[collect.tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Time between runs (default `6h`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Random extra wait `0..jitter` (default 10% of the interval).
    #[serde(default)]
    pub jitter: Option<String>,
    /// Whether the collector runs when it has targets (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Endpoints to assess, each `host:port` (`[v6addr]:port` for IPv6).
    #[serde(default)]
    pub targets: Vec<String>,
    /// PEM files of the organisation's own trusted roots, beside the system's.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// Endpoints assessed at the same time (default 4, at most 64).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Time limit of one connection in milliseconds (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Upper bound of the random pause before each handshake to one
    /// endpoint, in milliseconds (default 5; raise it for fragile devices).
    #[serde(default)]
    pub pause_ms: Option<u64>,
    /// Time limit of the whole assessment of one endpoint (default `60s`).
    #[serde(default)]
    pub endpoint_timeout: Option<String>,
}

/// `[collect.network]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// Time between runs (default `24h`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Random extra wait `0..jitter` (default 10% of the interval).
    #[serde(default)]
    pub jitter: Option<String>,
    /// Whether the collector runs when it has ranges (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// CIDR ranges to sweep, e.g. `10.20.0.0/22`.
    #[serde(default)]
    pub ranges: Vec<String>,
    /// CIDR ranges never sent a packet.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Ports swept, like `22,80,8000-8100,161/udp` (default: the legacy
    /// services of DESIGN §2 and the usual TLS ports).
    #[serde(default)]
    pub ports: Option<String>,
    /// Connection attempts plus UDP requests per second, all hosts
    /// together (default 1000).
    #[serde(default)]
    pub rate: Option<u32>,
    /// The same towards one host (default 40, at most `rate`).
    #[serde(default)]
    pub host_rate: Option<u32>,
    /// Connections open to one host at the same time, 1 or 2 (default 2).
    #[serde(default)]
    pub host_connections: Option<u32>,
    /// When the service may sweep, `"HH:MM-HH:MM"` in UTC, wrapping
    /// midnight when the end is not after the start (default: any time).
    /// `once` and `scan network` ignore them.
    #[serde(default)]
    pub windows: Vec<String>,
    /// Hard time limit of one sweep (default `4h`).
    #[serde(default)]
    pub budget: Option<String>,
    /// Wait for one TCP connection of the sweep (default `1s`).
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// The estate has Windows Extended Security Updates: Windows releases
    /// count as supported until their ESU end (default `false`).
    #[serde(default)]
    pub windows_esu: Option<bool>,
}

/// `[spool]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    /// Bound on the total size of spooled reports in bytes (default 64 MiB).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Bound on the number of spooled reports (default 10000).
    #[serde(default)]
    pub max_reports: Option<u64>,
}

/// `[ship]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShip {
    /// Time limit of one upload request, connection included (default `30s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// First retry delay after a failed upload (default `1s`).
    #[serde(default)]
    pub backoff_initial: Option<String>,
    /// Longest retry delay (default `5m`).
    #[serde(default)]
    pub backoff_max: Option<String>,
}

// ---------------------------------------------------------------------------
// Validated form
// ---------------------------------------------------------------------------

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The state directory (after `--state-dir`).
    pub state_dir: PathBuf,
    /// Overrides the server URL recorded at enrolment.
    pub server_url: Option<ServerUrl>,
    /// Collector settings.
    pub collect: CollectConfig,
    /// Spool bounds.
    pub spool: SpoolLimits,
    /// Upload settings.
    pub ship: ShipConfig,
}

/// When a collector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Time between runs; at least one second.
    pub interval: Duration,
    /// Upper bound of the random extra wait added to each interval.
    pub jitter: Duration,
}

/// Validated `[collect]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectConfig {
    /// `[collect.host]`.
    pub host: HostConfig,
    /// `[collect.tls]`.
    pub tls: TlsConfig,
    /// `[collect.network]`.
    pub network: NetworkConfig,
}

/// Validated `[collect.host]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Whether it runs.
    pub enabled: bool,
    /// When it runs.
    pub schedule: Schedule,
    /// Filesystem root to inventory.
    pub root: PathBuf,
}

/// Validated `[collect.tls]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Whether it runs (when it has targets).
    pub enabled: bool,
    /// When it runs.
    pub schedule: Schedule,
    /// Endpoints to assess.
    pub targets: Vec<Target>,
    /// Extra trusted roots.
    pub ca: Vec<PathBuf>,
    /// Endpoints assessed at the same time.
    pub concurrency: usize,
    /// Time limit of one connection.
    pub timeout: Duration,
    /// Upper bound of the random pause before each handshake.
    pub pause: Duration,
    /// Time limit of one endpoint's whole assessment.
    pub endpoint_timeout: Duration,
}

impl TlsConfig {
    /// Configured: enabled with at least one target.
    pub fn is_configured(&self) -> bool {
        self.enabled && !self.targets.is_empty()
    }
}

/// Validated `[collect.network]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// Whether it runs (when it has ranges).
    pub enabled: bool,
    /// When it runs.
    pub schedule: Schedule,
    /// Ranges to sweep.
    pub ranges: Vec<Cidr>,
    /// Ranges never probed.
    pub exclude: Vec<Cidr>,
    /// Ports, rates, connections per host, windows, budget.
    pub settings: crate::collect::network::settings::ScanSettings,
    /// Whether the scan windows apply. Never read from the file: `run`
    /// sets it (windows apply to the service only, DESIGN §3).
    pub enforce_windows: bool,
}

impl NetworkConfig {
    /// Configured: enabled with at least one range.
    pub fn is_configured(&self) -> bool {
        self.enabled && !self.ranges.is_empty()
    }
}

/// Validated `[spool]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Total bytes of spooled reports.
    pub max_bytes: u64,
    /// Number of spooled reports.
    pub max_reports: usize,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_bytes: 64 * 1024 * 1024,
            max_reports: 10_000,
        }
    }
}

/// Validated `[ship]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipConfig {
    /// Per-request time limit.
    pub timeout: Duration,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

/// An https base URL of the server, without query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl(Url);

impl ServerUrl {
    /// Parses and checks a server URL.
    pub fn parse(s: &str) -> Result<ServerUrl, String> {
        let url = Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        if url.scheme() != "https" {
            return Err(format!("{s:?} must be an https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{s:?} has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{s:?} must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{s:?} must not carry credentials"));
        }
        Ok(ServerUrl(url))
    }

    /// The URL of an API path (`/api/v1/...`) below this base.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.0.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TLS target `host:port`, kept as given (the asset id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address, without IPv6 brackets; also the SNI.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The target exactly as written.
    pub given: String,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?} is not host:port"))?;
        let host = match host.strip_prefix('[') {
            Some(h) => {
                let h = h
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{s:?}: unbalanced '['"))?;
                h.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| format!("{s:?}: {h:?} is not an IPv6 address"))?;
                h
            }
            None => host,
        };
        if host.is_empty() {
            return Err(format!("{s:?} has no host"));
        }
        if host.contains(':') && !s.starts_with('[') {
            return Err(format!("{s:?}: write an IPv6 address as [addr]:port"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
        {
            return Err(format!("{s:?}: {host:?} is not a host name or address"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{s:?}: {port:?} is not a port number"))?;
        if port == 0 {
            return Err(format!("{s:?}: port 0 is not a port"));
        }
        Ok(Target {
            host: host.to_owned(),
            port,
            given: s.to_owned(),
        })
    }
}

/// An address range `addr/prefix` with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an IP address"))?;
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix {p:?} is not 0..={max}"))?,
        };
        let bits: u128 = match addr {
            IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
            IpAddr::V6(v) => u128::from(v),
        };
        let host_mask = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        if bits & host_mask != 0 {
            return Err(format!(
                "{s:?} has host bits set (give the network address of the range)"
            ));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

// ---------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------

/// Which config file to read.
#[derive(Debug, Clone)]
pub enum ConfigSource<'a> {
    /// The default path: a missing file means built-in defaults.
    Default,
    /// A path given on the command line: it must exist.
    Explicit(&'a Path),
}

/// Reads, parses and validates the config; `state_dir` overrides the file's.
pub fn load(source: ConfigSource<'_>, state_dir: Option<&Path>) -> Result<Config, ConfigError> {
    let (path, must_exist) = match source {
        ConfigSource::Default => (Path::new(DEFAULT_CONFIG_PATH), false),
        ConfigSource::Explicit(p) => (p, true),
    };
    let raw = match fsio::read_bounded(path, MAX_CONFIG_BYTES) {
        Ok(bytes) => parse(path, &bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !must_exist => RawConfig::default(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut cfg = raw.validate()?;
    if let Some(dir) = state_dir {
        cfg.state_dir = dir.to_owned();
    }
    Ok(cfg)
}

/// Parses config text (the path is for messages).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<RawConfig, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: format!("not UTF-8: {e}"),
    })?;
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn duration(field: &str, value: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => parse_duration(v).map_err(|e| invalid(field, e)),
    }
}

fn positive_duration(
    field: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let d = duration(field, value, default)?;
    if d < Duration::from_secs(1) {
        return Err(invalid(field, "must be at least 1s"));
    }
    Ok(d)
}

fn schedule(
    section: &str,
    interval: Option<&str>,
    jitter: Option<&str>,
    default_interval: Duration,
) -> Result<Schedule, ConfigError> {
    let interval = positive_duration(
        &format!("collect.{section}.interval"),
        interval,
        default_interval,
    )?;
    let jitter = duration(&format!("collect.{section}.jitter"), jitter, interval / 10)?;
    Ok(Schedule { interval, jitter })
}

impl RawConfig {
    /// Checks every value and builds the typed config.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let server_url = match self.server_url.as_deref() {
            None => None,
            Some(s) => Some(ServerUrl::parse(s).map_err(|e| invalid("server_url", e))?),
        };
        let state_dir = self
            .state_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        if state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "must not be empty"));
        }

        let h = self.collect.host;
        let host = HostConfig {
            enabled: h.enabled.unwrap_or(true),
            schedule: schedule(
                "host",
                h.interval.as_deref(),
                h.jitter.as_deref(),
                Duration::from_secs(3600),
            )?,
            root: h.root.unwrap_or_else(|| PathBuf::from("/")),
        };

        let t = self.collect.tls;
        let targets = t
            .targets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse()
                    .map_err(|e| invalid(format!("collect.tls.targets[{i}]"), e))
            })
            .collect::<Result<Vec<Target>, _>>()?;
        for (i, p) in t.ca.iter().enumerate() {
            if p.as_os_str().is_empty() {
                return Err(invalid(format!("collect.tls.ca[{i}]"), "empty path"));
            }
        }
        let tls = TlsConfig {
            enabled: t.enabled.unwrap_or(true),
            schedule: schedule(
                "tls",
                t.interval.as_deref(),
                t.jitter.as_deref(),
                Duration::from_secs(6 * 3600),
            )?,
            targets,
            ca: t.ca,
            concurrency: match t.concurrency {
                None => 4,
                Some(n @ 1..=64) => n,
                Some(_) => return Err(invalid("collect.tls.concurrency", "must be 1 to 64")),
            },
            timeout: match t.timeout_ms {
                None => Duration::from_secs(5),
                Some(ms @ 1..=600_000) => Duration::from_millis(ms),
                Some(_) => return Err(invalid("collect.tls.timeout_ms", "must be 1 to 600000")),
            },
            pause: match t.pause_ms {
                None => Duration::from_millis(5),
                Some(ms @ 0..=60_000) => Duration::from_millis(ms),
                Some(_) => return Err(invalid("collect.tls.pause_ms", "must be at most 60000")),
            },
            endpoint_timeout: positive_duration(
                "collect.tls.endpoint_timeout",
                t.endpoint_timeout.as_deref(),
                Duration::from_secs(60),
            )?,
        };

        let n = self.collect.network;
        let cidrs = |what: &str, list: &[String]| {
            list.iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse::<Cidr>()
                        .map_err(|e| invalid(format!("collect.network.{what}[{i}]"), e))
                })
                .collect::<Result<Vec<Cidr>, _>>()
        };
        let network = NetworkConfig {
            enabled: n.enabled.unwrap_or(true),
            schedule: schedule(
                "network",
                n.interval.as_deref(),
                n.jitter.as_deref(),
                Duration::from_secs(24 * 3600),
            )?,
            ranges: cidrs("ranges", &n.ranges)?,
            exclude: cidrs("exclude", &n.exclude)?,
            settings: crate::collect::network::settings::ScanSettings::from_raw(
                &crate::collect::network::settings::RawSettings {
                    ports: n.ports.as_deref(),
                    rate: n.rate,
                    host_rate: n.host_rate,
                    host_connections: n.host_connections,
                    windows: &n.windows,
                    budget: n.budget.as_deref(),
                    connect_timeout: n.connect_timeout.as_deref(),
                    windows_esu: n.windows_esu,
                },
            )
            .map_err(|(key, why)| invalid(format!("collect.network.{key}"), why))?,
            enforce_windows: false,
        };

        let defaults = SpoolLimits::default();
        let max_bytes = self.spool.max_bytes.unwrap_or(defaults.max_bytes);
        if max_bytes < 4096 {
            return Err(invalid("spool.max_bytes", "must be at least 4096"));
        }
        let max_reports = match self.spool.max_reports {
            None => defaults.max_reports,
            Some(0) => return Err(invalid("spool.max_reports", "must be at least 1")),
            Some(n) => usize::try_from(n).map_err(|_| invalid("spool.max_reports", "too large"))?,
        };

        let s = self.ship;
        let timeout = positive_duration(
            "ship.timeout",
            s.timeout.as_deref(),
            Duration::from_secs(30),
        )?;
        let backoff_initial = positive_duration(
            "ship.backoff_initial",
            s.backoff_initial.as_deref(),
            Duration::from_secs(1),
        )?;
        let backoff_max = positive_duration(
            "ship.backoff_max",
            s.backoff_max.as_deref(),
            Duration::from_secs(300),
        )?;
        if backoff_max < backoff_initial {
            return Err(invalid(
                "ship.backoff_max",
                "must not be shorter than ship.backoff_initial",
            ));
        }

        Ok(Config {
            state_dir,
            server_url,
            collect: CollectConfig { host, tls, network },
            spool: SpoolLimits {
                max_bytes,
                max_reports,
            },
            ship: ShipConfig {
                timeout,
                backoff_initial,
                backoff_max,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("t.toml"), text.as_bytes())?.validate()
    }

    fn field_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("expected a field error, got {other}"),
        }
    }

    const FULL: &str = r#"
state_dir = "/srv/tw"
server_url = "https://tw.example.nhs.uk:8443"
[collect.host]
interval = "1h"
jitter = "5m"
enabled = true
[collect.tls]
interval = "6h"
targets = ["ehr.example.nhs.uk:443", "[::1]:8443"]
ca = ["/etc/trustwatch/trust-root.pem"]
[collect.network]
interval = "24h"
ranges = ["10.20.0.0/22"]
exclude = ["10.20.3.0/24"]
[spool]
max_bytes = 67108864
max_reports = 10000
[ship]
timeout = "30s"
backoff_initial = "1s"
backoff_max = "5m"
"#;

    #[test]
    fn full_example_parses_into_typed_values() {
        let c = cfg(FULL).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/srv/tw"));
        assert_eq!(
            c.server_url.as_ref().unwrap().as_str(),
            "https://tw.example.nhs.uk:8443"
        );
        assert_eq!(c.collect.host.schedule.jitter, Duration::from_secs(300));
        assert_eq!(c.collect.tls.targets[1].host, "::1");
        assert_eq!(c.collect.tls.targets[1].port, 8443);
        assert_eq!(c.collect.tls.targets[1].given, "[::1]:8443");
        assert_eq!(c.collect.network.ranges[0].to_string(), "10.20.0.0/22");
        assert_eq!(c.spool.max_reports, 10_000);
        assert_eq!(c.ship.backoff_max, Duration::from_secs(300));
        assert!(c.collect.tls.is_configured());
        assert!(c.collect.network.is_configured());
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = cfg("").unwrap();
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(c.server_url, None);
        assert!(c.collect.host.enabled);
        assert_eq!(c.collect.host.schedule.interval, Duration::from_secs(3600));
        assert_eq!(c.collect.host.schedule.jitter, Duration::from_secs(360));
        assert_eq!(
            c.collect.tls.schedule.interval,
            Duration::from_secs(6 * 3600)
        );
        assert!(!c.collect.tls.is_configured());
        assert!(!c.collect.network.is_configured());
        assert_eq!(c.spool, SpoolLimits::default());
        assert_eq!(c.ship.timeout, Duration::from_secs(30));
    }

    #[test]
    fn unknown_keys_are_refused_in_every_table() {
        for text in [
            "stat_dir = \"/x\"",
            "[collect.host]\nintervall = \"1h\"",
            "[collect.tls]\ntarget = [\"a:1\"]",
            "[collect.network]\nrange = []",
            "[spool]\nmax = 1",
            "[ship]\nretries = 3",
            "[collect.dns]\n",
        ] {
            let e = cfg(text).unwrap_err();
            assert!(matches!(e, ConfigError::Parse { .. }), "{text}: {e}");
        }
        let e = cfg("[collect.host]\nintervall = \"1h\"").unwrap_err();
        assert!(e.to_string().contains("intervall"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let cases = [
            ("server_url = \"http://x:8443\"", "server_url"),
            ("server_url = \"not a url\"", "server_url"),
            ("server_url = \"https://x/?q=1\"", "server_url"),
            (
                "[collect.host]\ninterval = \"soon\"",
                "collect.host.interval",
            ),
            ("[collect.host]\ninterval = \"0s\"", "collect.host.interval"),
            ("[collect.host]\njitter = \"5\"", "collect.host.jitter"),
            (
                "[collect.tls]\ntargets = [\"a:1\", \"nohost\"]",
                "collect.tls.targets[1]",
            ),
            (
                "[collect.tls]\ntargets = [\"a:99999\"]",
                "collect.tls.targets[0]",
            ),
            (
                "[collect.tls]\ntargets = [\"::1:443\"]",
                "collect.tls.targets[0]",
            ),
            (
                "[collect.tls]\ntargets = [\"a b:443\"]",
                "collect.tls.targets[0]",
            ),
            (
                "[collect.network]\nranges = [\"10.0.0.0/33\"]",
                "collect.network.ranges[0]",
            ),
            (
                "[collect.network]\nexclude = [\"10.0.0.1/24\"]",
                "collect.network.exclude[0]",
            ),
            (
                "[collect.network]\nports = \"22,0\"",
                "collect.network.ports",
            ),
            (
                "[collect.network]\nhost_rate = 2000",
                "collect.network.host_rate",
            ),
            (
                "[collect.network]\nhost_connections = 5",
                "collect.network.host_connections",
            ),
            (
                "[collect.network]\nwindows = [\"20:00-06:00\", \"late\"]",
                "collect.network.windows[1]",
            ),
            (
                "[collect.network]\nbudget = \"0s\"",
                "collect.network.budget",
            ),
            ("[spool]\nmax_reports = 0", "spool.max_reports"),
            ("[spool]\nmax_bytes = 10", "spool.max_bytes"),
            ("[ship]\ntimeout = \"x\"", "ship.timeout"),
            (
                "[ship]\nbackoff_initial = \"10m\"\nbackoff_max = \"1m\"",
                "ship.backoff_max",
            ),
        ];
        for (text, field) in cases {
            let e = cfg(text).unwrap_err();
            assert_eq!(field_of(e), field, "{text}");
        }
    }

    #[test]
    fn tls_scan_limits_have_defaults_and_bounds() {
        let c = cfg("[collect.tls]\ntargets = [\"a:1\"]").unwrap();
        assert_eq!(c.collect.tls.concurrency, 4);
        assert_eq!(c.collect.tls.timeout, Duration::from_secs(5));
        assert_eq!(c.collect.tls.pause, Duration::from_millis(5));
        assert_eq!(c.collect.tls.endpoint_timeout, Duration::from_secs(60));
        let c = cfg("[collect.tls]\ntargets = [\"a:1\"]\nconcurrency = 2\ntimeout_ms = 1500\npause_ms = 0\nendpoint_timeout = \"2m\"").unwrap();
        assert_eq!(c.collect.tls.concurrency, 2);
        assert_eq!(c.collect.tls.timeout, Duration::from_millis(1500));
        assert_eq!(c.collect.tls.pause, Duration::ZERO);
        assert_eq!(c.collect.tls.endpoint_timeout, Duration::from_secs(120));
        for (text, field) in [
            ("concurrency = 0", "collect.tls.concurrency"),
            ("timeout_ms = 0", "collect.tls.timeout_ms"),
            ("pause_ms = 60001", "collect.tls.pause_ms"),
            ("endpoint_timeout = \"0s\"", "collect.tls.endpoint_timeout"),
        ] {
            let e = cfg(&format!("[collect.tls]\ntargets = [\"a:1\"]\n{text}")).unwrap_err();
            assert_eq!(field_of(e), field, "{text}");
        }
    }

    #[test]
    fn wrong_types_are_parse_errors() {
        assert!(matches!(
            cfg("[spool]\nmax_bytes = \"big\"").unwrap_err(),
            ConfigError::Parse { .. }
        ));
        assert!(matches!(
            cfg("[spool]\nmax_bytes = -1").unwrap_err(),
            ConfigError::Parse { .. }
        ));
    }

    #[test]
    fn missing_explicit_file_is_an_error_but_state_dir_flag_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("agent.toml");
        assert!(matches!(
            load(ConfigSource::Explicit(&missing), None).unwrap_err(),
            ConfigError::Read { .. }
        ));
        std::fs::write(&missing, "state_dir = \"/a\"").unwrap();
        let c = load(ConfigSource::Explicit(&missing), Some(Path::new("/b"))).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/b"));
        let c = load(ConfigSource::Explicit(&missing), None).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/a"));
    }

    #[test]
    fn shipped_example_file_parses_to_the_defaults() {
        let text = include_str!("../../packaging/agent.toml");
        let c = cfg(text).unwrap();
        let d = cfg("").unwrap();
        assert_eq!(c, d);
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = cfg(&uncommented).unwrap();
        assert_eq!(
            c.server_url.unwrap().as_str(),
            "https://tw.example.nhs.uk:8443"
        );
        assert_eq!(c.collect.tls.targets[0].given, "ehr.example.nhs.uk:443");
        assert_eq!(c.collect.network.exclude[0].to_string(), "10.20.3.0/24");
        let n = &c.collect.network.settings;
        assert_eq!(n.windows[0].to_string(), "20:00-06:00");
        assert_eq!(n.windows.len(), 1);
        assert!(n.windows_esu);
        assert_eq!(c.collect.tls.schedule.jitter, Duration::from_secs(36 * 60));
    }

    #[test]
    fn server_url_endpoints_join_below_the_base_path() {
        let u = ServerUrl::parse("https://127.0.0.1:8443/").unwrap();
        assert_eq!(
            u.endpoint("/api/v1/reports").as_str(),
            "https://127.0.0.1:8443/api/v1/reports"
        );
        assert_eq!(u.as_str(), "https://127.0.0.1:8443");
        let u = ServerUrl::parse("https://h/tw").unwrap();
        assert_eq!(u.endpoint("/healthz").as_str(), "https://h/tw/healthz");
    }

    #[test]
    fn cidrs_parse_both_families() {
        assert_eq!("10.20.3.0/24".parse::<Cidr>().unwrap().prefix, 24);
        assert_eq!("10.0.0.7".parse::<Cidr>().unwrap().prefix, 32);
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().prefix, 8);
        assert!("0.0.0.0/0".parse::<Cidr>().is_ok());
        assert!("fd00::1/64".parse::<Cidr>().is_err());
    }
}
