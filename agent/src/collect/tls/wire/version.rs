//! Protocol versions and their wire numbers.

use std::fmt;

/// A protocol version the collector can offer and detect.
///
/// Ordered from oldest to newest, so `v >= ProtocolVersion::Tls12` reads as
/// "TLS 1.2 or later".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// SSL 2.0 (wire version 0x0002).
    Ssl2,
    /// SSL 3.0 (0x0300).
    Ssl3,
    /// TLS 1.0 (0x0301).
    Tls10,
    /// TLS 1.1 (0x0302).
    Tls11,
    /// TLS 1.2 (0x0303).
    Tls12,
    /// TLS 1.3 (0x0304, negotiated through `supported_versions`).
    Tls13,
}

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [ProtocolVersion; 6] = [
        ProtocolVersion::Ssl2,
        ProtocolVersion::Ssl3,
        ProtocolVersion::Tls10,
        ProtocolVersion::Tls11,
        ProtocolVersion::Tls12,
        ProtocolVersion::Tls13,
    ];

    /// The version number as it appears on the wire.
    pub fn wire(self) -> u16 {
        match self {
            ProtocolVersion::Ssl2 => 0x0002,
            ProtocolVersion::Ssl3 => 0x0300,
            ProtocolVersion::Tls10 => 0x0301,
            ProtocolVersion::Tls11 => 0x0302,
            ProtocolVersion::Tls12 => 0x0303,
            ProtocolVersion::Tls13 => 0x0304,
        }
    }

    /// The version for a wire number, if it is one of the six.
    pub fn from_wire(v: u16) -> Option<ProtocolVersion> {
        ProtocolVersion::ALL.into_iter().find(|p| p.wire() == v)
    }

    /// The usual name: `SSLv2`, `SSLv3`, `TLSv1.0`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolVersion::Ssl2 => "SSLv2",
            ProtocolVersion::Ssl3 => "SSLv3",
            ProtocolVersion::Tls10 => "TLSv1.0",
            ProtocolVersion::Tls11 => "TLSv1.1",
            ProtocolVersion::Tls12 => "TLSv1.2",
            ProtocolVersion::Tls13 => "TLSv1.3",
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_round_trip_and_unknown_numbers_are_refused() {
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::from_wire(v.wire()), Some(v));
        }
        assert_eq!(ProtocolVersion::Tls12.wire(), 0x0303);
        assert_eq!(ProtocolVersion::from_wire(0x0305), None);
        assert_eq!(ProtocolVersion::from_wire(0x7f12), None);
        assert!(ProtocolVersion::Tls13 > ProtocolVersion::Tls12);
        assert_eq!(ProtocolVersion::Tls10.to_string(), "TLSv1.0");
    }
}
