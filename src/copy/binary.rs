//! Writing binary COPY data: header, tuples and trailer.

use bytes::{BufMut, BytesMut};

/// `PGCOPY\n\377\r\n\0`: the 11-byte signature that opens binary COPY data.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The header with no flags and an empty extension area.
pub fn write_header(out: &mut BytesMut) {
    out.put_slice(SIGNATURE);
    out.put_u32(0);
    out.put_u32(0);
}

/// The trailer: a field count of -1.
pub fn write_trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

/// Writes one tuple field by field; the count is given up front.
pub struct TupleWriter<'a> {
    out: &'a mut BytesMut,
}

impl<'a> TupleWriter<'a> {
    pub fn begin(out: &'a mut BytesMut, fields: u16) -> Self {
        out.put_u16(fields);
        TupleWriter { out }
    }

    pub fn field(&mut self, value: &[u8]) -> &mut Self {
        self.out.put_i32(value.len() as i32);
        self.out.put_slice(value);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.out.put_i32(-1);
        self
    }

    /// A field whose bytes are written by `f`; the length is back-patched.
    pub fn field_with(&mut self, f: impl FnOnce(&mut BytesMut)) -> &mut Self {
        let at = self.out.len();
        self.out.put_i32(0);
        f(self.out);
        let len = (self.out.len() - at - 4) as i32;
        self.out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        self
    }
}
