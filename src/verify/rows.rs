//! Rows of a COPY stream, binary or text, handed to a callback one at a time with their
//! fields located in place: the binary walker for binary COPY, a line and tab splitter for
//! text COPY (values stay escaped: both sides of a comparison are escaped the same way).

use crate::copy::{CopyError, Field, Tuple, TupleSink, TupleWalker};

/// A row's fields: the value bytes of field `i`, `None` for NULL.
pub struct Row<'a> {
    bytes: &'a [u8],
    fields: &'a [Field],
}

impl<'a> Row<'a> {
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let f = self.fields[i];
        (f.len >= 0).then(|| &self.bytes[f.start as usize..f.start as usize + f.len as usize])
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Splits a COPY stream into rows.
pub enum RowReader {
    Binary(TupleWalker),
    Text(TextLines),
}

impl RowReader {
    pub fn new(binary: bool, fields: usize) -> RowReader {
        if binary {
            RowReader::Binary(TupleWalker::new(Some(fields as u16)))
        } else {
            RowReader::Text(TextLines {
                fields_expected: fields,
                carry: Vec::new(),
                fields: Vec::with_capacity(fields),
                rows: 0,
                ended: false,
            })
        }
    }

    /// Walks the next piece of the stream (any split), calling `f` for each whole row.
    pub fn feed(&mut self, data: &[u8], f: &mut impl FnMut(&Row<'_>)) -> Result<(), CopyError> {
        match self {
            RowReader::Binary(w) => w.feed(data, &mut Sink(f)),
            RowReader::Text(t) => t.feed(data, f),
        }
    }

    /// Checks the stream ended where a row ends.
    pub fn finish(&self) -> Result<(), CopyError> {
        match self {
            RowReader::Binary(w) => w.finish(),
            RowReader::Text(t) if !t.carry.is_empty() => Err(CopyError {
                row: Some(t.rows + 1),
                message: "text COPY data ended in the middle of a row".into(),
            }),
            RowReader::Text(_) => Ok(()),
        }
    }
}

struct Sink<'f, F>(&'f mut F);

impl<F: FnMut(&Row<'_>)> TupleSink for Sink<'_, F> {
    type Error = CopyError;
    fn header(&mut self, _: &[u8]) -> Result<(), CopyError> {
        Ok(())
    }
    #[inline]
    fn tuple(&mut self, t: Tuple<'_>) -> Result<(), CopyError> {
        (self.0)(&Row {
            bytes: t.bytes,
            fields: t.fields,
        });
        Ok(())
    }
    fn trailer(&mut self, _: &[u8]) -> Result<(), CopyError> {
        Ok(())
    }
}

/// Text COPY: rows end with a newline, fields are separated by tabs (a tab or newline inside
/// a value is written as `\t` or `\n`), and `\N` alone is NULL.
pub struct TextLines {
    fields_expected: usize,
    carry: Vec<u8>,
    fields: Vec<Field>,
    rows: u64,
    ended: bool,
}

impl TextLines {
    fn feed(&mut self, mut data: &[u8], f: &mut impl FnMut(&Row<'_>)) -> Result<(), CopyError> {
        if !self.carry.is_empty() {
            let Some(end) = data.iter().position(|&b| b == b'\n') else {
                self.carry.extend_from_slice(data);
                return Ok(());
            };
            self.carry.extend_from_slice(&data[..=end]);
            data = &data[end + 1..];
            let line = std::mem::take(&mut self.carry);
            let res = self.line(&line[..line.len() - 1], f);
            self.carry = line;
            self.carry.clear();
            res?;
        }
        while let Some(end) = data.iter().position(|&b| b == b'\n') {
            self.line(&data[..end], f)?;
            data = &data[end + 1..];
        }
        self.carry.extend_from_slice(data);
        Ok(())
    }

    fn line(&mut self, line: &[u8], f: &mut impl FnMut(&Row<'_>)) -> Result<(), CopyError> {
        if self.ended || line == b"\\." {
            self.ended = true;
            return Ok(());
        }
        self.rows += 1;
        self.fields.clear();
        let mut start = 0usize;
        for (i, &b) in line
            .iter()
            .enumerate()
            .chain(std::iter::once((line.len(), &b'\t')))
        {
            if b == b'\t' {
                let value = &line[start..i];
                self.fields.push(Field {
                    start: start as u32,
                    len: if value == b"\\N" {
                        -1
                    } else {
                        value.len() as i32
                    },
                });
                start = i + 1;
            }
        }
        // A table without columns copies empty lines.
        if self.fields_expected == 0 && line.is_empty() {
            self.fields.clear();
        }
        if self.fields.len() != self.fields_expected {
            return Err(CopyError {
                row: Some(self.rows),
                message: format!(
                    "row has {} fields, {} expected",
                    self.fields.len(),
                    self.fields_expected
                ),
            });
        }
        f(&Row {
            bytes: line,
            fields: &self.fields,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(reader: &mut RowReader, pieces: &[&[u8]]) -> Vec<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::new();
        for p in pieces {
            reader
                .feed(p, &mut |r: &Row<'_>| {
                    out.push((0..r.len()).map(|i| r.get(i).map(<[u8]>::to_vec)).collect())
                })
                .unwrap();
        }
        reader.finish().unwrap();
        out
    }

    #[test]
    fn text_rows_split_anywhere_give_the_same_fields() {
        let data = b"a\t\\N\tc\\td\n\t\tx\n";
        let whole = collect(&mut RowReader::new(false, 3), &[data]);
        assert_eq!(
            whole,
            vec![
                vec![Some(b"a".to_vec()), None, Some(b"c\\td".to_vec())],
                vec![Some(vec![]), Some(vec![]), Some(b"x".to_vec())],
            ]
        );
        for cut in 0..data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(collect(&mut RowReader::new(false, 3), &[a, b]), whole);
        }
    }

    #[test]
    fn a_text_row_with_the_wrong_field_count_is_an_error() {
        let mut r = RowReader::new(false, 2);
        assert!(r.feed(b"a\tb\tc\n", &mut |_: &Row<'_>| {}).is_err());
        let mut r = RowReader::new(false, 2);
        r.feed(b"a\tb", &mut |_: &Row<'_>| {}).unwrap();
        assert!(r.finish().is_err());
    }
}
