//! Fingerprints: from what a device's services said (NTLMSSP version, SMB
//! NativeOS, banners, sysDescr) to what it is and whether it is past end of
//! support.
//!
//! The rules are data: `fingerprints.toml` beside this file, embedded at
//! build time, its format documented at its top. Loading validates every
//! rule (unique ids, exactly one test per condition, dates, versions, known
//! finding codes) and refuses the whole file otherwise, so a bad edit fails
//! the tests, never a scan.
//!
//! Matching is total and case-insensitive; a rule applies when all its
//! `when` conditions hold on the device's [`Evidence`] and none of its
//! `unless` ones do. Time-dependent verdicts (end of support) read the date
//! the caller passes, never the system clock.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use time::{Date, Month};
use trustwatch_common::FindingCode;

use super::probe::ServiceInfo;

/// The embedded rule file.
pub const RULES_TOML: &str = include_str!("fingerprints.toml");

/// Why a rule file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    #[error("fingerprint rules are not valid TOML for the rule format: {0}")]
    Syntax(String),
    #[error("fingerprint rule {id:?}: {problem}")]
    Rule { id: String, problem: String },
}

/// The evidence a rule can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    NtlmVersion,
    SmbNativeOs,
    SmbNativeLanman,
    SshProtocol,
    SshSoftware,
    FtpBanner,
    HttpServer,
    SnmpSysDescr,
    TelnetBanner,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::NtlmVersion => "ntlm_version",
            Field::SmbNativeOs => "smb_native_os",
            Field::SmbNativeLanman => "smb_native_lanman",
            Field::SshProtocol => "ssh_protocol",
            Field::SshSoftware => "ssh_software",
            Field::FtpBanner => "ftp_banner",
            Field::HttpServer => "http_server",
            Field::SnmpSysDescr => "snmp_sys_descr",
            Field::TelnetBanner => "telnet_banner",
        }
    }
}

/// What one device said, field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// NTLMSSP VERSION "major.minor.build".
    pub ntlm_version: Option<String>,
    pub smb_native_os: Option<String>,
    pub smb_native_lanman: Option<String>,
    pub ssh_protocol: Option<String>,
    pub ssh_software: Option<String>,
    pub ftp_banner: Option<String>,
    pub http_server: Option<String>,
    pub snmp_sys_descr: Option<String>,
    pub telnet_banner: Option<String>,
}

impl Evidence {
    pub fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::NtlmVersion => self.ntlm_version.as_deref(),
            Field::SmbNativeOs => self.smb_native_os.as_deref(),
            Field::SmbNativeLanman => self.smb_native_lanman.as_deref(),
            Field::SshProtocol => self.ssh_protocol.as_deref(),
            Field::SshSoftware => self.ssh_software.as_deref(),
            Field::FtpBanner => self.ftp_banner.as_deref(),
            Field::HttpServer => self.http_server.as_deref(),
            Field::SnmpSysDescr => self.snmp_sys_descr.as_deref(),
            Field::TelnetBanner => self.telnet_banner.as_deref(),
        }
    }

    /// Gathers the evidence of one device from its probes' answers (the
    /// first service that gives a field wins).
    pub fn from_services<'a>(services: impl IntoIterator<Item = &'a ServiceInfo>) -> Evidence {
        let mut e = Evidence::default();
        fn set(slot: &mut Option<String>, value: Option<String>) {
            if slot.is_none() {
                *slot = value.filter(|v| !v.is_empty());
            }
        }
        for s in services {
            match s {
                ServiceInfo::Smb(i) => {
                    let v = i
                        .ntlm
                        .as_ref()
                        .and_then(|n| n.version)
                        .map(|v| v.to_string());
                    set(&mut e.ntlm_version, v);
                    set(&mut e.smb_native_os, i.native_os.clone());
                    set(&mut e.smb_native_lanman, i.native_lanman.clone());
                }
                ServiceInfo::Ssh(i) => {
                    set(&mut e.ssh_protocol, Some(i.protocol_version.clone()));
                    set(&mut e.ssh_software, Some(i.software.clone()));
                }
                ServiceInfo::Ftp(i) => set(&mut e.ftp_banner, Some(i.banner.clone())),
                ServiceInfo::Http(i) => set(&mut e.http_server, i.server.clone()),
                ServiceInfo::Snmp(i) => set(&mut e.snmp_sys_descr, i.sys_descr.clone()),
                ServiceInfo::Telnet(i) => set(&mut e.telnet_banner, Some(i.banner.clone())),
                ServiceInfo::Rdp(_) | ServiceInfo::Dicom(_) | ServiceInfo::Mllp(_) => {}
            }
        }
        e
    }
}

// ------------------------------------------------------------ file format

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// The rules, in file order.
    rule: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    /// Unique id, lowercase words joined by '-'.
    id: String,
    /// Conditions that must all hold.
    when: Vec<ConditionDef>,
    /// Conditions of which none may hold.
    #[serde(default)]
    unless: Vec<ConditionDef>,
    /// What the device is, for people.
    identifies: String,
    /// Day support ended, "YYYY-MM-DD".
    eol_date: Option<String>,
    /// Day paid extended security updates end, "YYYY-MM-DD".
    esu_until: Option<String>,
    /// Finding code raised.
    code: Option<String>,
    /// The public fact the rule rests on.
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDef {
    /// The evidence read.
    field: Field,
    /// The whole value equals this.
    equals: Option<String>,
    /// The whole value is one of these.
    one_of: Option<Vec<String>>,
    /// The value starts with this.
    prefix: Option<String>,
    /// The value contains this.
    contains: Option<String>,
    /// With `prefix`: the dotted number after it is lower than this.
    version_below: Option<String>,
}

// ------------------------------------------------------------ validated rules

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Equals(String),
    OneOf(Vec<String>),
    Prefix {
        prefix: String,
        below: Option<Vec<u64>>,
    },
    Contains(String),
}

/// One condition, lowercased for case-insensitive matching.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    field: Field,
    test: Test,
}

impl Condition {
    fn holds(&self, e: &Evidence) -> bool {
        let Some(value) = e.get(self.field) else {
            return false;
        };
        let v = value.to_lowercase();
        match &self.test {
            Test::Equals(s) => v.trim() == s,
            Test::OneOf(list) => list.iter().any(|s| v.trim() == s),
            Test::Contains(s) => v.contains(s.as_str()),
            Test::Prefix { prefix, below } => {
                let Some(rest) = v.strip_prefix(prefix.as_str()) else {
                    return false;
                };
                match below {
                    None => true,
                    Some(limit) => {
                        leading_version(rest).is_some_and(|have| version_lt(&have, limit))
                    }
                }
            }
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub identifies: String,
    pub eol_date: Option<Date>,
    pub esu_until: Option<Date>,
    pub code: Option<FindingCode>,
    pub source: String,
    when: Vec<Condition>,
    unless: Vec<Condition>,
}

impl Rule {
    /// Whether the rule applies to the evidence.
    pub fn matches(&self, e: &Evidence) -> bool {
        self.when.iter().all(|c| c.holds(e)) && !self.unless.iter().any(|c| c.holds(e))
    }

    /// The fields the rule's `when` reads, in order.
    pub fn fields(&self) -> Vec<Field> {
        self.when.iter().map(|c| c.field).collect()
    }
}

/// The rules of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// How verdicts are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judging {
    /// Today, as the collector's clock says.
    pub today: Date,
    /// The estate has Windows Extended Security Updates: a release is
    /// supported until its `esu_until`.
    pub windows_esu: bool,
}

/// What one matching rule concludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: String,
    pub identifies: String,
    /// The evidence read: field name and value.
    pub field: Field,
    pub value: String,
    /// Past end of support (None: the rule does not judge support).
    pub eol: Option<bool>,
    /// The day support ended, "YYYY-MM-DD".
    pub eol_date: Option<String>,
    /// The finding to raise, when `eol` is true.
    pub code: Option<String>,
}

impl RuleSet {
    /// The embedded rules ([`RULES_TOML`]), parsed once.
    pub fn builtin() -> Result<&'static RuleSet, FingerprintError> {
        static RULES: OnceLock<Result<RuleSet, FingerprintError>> = OnceLock::new();
        RULES
            .get_or_init(|| RuleSet::parse(RULES_TOML))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses and validates a rule file.
    pub fn parse(text: &str) -> Result<RuleSet, FingerprintError> {
        let file: RuleFile =
            toml::from_str(text).map_err(|e| FingerprintError::Syntax(e.to_string()))?;
        let mut ids = BTreeSet::new();
        let mut rules = Vec::with_capacity(file.rule.len());
        for def in file.rule {
            let id = def.id.clone();
            let bad = |problem: &str| FingerprintError::Rule {
                id: id.clone(),
                problem: problem.to_owned(),
            };
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad("id must be lowercase words joined by '-'"));
            }
            if !ids.insert(id.clone()) {
                return Err(bad("duplicate id"));
            }
            if def.when.is_empty() {
                return Err(bad("no `when` condition"));
            }
            let when = def
                .when
                .into_iter()
                .map(condition)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| bad(&p))?;
            let unless = def
                .unless
                .into_iter()
                .map(condition)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| bad(&p))?;
            let eol_date = def
                .eol_date
                .as_deref()
                .map(parse_date)
                .transpose()
                .map_err(|p| bad(&p))?;
            let esu_until = def
                .esu_until
                .as_deref()
                .map(parse_date)
                .transpose()
                .map_err(|p| bad(&p))?;
            if esu_until.is_some() && eol_date.is_none() {
                return Err(bad("esu_until without eol_date"));
            }
            if let (Some(e), Some(u)) = (eol_date, esu_until) {
                if u <= e {
                    return Err(bad("esu_until must be after eol_date"));
                }
            }
            let code = match def.code {
                None => None,
                Some(c) => {
                    let code = FindingCode::parse(&c);
                    if !code.is_known() {
                        return Err(bad("unknown finding code"));
                    }
                    Some(code)
                }
            };
            if def.identifies.trim().is_empty() || def.source.trim().is_empty() {
                return Err(bad("identifies and source must not be empty"));
            }
            rules.push(Rule {
                id,
                identifies: def.identifies,
                eol_date,
                esu_until,
                code,
                source: def.source,
                when,
                unless,
            });
        }
        Ok(RuleSet { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every rule that applies to `evidence`, in file order, judged on
    /// `judging`.
    pub fn classify(&self, evidence: &Evidence, judging: Judging) -> Vec<Verdict> {
        self.rules
            .iter()
            .filter(|r| r.matches(evidence))
            .map(|r| {
                let field = r.when.first().map_or(Field::NtlmVersion, |c| c.field);
                let eol = match (r.eol_date, &r.code) {
                    (Some(end), _) => {
                        let until = match (judging.windows_esu, r.esu_until) {
                            (true, Some(esu)) => esu,
                            _ => end,
                        };
                        Some(judging.today >= until)
                    }
                    (None, Some(_)) => Some(true),
                    (None, None) => None,
                };
                Verdict {
                    rule: r.id.clone(),
                    identifies: r.identifies.clone(),
                    field,
                    value: evidence.get(field).unwrap_or_default().to_owned(),
                    eol,
                    eol_date: r.eol_date.map(date_text),
                    code: r
                        .code
                        .as_ref()
                        .filter(|_| eol == Some(true))
                        .map(|c| c.as_str().to_owned()),
                }
            })
            .collect()
    }
}

fn condition(def: ConditionDef) -> Result<Condition, String> {
    let lower = |s: String| s.to_lowercase();
    let tests = [
        def.equals.is_some(),
        def.one_of.is_some(),
        def.prefix.is_some(),
        def.contains.is_some(),
    ];
    if tests.iter().filter(|t| **t).count() != 1 {
        return Err("a condition needs exactly one of equals, one_of, prefix, contains".into());
    }
    if def.version_below.is_some() && def.prefix.is_none() {
        return Err("version_below needs prefix".into());
    }
    let below = match def.version_below {
        None => None,
        Some(v) => Some(leading_version(&v).ok_or("version_below is not a dotted number")?),
    };
    let test = if let Some(s) = def.equals {
        Test::Equals(lower(s))
    } else if let Some(list) = def.one_of {
        if list.is_empty() {
            return Err("one_of is empty".into());
        }
        Test::OneOf(list.into_iter().map(lower).collect())
    } else if let Some(prefix) = def.prefix {
        Test::Prefix {
            prefix: lower(prefix),
            below,
        }
    } else if let Some(s) = def.contains {
        Test::Contains(lower(s))
    } else {
        return Err("no test".into());
    };
    Ok(Condition {
        field: def.field,
        test,
    })
}

/// The dotted number at the start of `s` ("7.2p2" -> [7, 2]); at most 8
/// components, each at most 9 digits.
fn leading_version(s: &str) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let digits: String = part
            .chars()
            .take_while(char::is_ascii_digit)
            .take(9)
            .collect();
        if digits.is_empty() {
            break;
        }
        out.push(digits.parse().ok()?);
        if digits.len() != part.len() || out.len() == 8 {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `a < b` comparing component-wise, missing components as 0.
fn version_lt(a: &[u64], b: &[u64]) -> bool {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

fn parse_date(s: &str) -> Result<Date, String> {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{s:?} is not YYYY-MM-DD"));
    };
    let y: i32 = y.parse().map_err(|_| format!("{s:?}: bad year"))?;
    let m: u8 = m.parse().map_err(|_| format!("{s:?}: bad month"))?;
    let d: u8 = d.parse().map_err(|_| format!("{s:?}: bad day"))?;
    let month = Month::try_from(m).map_err(|_| format!("{s:?}: bad month"))?;
    Date::from_calendar_date(y, month, d).map_err(|_| format!("{s:?}: no such day"))
}

fn date_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules() -> &'static RuleSet {
        RuleSet::builtin().expect("embedded rules are valid")
    }

    fn day(s: &str) -> Date {
        parse_date(s).expect("date")
    }

    /// The session's date (2026-11-26) as the tests' fixed clock.
    fn judging() -> Judging {
        Judging {
            today: day("2026-11-26"),
            windows_esu: false,
        }
    }

    fn ev(field: Field, value: &str) -> Evidence {
        let mut e = Evidence::default();
        let v = Some(value.to_owned());
        match field {
            Field::NtlmVersion => e.ntlm_version = v,
            Field::SmbNativeOs => e.smb_native_os = v,
            Field::SmbNativeLanman => e.smb_native_lanman = v,
            Field::SshProtocol => e.ssh_protocol = v,
            Field::SshSoftware => e.ssh_software = v,
            Field::FtpBanner => e.ftp_banner = v,
            Field::HttpServer => e.http_server = v,
            Field::SnmpSysDescr => e.snmp_sys_descr = v,
            Field::TelnetBanner => e.telnet_banner = v,
        }
        e
    }

    /// The verdicts for `e`, by rule id.
    fn ids(e: &Evidence) -> Vec<String> {
        rules()
            .classify(e, judging())
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    fn only(e: &Evidence, id: &str) -> Verdict {
        let v = rules().classify(e, judging());
        assert_eq!(
            v.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
            vec![id],
            "evidence {e:?}"
        );
        v.into_iter().next().expect("one verdict")
    }

    /// One test per rule: the evidence that must match it alone, whether it
    /// is judged end of life today (2026-11-26), and a near miss that must
    /// not match it.
    macro_rules! rule_tests {
        ($( $name:ident: $id:literal, $field:ident = $value:literal, eol = $eol:expr, miss = $miss:literal; )*) => {
            $(
                #[test]
                fn $name() {
                    let v = only(&ev(Field::$field, $value), $id);
                    assert_eq!(v.eol, $eol, "eol of {}", $id);
                    if $eol == Some(true) {
                        assert!(v.code.is_some(), "{} raises a finding", $id);
                    } else {
                        assert_eq!(v.code, None, "{} raises nothing", $id);
                    }
                    assert_eq!(v.value, $value);
                    assert!(
                        !ids(&ev(Field::$field, $miss)).contains(&$id.to_owned()),
                        "{} matched the near miss {:?}", $id, $miss
                    );
                }
            )*
            const TESTED: &[&str] = &[$( $id, )*];
        };
    }

    rule_tests! {
        rule_samba_ntlmssp_6_1_build_0: "samba-ntlmssp-6-1-build-0", NtlmVersion = "6.1.0", eol = None, miss = "6.1.7601";
        rule_samba_native_lanman: "samba-native-lanman", SmbNativeLanman = "Samba 4.17.12-Debian", eol = None, miss = "Windows 7 Professional 6.1";
        rule_windows_2000_ntlmssp: "windows-2000-ntlmssp", NtlmVersion = "5.0.2195", eol = Some(true), miss = "5.0.0";
        rule_windows_xp_ntlmssp: "windows-xp-ntlmssp", NtlmVersion = "5.1.2600", eol = Some(true), miss = "5.1.0";
        rule_windows_server_2003_ntlmssp: "windows-server-2003-ntlmssp", NtlmVersion = "5.2.3790", eol = Some(true), miss = "5.2.0";
        rule_windows_vista_server_2008_ntlmssp: "windows-vista-server-2008-ntlmssp", NtlmVersion = "6.0.6002", eol = Some(true), miss = "6.0.0";
        rule_windows_7_rtm_ntlmssp: "windows-7-rtm-ntlmssp", NtlmVersion = "6.1.7600", eol = Some(true), miss = "6.1.0";
        rule_windows_7_sp1_ntlmssp: "windows-7-sp1-ntlmssp", NtlmVersion = "6.1.7601", eol = Some(true), miss = "6.1.0";
        rule_windows_8_server_2012_ntlmssp: "windows-8-server-2012-ntlmssp", NtlmVersion = "6.2.9200", eol = Some(true), miss = "6.2.0";
        rule_windows_8_1_server_2012_r2_ntlmssp: "windows-8-1-server-2012-r2-ntlmssp", NtlmVersion = "6.3.9600", eol = Some(true), miss = "6.3.0";
        rule_windows_10_1507_ntlmssp: "windows-10-1507-ntlmssp", NtlmVersion = "10.0.10240", eol = Some(true), miss = "10.0.102400";
        rule_windows_10_retired_feature_updates_ntlmssp: "windows-10-retired-feature-updates-ntlmssp", NtlmVersion = "10.0.19042", eol = Some(true), miss = "10.0.19044";
        rule_windows_10_1607_server_2016_ntlmssp: "windows-10-1607-server-2016-ntlmssp", NtlmVersion = "10.0.14393", eol = Some(false), miss = "10.0.14392";
        rule_windows_10_1809_server_2019_ntlmssp: "windows-10-1809-server-2019-ntlmssp", NtlmVersion = "10.0.17763", eol = Some(false), miss = "10.0.17764";
        rule_windows_10_22h2_ntlmssp: "windows-10-22h2-ntlmssp", NtlmVersion = "10.0.19045", eol = Some(true), miss = "10.0.19044";
        rule_windows_11_21h2_ntlmssp: "windows-11-21h2-ntlmssp", NtlmVersion = "10.0.22000", eol = Some(true), miss = "10.0.22621";
        rule_windows_11_22h2_ntlmssp: "windows-11-22h2-ntlmssp", NtlmVersion = "10.0.22621", eol = Some(true), miss = "10.0.22631";
        rule_windows_11_23h2_ntlmssp: "windows-11-23h2-ntlmssp", NtlmVersion = "10.0.22631", eol = Some(true), miss = "10.0.26100";
        rule_windows_server_2022_ntlmssp: "windows-server-2022-ntlmssp", NtlmVersion = "10.0.20348", eol = Some(false), miss = "10.0.26100";
        rule_windows_2000_native_os: "windows-2000-native-os", SmbNativeOs = "Windows 5.0", eol = Some(true), miss = "Windows 5.0.1";
        rule_windows_xp_native_os: "windows-xp-native-os", SmbNativeOs = "Windows 5.1", eol = Some(true), miss = "Windows 6.1";
        rule_windows_server_2003_native_os: "windows-server-2003-native-os", SmbNativeOs = "Windows Server 2003 3790 Service Pack 2", eol = Some(true), miss = "Windows Server 2016 Standard 14393";
        rule_windows_vista_native_os: "windows-vista-native-os", SmbNativeOs = "Windows Vista (TM) Business 6002 Service Pack 2", eol = Some(true), miss = "Windows 6.0";
        rule_windows_server_2008_native_os: "windows-server-2008-native-os", SmbNativeOs = "Windows Server (R) 2008 Standard 6002 Service Pack 2", eol = Some(true), miss = "Windows Server 2008 R2 Standard 7601 Service Pack 1";
        rule_windows_7_native_os: "windows-7-native-os", SmbNativeOs = "Windows 7 Professional 7601 Service Pack 1", eol = Some(true), miss = "Windows 6.1";
        rule_windows_server_2008_r2_native_os: "windows-server-2008-r2-native-os", SmbNativeOs = "Windows Server 2008 R2 Standard 7601 Service Pack 1", eol = Some(true), miss = "Windows Server (R) 2008 Standard 6002 Service Pack 2";
        rule_windows_xp_snmp: "windows-xp-snmp", SnmpSysDescr = "Hardware: x86 Family 6 Model 8 Stepping 3 AT/AT COMPATIBLE - Software: Windows Version 5.1 (Build 2600 Uniprocessor Free)", eol = Some(true), miss = "Software: Windows Version 5.1";
        rule_windows_server_2003_snmp: "windows-server-2003-snmp", SnmpSysDescr = "Hardware: x86 Family 15 Model 4 - Software: Windows Version 5.2 (Build 3790 Multiprocessor Free)", eol = Some(true), miss = "Linux srv 5.2.0";
        rule_windows_vista_server_2008_snmp: "windows-vista-server-2008-snmp", SnmpSysDescr = "Hardware: Intel64 - Software: Windows Version 6.0 (Build 6002 Multiprocessor Free)", eol = Some(true), miss = "Software: Windows Version 6.0 (Build 7601";
        rule_windows_7_server_2008_r2_snmp: "windows-7-server-2008-r2-snmp", SnmpSysDescr = "Hardware: Intel64 Family 6 Model 58 Stepping 9 AT/AT COMPATIBLE - Software: Windows Version 6.1 (Build 7601 Multiprocessor Free)", eol = Some(true), miss = "Software: Windows Version 6.1 (Build 0";
        rule_windows_8_server_2012_snmp: "windows-8-server-2012-snmp", SnmpSysDescr = "Hardware: Intel64 - Software: Windows Version 6.2 (Build 9200 Multiprocessor Free)", eol = Some(true), miss = "Software: Windows Version 6.3 (Build 9200";
        rule_windows_8_1_server_2012_r2_snmp: "windows-8-1-server-2012-r2-snmp", SnmpSysDescr = "Hardware: Intel64 - Software: Windows Version 6.3 (Build 9600 Multiprocessor Free)", eol = Some(true), miss = "Hardware: Intel64 - Software: Windows Version 6.3 (Build 19045 Multiprocessor Free)";
        rule_iis_5_0_http: "iis-5-0-http", HttpServer = "Microsoft-IIS/5.0", eol = Some(true), miss = "Microsoft-IIS/5.01";
        rule_iis_5_1_http: "iis-5-1-http", HttpServer = "Microsoft-IIS/5.1", eol = Some(true), miss = "Microsoft-IIS/10.0";
        rule_iis_6_0_http: "iis-6-0-http", HttpServer = "Microsoft-IIS/6.0", eol = Some(true), miss = "Microsoft-IIS/10.0";
        rule_iis_7_0_http: "iis-7-0-http", HttpServer = "Microsoft-IIS/7.0", eol = Some(true), miss = "Microsoft-IIS/7.5";
        rule_iis_7_5_http: "iis-7-5-http", HttpServer = "Microsoft-IIS/7.5", eol = Some(true), miss = "Microsoft-IIS/7.0";
        rule_iis_8_0_http: "iis-8-0-http", HttpServer = "Microsoft-IIS/8.0", eol = Some(true), miss = "Microsoft-IIS/8.5";
        rule_iis_8_5_http: "iis-8-5-http", HttpServer = "Microsoft-IIS/8.5", eol = Some(true), miss = "Microsoft-IIS/8.0";
        rule_iis_5_0_ftp: "iis-5-0-ftp", FtpBanner = "220 pacs Microsoft FTP Service (Version 5.0).", eol = Some(true), miss = "220 Microsoft FTP Service";
        rule_ssh_protocol_1: "ssh-protocol-1", SshProtocol = "1.99", eol = Some(true), miss = "2.0";
        rule_openssh_before_7_4: "openssh-before-7-4", SshSoftware = "OpenSSH_7.2p2", eol = Some(true), miss = "OpenSSH_7.4p1";
    }

    #[test]
    fn every_rule_in_the_file_has_its_own_test() {
        let in_file: BTreeSet<&str> = rules().rules().iter().map(|r| r.id.as_str()).collect();
        let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
        assert_eq!(in_file, tested);
        assert_eq!(TESTED.len(), tested.len(), "a rule is tested twice");
    }

    #[test]
    fn samba_is_not_windows_7() {
        // What Samba 4.17 says: NTLMSSP 6.1.0, NativeOS "Windows 6.1",
        // NativeLanMan "Samba 4.17.12-Debian".
        let samba = Evidence {
            ntlm_version: Some("6.1.0".into()),
            smb_native_os: Some("Windows 6.1".into()),
            smb_native_lanman: Some("Samba 4.17.12-Debian".into()),
            ..Evidence::default()
        };
        let v = rules().classify(&samba, judging());
        assert_eq!(
            v.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
            vec!["samba-ntlmssp-6-1-build-0", "samba-native-lanman"]
        );
        assert!(v
            .iter()
            .all(|v| v.code.is_none() && !v.identifies.starts_with("Windows")));
        // Even a Samba configured to say "Windows 5.1" is not taken for XP.
        let odd = Evidence {
            smb_native_os: Some("Windows 5.1".into()),
            smb_native_lanman: Some("Samba 3.6.25".into()),
            ..Evidence::default()
        };
        assert_eq!(ids(&odd), vec!["samba-native-lanman"]);
    }

    #[test]
    fn windows_7_by_ntlmssp_and_native_os_gives_two_eol_verdicts() {
        let win7 = Evidence {
            ntlm_version: Some("6.1.7601".into()),
            smb_native_os: Some("Windows 7 Professional 7601 Service Pack 1".into()),
            smb_native_lanman: Some("Windows 7 Professional 6.1".into()),
            ..Evidence::default()
        };
        let v = rules().classify(&win7, judging());
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| v.code.as_deref() == Some("legacy.os.eol")));
        assert_eq!(v[0].eol_date.as_deref(), Some("2020-01-14"));
    }

    #[test]
    fn esu_keeps_a_release_supported_until_its_end_only_when_configured() {
        let e = ev(Field::NtlmVersion, "10.0.19045");
        let with_esu = Judging {
            windows_esu: true,
            ..judging()
        };
        assert_eq!(rules().classify(&e, with_esu)[0].eol, Some(false));
        assert_eq!(rules().classify(&e, judging())[0].eol, Some(true));
        let after = Judging {
            today: day("2028-10-10"),
            windows_esu: true,
        };
        assert_eq!(rules().classify(&e, after)[0].eol, Some(true));
        // Windows 7's ESU is over.
        let w7 = ev(Field::NtlmVersion, "6.1.7601");
        assert_eq!(rules().classify(&w7, with_esu)[0].eol, Some(true));
    }

    #[test]
    fn eol_dates_are_judged_on_the_given_day() {
        let e = ev(Field::NtlmVersion, "10.0.14393");
        let before = Judging {
            today: day("2027-01-11"),
            windows_esu: false,
        };
        let on = Judging {
            today: day("2027-01-12"),
            windows_esu: false,
        };
        assert_eq!(rules().classify(&e, before)[0].eol, Some(false));
        assert_eq!(rules().classify(&e, on)[0].eol, Some(true));
        assert_eq!(
            rules().classify(&e, on)[0].code.as_deref(),
            Some("legacy.os.eol")
        );
    }

    #[test]
    fn matching_is_case_insensitive() {
        assert_eq!(
            ids(&ev(Field::HttpServer, "microsoft-iis/6.0")),
            vec!["iis-6-0-http"]
        );
        assert_eq!(
            ids(&ev(Field::SshSoftware, "openssh_5.3")),
            vec!["openssh-before-7-4"]
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(leading_version("7.2p2"), Some(vec![7, 2]));
        assert_eq!(leading_version("10.0"), Some(vec![10, 0]));
        assert_eq!(leading_version("x"), None);
        assert!(version_lt(&[7, 2], &[7, 4]));
        assert!(version_lt(&[6], &[7, 4]));
        assert!(!version_lt(&[7, 4], &[7, 4]));
        assert!(!version_lt(&[10, 0], &[7, 4]));
        assert!(ids(&ev(Field::SshSoftware, "OpenSSH_10.0")).is_empty());
        assert!(ids(&ev(Field::SshSoftware, "OpenSSH_")).is_empty());
    }

    #[test]
    fn clean_modern_evidence_matches_nothing() {
        let modern = Evidence {
            ssh_protocol: Some("2.0".into()),
            ssh_software: Some("OpenSSH_9.2p1".into()),
            http_server: Some("nginx/1.22.1".into()),
            ftp_banner: Some("220 (vsFTPd 3.0.3)".into()),
            snmp_sys_descr: Some("Linux pacs01 6.1.0-26-amd64 #1 SMP x86_64".into()),
            telnet_banner: Some("Debian GNU/Linux 12".into()),
            ntlm_version: Some("10.0.26100".into()),
            ..Evidence::default()
        };
        assert!(ids(&modern).is_empty());
    }

    #[test]
    fn bad_rule_files_are_refused_with_the_rule_named() {
        let base = |extra: &str| {
            format!(
                "[[rule]]\nid = \"r\"\nwhen = [{{ field = \"http_server\", equals = \"x\" }}]\nidentifies = \"x\"\nsource = \"s\"\n{extra}"
            )
        };
        assert!(RuleSet::parse(&base("")).is_ok());
        for (extra, why) in [
            ("code = \"legacy.nonsense\"", "unknown code"),
            ("eol_date = \"2020-02-30\"", "no such day"),
            ("eol_date = \"2020-01\"", "not a date"),
            ("esu_until = \"2030-01-01\"", "esu without eol"),
            (
                "eol_date = \"2020-01-01\"\nesu_until = \"2019-01-01\"",
                "esu before eol",
            ),
            ("colour = \"red\"", "unknown key"),
        ] {
            assert!(RuleSet::parse(&base(extra)).is_err(), "{why} accepted");
        }
        let two_tests = "[[rule]]\nid = \"r\"\nwhen = [{ field = \"http_server\", equals = \"x\", contains = \"y\" }]\nidentifies = \"x\"\nsource = \"s\"\n";
        assert!(matches!(
            RuleSet::parse(two_tests),
            Err(FingerprintError::Rule { .. })
        ));
        let below_without_prefix = "[[rule]]\nid = \"r\"\nwhen = [{ field = \"ssh_software\", equals = \"x\", version_below = \"1\" }]\nidentifies = \"x\"\nsource = \"s\"\n";
        assert!(RuleSet::parse(below_without_prefix).is_err());
        let dup = format!("{}{}", base(""), base(""));
        assert!(matches!(
            RuleSet::parse(&dup),
            Err(FingerprintError::Rule { ref problem, .. }) if problem == "duplicate id"
        ));
        assert!(matches!(
            RuleSet::parse("not toml ["),
            Err(FingerprintError::Syntax(_))
        ));
    }

    #[test]
    fn evidence_is_gathered_from_probe_answers() {
        use super::super::probe::{http::HttpInfo, ssh::parse_ssh, ServiceInfo};
        let ssh = parse_ssh(b"SSH-1.99-OpenSSH_3.9p1").expect("valid");
        let services = vec![
            ServiceInfo::Ssh(ssh),
            ServiceInfo::Http(HttpInfo {
                version: "HTTP/1.1".into(),
                status: 200,
                server: Some("Microsoft-IIS/6.0".into()),
                powered_by: None,
            }),
        ];
        let e = Evidence::from_services(&services);
        assert_eq!(e.ssh_protocol.as_deref(), Some("1.99"));
        assert_eq!(
            ids(&e),
            vec!["iis-6-0-http", "ssh-protocol-1", "openssh-before-7-4"]
        );
    }

    proptest! {
        #[test]
        fn classify_is_total(field in 0usize..9, value in ".{0,80}") {
            let fields = [
                Field::NtlmVersion, Field::SmbNativeOs, Field::SmbNativeLanman,
                Field::SshProtocol, Field::SshSoftware, Field::FtpBanner,
                Field::HttpServer, Field::SnmpSysDescr, Field::TelnetBanner,
            ];
            let e = ev(fields[field], &value);
            for v in rules().classify(&e, judging()) {
                prop_assert_eq!(v.code.is_some(), v.eol == Some(true) && rules().rules().iter().any(|r| r.id == v.rule && r.code.is_some()));
            }
        }
    }
}
