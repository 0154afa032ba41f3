//! Text strategies: redact, hash, email, names and places from the lists, digits.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{BufMut, BytesMut};

use super::{fold, put_text, text_of, Outcome, Strategy};
use crate::mask::feistel::{permute_text, TextWork};
use crate::mask::key::Prf;
use crate::mask::lists;
use crate::mask::spec::{ColumnSpec, HashEncoding, StrategySpec};
use crate::types::TypeKind;

#[derive(Clone)]
pub(super) struct Redact {
    pub(super) keep_first: usize,
    pub(super) keep_last: usize,
    pub(super) with: char,
    pub(super) col: ColumnSpec,
    pub(super) scratch: String,
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

#[derive(Clone)]
pub(super) struct Hash {
    pub(super) prf: Prf,
    pub(super) encoding: HashEncoding,
    pub(super) length: Option<usize>,
    pub(super) col: ColumnSpec,
    /// Reused from value to value: nothing is allocated per row.
    pub(super) scratch: String,
}

impl Strategy for Hash {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let h = self.prf.eval(&[input]);
        if self.col.kind == TypeKind::Bytea {
            let n = self.length.unwrap_or(32).min(32);
            out.put_slice(&h[..n]);
            return Ok(Outcome::Value);
        }
        let mut s = std::mem::take(&mut self.scratch);
        match self.encoding {
            HashEncoding::Hex => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for b in h {
                    s.push(HEX[(b >> 4) as usize] as char);
                    s.push(HEX[(b & 15) as usize] as char);
                }
            }
            HashEncoding::Base64 => B64.encode_string(h, &mut s),
        }
        if let Some(n) = self.length {
            s.truncate(n);
        }
        self.scratch = put_text(s, &self.col, out);
        Ok(Outcome::Value)
    }
}

#[derive(Clone)]
pub(super) struct Email {
    pub(super) local: Prf,
    pub(super) domain: Prf,
    pub(super) keep_domain: bool,
    /// Domains repeat across rows: their masked form is remembered (bounded).
    pub(super) domains: HashMap<String, String>,
    pub(super) col: ColumnSpec,
    pub(super) scratch: String,
    pub(super) folded: String,
    /// One per PRF: each keeps its own shuffles of small domains.
    pub(super) work: TextWork,
    pub(super) domain_work: TextWork,
}

pub(super) const DOMAIN_CACHE: usize = 4096;

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

#[derive(Clone)]
pub(super) struct Pick {
    pub(super) prf: Prf,
    pub(super) what: StrategySpec,
    pub(super) col: ColumnSpec,
    pub(super) scratch: String,
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

#[derive(Clone)]
pub(super) struct Digits {
    pub(super) prf: Prf,
    pub(super) luhn: bool,
    pub(super) col: ColumnSpec,
    pub(super) scratch: String,
}

impl Strategy for Digits {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let text = text_of(input, &self.col)?;
        let mut stream = self.prf.stream(&[text.as_bytes()]);
        let mut block = stream.next_block();
        let mut s = std::mem::take(&mut self.scratch);
        let mut used = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                if used == block.len() {
                    block = stream.next_block();
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

/// Replaces the last digit of `s` with the Luhn check digit of the digits before it, without
/// allocating (this runs once per masked value).
pub fn set_luhn_check_digit(s: &mut String) {
    let Some(pos) = s.rfind(|c: char| c.is_ascii_digit()) else {
        return;
    };
    let mut sum = 0;
    let mut count = 0;
    // The digits before the check digit, right to left: the first, third... are doubled.
    for d in s[..pos].chars().rev().filter_map(|c| c.to_digit(10)) {
        let v = if count % 2 == 0 {
            let v = d * 2;
            if v > 9 {
                v - 9
            } else {
                v
            }
        } else {
            d
        };
        sum += v;
        count += 1;
    }
    if count == 0 {
        return;
    }
    let check = [b'0' + ((10 - sum % 10) % 10) as u8];
    if let Ok(digit) = std::str::from_utf8(&check) {
        s.replace_range(pos..pos + 1, digit);
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
