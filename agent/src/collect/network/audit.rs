//! The audit trail of one sweep: per kind of traffic, what was sent and to
//! how many hosts, logged at the end of the run as one `info` line per kind
//! (tracing target `trustwatch::audit`), so an operator can answer "what
//! did the scanner send to my devices?".

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;

use super::probe::ProbeKind;

/// A kind of traffic the collector sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Traffic {
    /// TCP connect and close, nothing written (the sweep).
    Connect,
    /// A connection to a printer port: connect and close, nothing written.
    Printer,
    /// One TLS ClientHello, to learn whether an unknown port speaks TLS.
    TlsHello,
    /// A protocol probe.
    Probe(ProbeKind),
    /// Endpoints handed to the TLS collector (which logs its own traffic).
    TlsAssessment,
}

impl Traffic {
    /// What this traffic sends, for people.
    pub fn sends(&self) -> &'static str {
        match self {
            Traffic::Connect => "TCP connect then close, no payload",
            Traffic::Printer => "TCP connect then close on a printer port, no payload",
            Traffic::TlsHello => "one TLS 1.2 ClientHello, then close",
            Traffic::TlsAssessment => "handed to the TLS collector (TLS handshakes only)",
            Traffic::Probe(k) => match k {
                ProbeKind::Smb => {
                    "SMB1 NEGOTIATE (NT LM 0.12 only), SMB2 NEGOTIATE, NTLMSSP NEGOTIATE in SESSION_SETUP; no credentials"
                }
                ProbeKind::Telnet => "telnet option refusals (WONT/DONT) only; no login",
                ProbeKind::Ftp => "FEAT, maybe AUTH TLS, USER anonymous, PASS, QUIT",
                ProbeKind::Snmp => "SNMPv1 and v2c GetRequest sysDescr.0, community public",
                ProbeKind::Rdp => "two X.224 Connection Requests (TLS only; standard RDP)",
                ProbeKind::Ssh => "nothing (reads the identification line)",
                ProbeKind::Http => "HEAD / with Host",
                ProbeKind::Dicom => "A-ASSOCIATE-RQ for Verification, then A-RELEASE-RQ",
                ProbeKind::Mllp => "TCP connect then close, no HL7 message",
            },
        }
    }

    fn name(&self) -> String {
        match self {
            Traffic::Connect => "sweep".into(),
            Traffic::Printer => "printer".into(),
            Traffic::TlsHello => "tls-hello".into(),
            Traffic::TlsAssessment => "tls-assessment".into(),
            Traffic::Probe(k) => format!("probe {}", k.as_str()),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    hosts: BTreeSet<IpAddr>,
    times: u64,
}

/// Counts of what was sent to whom.
#[derive(Debug, Default)]
pub struct Audit {
    tallies: Mutex<BTreeMap<Traffic, Tally>>,
}

impl Audit {
    /// Records one send of `traffic` to `host`.
    pub fn record(&self, traffic: Traffic, host: IpAddr) {
        // A poisoned lock means a panicking task; the counts stay usable.
        let mut t = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let e = t.entry(traffic).or_default();
        e.hosts.insert(host);
        e.times += 1;
    }

    /// One line per kind of traffic: `(kind, hosts, times, what it sends)`.
    pub fn lines(&self) -> Vec<String> {
        let t = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        t.iter()
            .map(|(k, v)| {
                format!(
                    "audit: {}: {} time(s) to {} host(s): {}",
                    k.name(),
                    v.times,
                    v.hosts.len(),
                    k.sends()
                )
            })
            .collect()
    }

    /// Logs [`Audit::lines`].
    pub fn log(&self) {
        for line in self.lines() {
            tracing::info!(target: "trustwatch::audit", "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_sends_and_distinct_hosts_per_kind() {
        let a = Audit::default();
        let h1: IpAddr = [10, 0, 0, 1].into();
        let h2: IpAddr = [10, 0, 0, 2].into();
        a.record(Traffic::Connect, h1);
        a.record(Traffic::Connect, h1);
        a.record(Traffic::Connect, h2);
        a.record(Traffic::Probe(ProbeKind::Smb), h2);
        let lines = a.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "audit: sweep: 3 time(s) to 2 host(s): TCP connect then close, no payload"
        );
        assert!(lines[1].starts_with("audit: probe smb: 1 time(s) to 1 host(s): SMB1 NEGOTIATE"));
    }
}
