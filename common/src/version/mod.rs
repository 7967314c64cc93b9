//! Package version comparison for the three package managers the agent reads:
//! Debian `dpkg`, `rpm` and Alpine `apk`.
//!
//! Every comparator follows its own tool's rules, so that "installed version <
//! fixed version" here means what the package manager itself would decide. All
//! comparators are total (they never panic, on any input), allocate nothing, and
//! define a total order (reflexive, antisymmetric, transitive) on the versions
//! they accept. Equality is the tool's equality, not string equality:
//! `1.0 = 1.00` under dpkg, `1.0 = 1_0` under rpm.
//!
//! # dpkg ([`dpkg`])
//!
//! `[epoch:]upstream[-revision]`. The epoch is an unsigned decimal (at most
//! `i32::MAX`), absent = 0; the upstream version runs to the **last** `-`;
//! absent revision = empty revision (so `1.0 = 1.0-0`). Upstream and revision
//! are compared with dpkg's `verrevcmp`: alternating non-digit and digit parts;
//! non-digit parts compare character by character with `~` before everything
//! (even the end of the part), then the end, then letters, then every other
//! character; digit parts compare numerically (leading zeros ignored, any
//! length). Parse errors are dpkg's own errors; what dpkg only *warns* about
//! (upstream not starting with a digit, characters outside its set) is accepted
//! by [`dpkg::DpkgVersion::parse`], as `dpkg --compare-versions` and the dpkg
//! database do, and refused by [`dpkg::DpkgVersion::parse_strict`].
//! Source: dpkg `lib/dpkg/version.c` (`order`, `verrevcmp`,
//! `dpkg_version_compare`) and `lib/dpkg/parsehelp.c` (`parseversion`), commit
//! c5efef926d16a72fd9270c8efceeba8872419292; deb-version(7).
//!
//! # rpm ([`rpm`])
//!
//! `[epoch:]version[-release]`: the epoch is the run of leading digits when a
//! `:` follows it (an empty epoch means 0, no epoch means 0); the release is
//! what follows the **last** `-`. Comparison (rpm's `rpmverCmp`): epoch, then
//! version, then release, each with `rpmvercmp`; a missing release sorts before
//! any present release. `rpmvercmp` splits a string into segments: maximal runs
//! of ASCII digits or of ASCII letters, plus the single characters `~` and `^`;
//! every other character only separates. Segments compare left to right:
//! `~` sorts before everything, even the end of the string; the end sorts next;
//! `^` sorts after the end but before any other segment; a letter segment sorts
//! before a numeric one; letter segments compare as byte strings; numeric
//! segments compare as numbers (leading zeros ignored, any length).
//! Source: rpm `rpmio/rpmvercmp.cc` and `rpmio/rpmver.cc` (`parseEVR`,
//! `rpmverCmp`), commit a8f0192aee1c08bd1454ed2ac6ebaf506004b55c.
//!
//! # apk ([`apk`])
//!
//! `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}`, with suffixes
//! `_alpha < _beta < _pre < _rc` (before the release) and `_cvs < _svn < _git <
//! _hg < _p` (after it). Versions are read as a sequence of tokens and compared
//! token by token; when one version runs out of tokens or hits an invalid one
//! first, the order follows apk-tools: a pre-release suffix is lowest, then an
//! invalid token, then the end, then (ascending) revision, hash, suffix number,
//! post-release suffix, letter, dotted number. So an invalid version is not an
//! error: like apk, [`apk::compare`] orders it by its valid prefix
//! (`23_foo > 4_beta`, `1.0 < 1.0bc`); [`apk::ApkVersion::parse`] validates.
//! Source: apk-tools `src/version.c`, commit
//! 90b974fd8510fbc2b3d6adde311ad1ba8754c728.
//!
//! # Where this differs from the C tools (on purpose)
//!
//! - A NUL byte cannot reach the C tools (it ends a C string); dpkg and rpm
//!   parsing here refuse it ([`VersionError::NulByte`]). apk compares it as an
//!   invalid token, as apk-tools' length-delimited blobs would.
//! - dpkg reads the epoch with `strtol`, which also accepts a sign; here the
//!   epoch must be ASCII digits only.
//! - dpkg compares bytes as C `char`, whose signedness depends on the CPU; a
//!   non-ASCII byte here sorts as on amd64 (after letters, before ASCII
//!   punctuation other than `~`). dpkg warns about such characters anyway.
//! - apk parses numbers into a `u64` that wraps past 20 digits; here numbers
//!   of any length compare exactly.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codes::UnknownName;

pub mod apk;
pub mod dpkg;
pub mod rpm;

pub use apk::ApkVersion;
pub use dpkg::DpkgVersion;
pub use rpm::RpmVersion;

/// Which package manager's rules a version string follows. Its name is the
/// one [`crate::host::Package::manager`] carries (`dpkg`, `rpm`, `apk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Dpkg,
    Rpm,
    Apk,
}

impl Scheme {
    pub const ALL: [Scheme; 3] = [Scheme::Dpkg, Scheme::Rpm, Scheme::Apk];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Rpm => "rpm",
            Scheme::Apk => "apk",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "version scheme",
                value: s.to_owned(),
                expected: "dpkg, rpm, apk",
            })
    }
}

/// Why a version string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    #[error("{0} version string is empty")]
    Empty(Scheme),
    #[error("{scheme} version string contains a NUL byte at offset {offset}")]
    NulByte { scheme: Scheme, offset: usize },
    #[error("dpkg version string has embedded whitespace")]
    EmbeddedWhitespace,
    #[error("dpkg epoch is empty")]
    EpochEmpty,
    #[error("dpkg epoch is not a number")]
    EpochNotNumber,
    #[error("dpkg epoch is too big (more than 2147483647)")]
    EpochTooBig,
    #[error("dpkg version has nothing after the epoch colon")]
    NothingAfterColon,
    #[error("dpkg revision is empty (the version ends with '-')")]
    RevisionEmpty,
    #[error("dpkg upstream version is empty")]
    UpstreamEmpty,
    /// Refused by [`DpkgVersion::parse_strict`] only (dpkg warns).
    #[error("dpkg upstream version does not start with a digit")]
    UpstreamNotDigit,
    /// Refused by [`DpkgVersion::parse_strict`] only (dpkg warns).
    #[error("dpkg {part} contains the invalid character {ch:?}")]
    InvalidCharacter { part: &'static str, ch: char },
    /// Refused by [`ApkVersion::parse`] only ([`apk::compare`] orders it).
    #[error("apk version is invalid from byte offset {offset}")]
    ApkInvalid { offset: usize },
}

/// Compares two version strings under `scheme`'s rules.
///
/// dpkg and rpm strings are parsed first (a string they refuse is an error);
/// apk never fails: invalid apk versions are ordered as apk-tools orders them.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    match scheme {
        Scheme::Dpkg => Ok(DpkgVersion::parse(a)?.cmp(&DpkgVersion::parse(b)?)),
        Scheme::Rpm => Ok(RpmVersion::parse(a)?.cmp(&RpmVersion::parse(b)?)),
        Scheme::Apk => Ok(apk::compare(a, b)),
    }
}

/// Compares two runs of ASCII digits as unbounded non-negative integers:
/// leading zeros are ignored, then the longer number is the larger, then the
/// first differing digit decides. An empty run is zero.
fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_leading_zeros(s: &[u8]) -> &[u8] {
    let zeros = s.iter().take_while(|&&c| c == b'0').count();
    &s[zeros..]
}

/// Splits `s` after its leading run of bytes satisfying `pred`.
fn split_run(s: &[u8], pred: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&c| pred(c)).count();
    s.split_at(n)
}

/// The offset of the first NUL byte in `s`, if any.
fn nul_offset(s: &str) -> Option<usize> {
    s.bytes().position(|c| c == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_runs_compare_as_numbers_of_any_length() {
        assert_eq!(cmp_decimal(b"10", b"9"), Ordering::Greater);
        assert_eq!(cmp_decimal(b"0010", b"10"), Ordering::Equal);
        assert_eq!(cmp_decimal(b"", b"000"), Ordering::Equal);
        assert_eq!(cmp_decimal(b"", b"1"), Ordering::Less);
        let big = b"123456789012345678901234567890";
        let bigger = b"123456789012345678901234567891";
        assert_eq!(cmp_decimal(big, bigger), Ordering::Less);
    }

    #[test]
    fn scheme_names_round_trip_and_match_package_manager_names() {
        for s in Scheme::ALL {
            assert_eq!(s.as_str().parse::<Scheme>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
        }
        assert!("deb".parse::<Scheme>().is_err());
    }

    #[test]
    fn compare_dispatches_to_each_schemes_rules() {
        // `~` is a pre-release for dpkg and rpm, a commit hash for apk.
        assert_eq!(compare(Scheme::Dpkg, "1.0~rc1", "1.0"), Ok(Ordering::Less));
        assert_eq!(compare(Scheme::Rpm, "1.0~rc1", "1.0"), Ok(Ordering::Less));
        assert_eq!(
            compare(Scheme::Apk, "1.0~abc", "1.0"),
            Ok(Ordering::Greater)
        );
        // `1.0_1` vs `1.0.1`: rpm separators are all alike; dpkg's are not.
        assert_eq!(compare(Scheme::Rpm, "1.0_1", "1.0.1"), Ok(Ordering::Equal));
        assert_ne!(compare(Scheme::Dpkg, "1.0+1", "1.0.1"), Ok(Ordering::Equal));
    }

    #[test]
    fn compare_refuses_empty_and_nul_dpkg_and_rpm_strings_but_orders_any_apk_string() {
        assert_eq!(
            compare(Scheme::Dpkg, "1.0", ""),
            Err(VersionError::Empty(Scheme::Dpkg))
        );
        assert_eq!(
            compare(Scheme::Rpm, "", "1"),
            Err(VersionError::Empty(Scheme::Rpm))
        );
        assert_eq!(
            compare(Scheme::Rpm, "1\0", "1"),
            Err(VersionError::NulByte {
                scheme: Scheme::Rpm,
                offset: 1
            })
        );
        // apk orders even the empty string (below every valid version).
        assert_eq!(compare(Scheme::Apk, "", "0"), Ok(Ordering::Less));
    }
}
