//! Finding codes, severities and categories (DESIGN §2).
//!
//! Codes are stable identifiers. Every code of the design's minimum set is a
//! variant of [`FindingCode`]; a code this build does not know (sent by a newer
//! agent, or stored by a newer server) is kept verbatim in
//! [`FindingCode::Other`], so it round-trips through serde unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How bad a finding is. Ordered from least (`Info`) to most (`Critical`) severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that is not a severity or category name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {expected})")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "severity",
                value: s.to_owned(),
                expected: "critical, high, medium, low, info",
            })
    }
}

/// The area a finding belongs to; also the score breakdown of DESIGN §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Tls,
    Patch,
    Legacy,
    Coverage,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Tls,
        Category::Patch,
        Category::Legacy,
        Category::Coverage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Tls => "tls",
            Category::Patch => "patch",
            Category::Legacy => "legacy",
            Category::Coverage => "coverage",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "category",
                value: s.to_owned(),
                expected: "tls, patch, legacy, coverage",
            })
    }
}

macro_rules! codes {
    ($( $variant:ident => $code:literal, $cat:ident, $sev:ident, $title:literal; )*) => {
        /// A finding code. Known codes are variants; anything else is kept in
        /// [`FindingCode::Other`] so that newer codes round-trip.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum FindingCode {
            $( $variant, )*
            /// A code this build does not know, kept verbatim.
            Other(String),
        }

        impl FindingCode {
            /// Every code this build knows, in the order of DESIGN §2.
            pub const KNOWN: &'static [FindingCode] = &[ $( FindingCode::$variant, )* ];

            pub fn as_str(&self) -> &str {
                match self {
                    $( FindingCode::$variant => $code, )*
                    FindingCode::Other(s) => s,
                }
            }

            /// The category: fixed for known codes, taken from the prefix
            /// before the first `.` for unknown ones.
            pub fn category(&self) -> Option<Category> {
                match self {
                    $( FindingCode::$variant => Some(Category::$cat), )*
                    FindingCode::Other(s) => s.split('.').next().and_then(|p| p.parse().ok()),
                }
            }

            /// The severity a finding of this code has unless its producer
            /// has a reason to say otherwise.
            pub fn default_severity(&self) -> Severity {
                match self {
                    $( FindingCode::$variant => Severity::$sev, )*
                    FindingCode::Other(_) => Severity::Info,
                }
            }

            /// A short title a person can read.
            pub fn title(&self) -> &str {
                match self {
                    $( FindingCode::$variant => $title, )*
                    FindingCode::Other(s) => s,
                }
            }

            pub fn parse(s: &str) -> FindingCode {
                match s {
                    $( $code => FindingCode::$variant, )*
                    other => FindingCode::Other(other.to_owned()),
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, FindingCode::Other(_))
            }
        }
    };
}

codes! {
    TlsSslv2 => "tls.protocol.sslv2", Tls, Critical, "SSLv2 accepted";
    TlsSslv3 => "tls.protocol.sslv3", Tls, High, "SSLv3 accepted";
    TlsTls10 => "tls.protocol.tls1_0", Tls, Medium, "TLS 1.0 accepted";
    TlsTls11 => "tls.protocol.tls1_1", Tls, Medium, "TLS 1.1 accepted";
    TlsNoTls12 => "tls.protocol.no_tls1_2", Tls, High, "Neither TLS 1.2 nor TLS 1.3 offered";
    TlsCipherInsecure => "tls.cipher.insecure", Tls, High, "Insecure cipher suites accepted";
    TlsCipherWeak => "tls.cipher.weak", Tls, Medium, "Weak cipher suites accepted";
    TlsCipherNoForwardSecrecy => "tls.cipher.no_forward_secrecy", Tls, Low, "Static RSA key exchange accepted";
    TlsKxWeakDh => "tls.kx.weak_dh", Tls, Medium, "Ephemeral DH group under 2048 bits";
    TlsCertExpired => "tls.cert.expired", Tls, High, "Certificate expired";
    TlsCertNotYetValid => "tls.cert.not_yet_valid", Tls, High, "Certificate not yet valid";
    TlsCertExpiringSoon => "tls.cert.expiring_soon", Tls, Low, "Certificate expires within 30 days";
    TlsCertSelfSigned => "tls.cert.self_signed", Tls, Medium, "Self-signed certificate";
    TlsCertUntrusted => "tls.cert.untrusted", Tls, Medium, "Certificate does not chain to a trusted root";
    TlsCertIncompleteChain => "tls.cert.incomplete_chain", Tls, Medium, "Certificate chain incomplete";
    TlsCertHostnameMismatch => "tls.cert.hostname_mismatch", Tls, Medium, "Certificate does not name the host";
    TlsCertWeakKey => "tls.cert.weak_key", Tls, High, "Weak certificate key";
    TlsCertWeakSignature => "tls.cert.weak_signature", Tls, Medium, "MD5 or SHA-1 signature in the chain";
    PatchOsEol => "patch.os.eol", Patch, Critical, "Operating system past end of support";
    PatchOsEolSoon => "patch.os.eol_soon", Patch, Medium, "Operating system near end of support";
    PatchPackageVulnerable => "patch.package.vulnerable", Patch, High, "Vulnerable package with a fix available";
    PatchPackageVulnerableUnfixed => "patch.package.vulnerable_unfixed", Patch, Low, "Vulnerable package, no fix published";
    PatchKernelRebootRequired => "patch.kernel.reboot_required", Patch, Medium, "Reboot required to run installed updates";
    PatchUpdatesStale => "patch.updates.stale", Patch, Medium, "Package metadata not refreshed for over 14 days";
    LegacySmbV1 => "legacy.smb.v1", Legacy, Critical, "SMBv1 enabled";
    LegacySmbSigningNotRequired => "legacy.smb.signing_not_required", Legacy, Medium, "SMB signing not required";
    LegacyOsEol => "legacy.os.eol", Legacy, High, "Device runs an end-of-life operating system";
    LegacyTelnet => "legacy.telnet", Legacy, High, "Telnet service answering";
    LegacyFtpCleartext => "legacy.ftp.cleartext", Legacy, Medium, "FTP without TLS";
    LegacyFtpAnonymous => "legacy.ftp.anonymous", Legacy, High, "Anonymous FTP login accepted";
    LegacySnmpDefaultCommunity => "legacy.snmp.default_community", Legacy, High, "SNMP answers the community 'public'";
    LegacyRdpNoNla => "legacy.rdp.no_nla", Legacy, High, "RDP without Network Level Authentication";
    LegacySshOutdated => "legacy.ssh.outdated", Legacy, Medium, "Outdated SSH protocol or server";
    CoverageAgentStale => "coverage.agent.stale", Coverage, Medium, "Agent has not reported recently";
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for FindingCode {
    fn from(s: &str) -> Self {
        FindingCode::parse(s)
    }
}

impl Serialize for FindingCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FindingCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !is_valid_code(&s) {
            return Err(serde::de::Error::custom(format!(
                "invalid finding code {s:?}: expected dotted lowercase words like \"tls.cert.expired\""
            )));
        }
        Ok(FindingCode::parse(&s))
    }
}

/// A code is 2..=8 dot-separated words of `[a-z0-9_]`, at most 128 bytes.
pub fn is_valid_code(s: &str) -> bool {
    if s.is_empty() || s.len() > 128 {
        return false;
    }
    let parts: Vec<&str> = s.split('.').collect();
    (2..=8).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_and_has_its_prefix_category() {
        for code in FindingCode::KNOWN {
            let json = serde_json::to_string(code).unwrap();
            let back: FindingCode = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, code);
            assert!(back.is_known());
            let prefix = code.as_str().split('.').next().unwrap();
            assert_eq!(code.category().unwrap().as_str(), prefix, "{code}");
            assert!(is_valid_code(code.as_str()));
        }
        assert_eq!(FindingCode::KNOWN.len(), 34);
    }

    #[test]
    fn unknown_future_code_round_trips_verbatim() {
        let back: FindingCode = serde_json::from_str("\"tls.protocol.tls1_4_draft\"").unwrap();
        assert_eq!(back, FindingCode::Other("tls.protocol.tls1_4_draft".into()));
        assert_eq!(back.category(), Some(Category::Tls));
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            "\"tls.protocol.tls1_4_draft\""
        );
        let odd: FindingCode = serde_json::from_str("\"quantum.thing\"").unwrap();
        assert_eq!(odd.category(), None);
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "tls",
            "TLS.cert",
            "tls..x",
            "tls.cert expired",
            "a.b\u{0}",
        ] {
            let json = serde_json::to_string(bad).unwrap();
            assert!(
                serde_json::from_str::<FindingCode>(&json).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Info);
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert!("urgent".parse::<Severity>().is_err());
        assert_eq!("legacy".parse::<Category>().unwrap(), Category::Legacy);
    }
}
