//! The streaming ZIP reader against archives written here: round trip,
//! truncation, corruption, and entries over the cap (a zip bomb).
#![forbid(unsafe_code)]

mod common;

use std::path::Path;

use common::zipw::write_zip;
use trustwatch_server::vuln::zipread::{Archive, ZipError};

fn read_all(path: &Path, max: u64) -> Result<Vec<(String, Vec<u8>)>, ZipError> {
    let mut a = Archive::open(path)?;
    let mut v = Vec::new();
    while let Some(e) = a.next_entry()? {
        let data = a.read(&e, max)?;
        v.push((e.name, data));
    }
    Ok(v)
}

#[test]
fn entries_round_trip_through_deflate() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.zip");
    let big = vec![b'x'; 100_000];
    write_zip(&p, &[("a.json", b"{\"a\":1}"), ("b.json", &big)]);
    let v = read_all(&p, 1 << 20).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0, "a.json");
    assert_eq!(v[0].1, b"{\"a\":1}");
    assert_eq!(v[1].1, big);
}

#[test]
fn truncated_archive_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.zip");
    write_zip(&p, &[("a.json", &vec![b'y'; 5000])]);
    let bytes = std::fs::read(&p).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 10, 0] {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = read_all(&p, 1 << 20).unwrap_err();
        assert!(
            matches!(e, ZipError::NoEocd(_) | ZipError::Corrupt { .. }),
            "{e}"
        );
    }
}

#[test]
fn corrupted_data_fails_its_crc_or_inflate() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.zip");
    write_zip(&p, &[("a.json", &b"hello world, hello world".repeat(50))]);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[40] ^= 0xFF;
    std::fs::write(&p, &bytes).unwrap();
    let e = read_all(&p, 1 << 20).unwrap_err();
    assert!(matches!(e, ZipError::Corrupt { .. }), "{e}");
}

#[test]
fn entry_over_the_cap_is_refused_before_and_while_inflating() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.zip");
    write_zip(&p, &[("bomb.json", &vec![b'0'; 2_000_000])]);
    let e = read_all(&p, 1000).unwrap_err();
    assert!(matches!(e, ZipError::TooLarge { .. }), "{e}");
    // A directory that lies about the size: caught while inflating.
    let mut bytes = std::fs::read(&p).unwrap();
    let cd = bytes.len() - 22 - 46 - "bomb.json".len();
    bytes[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let e = read_all(&p, 1000).unwrap_err();
    assert!(matches!(e, ZipError::TooLarge { size: 1001, .. }), "{e}");
}
