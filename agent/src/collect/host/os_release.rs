//! A total parser of the os-release(5) format and the lookup of the file
//! inside a root directory.
//!
//! Format: lines of `KEY=VALUE`; blank lines and lines whose first
//! non-blank character is `#` are comments. KEY is `[A-Za-z_][A-Za-z0-9_]*`.
//! VALUE follows shell quoting: `"…"` (where `\"`, `\\`, `` \` `` and `\$`
//! are escapes and any other backslash is literal), `'…'` (no escapes), and
//! unquoted text (where `\x` is `x`), concatenated like shell words. An
//! unquoted blank ends the value; what follows it is ignored. A line that
//! breaks these rules (no `=`, a bad key, an unterminated quote) is
//! skipped; a later assignment of a key overrides an earlier one.
//!
//! Invariant: [`parse`] accepts any text and never panics; the file is read
//! with a size bound, and bytes that are not UTF-8 are replaced.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use trustwatch_common::host::OsIdentity;

use crate::fsio;

/// Largest os-release file read.
pub const MAX_BYTES: u64 = 64 * 1024;
/// Where os-release is looked for, in order, relative to the root.
pub const CANDIDATES: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const MAX_SYMLINK_HOPS: u32 = 40;

/// Why no os-release could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OsReleaseError {
    #[error("no os-release under {root} (looked for etc/os-release and usr/lib/os-release)")]
    NotFound { root: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Parses os-release text into its assignments.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        if !is_key(key) {
            continue;
        }
        if let Some(value) = parse_value(rest) {
            out.insert(key.to_owned(), value);
        }
    }
    out
}

fn is_key(k: &str) -> bool {
    let mut bytes = k.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One shell word; `None` for an unterminated quote.
fn parse_value(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => break,
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\'' => loop {
                match chars.next() {
                    None => return None,
                    Some('\'') => break,
                    Some(x) => out.push(x),
                }
            },
            '"' => loop {
                match chars.next() {
                    None => return None,
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        None => return None,
                        Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    Some(x) => out.push(x),
                }
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// The OS identity the fields describe (defaults as in os-release(5)).
pub fn identity(fields: &BTreeMap<String, String>) -> OsIdentity {
    let get = |k: &str| fields.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let name = match get("PRETTY_NAME") {
        Some(p) => p.to_owned(),
        None => match (get("NAME"), get("VERSION")) {
            (Some(n), Some(v)) => format!("{n} {v}"),
            (Some(n), None) => n.to_owned(),
            (None, _) => "Linux".to_owned(),
        },
    };
    OsIdentity {
        id: get("ID").unwrap_or("linux").to_owned(),
        version_id: get("VERSION_ID").unwrap_or_default().to_owned(),
        codename: get("VERSION_CODENAME")
            .or_else(|| get("UBUNTU_CODENAME"))
            .unwrap_or_default()
            .to_owned(),
        name,
        id_like: get("ID_LIKE")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

/// Reads the OS identity of the system rooted at `root`; returns the file used.
pub fn read(root: &Path) -> Result<(OsIdentity, PathBuf), OsReleaseError> {
    for rel in CANDIDATES {
        let path = match resolve_in_root(root, Path::new(rel)) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(OsReleaseError::Io {
                    path: root.join(rel),
                    source,
                })
            }
        };
        match fsio::read_bounded(&path, MAX_BYTES) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                return Ok((identity(&parse(&text)), path));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(OsReleaseError::Io { path, source }),
        }
    }
    Err(OsReleaseError::NotFound {
        root: root.to_owned(),
    })
}

/// Resolves `rel` below `root`, following symlinks as if `root` were `/`
/// (an absolute link in a mounted image points into the image, not at the
/// running system). `..` never climbs above `root`.
pub fn resolve_in_root(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0u32;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c == "." {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        let meta = fs::symlink_metadata(&candidate)?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(io::Error::other(format!(
                    "too many symbolic links resolving {}",
                    rel.display()
                )));
            }
            let target = fs::read_link(&candidate)?;
            if target.has_root() {
                resolved.clear();
            }
            push_components(&mut pending, &target);
        } else {
            resolved.push(c);
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Pushes the components of `p` so that the first is popped first.
fn push_components(stack: &mut Vec<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn debian_file_gives_the_design_identity() {
        let id = identity(&parse(DEBIAN));
        assert_eq!(id.id, "debian");
        assert_eq!(id.version_id, "12");
        assert_eq!(id.codename, "bookworm");
        assert_eq!(id.name, "Debian GNU/Linux 12 (bookworm)");
        assert!(id.id_like.is_empty());
    }

    #[test]
    fn quotes_escapes_and_comments_follow_shell_rules() {
        let f = parse(concat!(
            "# a comment\n",
            "   # indented comment\n",
            "\n",
            "A=\"say \\\"hi\\\" \\$HOME \\\\ \\n\"\n",
            "B='it''s' \n",
            "C=plain\\ word # trailing comment\n",
            "D=\"con\"'cat'enated\n",
            "E=\"unterminated\n",
            "F\n",
            "9G=bad key\n",
            "H=\r\n",
            "ID_LIKE=\"rhel  fedora\"\n",
            "A=\"override\"\n",
        ));
        assert_eq!(f["B"], "its");
        assert_eq!(f["C"], "plain word");
        assert_eq!(f["D"], "concatenated");
        assert_eq!(f["H"], "");
        assert_eq!(f["A"], "override");
        assert!(!f.contains_key("E"));
        assert!(!f.contains_key("F"));
        assert!(!f.contains_key("9G"));
        assert_eq!(
            parse("A=\"say \\\"hi\\\" \\$HOME \\\\ \\n\"")["A"],
            "say \"hi\" $HOME \\ \\n"
        );
        assert_eq!(identity(&f).id_like, vec!["rhel", "fedora"]);
    }

    #[test]
    fn missing_fields_take_the_documented_defaults() {
        let id = identity(&parse(
            "NAME=Foo\nVERSION=\"1 (x)\"\nUBUNTU_CODENAME=noble\n",
        ));
        assert_eq!(id.id, "linux");
        assert_eq!(id.name, "Foo 1 (x)");
        assert_eq!(id.codename, "noble");
        assert_eq!(identity(&parse("")).name, "Linux");
    }

    #[test]
    fn read_prefers_etc_and_falls_back_to_usr_lib() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(root.path().join("usr/lib/os-release"), "ID=alpine\n").unwrap();
        assert_eq!(read(root.path()).unwrap().0.id, "alpine");
        fs::write(root.path().join("etc/os-release"), "ID=debian\n").unwrap();
        assert_eq!(read(root.path()).unwrap().0.id, "debian");
    }

    #[test]
    fn absolute_symlink_in_an_image_resolves_inside_the_image() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(root.path().join("usr/lib/os-release"), "ID=imageos\n").unwrap();
        std::os::unix::fs::symlink("/usr/lib/os-release", root.path().join("etc/os-release"))
            .unwrap();
        let (id, path) = read(root.path()).unwrap();
        assert_eq!(id.id, "imageos");
        assert!(path.starts_with(root.path()));
        // And a relative one climbing with `..` stays inside too.
        fs::remove_file(root.path().join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../usr/lib/os-release",
            root.path().join("etc/os-release"),
        )
        .unwrap();
        assert_eq!(read(root.path()).unwrap().0.id, "imageos");
    }

    #[test]
    fn symlink_loop_is_an_error_not_a_hang() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("os-release", root.path().join("etc/os-release")).unwrap();
        assert!(matches!(read(root.path()), Err(OsReleaseError::Io { .. })));
    }

    #[test]
    fn empty_root_is_not_found() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(root.path()),
            Err(OsReleaseError::NotFound { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let f = parse(&s);
            let _ = identity(&f);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = identity(&parse(&String::from_utf8_lossy(&b)));
        }

        #[test]
        fn shell_like_lines_never_panic(s in "([A-Z_]{0,4}=?[\"'\\\\# a-z=\\r\\n]{0,12}){0,8}") {
            let _ = identity(&parse(&s));
        }

        #[test]
        fn a_double_quoted_value_without_specials_round_trips(v in "[a-zA-Z0-9 ./()_-]{0,40}") {
            let f = parse(&format!("X=\"{v}\"\n"));
            prop_assert_eq!(&f["X"], &v);
        }
    }
}
