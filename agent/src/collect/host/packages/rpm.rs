//! The rpm database, read through the `rpm` program (its on-disk formats —
//! Berkeley DB, NDB, SQLite — are rpm's own business).
//!
//! Query: `rpm -qa --root ROOT --qf '%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n'`
//! ([`QUERY_FORMAT`]), run with `LC_ALL=C`, no stdin, a time limit and a
//! bound on its output; anything past either bound is an error and nothing
//! is kept. The query runs only when the root holds an rpm database
//! ([`DB_DIRS`]).
//!
//! Output format: one package a line, six tab-separated fields. The epoch is
//! a number or `(none)`. The package version is `[epoch:]version-release`
//! (no epoch when `(none)`). The source name and version come from the
//! source RPM file name `name-version-release.src.rpm` (or `.nosrc.rpm`),
//! the source version as `[epoch:]version-release` with the binary's epoch
//! (every binary package built from one spec shares its epoch, and the file
//! name carries none). No source RPM (`(none)`, e.g. `gpg-pubkey`) means the
//! package is its own source. A line that breaks these rules is skipped and
//! counted.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use trustwatch_common::host::Package;

use super::super::os_release::resolve_in_root;
use super::{manager, valid_token, LineReader, ParseOutcome, MAX_LINE};

/// Directories, relative to the root, that hold an rpm database.
pub const DB_DIRS: [&str; 2] = ["var/lib/rpm", "usr/lib/sysimage/rpm"];
/// The `--qf` format the parser reads.
pub const QUERY_FORMAT: &str =
    "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n";
/// Default time limit of one query.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default bound on the query's output.
pub const DEFAULT_MAX_OUTPUT: u64 = 64 * 1024 * 1024;
/// How much of rpm's stderr is kept for an error message.
const MAX_STDERR: usize = 2048;

/// Why the rpm query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpmError {
    #[error("cannot run {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("{program} did not finish within {}s", timeout.as_secs_f32())]
    Timeout { program: PathBuf, timeout: Duration },
    #[error("{program} printed more than {max} bytes; refused")]
    TooMuchOutput { program: PathBuf, max: u64 },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("reading the output of {program}: {source}")]
    Read { program: PathBuf, source: io::Error },
}

/// The rpm database directory under `root`, if there is one.
pub fn database_dir(root: &Path) -> Option<PathBuf> {
    DB_DIRS.iter().find_map(|d| {
        let p = resolve_in_root(root, Path::new(d)).ok()?;
        p.is_dir().then(|| root.join(d))
    })
}

/// The `rpm` program on `PATH`, if any.
pub fn find_program() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("rpm"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How to run the query.
#[derive(Debug, Clone)]
pub struct RpmQuery {
    /// The `rpm` program.
    pub program: PathBuf,
    /// Time limit of the whole query.
    pub timeout: Duration,
    /// Bound on its standard output.
    pub max_output: u64,
}

impl RpmQuery {
    /// A query with the default limits.
    pub fn new(program: PathBuf) -> Self {
        RpmQuery {
            program,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }

    /// Runs the query for `root` and parses its output.
    pub fn query(&self, root: &Path) -> Result<ParseOutcome, RpmError> {
        let out = self.run(root)?;
        let mut cursor = io::Cursor::new(out);
        parse(&mut cursor).map_err(|source| RpmError::Read {
            program: self.program.clone(),
            source,
        })
    }

    /// Runs the query for `root`; its standard output.
    pub fn run(&self, root: &Path) -> Result<Vec<u8>, RpmError> {
        let program = self.program.clone();
        let deadline = Instant::now() + self.timeout;
        let mut child = Command::new(&self.program)
            .arg("-qa")
            .arg("--root")
            .arg(root)
            .arg("--qf")
            .arg(QUERY_FORMAT)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RpmError::Spawn {
                program: program.clone(),
                source,
            })?;
        let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(o), Some(e)) => (o, e),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RpmError::Read {
                    program,
                    source: io::Error::other("no pipe to the child"),
                });
            }
        };
        // Readers run on their own threads so the deadline holds even when
        // the child stops writing without exiting.
        let max = self.max_output;
        let (out_tx, out_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = stdout.take(max + 1).read_to_end(&mut buf).map(|_| buf);
            let _ = out_tx.send(r);
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut s = stderr;
            let _ = (&mut s).take(MAX_STDERR as u64).read_to_end(&mut buf);
            // Drain the rest so the child never blocks on a full pipe.
            let _ = io::copy(&mut s, &mut io::sink());
            let _ = err_tx.send(buf);
        });
        let kill = |child: &mut std::process::Child| {
            let _ = child.kill();
            let _ = child.wait();
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let stdout = match out_rx.recv_timeout(remaining) {
            Ok(Ok(b)) if b.len() as u64 > max => {
                kill(&mut child);
                return Err(RpmError::TooMuchOutput { program, max });
            }
            Ok(Ok(b)) => b,
            Ok(Err(source)) => {
                kill(&mut child);
                return Err(RpmError::Read { program, source });
            }
            Err(_) => {
                kill(&mut child);
                return Err(RpmError::Timeout {
                    program,
                    timeout: self.timeout,
                });
            }
        };
        // Output is complete; the child should be exiting. Poll briefly.
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    kill(&mut child);
                    return Err(RpmError::Timeout {
                        program,
                        timeout: self.timeout,
                    });
                }
                Err(source) => {
                    kill(&mut child);
                    return Err(RpmError::Read { program, source });
                }
            }
        };
        if !status.success() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let stderr = err_rx.recv_timeout(remaining).unwrap_or_default();
            let text = String::from_utf8_lossy(&stderr);
            return Err(RpmError::Failed {
                program,
                status: status.to_string(),
                stderr: text.trim().chars().filter(|c| !c.is_control()).collect(),
            });
        }
        Ok(stdout)
    }
}

/// `name-version-release.src.rpm` → `(name, version, release)`.
pub fn parse_srpm(file: &str) -> Option<(&str, &str, &str)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    [name, version, release]
        .iter()
        .all(|s| valid_token(s))
        .then_some((name, version, release))
}

fn parse_line(line: &str) -> Result<Package, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, epoch, version, release, arch, srpm] = fields[..] else {
        return Err(format!("{} fields, expected 6", fields.len()));
    };
    for (what, v) in [
        ("name", name),
        ("version", version),
        ("release", release),
        ("arch", arch),
    ] {
        if !valid_token(v) {
            return Err(format!("invalid {what} {v:?}"));
        }
    }
    let epoch = match epoch {
        "(none)" | "" => None,
        e if e.len() <= 10 && e.bytes().all(|b| b.is_ascii_digit()) => Some(e),
        e => return Err(format!("invalid epoch {e:?}")),
    };
    let evr = |v: &str, r: &str| match epoch {
        Some(e) => format!("{e}:{v}-{r}"),
        None => format!("{v}-{r}"),
    };
    let full = evr(version, release);
    let (source_name, source_version) = match srpm {
        "(none)" => (name.to_owned(), full.clone()),
        s => match parse_srpm(s) {
            Some((n, v, r)) => (n.to_owned(), evr(v, r)),
            None => return Err(format!("invalid source rpm {s:?}")),
        },
    };
    Ok(Package {
        manager: manager::RPM.to_owned(),
        name: name.to_owned(),
        version: full,
        source_name,
        source_version,
        arch: if arch == "(none)" { "" } else { arch }.to_owned(),
    })
}

/// Parses the query's output.
pub fn parse(r: &mut dyn BufRead) -> io::Result<ParseOutcome> {
    let mut lines = LineReader::new(r, MAX_LINE);
    let mut out = ParseOutcome::default();
    let mut buf = Vec::new();
    while let Some(info) = lines.next_line(&mut buf)? {
        if !info.cut && buf.is_empty() {
            continue;
        }
        if info.cut {
            out.skip(info.number, "line too long");
            continue;
        }
        match parse_line(&String::from_utf8_lossy(&buf)) {
            Ok(p) => out.packages.push(p),
            Err(reason) => out.skip(info.number, reason),
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
    use std::os::unix::fs::PermissionsExt;

    const OUTPUT: &str = "\
openssl-libs\t1\t3.0.7\t27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm
bash\t(none)\t5.1.8\t9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm
kernel-core\t(none)\t5.14.0\t427.13.1.el9_4\tx86_64\tkernel-5.14.0-427.13.1.el9_4.src.rpm
gpg-pubkey\t(none)\tfd431d51\t4ae0493b\t(none)\t(none)
python3-dateutil\t1\t2.8.1\t7.el9\tnoarch\tpython-dateutil-2.8.1-7.el9.src.rpm
";

    fn row(p: &Package) -> String {
        format!(
            "{} {} {} {} {}",
            p.name, p.version, p.source_name, p.source_version, p.arch
        )
    }

    #[test]
    fn query_output_gives_epochs_and_source_packages() {
        let out = parse_text(parse, OUTPUT.as_bytes());
        assert_eq!(out.skipped, 0, "{:?}", out.first_skipped);
        let rows: Vec<_> = out.packages.iter().map(row).collect();
        assert_eq!(
            rows,
            vec![
                "openssl-libs 1:3.0.7-27.el9 openssl 1:3.0.7-27.el9 x86_64",
                "bash 5.1.8-9.el9 bash 5.1.8-9.el9 x86_64",
                "kernel-core 5.14.0-427.13.1.el9_4 kernel 5.14.0-427.13.1.el9_4 x86_64",
                "gpg-pubkey fd431d51-4ae0493b gpg-pubkey fd431d51-4ae0493b ",
                "python3-dateutil 1:2.8.1-7.el9 python-dateutil 1:2.8.1-7.el9 noarch",
            ]
        );
        assert!(out.packages.iter().all(|p| p.manager == "rpm"));
    }

    #[test]
    fn bad_rpm_lines_are_counted_and_the_rest_kept() {
        let text = "a\t(none)\t1\t1\tx86_64\ta-1-1.src.rpm\nonly\tthree\tfields\nb\tx\t1\t1\tx86_64\t(none)\nc\t(none)\t1\t1\tx86_64\tnot-an-srpm\n\nd\t(none)\t1\t1\tx86_64\t(none)\n";
        let out = parse_text(parse, text.as_bytes());
        let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["a", "d"]);
        assert_eq!(out.skipped, 3);
        assert_eq!(out.first_skipped.unwrap().line, 2);
    }

    #[test]
    fn srpm_file_names_split_at_the_last_two_dashes() {
        assert_eq!(
            parse_srpm("python-dateutil-2.8.1-7.el9.src.rpm"),
            Some(("python-dateutil", "2.8.1", "7.el9"))
        );
        assert_eq!(parse_srpm("x-1-2.nosrc.rpm"), Some(("x", "1", "2")));
        for bad in ["x-1.src.rpm", "x-1-2.rpm", "-1-2.src.rpm", "(none)"] {
            assert_eq!(parse_srpm(bad), None, "{bad}");
        }
    }

    fn fake_rpm(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("rpm");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn the_query_passes_root_and_format_and_reads_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let args = dir.path().join("args");
        let prog = fake_rpm(
            dir.path(),
            &format!(
                "printf '%s\\n' \"$@\" > {}\nprintf 'bash\\t(none)\\t5.1.8\\t9.el9\\tx86_64\\tbash-5.1.8-9.el9.src.rpm\\n'",
                args.display()
            ),
        );
        let q = RpmQuery::new(prog);
        let out = q.query(Path::new("/some/root")).unwrap();
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.packages[0].source_version, "5.1.8-9.el9");
        let seen = std::fs::read_to_string(args).unwrap();
        assert_eq!(
            seen,
            format!("-qa\n--root\n/some/root\n--qf\n{QUERY_FORMAT}\n")
        );
    }

    #[test]
    fn an_rpm_that_hangs_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let prog = fake_rpm(dir.path(), "exec sleep 30");
        let q = RpmQuery {
            timeout: Duration::from_millis(300),
            ..RpmQuery::new(prog)
        };
        let t = Instant::now();
        let e = q.run(Path::new("/")).unwrap_err();
        assert!(matches!(e, RpmError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn an_rpm_that_prints_too_much_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let prog = fake_rpm(dir.path(), "exec yes 'x\tx\tx'");
        let q = RpmQuery {
            max_output: 100_000,
            ..RpmQuery::new(prog)
        };
        let e = q.run(Path::new("/")).unwrap_err();
        assert!(
            matches!(e, RpmError::TooMuchOutput { max: 100_000, .. }),
            "{e}"
        );
    }

    #[test]
    fn an_rpm_that_fails_reports_its_status_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let prog = fake_rpm(
            dir.path(),
            "echo 'error: cannot open Packages database' >&2\nexit 1",
        );
        let e = RpmQuery::new(prog).run(Path::new("/")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, RpmError::Failed { .. }), "{msg}");
        assert!(msg.contains("cannot open Packages database"), "{msg}");
        let missing = RpmQuery::new(dir.path().join("nope")).run(Path::new("/"));
        assert!(matches!(missing, Err(RpmError::Spawn { .. })));
    }

    #[test]
    fn the_real_rpm_if_installed_reads_an_empty_root_without_panicking() {
        // rpm is probably not installed here; when it is, an empty root must
        // give an empty list or a clear error.
        let Some(prog) = find_program() else {
            return;
        };
        let root = tempfile::tempdir().unwrap();
        match RpmQuery::new(prog).query(root.path()) {
            Ok(out) => assert!(out.packages.is_empty()),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let out = parse_text(parse, &b);
            prop_assert_eq!(out.bytes, b.len() as u64);
        }

        #[test]
        fn tab_separated_text_keeps_only_valid_tokens(s in "([a-z0-9().:-]{0,8}\t?){0,7}(\n[a-z0-9().:\t-]{0,20}){0,10}") {
            let out = parse_text(parse, s.as_bytes());
            for p in &out.packages {
                prop_assert!(valid_token(&p.name) && valid_token(&p.version) && valid_token(&p.source_name) && valid_token(&p.source_version));
            }
        }
    }

    /// Properties of the query-output parser: any bytes give one package or
    /// one skip per non-empty line, the sum of the lines read alone;
    /// well-formed `--qf` lines come back exactly; garbage lines between
    /// them are counted and never cost a well-formed package; source RPM
    /// file names split back into what they were built from.
    mod properties {

        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::{select, Index};

        use crate::collect::host::packages::rpm::{parse, parse_srpm};
        use crate::collect::host::packages::testutil::{self, parse_text};
        use crate::collect::host::packages::{valid_token, MAX_LINE};
        use trustwatch_common::host::Package;

        fn assert_shape(p: &Package) -> Result<(), TestCaseError> {
            prop_assert_eq!(p.manager.as_str(), "rpm");
            for v in [&p.name, &p.version, &p.source_name, &p.source_version] {
                prop_assert!(valid_token(v), "{:?}", p);
            }
            // `[epoch:]version-release`, both sides.
            prop_assert!(
                p.version.contains('-') && p.source_version.contains('-'),
                "{:?}",
                p
            );
            prop_assert!(p.arch.is_empty() || valid_token(&p.arch), "{:?}", p);
            Ok(())
        }

        /// Query-output-like bytes: fields, tabs, newlines and random bytes.
        fn output_like() -> impl Strategy<Value = Vec<u8>> {
            testutil::noise(
                vec![
                    "bash",
                    "\t",
                    "\t",
                    "(none)",
                    "1",
                    "5.1.8",
                    "9.el9",
                    "x86_64",
                    "bash-5.1.8-9.el9.src.rpm",
                    ".nosrc.rpm",
                    "-",
                    "\n",
                    "\r\n",
                    " ",
                    "bash\t(none)\t5.1.8\t9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\n",
                ],
                60,
            )
        }

        fn name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9][A-Za-z0-9_+.-]{0,20}"
        }

        /// An rpm version or release: no `-`.
        fn part() -> impl Strategy<Value = String> {
            "[A-Za-z0-9._+~^]{1,12}"
        }

        /// One package as `rpm -qa --qf` prints it.
        #[derive(Debug, Clone)]
        struct Rpm {
            name: String,
            epoch: Option<u32>,
            version: String,
            release: String,
            /// `None` prints `(none)`.
            arch: Option<String>,
            /// Source name, version, release and suffix; `None` prints `(none)`.
            srpm: Option<(String, String, String, &'static str)>,
        }

        impl Rpm {
            fn fields(&self) -> Vec<Vec<u8>> {
                let none = || "(none)".to_owned();
                [
                    self.name.clone(),
                    self.epoch.map_or_else(none, |e| e.to_string()),
                    self.version.clone(),
                    self.release.clone(),
                    self.arch.clone().unwrap_or_else(none),
                    self.srpm
                        .as_ref()
                        .map_or_else(none, |(n, v, r, s)| format!("{n}-{v}-{r}{s}")),
                ]
                .into_iter()
                .map(String::into_bytes)
                .collect()
            }

            fn line(&self) -> Vec<u8> {
                self.fields().join(&b'\t')
            }

            fn expected(&self) -> Package {
                let evr = |v: &str, r: &str| match self.epoch {
                    Some(e) => format!("{e}:{v}-{r}"),
                    None => format!("{v}-{r}"),
                };
                let version = evr(&self.version, &self.release);
                let (source_name, source_version) = match &self.srpm {
                    None => (self.name.clone(), version.clone()),
                    Some((n, v, r, _)) => (n.clone(), evr(v, r)),
                };
                Package {
                    manager: "rpm".into(),
                    name: self.name.clone(),
                    version,
                    source_name,
                    source_version,
                    arch: self.arch.clone().unwrap_or_default(),
                }
            }
        }

        fn rpm() -> impl Strategy<Value = Rpm> {
            (
                name(),
                proptest::option::of(prop_oneof![0u32..100, any::<u32>()]),
                part(),
                part(),
                proptest::option::of(
                    select(vec![
                        "x86_64", "noarch", "i686", "aarch64", "ppc64le", "s390x", "armv7hl",
                    ])
                    .prop_map(String::from),
                ),
                proptest::option::of((
                    name(),
                    part(),
                    part(),
                    select(vec![".src.rpm", ".nosrc.rpm"]),
                )),
            )
                .prop_map(|(name, epoch, version, release, arch, srpm)| Rpm {
                    name,
                    epoch,
                    version,
                    release,
                    arch,
                    srpm,
                })
        }

        /// A line with one defect the module doc names.
        fn defective(p: &Rpm, defect: u8, at: Index) -> Vec<u8> {
            let mut fields = p.fields();
            match defect {
                // Cut before the sixth field: fewer than six fields.
                0 => {
                    let line = p.line();
                    let fifth_tab = line
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b'\t')
                        .nth(4)
                        .map_or(line.len(), |(i, _)| i);
                    return line[..at.index(fifth_tab) + 1].to_vec();
                }
                1 => fields.push(b"extra".to_vec()),
                2 => {
                    let bad = [
                        "x",
                        "-1",
                        "12345678901",
                        "1.0",
                        " 1",
                        "0x1",
                        "(None)",
                        "none",
                    ];
                    fields[1] = bad[at.index(bad.len())].as_bytes().to_vec();
                }
                3 => {
                    let bad: [&[u8]; 4] = [b"", b"a b", b"x\xffy", b"a\x01b"];
                    // Every (field, bad value) pair: name, version, release, arch.
                    let k = at.index(4 * bad.len());
                    fields[[0, 2, 3, 4][k % 4]] = bad[k / 4].to_vec();
                }
                4 => {
                    let bad = [
                        "foo",
                        "x-1.src.rpm",
                        "x-1-2.rpm",
                        "-1-2.src.rpm",
                        "",
                        "x-1-2.src.rpm.sig",
                        "x--2.src.rpm",
                        "x-1-.src.rpm",
                        "x-1-2 .src.rpm",
                        "none",
                    ];
                    fields[5] = bad[at.index(bad.len())].as_bytes().to_vec();
                }
                _ => {
                    let mut line = p.line();
                    line.resize(MAX_LINE + 1 + at.index(100), b'x');
                    return line;
                }
            }
            fields.join(&b'\t')
        }

        /// A garbage line, and whether the parser must count it.
        fn junk() -> impl Strategy<Value = (Vec<u8>, bool)> {
            prop_oneof![
                2 => (rpm(), 0u8..6, any::<Index>())
                    .prop_map(|(p, d, at)| (defective(&p, d, at), true)),
                // Empty lines are passed over; blank ones are one field.
                1 => select(vec![("", false), (" ", true), ("\t", true), (" \t ", true)])
                    .prop_map(|(l, counted)| (l.as_bytes().to_vec(), counted)),
                // Printable text without a tab: one field.
                1 => "[ -~]{1,40}".prop_map(|l| (l.into_bytes(), true)),
                // Random bytes behind a byte that is not UTF-8: an invalid name.
                1 => vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..60)
                    .prop_map(|mut v| {
                        v.insert(0, 0xff);
                        (v, true)
                    }),
            ]
        }

        fn assemble(lines: &[Vec<u8>], crlf: bool, final_eol: bool) -> Vec<u8> {
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut out = lines.join(eol);
            if final_eol && !lines.is_empty() {
                out.extend_from_slice(eol);
            }
            out
        }

        proptest! {
            #[test]
            fn any_bytes_give_one_package_or_one_skip_per_non_empty_line(
                bytes in prop_oneof![vec(any::<u8>(), 0..2048), output_like()],
                cap in 1usize..64,
            ) {
                let out = parse_text(parse, &bytes);
                prop_assert_eq!(out.bytes, bytes.len() as u64);
                prop_assert_eq!(&testutil::parse_chunked(parse, &bytes, cap), &out);
                prop_assert_eq!(out.first_skipped.is_some(), out.skipped > 0);
                for p in &out.packages {
                    assert_shape(p)?;
                }
                let mut records = 0;
                let mut packages = Vec::new();
                let mut first_line = None;
                for (i, line) in testutil::lines_of(&bytes).into_iter().enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    records += 1;
                    let one = parse_text(parse, line);
                    prop_assert_eq!(one.packages.len() + one.skipped, 1, "{:?}", one);
                    if one.skipped > 0 {
                        first_line.get_or_insert(i as u64 + 1);
                    }
                    packages.extend(one.packages);
                }
                prop_assert_eq!(out.packages.len() + out.skipped, records);
                prop_assert_eq!(out.packages, packages);
                prop_assert_eq!(out.first_skipped.map(|s| s.line), first_line);
            }

            #[test]
            fn well_formed_lines_come_back_exactly_and_in_order(
                pkgs in vec((rpm(), 0usize..2), 0..16),
                crlf in any::<bool>(),
                final_eol in prop::bool::weighted(0.8),
                cap in 1usize..64,
            ) {
                let mut lines = Vec::new();
                for (p, empty_lines_after) in &pkgs {
                    lines.push(p.line());
                    lines.extend(std::iter::repeat_n(Vec::new(), *empty_lines_after));
                }
                let bytes = assemble(&lines, crlf, final_eol);
                let out = parse_text(parse, &bytes);
                prop_assert_eq!(out.skipped, 0, "{:?}", out.first_skipped);
                let want: Vec<Package> = pkgs.iter().map(|(p, _)| p.expected()).collect();
                prop_assert_eq!(&out.packages, &want);
                prop_assert_eq!(out.bytes, bytes.len() as u64);
                prop_assert_eq!(&testutil::parse_chunked(parse, &bytes, cap), &out);
            }

            #[test]
            fn garbage_lines_are_counted_and_never_cost_a_good_one(
                entries in vec(prop_oneof![
                    3 => rpm().prop_map(Ok),
                    2 => junk().prop_map(Err),
                ], 0..24),
                crlf in any::<bool>(),
                final_eol in prop::bool::weighted(0.8),
            ) {
                let lines: Vec<Vec<u8>> = entries
                    .iter()
                    .map(|e| match e {
                        Ok(p) => p.line(),
                        Err((line, _)) => line.clone(),
                    })
                    .collect();
                let bytes = assemble(&lines, crlf, final_eol);
                let out = parse_text(parse, &bytes);
                let want: Vec<Package> =
                    entries.iter().filter_map(|e| e.as_ref().ok().map(Rpm::expected)).collect();
                let counted: Vec<u64> = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| matches!(e, Err((_, true))))
                    .map(|(i, _)| i as u64 + 1)
                    .collect();
                prop_assert_eq!(&out.packages, &want);
                prop_assert_eq!(out.skipped, counted.len(), "{:?}", out.first_skipped);
                prop_assert_eq!(out.first_skipped.map(|s| s.line), counted.first().copied());
                prop_assert_eq!(out.bytes, bytes.len() as u64);
            }

            #[test]
            fn a_source_rpm_name_splits_back_into_name_version_release(
                n in name(),
                v in part(),
                r in part(),
                suffix in select(vec![".src.rpm", ".nosrc.rpm"]),
            ) {
                let file = format!("{n}-{v}-{r}{suffix}");
                prop_assert_eq!(parse_srpm(&file), Some((n.as_str(), v.as_str(), r.as_str())));
            }

            #[test]
            fn a_parsed_source_rpm_name_is_a_decomposition_of_its_text(
                s in prop_oneof![
                    "[a-z0-9. -]{0,16}(\\.src\\.rpm|\\.nosrc\\.rpm)?",
                    "\\PC{0,16}(\\.src\\.rpm|\\.nosrc\\.rpm)?",
                ],
            ) {
                if let Some((n, v, r)) = parse_srpm(&s) {
                    for t in [n, v, r] {
                        prop_assert!(valid_token(t), "{:?}", t);
                    }
                    prop_assert!(!v.contains('-') && !r.contains('-'), "{:?}", (n, v, r));
                    let stem = format!("{n}-{v}-{r}");
                    prop_assert!(
                        s == format!("{stem}.src.rpm") || s == format!("{stem}.nosrc.rpm"),
                        "{:?} from {:?}", (n, v, r), s
                    );
                }
            }
        }
    }
}
