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
}
