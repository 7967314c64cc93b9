//! How old the package manager's metadata is (`patch.updates.stale`).
//!
//! The last refresh is the newest modification time among the index files
//! each package manager leaves after fetching its repositories:
//! - apt: `var/lib/apt/lists/*_Release` and `*_InRelease`, and
//!   `var/lib/apt/periodic/update-success-stamp`;
//! - dnf: `repomd.xml` and `last_makecache` below `var/cache/dnf` and
//!   `var/cache/libdnf5`;
//! - yum: `repomd.xml` and `cachecookie` below `var/cache/yum`;
//! - apk: `var/cache/apk/APKINDEX*`.
//!
//! (apt gives an index file the server's Last-Modified time, so the newest
//! mtime is no later than the real last refresh: a quiet repository can make
//! a host look older than it is, never younger.)
//!
//! Metadata is stale when the clock is more than [`STALE_AFTER_DAYS`] days
//! past the last refresh. No metadata at all is *unknown*, never stale. The
//! walk does not follow symbolic links below the directories above, stops
//! at [`MAX_DEPTH`] levels and after [`MAX_ENTRIES`] directory entries.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::os_release::resolve_in_root;

/// Days after which package metadata is stale.
pub const STALE_AFTER_DAYS: i64 = 14;
/// Deepest directory level walked below a source's directory.
pub const MAX_DEPTH: u32 = 5;
/// Most directory entries looked at, over all sources.
pub const MAX_ENTRIES: usize = 20_000;

/// What `package_metadata_source` says when no metadata was found.
pub const UNKNOWN: &str = "unknown";

struct Source {
    name: &'static str,
    dir: &'static str,
    depth: u32,
    matches: fn(&str) -> bool,
}

const SOURCES: [Source; 6] = [
    Source {
        name: "apt",
        dir: "var/lib/apt/lists",
        depth: 1,
        matches: |n| n.ends_with("_InRelease") || n.ends_with("_Release"),
    },
    Source {
        name: "apt",
        dir: "var/lib/apt/periodic",
        depth: 1,
        matches: |n| n == "update-success-stamp",
    },
    Source {
        name: "dnf",
        dir: "var/cache/dnf",
        depth: 3,
        matches: |n| n == "repomd.xml" || n == "last_makecache",
    },
    Source {
        name: "dnf",
        dir: "var/cache/libdnf5",
        depth: 3,
        matches: |n| n == "repomd.xml",
    },
    Source {
        name: "yum",
        dir: "var/cache/yum",
        depth: MAX_DEPTH,
        matches: |n| n == "repomd.xml" || n == "cachecookie",
    },
    Source {
        name: "apk",
        dir: "var/cache/apk",
        depth: 1,
        matches: |n| n.starts_with("APKINDEX"),
    },
];

/// The newest metadata file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// `apt`, `dnf`, `yum` or `apk`.
    pub source: &'static str,
    /// The file (below the root as given).
    pub path: PathBuf,
    /// Its modification time.
    pub modified: OffsetDateTime,
}

impl Refresh {
    /// The age at `now` (zero when the file is from the future).
    pub fn age(&self, now: OffsetDateTime) -> Duration {
        (now - self.modified).max(Duration::ZERO)
    }

    /// Whether the metadata is stale at `now`.
    pub fn is_stale(&self, now: OffsetDateTime) -> bool {
        self.age(now) > Duration::days(STALE_AFTER_DAYS)
    }

    /// The finding's evidence.
    pub fn evidence(&self, now: OffsetDateTime) -> Value {
        json!({
            "last_refresh": self.modified.format(&Rfc3339).unwrap_or_default(),
            "age_days": self.age(now).whole_days(),
            "threshold_days": STALE_AFTER_DAYS,
            "source": self.source,
            "path": self.path.display().to_string(),
        })
    }
}

/// The newest package metadata under `root`, and any problems walking it.
pub fn newest(root: &Path) -> (Option<Refresh>, Vec<String>) {
    let mut best: Option<Refresh> = None;
    let mut errors = Vec::new();
    let mut budget = MAX_ENTRIES;
    for src in &SOURCES {
        let dir = match resolve_in_root(root, Path::new(src.dir)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(format!("cannot read {}: {e}", root.join(src.dir).display()));
                continue;
            }
        };
        let shown = root.join(src.dir);
        walk(
            src,
            &dir,
            &shown,
            src.depth,
            &mut budget,
            &mut best,
            &mut errors,
        );
    }
    if budget == 0 {
        errors.push(format!(
            "stopped looking for package metadata after {MAX_ENTRIES} directory entries"
        ));
    }
    (best, errors)
}

fn walk(
    src: &Source,
    dir: &Path,
    shown: &Path,
    depth: u32,
    budget: &mut usize,
    best: &mut Option<Refresh>,
    errors: &mut Vec<String>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        // A file where a directory was expected holds no metadata.
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return,
        Err(e) => {
            errors.push(format!("cannot read {}: {e}", shown.display()));
            return;
        }
    };
    for entry in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(entry) = entry else { continue };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if kind.is_dir() && depth > 1 {
            walk(
                src,
                &entry.path(),
                &shown.join(name),
                depth - 1,
                budget,
                best,
                errors,
            );
        } else if kind.is_file() && (src.matches)(name) {
            let Some(modified) = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(OffsetDateTime::from)
            else {
                continue;
            };
            if best.as_ref().is_none_or(|b| modified > b.modified) {
                *best = Some(Refresh {
                    source: src.name,
                    path: shown.join(name),
                    modified,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, FileTimes};
    use std::time::SystemTime;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn touch(path: &Path, unix: i64) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let f = File::create(path).unwrap();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(unix as u64);
        f.set_times(FileTimes::new().set_modified(t)).unwrap();
    }

    const T0: i64 = 1_750_000_000;

    #[test]
    fn the_newest_apt_release_file_wins_and_other_list_files_are_ignored() {
        let root = tempfile::tempdir().unwrap();
        let lists = root.path().join("var/lib/apt/lists");
        touch(
            &lists.join("deb.debian.org_debian_dists_bookworm_InRelease"),
            T0,
        );
        touch(
            &lists.join("security_dists_bookworm-security_InRelease"),
            T0 + 100,
        );
        touch(
            &lists.join("x_dists_y_main_binary-amd64_Packages"),
            T0 + 999_999,
        );
        touch(&lists.join("old_dists_z_Release"), T0 - 5);
        let (r, errors) = newest(root.path());
        assert!(errors.is_empty());
        let r = r.unwrap();
        assert_eq!(r.source, "apt");
        assert_eq!(r.modified, at(T0 + 100));
        assert!(r
            .path
            .ends_with("security_dists_bookworm-security_InRelease"));
    }

    #[test]
    fn stale_only_past_fourteen_days_by_the_given_clock() {
        let r = Refresh {
            source: "apt",
            path: "/x".into(),
            modified: at(T0),
        };
        assert!(!r.is_stale(at(T0 + 14 * 86_400)));
        assert!(r.is_stale(at(T0 + 14 * 86_400 + 1)));
        assert!(!r.is_stale(at(T0 - 86_400)), "a future mtime is fresh");
        let e = r.evidence(at(T0 + 20 * 86_400 + 5));
        assert_eq!(e["age_days"], 20);
        assert_eq!(e["last_refresh"], "2025-06-15T15:06:40Z");
        assert_eq!(e["threshold_days"], 14);
    }

    #[test]
    fn dnf_yum_and_apk_metadata_are_found() {
        let root = tempfile::tempdir().unwrap();
        touch(
            &root
                .path()
                .join("var/cache/dnf/baseos-abc/repodata/repomd.xml"),
            T0,
        );
        touch(
            &root.path().join("var/cache/yum/x86_64/7/base/repomd.xml"),
            T0 + 1,
        );
        let (r, _) = newest(root.path());
        assert_eq!(r.unwrap().source, "yum");
        touch(
            &root.path().join("var/cache/apk/APKINDEX.5a59b88b.tar.gz"),
            T0 + 2,
        );
        let (r, _) = newest(root.path());
        assert_eq!(r.unwrap().source, "apk");
    }

    #[test]
    fn no_metadata_is_unknown_not_stale_and_odd_shapes_are_no_error() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(newest(root.path()), (None, vec![]));
        // A file where the lists directory should be, and a directory named
        // like a Release file.
        fs::create_dir_all(root.path().join("var/lib/apt")).unwrap();
        fs::write(root.path().join("var/lib/apt/lists"), "").unwrap();
        fs::create_dir_all(root.path().join("var/cache/apk/APKINDEX.x")).unwrap();
        assert_eq!(newest(root.path()), (None, vec![]));
    }

    #[test]
    fn symlinks_below_the_metadata_directories_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        touch(&outside.path().join("foo_InRelease"), T0);
        fs::create_dir_all(root.path().join("var/lib/apt/lists")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("foo_InRelease"),
            root.path().join("var/lib/apt/lists/foo_InRelease"),
        )
        .unwrap();
        assert_eq!(newest(root.path()).0, None);
    }
}
