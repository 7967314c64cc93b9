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
}
