//! Runs the upstream projects' own version-comparison vectors (dpkg, rpm,
//! apk-tools) against `trustwatch_common::version`.
//!
//! The vectors live outside the repository, in `shared/vectors/` (see its
//! README.md): `$TRUSTWATCH_SHARED_DIR/vectors` when that variable is set,
//! else `<repo>/../shared/vectors`. A missing directory or file is a failure,
//! not a skip. Each file holds one comparison a line, `a op b` with `op` one
//! of `<`, `=`, `>`, and `#` comment lines. Every comparison must hold both
//! ways round (`b op' a` with the reversed op), every non-comment line must be
//! a well-formed vector, and the number checked must equal both the file's
//! count of non-comment lines and the count the README's table states, so a
//! truncated or emptied file cannot pass.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use trustwatch_common::version::{compare, Scheme};

fn vectors_dir() -> PathBuf {
    match std::env::var_os("TRUSTWATCH_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("vectors"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read the version vectors at {}: {e}. They live outside the repository, \
             in shared/vectors/ next to it; set TRUSTWATCH_SHARED_DIR to the shared/ \
             directory if it is elsewhere.",
            path.display()
        )
    })
}

/// The line count the README's table gives for `file`, e.g. the `64` of
/// ``| `dpkg.txt` | 64 | ...``.
fn readme_count(dir: &Path, file: &str) -> usize {
    let readme = read(&dir.join("README.md"));
    let key = format!("`{file}`");
    let row = readme
        .lines()
        .find(|l| l.trim_start().starts_with('|') && l.contains(&key))
        .unwrap_or_else(|| panic!("README.md has no table row for {file}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let at = cells
        .iter()
        .position(|c| *c == key)
        .unwrap_or_else(|| panic!("README.md row for {file} is malformed: {row}"));
    cells
        .get(at + 1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("README.md row for {file} has no line count: {row}"))
}

fn parse_op(op: &str) -> Option<Ordering> {
    match op {
        "<" => Some(Ordering::Less),
        "=" => Some(Ordering::Equal),
        ">" => Some(Ordering::Greater),
        _ => None,
    }
}

fn symbol(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Checks every vector of `file` under `scheme`; returns how many it checked.
fn run(scheme: Scheme, file: &str) -> usize {
    let dir = vectors_dir();
    assert!(
        dir.is_dir(),
        "the version vectors directory {} does not exist. It lives outside the repository \
         (shared/vectors/ next to it); set TRUSTWATCH_SHARED_DIR to the shared/ directory.",
        dir.display()
    );
    let text = read(&dir.join(file));
    let data_lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();

    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let (a, want, b) = match fields[..] {
            [a, op, b] => match parse_op(op) {
                Some(want) => (a, want, b),
                None => {
                    failures.push(format!("{file}:{}: bad operator: {line}", n + 1));
                    continue;
                }
            },
            _ => {
                failures.push(format!("{file}:{}: not `a op b`: {line}", n + 1));
                continue;
            }
        };
        for (x, y, want) in [(a, b, want), (b, a, want.reverse())] {
            match compare(scheme, x, y) {
                Ok(got) if got == want => {}
                Ok(got) => failures.push(format!(
                    "{file}:{}: expected {x} {} {y}, got {x} {} {y}",
                    n + 1,
                    symbol(want),
                    symbol(got)
                )),
                Err(e) => failures.push(format!("{file}:{}: {x} vs {y}: {e}", n + 1)),
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of the {scheme} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 0, "{file} holds no vectors");
    assert_eq!(checked, data_lines, "{file}: vectors checked vs lines");
    assert_eq!(
        checked,
        readme_count(&dir, file),
        "{file}: vectors checked vs the count in README.md"
    );
    checked
}

#[test]
fn every_dpkg_upstream_vector_holds() {
    run(Scheme::Dpkg, "dpkg.txt");
}

#[test]
fn every_rpm_upstream_vector_holds() {
    run(Scheme::Rpm, "rpm.txt");
}

#[test]
fn every_apk_upstream_vector_holds() {
    run(Scheme::Apk, "apk.txt");
}
