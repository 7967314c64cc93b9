//! From what one host's ports said to a `device` asset and its `legacy.*`
//! findings.
//!
//! Asset format (`kind: device`, `id`: the IP address as text):
//! `address`, `names` (computer names learned: NetBIOS and DNS names from
//! the NTLMSSP CHALLENGE, the SMB1 server name), `domains` (NetBIOS and DNS
//! domains), `identified_as` (what the fingerprint rules say the device is:
//! `{rule, identifies, field, value, eol, eol_date}`), `services` (one per
//! open port: `port`, `transport`, `protocol`, optional `product`,
//! `version`, `banner`, `error` (the probe failed), `note` (not probed,
//! why), and `details`, the probe's full answer
//! tagged by `probe`), and `incomplete` (why the host's scan stopped early)
//! when it did.
//!
//! Findings (collector `network`, `asset` = the IP): one per code and
//! service, `subject` = `PORT/TRANSPORT` of the service (SMB findings: the
//! port SMB was probed on); `legacy.os.eol` is one per host (subject empty),
//! its evidence naming every rule that matched. Each evidence object holds
//! what a person needs to check it (banner, dialect, reply, rule, date).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use trustwatch_common::report::collector;
use trustwatch_common::{Asset, AssetKind, Finding, FindingCode};

use super::fingerprint::{Evidence, Judging, RuleSet, Verdict};
use super::ports::Transport;
use super::probe::ftp::Anonymous;
use super::probe::smb::{Smb1Outcome, Smb2Outcome, SmbInfo};
use super::probe::ServiceInfo;
use super::sweep::{Found, HostScan, PortScan};

/// Finding code of an end-of-life operating system verdict.
const OS_EOL: &str = "legacy.os.eol";
/// Finding code of an outdated SSH verdict.
const SSH_OUTDATED: &str = "legacy.ssh.outdated";

fn subject(p: &PortScan) -> String {
    format!("{}/{}", p.port, p.transport.as_str())
}

fn finding(code: FindingCode, host: &HostScan, subject: String, evidence: Value) -> Finding {
    let mut f = Finding::new(code, host.addr.to_string(), evidence);
    f.subject = subject;
    f.collector = collector::NETWORK.to_owned();
    f
}

fn verdict_json(v: &Verdict) -> Value {
    json!({
        "rule": v.rule,
        "identifies": v.identifies,
        "field": v.field.as_str(),
        "value": v.value,
        "eol": v.eol,
        "eol_date": v.eol_date,
    })
}

/// The probe answers of a host, with their ports.
fn answers(host: &HostScan) -> impl Iterator<Item = (&PortScan, &ServiceInfo)> {
    host.ports.iter().filter_map(|p| match &p.found {
        Found::Probed(i) => Some((p, i)),
        _ => None,
    })
}

fn smb_findings(host: &HostScan, p: &PortScan, i: &SmbInfo, out: &mut Vec<Finding>) {
    if let Smb1Outcome::Accepted { dialect, .. } = &i.smb1 {
        out.push(finding(
            FindingCode::LegacySmbV1,
            host,
            subject(p),
            json!({
                "port": p.port,
                "dialect": "NT LM 0.12",
                "signing_required": dialect.signing_required,
                "native_os": i.native_os,
                "native_lanman": i.native_lanman,
            }),
        ));
    }
    if !i.signing_required {
        let smb1 = match &i.smb1 {
            Smb1Outcome::Accepted { dialect, .. } => json!({
                "dialect": "NT LM 0.12",
                "signing_enabled": dialect.signing_enabled,
                "signing_required": dialect.signing_required,
            }),
            Smb1Outcome::Refused { .. } => Value::Null,
        };
        let smb2 = match &i.smb2 {
            Smb2Outcome::Negotiated { negotiate, .. } => json!({
                "dialect": negotiate.dialect,
                "signing_enabled": negotiate.signing_enabled,
                "signing_required": negotiate.signing_required,
            }),
            Smb2Outcome::Failed { .. } => Value::Null,
        };
        out.push(finding(
            FindingCode::LegacySmbSigningNotRequired,
            host,
            subject(p),
            json!({"port": p.port, "smb1": smb1, "smb2": smb2}),
        ));
    }
}

/// The findings of one host.
pub fn findings(host: &HostScan, rules: &RuleSet, judging: Judging) -> Vec<Finding> {
    let mut out = Vec::new();
    for (p, info) in answers(host) {
        match info {
            ServiceInfo::Smb(i) => smb_findings(host, p, i, &mut out),
            ServiceInfo::Telnet(i) => out.push(finding(
                FindingCode::LegacyTelnet,
                host,
                subject(p),
                json!({"port": p.port, "banner": i.banner, "login_prompt": i.login_prompt}),
            )),
            ServiceInfo::Ftp(i) => {
                if i.anonymous == Anonymous::Accepted {
                    out.push(finding(
                        FindingCode::LegacyFtpAnonymous,
                        host,
                        subject(p),
                        json!({"port": p.port, "banner": i.banner, "user": "anonymous", "reply": i.anonymous_reply}),
                    ));
                }
                if i.auth_tls == Some(false) {
                    out.push(finding(
                        FindingCode::LegacyFtpCleartext,
                        host,
                        subject(p),
                        json!({"port": p.port, "banner": i.banner, "auth_tls": false,
                               "checked_by": i.auth_tls_source, "features": i.features}),
                    ));
                }
            }
            ServiceInfo::Snmp(i) => {
                let versions: Vec<&str> = [("v1", i.v1.is_some()), ("v2c", i.v2c.is_some())]
                    .into_iter()
                    .filter(|(_, ok)| *ok)
                    .map(|(v, _)| v)
                    .collect();
                out.push(finding(
                    FindingCode::LegacySnmpDefaultCommunity,
                    host,
                    subject(p),
                    json!({"port": p.port, "community": i.community, "versions": versions,
                           "sys_descr": i.sys_descr}),
                ));
            }
            ServiceInfo::Rdp(i) => {
                if i.accepts_without_nla {
                    out.push(finding(
                        FindingCode::LegacyRdpNoNla,
                        host,
                        subject(p),
                        json!({"port": p.port, "tls_only_request": i.tls_only,
                               "standard_security_request": i.standard,
                               "nla_enforced": i.nla_enforced}),
                    ));
                }
            }
            ServiceInfo::Ssh(i) => {
                let verdicts: Vec<Verdict> = rules
                    .classify(&Evidence::from_services([info]), judging)
                    .into_iter()
                    .filter(|v| v.code.as_deref() == Some(SSH_OUTDATED))
                    .collect();
                if !verdicts.is_empty() {
                    let reasons: Vec<&str> =
                        verdicts.iter().map(|v| v.identifies.as_str()).collect();
                    out.push(finding(
                        FindingCode::LegacySshOutdated,
                        host,
                        subject(p),
                        json!({"port": p.port, "banner": i.banner, "reasons": reasons,
                               "rules": verdicts.iter().map(verdict_json).collect::<Vec<_>>()}),
                    ));
                }
            }
            ServiceInfo::Http(_) | ServiceInfo::Dicom(_) | ServiceInfo::Mllp(_) => {}
        }
    }
    let eol: Vec<Verdict> = host_verdicts(host, rules, judging)
        .into_iter()
        .filter(|v| v.code.as_deref() == Some(OS_EOL))
        .collect();
    if let Some(first) = eol.first() {
        let evidence = eol
            .iter()
            .map(|v| format!("{} = {:?}", v.field.as_str(), v.value))
            .collect::<Vec<_>>()
            .join("; ");
        out.push(finding(
            FindingCode::LegacyOsEol,
            host,
            String::new(),
            json!({
                "os": first.identifies,
                "eol_date": first.eol_date,
                "evidence": evidence,
                "rules": eol.iter().map(verdict_json).collect::<Vec<_>>(),
            }),
        ));
    }
    out
}

fn host_verdicts(host: &HostScan, rules: &RuleSet, judging: Judging) -> Vec<Verdict> {
    rules.classify(
        &Evidence::from_services(answers(host).map(|(_, i)| i)),
        judging,
    )
}

fn split_product(s: &str) -> (Option<String>, Option<String>) {
    let token = s.split_whitespace().next().unwrap_or_default();
    match token.split_once('/') {
        Some((p, v)) if !p.is_empty() && !v.is_empty() => (Some(p.to_owned()), Some(v.to_owned())),
        _ if !s.is_empty() => (Some(s.to_owned()), None),
        _ => (None, None),
    }
}

/// `protocol`, `product`, `version`, `banner` of one port.
fn describe(p: &PortScan) -> (String, Option<String>, Option<String>, Option<String>) {
    let proto = |s: &str| s.to_owned();
    match &p.found {
        Found::Printer => (proto("printer"), None, None, None),
        Found::Tls => (proto("tls"), None, None, None),
        Found::Unknown | Found::NotProbed { kind: None, .. } => {
            (proto("unknown"), None, None, None)
        }
        Found::NotProbed {
            kind: Some(kind), ..
        } => (kind.as_str().to_owned(), None, None, None),
        Found::ProbeFailed { kind, .. } => (kind.as_str().to_owned(), None, None, None),
        Found::Probed(info) => match info {
            ServiceInfo::Smb(i) => {
                let samba = i
                    .native_lanman
                    .as_deref()
                    .filter(|l| l.to_ascii_lowercase().starts_with("samba"));
                let (product, version) = match samba {
                    Some(l) => split_product(&l.replacen(' ', "/", 1)),
                    None => (None, None),
                };
                let version = version.or_else(|| {
                    i.ntlm
                        .as_ref()
                        .and_then(|n| n.version)
                        .map(|v| v.to_string())
                });
                (proto("smb"), product, version, i.native_os.clone())
            }
            ServiceInfo::Telnet(i) => (proto("telnet"), None, None, Some(i.banner.clone())),
            ServiceInfo::Ftp(i) => (proto("ftp"), None, None, Some(i.banner.clone())),
            ServiceInfo::Snmp(i) => (proto("snmp"), None, None, i.sys_descr.clone()),
            ServiceInfo::Rdp(_) => (proto("rdp"), None, None, None),
            ServiceInfo::Ssh(i) => (
                proto("ssh"),
                i.product.clone(),
                i.version.clone(),
                Some(i.banner.clone()),
            ),
            ServiceInfo::Http(i) => {
                let (product, version) = i.server.as_deref().map(split_product).unwrap_or_default();
                (proto("http"), product, version, i.server.clone())
            }
            ServiceInfo::Dicom(i) => (
                proto("dicom"),
                i.answer.implementation_version_name.clone(),
                None,
                None,
            ),
            ServiceInfo::Mllp(_) => (proto("mllp"), None, None, None),
        },
    }
}

fn service_json(p: &PortScan) -> Value {
    let (protocol, product, version, banner) = describe(p);
    let mut m = Map::new();
    m.insert("port".into(), json!(p.port));
    m.insert("transport".into(), json!(p.transport.as_str()));
    m.insert("protocol".into(), json!(protocol));
    for (k, v) in [
        ("product", product),
        ("version", version),
        ("banner", banner),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.into(), json!(v));
        }
    }
    match &p.found {
        Found::Probed(info) => {
            m.insert(
                "details".into(),
                serde_json::to_value(info).unwrap_or(Value::Null),
            );
        }
        Found::ProbeFailed { reason, .. } => {
            m.insert("error".into(), json!(reason));
        }
        Found::NotProbed { note, .. } => {
            m.insert("note".into(), json!(note));
        }
        Found::Printer | Found::Tls | Found::Unknown => {}
    }
    Value::Object(m)
}

/// Computer names and domains the host announced.
fn names(host: &HostScan) -> (Vec<String>, Vec<String>) {
    let mut names = BTreeSet::new();
    let mut domains = BTreeSet::new();
    for (_, info) in answers(host) {
        if let ServiceInfo::Smb(i) = info {
            if let Some(n) = &i.ntlm {
                names.extend(n.netbios_computer.clone());
                names.extend(n.dns_computer.clone());
                domains.extend(n.netbios_domain.clone());
                domains.extend(n.dns_domain.clone());
            }
            if let Smb1Outcome::Accepted { dialect, .. } = &i.smb1 {
                names.extend(dialect.server.clone());
                domains.extend(dialect.domain.clone());
            }
        }
    }
    let clean = |s: BTreeSet<String>| s.into_iter().filter(|x| !x.trim().is_empty()).collect();
    (clean(names), clean(domains))
}

/// The `device` asset of one host.
pub fn asset(host: &HostScan, rules: &RuleSet, judging: Judging) -> Asset {
    let (names, domains) = names(host);
    let mut details = Map::new();
    details.insert("address".into(), json!(host.addr.to_string()));
    details.insert("names".into(), json!(names));
    details.insert("domains".into(), json!(domains));
    details.insert(
        "identified_as".into(),
        Value::Array(
            host_verdicts(host, rules, judging)
                .iter()
                .map(verdict_json)
                .collect(),
        ),
    );
    details.insert(
        "services".into(),
        Value::Array(host.ports.iter().map(service_json).collect()),
    );
    if let Some(why) = host.cut_short {
        details.insert("incomplete".into(), json!(why.describe()));
    }
    Asset {
        kind: AssetKind::Device,
        id: host.addr.to_string(),
        details,
    }
}

/// The ports of a host that speak TLS, as `host:port` targets.
pub fn tls_targets(host: &HostScan) -> Vec<String> {
    host.ports
        .iter()
        .filter(|p| p.found == Found::Tls && p.transport == Transport::Tcp)
        .map(|p| std::net::SocketAddr::new(host.addr, p.port).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::network::probe::{ftp, rdp, smb, snmp, ssh, telnet};
    use time::macros::date;

    fn judging() -> Judging {
        Judging {
            today: date!(2026 - 11 - 26),
            windows_esu: false,
        }
    }

    fn host(ports: Vec<(u16, Transport, Found)>) -> HostScan {
        HostScan {
            addr: "198.18.7.20".parse().expect("ip"),
            alive: true,
            ports: ports
                .into_iter()
                .map(|(port, transport, found)| PortScan {
                    port,
                    transport,
                    found,
                })
                .collect(),
            cut_short: None,
        }
    }

    fn codes(h: &HostScan) -> Vec<(String, String)> {
        let rules = RuleSet::builtin().expect("rules");
        let mut v: Vec<(String, String)> = findings(h, rules, judging())
            .into_iter()
            .map(|f| (f.code.as_str().to_owned(), f.subject))
            .collect();
        v.sort();
        v
    }

    fn windows7_smb() -> ServiceInfo {
        let dialect = match smb::parse_smb1_negotiate(&smb::tests::smb1_negotiate_response(0x03)) {
            Ok(smb::Smb1Negotiate::Accepted(d)) => d,
            other => panic!("vector: {other:?}"),
        };
        let session = smb::parse_smb1_session_setup(&smb::tests::smb1_session_setup_response(
            "Windows 7 Professional 7601 Service Pack 1",
            "Windows 7 Professional 6.1",
            &smb::tests::windows7_challenge(),
        ))
        .expect("vector");
        ServiceInfo::Smb(Box::new(smb::SmbInfo {
            ntlm: session.ntlm.clone(),
            native_os: session.native_os.clone(),
            native_lanman: session.native_lanman.clone(),
            smb1: smb::Smb1Outcome::Accepted {
                dialect,
                session: Some(Box::new(session)),
            },
            smb2: smb::Smb2Outcome::Failed {
                reason: "closed".into(),
            },
            signing_required: false,
        }))
    }

    #[test]
    fn windows_7_over_smb1_gives_smbv1_signing_and_one_eol_finding() {
        let h = host(vec![(445, Transport::Tcp, Found::Probed(windows7_smb()))]);
        assert_eq!(
            codes(&h),
            vec![
                ("legacy.os.eol".into(), "".into()),
                ("legacy.smb.signing_not_required".into(), "445/tcp".into()),
                ("legacy.smb.v1".into(), "445/tcp".into()),
            ]
        );
        let rules = RuleSet::builtin().expect("rules");
        let f = findings(&h, rules, judging());
        let eol = f
            .iter()
            .find(|f| f.code.as_str() == "legacy.os.eol")
            .expect("eol");
        assert_eq!(eol.evidence["eol_date"], "2020-01-14");
        assert!(eol.evidence["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("ntlm_version = \"6.1.7601\"")));
        assert_eq!(eol.collector, "network");
        assert_eq!(eol.asset, "198.18.7.20");
        let a = asset(&h, rules, judging());
        assert_eq!(a.kind, AssetKind::Device);
        assert_eq!(a.details["services"][0]["protocol"], "smb");
        assert_eq!(a.details["services"][0]["details"]["probe"], "smb");
        assert!(a.details["names"].as_array().is_some_and(|n| !n.is_empty()));
    }

    #[test]
    fn old_ssh_is_outdated_once_per_port_and_modern_ssh_is_clean() {
        let old = ssh::parse_ssh(b"SSH-1.99-OpenSSH_3.9p1").expect("vector");
        let new = ssh::parse_ssh(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3").expect("vector");
        let h = host(vec![
            (22, Transport::Tcp, Found::Probed(ServiceInfo::Ssh(old))),
            (2222, Transport::Tcp, Found::Probed(ServiceInfo::Ssh(new))),
        ]);
        assert_eq!(
            codes(&h),
            vec![("legacy.ssh.outdated".into(), "22/tcp".into())]
        );
    }

    #[test]
    fn telnet_ftp_snmp_and_rdp_findings_carry_their_port() {
        let ftp = ftp::FtpInfo {
            banner: "220 (vsFTPd 3.0.3)".into(),
            features: vec!["EPSV".into()],
            auth_tls: Some(false),
            auth_tls_source: Some("feat".into()),
            anonymous: ftp::Anonymous::Accepted,
            anonymous_reply: Some("230 Login successful.".into()),
        };
        let snmp = snmp::SnmpInfo {
            community: "public".into(),
            v1: Some(snmp::SnmpAnswer {
                error_status: 0,
                sys_descr: Some("Linux lab".into()),
            }),
            v2c: None,
            sys_descr: Some("Linux lab".into()),
        };
        let rdp = rdp::RdpInfo {
            tls_only: rdp::RdpAttempt::Confirmed(rdp::RdpNegotiation::Legacy),
            standard: rdp::RdpAttempt::Confirmed(rdp::RdpNegotiation::Legacy),
            nla_enforced: false,
            accepts_without_nla: true,
        };
        let telnet = telnet::summarize(&telnet::parse_telnet(b"lab login: ").expect("vector"));
        let h = host(vec![
            (21, Transport::Tcp, Found::Probed(ServiceInfo::Ftp(ftp))),
            (
                23,
                Transport::Tcp,
                Found::Probed(ServiceInfo::Telnet(telnet)),
            ),
            (3389, Transport::Tcp, Found::Probed(ServiceInfo::Rdp(rdp))),
            (161, Transport::Udp, Found::Probed(ServiceInfo::Snmp(snmp))),
        ]);
        assert_eq!(
            codes(&h),
            vec![
                ("legacy.ftp.anonymous".into(), "21/tcp".into()),
                ("legacy.ftp.cleartext".into(), "21/tcp".into()),
                ("legacy.rdp.no_nla".into(), "3389/tcp".into()),
                ("legacy.snmp.default_community".into(), "161/udp".into()),
                ("legacy.telnet".into(), "23/tcp".into()),
            ]
        );
    }

    #[test]
    fn nla_enforced_rdp_printers_failures_and_unknown_ports_raise_nothing() {
        let rdp = rdp::RdpInfo {
            tls_only: rdp::RdpAttempt::Confirmed(rdp::RdpNegotiation::Failure {
                code: 5,
                name: "HYBRID_REQUIRED_BY_SERVER".into(),
            }),
            standard: rdp::RdpAttempt::Confirmed(rdp::RdpNegotiation::Failure {
                code: 5,
                name: "HYBRID_REQUIRED_BY_SERVER".into(),
            }),
            nla_enforced: true,
            accepts_without_nla: false,
        };
        let h = host(vec![
            (3389, Transport::Tcp, Found::Probed(ServiceInfo::Rdp(rdp))),
            (9100, Transport::Tcp, Found::Printer),
            (
                23,
                Transport::Tcp,
                Found::ProbeFailed {
                    kind: crate::collect::network::probe::ProbeKind::Telnet,
                    reason: "reset".into(),
                },
            ),
            (5000, Transport::Tcp, Found::Unknown),
            (8443, Transport::Tcp, Found::Tls),
        ]);
        assert!(codes(&h).is_empty());
        assert_eq!(tls_targets(&h), vec!["198.18.7.20:8443".to_owned()]);
        let a = asset(&h, RuleSet::builtin().expect("rules"), judging());
        let s = a.details["services"].as_array().expect("services");
        assert_eq!(s[1]["protocol"], "printer");
        assert_eq!(s[2]["error"], "reset");
    }

    #[test]
    fn http_server_headers_split_into_product_and_version() {
        assert_eq!(
            split_product("Microsoft-IIS/6.0"),
            (Some("Microsoft-IIS".into()), Some("6.0".into()))
        );
        assert_eq!(
            split_product("Apache/2.4.57 (Debian)"),
            (Some("Apache".into()), Some("2.4.57".into()))
        );
        assert_eq!(split_product("nginx"), (Some("nginx".into()), None));
        assert_eq!(split_product(""), (None, None));
    }
}
