//! Port lists (`--ports` and the config) and the printer-port rule.
//!
//! Format of a list: items separated by commas, blanks around items ignored.
//! An item is `PORT` or `FIRST-LAST` (inclusive, FIRST <= LAST), optionally
//! followed by `/tcp` or `/udp` (default tcp). Ports are 1..=65535. Example:
//! `22,80,8000-8100,161/udp`. An empty list, an empty item, port 0, a
//! reversed range or an unknown protocol is an error that names the item.
//!
//! Invariants: a [`PortList`] holds, per transport, sorted, disjoint,
//! non-adjacent inclusive ranges (so its size is bounded by the input, not
//! by the number of ports), and [`PortList::to_string`] gives a list that
//! parses back to the same value.
//!
//! Printer rule: ports 9100-9107 (raw/JetDirect) and 515 (LPD) may be
//! connected to, never written to: printers print whatever arrives there.
//! [`is_printer_port`] is the one place that rule is written down; the
//! probes' writers consult it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::probe::ProbeKind;

/// The ports the network collector sweeps when none are configured (the
/// legacy services of DESIGN §2 and the usual TLS ports).
pub const DEFAULT_PORTS: &str = "21,22,23,80,104,139,443,445,2575,3389,8080,8443,11112,161/udp";

/// Printer ports: connect only, never a byte written.
pub const PRINTER_PORTS: [std::ops::RangeInclusive<u16>; 2] = [9100..=9107, 515..=515];

/// Largest number of items one list may have (bounds the work of parsing).
const MAX_ITEMS: usize = 4096;

/// True when `port` is a printer port: it may be connected to, never written
/// to (whatever the transport).
pub fn is_printer_port(port: u16) -> bool {
    PRINTER_PORTS.iter().any(|r| r.contains(&port))
}

/// Transport of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Why a port list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortListError {
    #[error("empty port list")]
    Empty,
    #[error("empty item in port list (two commas, or a trailing comma)")]
    EmptyItem,
    #[error("{item:?}: not a port number (1-65535)")]
    BadPort { item: String },
    #[error("{item:?}: range end is below its start")]
    Reversed { item: String },
    #[error("{item:?}: unknown protocol (expected /tcp or /udp)")]
    BadProtocol { item: String },
    #[error("port list has more than {max} items")]
    TooManyItems { max: usize },
}

/// A set of TCP and UDP ports, kept as ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortList {
    tcp: Vec<(u16, u16)>,
    udp: Vec<(u16, u16)>,
}

impl PortList {
    /// The default sweep list ([`DEFAULT_PORTS`]).
    pub fn default_sweep() -> PortList {
        // DEFAULT_PORTS is a constant whose parse is checked by a test.
        DEFAULT_PORTS.parse().unwrap_or_default()
    }

    /// Whether `port`/`transport` is in the list.
    pub fn contains(&self, port: u16, transport: Transport) -> bool {
        self.ranges(transport)
            .iter()
            .any(|&(a, b)| (a..=b).contains(&port))
    }

    /// Number of (port, transport) pairs.
    pub fn len(&self) -> usize {
        self.tcp
            .iter()
            .chain(&self.udp)
            .map(|&(a, b)| usize::from(b - a) + 1)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }

    /// The ports of one transport, ascending.
    pub fn iter(&self, transport: Transport) -> impl Iterator<Item = u16> + '_ {
        self.ranges(transport).iter().flat_map(|&(a, b)| a..=b)
    }

    /// The ranges of one transport: sorted, disjoint, non-adjacent.
    pub fn ranges(&self, transport: Transport) -> &[(u16, u16)] {
        match transport {
            Transport::Tcp => &self.tcp,
            Transport::Udp => &self.udp,
        }
    }

    fn insert(&mut self, transport: Transport, first: u16, last: u16) {
        let ranges = match transport {
            Transport::Tcp => &mut self.tcp,
            Transport::Udp => &mut self.udp,
        };
        ranges.push((first, last));
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for &(a, b) in ranges.iter() {
            match merged.last_mut() {
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ranges = merged;
    }
}

/// Parses a port list (see the module doc for the format).
pub fn parse_port_list(text: &str) -> Result<PortList, PortListError> {
    if text.trim().is_empty() {
        return Err(PortListError::Empty);
    }
    let mut list = PortList::default();
    for (count, raw) in text.split(',').enumerate() {
        if count >= MAX_ITEMS {
            return Err(PortListError::TooManyItems { max: MAX_ITEMS });
        }
        let item = raw.trim();
        if item.is_empty() {
            return Err(PortListError::EmptyItem);
        }
        let (range, transport) = match item.split_once('/') {
            None => (item, Transport::Tcp),
            Some((range, proto)) => {
                let transport = match proto.trim().to_ascii_lowercase().as_str() {
                    "tcp" => Transport::Tcp,
                    "udp" => Transport::Udp,
                    _ => {
                        return Err(PortListError::BadProtocol {
                            item: item.to_owned(),
                        })
                    }
                };
                (range.trim(), transport)
            }
        };
        let (first, last) = match range.split_once('-') {
            None => {
                let p = port(range, item)?;
                (p, p)
            }
            Some((a, b)) => (port(a.trim(), item)?, port(b.trim(), item)?),
        };
        if last < first {
            return Err(PortListError::Reversed {
                item: item.to_owned(),
            });
        }
        list.insert(transport, first, last);
    }
    Ok(list)
}

fn port(text: &str, item: &str) -> Result<u16, PortListError> {
    let bad = || PortListError::BadPort {
        item: item.to_owned(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

impl FromStr for PortList {
    type Err = PortListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_port_list(s)
    }
}

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for transport in [Transport::Tcp, Transport::Udp] {
            for &(a, b) in self.ranges(transport) {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                if a == b {
                    write!(f, "{a}")?;
                } else {
                    write!(f, "{a}-{b}")?;
                }
                if transport == Transport::Udp {
                    f.write_str("/udp")?;
                }
            }
        }
        Ok(())
    }
}

impl Serialize for PortList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_port_list(&s).map_err(serde::de::Error::custom)
    }
}

/// What the collector may do on a port it found open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "probe")]
pub enum PortAction {
    /// Run this protocol probe.
    Probe(ProbeKind),
    /// Report the port open; send nothing (printer ports).
    ConnectOnly,
    /// No probe of this module speaks here (the TLS collector may).
    Unknown,
}

/// The probe for a well-known port. Printer ports are always
/// [`PortAction::ConnectOnly`], whatever else might listen there.
pub fn action_for(port: u16, transport: Transport) -> PortAction {
    if is_printer_port(port) {
        return PortAction::ConnectOnly;
    }
    let kind = match (transport, port) {
        (Transport::Tcp, 139 | 445) => ProbeKind::Smb,
        (Transport::Tcp, 23) => ProbeKind::Telnet,
        (Transport::Tcp, 21) => ProbeKind::Ftp,
        (Transport::Udp, 161) => ProbeKind::Snmp,
        (Transport::Tcp, 3389) => ProbeKind::Rdp,
        (Transport::Tcp, 22) => ProbeKind::Ssh,
        (Transport::Tcp, 80 | 8000 | 8008 | 8080 | 8081) => ProbeKind::Http,
        (Transport::Tcp, 104 | 11112) => ProbeKind::Dicom,
        (Transport::Tcp, 2575) => ProbeKind::Mllp,
        _ => return PortAction::Unknown,
    };
    PortAction::Probe(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_design_example() {
        let l = parse_port_list("22,80,8000-8100,161/udp").expect("valid");
        assert_eq!(
            l.ranges(Transport::Tcp),
            &[(22, 22), (80, 80), (8000, 8100)]
        );
        assert_eq!(l.ranges(Transport::Udp), &[(161, 161)]);
        assert_eq!(l.len(), 1 + 1 + 101 + 1);
        assert!(l.contains(8050, Transport::Tcp));
        assert!(!l.contains(8050, Transport::Udp));
        assert!(!l.contains(161, Transport::Tcp));
        assert_eq!(l.to_string(), "22,80,8000-8100,161/udp");
    }

    #[test]
    fn merges_overlapping_and_adjacent_ranges_and_accepts_blanks_and_tcp_suffix() {
        let l = parse_port_list(" 10-20 , 15-25,26/TCP,5, 30-30/tcp ").expect("valid");
        assert_eq!(l.ranges(Transport::Tcp), &[(5, 5), (10, 26), (30, 30)]);
        assert_eq!(l.to_string(), "5,10-26,30");
    }

    #[test]
    fn full_range_is_accepted_without_allocating_per_port() {
        let l = parse_port_list("1-65535,1-65535/udp").expect("valid");
        assert_eq!(l.len(), 2 * 65535);
        assert_eq!(l.ranges(Transport::Tcp).len(), 1);
        assert_eq!(l.iter(Transport::Udp).last(), Some(65535));
    }

    #[test]
    fn refuses_bad_lists_naming_the_item() {
        assert_eq!(parse_port_list(""), Err(PortListError::Empty));
        assert_eq!(parse_port_list("  "), Err(PortListError::Empty));
        assert_eq!(parse_port_list("22,,80"), Err(PortListError::EmptyItem));
        assert_eq!(parse_port_list("22,"), Err(PortListError::EmptyItem));
        for bad in [
            "0",
            "65536",
            "-1",
            "+22",
            "2 2",
            "ssh",
            "1-",
            "-5",
            "99999999999",
        ] {
            assert!(
                matches!(parse_port_list(bad), Err(PortListError::BadPort { .. })),
                "{bad} accepted"
            );
        }
        assert_eq!(
            parse_port_list("100-90"),
            Err(PortListError::Reversed {
                item: "100-90".into()
            })
        );
        assert_eq!(
            parse_port_list("161/sctp"),
            Err(PortListError::BadProtocol {
                item: "161/sctp".into()
            })
        );
        let many = vec!["1"; MAX_ITEMS + 1].join(",");
        assert!(matches!(
            parse_port_list(&many),
            Err(PortListError::TooManyItems { .. })
        ));
    }

    #[test]
    fn printer_ports_are_9100_to_9107_and_515_only() {
        for p in 9100..=9107 {
            assert!(is_printer_port(p), "{p}");
        }
        assert!(is_printer_port(515));
        for p in [9099, 9108, 514, 516, 631, 80, 445] {
            assert!(!is_printer_port(p), "{p}");
        }
    }

    #[test]
    fn printer_ports_are_connect_only_even_with_a_known_protocol() {
        assert_eq!(action_for(9100, Transport::Tcp), PortAction::ConnectOnly);
        assert_eq!(action_for(515, Transport::Tcp), PortAction::ConnectOnly);
        assert_eq!(action_for(515, Transport::Udp), PortAction::ConnectOnly);
        assert_eq!(
            action_for(445, Transport::Tcp),
            PortAction::Probe(ProbeKind::Smb)
        );
        assert_eq!(
            action_for(161, Transport::Udp),
            PortAction::Probe(ProbeKind::Snmp)
        );
        assert_eq!(action_for(161, Transport::Tcp), PortAction::Unknown);
        assert_eq!(
            action_for(2575, Transport::Tcp),
            PortAction::Probe(ProbeKind::Mllp)
        );
    }

    #[test]
    fn default_list_parses_and_has_every_legacy_port() {
        let l = PortList::default_sweep();
        assert!(!l.is_empty());
        for p in [
            445, 139, 23, 21, 3389, 22, 80, 443, 8080, 8443, 104, 11112, 2575,
        ] {
            assert!(l.contains(p, Transport::Tcp), "{p}");
        }
        assert!(l.contains(161, Transport::Udp));
        assert!(!l.iter(Transport::Tcp).any(is_printer_port));
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let l: PortList = serde_json::from_str("\"22,161/udp\"").expect("valid");
        assert_eq!(serde_json::to_string(&l).expect("ser"), "\"22,161/udp\"");
        assert!(serde_json::from_str::<PortList>("\"0\"").is_err());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errors_and_valid_lists_round_trip(s in ".{0,64}") {
            if let Ok(l) = parse_port_list(&s) {
                let again = parse_port_list(&l.to_string()).expect("display parses");
                prop_assert_eq!(again, l);
            }
        }

        #[test]
        fn generated_lists_contain_exactly_their_ports(
            items in proptest::collection::vec((1u16..2000, 0u16..50, any::<bool>()), 1..20)
        ) {
            let text: Vec<String> = items
                .iter()
                .map(|&(a, w, udp)| {
                    let b = a.saturating_add(w);
                    format!("{a}-{b}{}", if udp { "/udp" } else { "" })
                })
                .collect();
            let l = parse_port_list(&text.join(",")).expect("valid");
            for p in 1u16..2100 {
                for (t, udp) in [(Transport::Tcp, false), (Transport::Udp, true)] {
                    let want = items
                        .iter()
                        .any(|&(a, w, u)| u == udp && (a..=a.saturating_add(w)).contains(&p));
                    prop_assert_eq!(l.contains(p, t), want);
                }
            }
        }
    }
}
