//! The package inventory of a root directory: which package databases it
//! holds (dpkg, rpm, apk), what each lists as installed, and the bounded
//! line reader and checks the three parsers share.
//!
//! Invariants, for every database:
//! - A parser is total: any bytes give a [`ParseOutcome`], never a panic. A
//!   malformed record (stanza or line) is skipped and counted, the rest kept.
//! - A file is read as a stream of lines; a line longer than [`MAX_LINE`]
//!   is cut (the rest is discarded, and a cut line in a field that is kept
//!   makes its record malformed), and a file larger than [`MAX_DB_BYTES`] is
//!   refused whole. Memory stays bounded by the line cap and the packages kept.
//! - A kept value (name, version, arch, source) is a [`valid_token`]: 1 to
//!   [`MAX_TOKEN`] bytes, no whitespace, no control character, no
//!   replacement character (from bytes that were not UTF-8).
//! - Versions are kept verbatim (epochs included), in the manager's own
//!   syntax; the server compares them with `trustwatch_common::version`.
//!
//! Output: packages sorted by manager, name, arch and version, so that the
//! same database always gives the same inventory.

pub mod apk;
pub mod dpkg;
pub mod rpm;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use trustwatch_common::host::Package;

use super::os_release::resolve_in_root;

/// Largest package database file read (a real one is a few MiB).
pub const MAX_DB_BYTES: u64 = 512 * 1024 * 1024;
/// Longest line kept; the rest of a longer line is discarded.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest name, version, arch or source value accepted.
pub const MAX_TOKEN: usize = 256;

/// The `manager` values of [`Package`].
pub mod manager {
    pub const DPKG: &str = "dpkg";
    pub const RPM: &str = "rpm";
    pub const APK: &str = "apk";
}

/// Why a package database could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is larger than {max} bytes; refused")]
    TooLarge { path: PathBuf, max: u64 },
    #[error(transparent)]
    Rpm(#[from] rpm::RpmError),
}

/// A record a parser skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line where the record starts.
    pub line: u64,
    pub reason: String,
}

/// What a parser read from one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOutcome {
    /// The installed packages, in file order.
    pub packages: Vec<Package>,
    /// How many malformed records were skipped.
    pub skipped: usize,
    /// The first of them.
    pub first_skipped: Option<Skipped>,
    /// Bytes read.
    pub bytes: u64,
}

impl ParseOutcome {
    pub(crate) fn skip(&mut self, line: u64, reason: impl Into<String>) {
        self.skipped += 1;
        if self.first_skipped.is_none() {
            self.first_skipped = Some(Skipped {
                line,
                reason: reason.into(),
            });
        }
    }

    /// A sentence about the skipped records of `path`, if any.
    pub fn skipped_summary(&self, path: &Path) -> Option<String> {
        let first = self.first_skipped.as_ref()?;
        Some(format!(
            "{}: {} malformed record(s) skipped, the first at line {}: {}",
            path.display(),
            self.skipped,
            first.line,
            first.reason
        ))
    }
}

/// One line from a [`LineReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfo {
    /// 1-based line number.
    pub number: u64,
    /// Whether the line was longer than the cap and was cut.
    pub cut: bool,
}

/// Reads lines (without `\n` or a final `\r`) with a length cap.
pub struct LineReader<R> {
    inner: R,
    max_line: usize,
    line_no: u64,
    bytes: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            max_line,
            line_no: 0,
            bytes: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next line into `buf` (cleared first); `None` at the end.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<LineInfo>> {
        buf.clear();
        let mut cut = false;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let newline = avail.iter().position(|&b| b == b'\n');
            let chunk = match newline {
                Some(i) => &avail[..i],
                None => avail,
            };
            let room = self.max_line.saturating_sub(buf.len());
            if chunk.len() > room {
                buf.extend_from_slice(&chunk[..room]);
                cut = true;
            } else {
                buf.extend_from_slice(chunk);
            }
            let used = newline.map_or(avail.len(), |i| i + 1);
            self.inner.consume(used);
            self.bytes = self.bytes.saturating_add(used as u64);
            if newline.is_some() {
                break;
            }
        }
        if !cut && buf.last() == Some(&b'\r') {
            buf.pop();
        }
        self.line_no += 1;
        Ok(Some(LineInfo {
            number: self.line_no,
            cut,
        }))
    }
}

/// Whether `s` may be kept as a package name, version, arch or source.
pub fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TOKEN
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == char::REPLACEMENT_CHARACTER)
}

/// Opens a database file below `root` (symlinks resolved inside the root),
/// checking that it is a regular file no larger than [`MAX_DB_BYTES`].
/// `Ok(None)` when it does not exist.
pub fn open_db(root: &Path, rel: &str) -> Result<Option<(PathBuf, File)>, DbError> {
    let shown = root.join(rel);
    let path = match resolve_in_root(root, Path::new(rel)) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DbError::Io {
                path: shown,
                source,
            })
        }
    };
    let io_err = |source| DbError::Io {
        path: shown.clone(),
        source,
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    if !meta.is_file() {
        return Err(DbError::NotAFile { path: shown });
    }
    if meta.len() > MAX_DB_BYTES {
        return Err(DbError::TooLarge {
            path: shown,
            max: MAX_DB_BYTES,
        });
    }
    let f = File::open(&path).map_err(io_err)?;
    Ok(Some((shown, f)))
}

/// Parses an opened database file with `parse`, bounded by [`MAX_DB_BYTES`]
/// even if the file grows while it is read.
pub fn parse_file(path: &Path, file: File, parse: Parser) -> Result<ParseOutcome, DbError> {
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(MAX_DB_BYTES + 1));
    let out = parse(&mut reader).map_err(|source| DbError::Io {
        path: path.to_owned(),
        source,
    })?;
    if out.bytes > MAX_DB_BYTES {
        return Err(DbError::TooLarge {
            path: path.to_owned(),
            max: MAX_DB_BYTES,
        });
    }
    Ok(out)
}

/// A database parser: any bytes in, an outcome out.
pub type Parser = fn(&mut dyn BufRead) -> io::Result<ParseOutcome>;

/// How the inventory is taken.
#[derive(Debug, Clone)]
pub struct Options {
    /// How to query rpm databases; `None` when no `rpm` program was found.
    pub rpm: Option<rpm::RpmQuery>,
}

impl Default for Options {
    /// `rpm` from `PATH` (if any), with the default limits.
    fn default() -> Self {
        Options {
            rpm: rpm::find_program().map(rpm::RpmQuery::new),
        }
    }
}

/// Everything the package databases of a root said.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Installed packages of every database, sorted.
    pub packages: Vec<Package>,
    /// The managers whose database was found (read or not).
    pub managers: Vec<&'static str>,
    /// Problems, each a sentence naming the file or program.
    pub errors: Vec<String>,
}

/// Inventories the package databases under `root`.
pub fn inventory(root: &Path, opts: &Options) -> Inventory {
    let mut inv = Inventory::default();
    let file_dbs: [(&'static str, &str, Parser); 2] = [
        (manager::DPKG, dpkg::STATUS_PATH, dpkg::parse),
        (manager::APK, apk::INSTALLED_PATH, apk::parse),
    ];
    for (name, rel, parse) in file_dbs {
        match open_db(root, rel) {
            Ok(None) => {}
            Ok(Some((path, file))) => {
                inv.managers.push(name);
                match parse_file(&path, file, parse) {
                    Ok(out) => inv.absorb(&path, out),
                    Err(e) => inv.errors.push(e.to_string()),
                }
            }
            Err(e) => {
                inv.managers.push(name);
                inv.errors.push(e.to_string());
            }
        }
    }
    if let Some(db) = rpm::database_dir(root) {
        inv.managers.push(manager::RPM);
        match &opts.rpm {
            None => inv.errors.push(format!(
                "an rpm database is at {} but no rpm program was found to read it",
                db.display()
            )),
            Some(q) => match q.query(root) {
                Ok(out) => inv.absorb(&db, out),
                Err(e) => inv.errors.push(e.to_string()),
            },
        }
    }
    if inv.managers.is_empty() {
        inv.errors.push(format!(
            "no package database under {} (looked for {}, {}, and an rpm database in {} or {})",
            root.display(),
            dpkg::STATUS_PATH,
            apk::INSTALLED_PATH,
            rpm::DB_DIRS[0],
            rpm::DB_DIRS[1],
        ));
    }
    inv.packages.sort_by(|a, b| {
        (&a.manager, &a.name, &a.arch, &a.version).cmp(&(&b.manager, &b.name, &b.arch, &b.version))
    });
    inv
}

impl Inventory {
    fn absorb(&mut self, path: &Path, out: ParseOutcome) {
        if let Some(s) = out.skipped_summary(path) {
            self.errors.push(s);
        }
        self.packages.extend(out.packages);
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Runs a parser over text.
    pub fn parse_text(parse: Parser, s: &[u8]) -> ParseOutcome {
        let mut r = io::Cursor::new(s.to_vec());
        parse(&mut r).unwrap()
    }

    /// Runs a parser over `bytes` through a reader that hands out at most
    /// `cap` bytes per fill, so lines span fills.
    pub fn parse_chunked(parse: Parser, bytes: &[u8], cap: usize) -> ParseOutcome {
        parse(&mut io::BufReader::with_capacity(cap, bytes)).unwrap()
    }

    /// The lines of `bytes` as [`LineReader`] reads them: split at `\n`, a
    /// final `\r` dropped, no line after a final `\n`.
    pub fn lines_of(bytes: &[u8]) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }

    /// Where the blank lines go and how lines end, in a generated file of
    /// stanzas (dpkg, apk).
    #[derive(Debug, Clone)]
    pub struct Layout {
        pub crlf: bool,
        pub leading: Vec<&'static str>,
        /// Blank lines before each stanza after the first.
        pub seps: Vec<Vec<&'static str>>,
        pub trailing: Vec<&'static str>,
        pub final_eol: bool,
    }

    pub fn layout(stanzas: usize) -> impl Strategy<Value = Layout> {
        let blank_line = || select(vec!["", "", " ", "\t", " \t "]);
        (
            any::<bool>(),
            vec(blank_line(), 0..2),
            vec(vec(blank_line(), 1..3), stanzas),
            vec(blank_line(), 0..2),
            prop::bool::weighted(0.8),
        )
            .prop_map(|(crlf, leading, seps, trailing, final_eol)| Layout {
                crlf,
                leading,
                seps,
                trailing,
                final_eol,
            })
    }

    /// The file, and the 1-based line each stanza starts on.
    pub fn assemble(stanzas: &[Vec<Vec<u8>>], layout: &Layout) -> (Vec<u8>, Vec<u64>) {
        let eol: &[u8] = if layout.crlf { b"\r\n" } else { b"\n" };
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut starts = Vec::new();
        for (i, s) in stanzas.iter().enumerate() {
            let blanks = if i == 0 {
                &layout.leading
            } else {
                &layout.seps[i]
            };
            lines.extend(blanks.iter().map(|b| b.as_bytes().to_vec()));
            starts.push(lines.len() as u64 + 1);
            lines.extend(s.iter().cloned());
        }
        lines.extend(layout.trailing.iter().map(|b| b.as_bytes().to_vec()));
        let mut out = lines.join(eol);
        if layout.final_eol && !lines.is_empty() {
            out.extend_from_slice(eol);
        }
        (out, starts)
    }

    /// Up to `max` fragments concatenated: mostly pieces of the format
    /// (`pieces`), sometimes a few random bytes.
    pub fn noise(pieces: Vec<&'static str>, max: usize) -> impl Strategy<Value = Vec<u8>> {
        let fragment = prop_oneof![
            4 => select(pieces).prop_map(|s| s.as_bytes().to_vec()),
            1 => vec(any::<u8>(), 0..12),
        ];
        vec(fragment, 0..max).prop_map(|v| v.concat())
    }

    /// Well-formed stanzas laid out by `layout` parse back to exactly
    /// `want`, nothing skipped, the same when read `cap` bytes at a time.
    pub fn check_round_trip(
        parse: Parser,
        stanzas: &[Vec<Vec<u8>>],
        layout: &Layout,
        want: &[trustwatch_common::host::Package],
        cap: usize,
    ) -> Result<(), TestCaseError> {
        let (bytes, _) = assemble(stanzas, layout);
        let out = parse_text(parse, &bytes);
        prop_assert_eq!(out.skipped, 0, "{:?}", out.first_skipped);
        prop_assert_eq!(&out.packages[..], want);
        prop_assert_eq!(out.bytes, bytes.len() as u64);
        prop_assert_eq!(&parse_chunked(parse, &bytes, cap), &out);
        Ok(())
    }

    pub fn bytes_of(lines: &[String]) -> Vec<Vec<u8>> {
        lines.iter().map(|l| l.as_bytes().to_vec()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn lines(input: &[u8], cap: usize) -> Vec<(String, bool)> {
        let mut r = LineReader::new(io::Cursor::new(input.to_vec()), cap);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(info) = r.next_line(&mut buf).unwrap() {
            out.push((String::from_utf8_lossy(&buf).into_owned(), info.cut));
        }
        assert_eq!(r.bytes(), input.len() as u64);
        out
    }

    #[test]
    fn line_reader_splits_strips_cr_and_cuts_long_lines() {
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 10),
            vec![
                ("a".into(), false),
                ("bb".into(), false),
                ("".into(), false),
                ("ccc".into(), false)
            ]
        );
        assert_eq!(
            lines(b"0123456789abc\nx\n", 4),
            vec![("0123".into(), true), ("x".into(), false)]
        );
        assert!(lines(b"", 4).is_empty());
    }

    #[test]
    fn line_reader_cuts_a_line_spanning_many_buffer_fills() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nend\n");
        let r = BufReader::with_capacity(16, io::Cursor::new(input));
        let mut lr = LineReader::new(r, 1000);
        let mut buf = Vec::new();
        let first = lr.next_line(&mut buf).unwrap().unwrap();
        assert!(first.cut);
        assert_eq!(buf.len(), 1000);
        assert_eq!(lr.next_line(&mut buf).unwrap().unwrap().number, 2);
        assert_eq!(buf, b"end");
        assert!(lr.next_line(&mut buf).unwrap().is_none());
    }

    #[test]
    fn tokens_refuse_blanks_controls_and_replacement_characters() {
        assert!(valid_token("1:2.3-4~deb12u1"));
        for bad in [
            "",
            "a b",
            "a\tb",
            "a\u{0}",
            "\u{fffd}x",
            &"x".repeat(MAX_TOKEN + 1),
        ] {
            assert!(!valid_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_directory_where_the_status_file_should_be_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("var/lib/dpkg/status")).unwrap();
        let inv = inventory(root.path(), &Options { rpm: None });
        assert_eq!(inv.managers, vec!["dpkg"]);
        assert!(inv.packages.is_empty());
        assert_eq!(inv.errors.len(), 1);
        assert!(
            inv.errors[0].ends_with("var/lib/dpkg/status is not a regular file"),
            "{:?}",
            inv.errors
        );
    }

    #[test]
    fn a_root_without_any_package_database_says_so() {
        let root = tempfile::tempdir().unwrap();
        let inv = inventory(root.path(), &Options { rpm: None });
        assert!(inv.managers.is_empty());
        assert_eq!(inv.errors.len(), 1);
        assert!(
            inv.errors[0].starts_with("no package database under"),
            "{:?}",
            inv.errors
        );
    }

    #[test]
    fn an_rpm_database_without_an_rpm_program_is_reported() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
        let inv = inventory(root.path(), &Options { rpm: None });
        assert_eq!(inv.managers, vec!["rpm"]);
        assert!(inv.errors[0].contains("no rpm program"), "{:?}", inv.errors);
    }

    #[test]
    fn both_dpkg_and_apk_databases_are_read_and_sorted_together() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        fs::create_dir_all(root.path().join("lib/apk/db")).unwrap();
        fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2\n",
        )
        .unwrap();
        fs::write(
            root.path().join("lib/apk/db/installed"),
            "P:musl\nV:1.2.5-r0\n\n",
        )
        .unwrap();
        let inv = inventory(root.path(), &Options { rpm: None });
        assert!(inv.errors.is_empty(), "{:?}", inv.errors);
        let names: Vec<_> = inv
            .packages
            .iter()
            .map(|p| format!("{}:{}", p.manager, p.name))
            .collect();
        assert_eq!(names, vec!["apk:musl", "dpkg:bash", "dpkg:zlib1g"]);
    }
}
