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
//!
//! [score]
//! refresh = "60s"          # how often out-of-date scores are recomputed
//! agent_interval = "24h"   # assumed cadence of an agent with fewer than 4 reports
//!
//! [[reports]]              # any number of scheduled reports
//! name = "weekly-nation"   # unique; 1-64 of [A-Za-z0-9_-]
//! schedule = "0 6 * * mon" # 5-field cron, UTC (subset: report::cron)
//! scope = "all"            # "all", "org:CODE" or "parent:CODE"
//! formats = ["html", "csv", "json"]
//! out_dir = "/var/lib/trustwatch-server/reports"  # default <data dir>/reports
//! mail_to = ["soc@example.org"]                   # optional; needs [smtp]
//!
//! [smtp]
//! host = "mail.example.org"
//! port = 587                # default 25, or 465 with security = "tls"
//! security = "starttls"     # "none", "starttls" (default) or "tls"
//! from = "trustwatch <trustwatch@example.org>"
//! username = "trustwatch"   # optional, with password_file
//! password_file = "/etc/trustwatch-server/smtp-password"
//! ca = "/etc/trustwatch-server/smtp-ca.pem"       # optional extra roots
//! hello_name = "trustwatch.example.org"           # default localhost
//! timeout = "60s"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::report::cron::Cron;
use crate::report::mail::{self, Security, SmtpSettings};
use crate::report::output::is_valid_name;
use crate::report::schedule::ReportSpec;
use crate::report::{Format, ReportError, Scope};
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
    /// When scores are recomputed and when an agent counts as stale.
    #[serde(default)]
    pub score: ScoreConfig,
    /// Scheduled reports (`[[reports]]`), fired by `serve`.
    #[serde(default)]
    pub reports: Vec<ReportConfig>,
    /// The SMTP relay that mails scheduled reports (`[smtp]`).
    pub smtp: Option<SmtpConfig>,
}

/// One `[[reports]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Unique name, 1-64 of `[A-Za-z0-9_-]`: the key of the schedule's
    /// "last fired" state in the store and the start of its file names.
    pub name: String,
    /// Five-field cron expression in UTC (`minute hour day month weekday`;
    /// the subset is documented in `report::cron`).
    pub schedule: String,
    /// `all`, `org:CODE` (one organisation) or `parent:CODE` (an
    /// organisation and all its descendants).
    pub scope: String,
    /// Any of `html`, `csv`, `json`. Default: all three.
    pub formats: Option<Vec<String>>,
    /// Directory the files are written to. Default `<data dir>/reports`.
    pub out_dir: Option<PathBuf>,
    /// Addresses the files are mailed to (needs `[smtp]`). Default: none.
    #[serde(default)]
    pub mail_to: Vec<String>,
}

/// The `[smtp]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or address of the relay (also the name its TLS
    /// certificate must carry).
    pub host: String,
    /// Port. Default 25, or 465 with `security = "tls"`.
    pub port: Option<u16>,
    /// `none` (plain SMTP), `starttls` (upgrade required; the default) or
    /// `tls` (implicit TLS).
    pub security: Option<String>,
    /// The sender address, e.g. `trustwatch <tw@example.org>`.
    pub from: String,
    /// User name for SMTP AUTH (with `password_file`). Default: no AUTH.
    pub username: Option<String>,
    /// File holding the SMTP password (read at each send).
    pub password_file: Option<PathBuf>,
    /// PEM file of extra roots trusted for the relay, beside the webpki roots.
    pub ca: Option<PathBuf>,
    /// The name given in EHLO. Default `localhost`.
    pub hello_name: Option<String>,
    /// Longest wait for the relay, like `60s`. Default 60s.
    pub timeout: Option<String>,
}

impl SmtpConfig {
    /// The settings this section describes.
    pub fn settings(&self) -> Result<SmtpSettings, ConfigError> {
        let r = |e: ReportError| ConfigError::Report(e.to_string());
        let security =
            Security::parse(self.security.as_deref().unwrap_or("starttls")).map_err(r)?;
        if self.host.trim().is_empty() {
            return Err(ConfigError::Report("smtp.host is empty".into()));
        }
        mail::check_address(&self.from).map_err(r)?;
        if self.password_file.is_some() && self.username.is_none() {
            return Err(ConfigError::Report(
                "smtp.password_file needs smtp.username".into(),
            ));
        }
        let timeout = match &self.timeout {
            None => Duration::from_secs(60),
            Some(v) => match trustwatch_common::identity::parse_duration(v) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => return Err(ConfigError::Zero("smtp.timeout")),
                Err(e) => {
                    return Err(ConfigError::Duration {
                        key: "smtp.timeout",
                        reason: e.to_string(),
                    })
                }
            },
        };
        Ok(SmtpSettings {
            host: self.host.clone(),
            port: self.port.unwrap_or(security.default_port()),
            security,
            from: self.from.clone(),
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            ca: self.ca.clone(),
            hello_name: self
                .hello_name
                .clone()
                .unwrap_or_else(|| "localhost".to_owned()),
            timeout,
        })
    }
}

/// Checks the `[[reports]]` entries into specs (`data_dir` gives the
/// default directory).
pub fn report_specs(
    reports: &[ReportConfig],
    smtp: Option<&SmtpSettings>,
    data_dir: &Path,
) -> Result<Vec<ReportSpec>, ConfigError> {
    let mut specs: Vec<ReportSpec> = Vec::with_capacity(reports.len());
    for r in reports {
        let bad =
            |reason: String| ConfigError::Report(format!("[[reports]] {:?}: {reason}", r.name));
        if !is_valid_name(&r.name) {
            return Err(bad("name must be 1-64 of [A-Za-z0-9_-]".into()));
        }
        if specs.iter().any(|s| s.name == r.name) {
            return Err(bad("the name is used twice".into()));
        }
        let cron = Cron::parse(&r.schedule).map_err(|e| bad(format!("schedule: {e}")))?;
        let scope = Scope::parse(&r.scope).map_err(|e| bad(e.to_string()))?;
        let mut formats = Vec::new();
        match &r.formats {
            None => formats.extend(Format::ALL),
            Some(list) => {
                for f in list {
                    let f = Format::parse(f).map_err(|e| bad(e.to_string()))?;
                    if !formats.contains(&f) {
                        formats.push(f);
                    }
                }
            }
        }
        if formats.is_empty() {
            return Err(bad("formats is empty".into()));
        }
        for a in &r.mail_to {
            mail::check_address(a).map_err(|e| bad(e.to_string()))?;
        }
        if !r.mail_to.is_empty() && smtp.is_none() {
            return Err(bad("mail_to needs an [smtp] section".into()));
        }
        specs.push(ReportSpec {
            name: r.name.clone(),
            cron,
            scope,
            formats,
            out_dir: r
                .out_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("reports")),
            mail_to: r.mail_to.clone(),
        });
    }
    Ok(specs)
}

/// The `[score]` section (durations like `90s`, `15m`, `24h`, `7d`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// How often `serve` runs the stale-agent check and recomputes the
    /// scores of organisations whose findings changed. Default 60s.
    pub refresh: Option<String>,
    /// The reporting interval assumed for an agent with fewer than 4
    /// reports (after that its observed cadence is used); an agent is stale
    /// after twice its interval. Default 24h.
    pub agent_interval: Option<String>,
}

/// Default `[score] refresh`.
pub const DEFAULT_SCORE_REFRESH: Duration = Duration::from_secs(60);

/// The effective `[score]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreSettings {
    pub refresh: Duration,
    pub agent_interval: Duration,
}

impl Default for ScoreSettings {
    fn default() -> Self {
        ScoreSettings {
            refresh: DEFAULT_SCORE_REFRESH,
            agent_interval: crate::store::scores::DEFAULT_AGENT_INTERVAL,
        }
    }
}

impl ScoreConfig {
    /// The settings this section describes.
    pub fn settings(&self) -> Result<ScoreSettings, ConfigError> {
        let d = ScoreSettings::default();
        let parse = |key: &'static str, v: &Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(v) => match trustwatch_common::identity::parse_duration(v) {
                Ok(x) if !x.is_zero() => Ok(x),
                Ok(_) => Err(ConfigError::Zero(key)),
                Err(e) => Err(ConfigError::Duration {
                    key,
                    reason: e.to_string(),
                }),
            },
        };
        Ok(ScoreSettings {
            refresh: parse("score.refresh", &self.refresh, d.refresh)?,
            agent_interval: parse(
                "score.agent_interval",
                &self.agent_interval,
                d.agent_interval,
            )?,
        })
    }
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
    #[error("{key}: {reason}")]
    Duration { key: &'static str, reason: String },
    #[error("{0}")]
    Report(String),
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
    /// Score refresh and stale-agent settings (`[score]`).
    pub score: ScoreSettings,
    /// Scheduled reports (`[[reports]]`).
    pub reports: Vec<ReportSpec>,
    /// The SMTP relay (`[smtp]`).
    pub smtp: Option<SmtpSettings>,
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
            score: ScoreSettings::default(),
            reports: Vec::new(),
            smtp: None,
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
        let smtp = file.smtp.as_ref().map(SmtpConfig::settings).transpose()?;
        let reports = report_specs(&file.reports, smtp.as_ref(), &data_dir)?;
        Ok(ServeOptions {
            reports,
            smtp,
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
            score: file.score.settings()?,
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
    fn score_section_sets_refresh_and_agent_interval_and_refuses_nonsense() {
        let file =
            FileConfig::parse("[score]\nrefresh = \"5s\"\nagent_interval = \"1h\"\n").unwrap();
        let o = ServeOptions::resolve("d".into(), file, ServeFlags::default()).unwrap();
        assert_eq!(o.score.refresh, Duration::from_secs(5));
        assert_eq!(o.score.agent_interval, Duration::from_secs(3600));
        for bad in [
            "refresh = \"soon\"",
            "refresh = \"0s\"",
            "agent_intervall = \"1h\"",
        ] {
            let parsed = FileConfig::parse(&format!("[score]\n{bad}\n"));
            let resolved =
                parsed.map(|f| ServeOptions::resolve("d".into(), f, ServeFlags::default()));
            assert!(!matches!(resolved, Ok(Ok(_))), "{bad}");
        }
    }

    #[test]
    fn reports_and_smtp_sections_resolve_with_defaults() {
        let file = FileConfig::parse(
            "[[reports]]\nname = \"weekly\"\nschedule = \"0 6 * * mon\"\nscope = \"org:RX1\"\n\
             [[reports]]\nname = \"daily\"\nschedule = \"@daily\"\nscope = \"all\"\n\
             formats = [\"csv\"]\nmail_to = [\"soc@example.org\"]\nout_dir = \"/tmp/r\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nfrom = \"tw@example.org\"\n",
        )
        .unwrap();
        let o = ServeOptions::resolve("d".into(), file, ServeFlags::default()).unwrap();
        assert_eq!(o.reports.len(), 2);
        assert_eq!(o.reports[0].formats, Format::ALL.to_vec());
        assert_eq!(o.reports[0].out_dir, Path::new("d").join("reports"));
        assert_eq!(o.reports[0].scope, Scope::Org("RX1".into()));
        assert_eq!(o.reports[1].formats, vec![Format::Csv]);
        let smtp = o.smtp.unwrap();
        assert_eq!((smtp.port, smtp.security), (25, Security::None));
    }

    #[test]
    fn bad_report_entries_are_refused_with_the_report_named() {
        let base = "name = \"r\"\nschedule = \"0 6 * * *\"\nscope = \"all\"\n";
        for bad in [
            "name = \"../r\"\nschedule = \"0 6 * * *\"\nscope = \"all\"\n".to_owned(),
            "name = \"r\"\nschedule = \"0 25 * * *\"\nscope = \"all\"\n".to_owned(),
            "name = \"r\"\nschedule = \"0 6 * * *\"\nscope = \"region:X\"\n".to_owned(),
            format!("{base}formats = [\"pdf\"]\n"),
            format!("{base}formats = []\n"),
            format!("{base}mail_to = [\"a@example.org\"]\n"),
            format!("{base}mail_to = [\"not an address\"]\n"),
            format!("{base}[[reports]]\n{base}"),
        ] {
            let file = FileConfig::parse(&format!("[[reports]]\n{bad}")).unwrap();
            let e = ServeOptions::resolve("d".into(), file, ServeFlags::default()).unwrap_err();
            assert!(e.to_string().contains("[[reports]]"), "{bad}: {e}");
        }
        assert!(FileConfig::parse(&format!("[[reports]]\n{base}colour = \"red\"\n")).is_err());
        let f = FileConfig::parse("[smtp]\nhost = \"h\"\nfrom = \"x\"\n").unwrap();
        assert!(ServeOptions::resolve("d".into(), f, ServeFlags::default()).is_err());
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
