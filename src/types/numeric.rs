//! `numeric`: PostgreSQL's base-10000 digits with weight, sign and display scale, kept as
//! sent so that re-encoding gives the same bytes; text output and decimal conversion.

use std::fmt::{self, Write as _};

pub const SIGN_POS: u16 = 0x0000;
pub const SIGN_NEG: u16 = 0x4000;
pub const SIGN_NAN: u16 = 0xC000;
pub const SIGN_PINF: u16 = 0xD000;
pub const SIGN_NINF: u16 = 0xF000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numeric {
    /// Weight of the first digit, in base-10000 places before the point (0 = units).
    pub weight: i16,
    pub sign: u16,
    /// Digits shown after the decimal point.
    pub dscale: u16,
    /// Base-10000 digits, most significant first.
    pub digits: Vec<i16>,
}

impl Numeric {
    pub fn is_finite(&self) -> bool {
        self.sign == SIGN_POS || self.sign == SIGN_NEG
    }

    /// The value as a decimal string with exactly `dscale` fraction digits (as `Display`).
    pub fn to_decimal_string(&self) -> String {
        self.to_string()
    }

    /// Builds a numeric from a plain decimal string (`-123.4500`); the scale is the number of
    /// fraction digits written. `None` if the string is not a plain decimal.
    pub fn from_decimal_str(s: &str) -> Option<Numeric> {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let dscale = frac_part.len() as u16;
        // Pad the integer part on the left and the fraction on the right to 4-digit groups.
        let int_trim = int_part.trim_start_matches('0');
        let int_pad = (4 - int_trim.len() % 4) % 4;
        let frac_pad = (4 - frac_part.len() % 4) % 4;
        let all = format!(
            "{}{int_trim}{frac_part}{}",
            "0".repeat(int_pad),
            "0".repeat(frac_pad)
        );
        let mut digits: Vec<i16> = all
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
            .collect();
        let mut weight = ((int_trim.len() + int_pad) / 4) as i16 - 1;
        // Strip leading and trailing zero groups, as the server does.
        while digits.first() == Some(&0) {
            digits.remove(0);
            weight -= 1;
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            weight = 0;
        }
        let sign = if negative && !digits.is_empty() {
            SIGN_NEG
        } else {
            SIGN_POS
        };
        Some(Numeric {
            weight,
            sign,
            dscale,
            digits,
        })
    }
}

impl fmt::Display for Numeric {
    /// `get_str_from_var`: the integer part without leading zeros, then `dscale` fraction digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sign {
            SIGN_NAN => return f.write_str("NaN"),
            SIGN_PINF => return f.write_str("Infinity"),
            SIGN_NINF => return f.write_str("-Infinity"),
            _ => {}
        }
        let mut out = String::new();
        if self.sign == SIGN_NEG {
            out.push('-');
        }
        let digit = |i: i64| -> i16 {
            if i >= 0 && (i as usize) < self.digits.len() {
                self.digits[i as usize]
            } else {
                0
            }
        };
        if self.weight < 0 {
            out.push('0');
        } else {
            for d in 0..=self.weight as i64 {
                if d == 0 {
                    let _ = write!(out, "{}", digit(d));
                } else {
                    let _ = write!(out, "{:04}", digit(d));
                }
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let mut frac = String::new();
            let mut d = self.weight as i64 + 1;
            while frac.len() < self.dscale as usize {
                let _ = write!(frac, "{:04}", digit(d));
                d += 1;
            }
            frac.truncate(self.dscale as usize);
            out.push_str(&frac);
        }
        f.write_str(&out)
    }
}

/// Rounds (half away from zero) or pads a numeric to `scale` fraction digits, exactly on its
/// decimal digits; `None` if it then needs more than `precision` digits.
pub fn fit_numeric_scale(n: &Numeric, precision: u32, scale: u32) -> Option<Numeric> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_round_trip() {
        for s in [
            "0",
            "1",
            "-1",
            "12345.678",
            "0.0001",
            "-0.01",
            "10000",
            "100000000.00000001",
            "1.50",
            "0.000000",
        ] {
            let n = Numeric::from_decimal_str(s).unwrap();
            assert_eq!(n.to_string(), s, "{n:?}");
        }
        let n = Numeric::from_decimal_str("12345.678").unwrap();
        assert_eq!(
            (n.weight, n.dscale, n.digits.as_slice()),
            (1, 3, &[1, 2345, 6780][..])
        );
        assert!(Numeric::from_decimal_str("1e5").is_none());
        assert!(Numeric::from_decimal_str("").is_none());
    }
}
