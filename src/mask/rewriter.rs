//! The rewriter: applies a table's mask plan to binary COPY data. Kept fields are copied in
//! runs (one copy per run of consecutive kept fields, not per field), masked fields are
//! written by their strategy straight into the output with a back-patched length, and
//! `default` columns are dropped. Nothing is allocated per row.

use bytes::{BufMut, BytesMut};

use super::strategies::{Outcome, Strategy};
use crate::copy::{CopyError, Tuple, TupleSink, TupleWalker};

/// What happens to one source column.
#[derive(Clone)]
pub enum ColumnAction {
    Keep,
    /// Left out of the target COPY (the `default` strategy).
    Omit,
    Mask(Box<dyn Strategy>),
}

/// A table's plan: one action per column of the source COPY, in order, with the names for
/// error messages.
#[derive(Clone)]
pub struct MaskPlan {
    pub columns: Vec<(String, ColumnAction)>,
}

impl MaskPlan {
    /// True when every column is kept: the rows can be forwarded without walking them.
    pub fn is_passthrough(&self) -> bool {
        self.columns
            .iter()
            .all(|(_, a)| matches!(a, ColumnAction::Keep))
    }

    /// Names of the columns the target COPY receives.
    pub fn target_columns(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|(_, a)| !matches!(a, ColumnAction::Omit))
            .map(|(n, _)| n.as_str())
    }
}

/// A failure while masking: the row number and column, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskError {
    pub row: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for MaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, "row {r}, column \"{c}\": {}", self.message),
            (Some(r), None) => write!(f, "row {r}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for MaskError {}

impl From<CopyError> for MaskError {
    fn from(e: CopyError) -> Self {
        MaskError {
            row: e.row,
            column: None,
            message: e.message,
        }
    }
}

pub struct Rewriter {
    plan: MaskPlan,
    walker: TupleWalker,
    out: BytesMut,
    out_fields: u16,
}

impl Rewriter {
    pub fn new(plan: MaskPlan) -> Rewriter {
        let n = plan.columns.len() as u16;
        let out_fields = plan
            .columns
            .iter()
            .filter(|(_, a)| !matches!(a, ColumnAction::Omit))
            .count() as u16;
        Rewriter {
            plan,
            walker: TupleWalker::new(Some(n)),
            out: BytesMut::with_capacity(256 * 1024),
            out_fields,
        }
    }

    pub fn plan(&self) -> &MaskPlan {
        &self.plan
    }

    pub fn rows(&self) -> u64 {
        self.walker.rows()
    }
}

impl super::CopyRewriter for Rewriter {
    /// Rewrites the next piece of binary COPY data (any split); the result accumulates in
    /// `output()`.
    fn feed(&mut self, data: &[u8]) -> Result<(), MaskError> {
        let mut emit = Emit {
            plan: &mut self.plan,
            out: &mut self.out,
            out_fields: self.out_fields,
        };
        self.walker.feed(data, &mut emit)
    }

    /// The rewritten bytes so far; the caller sends and clears them.
    fn output(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Checks that the data ended with the trailer.
    fn finish(&self) -> Result<u64, MaskError> {
        self.walker.finish()?;
        Ok(self.walker.rows())
    }
}

struct Emit<'a> {
    plan: &'a mut MaskPlan,
    out: &'a mut BytesMut,
    out_fields: u16,
}

impl TupleSink for Emit<'_> {
    type Error = MaskError;

    fn header(&mut self, raw: &[u8]) -> Result<(), MaskError> {
        // The target gets a plain header: no OIDs, no extension.
        let _ = raw;
        crate::copy::write_header(self.out);
        Ok(())
    }

    #[inline]
    fn tuple(&mut self, t: Tuple<'_>) -> Result<(), MaskError> {
        let bytes = t.bytes;
        // The count, then runs of kept fields copied whole.
        self.out.put_u16(self.out_fields);
        let mut run_start = 2usize;
        for (i, (name, action)) in self.plan.columns.iter_mut().enumerate() {
            let f = t.fields[i];
            let field_start = f.start as usize - 4;
            let field_end = f.start as usize + f.len.max(0) as usize;
            match action {
                ColumnAction::Keep => {}
                ColumnAction::Omit => {
                    self.out.put_slice(&bytes[run_start..field_start]);
                    run_start = field_end;
                }
                ColumnAction::Mask(strategy) => {
                    if f.len < 0 {
                        // NULL stays NULL: there is nothing to mask.
                        continue;
                    }
                    self.out.put_slice(&bytes[run_start..field_start]);
                    let len_at = self.out.len();
                    self.out.put_i32(0);
                    match strategy.mask(&bytes[f.start as usize..field_end], self.out) {
                        Ok(Outcome::Value) => {
                            let len = (self.out.len() - len_at - 4) as i32;
                            self.out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
                        }
                        Ok(Outcome::Null) => {
                            self.out.truncate(len_at);
                            self.out.put_i32(-1);
                        }
                        Err(message) => {
                            return Err(MaskError {
                                row: Some(t.row),
                                column: Some(name.clone()),
                                message,
                            });
                        }
                    }
                    run_start = field_end;
                }
            }
        }
        self.out.put_slice(&bytes[run_start..]);
        Ok(())
    }

    fn trailer(&mut self, _: &[u8]) -> Result<(), MaskError> {
        crate::copy::write_trailer(self.out);
        Ok(())
    }
}
