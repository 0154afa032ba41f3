//! CopyData frames in a buffer, found in place. A backend CopyData and a frontend CopyData
//! have the same layout (`d`, int32 length, payload), so a run of frames read from one server
//! can be written to another as it is.

use super::backend::frame_len;
use super::ProtocolError;

/// The length of the leading run of *complete* CopyData frames in `buf`: 0 when the buffer
/// starts with another message or an incomplete frame. Lengths are checked against `max_len`.
#[inline]
pub fn leading_copy_data(buf: &[u8], max_len: usize) -> Result<usize, ProtocolError> {
    let mut at = 0;
    while let Some(&tag) = buf.get(at) {
        if tag != b'd' {
            break;
        }
        match frame_len(&buf[at..], max_len)? {
            Some(len) if at + len <= buf.len() => at += len,
            _ => break,
        }
    }
    Ok(at)
}

/// Iterates over the payloads of a run of complete CopyData frames (as returned by
/// `leading_copy_data`); the caller guarantees the run is well formed.
pub struct CopyDataPayloads<'a> {
    rest: &'a [u8],
}

impl<'a> CopyDataPayloads<'a> {
    pub fn new(frames: &'a [u8]) -> Self {
        CopyDataPayloads { rest: frames }
    }
}

impl<'a> Iterator for CopyDataPayloads<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < 5 {
            return None;
        }
        let len =
            u32::from_be_bytes([self.rest[1], self.rest[2], self.rest[3], self.rest[4]]) as usize;
        let end = (1 + len).min(self.rest.len());
        let payload = &self.rest[5..end];
        self.rest = &self.rest[end..];
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frontend;
    use bytes::BytesMut;

    #[test]
    fn finds_the_leading_run() {
        let mut buf = BytesMut::new();
        frontend::copy_data(b"row1", &mut buf);
        frontend::copy_data(b"row22", &mut buf);
        let run = buf.len();
        frontend::copy_done(&mut buf);
        frontend::copy_data(b"after", &mut buf);
        assert_eq!(leading_copy_data(&buf, 1 << 20).unwrap(), run);
        let payloads: Vec<&[u8]> = CopyDataPayloads::new(&buf[..run]).collect();
        assert_eq!(payloads, vec![&b"row1"[..], b"row22"]);
        // An incomplete frame ends the run, at every cut.
        for cut in 0..run {
            let got = leading_copy_data(&buf[..cut], 1 << 20).unwrap();
            assert!(got == 0 || got == 9, "cut {cut}: {got}");
            assert_eq!(got == 9, cut >= 9);
        }
        assert_eq!(leading_copy_data(b"Z\0\0\0\x05I", 1 << 20).unwrap(), 0);
        assert!(leading_copy_data(b"d\x7f\0\0\0", 1 << 20).is_err());
    }
}
