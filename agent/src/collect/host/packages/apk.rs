//! The apk installed database, `<root>/lib/apk/db/installed`.
//!
//! Format (apk-tools): stanzas separated by blank lines; every line is
//! `K:value` with a one-character key. Kept keys: `P` (name), `V` (version),
//! `A` (arch), `o` (origin, the source package). Every package listed is
//! installed. The source name is the origin (the name itself when there is
//! no `o:`); the source version is `V` (an origin's packages share it).
//!
//! A stanza is malformed (skipped, counted) when a line is not `K:value`,
//! a kept key repeats or was cut for length, `P` or `V` is missing, or a
//! kept value is not a valid token.

use std::io::{self, BufRead};

use trustwatch_common::host::Package;

use super::{manager, valid_token, LineReader, ParseOutcome, MAX_LINE};

/// Where the database is, relative to the root.
pub const INSTALLED_PATH: &str = "lib/apk/db/installed";

#[derive(Debug, Default)]
struct Stanza {
    start: u64,
    seen_line: bool,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    problem: Option<String>,
}

impl Stanza {
    fn fail(&mut self, reason: String) {
        if self.problem.is_none() {
            self.problem = Some(reason);
        }
    }

    fn line(&mut self, number: u64, bytes: &[u8], cut: bool) {
        if !self.seen_line {
            self.seen_line = true;
            self.start = number;
        }
        let (key, value) = match bytes {
            [k, b':', rest @ ..] if k.is_ascii_alphanumeric() => (*k, rest),
            _ => {
                self.fail(format!("line {number} is not K:value"));
                return;
            }
        };
        let slot = match key {
            b'P' => &mut self.name,
            b'V' => &mut self.version,
            b'A' => &mut self.arch,
            b'o' => &mut self.origin,
            _ => return,
        };
        let key = char::from(key);
        if cut {
            self.fail(format!("{key}: is too long"));
        } else if slot.is_some() {
            self.fail(format!("{key}: repeats"));
        } else {
            *slot = Some(String::from_utf8_lossy(value).into_owned());
        }
    }

    fn finish(self) -> Result<Package, String> {
        if let Some(p) = self.problem {
            return Err(p);
        }
        let name = match self.name {
            Some(n) if valid_token(&n) => n,
            Some(n) => return Err(format!("invalid package name {n:?}")),
            None => return Err("no P: (name)".into()),
        };
        let version = match self.version {
            Some(v) if valid_token(&v) => v,
            Some(v) => return Err(format!("package {name:?} has an invalid version {v:?}")),
            None => return Err(format!("package {name:?} has no V: (version)")),
        };
        let arch = match self.arch {
            None => String::new(),
            Some(a) if valid_token(&a) => a,
            Some(a) => return Err(format!("package {name:?} has an invalid arch {a:?}")),
        };
        let source_name = match self.origin {
            None => name.clone(),
            Some(o) if valid_token(&o) => o,
            Some(o) => return Err(format!("package {name:?} has an invalid origin {o:?}")),
        };
        Ok(Package {
            manager: manager::APK.to_owned(),
            source_version: version.clone(),
            name,
            version,
            source_name,
            arch,
        })
    }
}

/// Parses an installed database.
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
                    Ok(p) => out.packages.push(p),
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

    const DB: &str = "\
C:Q1abcdefghijklmnopqrstuvwxyz0123=
P:libcrypto3
V:3.3.2-r0
A:x86_64
S:1782384
I:4534272
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1725354400
c:3c9d1d6a1a0b0c2e4ef5e8a3c3a7d4c2f0b3e1a9
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:lib
R:libcrypto.so.3
a:0:0:755
Z:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=

C:Q1zzz=
P:musl
V:1.2.5-r0
A:x86_64
F:lib
R:ld-musl-x86_64.so.1

P:busybox
V:1.36.1-r29
A:x86_64
o:busybox
";

    #[test]
    fn packages_origins_and_versions_are_read() {
        let out = parse_text(parse, DB.as_bytes());
        assert_eq!(out.skipped, 0, "{:?}", out.first_skipped);
        let got: Vec<_> = out
            .packages
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {} {} {}",
                    p.manager, p.name, p.version, p.source_name, p.source_version, p.arch
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "apk libcrypto3 3.3.2-r0 openssl 3.3.2-r0 x86_64",
                "apk musl 1.2.5-r0 musl 1.2.5-r0 x86_64",
                "apk busybox 1.36.1-r29 busybox 1.36.1-r29 x86_64",
            ]
        );
    }

    #[test]
    fn malformed_apk_stanzas_are_counted_and_the_rest_kept() {
        let text = "P:a\nV:1-r0\n\nP:noversion\n\nV:1-r0\n\nP:b\nP:b\nV:1\n\nnot a line\nP:c\nV:1\n\nP:ok\nV:2-r1\n";
        let out = parse_text(parse, text.as_bytes());
        let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["a", "ok"]);
        assert_eq!(out.skipped, 4);
        assert_eq!(out.first_skipped.unwrap().line, 4);
    }

    #[test]
    fn hostile_apk_input_is_skipped_not_a_panic() {
        for input in [
            vec![0u8; 70_000],
            vec![b'P'; 10 << 20],
            b"P:\xff\nV:1\n".to_vec(),
        ] {
            let out = parse_text(parse, &input);
            assert!(out.packages.is_empty());
            assert_eq!(out.skipped, 1);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let out = parse_text(parse, &b);
            prop_assert_eq!(out.bytes, b.len() as u64);
        }

        #[test]
        fn apk_like_text_keeps_only_valid_tokens(s in "([PVAoRF]?:?[a-z0-9._ -]{0,10}\n{1,2}){0,30}") {
            let out = parse_text(parse, s.as_bytes());
            for p in &out.packages {
                prop_assert!(valid_token(&p.name) && valid_token(&p.version) && valid_token(&p.source_name));
                prop_assert_eq!(&p.version, &p.source_version);
            }
        }
    }

    /// Properties of the installed-database parser: any bytes give one
    /// package or one skip per stanza, the sum of the stanzas read alone;
    /// well-formed stanzas come back exactly; garbage stanzas between them
    /// are counted and never cost a well-formed package.
    mod properties {

        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::{select, Index};

        use crate::collect::host::packages::apk::parse;
        use crate::collect::host::packages::testutil::{self, parse_text};
        use crate::collect::host::packages::{valid_token, MAX_LINE};
        use trustwatch_common::host::Package;

        /// Maximal runs of lines that are not blank, each with its first
        /// line's 1-based number.
        fn stanzas_of(bytes: &[u8]) -> Vec<(u64, Vec<&[u8]>)> {
            let mut out: Vec<(u64, Vec<&[u8]>)> = Vec::new();
            let mut open = false;
            for (i, line) in testutil::lines_of(bytes).into_iter().enumerate() {
                if line.iter().all(|b| matches!(b, b' ' | b'\t')) {
                    open = false;
                } else if open {
                    if let Some(last) = out.last_mut() {
                        last.1.push(line);
                    }
                } else {
                    out.push((i as u64 + 1, vec![line]));
                    open = true;
                }
            }
            out
        }

        fn assert_shape(p: &Package) -> Result<(), TestCaseError> {
            prop_assert_eq!(p.manager.as_str(), "apk");
            for v in [&p.name, &p.version, &p.source_name, &p.source_version] {
                prop_assert!(valid_token(v), "{:?}", p);
            }
            prop_assert_eq!(&p.version, &p.source_version);
            prop_assert!(p.arch.is_empty() || valid_token(&p.arch), "{:?}", p);
            Ok(())
        }

        /// Installed-database-like bytes: key lines, blank lines and random
        /// bytes, glued together.
        fn stanza_like() -> impl Strategy<Value = Vec<u8>> {
            testutil::noise(
                vec![
                    "P:musl\n",
                    "P:\n",
                    "V:1.2.5-r0\n",
                    "V:1 r0\n",
                    "A:x86_64\n",
                    "o:openssl\n",
                    "T:a description: with colons\n",
                    "C:Q1zzz=\n",
                    "not a line\n",
                    "\n",
                    " \n",
                    "\r\n",
                    "P:a\nV:1-r0\n",
                ],
                40,
            )
        }

        fn name() -> impl Strategy<Value = String> {
            "[a-z0-9][a-z0-9_+.-]{0,20}"
        }

        /// apk versions: `1.2.3[letter][_suffix[N]]-rN`.
        fn version() -> impl Strategy<Value = String> {
            "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}[a-z]?(_(alpha|beta|pre|rc|p)[0-9]{0,3})?-r[0-9]{1,3}"
        }

        /// One package as the test writes it.
        #[derive(Debug, Clone)]
        struct Apk {
            name: String,
            version: String,
            arch: Option<String>,
            origin: Option<String>,
        }

        impl Apk {
            fn expected(&self) -> Package {
                Package {
                    manager: "apk".into(),
                    name: self.name.clone(),
                    version: self.version.clone(),
                    source_name: self.origin.clone().unwrap_or(self.name.clone()),
                    source_version: self.version.clone(),
                    arch: self.arch.clone().unwrap_or_default(),
                }
            }
        }

        fn apk() -> impl Strategy<Value = Apk> {
            (
                name(),
                version(),
                proptest::option::of(
                    select(vec![
                        "x86_64", "aarch64", "armv7", "armhf", "x86", "ppc64le", "s390x", "noarch",
                    ])
                    .prop_map(String::from),
                ),
                proptest::option::of(name()),
            )
                .prop_map(|(name, version, arch, origin)| Apk {
                    name,
                    version,
                    arch,
                    origin,
                })
        }

        /// A line whose key the parser does not keep.
        fn other_line() -> impl Strategy<Value = String> {
            prop_oneof![
                select(vec![
                    "C:Q1abcdefghijklmnopqrstuvwxyz0123=",
                    "S:1782384",
                    "I:4534272",
                    "T:Crypto library from openssl",
                    "U:https://www.openssl.org/",
                    "L:Apache-2.0",
                    "m:Ariadne Conill <ariadne@dereferenced.org>",
                    "t:1725354400",
                    "c:3c9d1d6a1a0b0c2e4ef5e8a3c3a7d4c2f0b3e1a9",
                    "D:so:libc.musl-x86_64.so.1 /bin/sh",
                    "p:so:libcrypto.so.3=3",
                    "F:lib",
                    "R:libcrypto.so.3",
                    "a:0:0:755",
                    "M:0:0:755",
                    "Z:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ])
                .prop_map(String::from),
                ("[B-OQ-UW-Za-np-z0-9]", "[ -~]{0,30}").prop_map(|(k, v)| format!("{k}:{v}")),
            ]
        }

        /// A well-formed stanza for `a`, its lines in any order among lines
        /// the parser does not keep.
        fn good_stanza() -> impl Strategy<Value = (Apk, Vec<String>)> {
            (apk(), vec(other_line(), 0..8)).prop_flat_map(|(a, others)| {
                let mut lines = vec![format!("P:{}", a.name), format!("V:{}", a.version)];
                if let Some(arch) = &a.arch {
                    lines.push(format!("A:{arch}"));
                }
                if let Some(o) = &a.origin {
                    lines.push(format!("o:{o}"));
                }
                lines.extend(others);
                (Just(a), Just(lines).prop_shuffle())
            })
        }

        /// A stanza with one defect the module doc names.
        fn defective(a: &Apk, defect: u8, at: Index) -> Vec<Vec<u8>> {
            let mut lines = testutil::bytes_of(&[
                format!("P:{}", a.name),
                format!("V:{}", a.version),
                "S:1782384".to_owned(),
            ]);
            let anywhere = at.index(lines.len() + 1);
            let long = |key: &[u8]| {
                let mut l = key.to_vec();
                l.resize(MAX_LINE + 1 + at.index(100), b'1');
                l
            };
            match defect {
                0 => drop(lines.remove(1)),
                1 => drop(lines.remove(0)),
                2 => lines.insert(anywhere, format!("P:{}", a.name).into_bytes()),
                3 => lines.insert(anywhere, format!("V:{}", a.version).into_bytes()),
                4 => {
                    lines.insert(anywhere, b"o:one".to_vec());
                    lines.push(b"o:two".to_vec());
                }
                5 => {
                    lines.insert(anywhere, b"A:x86_64".to_vec());
                    lines.push(b"A:x86_64".to_vec());
                }
                6 => {
                    let bad: [&[u8]; 7] = [
                        b"not a line",
                        b"PV:1",
                        b":x",
                        b"P",
                        b"P :x",
                        b"-:x",
                        b"\xff:x",
                    ];
                    lines.insert(anywhere, bad[at.index(bad.len())].to_vec());
                }
                7 => lines[0] = b"P:".to_vec(),
                8 => lines[1] = b"V:".to_vec(),
                9 => lines[0] = b"P:a b".to_vec(),
                10 => lines[1] = b"V:1.0 r0".to_vec(),
                11 => lines.push(b"A:x 86".to_vec()),
                12 => lines.push(b"o:".to_vec()),
                13 => lines[0] = b"P:caf\xc3\x28".to_vec(),
                14 => lines[0] = long(b"P:"),
                15 => lines[1] = long(b"V:"),
                _ => lines.push(long(b"A:")),
            }
            lines
        }

        /// A garbage stanza; the parser must count every one.
        fn junk() -> impl Strategy<Value = Vec<Vec<u8>>> {
            prop_oneof![
                (apk(), 0u8..17, any::<Index>()).prop_map(|(a, d, at)| defective(&a, d, at)),
                // Only keys the parser does not keep: no P.
                vec(other_line(), 1..4).prop_map(|l| testutil::bytes_of(&l)),
                // Random lines, one of which starts with a byte that is not
                // an ASCII letter or digit, so it is not K:value.
                (
                    vec("[!-~][ -~]{0,40}", 0..4),
                    vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..40),
                    any::<Index>(),
                )
                    .prop_map(|(printable, mut foreign, at)| {
                        foreign.insert(0, 0xff);
                        let mut lines: Vec<Vec<u8>> =
                            printable.into_iter().map(String::into_bytes).collect();
                        lines.insert(at.index(lines.len() + 1), foreign);
                        lines
                    }),
            ]
        }

        #[derive(Debug, Clone)]
        enum Entry {
            Good(Apk, Vec<Vec<u8>>),
            Junk(Vec<Vec<u8>>),
        }

        fn entries() -> impl Strategy<Value = Vec<Entry>> {
            let good = (good_stanza(), prop::bool::weighted(0.1)).prop_map(|((a, lines), huge)| {
                let mut lines = testutil::bytes_of(&lines);
                if huge {
                    // An unkept key cut for length costs nothing.
                    let mut t = b"T:".to_vec();
                    t.resize(MAX_LINE + 10, b'y');
                    lines.push(t);
                }
                Entry::Good(a, lines)
            });
            vec(
                prop_oneof![3 => good, 2 => junk().prop_map(Entry::Junk)],
                0..12,
            )
        }

        proptest! {
            #[test]
            fn any_bytes_give_one_package_or_one_skip_per_stanza(
                bytes in prop_oneof![vec(any::<u8>(), 0..2048), stanza_like()],
                cap in 1usize..64,
            ) {
                let out = parse_text(parse, &bytes);
                prop_assert_eq!(out.bytes, bytes.len() as u64);
                prop_assert_eq!(&testutil::parse_chunked(parse, &bytes, cap), &out);
                prop_assert_eq!(out.first_skipped.is_some(), out.skipped > 0);
                for p in &out.packages {
                    assert_shape(p)?;
                }
                let stanzas = stanzas_of(&bytes);
                prop_assert_eq!(out.packages.len() + out.skipped, stanzas.len());
                let mut packages = Vec::new();
                let mut first_line = None;
                for (start, lines) in &stanzas {
                    let mut alone = lines.join(&b'\n');
                    alone.push(b'\n');
                    let one = parse_text(parse, &alone);
                    prop_assert_eq!(one.packages.len() + one.skipped, 1, "{:?}", one);
                    if let Some(s) = &one.first_skipped {
                        prop_assert_eq!(s.line, 1, "a skip is reported at its stanza's start");
                        first_line.get_or_insert(*start);
                    }
                    packages.extend(one.packages);
                }
                prop_assert_eq!(out.packages, packages);
                prop_assert_eq!(out.first_skipped.map(|s| s.line), first_line);
            }

            #[test]
            fn well_formed_stanzas_come_back_exactly_and_in_order(
                (goods, layout) in vec(good_stanza(), 0..8)
                    .prop_flat_map(|g| { let n = g.len(); (Just(g), testutil::layout(n)) }),
                cap in 1usize..64,
            ) {
                let stanzas: Vec<_> = goods.iter().map(|(_, l)| testutil::bytes_of(l)).collect();
                let want: Vec<Package> = goods.iter().map(|(a, _)| a.expected()).collect();
                testutil::check_round_trip(parse, &stanzas, &layout, &want, cap)?;
            }

            #[test]
            fn garbage_stanzas_are_counted_and_never_cost_a_good_one(
                (entries, layout) in entries()
                    .prop_flat_map(|e| { let n = e.len(); (Just(e), testutil::layout(n)) }),
            ) {
                let stanzas: Vec<Vec<Vec<u8>>> = entries
                    .iter()
                    .map(|e| match e {
                        Entry::Good(_, l) | Entry::Junk(l) => l.clone(),
                    })
                    .collect();
                let (bytes, starts) = testutil::assemble(&stanzas, &layout);
                let out = parse_text(parse, &bytes);
                let want: Vec<Package> = entries
                    .iter()
                    .filter_map(|e| match e {
                        Entry::Good(a, _) => Some(a.expected()),
                        Entry::Junk(_) => None,
                    })
                    .collect();
                let counted: Vec<u64> = entries
                    .iter()
                    .zip(&starts)
                    .filter(|(e, _)| matches!(e, Entry::Junk(_)))
                    .map(|(_, start)| *start)
                    .collect();
                prop_assert_eq!(&out.packages, &want);
                prop_assert_eq!(out.skipped, counted.len(), "{:?}", out.first_skipped);
                prop_assert_eq!(out.first_skipped.map(|s| s.line), counted.first().copied());
                prop_assert_eq!(out.bytes, bytes.len() as u64);
            }
        }
    }
}
