//! Durable file writes and bounded reads.
//!
//! Invariant of [`write_atomic`]: a reader of `path` sees either the old
//! content or the complete new content, never a mix, and once it returns
//! `Ok` the new content survives a crash or power loss. It is done as: create
//! a temporary file `.<name>.<random>.tmp` in the same directory with the
//! final mode (never a wider mode first), write, `fsync`, rename over `path`,
//! `fsync` the directory. Temporary files left behind by a crash end in
//! [`TEMP_SUFFIX`] and start with a dot; their owners clean them up.
//!
//! The [`AtomicWriter`] trait puts this behind a seam so tests can inject a
//! crash or a full disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

/// Suffix of temporary files made by [`write_atomic`].
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes a whole file atomically and durably.
pub trait AtomicWriter: Send + Sync {
    /// Replaces `path` with `bytes`; the file gets `mode` (e.g. `0o600`).
    fn write_atomic(&self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()>;
}

/// The real writer: temp file, write, fsync, rename, fsync directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct DurableWriter;

impl AtomicWriter for DurableWriter {
    fn write_atomic(&self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        write_atomic(path, bytes, mode)
    }
}

/// The temporary path `write_atomic` uses for `path`.
pub fn temp_path_for(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut r = [0u8; 8];
    SystemRandom::new()
        .fill(&mut r)
        .map_err(|_| io::Error::other("no random bytes for a temporary file name"))?;
    let tmp = format!(".{name}.{:016x}{TEMP_SUFFIX}", u64::from_le_bytes(r));
    Ok(parent_dir(path).join(tmp))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// See the module documentation.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temp_path_for(path)?;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        // Best effort: the temp file may not exist (rename done or create failed).
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `fsync`s a directory so that renames and unlinks in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a directory (and its parents) with mode 0700 for the new ones.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Reads a whole file, refusing one larger than `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut buf = Vec::new();
    f.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_content_with_the_requested_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent-key.pem");
        write_atomic(&p, b"first", 0o600).unwrap();
        write_atomic(&p, b"second", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn atomic_write_into_a_missing_directory_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("f");
        assert!(write_atomic(&p, b"x", 0o600).is_err());
        assert!(!dir.path().join("nope").exists());
    }

    #[test]
    fn read_bounded_refuses_a_file_over_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        assert_eq!(
            read_bounded(&p, 4).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
