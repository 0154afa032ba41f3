//! The masking strategies. `build` checks a strategy against its column (types, NOT NULL,
//! options) and returns a `Strategy` that rewrites one binary field value at a time into the
//! output buffer. Errors never contain a value.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{BufMut, BytesMut};

use super::feistel::{permute_bits, permute_signed, permute_text, TextWork};
use super::key::{MaskKey, Prf};
use super::lists;
use super::spec::{ColumnSpec, HashEncoding, StrategySpec};
use crate::types::datetime::{DATE_MAX, DATE_MIN, TIMESTAMP_MAX, TIMESTAMP_MIN};
use crate::types::{decode, numeric::Numeric, Date, Timestamp, TypeKind, Value};

/// What a strategy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Bytes were appended to the output.
    Value,
    /// The field is NULL; nothing was appended.
    Null,
}

/// Rewrites non-NULL values of one column. Owned by one rewriter, so it may keep caches.
pub trait Strategy: Send {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String>;
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
            "strategy \"{name}\" does not apply to type {:?}; it takes {accepts}",
            col.kind
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

struct Keep;

impl Strategy for Keep {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        out.put_slice(input);
        Ok(Outcome::Value)
    }
}

struct NullOut;

impl Strategy for NullOut {
    fn mask(&mut self, _: &[u8], _: &mut BytesMut) -> Result<Outcome, String> {
        Ok(Outcome::Null)
    }
}

struct Fixed {
    bytes: Vec<u8>,
}

impl Strategy for Fixed {
    fn mask(&mut self, _: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        out.put_slice(&self.bytes);
        Ok(Outcome::Value)
    }
}

/// The binary form of a `fixed` value for the column's type, checked against its limits.
fn fixed_bytes(text: &str, col: &ColumnSpec) -> Result<Vec<u8>, String> {
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
                "strategy \"fixed\" is not available for {other:?}; use \"null\" or \"default\""
            ))
        }
    };
    let mut out = BytesMut::new();
    value.encode(&mut out);
    Ok(out.to_vec())
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

struct Redact {
    keep_first: usize,
    keep_last: usize,
    with: char,
    col: ColumnSpec,
    scratch: String,
}

impl Strategy for Redact {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let text = text_of(input, &self.col)?;
        let n = text.chars().count();
        // A value no longer than what would be kept is redacted whole: keeping it would show all.
        let (first, last) = if self.keep_first + self.keep_last >= n {
            (0, 0)
        } else {
            (self.keep_first, self.keep_last)
        };
        let mut s = std::mem::take(&mut self.scratch);
        for (i, c) in text.chars().enumerate() {
            s.push(if i < first || i >= n - last || !c.is_alphanumeric() {
                c
            } else {
                self.with
            });
        }
        self.scratch = put_text(s, &self.col, out);
        Ok(Outcome::Value)
    }
}

struct Hash {
    prf: Prf,
    encoding: HashEncoding,
    length: Option<usize>,
    col: ColumnSpec,
}

impl Strategy for Hash {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let h = self.prf.eval(&[input]);
        if self.col.kind == TypeKind::Bytea {
            let n = self.length.unwrap_or(32).min(32);
            out.put_slice(&h[..n]);
            return Ok(Outcome::Value);
        }
        let mut s = match self.encoding {
            HashEncoding::Hex => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(64);
                for b in h {
                    s.push(HEX[(b >> 4) as usize] as char);
                    s.push(HEX[(b & 15) as usize] as char);
                }
                s
            }
            HashEncoding::Base64 => B64.encode(h),
        };
        if let Some(n) = self.length {
            s.truncate(n);
        }
        put_text(s, &self.col, out);
        Ok(Outcome::Value)
    }
}

struct Email {
    local: Prf,
    domain: Prf,
    keep_domain: bool,
    /// Domains repeat across rows: their masked form is remembered (bounded).
    domains: HashMap<String, String>,
    col: ColumnSpec,
    scratch: String,
    folded: String,
    /// One per PRF: each keeps its own shuffles of small domains.
    work: TextWork,
    domain_work: TextWork,
}

const DOMAIN_CACHE: usize = 4096;

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

impl Strategy for Email {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let text = fold(
            text_of(input, &self.col)?,
            self.col.fold_case,
            &mut self.folded,
        );
        let mut s = std::mem::take(&mut self.scratch);
        match text.rfind('@') {
            None => permute_text(&self.local, text, &mut s, &mut self.work),
            Some(at) => {
                permute_text(&self.local, &text[..at], &mut s, &mut self.work);
                s.push('@');
                let domain = &text[at + 1..];
                if self.keep_domain {
                    s.push_str(domain);
                } else if let Some(masked) = self.domains.get(domain) {
                    s.push_str(masked);
                } else {
                    // The last label (the top-level domain) stays; the rest is permuted.
                    let (body, tld) = match domain.rfind('.') {
                        Some(dot) => (&domain[..dot], &domain[dot..]),
                        None => (domain, ""),
                    };
                    let mut masked = String::with_capacity(domain.len());
                    permute_text(&self.domain, body, &mut masked, &mut self.domain_work);
                    masked.push_str(tld);
                    s.push_str(&masked);
                    if self.domains.len() < DOMAIN_CACHE {
                        self.domains.insert(domain.to_string(), masked);
                    }
                }
            }
        }
        self.scratch = put_text(s, &self.col, out);
        Ok(Outcome::Value)
    }
}

struct Pick {
    prf: Prf,
    what: StrategySpec,
    col: ColumnSpec,
    scratch: String,
}

impl Strategy for Pick {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let text = text_of(input, &self.col)?;
        let h = self.prf.eval(&[text.as_bytes()]);
        let at = |i: usize, list: &[&'static str]| -> &'static str {
            let x = u64::from_be_bytes(h[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            list[(x % list.len() as u64) as usize]
        };
        let mut s = std::mem::take(&mut self.scratch);
        match self.what {
            StrategySpec::FirstName => s.push_str(at(0, lists::FIRST_NAMES)),
            StrategySpec::LastName => s.push_str(at(0, lists::LAST_NAMES)),
            StrategySpec::FullName => {
                s.push_str(at(0, lists::FIRST_NAMES));
                s.push(' ');
                s.push_str(at(1, lists::LAST_NAMES));
            }
            StrategySpec::City => s.push_str(at(0, lists::CITIES)),
            StrategySpec::StreetAddress => {
                let number = 1 + u16::from_be_bytes([h[30], h[31]]) % 2999;
                s.push_str(&number.to_string());
                s.push(' ');
                s.push_str(at(0, lists::STREETS));
                s.push(' ');
                s.push_str(at(1, lists::STREET_SUFFIXES));
            }
            _ => {
                s.push_str(at(0, lists::COMPANY_WORDS));
                s.push(' ');
                s.push_str(at(1, lists::COMPANY_KINDS));
                s.push(' ');
                s.push_str(at(2, lists::COMPANY_FORMS));
            }
        }
        self.scratch = put_text(s, &self.col, out);
        Ok(Outcome::Value)
    }
}

struct Digits {
    prf: Prf,
    luhn: bool,
    col: ColumnSpec,
    scratch: String,
}

impl Strategy for Digits {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let text = text_of(input, &self.col)?;
        let mut block = self.prf.eval(&[text.as_bytes()]);
        let mut s = std::mem::take(&mut self.scratch);
        let mut used = 0;
        let mut counter = 0u32;
        for c in text.chars() {
            if c.is_ascii_digit() {
                if used == block.len() {
                    counter += 1;
                    block = self.prf.eval(&[text.as_bytes(), &counter.to_be_bytes()]);
                    used = 0;
                }
                s.push((b'0' + block[used] % 10) as char);
                used += 1;
            } else {
                s.push(c);
            }
        }
        if self.luhn {
            set_luhn_check_digit(&mut s);
        }
        self.scratch = put_text(s, &self.col, out);
        Ok(Outcome::Value)
    }
}

/// Replaces the last digit of `s` with the Luhn check digit of the digits before it.
pub fn set_luhn_check_digit(s: &mut String) {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 2 {
        return;
    }
    let payload = &digits[..digits.len() - 1];
    let mut sum = 0;
    for (i, d) in payload.iter().rev().enumerate() {
        let mut v = *d;
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    let check = (10 - sum % 10) % 10;
    if let Some(pos) = s.rfind(|c: char| c.is_ascii_digit()) {
        s.replace_range(pos..pos + 1, &check.to_string());
    }
}

/// Luhn validity of all digits in `s`.
pub fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                *d
            }
        })
        .sum();
    digits.len() >= 2 && sum % 10 == 0
}

struct DateShift {
    prf: Prf,
    max_days: u32,
    kind: TypeKind,
}

impl DateShift {
    /// 1..=max_days days, either way, from the value's own bytes.
    fn offset_days(&self, input: &[u8]) -> i64 {
        let h = self.prf.eval(&[input]);
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
fn keep_in_range(value: i64, offset: i64, min: i64, max: i64) -> i64 {
    let inside = |v: Option<i64>| v.filter(|v| (min..=max).contains(v));
    inside(value.checked_add(offset))
        .or(inside(value.checked_sub(offset)))
        .unwrap_or(value)
}

struct Noise {
    prf: Prf,
    ratio: f64,
    col: ColumnSpec,
}

impl Noise {
    /// A factor in [-ratio, ratio] from the value's own bytes.
    fn delta(&self, input: &[u8]) -> f64 {
        let h = self.prf.eval(&[input]);
        let x = u64::from_be_bytes(h[..8].try_into().unwrap_or_default()) >> 11;
        let unit = x as f64 / (1u64 << 53) as f64;
        (unit * 2.0 - 1.0) * self.ratio
    }
}

impl Strategy for Noise {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let r = self.delta(input);
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

/// Scales a finite numeric by (1 + r), keeping its display scale and the column's precision.
fn noise_numeric(n: &Numeric, r: f64, limit: Option<(u32, u32)>) -> Numeric {
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

/// Rounds (half away from zero) or pads a numeric to `scale` fraction digits, exactly on its
/// decimal digits; `None` if it then needs more than `precision` digits.
fn fit_numeric_scale(n: &Numeric, precision: u32, scale: u32) -> Option<Numeric> {
    let text = n.to_string();
    let (negative, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.as_str()),
    };
    let (int_part, frac) = body.split_once('.').unwrap_or((body, ""));
    let scale = scale as usize;
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
        .map(|b| b - b'0')
        .collect();
    if frac.len() > scale && frac.as_bytes()[scale] >= b'5' {
        // Carry the rounding up through the kept digits.
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - scale;
    let int_digits: String = digits[..split].iter().map(|d| (b'0' + d) as char).collect();
    let int_digits = int_digits.trim_start_matches('0');
    if int_digits.len() + scale > precision as usize {
        return None;
    }
    let frac_digits: String = digits[split..].iter().map(|d| (b'0' + d) as char).collect();
    let s = format!(
        "{}{}{}{}",
        if negative { "-" } else { "" },
        if int_digits.is_empty() {
            "0"
        } else {
            int_digits
        },
        if scale > 0 { "." } else { "" },
        frac_digits
    );
    Numeric::from_decimal_str(&s)
}

struct Tokenize {
    prf: Prf,
    col: ColumnSpec,
    scratch: String,
    folded: String,
    work: TextWork,
}

impl Strategy for Tokenize {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let size = |n: usize| format!("{:?} value is not {n} bytes", self.col.kind);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MaskKey {
        MaskKey::new(b"unit test masking key 0001").unwrap()
    }

    fn text_col(max: Option<usize>, padded: bool) -> ColumnSpec {
        ColumnSpec {
            max_chars: max,
            blank_padded: padded,
            ..ColumnSpec::new("c", TypeKind::Text)
        }
    }

    fn run(spec: &StrategySpec, col: &ColumnSpec, input: &[u8]) -> Vec<u8> {
        let mut s = build(spec, col, Some(&key())).unwrap();
        let mut out = BytesMut::new();
        assert_eq!(s.mask(input, &mut out).unwrap(), Outcome::Value);
        out.to_vec()
    }

    fn run_text(spec: &StrategySpec, col: &ColumnSpec, input: &str) -> String {
        String::from_utf8(run(spec, col, input.as_bytes())).unwrap()
    }

    #[test]
    fn redact_keeps_what_it_says() {
        let spec = StrategySpec::Redact {
            keep_first: 0,
            keep_last: 4,
            with: '*',
        };
        assert_eq!(
            run_text(&spec, &text_col(Some(11), true), "123-45-6789"),
            "***-**-6789"
        );
        assert_eq!(
            run_text(&spec, &text_col(None, false), "1234"),
            "****",
            "short values are redacted whole"
        );
        let spec = StrategySpec::Redact {
            keep_first: 1,
            keep_last: 0,
            with: 'x',
        };
        assert_eq!(
            run_text(&spec, &text_col(None, false), "Zoë Ōta"),
            "Zxx xxx"
        );
    }

    #[test]
    fn email_is_a_deterministic_bijection_that_fits() {
        let spec = StrategySpec::Email { keep_domain: false };
        let col = text_col(Some(40), false);
        let a = run_text(&spec, &col, "alice.smith@example.com");
        assert_eq!(a, run_text(&spec, &col, "alice.smith@example.com"));
        assert_eq!(a.len(), "alice.smith@example.com".len());
        assert!(
            a.ends_with(".com")
                && a.contains('@')
                && !a.contains("alice")
                && !a.contains("example"),
            "{a}"
        );
        let kept = run_text(
            &StrategySpec::Email { keep_domain: true },
            &col,
            "alice.smith@example.com",
        );
        assert!(kept.ends_with("@example.com"));
        // Unique for unique inputs.
        let mut seen = std::collections::HashSet::new();
        let mut s = build(&spec, &col, Some(&key())).unwrap();
        for i in 0..20000 {
            let mut out = BytesMut::new();
            s.mask(
                format!("user{i}@example{}.com", i % 97).as_bytes(),
                &mut out,
            )
            .unwrap();
            assert!(seen.insert(out.to_vec()), "collision at {i}");
        }
    }

    #[test]
    fn names_fit_the_column() {
        let col = text_col(Some(5), false);
        let out = run_text(&StrategySpec::FullName, &col, "Ana Silva");
        assert!(out.chars().count() <= 5, "{out}");
        let col = text_col(Some(30), true);
        let out = run_text(&StrategySpec::FullName, &col, "Ana Silva");
        assert_eq!(out.chars().count(), 30, "char(n) is padded");
        let city = run_text(&StrategySpec::City, &text_col(None, false), "Springfield");
        assert!(lists::CITIES.contains(&city.as_str()));
    }

    #[test]
    fn digits_and_luhn() {
        let out = run_text(
            &StrategySpec::Digits { luhn: false },
            &text_col(None, false),
            "+1-555-0123456",
        );
        assert_eq!(out.len(), 14);
        assert!(out.starts_with('+') && out.chars().nth(2) == Some('-'));
        let card = run_text(
            &StrategySpec::Digits { luhn: true },
            &text_col(None, false),
            "4111 1111 1111 1111",
        );
        assert!(luhn_valid(&card), "{card}");
        assert_ne!(card, "4111 1111 1111 1111");
    }

    #[test]
    fn shifted_dates_stay_in_the_servers_range() {
        for (value, offset) in [
            (DATE_MAX, 30),
            (DATE_MAX - 3, 30),
            (DATE_MIN, -30),
            (DATE_MIN + 2, -30),
        ] {
            let v = keep_in_range(value, offset, DATE_MIN, DATE_MAX);
            assert!(
                (DATE_MIN..=DATE_MAX).contains(&v),
                "{value} {offset} -> {v}"
            );
            assert_eq!((v - value).abs(), 30);
        }
        let day = crate::types::datetime::USECS_PER_DAY;
        for value in [TIMESTAMP_MAX, TIMESTAMP_MIN, TIMESTAMP_MAX - day] {
            for offset in [5 * day, -5 * day] {
                let v = keep_in_range(value, offset, TIMESTAMP_MIN, TIMESTAMP_MAX);
                assert!((TIMESTAMP_MIN..=TIMESTAMP_MAX).contains(&v));
                assert_eq!((v - value).abs(), 5 * day);
            }
        }
    }

    #[test]
    fn date_shift_moves_within_bounds() {
        let col = ColumnSpec::new("d", TypeKind::Date);
        let spec = StrategySpec::DateShift { max_days: 30 };
        for days in [0i32, 10000, -700000] {
            let out = run(&spec, &col, &days.to_be_bytes());
            let shifted = i32::from_be_bytes(out[..].try_into().unwrap());
            let diff = (shifted - days).abs();
            assert!((1..=30).contains(&diff), "{diff}");
        }
        assert_eq!(
            run(&spec, &col, &i32::MAX.to_be_bytes()),
            i32::MAX.to_be_bytes(),
            "infinity stays"
        );
    }

    #[test]
    fn noise_stays_in_range_and_scale() {
        let spec = StrategySpec::Noise { ratio: 0.1 };
        let col = ColumnSpec {
            numeric: Some((6, 2)),
            ..ColumnSpec::new("n", TypeKind::Numeric)
        };
        let mut input = BytesMut::new();
        Value::Numeric(Numeric::from_decimal_str("9999.99").unwrap()).encode(&mut input);
        let out = run(&spec, &col, &input);
        let Value::Numeric(n) = decode(&TypeKind::Numeric, &out).unwrap() else {
            panic!()
        };
        let v: f64 = n.to_string().parse().unwrap();
        assert_eq!(n.dscale, 2);
        assert!((8999.99..=9999.99).contains(&v), "{n}");
        let col = ColumnSpec::new("i", TypeKind::Int2);
        let out = run(&spec, &col, &i16::MAX.to_be_bytes());
        assert!(i16::from_be_bytes(out[..].try_into().unwrap()) >= (i16::MAX as f64 * 0.9) as i16);
    }

    #[test]
    fn fixed_numeric_is_rounded_exactly() {
        let col = ColumnSpec::from_type_name("n", "numeric(20,2)", false).unwrap();
        let out = run(
            &StrategySpec::Fixed {
                value: "123456789012345678.125".into(),
            },
            &col,
            b"",
        );
        assert_eq!(
            decode(&TypeKind::Numeric, &out).unwrap().to_string(),
            "123456789012345678.13"
        );
        let out = run(
            &StrategySpec::Fixed {
                value: "-9.995".into(),
            },
            &col,
            b"",
        );
        assert_eq!(
            decode(&TypeKind::Numeric, &out).unwrap().to_string(),
            "-10.00"
        );
        let out = run(&StrategySpec::Fixed { value: "7".into() }, &col, b"");
        assert_eq!(
            decode(&TypeKind::Numeric, &out).unwrap().to_string(),
            "7.00"
        );
        let small = ColumnSpec::from_type_name("n", "numeric(4,2)", false).unwrap();
        assert!(build(
            &StrategySpec::Fixed {
                value: "99.995".into()
            },
            &small,
            None
        )
        .err()
        .unwrap()
        .contains("does not fit numeric(4,2)"));
    }

    #[test]
    fn config_errors_explain() {
        let not_null = ColumnSpec {
            not_null: true,
            ..text_col(None, false)
        };
        assert!(build(&StrategySpec::Null, &not_null, None)
            .err()
            .unwrap()
            .contains("NOT NULL"));
        assert!(build(&StrategySpec::FullName, &text_col(None, false), None)
            .err()
            .unwrap()
            .contains("PRIVACI_MASK_KEY"));
        assert!(build(
            &StrategySpec::DateShift { max_days: 3 },
            &text_col(None, false),
            Some(&key())
        )
        .err()
        .unwrap()
        .contains("takes date"));
        assert!(build(
            &StrategySpec::Fixed {
                value: "toolong".into()
            },
            &text_col(Some(3), false),
            None
        )
        .err()
        .unwrap()
        .contains("allows 3"));
        assert!(build(
            &StrategySpec::Fixed { value: "x".into() },
            &ColumnSpec::new("i", TypeKind::Int4),
            None
        )
        .err()
        .unwrap()
        .contains("integer"));
    }
}
