//! The dpkg status database, `<root>/var/lib/dpkg/status`.
//!
//! Format (deb822, as dpkg writes it): stanzas separated by blank lines;
//! a stanza is `Field: value` lines, a line starting with a space or a tab
//! continues the previous field; field names are case-insensitive. Kept
//! fields: `Package`, `Status`, `Version`, `Architecture`, `Source`.
//!
//! A package is inventoried when its `Status` (`want flag status`) says its
//! files are installed: the third word is `installed` (so `install ok
//! installed`, and also `hold ok installed` and `deinstall ok installed`,
//! whose files are still on disk until dpkg removes them). Every other state
//! (`config-files`, `half-installed`, `unpacked`, `not-installed`, …) is
//! skipped without complaint.
//!
//! `Source: name` or `Source: name (version)` names the source package; no
//! `Source` means the source is the binary itself; no parenthesised version
//! means the source version is the binary `Version`. Versions are verbatim.
//!
//! A stanza is malformed (skipped, counted) when: a line has no `:`, a field
//! name is empty or has blanks, a kept field repeats, spans several lines or
//! was cut for length, `Package` or `Status` is missing, `Status` is not
//! three known words, or an installed package lacks a valid `Version`, or
//! has an invalid name, arch or `Source`.

use std::io::{self, BufRead};

use trustwatch_common::host::Package;

use super::{manager, valid_token, LineReader, ParseOutcome, MAX_LINE};

/// Where the database is, relative to the root.
pub const STATUS_PATH: &str = "var/lib/dpkg/status";

const WANT: [&str; 5] = ["unknown", "install", "hold", "deinstall", "purge"];
const FLAG: [&str; 2] = ["ok", "reinstreq"];
const STATE: [&str; 8] = [
    "not-installed",
    "config-files",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
    "installed",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Package,
    Status,
    Version,
    Architecture,
    Source,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        [
            ("Package", Field::Package),
            ("Status", Field::Status),
            ("Version", Field::Version),
            ("Architecture", Field::Architecture),
            ("Source", Field::Source),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, f)| f)
    }

    fn name(self) -> &'static str {
        match self {
            Field::Package => "Package",
            Field::Status => "Status",
            Field::Version => "Version",
            Field::Architecture => "Architecture",
            Field::Source => "Source",
        }
    }
}

#[derive(Debug, Default)]
struct Stanza {
    start: u64,
    seen_line: bool,
    /// The field the last header line opened (`None` for one not kept).
    current: Option<Option<Field>>,
    package: Option<String>,
    status: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    source: Option<String>,
    problem: Option<String>,
}

impl Stanza {
    fn fail(&mut self, reason: String) {
        if self.problem.is_none() {
            self.problem = Some(reason);
        }
    }

    fn slot(&mut self, f: Field) -> &mut Option<String> {
        match f {
            Field::Package => &mut self.package,
            Field::Status => &mut self.status,
            Field::Version => &mut self.version,
            Field::Architecture => &mut self.arch,
            Field::Source => &mut self.source,
        }
    }

    fn line(&mut self, number: u64, bytes: &[u8], cut: bool) {
        if !self.seen_line {
            self.seen_line = true;
            self.start = number;
        }
        if matches!(bytes.first(), Some(b' ' | b'\t')) {
            match self.current {
                None => self.fail("a continuation line opens the stanza".into()),
                Some(Some(f)) => self.fail(format!("field {} spans several lines", f.name())),
                Some(None) => {}
            }
            return;
        }
        let Some(colon) = bytes.iter().position(|&b| b == b':') else {
            self.fail(format!("line {number} has no ':'"));
            self.current = Some(None);
            return;
        };
        let name = String::from_utf8_lossy(&bytes[..colon]);
        if name.is_empty() || !valid_token(&name) {
            self.fail(format!("line {number} has an invalid field name"));
            self.current = Some(None);
            return;
        }
        let field = Field::from_name(&name);
        self.current = Some(field);
        let Some(f) = field else {
            return;
        };
        if cut {
            self.fail(format!("field {} is too long", f.name()));
            return;
        }
        let value = String::from_utf8_lossy(&bytes[colon + 1..])
            .trim()
            .to_owned();
        let slot = self.slot(f);
        if slot.is_some() {
            self.fail(format!("field {} repeats", f.name()));
        } else {
            *slot = Some(value);
        }
    }

    /// The package this stanza describes: `Ok(None)` when not installed.
    fn finish(self) -> Result<Option<Package>, String> {
        if let Some(p) = self.problem {
            return Err(p);
        }
        let Some(name) = self.package else {
            return Err("no Package field".into());
        };
        let Some(status) = self.status else {
            return Err(format!("package {name:?} has no Status field"));
        };
        let words: Vec<&str> = status.split_whitespace().collect();
        let [want, flag, state] = words[..] else {
            return Err(format!(
                "package {name:?} has Status {status:?}, not three words"
            ));
        };
        if !WANT.contains(&want) || !FLAG.contains(&flag) || !STATE.contains(&state) {
            return Err(format!("package {name:?} has an unknown Status {status:?}"));
        }
        if state != "installed" {
            return Ok(None);
        }
        if !valid_token(&name) {
            return Err(format!("invalid package name {name:?}"));
        }
        let version = match self.version {
            Some(v) if valid_token(&v) => v,
            Some(v) => return Err(format!("package {name:?} has an invalid Version {v:?}")),
            None => return Err(format!("installed package {name:?} has no Version")),
        };
        let arch = match self.arch {
            None => String::new(),
            Some(a) if valid_token(&a) => a,
            Some(a) => {
                return Err(format!(
                    "package {name:?} has an invalid Architecture {a:?}"
                ))
            }
        };
        let (source_name, source_version) = match self.source {
            None => (name.clone(), version.clone()),
            Some(s) => match parse_source(&s) {
                Some((n, v)) => (n.to_owned(), v.unwrap_or(&version).to_owned()),
                None => return Err(format!("package {name:?} has an invalid Source {s:?}")),
            },
        };
        Ok(Some(Package {
            manager: manager::DPKG.to_owned(),
            name,
            version,
            source_name,
            source_version,
            arch,
        }))
    }
}

/// `name` or `name (version)`.
pub fn parse_source(s: &str) -> Option<(&str, Option<&str>)> {
    let s = s.trim();
    match s.split_once('(') {
        None => valid_token(s).then_some((s, None)),
        Some((name, rest)) => {
            let name = name.trim();
            let version = rest.strip_suffix(')')?.trim();
            (valid_token(name) && valid_token(version)).then_some((name, Some(version)))
        }
    }
}

/// Parses a status file.
pub fn parse(r: &mut dyn BufRead) -> io::Result<ParseOutcome> {
    let mut lines = LineReader::new(r, MAX_LINE);
    let mut out = ParseOutcome::default();
    let mut buf = Vec::new();
    let mut stanza = Stanza::default();
    loop {
        let info = lines.next_line(&mut buf)?;
        let end_of_stanza = match info {
            None => true,
            Some(i) => !i.cut && buf.iter().all(|b| matches!(b, b' ' | b'\t')),
        };
        if end_of_stanza {
            let done = std::mem::take(&mut stanza);
            if done.seen_line {
                let start = done.start;
                match done.finish() {
                    Ok(Some(p)) => out.packages.push(p),
                    Ok(None) => {}
                    Err(reason) => out.skip(start, reason),
                }
            }
            if info.is_none() {
                break;
            }
            continue;
        }
        if let Some(i) = info {
            stanza.line(i.number, &buf, i.cut);
        }
    }
    out.bytes = lines.bytes();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::parse_text;
    use super::*;
    use proptest::prelude::*;

    fn pkg(name: &str, version: &str, src: &str, src_version: &str, arch: &str) -> Package {
        Package {
            manager: "dpkg".into(),
            name: name.into(),
            version: version.into(),
            source_name: src.into(),
            source_version: src_version.into(),
            arch: arch.into(),
        }
    }

    const STATUS: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6108
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 .
 Internet.
Homepage: https://www.openssl.org/

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Description: GCC support library

Package: bsdutils
Status: hold ok installed
Architecture: amd64
Source: util-linux (2.38.1-5+deb12u1)
Version: 1:2.38.1-5+deb12u1
Conffiles:
 /etc/x 0123456789abcdef0123456789abcdef

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/old.conf 0123456789abcdef0123456789abcdef

Package: half
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0-1

Package: gone
Status: purge ok not-installed
Architecture: amd64

package: tzdata
STATUS: install ok installed
architecture: all
version: 2024a-0+deb12u1
";

    #[test]
    fn installed_packages_with_sources_epochs_and_continuations_are_kept() {
        let out = parse_text(parse, STATUS.as_bytes());
        assert_eq!(out.skipped, 0, "{:?}", out.first_skipped);
        assert_eq!(
            out.packages,
            vec![
                pkg(
                    "libssl3",
                    "3.0.15-1~deb12u1",
                    "openssl",
                    "3.0.15-1~deb12u1",
                    "amd64"
                ),
                pkg("libgcc-s1", "12.2.0-14", "gcc-12", "12.2.0-14", "amd64"),
                pkg(
                    "bsdutils",
                    "1:2.38.1-5+deb12u1",
                    "util-linux",
                    "2.38.1-5+deb12u1",
                    "amd64"
                ),
                pkg(
                    "tzdata",
                    "2024a-0+deb12u1",
                    "tzdata",
                    "2024a-0+deb12u1",
                    "all"
                ),
            ]
        );
        assert_eq!(out.bytes, STATUS.len() as u64);
    }

    #[test]
    fn source_with_a_version_keeps_it_and_without_takes_the_binary_version() {
        let out = parse_text(
            parse,
            b"Package: a\nStatus: install ok installed\nSource: s (1.0-1)\nVersion: 1.0-1+b2\n\n\
              Package: b\nStatus: install ok installed\nSource: t\nVersion: 2:3.4\n",
        );
        assert_eq!(out.packages[0].source_version, "1.0-1");
        assert_eq!(out.packages[0].version, "1.0-1+b2");
        assert_eq!(out.packages[1].source_name, "t");
        assert_eq!(out.packages[1].source_version, "2:3.4");
        assert_eq!(out.packages[1].arch, "");
    }

    #[test]
    fn malformed_stanzas_are_skipped_and_counted_and_the_rest_kept() {
        let text = "\
Package: ok1
Status: install ok installed
Version: 1

Package: nover
Status: install ok installed

Status: install ok installed
Version: 1

Package: badstatus
Status: installed
Version: 1

Package: twice
Package: twice
Status: install ok installed
Version: 1

Package: badsrc
Status: install ok installed
Source: x (1.0
Version: 1

Package: multiline
Status: install ok installed
Version: 1
 2

no colon here

Package: ok2
Status: install ok installed
Version: 2
";
        let out = parse_text(parse, text.as_bytes());
        let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["ok1", "ok2"]);
        assert_eq!(out.skipped, 7);
        let first = out.first_skipped.unwrap();
        assert_eq!(first.line, 5);
        assert!(first.reason.contains("no Version"), "{}", first.reason);
    }

    #[test]
    fn crlf_and_whitespace_only_separators_are_understood() {
        let out = parse_text(
            parse,
            b"Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n \t\r\nPackage: b\r\nStatus: install ok installed\r\nVersion: 2\r\n",
        );
        assert_eq!(out.skipped, 0, "{:?}", out.first_skipped);
        assert_eq!(out.packages.len(), 2);
        assert_eq!(out.packages[1].version, "2");
    }

    #[test]
    fn a_cut_description_line_does_not_lose_the_package_but_a_cut_version_does() {
        let mut text =
            String::from("Package: a\nStatus: install ok installed\nVersion: 1\nDescription: x\n ");
        text.push_str(&"y".repeat(MAX_LINE * 2));
        text.push_str("\n\nPackage: b\nStatus: install ok installed\nVersion: ");
        text.push_str(&"9".repeat(MAX_LINE * 2));
        text.push('\n');
        let out = parse_text(parse, text.as_bytes());
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.packages[0].name, "a");
        assert_eq!(out.skipped, 1);
        assert!(out.first_skipped.unwrap().reason.contains("too long"));
    }

    #[test]
    fn garbage_nul_and_one_huge_line_are_skipped_records_not_panics() {
        let nul = vec![0u8; 100_000];
        let out = parse_text(parse, &nul);
        assert!(out.packages.is_empty());
        assert_eq!(out.skipped, 1);
        let huge = vec![b'A'; 10 * 1024 * 1024];
        let out = parse_text(parse, &huge);
        assert!(out.packages.is_empty());
        assert_eq!(out.skipped, 1);
        let out = parse_text(parse, b"\xff\xfe\x00garbage: \xc3\x28\n\n\n");
        assert!(out.packages.is_empty());
        assert_eq!(out.skipped, 1);
        let out = parse_text(
            parse,
            b"Package: caf\xc3\x28\nStatus: install ok installed\nVersion: 1\n",
        );
        assert!(out.packages.is_empty());
        assert_eq!(out.skipped, 1);
    }

    #[test]
    fn source_field_forms() {
        assert_eq!(parse_source("openssl"), Some(("openssl", None)));
        assert_eq!(
            parse_source("gcc-12 (12.2.0-14)"),
            Some(("gcc-12", Some("12.2.0-14")))
        );
        assert_eq!(parse_source(" a  ( 1:2 ) "), Some(("a", Some("1:2"))));
        for bad in ["", "a b", "a (", "a ()", "(1)", "a (1 2)", "a (1))x"] {
            assert_eq!(parse_source(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let out = parse_text(parse, &b);
            prop_assert_eq!(out.bytes, b.len() as u64);
        }

        #[test]
        fn stanza_like_text_never_panics_and_keeps_only_valid_tokens(
            s in "((Package|Status|Version|Source|Architecture|X)?:? ?(install ok installed|[a-z0-9.:~+() -]{0,12})\n{1,2}[ \t]?){0,30}"
        ) {
            let out = parse_text(parse, s.as_bytes());
            for p in &out.packages {
                prop_assert!(valid_token(&p.name) && valid_token(&p.version));
                prop_assert!(valid_token(&p.source_name) && valid_token(&p.source_version));
            }
        }

        #[test]
        fn a_well_formed_stanza_round_trips(
            name in "[a-z0-9][a-z0-9+.-]{0,30}",
            version in "([0-9]{1,3}:)?[0-9][A-Za-z0-9.+~]{0,10}(-[A-Za-z0-9.+~]{1,8})?",
            src in proptest::option::of("[a-z0-9][a-z0-9+.-]{0,20}"),
        ) {
            let mut text = format!("Package: {name}\nStatus: install ok installed\nVersion: {version}\n");
            if let Some(s) = &src {
                text.push_str(&format!("Source: {s}\n"));
            }
            let out = parse_text(parse, text.as_bytes());
            prop_assert_eq!(out.skipped, 0);
            prop_assert_eq!(out.packages.len(), 1);
            let p = &out.packages[0];
            prop_assert_eq!(&p.version, &version);
            prop_assert_eq!(&p.source_name, src.as_ref().unwrap_or(&name));
        }
    }
}
