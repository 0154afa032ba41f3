//! Strategies that need no key: keep, null, and fixed values in the column's binary form.

use bytes::{BufMut, BytesMut};

use super::{pad, Outcome, Strategy};
use crate::mask::spec::ColumnSpec;
use crate::types::numeric::{fit_numeric_scale, Numeric};
use crate::types::{Date, TypeKind, Value};

#[derive(Clone)]
pub(super) struct Keep;

impl Strategy for Keep {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        out.put_slice(input);
        Ok(Outcome::Value)
    }
}

#[derive(Clone)]
pub(super) struct NullOut;

impl Strategy for NullOut {
    fn mask(&mut self, _: &[u8], _: &mut BytesMut) -> Result<Outcome, String> {
        Ok(Outcome::Null)
    }
}

#[derive(Clone)]
pub(super) struct Fixed {
    pub(super) bytes: Vec<u8>,
}

impl Strategy for Fixed {
    fn mask(&mut self, _: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        out.put_slice(&self.bytes);
        Ok(Outcome::Value)
    }
}

/// The binary form of a `fixed` value for the column's type, checked against its limits.
pub(super) fn fixed_bytes(text: &str, col: &ColumnSpec) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("fixed value is not a valid {what}");
    let value = match &col.kind {
        TypeKind::Text => {
            let n = text.chars().count();
            if let Some(max) = col.max_chars {
                if n > max {
                    return Err(format!(
                        "fixed value has {n} characters; the column allows {max}"
                    ));
                }
            }
            let mut s = text.to_string();
            pad(&mut s, col);
            Value::Text(s)
        }
        TypeKind::Int2 => Value::Int2(text.trim().parse().map_err(|_| bad("smallint"))?),
        TypeKind::Int4 => Value::Int4(text.trim().parse().map_err(|_| bad("integer"))?),
        TypeKind::Int8 => Value::Int8(text.trim().parse().map_err(|_| bad("bigint"))?),
        TypeKind::Float4 => Value::Float4(text.trim().parse().map_err(|_| bad("real"))?),
        TypeKind::Float8 => {
            Value::Float8(text.trim().parse().map_err(|_| bad("double precision"))?)
        }
        TypeKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err(bad("boolean")),
        },
        TypeKind::Numeric => {
            let n = Numeric::from_decimal_str(text.trim())
                .ok_or_else(|| bad("plain decimal number"))?;
            let n = match col.numeric {
                Some((p, s)) => fit_numeric_scale(&n, p, s)
                    .ok_or_else(|| format!("fixed value does not fit numeric({p},{s})"))?,
                None => n,
            };
            Value::Numeric(n)
        }
        TypeKind::Uuid => {
            let hex: String = text.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 {
                return Err(bad("uuid"));
            }
            let mut u = [0u8; 16];
            for (i, b) in u.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad("uuid"))?;
            }
            Value::Uuid(u)
        }
        TypeKind::Date => {
            let parts: Vec<&str> = text.trim().split('-').collect();
            let nums: Option<Vec<i64>> = parts.iter().map(|p| p.parse().ok()).collect();
            match nums.as_deref() {
                Some([y, m, d]) if (1..=12).contains(m) && (1..=31).contains(d) => {
                    Value::Date(Date::from_ymd(*y, *m as u32, *d as u32))
                }
                _ => return Err(bad("date (YYYY-MM-DD)")),
            }
        }
        TypeKind::Json => Value::Json(text.to_string()),
        TypeKind::Jsonb => Value::Jsonb(text.to_string()),
        other => {
            return Err(format!(
                "strategy \"fixed\" is not available for {}; use \"null\" or \"default\"",
                other.sql_name()
            ))
        }
    };
    let mut out = BytesMut::new();
    value.encode(&mut out);
    Ok(out.to_vec())
}
