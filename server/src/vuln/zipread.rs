//! A streaming reader of ZIP archives (PKWARE APPNOTE 6.3), enough for a
//! vendor's OSV `all.zip`: stored and deflated entries, ZIP64, no
//! encryption, no multi-disk archives.
//!
//! Why our own: the `zip` crate, even with default features off, brings
//! several crates the server does not otherwise need, for writers,
//! compression methods and encryption it must not use; reading is ~250
//! lines over `flate2`, which the server already has, and it lets the
//! reader bound memory exactly. The archive is walked through its central
//! directory one entry at a time (one cursor on the directory, one on the
//! data), so memory stays bounded by the largest entry, which is capped.
//!
//! Invariants: an entry is read only through its central-directory record
//! and its local header; its decompressed size may not exceed the cap
//! (checked against the declared size before inflating and against the
//! bytes actually produced while inflating); its CRC-32 and size must
//! match; any inconsistency (truncation, a bad signature, an unsupported
//! method, encryption) is a [`ZipError`], never a panic.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// The end-of-central-directory record is 22 bytes plus a comment of at
/// most 65,535 bytes.
const EOCD_SEARCH: u64 = 22 + 65_535;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZipError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a ZIP archive, or truncated (no end-of-central-directory record)")]
    NoEocd(PathBuf),
    #[error("{path}: corrupt ZIP archive: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path}: entry {name:?} uses {what}, which is not supported")]
    Unsupported {
        path: PathBuf,
        name: String,
        what: String,
    },
    #[error("{path}: entry {name:?} is {size} bytes decompressed, over the {max}-byte cap")]
    TooLarge {
        path: PathBuf,
        name: String,
        size: u64,
        max: u64,
    },
}

/// One entry's central-directory facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
    pub fn size(&self) -> u64 {
        self.uncompressed
    }
}

/// An open archive: iterate with [`Archive::next_entry`], read each with
/// [`Archive::read`].
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    dir: BufReader<File>,
    data: File,
    len: u64,
    remaining: u64,
    dir_end: u64,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Archive {
    /// Opens an archive and locates its central directory.
    pub fn open(path: &Path) -> Result<Archive, ZipError> {
        let io = |source| ZipError::Io {
            path: path.to_owned(),
            source,
        };
        let corrupt = |what: &str| ZipError::Corrupt {
            path: path.to_owned(),
            what: what.to_owned(),
        };
        let mut f = File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let tail_len = len.min(EOCD_SEARCH);
        let tail_start = len - tail_len;
        f.seek(SeekFrom::Start(tail_start)).map_err(io)?;
        let mut tail = vec![0u8; usize::try_from(tail_len).unwrap_or(0)];
        f.read_exact(&mut tail).map_err(io)?;
        // The last signature whose comment length reaches the end exactly.
        let mut eocd = None;
        if tail.len() >= 22 {
            for i in (0..=tail.len() - 22).rev() {
                if le32(&tail, i) == EOCD_SIG
                    && i + 22 + usize::from(le16(&tail, i + 20)) == tail.len()
                {
                    eocd = Some(i);
                    break;
                }
            }
        }
        let i = eocd.ok_or_else(|| ZipError::NoEocd(path.to_owned()))?;
        let disk = le16(&tail, i + 4);
        let cd_disk = le16(&tail, i + 6);
        let mut entries = u64::from(le16(&tail, i + 10));
        let mut cd_size = u64::from(le32(&tail, i + 12));
        let mut cd_offset = u64::from(le32(&tail, i + 16));
        let eocd_pos = tail_start + i as u64;
        if entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            // ZIP64: a locator sits right before the classic record.
            if eocd_pos < 20 {
                return Err(corrupt("ZIP64 locator missing"));
            }
            let mut loc = [0u8; 20];
            f.seek(SeekFrom::Start(eocd_pos - 20)).map_err(io)?;
            f.read_exact(&mut loc).map_err(io)?;
            if le32(&loc, 0) != ZIP64_LOCATOR_SIG {
                return Err(corrupt("ZIP64 locator missing"));
            }
            let z_off = le64(&loc, 8);
            if z_off.checked_add(56).is_none_or(|e| e > len) {
                return Err(corrupt("ZIP64 end record out of bounds"));
            }
            let mut z = [0u8; 56];
            f.seek(SeekFrom::Start(z_off)).map_err(io)?;
            f.read_exact(&mut z).map_err(io)?;
            if le32(&z, 0) != ZIP64_EOCD_SIG {
                return Err(corrupt("bad ZIP64 end record signature"));
            }
            entries = le64(&z, 32);
            cd_size = le64(&z, 40);
            cd_offset = le64(&z, 48);
        } else if disk != 0 || cd_disk != 0 {
            return Err(ZipError::Unsupported {
                path: path.to_owned(),
                name: String::new(),
                what: "multiple disks".into(),
            });
        }
        let dir_end = cd_offset
            .checked_add(cd_size)
            .filter(|&e| e <= len)
            .ok_or_else(|| {
                corrupt("central directory lies past the end of the file (truncated?)")
            })?;
        let mut dir_file = File::open(path).map_err(io)?;
        dir_file.seek(SeekFrom::Start(cd_offset)).map_err(io)?;
        Ok(Archive {
            path: path.to_owned(),
            dir: BufReader::with_capacity(64 * 1024, dir_file),
            data: f,
            len,
            remaining: entries,
            dir_end,
        })
    }

    fn corrupt(&self, what: impl Into<String>) -> ZipError {
        ZipError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// The next entry of the central directory, or `None` after the last.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ZipError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let path = self.path.clone();
        let io = |source| ZipError::Io {
            path: path.clone(),
            source,
        };
        let pos = self.dir.stream_position().map_err(io)?;
        if pos.saturating_add(46) > self.dir_end {
            return Err(self.corrupt("central directory ends early"));
        }
        let mut h = [0u8; 46];
        self.dir.read_exact(&mut h).map_err(io)?;
        if le32(&h, 0) != CENTRAL_SIG {
            return Err(self.corrupt("bad central-directory signature"));
        }
        let flags = le16(&h, 8);
        let method = le16(&h, 10);
        let crc = le32(&h, 16);
        let mut compressed = u64::from(le32(&h, 20));
        let mut uncompressed = u64::from(le32(&h, 24));
        let name_len = usize::from(le16(&h, 28));
        let extra_len = usize::from(le16(&h, 30));
        let comment_len = usize::from(le16(&h, 32));
        let mut local_offset = u64::from(le32(&h, 42));
        let var_len = (name_len + extra_len + comment_len) as u64;
        if pos + 46 + var_len > self.dir_end {
            return Err(self.corrupt("central-directory entry runs past the directory"));
        }
        let mut var = vec![0u8; name_len + extra_len + comment_len];
        self.dir.read_exact(&mut var).map_err(io)?;
        let name = String::from_utf8_lossy(&var[..name_len]).into_owned();
        // ZIP64 extended information: the 0xFFFFFFFF fields, in order.
        let mut extra = &var[name_len..name_len + extra_len];
        while extra.len() >= 4 {
            let id = le16(extra, 0);
            let size = usize::from(le16(extra, 2));
            if extra.len() < 4 + size {
                break;
            }
            if id == 0x0001 {
                let mut field = &extra[4..4 + size];
                let mut take = |v: &mut u64| {
                    if *v == 0xFFFF_FFFF && field.len() >= 8 {
                        *v = le64(field, 0);
                        field = &field[8..];
                    }
                };
                take(&mut uncompressed);
                take(&mut compressed);
                take(&mut local_offset);
            }
            extra = &extra[4 + size..];
        }
        Ok(Some(Entry {
            name,
            flags,
            method,
            crc,
            compressed,
            uncompressed,
            local_offset,
        }))
    }

    /// Reads and checks one entry, refusing one over `max` bytes.
    pub fn read(&mut self, e: &Entry, max: u64) -> Result<Vec<u8>, ZipError> {
        let unsupported = |what: &str| ZipError::Unsupported {
            path: self.path.clone(),
            name: e.name.clone(),
            what: what.to_owned(),
        };
        if e.flags & 0x0001 != 0 {
            return Err(unsupported("encryption"));
        }
        if e.method != 0 && e.method != 8 {
            return Err(unsupported(&format!("compression method {}", e.method)));
        }
        let too_large = |size| ZipError::TooLarge {
            path: self.path.clone(),
            name: e.name.clone(),
            size,
            max,
        };
        if e.uncompressed > max {
            return Err(too_large(e.uncompressed));
        }
        let path = self.path.clone();
        let io = |source| ZipError::Io {
            path: path.clone(),
            source,
        };
        if e.local_offset.saturating_add(30) > self.len {
            return Err(self.corrupt(format!("entry {:?} lies past the end of the file", e.name)));
        }
        let mut h = [0u8; 30];
        self.data
            .seek(SeekFrom::Start(e.local_offset))
            .map_err(io)?;
        self.data.read_exact(&mut h).map_err(io)?;
        if le32(&h, 0) != LOCAL_SIG {
            return Err(self.corrupt(format!("entry {:?} has a bad local header", e.name)));
        }
        let start = e.local_offset + 30 + u64::from(le16(&h, 26)) + u64::from(le16(&h, 28));
        if start.saturating_add(e.compressed) > self.len {
            return Err(self.corrupt(format!(
                "entry {:?} is cut short (the archive is truncated)",
                e.name
            )));
        }
        self.data.seek(SeekFrom::Start(start)).map_err(io)?;
        let raw = (&mut self.data).take(e.compressed);
        let mut out = Vec::with_capacity(usize::try_from(e.uncompressed.min(1 << 20)).unwrap_or(0));
        // One byte past the cap tells a lying declared size from a real one.
        let read = if e.method == 8 {
            flate2::read::DeflateDecoder::new(raw)
                .take(max + 1)
                .read_to_end(&mut out)
        } else {
            raw.take(max + 1).read_to_end(&mut out)
        };
        read.map_err(|err| self.corrupt(format!("entry {:?} does not inflate: {err}", e.name)))?;
        if out.len() as u64 > max {
            return Err(too_large(out.len() as u64));
        }
        if out.len() as u64 != e.uncompressed {
            return Err(self.corrupt(format!(
                "entry {:?} inflates to {} bytes, the directory says {}",
                e.name,
                out.len(),
                e.uncompressed
            )));
        }
        let mut crc = flate2::Crc::new();
        crc.update(&out);
        if crc.sum() != e.crc {
            return Err(self.corrupt(format!("entry {:?} fails its CRC-32 check", e.name)));
        }
        Ok(out)
    }
}
