//! Dates and timestamps moved by a keyed number of days, inside the server's range.

use bytes::{BufMut, BytesMut};

use super::{Outcome, Strategy};
use crate::mask::key::Prf;
use crate::types::datetime::{DATE_MAX, DATE_MIN, TIMESTAMP_MAX, TIMESTAMP_MIN};
use crate::types::{Date, Timestamp, TypeKind};

#[derive(Clone)]
pub(super) struct DateShift {
    pub(super) prf: Prf,
    pub(super) max_days: u32,
    pub(super) kind: TypeKind,
}

impl DateShift {
    /// 1..=max_days days, either way, from the value's own bytes.
    fn offset_days(&self, input: &[u8]) -> i64 {
        let h = self.prf.eval_block(&[input]);
        let x = u64::from_be_bytes(h[..8].try_into().unwrap_or_default());
        let days = 1 + (x % self.max_days as u64) as i64;
        if h[8] & 1 == 0 {
            days
        } else {
            -days
        }
    }
}

impl Strategy for DateShift {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        match self.kind {
            TypeKind::Date => {
                let d = Date(i32::from_be_bytes(
                    input
                        .try_into()
                        .map_err(|_| "date value is not 4 bytes".to_string())?,
                ));
                let shifted = if d.is_finite() {
                    // Keep inside the range the server accepts; near an edge, move the other
                    // way (max_days is far smaller than the range).
                    keep_in_range(d.0 as i64, self.offset_days(input), DATE_MIN, DATE_MAX) as i32
                } else {
                    d.0
                };
                out.put_i32(shifted);
            }
            _ => {
                let t = Timestamp(i64::from_be_bytes(
                    input
                        .try_into()
                        .map_err(|_| "timestamp value is not 8 bytes".to_string())?,
                ));
                let shifted = if t.is_finite() {
                    let off = self.offset_days(input) * crate::types::datetime::USECS_PER_DAY;
                    keep_in_range(t.0, off, TIMESTAMP_MIN, TIMESTAMP_MAX)
                } else {
                    t.0
                };
                out.put_i64(shifted);
            }
        }
        Ok(Outcome::Value)
    }
}

/// `value + offset` when it stays within `min..=max`, else `value - offset` (clamped: a value
/// already outside the range, which the server would not have sent, stays put).
pub(super) fn keep_in_range(value: i64, offset: i64, min: i64, max: i64) -> i64 {
    let inside = |v: Option<i64>| v.filter(|v| (min..=max).contains(v));
    inside(value.checked_add(offset))
        .or(inside(value.checked_sub(offset)))
        .unwrap_or(value)
}
