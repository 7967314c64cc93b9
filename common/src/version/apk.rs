//! Alpine (`apk`) versions: `digits{.digits}...{letter}{_suffix{digits}}...{~hash}{-rN}`.
//!
//! A version is read left to right as a sequence of tokens, each allowed only
//! after certain others (this is apk-tools' grammar):
//!
//! | token | text | may follow |
//! |---|---|---|
//! | first number | leading digits | (start) |
//! | number | `.` digits | first number, number |
//! | letter | one of `a`..`z` | first number, number |
//! | suffix | `_` + `alpha` `beta` `pre` `rc` `cvs` `svn` `git` `hg` `p` | anything before a hash |
//! | suffix number | digits right after a suffix | suffix |
//! | hash | `~` + lowercase hex digits | anything before a hash |
//! | revision | `-r` + digits | anything before a revision |
//!
//! Anything else (including an empty string, a missing number, an unknown
//! suffix, an upper-case letter) is an *invalid* token and ends the version,
//! as does the end of the string. A version is valid when it ends at the end
//! of the string; [`ApkVersion::parse`] checks that, while [`compare`] orders
//! invalid versions too, exactly as apk-tools does.
//!
//! Comparison walks both token sequences together. While both have the same
//! kind of token the values decide: numbers numerically, except that a
//! dotted number with a leading zero on either side compares as a string
//! (`1.02 < 1.1`, `1.0 < 1.001`); letters and hashes as bytes; suffixes in
//! the order `alpha < beta < pre < rc < cvs < svn < git < hg < p`. When the
//! kinds differ, the first version is lower if it has a pre-release suffix
//! (`alpha` to `rc`), higher if the other has one, and otherwise the ranking
//! is (lowest first): invalid token, end, revision, hash, suffix number,
//! suffix, letter, number, first number. See the parent module for sources.

use std::cmp::Ordering;
use std::fmt;

use super::{cmp_decimal, split_run, Scheme, VersionError};

/// An apk version string. Any string can be compared (as apk-tools compares
/// it); [`ApkVersion::parse`] only accepts valid ones.
///
/// `Eq` and `Ord` are apk's: `01.0 = 1.0`, `1.0-r0 > 1.0` (any revision
/// beats none), and two invalid versions with the same valid prefix are equal.
#[derive(Debug, Clone, Copy)]
pub struct ApkVersion<'a> {
    raw: &'a str,
}

impl<'a> ApkVersion<'a> {
    /// Wraps `s` without validating it.
    pub fn new(s: &'a str) -> Self {
        ApkVersion { raw: s }
    }

    /// Wraps `s` if it is a valid apk version (`apk_version_validate`).
    pub fn parse(s: &'a str) -> Result<Self, VersionError> {
        if s.is_empty() {
            return Err(VersionError::Empty(Scheme::Apk));
        }
        let mut tokens = Tokens::new(s.as_bytes());
        loop {
            let offset = tokens.offset();
            match tokens.next_token() {
                Token::End => return Ok(ApkVersion { raw: s }),
                Token::Invalid => return Err(VersionError::ApkInvalid { offset }),
                _ => {}
            }
        }
    }

    /// The string as given.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

impl Ord for ApkVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(self.raw, other.raw)
    }
}

impl PartialOrd for ApkVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion<'_> {}

impl fmt::Display for ApkVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// The suffixes in ascending order; those before `Release` are pre-releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Suffix {
    Alpha,
    Beta,
    Pre,
    Rc,
    Cvs,
    Svn,
    Git,
    Hg,
    P,
}

impl Suffix {
    fn from_name(name: &[u8]) -> Option<Suffix> {
        Some(match name {
            b"alpha" => Suffix::Alpha,
            b"beta" => Suffix::Beta,
            b"pre" => Suffix::Pre,
            b"rc" => Suffix::Rc,
            b"cvs" => Suffix::Cvs,
            b"svn" => Suffix::Svn,
            b"git" => Suffix::Git,
            b"hg" => Suffix::Hg,
            b"p" => Suffix::P,
            _ => return None,
        })
    }

    fn is_pre_release(self) -> bool {
        self <= Suffix::Rc
    }
}

/// One token; the payloads borrow the version's bytes (digit runs are
/// non-empty, hashes are non-empty lowercase hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    FirstNumber(&'a [u8]),
    Number(&'a [u8]),
    Letter(u8),
    Suffix(Suffix),
    SuffixNumber(&'a [u8]),
    Hash(&'a [u8]),
    Revision(&'a [u8]),
    End,
    Invalid,
}

// apk-tools' position of each token kind in its grammar; also the ranking
// (higher = lower version) when two versions' kinds differ.
const FIRST_NUMBER: u8 = 0;
const NUMBER: u8 = 1;
const LETTER: u8 = 2;
const SUFFIX: u8 = 3;
const SUFFIX_NUMBER: u8 = 4;
const HASH: u8 = 5;
const REVISION: u8 = 6;
const END: u8 = 7;
const INVALID: u8 = 8;

impl Token<'_> {
    fn stage(&self) -> u8 {
        match self {
            Token::FirstNumber(_) => FIRST_NUMBER,
            Token::Number(_) => NUMBER,
            Token::Letter(_) => LETTER,
            Token::Suffix(_) => SUFFIX,
            Token::SuffixNumber(_) => SUFFIX_NUMBER,
            Token::Hash(_) => HASH,
            Token::Revision(_) => REVISION,
            Token::End => END,
            Token::Invalid => INVALID,
        }
    }

    fn is_pre_release(&self) -> bool {
        matches!(self, Token::Suffix(s) if s.is_pre_release())
    }

    /// Compares two tokens of the same kind by value.
    fn compare_value(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Token::Number(a), Token::Number(b)) if a.starts_with(b"0") || b.starts_with(b"0") => {
                a.cmp(b)
            }
            (Token::FirstNumber(a), Token::FirstNumber(b))
            | (Token::Number(a), Token::Number(b))
            | (Token::SuffixNumber(a), Token::SuffixNumber(b))
            | (Token::Revision(a), Token::Revision(b)) => cmp_decimal(a, b),
            (Token::Letter(a), Token::Letter(b)) => a.cmp(b),
            (Token::Suffix(a), Token::Suffix(b)) => a.cmp(b),
            (Token::Hash(a), Token::Hash(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// Reads tokens off a version; after `End` or `Invalid` it keeps returning
/// that token.
struct Tokens<'a> {
    all: &'a [u8],
    rest: &'a [u8],
    last: Option<Token<'a>>,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a [u8]) -> Self {
        Tokens {
            all: version,
            rest: version,
            last: None,
        }
    }

    /// Byte offset of the next token.
    fn offset(&self) -> usize {
        self.all.len() - self.rest.len()
    }

    fn next_token(&mut self) -> Token<'a> {
        let token = match self.last {
            Some(t @ (Token::End | Token::Invalid)) => t,
            None => match self.digits() {
                Some(d) => Token::FirstNumber(d),
                None => Token::Invalid,
            },
            Some(prev) => self.after(prev.stage()),
        };
        self.last = Some(token);
        token
    }

    /// Takes a non-empty run of digits.
    fn digits(&mut self) -> Option<&'a [u8]> {
        let (digits, rest) = split_run(self.rest, |c| c.is_ascii_digit());
        self.rest = rest;
        (!digits.is_empty()).then_some(digits)
    }

    /// Reads the token that follows a token of stage `prev`.
    fn after(&mut self, prev: u8) -> Token<'a> {
        let Some((&first, tail)) = self.rest.split_first() else {
            return Token::End;
        };
        match first {
            b'a'..=b'z' if prev <= NUMBER => {
                self.rest = tail;
                Token::Letter(first)
            }
            b'.' if prev <= NUMBER => {
                self.rest = tail;
                self.digits().map_or(Token::Invalid, Token::Number)
            }
            b'0'..=b'9' if prev == SUFFIX => {
                self.digits().map_or(Token::Invalid, Token::SuffixNumber)
            }
            b'_' if prev <= SUFFIX_NUMBER => {
                let (name, rest) = split_run(tail, |c| c.is_ascii_lowercase());
                self.rest = rest;
                Suffix::from_name(name).map_or(Token::Invalid, Token::Suffix)
            }
            b'~' if prev < HASH => {
                let (hex, rest) = split_run(tail, |c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
                self.rest = rest;
                if hex.is_empty() {
                    Token::Invalid
                } else {
                    Token::Hash(hex)
                }
            }
            b'-' if prev < REVISION && tail.first() == Some(&b'r') => {
                self.rest = &tail[1..];
                self.digits().map_or(Token::Invalid, Token::Revision)
            }
            _ => Token::Invalid,
        }
    }
}

/// Compares two apk versions as apk-tools does. Never fails: invalid
/// versions are ordered by their valid prefix (see the module doc).
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut a = Tokens::new(a.as_bytes());
    let mut b = Tokens::new(b.as_bytes());
    loop {
        let (x, y) = (a.next_token(), b.next_token());
        if x.stage() != y.stage() {
            if x.is_pre_release() {
                return Ordering::Less;
            }
            if y.is_pre_release() {
                return Ordering::Greater;
            }
            // A later stage (fewer or invalid components) is the lower version.
            return y.stage().cmp(&x.stage());
        }
        if matches!(x, Token::End | Token::Invalid) {
            return Ordering::Equal;
        }
        let order = x.compare_value(&y);
        if order != Ordering::Equal {
            return order;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Cases written from the apk-tools grammar, not copied from the
    /// upstream vector file (which the integration test reads).
    #[test]
    fn orders_versions_by_apk_rules() {
        use Ordering::*;
        let cases = [
            ("1.10", "1.9", Greater),
            ("2", "1.99", Greater),
            // leading zeros: numeric for the first number, string after a dot
            ("01", "1", Equal),
            ("1.02", "1.1", Less),
            ("1.001", "1.0", Greater),
            ("1.01", "1.010", Less),
            // more components win
            ("1.0.0", "1.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0b", Less),
            ("1.0z", "1.0.1", Less),
            // pre-release suffixes are below the release, in order
            ("1.0_alpha", "1.0_beta", Less),
            ("1.0_beta", "1.0_pre", Less),
            ("1.0_pre", "1.0_rc", Less),
            ("1.0_rc", "1.0", Less),
            ("1.0_rc9", "1.0_rc10", Less),
            ("1.0_rc", "1.0_rc1", Less),
            ("1.0_alpha", "1.0-r5", Less),
            // post-release suffixes are above it, in order
            ("1.0_cvs", "1.0", Greater),
            ("1.0_cvs", "1.0_svn", Less),
            ("1.0_svn", "1.0_git", Less),
            ("1.0_git", "1.0_hg", Less),
            ("1.0_hg", "1.0_p", Less),
            ("1.0_p1", "1.0_p1_p1", Less),
            ("1.0_p1", "1.0a", Less),
            // revisions
            // any revision, even r0, beats none
            ("1.0-r0", "1.0", Greater),
            ("1.0-r0", "1.0-r00", Equal),
            ("1.0-r1", "1.0", Greater),
            ("1.0-r10", "1.0-r9", Greater),
            ("1.0-r1", "1.0.1", Less),
            // commit hashes compare as strings and sit between suffix and revision
            ("1.0~abc", "1.0~abd", Less),
            ("1.0~abc", "1.0~ab", Greater),
            ("1.0~abc", "1.0", Greater),
            ("1.0~abc", "1.0-r1", Greater),
            ("1.0_p1~abc", "1.0_p1-r3", Greater),
            // a real-world pair: an openssl security update in Alpine 3.19
            ("3.1.4-r5", "3.1.7-r0", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn invalid_versions_are_ordered_by_their_valid_prefix_like_apk() {
        use Ordering::*;
        let cases = [
            // from apk-tools' own data file, left out of the vector set there
            ("1.0", "1.0bc", Less),
            // an invalid token sorts below the end, but above a pre-release
            ("1.0_foo", "1.0", Less),
            ("1.0-foo", "1.0", Less),
            ("1.0_foo", "1.0_rc1", Greater),
            ("1.0.", "1.0", Less),
            ("1.0-r", "1.0", Less),
            ("1.0~", "1.0", Less),
            ("1.0~ABC", "1.0", Less),
            ("1.0A", "1.0", Less),
            ("1.0\0", "1.0", Less),
            // two invalid versions with the same valid prefix are equal
            ("1.0_foo", "1.0-bar", Equal),
            ("", "x", Equal),
            // no leading digit: below every valid version
            ("", "0", Less),
            ("v1.0", "0", Less),
            // but a valid prefix that is greater wins
            ("2.0_foo", "1.0", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a:?} vs {b:?}");
            assert_eq!(compare(b, a), want.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn parse_accepts_valid_versions_only() {
        for s in [
            "0",
            "1.2.3",
            "1.2.3a",
            "1.0_alpha1_p2",
            "1.0_rc1~0af-r12",
            "20240101",
            "1.0~abcdef0123456789",
        ] {
            assert!(ApkVersion::parse(s).is_ok(), "{s}");
        }
        let cases = [
            ("", VersionError::Empty(Scheme::Apk)),
            ("v1", VersionError::ApkInvalid { offset: 0 }),
            ("1.0bc", VersionError::ApkInvalid { offset: 4 }),
            ("1.0_foo", VersionError::ApkInvalid { offset: 3 }),
            ("1.0-r", VersionError::ApkInvalid { offset: 3 }),
            ("1.0-r1-r2", VersionError::ApkInvalid { offset: 6 }),
            ("1.0-r1a", VersionError::ApkInvalid { offset: 6 }),
            ("1.0~", VersionError::ApkInvalid { offset: 3 }),
            ("1.0~a~b", VersionError::ApkInvalid { offset: 5 }),
            ("1.0_p1.2", VersionError::ApkInvalid { offset: 6 }),
            ("1.0a.1", VersionError::ApkInvalid { offset: 4 }),
            ("1..0", VersionError::ApkInvalid { offset: 1 }),
        ];
        for (s, want) in cases {
            assert_eq!(ApkVersion::parse(s).err(), Some(want), "{s:?}");
        }
    }

    #[test]
    fn apk_version_orders_like_compare() {
        let mut v = ["1.0-r1", "1.0_rc1", "1.0", "0.9_p3", "1.0a"].map(ApkVersion::new);
        v.sort();
        let sorted: Vec<&str> = v.iter().map(ApkVersion::as_str).collect();
        assert_eq!(sorted, ["0.9_p3", "1.0_rc1", "1.0", "1.0-r1", "1.0a"]);
        assert_eq!(ApkVersion::new("01.2-r01"), ApkVersion::new("1.2-r1"));
        assert_ne!(ApkVersion::new("1.0-r0"), ApkVersion::new("1.0"));
    }

    fn version() -> impl Strategy<Value = String> {
        // Mostly valid versions, with a sprinkling of invalid pieces.
        "[0-9]{1,2}(\\.0?[0-9]){0,2}[ab]?(_(alpha|rc|p|foo)[0-9]?){0,2}(~[0-9a-c]{1,2})?(-r[0-9]?)?[.x]?"
    }

    proptest! {
        #[test]
        fn order_is_reflexive_and_antisymmetric(a in version(), b in version()) {
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn order_is_transitive(a in version(), b in version(), c in version()) {
            let (ab, bc, ac) = (compare(&a, &b), compare(&b, &c), compare(&a, &c));
            if ab != Ordering::Greater && bc != Ordering::Greater {
                prop_assert_ne!(ac, Ordering::Greater);
            }
            if ab == bc {
                prop_assert_eq!(ac, ab);
            }
        }

        #[test]
        fn compare_and_parse_never_panic(a in any::<String>(), b in "[ -~]{0,12}") {
            let _ = compare(&a, &b);
            let _ = compare(&b, &a);
            let _ = ApkVersion::parse(&a);
        }
    }
}
