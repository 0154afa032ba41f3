//! The rewriter for tables copied in text format (a column type without binary I/O). Rows are
//! lines, fields are separated by tabs, `\N` is NULL and backslash escapes are decoded for the
//! masked fields only: those are unescaped, masked by the same strategies as in binary (text
//! values are the same bytes in both formats), and escaped again. Other fields are copied as
//! they are.

use bytes::{BufMut, BytesMut};

use super::rewriter::{ColumnAction, MaskError, MaskPlan};
use super::strategies::Outcome;

pub struct TextRewriter {
    plan: MaskPlan,
    out: BytesMut,
    /// A row split across inputs.
    carry: Vec<u8>,
    rows: u64,
    raw: Vec<u8>,
    masked: BytesMut,
    ended: bool,
}

impl TextRewriter {
    pub fn new(plan: MaskPlan) -> TextRewriter {
        TextRewriter {
            plan,
            out: BytesMut::with_capacity(256 * 1024),
            carry: Vec::new(),
            rows: 0,
            raw: Vec::new(),
            masked: BytesMut::new(),
            ended: false,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn row(&mut self, line: &[u8]) -> Result<(), MaskError> {
        let body = &line[..line.len() - 1];
        if self.ended || body == b"\\." {
            // The end-of-data marker (sent by old protocols) passes through.
            self.ended = true;
            self.out.put_slice(line);
            return Ok(());
        }
        self.rows += 1;
        // Fields are walked twice (counted, then rewritten) rather than collected: nothing is
        // allocated per row.
        let fields = || body.split(|&b| b == b'\t');
        let count = fields().count();
        if count != self.plan.columns.len() {
            return Err(MaskError {
                row: Some(self.rows),
                column: None,
                message: format!(
                    "row has {count} fields, but the table has {} columns",
                    self.plan.columns.len()
                ),
            });
        }
        let mut first = true;
        for (field, (name, action)) in fields().zip(self.plan.columns.iter_mut()) {
            if matches!(action, ColumnAction::Omit) {
                continue;
            }
            if !first {
                self.out.put_u8(b'\t');
            }
            first = false;
            match action {
                ColumnAction::Mask(strategy) if field != b"\\N" => {
                    unescape(field, &mut self.raw);
                    self.masked.clear();
                    match strategy.mask(&self.raw, &mut self.masked) {
                        Ok(Outcome::Value) => escape(&self.masked, &mut self.out),
                        Ok(Outcome::Null) => self.out.put_slice(b"\\N"),
                        Err(message) => {
                            return Err(MaskError {
                                row: Some(self.rows),
                                column: Some(name.clone()),
                                message,
                            })
                        }
                    }
                }
                _ => self.out.put_slice(field),
            }
        }
        self.out.put_u8(b'\n');
        Ok(())
    }
}

impl super::CopyRewriter for TextRewriter {
    fn output(&mut self) -> &mut BytesMut {
        &mut self.out
    }
    /// Rewrites the next piece of text COPY data (any split).
    fn feed(&mut self, mut data: &[u8]) -> Result<(), MaskError> {
        if !self.carry.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                None => {
                    self.carry.extend_from_slice(data);
                    return Ok(());
                }
                Some(end) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&data[..=end]);
                    self.row(&line)?;
                    line.clear();
                    self.carry = line;
                    data = &data[end + 1..];
                }
            }
        }
        while let Some(end) = data.iter().position(|&b| b == b'\n') {
            self.row(&data[..=end])?;
            data = &data[end + 1..];
        }
        self.carry.extend_from_slice(data);
        Ok(())
    }

    /// Checks that no partial row is left.
    fn finish(&self) -> Result<u64, MaskError> {
        if !self.carry.is_empty() {
            return Err(MaskError {
                row: Some(self.rows + 1),
                column: None,
                message: "text COPY data ends in the middle of a row".into(),
            });
        }
        Ok(self.rows)
    }
}

fn unescape(field: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < field.len() {
        if field[i] != b'\\' || i + 1 == field.len() {
            out.push(field[i]);
            i += 1;
            continue;
        }
        let c = field[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 {
                    match field.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            n += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

fn escape(value: &[u8], out: &mut BytesMut) {
    for &b in value {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            8 => out.put_slice(b"\\b"),
            12 => out.put_slice(b"\\f"),
            11 => out.put_slice(b"\\v"),
            _ => out.put_u8(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{build, ColumnSpec, CopyRewriter, MaskKey, StrategySpec};
    use crate::types::TypeKind;

    #[test]
    fn masks_text_fields_in_any_split() {
        let key = MaskKey::new(b"text rewriter test key").unwrap();
        let plan = || MaskPlan {
            columns: vec![
                ("id".into(), ColumnAction::Keep),
                (
                    "note".into(),
                    ColumnAction::Mask(
                        build(
                            &StrategySpec::Redact {
                                keep_first: 1,
                                keep_last: 0,
                                with: '*',
                            },
                            &ColumnSpec::new("note", TypeKind::Text),
                            Some(&key),
                        )
                        .unwrap(),
                    ),
                ),
                ("gone".into(), ColumnAction::Omit),
                ("code".into(), ColumnAction::Keep),
            ],
        };
        let data = b"1\tab\\tc\\\\d\tx\t978-3\n2\t\\N\ty\t\\N\n3\tline\\none\tz\t0\n";
        let mut whole = TextRewriter::new(plan());
        whole.feed(data).unwrap();
        assert_eq!(whole.finish().unwrap(), 3);
        assert_eq!(
            &whole.output()[..],
            b"1\ta*\\t*\\\\*\t978-3\n2\t\\N\t\\N\n3\tl***\\n***\t0\n"
        );
        for cut in 0..data.len() {
            let mut split = TextRewriter::new(plan());
            split.feed(&data[..cut]).unwrap();
            split.feed(&data[cut..]).unwrap();
            split.finish().unwrap();
            assert_eq!(split.output(), whole.output(), "cut {cut}");
        }
        let mut short = TextRewriter::new(plan());
        let err = short.feed(b"1\tonly two\n").unwrap_err();
        assert_eq!(err.row, Some(1));
        let mut partial = TextRewriter::new(plan());
        partial.feed(b"1\ta\tb").unwrap();
        assert!(partial.finish().is_err());
    }
}
