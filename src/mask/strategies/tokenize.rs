//! Tokenize: keyed bijections of integers, uuids and text, so keys stay unique and join.

use bytes::{BufMut, BytesMut};

use super::{fold, put_text, text_of, Outcome, Strategy};
use crate::mask::feistel::{permute_bits, permute_signed, permute_text, TextWork};
use crate::mask::key::Prf;
use crate::mask::spec::ColumnSpec;
use crate::types::TypeKind;

#[derive(Clone)]
pub(super) struct Tokenize {
    pub(super) prf: Prf,
    pub(super) col: ColumnSpec,
    pub(super) scratch: String,
    pub(super) folded: String,
    pub(super) work: TextWork,
}

impl Strategy for Tokenize {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let size = |n: usize| format!("{} value is not {n} bytes", self.col.kind.sql_name());
        match self.col.kind {
            TypeKind::Int2 => {
                let v = i16::from_be_bytes(input.try_into().map_err(|_| size(2))?);
                out.put_i16(permute_signed(&self.prf, v as i64, 16) as i16);
            }
            TypeKind::Int4 => {
                let v = i32::from_be_bytes(input.try_into().map_err(|_| size(4))?);
                out.put_i32(permute_signed(&self.prf, v as i64, 32) as i32);
            }
            TypeKind::Int8 => {
                let v = i64::from_be_bytes(input.try_into().map_err(|_| size(8))?);
                out.put_i64(permute_signed(&self.prf, v, 64));
            }
            TypeKind::Uuid => {
                let v = u128::from_be_bytes(input.try_into().map_err(|_| size(16))?);
                out.put_u128(permute_bits(&self.prf, v, 128));
            }
            _ => {
                let text = fold(
                    text_of(input, &self.col)?,
                    self.col.fold_case,
                    &mut self.folded,
                );
                let mut s = std::mem::take(&mut self.scratch);
                permute_text(&self.prf, text, &mut s, &mut self.work);
                self.scratch = put_text(s, &self.col, out);
            }
        }
        Ok(Outcome::Value)
    }
}
