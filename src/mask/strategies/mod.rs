//! The masking strategies. `build` checks a strategy against its column (types, NOT NULL,
//! options) and returns a `Strategy` that rewrites one binary field value at a time into the
//! output buffer. Errors never contain a value. The strategies live by family: `basic` (keep,
//! null, fixed), `text`, `temporal`, `numeric` (noise) and `tokenize`.

mod basic;
mod numeric;
mod temporal;
mod text;
mod tokenize;

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::feistel::TextWork;
use super::key::MaskKey;
use super::spec::{ColumnSpec, StrategySpec};
use crate::types::TypeKind;
use basic::*;
use numeric::*;
use temporal::*;
use text::*;
use tokenize::*;

pub use text::{luhn_valid, set_luhn_check_digit};

/// What a strategy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Bytes were appended to the output.
    Value,
    /// The field is NULL; nothing was appended.
    Null,
}

/// Rewrites non-NULL values of one column. Owned by one rewriter, so it may keep caches. A
/// table's plan is built once and cloned for each of its units (chunks run in parallel).
pub trait Strategy: Send + Sync + StrategyClone {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String>;
}

/// Cloning a boxed strategy (with its caches as they are).
pub trait StrategyClone {
    fn clone_box(&self) -> Box<dyn Strategy>;
}

impl<T: Strategy + Clone + 'static> StrategyClone for T {
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Strategy> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

fn text_kind(kind: &TypeKind) -> bool {
    matches!(kind, TypeKind::Text)
}

/// Builds the strategy for a column. Errors explain what is wrong for the config's author.
pub fn build(
    spec: &StrategySpec,
    col: &ColumnSpec,
    key: Option<&MaskKey>,
) -> Result<Box<dyn Strategy>, String> {
    let name = spec.name();
    let need_key = || -> Result<&MaskKey, String> {
        key.ok_or_else(|| format!("strategy \"{name}\" is keyed: set the masking secret in PRIVACI_MASK_KEY (16 bytes or more)"))
    };
    let wrong_type = |accepts: &str| {
        format!(
            "strategy \"{name}\" does not apply to type {}; it takes {accepts}",
            col.kind.sql_name()
        )
    };
    let text_only = || {
        if text_kind(&col.kind) {
            Ok(())
        } else {
            Err(wrong_type("text types (text, varchar, char, citext)"))
        }
    };
    Ok(match spec {
        StrategySpec::Keep => Box::new(Keep),
        StrategySpec::Default => {
            return Err(
                "strategy \"default\" leaves the column out of the COPY; it has no per-value form"
                    .into(),
            )
        }
        StrategySpec::Null => {
            if col.not_null {
                return Err("strategy \"null\" on a NOT NULL column: every row would be rejected; use \"fixed\" or another strategy".into());
            }
            Box::new(NullOut)
        }
        StrategySpec::Fixed { value } => Box::new(Fixed {
            bytes: fixed_bytes(value, col)?,
        }),
        StrategySpec::Redact {
            keep_first,
            keep_last,
            with,
        } => {
            text_only()?;
            Box::new(Redact {
                keep_first: *keep_first,
                keep_last: *keep_last,
                with: *with,
                col: col.clone(),
                scratch: String::new(),
            })
        }
        StrategySpec::Hash { encoding, length } => {
            if !text_kind(&col.kind) && col.kind != TypeKind::Bytea {
                return Err(wrong_type("text types or bytea"));
            }
            Box::new(Hash {
                prf: need_key()?.prf("hash"),
                encoding: *encoding,
                length: *length,
                col: col.clone(),
                scratch: String::with_capacity(64),
            })
        }
        StrategySpec::Email { keep_domain } => {
            text_only()?;
            let k = need_key()?;
            Box::new(Email {
                local: k.prf("email/local"),
                domain: k.prf("email/domain"),
                keep_domain: *keep_domain,
                domains: HashMap::new(),
                col: col.clone(),
                scratch: String::new(),
                folded: String::new(),
                work: TextWork::default(),
                domain_work: TextWork::default(),
            })
        }
        StrategySpec::FirstName
        | StrategySpec::LastName
        | StrategySpec::FullName
        | StrategySpec::City
        | StrategySpec::StreetAddress
        | StrategySpec::Company => {
            text_only()?;
            Box::new(Pick {
                prf: need_key()?.prf(name),
                what: spec.clone(),
                col: col.clone(),
                scratch: String::new(),
            })
        }
        StrategySpec::Digits { luhn } => {
            text_only()?;
            Box::new(Digits {
                prf: need_key()?.prf("digits"),
                luhn: *luhn,
                col: col.clone(),
                scratch: String::new(),
            })
        }
        StrategySpec::DateShift { max_days } => {
            if !matches!(
                col.kind,
                TypeKind::Date | TypeKind::Timestamp | TypeKind::TimestampTz
            ) {
                return Err(wrong_type("date, timestamp or timestamptz"));
            }
            if *max_days == 0 {
                return Err("date_shift needs max_days of 1 or more".into());
            }
            Box::new(DateShift {
                prf: need_key()?.prf("date_shift"),
                max_days: *max_days,
                kind: col.kind.clone(),
            })
        }
        StrategySpec::Noise { ratio } => {
            if !matches!(
                col.kind,
                TypeKind::Int2
                    | TypeKind::Int4
                    | TypeKind::Int8
                    | TypeKind::Float4
                    | TypeKind::Float8
                    | TypeKind::Numeric
            ) {
                return Err(wrong_type(
                    "smallint, integer, bigint, real, double precision or numeric",
                ));
            }
            if !(*ratio > 0.0 && *ratio <= 10.0) {
                return Err("noise needs a ratio above 0 and at most 10".into());
            }
            Box::new(Noise {
                prf: need_key()?.prf("noise"),
                ratio: *ratio,
                col: col.clone(),
            })
        }
        StrategySpec::Tokenize => {
            if !matches!(
                col.kind,
                TypeKind::Int2 | TypeKind::Int4 | TypeKind::Int8 | TypeKind::Uuid | TypeKind::Text
            ) {
                return Err(wrong_type("smallint, integer, bigint, uuid or text types"));
            }
            Box::new(Tokenize {
                prf: need_key()?.prf("tokenize"),
                col: col.clone(),
                scratch: String::new(),
                folded: String::new(),
                work: TextWork::default(),
            })
        }
        StrategySpec::Json { paths } => {
            if !matches!(col.kind, TypeKind::Json | TypeKind::Jsonb) {
                return Err(wrong_type("json or jsonb"));
            }
            Box::new(super::json::JsonPaths::build(paths, col, key)?)
        }
    })
}

/// Cuts a text value to the column's limit and blank-pads it for char(n).
fn pad(s: &mut String, col: &ColumnSpec) {
    if let Some(max) = col.max_chars {
        if let Some((cut, _)) = s.char_indices().nth(max) {
            s.truncate(cut);
        }
        if col.blank_padded {
            let n = s.chars().count();
            s.extend(std::iter::repeat_n(' ', max.saturating_sub(n)));
        }
    }
}

/// The text of a field: UTF-8, with char(n) padding removed.
fn text_of<'a>(input: &'a [u8], col: &ColumnSpec) -> Result<&'a str, String> {
    let s = std::str::from_utf8(input).map_err(|_| "value is not UTF-8".to_string())?;
    Ok(if col.blank_padded {
        s.trim_end_matches(' ')
    } else {
        s
    })
}

fn put_text(mut s: String, col: &ColumnSpec, out: &mut BytesMut) -> String {
    pad(&mut s, col);
    out.put_slice(s.as_bytes());
    s.clear();
    s
}

/// The text itself, or (for a column compared without case) its lower-cased form, written
/// into `buf` (reused from row to row).
fn fold<'a>(text: &'a str, fold_case: bool, buf: &'a mut String) -> &'a str {
    if !fold_case {
        return text;
    }
    buf.clear();
    buf.extend(text.chars().flat_map(char::to_lowercase));
    buf
}

#[cfg(test)]
mod tests;
