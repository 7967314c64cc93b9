//! The legacy-network benchmark (issue 6; run by `scripts/bench-network`,
//! never by CI): the lab of [`legacylab`] swept from its scanner namespace
//! by `trustwatch-agent scan network` and by nmap with its standard
//! scripts, one tool after the other in one run; wall times, and whether
//! each tool reported each planted flaw (and left each clean host clean).
//!
//! ```text
//! tw-bench-network [--doc FILE] [--work DIR] [--agent PATH] [--responder PATH]
//!                  [--subnet N] [--no-discovery-run]
//! ```
//! - `--doc FILE`: replace the text between `<!-- bench-network:begin -->`
//!   and `<!-- bench-network:end -->` of FILE (re-read just before writing;
//!   the rest of the file is left as it is) with the result.
//! - `--work DIR`: keep every output (JSON, nmap XML and text, logs) there;
//!   default a temporary directory removed at the end.
//! - `--agent`, `--responder`: the binaries (default: next to this one).
//! - `--subnet N`: the lab is 198.18.N.0/24 (default 64).
//! - `--no-discovery-run`: skip the extra nmap run with nmap's own host
//!   discovery (without `-Pn`).
//!
//! Runs, in order, each after flushing the scanner's neighbour (ARP) cache:
//! trustwatch at its default settings over the /24; trustwatch over the
//! lab's hosts alone (to show what the dead addresses cost); nmap with the
//! command of the issue (`-n -Pn -sT -sU -sV --script smb-protocols,
//! smb2-security-mode,rdp-enum-encryption,snmp-info,ftp-anon
//! -p T:<list>,U:161 -oX`); and, to be fair to nmap, the same nmap command
//! without `-Pn`, so that nmap's ARP host discovery skips the dead
//! addresses as it would by default.
//!
//! Verdicts are read from trustwatch's JSON (findings per device, and the
//! device's identification) and from nmap's XML (service detection per
//! port, the scripts' `output`), each with the evidence it rests on; the
//! rules are in [`judge`] and its table in the benchmark's text.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use trustwatch_tests::legacylab::{self, LegacyLab, HOSTS, SWEEP_PORTS};

const BEGIN: &str = "<!-- bench-network:begin -->";
const END: &str = "<!-- bench-network:end -->";
const NMAP_SCRIPTS: &str =
    "smb-protocols,smb2-security-mode,rdp-enum-encryption,snmp-info,ftp-anon";
/// The speed target of the issue: trustwatch in at most 1/5 of nmap's time.
const TARGET_RATIO: f64 = 5.0;

// ------------------------------------------------------------------ nmap XML

/// A minimal reader of nmap's XML output: the start and end tags with their
/// attributes, in document order (text content is not needed: nmap puts
/// every value we read in attributes, a script's text in `output`).
mod xml {
    /// One tag.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Tag {
        pub name: String,
        pub attrs: Vec<(String, String)>,
        /// `</name>`.
        pub end: bool,
        /// `<name ... />`.
        pub empty: bool,
    }

    impl Tag {
        pub fn attr(&self, key: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Decodes the five XML entities and numeric character references;
    /// anything malformed is kept as written.
    pub fn unescape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let Some(semi) = tail.find(';').filter(|&j| j <= 10) else {
                out.push('&');
                rest = &tail[1..];
                continue;
            };
            let name = &tail[1..semi];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let num = if let Some(h) = name.strip_prefix("#x") {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = name.strip_prefix('#') {
                        d.parse().ok()
                    } else {
                        None
                    };
                    num.and_then(char::from_u32)
                }
            };
            match ch {
                Some(c) => {
                    out.push(c);
                    rest = &tail[semi + 1..];
                }
                None => {
                    out.push('&');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The tags of `doc`. Declarations, processing instructions and
    /// comments are skipped; a truncated document yields the tags before
    /// the cut.
    pub fn tags(doc: &str) -> Vec<Tag> {
        let mut out = Vec::new();
        let b = doc.as_bytes();
        let mut i = 0;
        while let Some(off) = doc[i..].find('<') {
            i += off;
            if doc[i..].starts_with("<!--") {
                match doc[i..].find("-->") {
                    Some(e) => i += e + 3,
                    None => break,
                }
                continue;
            }
            if doc[i..].starts_with("<?") || doc[i..].starts_with("<!") {
                match doc[i..].find('>') {
                    Some(e) => i += e + 1,
                    None => break,
                }
                continue;
            }
            // A tag: name, then attributes with quoted values (which may
            // hold '>'), then '>' or '/>'.
            let mut j = i + 1;
            let end = b.get(j) == Some(&b'/');
            if end {
                j += 1;
            }
            let start = j;
            while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
                j += 1;
            }
            let name = doc[start..j].to_owned();
            let mut attrs = Vec::new();
            let mut empty = false;
            let mut closed = false;
            while j < b.len() {
                match b[j] {
                    b'>' => {
                        closed = true;
                        j += 1;
                        break;
                    }
                    b'/' => {
                        empty = true;
                        j += 1;
                    }
                    c if c.is_ascii_whitespace() => j += 1,
                    _ => {
                        let k0 = j;
                        while j < b.len()
                            && b[j] != b'='
                            && b[j] != b'>'
                            && !b[j].is_ascii_whitespace()
                        {
                            j += 1;
                        }
                        let key = doc[k0..j].to_owned();
                        if b.get(j) != Some(&b'=') {
                            attrs.push((key, String::new()));
                            continue;
                        }
                        j += 1;
                        let Some(&q) = b.get(j).filter(|q| **q == b'"' || **q == b'\'') else {
                            continue;
                        };
                        j += 1;
                        let v0 = j;
                        while j < b.len() && b[j] != q {
                            j += 1;
                        }
                        let value = unescape(&doc[v0..j.min(b.len())]);
                        j += 1;
                        attrs.push((key, value));
                    }
                }
            }
            if !closed {
                break;
            }
            i = j.min(b.len());
            if !name.is_empty() {
                out.push(Tag {
                    name,
                    attrs,
                    end,
                    empty,
                });
            }
        }
        out
    }
}

/// What nmap said about one port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NmapPort {
    protocol: String,
    port: u16,
    state: String,
    /// `<service>` attributes: name, product, version, extrainfo, ostype…
    service: BTreeMap<String, String>,
    /// Script id → output.
    scripts: BTreeMap<String, String>,
}

impl NmapPort {
    fn svc(&self, key: &str) -> &str {
        self.service.get(key).map(String::as_str).unwrap_or("")
    }

    /// "name product version (extrainfo) ostype", as nmap prints it.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for k in ["name", "product", "version"] {
            if !self.svc(k).is_empty() {
                parts.push(self.svc(k).to_owned());
            }
        }
        if !self.svc("extrainfo").is_empty() {
            parts.push(format!("({})", self.svc("extrainfo")));
        }
        if !self.svc("ostype").is_empty() {
            parts.push(format!("ostype {}", self.svc("ostype")));
        }
        parts.join(" ")
    }
}

/// What nmap said about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NmapHost {
    addr: String,
    ports: Vec<NmapPort>,
    /// Host scripts (smb-protocols, smb2-security-mode): id → output.
    hostscripts: BTreeMap<String, String>,
}

impl NmapHost {
    fn port(&self, port: u16, protocol: &str) -> Option<&NmapPort> {
        self.ports
            .iter()
            .find(|p| p.port == port && p.protocol == protocol)
    }

    fn open(&self, port: u16, protocol: &str) -> Option<&NmapPort> {
        self.port(port, protocol).filter(|p| p.state == "open")
    }

    fn script(&self, id: &str) -> Option<&str> {
        self.hostscripts
            .get(id)
            .or_else(|| self.ports.iter().find_map(|p| p.scripts.get(id)))
            .map(String::as_str)
    }
}

/// nmap's XML → hosts by address.
fn parse_nmap(doc: &str) -> BTreeMap<String, NmapHost> {
    let mut hosts = BTreeMap::new();
    let mut host: Option<NmapHost> = None;
    let mut port: Option<NmapPort> = None;
    let mut in_hostscript = false;
    for t in xml::tags(doc) {
        match (t.name.as_str(), t.end) {
            ("host", false) => host = Some(NmapHost::default()),
            ("host", true) => {
                if let Some(h) = host.take() {
                    hosts.insert(h.addr.clone(), h);
                }
            }
            ("address", false) => {
                if let Some(h) = host.as_mut() {
                    if t.attr("addrtype").is_some_and(|a| a.starts_with("ipv")) {
                        h.addr = t.attr("addr").unwrap_or_default().to_owned();
                    }
                }
            }
            ("port", false) if host.is_some() => {
                port = Some(NmapPort {
                    protocol: t.attr("protocol").unwrap_or_default().to_owned(),
                    port: t.attr("portid").and_then(|p| p.parse().ok()).unwrap_or(0),
                    ..NmapPort::default()
                });
            }
            ("port", true) => {
                if let (Some(h), Some(p)) = (host.as_mut(), port.take()) {
                    h.ports.push(p);
                }
            }
            ("state", false) => {
                if let Some(p) = port.as_mut() {
                    p.state = t.attr("state").unwrap_or_default().to_owned();
                }
            }
            ("service", false) => {
                if let Some(p) = port.as_mut() {
                    p.service = t.attrs.iter().cloned().collect();
                }
            }
            ("hostscript", false) => in_hostscript = !t.empty,
            ("hostscript", true) => in_hostscript = false,
            ("script", false) => {
                let id = t.attr("id").unwrap_or_default().to_owned();
                let output = t.attr("output").unwrap_or_default().to_owned();
                if let Some(p) = port.as_mut() {
                    p.scripts.insert(id, output);
                } else if let (Some(h), true) = (host.as_mut(), in_hostscript) {
                    h.hostscripts.insert(id, output);
                }
            }
            _ => {}
        }
    }
    hosts
}

// ------------------------------------------------------------------ trustwatch JSON

/// What trustwatch said about one address.
#[derive(Debug, Clone, Default)]
struct TwHost {
    /// (code, subject) of each finding.
    findings: BTreeSet<(String, String)>,
    /// Evidence of each finding, by code (the first one).
    evidence: BTreeMap<String, Value>,
    /// The device asset.
    device: Value,
}

impl TwHost {
    fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|(c, _)| c == code)
    }

    fn codes(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|(c, s)| {
                if s.is_empty() {
                    c.clone()
                } else {
                    format!("{c} ({s})")
                }
            })
            .collect()
    }

    /// What the device was identified as (`identified_as[].identifies`).
    fn identified(&self) -> Vec<String> {
        self.device["identified_as"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v["identifies"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_trustwatch(doc: &Value) -> BTreeMap<String, TwHost> {
    let mut hosts: BTreeMap<String, TwHost> = BTreeMap::new();
    for a in doc["assets"].as_array().into_iter().flatten() {
        if a["kind"] == "device" {
            if let Some(id) = a["id"].as_str() {
                hosts.entry(id.to_owned()).or_default().device = a.clone();
            }
        }
    }
    for f in doc["findings"].as_array().into_iter().flatten() {
        let (Some(asset), Some(code)) = (f["asset"].as_str(), f["code"].as_str()) else {
            continue;
        };
        let h = hosts.entry(asset.to_owned()).or_default();
        h.findings.insert((
            code.to_owned(),
            f["subject"].as_str().unwrap_or_default().to_owned(),
        ));
        h.evidence
            .entry(code.to_owned())
            .or_insert_with(|| f["evidence"].clone());
    }
    hosts
}

// ------------------------------------------------------------------ verdicts

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Reported (a flaw), or correctly left clean (a clean host).
    Yes,
    /// Something was shown, but not enough to tell.
    Partial,
    /// Missed (a flaw), or wrongly flagged / misidentified.
    No,
}

impl Mark {
    fn sign(self) -> &'static str {
        match self {
            Mark::Yes => "✔",
            Mark::Partial => "~",
            Mark::No => "✘",
        }
    }
}

#[derive(Debug, Clone)]
struct Cell {
    mark: Mark,
    basis: String,
    /// A caveat printed below the table (numbered there).
    note: Option<&'static str>,
}

fn cell(mark: Mark, basis: impl Into<String>) -> Cell {
    Cell {
        mark,
        basis: basis.into(),
        note: None,
    }
}

impl Cell {
    fn with_note(mut self, note: &'static str) -> Cell {
        self.note = Some(note);
        self
    }
}

/// Why nmap's RDP script may be silent on the NLA host.
const NOTE_NLA_STANDIN: &str = "rdp-enum-encryption prints only the security layers that \
     succeed (failures only with `-d`): no output means no layer succeeded for nmap, so it \
     could not tell whether NLA is enforced.";
/// Why nmap's -sV may not name the Windows 7 stand-in.
const NOTE_WIN7_STANDIN: &str = "nmap's `SMBProgNeg` probe does not ask for extended \
     security; when none of its -sV rules matches the answer, nmap names no release.";
/// What rdp-enum-encryption reads.
const NOTE_RDP_SUCCESS: &str = "rdp-enum-encryption counts every RDP_NEG_RSP as SUCCESS \
     without reading its selectedProtocol (`enum_protocols` in rdp-enum-encryption.nse); \
     xrdp with `security_layer=rdp` offers standard RDP security only (it answered \
     trustwatch's TLS-only request by selecting PROTOCOL_RDP), yet nmap lists TLS and \
     CredSSP (NLA) as supported.";

#[derive(Debug, Clone)]
struct Row {
    host: String,
    /// The planted flaw, or what a clean host must not be blamed for.
    what: String,
    /// A flaw (counted in the totals) or a check of a clean host /
    /// an identification.
    flaw: bool,
    /// The trustwatch code that reports the flaw.
    code: Option<&'static str>,
    tw: Cell,
    nmap: Cell,
}

/// `.10 smb1` for octet 10.
fn host_name(octet: u8) -> String {
    let h = HOSTS
        .iter()
        .find(|h| h.octet == octet)
        .map_or("?", |h| h.name);
    format!(".{octet} {h}")
}

/// The first line of `s` containing `needle`, trimmed.
fn line_with<'a>(s: &'a str, needle: &str) -> Option<&'a str> {
    s.lines().find(|l| l.contains(needle)).map(str::trim)
}

/// Judges both tools on every planted flaw and clean host of the lab.
/// `ip` maps a last octet to its address; `printer_bytes` are the bytes
/// each tool wrote to the printer port.
fn judge(
    ip: &dyn Fn(u8) -> String,
    tw: &BTreeMap<String, TwHost>,
    nm: &BTreeMap<String, NmapHost>,
    printer_bytes: (u64, u64),
) -> Vec<Row> {
    let empty_tw = TwHost::default();
    let empty_nm = NmapHost::default();
    let t = |o: u8| tw.get(&ip(o)).unwrap_or(&empty_tw);
    let n = |o: u8| nm.get(&ip(o)).unwrap_or(&empty_nm);
    let name = host_name;
    let tw_code = |o: u8, code: &str| {
        if t(o).has(code) {
            cell(Mark::Yes, format!("`{code}`"))
        } else {
            cell(Mark::No, format!("no `{code}`"))
        }
    };
    let tw_clean = |o: u8| {
        let codes = t(o).codes();
        if codes.is_empty() {
            cell(Mark::Yes, "no finding")
        } else {
            cell(Mark::No, codes.join(", "))
        }
    };
    let smb1 = |o: u8| match n(o).script("smb-protocols") {
        Some(out) if out.contains("NT LM 0.12") => cell(
            Mark::Yes,
            format!(
                "smb-protocols: `{}`",
                line_with(out, "NT LM 0.12").unwrap_or("NT LM 0.12")
            ),
        ),
        Some(_) => cell(Mark::No, "smb-protocols lists no `NT LM 0.12`"),
        None => cell(Mark::No, "no smb-protocols output"),
    };
    let signing = |o: u8| match n(o).script("smb2-security-mode") {
        Some(out) if out.contains("not required") => cell(
            Mark::Yes,
            format!(
                "smb2-security-mode: `{}`",
                line_with(out, "not required").unwrap_or("not required")
            ),
        ),
        Some(out) => cell(
            Mark::No,
            format!(
                "smb2-security-mode: `{}`",
                out.lines().last().unwrap_or("").trim()
            ),
        ),
        None => cell(Mark::No, "no smb2-security-mode output"),
    };
    let service = |o: u8, port: u16, proto: &str| {
        n(o).open(port, proto)
            .map(|p| p.describe())
            .unwrap_or_default()
    };
    let mut rows = Vec::new();
    let mut push = |o: u8, what: &str, code: Option<&'static str>, tw: Cell, nmap: Cell| {
        rows.push(Row {
            host: name(o),
            what: what.to_owned(),
            flaw: code.is_some(),
            code,
            tw,
            nmap,
        })
    };

    // .10 Samba with NT1.
    push(
        10,
        "SMBv1",
        Some("legacy.smb.v1"),
        tw_code(10, "legacy.smb.v1"),
        smb1(10),
    );
    push(
        10,
        "SMB signing not required",
        Some("legacy.smb.signing_not_required"),
        tw_code(10, "legacy.smb.signing_not_required"),
        signing(10),
    );
    {
        let ids = t(10).identified();
        let tw = if t(10).has("legacy.os.eol") {
            cell(Mark::No, "`legacy.os.eol` raised on Samba")
        } else if !ids.is_empty() && ids.iter().all(|i| i.starts_with("Samba")) {
            cell(Mark::Yes, format!("identified as {}", ids.join(", ")))
        } else {
            cell(Mark::Partial, format!("identified as {ids:?}"))
        };
        let said: Vec<String> = [139u16, 445]
            .iter()
            .filter_map(|p| {
                n(10)
                    .open(*p, "tcp")
                    .map(|x| format!("{p}: {}", x.describe()))
            })
            .collect();
        let text = said.join("; ");
        let nmap = if text.contains("Windows") {
            cell(Mark::No, format!("-sV says `{text}`"))
        } else if text.contains("Samba") {
            cell(Mark::Yes, format!("-sV says `{text}`"))
        } else {
            cell(Mark::Partial, format!("-sV says `{text}`"))
        };
        push(10, "is Samba, not an EOL Windows", None, tw, nmap);
    }

    // .11 Samba SMB2+, signing mandatory: clean.
    {
        let nh = n(11);
        let p = nh.script("smb-protocols");
        let s = nh.script("smb2-security-mode");
        let nmap = match (p, s) {
            (Some(p), _) if p.contains("NT LM 0.12") => cell(Mark::No, "smb-protocols lists SMBv1"),
            (_, Some(s)) if s.contains("not required") => {
                cell(Mark::No, "smb2-security-mode: not required")
            }
            (Some(_), Some(s)) if s.contains("and required") => cell(
                Mark::Yes,
                format!(
                    "no SMBv1 in smb-protocols; smb2-security-mode: `{}`",
                    line_with(s, "required").unwrap_or("required")
                ),
            ),
            _ => cell(Mark::Partial, "scripts gave no verdict"),
        };
        push(
            11,
            "clean (SMB2+, signing required)",
            None,
            tw_clean(11),
            nmap,
        );
    }

    // .12 telnet.
    {
        let s = service(12, 23, "tcp");
        let nmap = if n(12)
            .open(23, "tcp")
            .is_some_and(|p| p.svc("name") == "telnet")
        {
            cell(Mark::Yes, format!("23/tcp `{s}`"))
        } else if !s.is_empty() {
            cell(Mark::Partial, format!("23/tcp `{s}`"))
        } else {
            cell(Mark::No, "23/tcp not reported open")
        };
        push(
            12,
            "telnet",
            Some("legacy.telnet"),
            tw_code(12, "legacy.telnet"),
            nmap,
        );
    }

    // .13 FTP.
    {
        let s = service(13, 21, "tcp");
        let nmap = if n(13)
            .open(21, "tcp")
            .is_some_and(|p| p.svc("name") == "ftp")
        {
            cell(
                Mark::Partial,
                format!("21/tcp `{s}`; whether AUTH TLS is offered is not tested"),
            )
        } else {
            cell(Mark::No, format!("21/tcp `{s}`"))
        };
        push(
            13,
            "FTP without TLS",
            Some("legacy.ftp.cleartext"),
            tw_code(13, "legacy.ftp.cleartext"),
            nmap,
        );
        let nmap = match n(13).script("ftp-anon") {
            Some(out) if out.contains("Anonymous FTP login allowed") => cell(
                Mark::Yes,
                format!(
                    "ftp-anon: `{}`",
                    line_with(out, "Anonymous FTP login allowed").unwrap_or_default()
                ),
            ),
            Some(out) => cell(Mark::No, format!("ftp-anon: `{}`", out.trim())),
            None => cell(Mark::No, "no ftp-anon output"),
        };
        push(
            13,
            "FTP anonymous login",
            Some("legacy.ftp.anonymous"),
            tw_code(13, "legacy.ftp.anonymous"),
            nmap,
        );
    }

    // .14 SNMP public.
    {
        let nmap = match n(14)
            .port(161, "udp")
            .and_then(|p| p.scripts.get("snmp-info"))
        {
            Some(out) if !out.trim().is_empty() && !out.contains("ERROR") => cell(
                Mark::Yes,
                format!(
                    "snmp-info (community public) answered: `{}`",
                    out.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .take(2)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            _ => cell(
                Mark::No,
                format!(
                    "161/udp `{}`, no snmp-info answer",
                    n(14)
                        .port(161, "udp")
                        .map(|p| p.state.as_str())
                        .unwrap_or("-")
                ),
            ),
        };
        push(
            14,
            "SNMP community `public`",
            Some("legacy.snmp.default_community"),
            tw_code(14, "legacy.snmp.default_community"),
            nmap,
        );
    }

    // RDP: .15 xrdp (no NLA) and .23 the NLA stand-in (clean).
    let rdp = |o: u8| -> (Option<bool>, String) {
        let Some(out) = n(o)
            .open(3389, "tcp")
            .and_then(|p| p.scripts.get("rdp-enum-encryption"))
        else {
            return (None, "no rdp-enum-encryption output".into());
        };
        let ok: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| l.ends_with(": SUCCESS") && !l.contains("RC4") && !l.contains("FIPS"))
            .collect();
        let without_nla = ok
            .iter()
            .any(|l| l.starts_with("Native RDP") || l.starts_with("SSL"));
        let nla = ok.iter().any(|l| l.starts_with("CredSSP"));
        let shown = |pick: &dyn Fn(&str) -> bool| -> String {
            let v: Vec<&str> = ok.iter().copied().filter(|l| pick(l)).collect();
            format!("rdp-enum-encryption: `{}`", v.join("`, `"))
        };
        let text = if without_nla {
            shown(&|l| l.starts_with("Native RDP") || l.starts_with("SSL"))
        } else if nla {
            shown(&|l| l.starts_with("CredSSP"))
        } else {
            "rdp-enum-encryption: no security layer reported SUCCESS".to_owned()
        };
        match (without_nla, nla) {
            (true, _) => (Some(true), text),
            (false, true) => (Some(false), text),
            (false, false) => (None, text),
        }
    };
    {
        let (v, text) = rdp(15);
        let nmap = match v {
            Some(true) => cell(Mark::Yes, text),
            Some(false) => cell(Mark::No, text),
            None => cell(Mark::Partial, text),
        };
        push(
            15,
            "RDP without NLA",
            Some("legacy.rdp.no_nla"),
            tw_code(15, "legacy.rdp.no_nla"),
            nmap,
        );
        // xrdp with security_layer=rdp offers neither TLS nor CredSSP.
        let details = t(15)
            .device
            .get("services")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|s| s["port"] == 3389))
            .map(|s| s["details"].clone())
            .unwrap_or(Value::Null);
        let tw = if details["tls_only"]["result"] == "selected"
            && details["tls_only"]["protocol"] == "rdp"
        {
            cell(
                Mark::Yes,
                "its TLS-only request got standard RDP security selected: no TLS, no NLA",
            )
        } else {
            cell(
                Mark::No,
                format!("TLS-only request: {}", details["tls_only"]),
            )
        };
        let claimed: Vec<String> = n(15)
            .open(3389, "tcp")
            .and_then(|p| p.scripts.get("rdp-enum-encryption"))
            .map(|out| {
                out.lines()
                    .map(str::trim)
                    .filter(|l| {
                        l.ends_with(": SUCCESS")
                            && (l.starts_with("CredSSP")
                                || l.starts_with("SSL")
                                || l.starts_with("RDSTLS"))
                    })
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let nmap = if claimed.is_empty() {
            cell(Mark::Yes, "lists neither TLS nor CredSSP as supported")
        } else {
            cell(
                Mark::No,
                format!("rdp-enum-encryption: `{}`", claimed.join("`, `")),
            )
            .with_note(NOTE_RDP_SUCCESS)
        };
        push(15, "offers neither TLS nor NLA", None, tw, nmap);
        let (v, text) = rdp(23);
        let nmap = match v {
            Some(false) => cell(Mark::Yes, text),
            Some(true) => cell(Mark::No, text),
            None => cell(Mark::Partial, format!("{text}: NLA not determined"))
                .with_note(NOTE_NLA_STANDIN),
        };
        push(23, "clean (RDP enforcing NLA)", None, tw_clean(23), nmap);
    }

    // .16 modern OpenSSH, .17 DICOM: clean.
    for (o, port, what) in [
        (16u8, 22u16, "clean (modern OpenSSH)"),
        (17, 104, "clean (DICOM SCP)"),
    ] {
        let s = service(o, port, "tcp");
        let nmap = if s.is_empty() {
            cell(Mark::Partial, format!("{port}/tcp not reported open"))
        } else if s.contains("protocol 1.") {
            cell(Mark::No, format!("`{s}`"))
        } else {
            cell(Mark::Yes, format!("nothing flagged; {port}/tcp `{s}`"))
        };
        push(o, what, None, tw_clean(o), nmap);
    }

    // .20 Windows 7 stand-in.
    push(
        20,
        "SMBv1",
        Some("legacy.smb.v1"),
        tw_code(20, "legacy.smb.v1"),
        smb1(20),
    );
    push(
        20,
        "SMB signing not required",
        Some("legacy.smb.signing_not_required"),
        tw_code(20, "legacy.smb.signing_not_required"),
        signing(20),
    );
    {
        let tw = match t(20).evidence.get("legacy.os.eol") {
            Some(e) => cell(
                Mark::Yes,
                format!(
                    "`legacy.os.eol`: {} (end of support {})",
                    e["evidence"].as_str().unwrap_or("?"),
                    e["eol_date"].as_str().unwrap_or("?")
                ),
            ),
            None => cell(Mark::No, "no `legacy.os.eol`"),
        };
        let s = [139u16, 445]
            .iter()
            .filter_map(|p| {
                n(20)
                    .open(*p, "tcp")
                    .map(|x| format!("{p}: {}", x.describe()))
            })
            .collect::<Vec<_>>()
            .join("; ");
        let nmap = if s.contains("Windows 7") && !s.contains("Windows 7 -") {
            cell(Mark::Yes, format!("-sV says `{s}`"))
        } else if s.contains("Windows") {
            cell(Mark::Partial, format!("-sV says `{s}`: not one release"))
        } else {
            cell(Mark::No, format!("-sV says `{s}`")).with_note(NOTE_WIN7_STANDIN)
        };
        push(20, "end-of-life Windows 7", Some("legacy.os.eol"), tw, nmap);
    }

    // .21 old SSH.
    {
        let s = service(21, 22, "tcp");
        let nmap = if s.contains("3.9p1") || s.contains("protocol 1.") {
            cell(Mark::Yes, format!("version shown, not judged: `{s}`"))
        } else {
            cell(Mark::No, format!("22/tcp `{s}`"))
        };
        push(
            21,
            "SSH 1.99 / OpenSSH 3.9p1",
            Some("legacy.ssh.outdated"),
            tw_code(21, "legacy.ssh.outdated"),
            nmap,
        );
    }

    // .22 IIS 6.
    {
        let tw = match t(22).evidence.get("legacy.os.eol") {
            Some(e) => cell(
                Mark::Yes,
                format!(
                    "`legacy.os.eol`: {} (end of support {})",
                    e["evidence"].as_str().unwrap_or("?"),
                    e["eol_date"].as_str().unwrap_or("?")
                ),
            ),
            None => cell(Mark::No, "no `legacy.os.eol`"),
        };
        let s = service(22, 80, "tcp");
        let nmap = if s.contains("IIS") && s.contains("6.0") {
            cell(
                Mark::Yes,
                format!("version shown, OS release implied, not named: `{s}`"),
            )
        } else {
            cell(Mark::No, format!("80/tcp `{s}`"))
        };
        push(
            22,
            "IIS 6.0: Windows Server 2003 (EOL)",
            Some("legacy.os.eol"),
            tw,
            nmap,
        );
    }

    // .30 printer: connected to, never written to.
    {
        let tw = if t(30).codes().is_empty() && printer_bytes.0 == 0 {
            cell(Mark::Yes, "no finding; 0 bytes written to 9100")
        } else {
            cell(
                Mark::No,
                format!("{} bytes written to 9100", printer_bytes.0),
            )
        };
        let s = service(30, 9100, "tcp");
        let nmap = if printer_bytes.1 == 0 {
            cell(Mark::Yes, format!("0 bytes written to 9100; `{s}`"))
        } else {
            cell(
                Mark::No,
                format!("{} bytes written to 9100; `{s}`", printer_bytes.1),
            )
        };
        push(30, "printer port left alone", None, tw, nmap);
    }
    rows
}

// ------------------------------------------------------------------ running

struct Args {
    doc: Option<PathBuf>,
    work: Option<PathBuf>,
    agent: PathBuf,
    responder: PathBuf,
    subnet: u8,
    discovery_run: bool,
}

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    let dir = exe.parent().context("the executable has no directory")?;
    Ok(dir.join(name))
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        doc: None,
        work: None,
        agent: sibling("trustwatch-agent")?,
        responder: sibling("tw-lab-responder")?,
        subnet: 64,
        discovery_run: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--doc" => a.doc = Some(PathBuf::from(val()?)),
            "--work" => a.work = Some(PathBuf::from(val()?)),
            "--agent" => a.agent = PathBuf::from(val()?),
            "--responder" => a.responder = PathBuf::from(val()?),
            "--subnet" => a.subnet = val()?.parse().context("--subnet: 1..=254")?,
            "--no-discovery-run" => a.discovery_run = false,
            "-h" | "--help" => {
                println!(
                    "tw-bench-network [--doc FILE] [--work DIR] [--agent PATH] [--responder PATH] [--subnet N] [--no-discovery-run]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.subnet == 0 || a.subnet == 255 {
        bail!("--subnet: 1..=254");
    }
    for p in [&a.agent, &a.responder] {
        if !p.is_file() {
            bail!(
                "{} not found: build it first (scripts/bench-network does)",
                p.display()
            );
        }
    }
    Ok(a)
}

/// One timed run of a program in the scanner's namespace.
struct Timed {
    took: Duration,
    stdout: Vec<u8>,
    stderr: String,
}

fn flush_neighbours(lab: &LegacyLab) -> Result<()> {
    let ok = Command::new("ip")
        .args(["-n", &lab.scanner.ns, "neigh", "flush", "all"])
        .status()
        .context("ip neigh flush")?
        .success();
    if !ok {
        bail!("ip neigh flush failed");
    }
    Ok(())
}

fn run_timed(
    lab: &LegacyLab,
    program: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> Result<Timed> {
    flush_neighbours(lab)?;
    let mut c = lab.scanner.command(program);
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let started = Instant::now();
    let out = c.output().with_context(|| format!("run {program}"))?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{program} failed ({}):\n{stderr}", out.status);
    }
    Ok(Timed {
        took,
        stdout: out.stdout,
        stderr,
    })
}

/// `connections bytes` of the printer stand-in so far.
fn printer_record(lab: &LegacyLab) -> (u64, u64) {
    let text = std::fs::read_to_string(&lab.printer_record).unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|x| x.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The printer stand-in writes its record when a connection ends: wait a
/// moment for the last one.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| format!("{program} (version unknown)"))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Replaces the text between the markers of `doc` (re-read now) with
/// `body`, writing through a temporary file and a rename.
fn write_block(doc: &Path, body: &str) -> Result<()> {
    let text = std::fs::read_to_string(doc).with_context(|| format!("read {}", doc.display()))?;
    let new = replace_block(&text, body)
        .with_context(|| format!("{}: no {BEGIN} … {END} block", doc.display()))?;
    let tmp = doc.with_extension("md.bench-network.tmp");
    std::fs::write(&tmp, new).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, doc).with_context(|| format!("rename onto {}", doc.display()))?;
    Ok(())
}

fn replace_block(text: &str, body: &str) -> Option<String> {
    let b = text.find(BEGIN)? + BEGIN.len();
    let e = b + text[b..].find(END)?;
    Some(format!(
        "{}\n{}\n{}",
        &text[..b],
        body.trim_end(),
        &text[e..]
    ))
}

fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

/// The printer stand-in's counts during each tool's runs.
#[derive(Debug, Clone, Copy, Default)]
struct Printer {
    tw_connections: u64,
    tw_bytes: u64,
    nmap_connections: u64,
    nmap_bytes: u64,
}

/// The extra nmap run with its own host discovery.
#[derive(Debug, Clone)]
struct Discovery {
    took: Duration,
    hosts: BTreeMap<String, NmapHost>,
    printer_bytes: u64,
}

/// Everything one run measured; [`render`] writes it up.
#[derive(Debug, Clone)]
struct Measured {
    date: time::Date,
    /// `uname -srm; N cores, CPU model`.
    machine: String,
    /// Load averages before and after.
    load: (String, String),
    subnet: u8,
    agent_version: String,
    nmap_version: String,
    /// The nmap `-Pn` command's arguments as shown (output paths by name).
    nmap_command: String,
    tw_took: Duration,
    /// trustwatch over the lab's hosts alone (no dead address).
    tw_live_took: Duration,
    nmap_took: Duration,
    tw: BTreeMap<String, TwHost>,
    nmap: BTreeMap<String, NmapHost>,
    discovery: Option<Discovery>,
    printer: Printer,
}

/// The benchmark's text, and whether the issue's target was met.
fn render(m: &Measured) -> (String, bool) {
    let cidr = format!("198.18.{}.0/24", m.subnet);
    let ip = |o: u8| format!("198.18.{}.{o}", m.subnet);
    let (tw, nm) = (&m.tw, &m.nmap);
    let rows = judge(&ip, tw, nm, (m.printer.tw_bytes, m.printer.nmap_bytes));
    let disc_rows = m
        .discovery
        .as_ref()
        .map(|d| judge(&ip, tw, &d.hosts, (m.printer.tw_bytes, d.printer_bytes)));
    let ratio = m.nmap_took.as_secs_f64() / m.tw_took.as_secs_f64().max(0.001);
    let flaws: Vec<&Row> = rows.iter().filter(|r| r.flaw).collect();
    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| r.flaw && f(r)).count();
    let tw_found = count(&|r| r.tw.mark == Mark::Yes);
    let nm_found = count(&|r| r.nmap.mark == Mark::Yes);
    let nm_partial = count(&|r| r.nmap.mark == Mark::Partial);
    let nm_any_tw_missed: Vec<&Row> = rows
        .iter()
        .filter(|r| r.flaw && r.nmap.mark != Mark::No && r.tw.mark != Mark::Yes)
        .collect();
    let nm_wrong: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.flaw && r.nmap.mark != Mark::Yes)
        .collect();
    let tw_wrong: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.flaw && r.tw.mark != Mark::Yes)
        .collect();
    let tw_extra: Vec<String> = {
        let planted: BTreeSet<(String, &str)> = rows
            .iter()
            .filter_map(|r| r.code.map(|c| (r.host.clone(), c)))
            .collect();
        let mut v = Vec::new();
        for (addr, h) in tw {
            let octet: u8 = addr
                .rsplit('.')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let name = host_name(octet);
            for (code, subject) in &h.findings {
                if !planted.contains(&(name.clone(), code.as_str())) {
                    v.push(format!("{name}: {code} {subject}").trim_end().to_owned());
                }
            }
        }
        v
    };
    let nm_reported_hosts = nm
        .values()
        .filter(|h| h.ports.iter().any(|p| p.state == "open"))
        .count();
    let nm_openfiltered_hosts = nm
        .values()
        .filter(|h| {
            !h.ports.iter().any(|p| p.state == "open")
                && h.ports.iter().any(|p| p.state.contains("open"))
        })
        .count();
    let tw_devices = tw.values().filter(|h| !h.device.is_null()).count();
    let target_met = ratio >= TARGET_RATIO && nm_any_tw_missed.is_empty() && tw_wrong.is_empty();

    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "Run of `scripts/bench-network` on {} ({}; load average {} before, {} after: \
         the machine is shared, so absolute times move between runs, while the tools run back to back \
         on the same lab).",
        m.date,
        m.machine,
        m.load.0,
        m.load.1
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "The lab of `tests/tests/netns_legacy.rs` (`tests/src/legacylab.rs`): {} hosts on {cidr}, \
         each in a network namespace on one bridge; the other {} addresses are dead. Every tool runs \
         in the scanner namespace (.{}), the neighbour (ARP) cache flushed before each run.",
        HOSTS.len(),
        254 - HOSTS.len() - 1,
        legacylab::SCANNER_OCTET
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| host | runs |\n|---|---|");
    for h in HOSTS {
        let _ = writeln!(s, "| .{} {} | {} |", h.octet, h.name, h.runs);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Commands (one run, in this order):\n");
    let _ = writeln!(
        s,
        "1. `trustwatch-agent scan network {cidr} --ports {SWEEP_PORTS} --format json` \
         ({}, release build, empty config = default settings: 1000 connections/s overall, \
         40/s and 2 at a time per host, 1 s connect timeout)",
        m.agent_version
    );
    let _ = writeln!(
        s,
        "2. `nmap {}` ({}, default timing `-T3`)",
        m.nmap_command, m.nmap_version,
    );
    if m.discovery.is_some() {
        let _ = writeln!(
            s,
            "3. the same nmap command without `-Pn`: nmap's own host discovery (ARP on this \
             LAN) first, so that dead addresses cost it little; this is nmap's default."
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| run | wall time | trustwatch faster by |\n|---|---|---|"
    );
    let _ = writeln!(s, "| trustwatch | {} s | — |", secs(m.tw_took));
    let _ = writeln!(
        s,
        "| nmap `-Pn` (the issue's command) | {} s | {ratio:.1}× |",
        secs(m.nmap_took)
    );
    if let Some(d) = &m.discovery {
        let _ = writeln!(
            s,
            "| nmap with host discovery | {} s | {:.1}× |",
            secs(d.took),
            d.took.as_secs_f64() / m.tw_took.as_secs_f64().max(0.001)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Where trustwatch's time goes: the same command given the {} lab hosts as single \
         addresses took {} s, so {} s of the /24 sweep is the {} dead addresses. No ARP answer \
         comes from them, so each of their first {} connections (445, 80, 443, two at a time) \
         waits out the 1 s connect timeout, 128 addresses at a time; live hosts answer within \
         milliseconds and are then paced at 40 connections/s each.{}",
        HOSTS.len(),
        secs(m.tw_live_took),
        secs(m.tw_took.saturating_sub(m.tw_live_took)),
        254 - HOSTS.len() - 1,
        3,
        match &m.discovery {
            Some(d) => format!(
                " nmap's time is its service and script scans of the live hosts: without `-Pn` \
                 (dead addresses dropped after its ARP ping) it took {} s against {} s with it.",
                secs(d.took),
                secs(m.nmap_took)
            ),
            None => String::new(),
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "The printer stand-in (.30) counted {} connection(s) from trustwatch's /24 sweep \
         and {} from nmap's `-Pn` run; bytes written to it: trustwatch {} (both runs), nmap {}.",
        m.printer.tw_connections,
        m.printer.nmap_connections,
        m.printer.tw_bytes,
        m.printer.nmap_bytes
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Devices reported: trustwatch {tw_devices}; nmap `-Pn` {nm_reported_hosts} hosts with an \
         open port{}.",
        if nm_openfiltered_hosts > 0 {
            format!(
                " and {nm_openfiltered_hosts} more with only `open|filtered` ports (silent UDP 161 of dead addresses)"
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Per flaw (✔ reported / left clean, ~ shown but not enough to tell, ✘ missed / wrong), \
         with what each verdict rests on (nmap `-Pn` run):\n"
    );
    let _ = writeln!(
        s,
        "| host | planted flaw or check | trustwatch | nmap |\n|---|---|---|---|"
    );
    let esc = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    let mut notes: Vec<&'static str> = Vec::new();
    let mut mark = |c: &Cell| -> String {
        let Some(n) = c.note else {
            return String::new();
        };
        let i = match notes.iter().position(|x| *x == n) {
            Some(i) => i,
            None => {
                notes.push(n);
                notes.len() - 1
            }
        };
        format!(" [{}]", i + 1)
    };
    for r in &rows {
        let (tn, nn) = (mark(&r.tw), mark(&r.nmap));
        let _ = writeln!(
            s,
            "| {} | {}{} | {} {}{tn} | {} {}{nn} |",
            r.host,
            r.what,
            if r.flaw { "" } else { " (check)" },
            r.tw.mark.sign(),
            esc(&r.tw.basis),
            r.nmap.mark.sign(),
            esc(&r.nmap.basis)
        );
    }
    let _ = writeln!(s);
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(s, "[{}] {n}\n", i + 1);
    }
    let _ = writeln!(
        s,
        "Flaws: {} planted; trustwatch reported {tw_found}; nmap showed {nm_found} \
         (and {nm_partial} more in part).",
        flaws.len()
    );
    if let Some(dr) = &disc_rows {
        let differ: Vec<String> = dr
            .iter()
            .zip(&rows)
            .filter(|(a, b)| a.nmap.mark != b.nmap.mark)
            .map(|(a, b)| {
                format!(
                    "{} {}: {} instead of {}",
                    a.host,
                    a.what,
                    a.nmap.mark.sign(),
                    b.nmap.mark.sign()
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "The nmap run with host discovery gave {}.",
            if differ.is_empty() {
                "the same verdicts".to_owned()
            } else {
                format!("different verdicts: {}", differ.join("; "))
            }
        );
    }
    let _ = writeln!(
        s,
        "Codes trustwatch raised beyond the planted flaws: {}.",
        if tw_extra.is_empty() {
            "none".to_owned()
        } else {
            tw_extra.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "Checks nmap did not pass: {}.",
        if nm_wrong.is_empty() {
            "none".to_owned()
        } else {
            nm_wrong
                .iter()
                .map(|r| format!("{} {} ({})", r.host, r.what, esc(&r.nmap.basis)))
                .collect::<Vec<_>>()
                .join("; ")
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Target (issue 6): every flaw nmap shows, and the checks it gets wrong, in at most 1/5 of \
         its time: {}. Flaws nmap showed (✔ or ~) that trustwatch missed: {}; trustwatch checks \
         failed: {}; time ratio {ratio:.1}× (target ≥ {TARGET_RATIO}×).",
        if target_met { "**met**" } else { "**not met**" },
        if nm_any_tw_missed.is_empty() {
            "none".to_owned()
        } else {
            nm_any_tw_missed
                .iter()
                .map(|r| format!("{} {}", r.host, r.what))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if tw_wrong.is_empty() {
            "none".to_owned()
        } else {
            tw_wrong
                .iter()
                .map(|r| format!("{} {}", r.host, r.what))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "How nmap's output is read: `smb-protocols` listing `NT LM 0.12` = SMBv1; \
         `smb2-security-mode` saying `not required` = signing not required (it speaks SMB2 only; \
         `smb-security-mode`, the SMB1 script, is not in the issue's list); `ftp-anon` saying \
         `Anonymous FTP login allowed`; `snmp-info` answering (it asks with the community \
         `public`); `rdp-enum-encryption` listing `Native RDP` or `SSL` as SUCCESS = sessions \
         without NLA, only `CredSSP` = NLA enforced; `-sV` product and version for telnet, FTP, \
         SSH, IIS and the operating system. nmap judges nothing itself: a version shown (OpenSSH \
         3.9p1, IIS 6.0) counts as found, as a person reading it would know. nmap's `-sV` \
         leaves ports 9100-9107 alone by default (`Exclude T:9100-9107` in nmap-service-probes)."
    );
    (s, target_met)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let tmp;
    let work = match &args.work {
        Some(w) => {
            std::fs::create_dir_all(w).with_context(|| format!("create {}", w.display()))?;
            w.clone()
        }
        None => {
            tmp = tempfile::tempdir().context("temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    if !legacylab::installed("nmap") {
        bail!("nmap is not installed (Debian package nmap; scripts/bench-network installs it)");
    }
    let date = time::OffsetDateTime::now_utc();
    let load_before = loadavg();
    eprintln!("==> building the lab on 198.18.{}.0/24", args.subnet);
    let labdir = work.join("lab");
    std::fs::create_dir_all(&labdir)?;
    let lab = legacylab::build(args.subnet, &labdir, &args.responder);
    let cidr = lab.cidr();
    let ip = |o: u8| lab.ip(o);
    // Let every daemon settle (Samba forks its helpers after listening).
    std::thread::sleep(Duration::from_secs(2));

    // trustwatch, default settings.
    let config = work.join("agent.toml");
    std::fs::write(&config, "")?;
    let agent = args.agent.display().to_string();
    let tw_args: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--state-dir".into(),
        work.join("state").display().to_string(),
        "scan".into(),
        "network".into(),
        cidr.clone(),
        "--ports".into(),
        SWEEP_PORTS.into(),
        "--format".into(),
        "json".into(),
    ];
    let p0 = printer_record(&lab);
    eprintln!("==> trustwatch-agent scan network {cidr}");
    let tw_run = run_timed(&lab, &agent, &tw_args, &[("RUST_LOG", "info")])?;
    settle();
    let p_tw = printer_record(&lab);
    std::fs::write(work.join("trustwatch.json"), &tw_run.stdout)?;
    std::fs::write(work.join("trustwatch.log"), &tw_run.stderr)?;
    let tw_doc: Value =
        serde_json::from_slice(&tw_run.stdout).context("trustwatch's output is not JSON")?;
    eprintln!("    {} s", secs(tw_run.took));

    // Where trustwatch's time goes: the same sweep of the lab's hosts
    // alone (no dead address).
    let mut live_args = tw_args.clone();
    let at = live_args
        .iter()
        .position(|a| *a == cidr)
        .context("the range argument")?;
    live_args.splice(at..=at, HOSTS.iter().map(|h| ip(h.octet)));
    eprintln!(
        "==> trustwatch-agent scan network <the {} lab hosts>",
        HOSTS.len()
    );
    let tw_live = run_timed(&lab, &agent, &live_args, &[])?;
    settle();
    let p1 = printer_record(&lab);
    eprintln!("    {} s", secs(tw_live.took));

    // nmap, the issue's command.
    let tcp: Vec<&str> = SWEEP_PORTS
        .split(',')
        .filter(|p| !p.ends_with("/udp"))
        .collect();
    let udp: Vec<&str> = SWEEP_PORTS
        .split(',')
        .filter_map(|p| p.strip_suffix("/udp"))
        .collect();
    let port_spec = format!("T:{},U:{}", tcp.join(","), udp.join(","));
    let nmap_args = |pn: bool, stem: &str| -> Vec<String> {
        let mut v: Vec<String> = vec!["-n".into()];
        if pn {
            v.push("-Pn".into());
        }
        v.extend(
            [
                "-sT",
                "-sU",
                "-sV",
                "--script",
                NMAP_SCRIPTS,
                "-p",
                &port_spec,
                "-oX",
            ]
            .map(String::from),
        );
        v.push(work.join(format!("{stem}.xml")).display().to_string());
        v.push("-oN".into());
        v.push(work.join(format!("{stem}.txt")).display().to_string());
        v.push(cidr.clone());
        v
    };
    eprintln!("==> nmap -Pn … {cidr}");
    let nm_run = run_timed(&lab, "nmap", &nmap_args(true, "nmap"), &[])?;
    settle();
    let p2 = printer_record(&lab);
    eprintln!("    {} s", secs(nm_run.took));
    let nm_xml = std::fs::read_to_string(work.join("nmap.xml")).context("nmap.xml")?;
    let nm = parse_nmap(&nm_xml);

    // nmap with its own host discovery (ARP on this LAN), for fairness.
    let disc = if args.discovery_run {
        eprintln!("==> nmap (host discovery) … {cidr}");
        let r = run_timed(&lab, "nmap", &nmap_args(false, "nmap-discovery"), &[])?;
        settle();
        eprintln!("    {} s", secs(r.took));
        let x = std::fs::read_to_string(work.join("nmap-discovery.xml"))
            .context("nmap-discovery.xml")?;
        Some((r.took, parse_nmap(&x), printer_record(&lab)))
    } else {
        None
    };
    let m = Measured {
        date: date.date(),
        machine: format!(
            "{}; {} cores, {}",
            first_line("uname", &["-srm"]),
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model()
        ),
        load: (load_before, loadavg()),
        subnet: args.subnet,
        agent_version: first_line(&agent, &["--version"]),
        nmap_version: first_line("nmap", &["--version"]).replace(" ( https://nmap.org )", ""),
        nmap_command: nmap_args(true, "nmap")
            .iter()
            .map(|a| {
                if Path::new(a).starts_with(&work) {
                    Path::new(a)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        tw_took: tw_run.took,
        tw_live_took: tw_live.took,
        nmap_took: nm_run.took,
        tw: parse_trustwatch(&tw_doc),
        nmap: nm,
        discovery: disc.map(|(d, hosts, p3)| Discovery {
            took: d,
            hosts,
            printer_bytes: p3.1.saturating_sub(p2.1),
        }),
        printer: Printer {
            tw_connections: p_tw.0.saturating_sub(p0.0),
            tw_bytes: p1.1.saturating_sub(p0.1),
            nmap_connections: p2.0.saturating_sub(p1.0),
            nmap_bytes: p2.1.saturating_sub(p1.1),
        },
    };
    // Drop the lab (daemons, then namespaces) before writing.
    drop(lab);
    let (text, _) = render(&m);
    println!("{text}");
    if let Some(doc) = &args.doc {
        write_block(doc, &text)?;
        eprintln!("==> wrote the bench-network block of {}", doc.display());
    }
    eprintln!(
        "==> outputs in {}",
        if args.work.is_some() {
            work.display().to_string()
        } else {
            "a temporary directory (removed; pass --work DIR to keep them)".into()
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan -->
<nmaprun scanner="nmap">
<hosthint><status state="up"/><address addr="198.18.9.99" addrtype="ipv4"/></hosthint>
<host starttime="1"><status state="up" reason="user-set"/>
<address addr="198.18.9.10" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="445"><state state="open" reason="syn-ack"/><service name="netbios-ssn" product="Samba smbd" version="4.6.2" method="probed" conf="10"/></port>
<port protocol="tcp" portid="3389"><state state="open"/><service name="ms-wbt-server"/><script id="rdp-enum-encryption" output="&#xa;  Security layer&#xa;    Native RDP: SUCCESS&#xa;  RDP Encryption level: High&#xa;    128-bit RC4: SUCCESS&#xa;"/></port>
<port protocol="udp" portid="161"><state state="open"/><service name="snmp"/><script id="snmp-info" output="&#xa;  enterprise: net-snmp&#xa;  engineIDFormat: unknown&#xa;"><elem key="enterprise">net-snmp</elem></script></port>
</ports>
<hostscript><script id="smb-protocols" output="&#xa;  dialects: &#xa;    NT LM 0.12 (SMBv1) [dangerous, but default]&#xa;    2:0:2&#xa;"><table key="dialects"><elem>NT LM 0.12 (SMBv1) [dangerous, but default]</elem></table></script><script id="smb2-security-mode" output="&#xa;  311: &#xa;    Message signing enabled but not required"/></hostscript>
</host>
<host><status state="up"/><address addr="198.18.9.23" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="3389"><state state="open"/><service name="ms-wbt-server"/><script id="rdp-enum-encryption" output="&#xa;  Security layer&#xa;    CredSSP (NLA): SUCCESS&#xa;    CredSSP with Early User Auth: SUCCESS&#xa;"/></port></ports>
</host>
<host><status state="up"/><address addr="198.18.9.24" addrtype="ipv4"/><ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh" product="OpenSSH" version="3.9p1" extrainfo="protocol 1.99" ostype="Linux"/></port></ports></host>
</nmaprun>
"#;

    #[test]
    fn nmap_xml_gives_ports_services_and_port_and_host_scripts() {
        let hosts = parse_nmap(SAMPLE);
        assert_eq!(
            hosts.keys().collect::<Vec<_>>(),
            vec!["198.18.9.10", "198.18.9.23", "198.18.9.24"],
            "the hosthint is not a host"
        );
        let h = &hosts["198.18.9.10"];
        let smb = h.open(445, "tcp").expect("445");
        assert_eq!(smb.svc("product"), "Samba smbd");
        assert_eq!(smb.describe(), "netbios-ssn Samba smbd 4.6.2");
        assert!(h
            .script("smb-protocols")
            .is_some_and(|o| o.contains("NT LM 0.12 (SMBv1)")));
        assert!(h
            .script("smb2-security-mode")
            .is_some_and(|o| o.ends_with("Message signing enabled but not required")));
        assert!(h.port(161, "udp").is_some_and(|p| p
            .scripts
            .get("snmp-info")
            .is_some_and(|o| o.contains("net-snmp"))));
        assert_eq!(
            hosts["198.18.9.24"].open(22, "tcp").map(NmapPort::describe),
            Some("ssh OpenSSH 3.9p1 (protocol 1.99) ostype Linux".to_owned())
        );
    }

    #[test]
    fn a_truncated_or_hostile_nmap_document_yields_what_came_before_and_never_panics() {
        let cut = &SAMPLE[..SAMPLE.find("<port protocol=\"udp\"").expect("udp port")];
        let hosts = parse_nmap(cut);
        assert!(hosts.is_empty(), "a host without its end tag is not kept");
        assert_eq!(xml::tags("<a b=\"c>d\"/><e").len(), 1);
        assert_eq!(xml::tags("<a b=\"c>d\"/><e")[0].attr("b"), Some("c>d"));
        for junk in [
            "<",
            "<<<>>>",
            "<a b=>",
            "<a b='x",
            "&#xffffffff;",
            "<!--",
            "<?",
            "</>",
            "<a/ b>",
        ] {
            let _ = xml::tags(junk);
            let _ = parse_nmap(junk);
            let _ = xml::unescape(junk);
        }
    }

    #[test]
    fn entities_are_decoded_and_malformed_ones_kept() {
        assert_eq!(
            xml::unescape("a&amp;b&lt;c&gt;&quot;&apos;&#xa;&#65;"),
            "a&b<c>\"'\nA"
        );
        assert_eq!(
            xml::unescape("x & y &bogus; &#xzz;"),
            "x & y &bogus; &#xzz;"
        );
    }

    fn ip(o: u8) -> String {
        format!("198.18.9.{o}")
    }

    #[test]
    fn rdp_verdicts_read_the_security_layers_nmap_reports_as_success() {
        let nm = parse_nmap(SAMPLE);
        // .10 of the sample has Native RDP; pretend it is .15 (xrdp).
        let mut moved = BTreeMap::new();
        moved.insert(ip(15), nm["198.18.9.10"].clone());
        moved.insert(ip(23), nm["198.18.9.23"].clone());
        let rows = judge(&ip, &BTreeMap::new(), &moved, (0, 0));
        let row = |h: &str| rows.iter().find(|r| r.host.starts_with(h)).expect(h);
        assert_eq!(row(".15").nmap.mark, Mark::Yes, "{:?}", row(".15"));
        assert_eq!(row(".23").nmap.mark, Mark::Yes, "{:?}", row(".23"));
        assert_eq!(row(".15").tw.mark, Mark::No, "no trustwatch finding given");
        // An RDP server reporting no SUCCESS at all leaves NLA undetermined.
        let mut silent = nm["198.18.9.23"].clone();
        silent.ports[0]
            .scripts
            .insert("rdp-enum-encryption".into(), "\n  Security layer\n".into());
        moved.insert(ip(23), silent);
        let rows = judge(&ip, &BTreeMap::new(), &moved, (0, 0));
        let r = rows
            .iter()
            .find(|r| r.host.starts_with(".23"))
            .expect(".23");
        assert_eq!(r.nmap.mark, Mark::Partial);
        assert_eq!(r.nmap.note, Some(NOTE_NLA_STANDIN));
    }

    #[test]
    fn nmap_listing_credssp_on_a_server_selecting_standard_rdp_is_a_wrong_check() {
        let mut nm = parse_nmap(SAMPLE);
        let mut xrdp = nm.remove("198.18.9.10").expect("host");
        xrdp.ports[1].scripts.insert(
            "rdp-enum-encryption".into(),
            "\n  Security layer\n    CredSSP (NLA): SUCCESS\n    Native RDP: SUCCESS\n    SSL: SUCCESS\n"
                .into(),
        );
        let mut m = BTreeMap::new();
        m.insert(ip(15), xrdp);
        let doc = serde_json::json!({
            "assets": [{"kind": "device", "id": ip(15), "services": [{"port": 3389, "details": {
                "tls_only": {"result": "selected", "protocol": "rdp"}}}]}],
            "findings": [{"asset": ip(15), "code": "legacy.rdp.no_nla", "subject": "3389/tcp"}]
        });
        let rows = judge(&ip, &parse_trustwatch(&doc), &m, (0, 0));
        let flaw = rows
            .iter()
            .find(|r| r.what == "RDP without NLA")
            .expect("flaw row");
        assert_eq!((flaw.tw.mark, flaw.nmap.mark), (Mark::Yes, Mark::Yes));
        assert!(flaw.nmap.basis.contains("Native RDP: SUCCESS"));
        assert!(!flaw.nmap.basis.contains("CredSSP"), "{}", flaw.nmap.basis);
        let check = rows
            .iter()
            .find(|r| r.what == "offers neither TLS nor NLA")
            .expect("check row");
        assert_eq!(check.tw.mark, Mark::Yes);
        assert_eq!(check.nmap.mark, Mark::No);
        assert!(check.nmap.basis.contains("CredSSP (NLA): SUCCESS"));
        assert_eq!(check.nmap.note, Some(NOTE_RDP_SUCCESS));
    }

    #[test]
    fn samba_named_windows_by_nmap_is_a_wrong_identification() {
        let mut nm = parse_nmap(SAMPLE);
        let mut h = nm.remove("198.18.9.10").expect("host");
        let rows = |h: &NmapHost| {
            let mut m = BTreeMap::new();
            m.insert(ip(10), h.clone());
            judge(&ip, &BTreeMap::new(), &m, (0, 0))
                .into_iter()
                .find(|r| r.what.starts_with("is Samba"))
                .expect("row")
        };
        assert_eq!(rows(&h).nmap.mark, Mark::Yes);
        h.ports[0].service.insert(
            "product".into(),
            "Microsoft Windows 7 - 10 microsoft-ds".into(),
        );
        assert_eq!(rows(&h).nmap.mark, Mark::No);
    }

    #[test]
    fn trustwatch_findings_are_read_per_device() {
        let doc = serde_json::json!({
            "assets": [{"kind": "device", "id": ip(20), "identified_as": [{"identifies": "Windows 7"}]}],
            "findings": [
                {"asset": ip(20), "code": "legacy.smb.v1", "subject": "445/tcp", "evidence": {}},
                {"asset": ip(20), "code": "legacy.os.eol", "evidence": {"evidence": "NTLMSSP 6.1.7601", "eol_date": "2020-01-14"}}
            ]
        });
        let tw = parse_trustwatch(&doc);
        let rows = judge(&ip, &tw, &BTreeMap::new(), (0, 0));
        let r = |what: &str| {
            rows.iter()
                .find(|r| r.host.starts_with(".20") && r.what.contains(what))
                .expect(what)
                .clone()
        };
        assert_eq!(r("SMBv1").tw.mark, Mark::Yes);
        assert_eq!(r("signing").tw.mark, Mark::No);
        let eol = r("Windows 7");
        assert_eq!(eol.tw.mark, Mark::Yes);
        assert!(eol.tw.basis.contains("6.1.7601") && eol.tw.basis.contains("2020-01-14"));
        assert_eq!(eol.nmap.mark, Mark::No, "nmap said nothing here");
        assert_eq!(eol.nmap.note, Some(NOTE_WIN7_STANDIN));
    }

    /// A trustwatch document with every planted flaw of the lab found
    /// (on 198.18.9.0/24), less `skip`.
    fn all_found(skip: &[(u8, &str)]) -> BTreeMap<String, TwHost> {
        let planted = [
            (10u8, "legacy.smb.v1"),
            (10, "legacy.smb.signing_not_required"),
            (12, "legacy.telnet"),
            (13, "legacy.ftp.cleartext"),
            (13, "legacy.ftp.anonymous"),
            (14, "legacy.snmp.default_community"),
            (15, "legacy.rdp.no_nla"),
            (20, "legacy.smb.v1"),
            (20, "legacy.smb.signing_not_required"),
            (20, "legacy.os.eol"),
            (21, "legacy.ssh.outdated"),
            (22, "legacy.os.eol"),
        ];
        let findings: Vec<Value> = planted
            .iter()
            .filter(|p| !skip.contains(p))
            .map(|(o, c)| serde_json::json!({"asset": ip(*o), "code": c, "evidence": {}}))
            .collect();
        let doc = serde_json::json!({
            "assets": [
                {"kind": "device", "id": ip(10), "identified_as": [{"identifies": "Samba"}]},
                {"kind": "device", "id": ip(15), "services": [{"port": 3389, "details": {
                    "tls_only": {"result": "selected", "protocol": "rdp"}}}]}
            ],
            "findings": findings
        });
        parse_trustwatch(&doc)
    }

    fn measured(tw_secs: u64, nmap_secs: u64, tw: BTreeMap<String, TwHost>) -> Measured {
        Measured {
            date: time::macros::date!(2026 - 11 - 26),
            machine: "test".into(),
            load: ("0".into(), "0".into()),
            subnet: 9,
            agent_version: "trustwatch-agent 0".into(),
            nmap_version: "Nmap 0".into(),
            nmap_command: "-n -Pn".into(),
            tw_took: Duration::from_secs(tw_secs),
            tw_live_took: Duration::from_secs(1),
            nmap_took: Duration::from_secs(nmap_secs),
            tw,
            nmap: parse_nmap(SAMPLE),
            discovery: None,
            printer: Printer::default(),
        }
    }

    #[test]
    fn the_target_is_met_only_with_every_flaw_nmap_shows_in_a_fifth_of_its_time() {
        let (text, met) = render(&measured(10, 60, all_found(&[])));
        assert!(met, "{text}");
        assert!(text.contains("**met**") && text.contains("6.0×"), "{text}");
        assert!(
            text.contains("Flaws: 12 planted; trustwatch reported 12;"),
            "{text}"
        );
        let (text, met) = render(&measured(10, 40, all_found(&[])));
        assert!(
            !met && text.contains("**not met**"),
            "4× is too slow:\n{text}"
        );
        // nmap's sample shows SMBv1 on .10: trustwatch must too.
        let (text, met) = render(&measured(1, 60, all_found(&[(10, "legacy.smb.v1")])));
        assert!(!met, "{text}");
        assert!(
            text.contains("Flaws nmap showed (✔ or ~) that trustwatch missed: .10 smb1 SMBv1;"),
            "{text}"
        );
        // A flaw nmap did not show is not part of the target (but is counted).
        let (text, met) = render(&measured(1, 60, all_found(&[(21, "legacy.ssh.outdated")])));
        assert!(met, "{text}");
        assert!(text.contains("trustwatch reported 11;"), "{text}");
    }

    #[test]
    fn only_the_marked_block_is_replaced() {
        let text =
            format!("# B\n\n{BEGIN}\nold\n{END}\n\n<!-- other:begin -->\nx\n<!-- other:end -->\n");
        let new = replace_block(&text, "new\ntext\n").expect("block");
        assert_eq!(
            new,
            format!(
                "# B\n\n{BEGIN}\nnew\ntext\n{END}\n\n<!-- other:begin -->\nx\n<!-- other:end -->\n"
            )
        );
        assert!(replace_block("no markers", "x").is_none());
        assert!(replace_block(&format!("{END} {BEGIN}"), "x").is_none());
    }
}
