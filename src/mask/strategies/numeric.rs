//! Keyed noise on numbers, inside the type's range, precision and scale.

use bytes::BytesMut;

use super::{Outcome, Strategy};
use crate::mask::key::Prf;
use crate::mask::spec::ColumnSpec;
use crate::types::numeric::Numeric;
use crate::types::{decode, Value};

#[derive(Clone)]
pub(super) struct Noise {
    pub(super) prf: Prf,
    pub(super) ratio: f64,
    pub(super) col: ColumnSpec,
}

impl Noise {
    /// A factor in [-ratio, ratio] from the value's own bytes.
    fn delta(&self, input: &[u8]) -> f64 {
        let h = self.prf.eval_block(&[input]);
        let x = u64::from_be_bytes(h[..8].try_into().unwrap_or_default()) >> 11;
        let unit = x as f64 / (1u64 << 53) as f64;
        (unit * 2.0 - 1.0) * self.ratio
    }
}

impl Strategy for Noise {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let r = self.delta(input);
        if matches!(self.col.kind, crate::types::TypeKind::Numeric) {
            if let Some((v, scale)) = crate::types::numeric::wire_to_scaled(input) {
                put_scaled_noise(out, v, scale, r, self.col.numeric);
                return Ok(Outcome::Value);
            }
        }
        let value = decode(&self.col.kind, input).map_err(|e| e.to_string())?;
        let clamp = |v: f64, lo: f64, hi: f64| v.round().clamp(lo, hi);
        let masked = match value {
            Value::Int2(v) => {
                Value::Int2(clamp(v as f64 * (1.0 + r), i16::MIN as f64, i16::MAX as f64) as i16)
            }
            Value::Int4(v) => {
                Value::Int4(clamp(v as f64 * (1.0 + r), i32::MIN as f64, i32::MAX as f64) as i32)
            }
            Value::Int8(v) => {
                let delta = (v as f64 * r).round();
                Value::Int8(v.saturating_add(delta.clamp(i64::MIN as f64, i64::MAX as f64) as i64))
            }
            Value::Float4(v) => Value::Float4(if v.is_finite() {
                ((v as f64) * (1.0 + r)) as f32
            } else {
                v
            }),
            Value::Float8(v) => Value::Float8(if v.is_finite() { v * (1.0 + r) } else { v }),
            Value::Numeric(n) => Value::Numeric(noise_numeric(&n, r, self.col.numeric)),
            _ => return Err("noise got a value of an unexpected type".into()),
        };
        masked.encode(out);
        Ok(Outcome::Value)
    }
}

/// `v` (in `10^-scale` units) moved by the factor `r` and kept within the column's precision,
/// written in place without allocating.
fn put_scaled_noise(out: &mut BytesMut, v: i128, scale: u16, r: f64, limit: Option<(u32, u32)>) {
    let mut m = v.saturating_add((v as f64 * r).round() as i128);
    if let Some((p, _)) = limit {
        let max = 10i128.checked_pow(p).map_or(i128::MAX, |m| m - 1);
        m = m.clamp(-max, max);
    }
    crate::types::numeric::put_scaled(out, m, scale);
}

/// Scales a finite numeric by (1 + r), keeping its display scale and the column's precision.
pub(super) fn noise_numeric(n: &Numeric, r: f64, limit: Option<(u32, u32)>) -> Numeric {
    if !n.is_finite() {
        return n.clone();
    }
    let text = n.to_string();
    let (negative, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.as_str()),
    };
    let digits: String = body.chars().filter(|c| *c != '.').collect();
    let Ok(scaled) = digits.parse::<i128>() else {
        // Beyond 38 digits: fall back on f64 arithmetic for the change.
        let v: f64 = text.parse().unwrap_or(0.0);
        let s = format!("{:.*}", n.dscale as usize, v * (1.0 + r));
        return Numeric::from_decimal_str(&s).unwrap_or_else(|| n.clone());
    };
    let scaled = if negative { -scaled } else { scaled };
    let delta = (scaled as f64 * r).round() as i128;
    let mut v = scaled.saturating_add(delta);
    if let Some((p, _)) = limit {
        let max = 10i128.checked_pow(p).map_or(i128::MAX, |m| m - 1);
        v = v.clamp(-max, max);
    }
    let abs = v.unsigned_abs().to_string();
    let scale = n.dscale as usize;
    let padded = format!("{abs:0>width$}", width = scale + 1);
    let (int_part, frac) = padded.split_at(padded.len() - scale);
    let s = format!(
        "{}{}{}{}",
        if v < 0 { "-" } else { "" },
        int_part,
        if scale > 0 { "." } else { "" },
        frac
    );
    Numeric::from_decimal_str(&s).unwrap_or_else(|| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place path writes exactly what the decimal-string path computes.
    #[test]
    fn in_place_noise_matches_the_decimal_path() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..20_000 {
            let scale = (next() % 12) as usize;
            let digits = 1 + (next() % 25) as usize;
            let mut text: String = (0..digits)
                .map(|_| (b'0' + (next() % 10) as u8) as char)
                .collect();
            if scale > 0 {
                let frac: String = (0..scale)
                    .map(|_| (b'0' + (next() % 10) as u8) as char)
                    .collect();
                text = format!("{text}.{frac}");
            }
            if i % 2 == 1 {
                text.insert(0, '-');
            }
            let n = Numeric::from_decimal_str(&text).unwrap();
            let r = ((next() % 2001) as f64 - 1000.0) / 10_000.0;
            let limit = if i % 3 == 0 {
                Some((digits as u32 + scale as u32, scale as u32))
            } else {
                None
            };
            let mut wire = BytesMut::new();
            Value::Numeric(n.clone()).encode(&mut wire);
            let (v, s) = crate::types::numeric::wire_to_scaled(&wire).unwrap();
            let mut fast = BytesMut::new();
            put_scaled_noise(&mut fast, v, s, r, limit);
            let mut slow = BytesMut::new();
            Value::Numeric(noise_numeric(&n, r, limit)).encode(&mut slow);
            assert_eq!(fast, slow, "{text} r={r}");
        }
    }
}
