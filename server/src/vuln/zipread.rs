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
//! and its local header, which must give the same name; its decompressed
//! size may not exceed the cap (checked against the declared size before
//! inflating and against the bytes actually produced while inflating); its
//! CRC-32 and size must match; the directory holds exactly the entries its
//! end record counts; any inconsistency (truncation, a bad signature, an
//! unsupported method, encryption) is a [`ZipError`], never a panic.

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
    /// Whether the directory was checked to end after the last entry.
    end_checked: bool,
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
            end_checked: false,
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
        let path = self.path.clone();
        let io = |source| ZipError::Io {
            path: path.clone(),
            source,
        };
        if self.remaining == 0 {
            // An end record counting fewer entries than the directory
            // holds would leave the rest unseen.
            if !self.end_checked {
                self.end_checked = true;
                let pos = self.dir.stream_position().map_err(io)?;
                let mut sig = [0u8; 4];
                if pos.saturating_add(4) <= self.dir_end {
                    self.dir.read_exact(&mut sig).map_err(io)?;
                    if u32::from_le_bytes(sig) == CENTRAL_SIG {
                        return Err(self.corrupt(
                            "the central directory holds more entries than its end record counts",
                        ));
                    }
                }
            }
            return Ok(None);
        }
        self.remaining -= 1;
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
        // The local header repeats the name: a mismatch is corruption (a
        // flipped byte in the directory would otherwise rename the entry).
        let name_len = le16(&h, 26);
        if e.local_offset + 30 + u64::from(name_len) > self.len {
            return Err(self.corrupt(format!("entry {:?} lies past the end of the file", e.name)));
        }
        let mut local_name = vec![0u8; usize::from(name_len)];
        self.data.read_exact(&mut local_name).map_err(io)?;
        if String::from_utf8_lossy(&local_name) != e.name.as_str() {
            return Err(self.corrupt(format!(
                "entry {:?} is named {:?} in its local header",
                e.name,
                String::from_utf8_lossy(&local_name)
            )));
        }
        let start = e.local_offset + 30 + u64::from(name_len) + u64::from(le16(&h, 28));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// One entry to write.
    #[derive(Debug, Clone)]
    struct Spec {
        name: String,
        data: Vec<u8>,
        deflate: bool,
    }

    fn u16le(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn u32le(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn u64le(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn n32(x: usize) -> u32 {
        u32::try_from(x).unwrap_or(u32::MAX)
    }
    fn n16(x: usize) -> u16 {
        u16::try_from(x).unwrap_or(u16::MAX)
    }

    /// A small ZIP writer: stored or deflated entries, an archive
    /// comment, and (when `zip64`) the ZIP64 end records with every
    /// size and offset moved to the ZIP64 extra field.
    fn zip(entries: &[Spec], comment: &[u8], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for e in entries {
            let body = if e.deflate {
                let mut enc =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&e.data).unwrap();
                enc.finish().unwrap()
            } else {
                e.data.clone()
            };
            let mut crc = flate2::Crc::new();
            crc.update(&e.data);
            let method = if e.deflate { 8 } else { 0 };
            let offset = out.len();
            u32le(&mut out, LOCAL_SIG);
            u16le(&mut out, 20);
            u16le(&mut out, 0);
            u16le(&mut out, method);
            u32le(&mut out, 0x5A21_6000); // a DOS time and date
            u32le(&mut out, crc.sum());
            u32le(&mut out, n32(body.len()));
            u32le(&mut out, n32(e.data.len()));
            u16le(&mut out, n16(e.name.len()));
            u16le(&mut out, 0);
            out.extend_from_slice(e.name.as_bytes());
            out.extend_from_slice(&body);

            u32le(&mut central, CENTRAL_SIG);
            u16le(&mut central, 0x031E);
            u16le(&mut central, if zip64 { 45 } else { 20 });
            u16le(&mut central, 0);
            u16le(&mut central, method);
            u32le(&mut central, 0x5A21_6000);
            u32le(&mut central, crc.sum());
            let big = |x: usize| if zip64 { u32::MAX } else { n32(x) };
            u32le(&mut central, big(body.len()));
            u32le(&mut central, big(e.data.len()));
            u16le(&mut central, n16(e.name.len()));
            u16le(&mut central, if zip64 { 28 } else { 0 });
            u16le(&mut central, 0); // comment
            u16le(&mut central, 0); // disk
            u16le(&mut central, 0); // internal attributes
            u32le(&mut central, 0o100644 << 16);
            u32le(&mut central, big(offset));
            central.extend_from_slice(e.name.as_bytes());
            if zip64 {
                u16le(&mut central, 0x0001);
                u16le(&mut central, 24);
                u64le(&mut central, e.data.len() as u64);
                u64le(&mut central, body.len() as u64);
                u64le(&mut central, offset as u64);
            }
        }
        let cd_offset = out.len();
        out.extend_from_slice(&central);
        let n = entries.len();
        if zip64 {
            let z_off = out.len() as u64;
            u32le(&mut out, ZIP64_EOCD_SIG);
            u64le(&mut out, 44);
            u16le(&mut out, 45);
            u16le(&mut out, 45);
            u32le(&mut out, 0);
            u32le(&mut out, 0);
            u64le(&mut out, n as u64);
            u64le(&mut out, n as u64);
            u64le(&mut out, central.len() as u64);
            u64le(&mut out, cd_offset as u64);
            u32le(&mut out, ZIP64_LOCATOR_SIG);
            u32le(&mut out, 0);
            u64le(&mut out, z_off);
            u32le(&mut out, 1);
        }
        u32le(&mut out, EOCD_SIG);
        u16le(&mut out, 0);
        u16le(&mut out, 0);
        let (count, size, off) = if zip64 {
            (u16::MAX, u32::MAX, u32::MAX)
        } else {
            (n16(n), n32(central.len()), n32(cd_offset))
        };
        u16le(&mut out, count);
        u16le(&mut out, count);
        u32le(&mut out, size);
        u32le(&mut out, off);
        u16le(&mut out, n16(comment.len()));
        out.extend_from_slice(comment);
        out
    }

    type Read = Result<Vec<(String, Vec<u8>)>, ZipError>;

    /// Writes `bytes` to a file and reads every entry with `max`.
    fn read_all(bytes: &[u8], max: u64) -> Read {
        let dir = tempfile::tempdir().map_err(|source| ZipError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let path = dir.path().join("a.zip");
        std::fs::write(&path, bytes).map_err(|source| ZipError::Io {
            path: path.clone(),
            source,
        })?;
        let mut a = Archive::open(&path)?;
        let mut v = Vec::new();
        while let Some(e) = a.next_entry()? {
            let data = a.read(&e, max)?;
            assert_size_matches(&e, &data);
            v.push((e.name, data));
        }
        Ok(v)
    }

    /// What an entry says of its size is what `read` returned.
    fn assert_size_matches(e: &Entry, data: &[u8]) {
        assert_eq!(e.size(), data.len() as u64, "{}", e.name);
    }

    fn as_read(entries: &[Spec]) -> Vec<(String, Vec<u8>)> {
        entries
            .iter()
            .map(|e| (e.name.clone(), e.data.clone()))
            .collect()
    }

    /// Names and sizes, for failure messages.
    fn summary(v: &[(String, Vec<u8>)]) -> Vec<(&str, usize)> {
        v.iter().map(|(n, d)| (n.as_str(), d.len())).collect()
    }

    fn one(name: &str, data: &[u8]) -> Spec {
        Spec {
            name: name.into(),
            data: data.to_vec(),
            deflate: true,
        }
    }

    #[test]
    fn an_entry_renamed_in_the_directory_is_refused() {
        let mut b = zip(&[one("a.json", b"{}"), one("b.json", b"[]")], b"", false);
        // The second central record's name: `b.json` becomes `c.json`.
        let at = b.len() - 22 - "b.json".len();
        assert_eq!(b[at], b'b');
        b[at] = b'c';
        let e = read_all(&b, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("local header"), "{e}");
    }

    #[test]
    fn an_end_record_counting_too_few_entries_is_refused() {
        let mut b = zip(&[one("a.json", b"{}"), one("b.json", b"[]")], b"", false);
        let eocd = b.len() - 22;
        b[eocd + 8..eocd + 12].copy_from_slice(&[1, 0, 1, 0]);
        let e = read_all(&b, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("more entries"), "{e}");
        // Counted right, the same archive reads whole.
        b[eocd + 8..eocd + 12].copy_from_slice(&[2, 0, 2, 0]);
        assert_eq!(read_all(&b, 1 << 20).unwrap().len(), 2);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn spec() -> impl Strategy<Value = Spec> {
            (
                prop_oneof![
                    "[a-zA-Z0-9_./-]{1,24}",
                    "\\PC{1,8}",
                    Just("dir/".to_owned())
                ],
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..4096),
                    // Compressible, so deflate really shrinks it.
                    (prop::collection::vec(any::<u8>(), 1..8), 0usize..600)
                        .prop_map(|(unit, n)| unit.repeat(n)),
                ],
                any::<bool>(),
            )
                .prop_map(|(name, data, deflate)| Spec {
                    name,
                    data,
                    deflate,
                })
        }

        fn archive() -> impl Strategy<Value = (Vec<Spec>, Vec<u8>)> {
            (
                prop::collection::vec(spec(), 0..5),
                prop_oneof![
                    Just(Vec::new()),
                    prop::collection::vec(any::<u8>(), 0..64),
                    // A comment that itself looks like an end record.
                    Just(b"PK\x05\x06 not the end".to_vec()),
                ],
                any::<bool>(),
            )
                .prop_map(|(entries, comment, zip64)| {
                    let bytes = zip(&entries, &comment, zip64);
                    (entries, bytes)
                })
        }

        proptest! {
            #[test]
            fn any_bytes_give_entries_or_an_error(
                bytes in prop::collection::vec(any::<u8>(), 0..2048),
                with_end in any::<bool>(),
                cd_offset in 0u32..2100,
                entries in 0u16..8,
            ) {
                let mut b = bytes;
                if with_end {
                    // An end record pointing into the noise, to get past `open`.
                    let size = n32(b.len()).saturating_sub(cd_offset);
                    b.extend_from_slice(&EOCD_SIG.to_le_bytes());
                    b.extend_from_slice(&[0; 4]);
                    b.extend_from_slice(&entries.to_le_bytes());
                    b.extend_from_slice(&entries.to_le_bytes());
                    b.extend_from_slice(&size.to_le_bytes());
                    b.extend_from_slice(&cd_offset.to_le_bytes());
                    b.extend_from_slice(&[0; 2]);
                }
                if let Ok(v) = read_all(&b, 1 << 16) {
                    prop_assert!(v.len() <= usize::from(entries));
                }
            }

            #[test]
            fn a_well_formed_archive_reads_as_exactly_what_was_written(
                (entries, bytes) in archive(),
            ) {
                let got = read_all(&bytes, 1 << 20)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, as_read(&entries));
            }

            #[test]
            fn a_truncated_archive_is_refused(
                (_, bytes) in archive(), cut in any::<prop::sample::Index>(),
            ) {
                let cut = cut.index(bytes.len());
                let got = read_all(&bytes[..cut], 1 << 20);
                let n = bytes.len();
                prop_assert!(got.is_err(), "cut at {} of {}: {:?}", cut, n, got.map(|v| v.len()));
            }

            /// One flipped byte: refused, or every entry exactly as written
            /// (the flip hit a field the reader does not use), never an
            /// entry dropped, renamed or changed.
            #[test]
            fn a_flipped_byte_is_refused_or_changes_nothing_read(
                (entries, bytes) in archive(),
                at in any::<prop::sample::Index>(),
                x in 1u8..=255,
            ) {
                let mut b = bytes;
                let at = at.index(b.len());
                b[at] ^= x;
                if let Ok(got) = read_all(&b, 1 << 20) {
                    let want = as_read(&entries);
                    prop_assert!(
                        got == want,
                        "byte {} ^= {:#x}: read {:?}, wrote {:?}",
                        at, x, summary(&got), summary(&want)
                    );
                }
            }

            /// An end record whose count disagrees with the directory: too
            /// few would drop the entries after it unseen, too many would
            /// read past the directory; both are refused.
            #[test]
            fn an_entry_count_other_than_the_directory_holds_is_refused(
                (entries, bytes) in archive(),
                count in 0u16..8,
            ) {
                prop_assume!(usize::from(count) != entries.len());
                let mut b = bytes;
                // Both counts of the classic end record, or of the ZIP64 one.
                let eocd = (0..=b.len() - 22)
                    .rev()
                    .find(|&i| {
                        b[i..i + 4] == EOCD_SIG.to_le_bytes()
                            && i + 22 + usize::from(u16::from_le_bytes([b[i + 20], b[i + 21]]))
                                == b.len()
                    })
                    .ok_or_else(|| TestCaseError::fail("no end record"))?;
                if u16::from_le_bytes([b[eocd + 10], b[eocd + 11]]) == u16::MAX {
                    let z = eocd - 20 - 56;
                    b[z + 24..z + 32].copy_from_slice(&u64::from(count).to_le_bytes());
                    b[z + 32..z + 40].copy_from_slice(&u64::from(count).to_le_bytes());
                } else {
                    b[eocd + 8..eocd + 10].copy_from_slice(&count.to_le_bytes());
                    b[eocd + 10..eocd + 12].copy_from_slice(&count.to_le_bytes());
                }
                let got = read_all(&b, 1 << 20);
                let n = entries.len();
                prop_assert!(got.is_err(), "{} of {} entries: {:?}", count, n, got.map(|v| v.len()));
            }

            /// The cap: an entry is read exactly when its size is within
            /// it, and refused as too large otherwise.
            #[test]
            fn an_entry_is_read_exactly_when_it_fits_the_cap(
                e in spec(), max in 0u64..5000, zip64 in any::<bool>(),
            ) {
                let bytes = zip(std::slice::from_ref(&e), b"", zip64);
                match read_all(&bytes, max) {
                    Ok(v) => {
                        prop_assert!(e.data.len() as u64 <= max);
                        prop_assert_eq!(v, as_read(&[e]));
                    }
                    Err(ZipError::TooLarge { size, .. }) => {
                        prop_assert!(e.data.len() as u64 > max);
                        prop_assert_eq!(size, e.data.len() as u64);
                    }
                    Err(other) => prop_assert!(false, "{}", other),
                }
            }

            /// A directory that understates a deflated entry's size: the
            /// reader stops one byte past the cap and refuses, never
            /// returning more than the cap.
            #[test]
            fn an_understated_size_is_caught_while_inflating(
                n in 1001usize..20_000, claimed in 0u32..=1000,
            ) {
                let e = Spec { name: "bomb.json".into(), data: vec![b'0'; n], deflate: true };
                let mut bytes = zip(std::slice::from_ref(&e), b"", false);
                // The central record's uncompressed size.
                let cd = bytes.len() - 22 - 46 - e.name.len();
                bytes[cd + 24..cd + 28].copy_from_slice(&claimed.to_le_bytes());
                let got = read_all(&bytes, 1000);
                let refused = matches!(got, Err(ZipError::TooLarge { size: 1001, .. }));
                prop_assert!(refused, "{:?}", got.map(|v| v.len()));
            }
        }
    }
}
