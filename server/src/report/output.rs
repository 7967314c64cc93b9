//! Report files: their names and their atomic writing.
//!
//! A scheduled report's file is `<name>_<scope>_<YYYY-MM-DD>T<HHMM>Z.<ext>`
//! in its directory, where `<scope>` is `all`, `org-CODE` or `parent-CODE`
//! and the instant is the cron slot (UTC), e.g.
//! `weekly_org-RX1_2025-10-06T0600Z.html`. Names and codes are limited to
//! `[A-Za-z0-9_-]`, so a file name never leaves its directory.
//!
//! A file is written to a hidden temporary file in the same directory,
//! flushed to disk, then renamed over the final name (and the directory
//! synced): a reader sees the old file or the whole new one, never a part.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{Format, ReportError, Scope};

/// True for a valid `[[reports]] name`: 1-64 of `[A-Za-z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The file name of a scheduled report.
pub fn file_name(name: &str, scope: &Scope, slot: OffsetDateTime, format: Format) -> String {
    let t = slot.to_offset(time::UtcOffset::UTC);
    format!(
        "{name}_{}_{:04}-{:02}-{:02}T{:02}{:02}Z.{}",
        scope.slug(),
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        format.ext()
    )
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (mode 0640), creating the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_owned());
    let tmp = dir.join(format!(".{file}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        // The rename is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339;

    #[test]
    fn file_names_hold_name_scope_and_slot() {
        let t = parse_rfc3339("2025-10-06T06:00:00Z").unwrap();
        assert_eq!(
            file_name("weekly", &Scope::Org("RX1".into()), t, Format::Html),
            "weekly_org-RX1_2025-10-06T0600Z.html"
        );
        assert_eq!(
            file_name("n", &Scope::All, t, Format::Csv),
            "n_all_2025-10-06T0600Z.csv"
        );
    }

    #[test]
    fn names_that_could_leave_the_directory_are_invalid() {
        assert!(is_valid_name("weekly-nation_1"));
        for bad in ["", "../x", "a/b", "a b", ".", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("r.csv");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn write_into_an_unwritable_place_fails_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let e = write_atomic(&blocker.join("r.html"), b"x").unwrap_err();
        assert!(e.to_string().contains("file"), "{e}");
    }
}
