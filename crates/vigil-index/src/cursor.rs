//! Little-endian reads from an index file's bytes that fail, rather than
//! panic, when the bytes run out.

use crate::IndexError;

/// A read position in a byte slice.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pub(crate) at: usize,
    /// What the bytes are, for the error when they run out.
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// Reads `b` from its start; `what` names it in errors.
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Self {
        Cursor { b, at: 0, what }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or_else(|| IndexError::Corrupt(format!("{} truncated", self.what)))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        Ok(self.take(N)?.try_into().unwrap_or([0; N]))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, IndexError> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, IndexError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, IndexError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, IndexError> {
        self.array().map(i64::from_le_bytes)
    }
}
