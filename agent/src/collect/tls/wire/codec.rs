//! Bounds-checked big-endian reading and length-prefixed writing: the two
//! primitives the builders and parsers of this module share.
//!
//! Invariants: [`Reader`] never panics and never reads past its slice (every
//! accessor returns `None` instead); [`Writer`] refuses (with
//! [`LengthOverflow`]) a length-prefixed block larger than its prefix can say.

/// A cursor over a byte slice; every read is checked.
#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// Bytes not yet read.
    pub(super) fn remaining(&self) -> usize {
        self.data.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The unread bytes (the cursor does not move).
    pub(super) fn rest(&self) -> &'a [u8] {
        self.data
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let b = self.take(1)?;
        b.first().copied()
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    pub(super) fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }

    /// A block prefixed by a one-byte length.
    pub(super) fn vec_u8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A block prefixed by a two-byte length.
    pub(super) fn vec_u16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// A length-prefixed block would not fit its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LengthOverflow;

/// Where a length prefix waits to be filled in.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(super) struct Mark {
    at: usize,
    width: usize,
}

/// A growable output buffer with length prefixes patched in afterwards.
#[derive(Debug, Default)]
pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn new() -> Self {
        Writer::default()
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(super) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Starts a block whose length goes in a prefix of `width` bytes (1 to 3;
    /// any other width makes [`Writer::end`] fail).
    pub(super) fn begin(&mut self, width: usize) -> Mark {
        let at = self.buf.len();
        self.buf.extend(std::iter::repeat_n(0u8, width));
        Mark { at, width }
    }

    /// Ends the block started at `mark`, writing its length into the prefix.
    pub(super) fn end(&mut self, mark: Mark) -> Result<(), LengthOverflow> {
        if !(1..=3).contains(&mark.width) {
            return Err(LengthOverflow);
        }
        let start = mark.at.checked_add(mark.width).ok_or(LengthOverflow)?;
        let len = self.buf.len().checked_sub(start).ok_or(LengthOverflow)?;
        let max = (1usize << (8 * mark.width)) - 1;
        if len > max {
            return Err(LengthOverflow);
        }
        let be = (len as u32).to_be_bytes();
        let prefix = be.get(4 - mark.width..).ok_or(LengthOverflow)?;
        let slot = self.buf.get_mut(mark.at..start).ok_or(LengthOverflow)?;
        slot.copy_from_slice(prefix);
        Ok(())
    }

    pub(super) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_to_read_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Some(0x0102));
        assert_eq!(r.u16(), None);
        assert_eq!(r.u8(), Some(3));
        assert_eq!(r.u8(), None);
        let mut r = Reader::new(&[0, 0, 5, 1]);
        assert_eq!(r.u24(), Some(5));
        assert_eq!(r.take(2), None);
        assert_eq!(r.remaining(), 1);
        let mut r = Reader::new(&[3, 9, 9]);
        assert_eq!(
            r.vec_u8(),
            None,
            "a length of 3 with 2 bytes left is refused"
        );
    }

    #[test]
    fn writer_patches_prefixes_and_refuses_overflow() {
        let mut w = Writer::new();
        let outer = w.begin(2);
        let inner = w.begin(1);
        w.bytes(&[0xaa, 0xbb]);
        w.end(inner).unwrap();
        w.end(outer).unwrap();
        assert_eq!(w.into_vec(), vec![0, 3, 2, 0xaa, 0xbb]);

        let mut w = Writer::new();
        let m = w.begin(1);
        w.bytes(&[0u8; 256]);
        assert_eq!(w.end(m), Err(LengthOverflow));

        let mut w = Writer::new();
        let m = w.begin(3);
        w.bytes(&[7u8; 300]);
        w.end(m).unwrap();
        assert_eq!(&w.into_vec()[..3], &[0, 1, 44]);
    }
}
