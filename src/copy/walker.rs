//! The tuple walker: a streaming parser for binary COPY data that finds tuple and field
//! boundaries in place. Whole tuples in the current chunk are handed to the sink straight
//! from it; only a tuple split across chunks is gathered in a carry buffer. The field table
//! is reused from row to row, so walking allocates nothing per row.

use std::fmt;

use super::binary::SIGNATURE;

/// A field of a tuple: where its bytes start in the tuple, and its length (-1 for NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub start: u32,
    pub len: i32,
}

/// One tuple: its bytes (field count included) and its fields.
#[derive(Debug, Clone, Copy)]
pub struct Tuple<'a> {
    pub bytes: &'a [u8],
    pub fields: &'a [Field],
    /// 1-based row number in the stream.
    pub row: u64,
}

impl<'a> Tuple<'a> {
    /// Field `i`'s bytes, `None` for NULL.
    #[inline]
    pub fn value(&self, i: usize) -> Option<&'a [u8]> {
        let f = self.fields[i];
        (f.len >= 0).then(|| &self.bytes[f.start as usize..f.start as usize + f.len as usize])
    }
}

/// Receives what the walker finds. Its own error type comes back out of `feed` as it is
/// (the walker's malformed-data errors are converted into it).
pub trait TupleSink {
    type Error: From<CopyError>;
    /// The header, as it was in the input.
    fn header(&mut self, raw: &[u8]) -> Result<(), Self::Error>;
    fn tuple(&mut self, tuple: Tuple<'_>) -> Result<(), Self::Error>;
    /// The trailer, as it was in the input.
    fn trailer(&mut self, raw: &[u8]) -> Result<(), Self::Error>;
}

/// Malformed binary COPY data, with the row it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyError {
    /// 1-based row number; `None` for the header.
    pub row: Option<u64>,
    pub message: String,
}

impl CopyError {
    fn at(row: Option<u64>, message: impl Into<String>) -> CopyError {
        CopyError {
            row,
            message: message.into(),
        }
    }
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(row) => write!(f, "binary COPY data, row {row}: {}", self.message),
            None => write!(f, "binary COPY data, header: {}", self.message),
        }
    }
}

impl std::error::Error for CopyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Tuples,
    Done,
}

/// How much of the next unit (header, tuple or trailer) the buffer holds.
enum Scan {
    /// A whole unit of this many bytes.
    Complete(usize),
    /// At least this many more bytes are needed.
    Need(usize),
}

pub struct TupleWalker {
    state: State,
    expected_fields: Option<u16>,
    has_oids: bool,
    /// Tuples seen so far.
    row: u64,
    /// A unit split across inputs, gathered until whole.
    carry: Vec<u8>,
    fields: Vec<Field>,
}

impl TupleWalker {
    /// A walker that checks each tuple has `expected_fields` fields, if given.
    pub fn new(expected_fields: Option<u16>) -> TupleWalker {
        TupleWalker {
            state: State::Header,
            expected_fields,
            has_oids: false,
            row: 0,
            carry: Vec::new(),
            fields: Vec::with_capacity(expected_fields.unwrap_or(16) as usize + 1),
        }
    }

    /// Rows walked so far.
    pub fn rows(&self) -> u64 {
        self.row
    }

    /// Whether the trailer has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Walks the next piece of the stream; any split is fine.
    pub fn feed<S: TupleSink>(&mut self, mut input: &[u8], sink: &mut S) -> Result<(), S::Error> {
        if !self.carry.is_empty() {
            loop {
                let carry = std::mem::take(&mut self.carry);
                let scan = self.scan(&carry);
                self.carry = carry;
                match scan? {
                    Scan::Complete(len) => {
                        debug_assert_eq!(len, self.carry.len());
                        let carry = std::mem::take(&mut self.carry);
                        let res = self.process(&carry[..len], sink);
                        // Keep the allocation for the next split unit.
                        self.carry = carry;
                        self.carry.clear();
                        res?;
                        break;
                    }
                    Scan::Need(n) => {
                        if input.is_empty() {
                            return Ok(());
                        }
                        let take = n.min(input.len());
                        self.carry.extend_from_slice(&input[..take]);
                        input = &input[take..];
                    }
                }
            }
        }
        while !input.is_empty() {
            match self.scan(input)? {
                Scan::Complete(len) => {
                    self.process(&input[..len], sink)?;
                    input = &input[len..];
                }
                Scan::Need(_) => {
                    self.carry.extend_from_slice(input);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Checks the stream ended where it should: after the trailer, with nothing left over.
    pub fn finish(&self) -> Result<(), CopyError> {
        match self.state {
            State::Done => Ok(()),
            State::Header => Err(CopyError::at(
                None,
                "stream ended before the header was complete",
            )),
            State::Tuples => Err(CopyError::at(
                Some(self.row + 1),
                if self.carry.is_empty() {
                    "stream ended without the trailer".to_string()
                } else {
                    format!(
                        "stream ended in the middle of a tuple ({} bytes of it received)",
                        self.carry.len()
                    )
                },
            )),
        }
    }

    /// Finds the extent of the next unit in `buf`, filling the field table for a tuple.
    #[inline]
    fn scan(&mut self, buf: &[u8]) -> Result<Scan, CopyError> {
        match self.state {
            State::Header => {
                let check = buf.len().min(SIGNATURE.len());
                if buf[..check] != SIGNATURE[..check] {
                    return Err(CopyError::at(
                        None,
                        "missing the PGCOPY signature: not binary COPY data",
                    ));
                }
                if buf.len() < 19 {
                    return Ok(Scan::Need(19 - buf.len()));
                }
                let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
                let total = 19 + ext;
                Ok(if buf.len() >= total {
                    Scan::Complete(total)
                } else {
                    Scan::Need(total - buf.len())
                })
            }
            State::Done => Err(CopyError::at(Some(self.row), "data after the trailer")),
            State::Tuples => {
                let row = self.row + 1;
                if buf.len() < 2 {
                    return Ok(Scan::Need(2 - buf.len()));
                }
                let count = i16::from_be_bytes([buf[0], buf[1]]);
                if count == -1 {
                    return Ok(Scan::Complete(2));
                }
                if count < 0 {
                    return Err(CopyError::at(
                        Some(row),
                        format!("invalid field count {count}"),
                    ));
                }
                let count = count as u16;
                if let Some(expected) = self.expected_fields {
                    if count != expected {
                        return Err(CopyError::at(
                            Some(row),
                            format!(
                                "tuple has {count} fields, but the table has {expected} columns"
                            ),
                        ));
                    }
                }
                self.fields.clear();
                let mut at = 2usize;
                let total_fields = count as usize + self.has_oids as usize;
                for _ in 0..total_fields {
                    if buf.len() < at + 4 {
                        return Ok(Scan::Need(at + 4 - buf.len()));
                    }
                    let len = i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
                    at += 4;
                    if len < -1 {
                        return Err(CopyError::at(
                            Some(row),
                            format!(
                                "field {} has an invalid length {len}",
                                self.fields.len() + 1
                            ),
                        ));
                    }
                    self.fields.push(Field {
                        start: at as u32,
                        len,
                    });
                    if len > 0 {
                        at += len as usize;
                        if buf.len() < at {
                            return Ok(Scan::Need(at - buf.len()));
                        }
                    }
                }
                Ok(Scan::Complete(at))
            }
        }
    }

    fn process<S: TupleSink>(&mut self, unit: &[u8], sink: &mut S) -> Result<(), S::Error> {
        match self.state {
            State::Header => {
                let flags = u32::from_be_bytes([unit[11], unit[12], unit[13], unit[14]]);
                // Bits 0-15 are critical: a reader must stop at one it does not know.
                if flags & 0xffff != 0 {
                    return Err(CopyError::at(
                        None,
                        format!(
                            "unknown critical flags 0x{:04x} in the header",
                            flags & 0xffff
                        ),
                    )
                    .into());
                }
                self.has_oids = flags & (1 << 16) != 0;
                self.state = State::Tuples;
                sink.header(unit)
            }
            State::Tuples if unit.len() == 2 && unit == [0xff, 0xff] => {
                self.state = State::Done;
                sink.trailer(unit)
            }
            State::Tuples => {
                self.row += 1;
                // With OIDs, the OID field precedes the counted fields: hand on only the fields.
                let fields = if self.has_oids {
                    &self.fields[1..]
                } else {
                    &self.fields[..]
                };
                sink.tuple(Tuple {
                    bytes: unit,
                    fields,
                    row: self.row,
                })
            }
            State::Done => Err(CopyError::at(Some(self.row), "data after the trailer").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::binary::{write_header, write_trailer, TupleWriter};
    use bytes::BytesMut;

    /// Records everything the walker reports, for comparisons.
    #[derive(Default, Debug, PartialEq)]
    struct Recorder {
        header: Vec<u8>,
        tuples: Vec<(u64, Vec<Option<Vec<u8>>>)>,
        trailer: bool,
    }

    impl TupleSink for Recorder {
        type Error = CopyError;
        fn header(&mut self, raw: &[u8]) -> Result<(), CopyError> {
            self.header = raw.to_vec();
            Ok(())
        }
        fn tuple(&mut self, t: Tuple<'_>) -> Result<(), CopyError> {
            self.tuples.push((
                t.row,
                (0..t.fields.len())
                    .map(|i| t.value(i).map(<[u8]>::to_vec))
                    .collect(),
            ));
            Ok(())
        }
        fn trailer(&mut self, _: &[u8]) -> Result<(), CopyError> {
            self.trailer = true;
            Ok(())
        }
    }

    fn sample() -> Vec<u8> {
        let mut out = BytesMut::new();
        write_header(&mut out);
        for i in 0..50u32 {
            let mut t = TupleWriter::begin(&mut out, 3);
            t.field(&i.to_be_bytes());
            if i % 3 == 0 {
                t.null();
            } else {
                t.field("x".repeat(i as usize).as_bytes());
            }
            t.field(b"");
        }
        write_trailer(&mut out);
        out.to_vec()
    }

    fn walk_in_chunks(data: &[u8], sizes: &[usize]) -> Result<Recorder, CopyError> {
        let mut walker = TupleWalker::new(Some(3));
        let mut rec = Recorder::default();
        let mut at = 0;
        let mut k = 0;
        while at < data.len() {
            let n = sizes[k % sizes.len()].max(1).min(data.len() - at);
            walker.feed(&data[at..at + n], &mut rec)?;
            at += n;
            k += 1;
        }
        walker.finish()?;
        Ok(rec)
    }

    #[test]
    fn any_split_gives_the_same_tuples() {
        let data = sample();
        let whole = walk_in_chunks(&data, &[data.len()]).unwrap();
        assert_eq!(whole.tuples.len(), 50);
        assert_eq!(
            whole.tuples[3].1,
            vec![Some(3u32.to_be_bytes().to_vec()), None, Some(vec![])]
        );
        assert!(whole.trailer);
        for sizes in [
            &[1usize][..],
            &[2],
            &[3, 7],
            &[19],
            &[20, 1, 5],
            &[64],
            &[1000],
        ] {
            assert_eq!(
                walk_in_chunks(&data, sizes).unwrap(),
                whole,
                "sizes {sizes:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_row_and_never_panic() {
        let data = sample();
        let mut wrong = TupleWalker::new(Some(4));
        let err = wrong.feed(&data, &mut Recorder::default()).unwrap_err();
        assert_eq!(err.row, Some(1));
        assert!(
            err.to_string()
                .contains("3 fields, but the table has 4 columns"),
            "{err}"
        );

        // A negative length other than -1 in row 2.
        let mut bad = BytesMut::new();
        write_header(&mut bad);
        TupleWriter::begin(&mut bad, 1).field(b"ok");
        bad.extend_from_slice(&[0, 1, 0xff, 0xff, 0xff, 0xfe]);
        let err = TupleWalker::new(None)
            .feed(&bad, &mut Recorder::default())
            .unwrap_err();
        assert_eq!(err.row, Some(2));
        assert!(err.message.contains("invalid length -2"), "{err}");

        // Truncated: every prefix either walks or is reported by finish(), never panics.
        for cut in 0..data.len() {
            let mut w = TupleWalker::new(Some(3));
            let mut rec = Recorder::default();
            w.feed(&data[..cut], &mut rec).unwrap();
            let err = w.finish().unwrap_err();
            if cut >= 19 {
                assert_eq!(
                    err.row,
                    Some(rec.tuples.len() as u64 + 1),
                    "cut {cut}: {err}"
                );
            }
        }
        // Every single-byte corruption yields tuples or an error, never a panic.
        for i in 0..data.len() {
            let mut c = data.clone();
            c[i] ^= 0x80;
            let mut w = TupleWalker::new(None);
            let _ = w
                .feed(&c, &mut Recorder::default())
                .and_then(|_| w.finish());
        }
    }

    #[test]
    fn header_checks() {
        let mut w = TupleWalker::new(None);
        assert!(w
            .feed(b"PGCOPX", &mut Recorder::default())
            .unwrap_err()
            .message
            .contains("signature"));
        let mut h = BytesMut::new();
        write_header(&mut h);
        h[14] = 1; // a critical flag bit
        assert!(TupleWalker::new(None)
            .feed(&h, &mut Recorder::default())
            .unwrap_err()
            .message
            .contains("critical"));
        // A header extension is skipped, and the OID flag adds an uncounted field.
        let mut h = BytesMut::new();
        h.extend_from_slice(SIGNATURE);
        h.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 3, 9, 9, 9]);
        TupleWriter::begin(&mut h, 1)
            .field(&[0, 0, 0, 42])
            .field(b"v");
        write_trailer(&mut h);
        let mut rec = Recorder::default();
        let mut w = TupleWalker::new(Some(1));
        w.feed(&h, &mut rec).unwrap();
        w.finish().unwrap();
        assert_eq!(rec.tuples, vec![(1, vec![Some(b"v".to_vec())])]);
        // Data after the trailer is an error.
        let mut data = sample();
        data.push(0);
        assert!(TupleWalker::new(Some(3))
            .feed(&data, &mut Recorder::default())
            .unwrap_err()
            .message
            .contains("after the trailer"));
    }
}
