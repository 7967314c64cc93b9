//! Debian (`dpkg`) versions: `[epoch:]upstream[-revision]`.
//!
//! Format and invariants of a parsed [`DpkgVersion`]:
//! - leading and trailing blanks (space, tab) are ignored; a blank inside the
//!   version is an error, as is an empty string or a NUL byte;
//! - the epoch is everything before the **first** `:`, ASCII digits only,
//!   at most `i32::MAX` (dpkg's limit); no `:` means epoch 0; something must
//!   follow the colon;
//! - the revision is everything after the **last** `-` of the rest, and must
//!   not be empty; no `-` means no revision, which compares as the empty
//!   revision (`1.0 = 1.0-0`);
//! - the upstream version is what remains and is never empty. It may contain
//!   `:` (after an epoch) and `-` (before a revision).
//!
//! dpkg only *warns* when the upstream version does not start with a digit or
//! when upstream or revision contain a character outside `[A-Za-z0-9.+~]`
//! (plus `-` and `:` in upstream); the dpkg database can hold such versions, so
//! [`DpkgVersion::parse`] accepts them and orders them as dpkg does, while
//! [`DpkgVersion::parse_strict`] refuses them.
//!
//! Ordering: epoch numerically, then upstream, then revision, the last two with
//! dpkg's algorithm (see [`compare_part`]). See the parent module for sources.

use std::cmp::Ordering;
use std::fmt;

use super::{cmp_decimal, nul_offset, split_run, Scheme, VersionError};

/// The largest epoch dpkg accepts (`INT_MAX`).
pub const MAX_EPOCH: u32 = i32::MAX as u32;

/// A parsed dpkg version, borrowing the string it was parsed from.
///
/// `Eq` and `Ord` are dpkg's: `1.0`, `0:1.0`, `1.00` and `1.0-0` are equal.
#[derive(Debug, Clone, Copy)]
pub struct DpkgVersion<'a> {
    raw: &'a str,
    epoch: u32,
    upstream: &'a str,
    revision: Option<&'a str>,
}

impl<'a> DpkgVersion<'a> {
    /// Parses `s` as dpkg does, accepting what dpkg only warns about.
    pub fn parse(s: &'a str) -> Result<Self, VersionError> {
        if let Some(offset) = nul_offset(s) {
            return Err(VersionError::NulByte {
                scheme: Scheme::Dpkg,
                offset,
            });
        }
        let raw = s.trim_matches(is_blank);
        if raw.is_empty() {
            return Err(VersionError::Empty(Scheme::Dpkg));
        }
        if raw.contains(is_blank) {
            return Err(VersionError::EmbeddedWhitespace);
        }
        let (epoch, rest) = match raw.split_once(':') {
            None => (0, raw),
            Some((epoch, rest)) => {
                let epoch = parse_epoch(epoch)?;
                if rest.is_empty() {
                    return Err(VersionError::NothingAfterColon);
                }
                (epoch, rest)
            }
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            None => (rest, None),
            Some((_, "")) => return Err(VersionError::RevisionEmpty),
            Some((upstream, revision)) => (upstream, Some(revision)),
        };
        if upstream.is_empty() {
            return Err(VersionError::UpstreamEmpty);
        }
        Ok(DpkgVersion {
            raw,
            epoch,
            upstream,
            revision,
        })
    }

    /// Parses `s` and also refuses what dpkg warns about: an upstream version
    /// not starting with a digit, and characters outside dpkg's sets.
    pub fn parse_strict(s: &'a str) -> Result<Self, VersionError> {
        let v = Self::parse(s)?;
        if !v.upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(VersionError::UpstreamNotDigit);
        }
        check_chars(v.upstream, "upstream version", ".-+~:")?;
        check_chars(v.revision.unwrap_or(""), "revision", ".+~")?;
        Ok(v)
    }

    /// The version as parsed, without surrounding blanks.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The epoch; 0 when the string has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version (never empty).
    pub fn upstream(&self) -> &'a str {
        self.upstream
    }

    /// The Debian revision, `None` when the string has no `-`.
    pub fn revision(&self) -> Option<&'a str> {
        self.revision
    }
}

impl Ord for DpkgVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream, other.upstream))
            .then_with(|| compare_part(self.revision.unwrap_or(""), other.revision.unwrap_or("")))
    }
}

impl PartialOrd for DpkgVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion<'_> {}

impl fmt::Display for DpkgVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Compares two dpkg version strings (see [`DpkgVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(DpkgVersion::parse(a)?.cmp(&DpkgVersion::parse(b)?))
}

/// dpkg's `c_isblank`: the characters trimmed around a version.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn parse_epoch(s: &str) -> Result<u32, VersionError> {
    if s.is_empty() {
        return Err(VersionError::EpochEmpty);
    }
    let mut value: u32 = 0;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            return Err(VersionError::EpochNotNumber);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(c - b'0')))
            .filter(|&v| v <= MAX_EPOCH)
            .ok_or(VersionError::EpochTooBig)?;
    }
    Ok(value)
}

fn check_chars(part: &str, name: &'static str, extra: &str) -> Result<(), VersionError> {
    match part
        .chars()
        .find(|&c| !c.is_ascii_alphanumeric() && !extra.contains(c))
    {
        Some(ch) => Err(VersionError::InvalidCharacter { part: name, ch }),
        None => Ok(()),
    }
}

/// The weight of one byte of a non-digit run; `None` is the end of the run.
/// `~` is lightest, below the end; letters come next, then non-ASCII bytes,
/// then the other ASCII characters, each group in byte order.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        // amd64 dpkg sees these as negative `char`s and adds 256.
        Some(c) if !c.is_ascii() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares an upstream version or a revision the dpkg way: each string is
/// read as alternating runs of non-digits and digits (either may be empty,
/// the first run is a non-digit one); non-digit runs compare byte by byte by
/// `weight`, the shorter run padded with "end"; digit runs compare as
/// numbers.
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (a_text, a_rest) = split_run(a, |c| !c.is_ascii_digit());
        let (b_text, b_rest) = split_run(b, |c| !c.is_ascii_digit());
        for i in 0..a_text.len().max(b_text.len()) {
            let order = weight(a_text.get(i).copied()).cmp(&weight(b_text.get(i).copied()));
            if order != Ordering::Equal {
                return order;
            }
        }
        let (a_num, a_rest) = split_run(a_rest, |c| c.is_ascii_digit());
        let (b_num, b_rest) = split_run(b_rest, |c| c.is_ascii_digit());
        let order = cmp_decimal(a_num, b_num);
        if order != Ordering::Equal {
            return order;
        }
        a = a_rest;
        b = b_rest;
    }
    Ordering::Equal
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

    /// Cases written from deb-version(7) and dpkg's algorithm, not copied
    /// from the upstream vector files; every one agrees with dpkg 1.21.22.
    #[test]
    fn orders_versions_by_debian_rules() {
        use Ordering::*;
        let cases = [
            // epoch dominates everything
            ("1:0.1", "9.9", Greater),
            ("0:5", "5", Equal),
            ("007:1", "7:1", Equal),
            // tilde sorts before everything, even the end
            ("1.0~beta", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~beta", "1.0~alpha", Greater),
            ("1.0~", "1.0-0", Less),
            // end before letters, letters before non-letters
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0.", Less),
            ("1.0Z", "1.0a", Less),
            ("1.0+", "1.0.", Less),
            // digits compare numerically, leading zeros ignored
            ("1.10", "1.9", Greater),
            ("1.010", "1.10", Equal),
            ("1.0", "1", Greater),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
            // revision
            ("1.0", "1.0-0", Equal),
            ("1.0-1", "1.0", Greater),
            ("1.0-1ubuntu1", "1.0-1", Greater),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("1.0-1+deb12u1", "1.0-1", Greater),
            // upstream holds every '-' but the last, and ':' after an epoch
            ("1:2.0-rc-1", "1:2.0-rc-2", Less),
            ("1:2:3-1", "1:2:3-1", Equal),
            ("1-2-3", "1-2-4", Less),
            // surrounding blanks are ignored
            (" 1.0\t", "1.0", Equal),
            // a real-world pair: an openssl security update in Debian 12
            ("3.0.11-1~deb12u2", "3.0.15-1~deb12u1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parse_splits_epoch_upstream_and_revision() {
        let v = DpkgVersion::parse("2:1.2-3-4").unwrap();
        assert_eq!(
            (v.epoch(), v.upstream(), v.revision()),
            (2, "1.2-3", Some("4"))
        );
        let v = DpkgVersion::parse(" 1.2 ").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (0, "1.2", None));
        assert_eq!(v.to_string(), "1.2");
        let v = DpkgVersion::parse("2147483647:1").unwrap();
        assert_eq!(v.epoch(), MAX_EPOCH);
    }

    #[test]
    fn parse_refuses_what_dpkg_refuses() {
        use VersionError::*;
        let cases = [
            ("", Empty(Scheme::Dpkg)),
            (" \t ", Empty(Scheme::Dpkg)),
            ("1.0 1", EmbeddedWhitespace),
            (":1.0", EpochEmpty),
            ("a:1.0", EpochNotNumber),
            ("1a:1.0", EpochNotNumber),
            ("-1:1.0", EpochNotNumber),
            ("2147483648:1.0", EpochTooBig),
            ("99999999999999999999:1.0", EpochTooBig),
            ("1:", NothingAfterColon),
            ("1.0-", RevisionEmpty),
            ("-1", UpstreamEmpty),
            ("1:-1", UpstreamEmpty),
            (
                "1.0\0",
                NulByte {
                    scheme: Scheme::Dpkg,
                    offset: 3,
                },
            ),
        ];
        for (s, want) in cases {
            assert_eq!(DpkgVersion::parse(s).err(), Some(want), "{s:?}");
        }
    }

    #[test]
    fn lenient_parse_accepts_what_dpkg_only_warns_about_and_strict_parse_refuses_it() {
        for (s, want) in [
            ("a-0", VersionError::UpstreamNotDigit),
            (
                "1.0_1",
                VersionError::InvalidCharacter {
                    part: "upstream version",
                    ch: '_',
                },
            ),
            (
                "1.0-1_2",
                VersionError::InvalidCharacter {
                    part: "revision",
                    ch: '_',
                },
            ),
        ] {
            assert!(DpkgVersion::parse(s).is_ok(), "{s}");
            assert_eq!(DpkgVersion::parse_strict(s).err(), Some(want), "{s}");
        }
        assert!(DpkgVersion::parse_strict("1:1.0+dfsg~rc1-2+b1").is_ok());
        // Ordered like dpkg 1.21.22 on amd64 orders them.
        assert_eq!(cmp("a-0", "b-0"), Ordering::Less);
        assert_eq!(cmp("1.0_1", "1.0+1"), Ordering::Greater);
        assert_eq!(cmp("1.0é", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.0é", "1.0z"), Ordering::Greater);
    }

    fn version() -> impl Strategy<Value = String> {
        // A small alphabet so that equal and near-equal versions are common.
        "([0-2]:)?[0-9][0-9a-cA.+~]{0,5}(-[0-9a-c.+~]{1,3})?"
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
        fn leading_zeros_of_a_number_do_not_matter(n in "[0-9]{1,4}", zeros in "0{1,3}") {
            prop_assert_eq!(cmp(&format!("1.{n}"), &format!("1.{zeros}{n}")), Ordering::Equal);
        }

        #[test]
        fn parse_and_compare_never_panic(a in any::<String>(), b in "[ -~]{0,12}") {
            let _ = compare(&a, &b);
            let _ = compare(&b, &a);
            let _ = DpkgVersion::parse_strict(&a);
        }
    }
}
