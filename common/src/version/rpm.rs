//! RPM versions: `[epoch:]version[-release]` (an "EVR").
//!
//! Format and invariants of a parsed [`RpmVersion`], as rpm's `parseEVR`
//! splits it:
//! - the string is neither empty nor holds a NUL byte; nothing else is
//!   refused (rpm itself refuses nothing);
//! - the epoch is the run of leading ASCII digits when a `:` follows it; an
//!   empty epoch (`:1.0`) is epoch `0`, as is a missing one. A `:` anywhere
//!   else belongs to the version;
//! - the release is what follows the **last** `-` after the epoch; it may be
//!   empty (`1.0-`), and a missing release sorts before any present one;
//! - the version is what remains (possibly empty).
//!
//! Ordering (rpm's `rpmverCmp`): epoch, version, release, each with
//! [`rpmvercmp`]; see the parent module for the segment rules and sources.

use std::cmp::Ordering;
use std::fmt;

use super::{cmp_decimal, nul_offset, split_run, Scheme, VersionError};

/// A parsed RPM EVR, borrowing the string it was parsed from.
///
/// `Eq` and `Ord` are rpm's: `1.0-1`, `0:1.0-1` and `1_0-01` are equal.
#[derive(Debug, Clone, Copy)]
pub struct RpmVersion<'a> {
    raw: &'a str,
    epoch: Option<&'a str>,
    version: &'a str,
    release: Option<&'a str>,
}

impl<'a> RpmVersion<'a> {
    /// Splits `s` into epoch, version and release as rpm does.
    pub fn parse(s: &'a str) -> Result<Self, VersionError> {
        if let Some(offset) = nul_offset(s) {
            return Err(VersionError::NulByte {
                scheme: Scheme::Rpm,
                offset,
            });
        }
        if s.is_empty() {
            return Err(VersionError::Empty(Scheme::Rpm));
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match s[digits..].strip_prefix(':') {
            Some(rest) if digits == 0 => (Some("0"), rest),
            Some(rest) => (Some(&s[..digits]), rest),
            None => (None, s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((version, release)) => (version, Some(release)),
            None => (rest, None),
        };
        Ok(RpmVersion {
            raw: s,
            epoch,
            version,
            release,
        })
    }

    /// The string as given.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The epoch's digits; `None` when the string has no epoch (compares as 0).
    pub fn epoch(&self) -> Option<&'a str> {
        self.epoch
    }

    /// The version (may be empty).
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The release, `None` when the string has no `-`.
    pub fn release(&self) -> Option<&'a str> {
        self.release
    }
}

impl Ord for RpmVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(self.epoch.unwrap_or("0"), other.epoch.unwrap_or("0"))
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(|| match (self.release, other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                // A missing release sorts first.
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

impl PartialOrd for RpmVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RpmVersion<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion<'_> {}

impl fmt::Display for RpmVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Compares two RPM EVR strings (see [`RpmVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(RpmVersion::parse(a)?.cmp(&RpmVersion::parse(b)?))
}

/// One unit of an rpm version string, in ascending order of kind: `~` sorts
/// before the end, the end before `^`, `^` before letters, letters before
/// digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Tilde,
    End,
    Caret,
    Alpha(&'a [u8]),
    Numeric(&'a [u8]),
}

impl Segment<'_> {
    fn kind(&self) -> u8 {
        match self {
            Segment::Tilde => 0,
            Segment::End => 1,
            Segment::Caret => 2,
            Segment::Alpha(_) => 3,
            Segment::Numeric(_) => 4,
        }
    }

    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Segment::Alpha(a), Segment::Alpha(b)) => a.cmp(b),
            (Segment::Numeric(a), Segment::Numeric(b)) => cmp_decimal(a, b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

/// Reads segments off the front of a byte string; yields `End` forever once
/// only separators remain.
struct Segments<'a> {
    rest: &'a [u8],
}

impl<'a> Segments<'a> {
    fn next_segment(&mut self) -> Segment<'a> {
        let (_, rest) = split_run(self.rest, |c| {
            !c.is_ascii_alphanumeric() && c != b'~' && c != b'^'
        });
        let Some(&first) = rest.first() else {
            self.rest = rest;
            return Segment::End;
        };
        let (segment, rest) = match first {
            b'~' => (Segment::Tilde, &rest[1..]),
            b'^' => (Segment::Caret, &rest[1..]),
            c if c.is_ascii_digit() => {
                let (digits, rest) = split_run(rest, |c| c.is_ascii_digit());
                (Segment::Numeric(digits), rest)
            }
            _ => {
                let (letters, rest) = split_run(rest, |c| c.is_ascii_alphabetic());
                (Segment::Alpha(letters), rest)
            }
        };
        self.rest = rest;
        segment
    }
}

/// rpm's `rpmvercmp` on one component (epoch, version or release).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let mut a = Segments { rest: a.as_bytes() };
    let mut b = Segments { rest: b.as_bytes() };
    loop {
        let (x, y) = (a.next_segment(), b.next_segment());
        match x.compare(&y) {
            Ordering::Equal if x == Segment::End => return Ordering::Equal,
            Ordering::Equal => {}
            order => return order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        match compare(a, b) {
            Ok(o) => o,
            Err(e) => panic!("{a:?} vs {b:?}: {e}"),
        }
    }

    /// Cases written from rpm's documented rules (rpm.org "Package version
    /// comparison", rpmvercmp), not copied from the upstream vector files.
    #[test]
    fn orders_versions_by_rpm_rules() {
        use Ordering::*;
        let cases = [
            // numbers compare as numbers, any length, leading zeros ignored
            ("1.10", "1.9", Greater),
            ("1.010", "1.10", Equal),
            ("123456789012345678901", "123456789012345678900", Greater),
            // every non-alphanumeric character is just a separator
            ("1.0", "1+0", Equal),
            ("1..0", "1.0", Equal),
            ("1.0.", "1.0", Equal),
            // a numeric segment is newer than an alphabetic one
            ("1.1", "1.a", Greater),
            ("1a", "1.a", Equal),
            ("1.0", "1.0a", Less),
            // letters compare as bytes, so case matters
            ("1.A", "1.a", Less),
            ("1.ab", "1.b", Less),
            // more segments win when the rest is equal
            ("1.0.1", "1.0", Greater),
            // tilde: before everything, even the end
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0^", Less),
            // caret: after the end, before any other segment
            ("1.0^post", "1.0", Greater),
            ("1.0^post", "1.0.0", Less),
            ("1.0^post", "1.0a", Less),
            // epoch, then version, then release
            ("1:1.0-1", "2.0-1", Greater),
            (":1.0", "0:1.0", Equal),
            ("00:1.0", "1.0", Equal),
            ("1.0-2", "1.0-10", Less),
            ("1.0-1.el9", "1.0-1.el9_2", Less),
            // a missing release sorts before any release, even an empty one
            ("1.0", "1.0-1", Less),
            ("1.0", "1.0-", Less),
            ("1.0", "1.0-~", Less),
            // a ':' after a non-digit belongs to the version
            ("a:1", "a-1", Greater),
            // a real-world pair: an openssl security update in RHEL 9
            ("1:3.0.7-24.el9", "1:3.0.7-27.el9", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parse_splits_evr_like_rpm() {
        let v = RpmVersion::parse("3:1.2-3-4.el9").unwrap();
        assert_eq!(
            (v.epoch(), v.version(), v.release()),
            (Some("3"), "1.2-3", Some("4.el9"))
        );
        let v = RpmVersion::parse("1.2").unwrap();
        assert_eq!((v.epoch(), v.version(), v.release()), (None, "1.2", None));
        let v = RpmVersion::parse(":1.2").unwrap();
        assert_eq!(v.epoch(), Some("0"));
        let v = RpmVersion::parse("1.0:2").unwrap();
        assert_eq!((v.epoch(), v.version()), (None, "1.0:2"));
        assert_eq!(v.to_string(), "1.0:2");
    }

    #[test]
    fn parse_refuses_empty_strings_and_nul_bytes() {
        assert_eq!(
            RpmVersion::parse("").err(),
            Some(VersionError::Empty(Scheme::Rpm))
        );
        assert_eq!(
            RpmVersion::parse("1.0-1\0x").err(),
            Some(VersionError::NulByte {
                scheme: Scheme::Rpm,
                offset: 5
            })
        );
    }

    fn version() -> impl Strategy<Value = String> {
        // Separators, tilde and caret are over-represented on purpose.
        "([0-2]?:)?[0-9a-cA._~^]{1,6}(-[0-9a-c._~^]{0,3})?"
    }

    proptest! {
        #[test]
        fn order_is_reflexive_and_antisymmetric(a in version(), b in version()) {
            prop_assert_eq!(cmp(&a, &a), Ordering::Equal);
            prop_assert_eq!(cmp(&a, &b), cmp(&b, &a).reverse());
        }

        #[test]
        fn order_is_transitive(a in version(), b in version(), c in version()) {
            let (ab, bc, ac) = (cmp(&a, &b), cmp(&b, &c), cmp(&a, &c));
            if ab != Ordering::Greater && bc != Ordering::Greater {
                prop_assert_ne!(ac, Ordering::Greater);
            }
            if ab == bc {
                prop_assert_eq!(ac, ab);
            }
        }

        #[test]
        fn separators_are_interchangeable(a in "[0-9a-c]{1,3}", b in "[0-9a-c]{1,3}") {
            prop_assert_eq!(rpmvercmp(&format!("{a}.{b}"), &format!("{a}_{b}")), Ordering::Equal);
            prop_assert_eq!(rpmvercmp(&format!("{a}.{b}"), &format!("{a}..{b}.")), Ordering::Equal);
        }

        #[test]
        fn parse_and_compare_never_panic(a in any::<String>(), b in "[ -~]{0,12}") {
            let _ = compare(&a, &b);
            let _ = compare(&b, &a);
        }
    }
}
