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

/// A finite numeric in binary wire form read as an integer count of `10^-dscale` units:
/// `(value * 10^dscale, dscale)`. `None` for NaN and infinities, malformed input, or a value
/// that does not fit in an `i128` (about 38 digits); no allocation.
pub fn wire_to_scaled(b: &[u8]) -> Option<(i128, u16)> {
    if b.len() < 8 {
        return None;
    }
    let n = u16::from_be_bytes([b[0], b[1]]) as usize;
    if b.len() != 8 + 2 * n {
        return None;
    }
    let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]);
    if sign != SIGN_POS && sign != SIGN_NEG {
        return None;
    }
    // Digits run from base-10000 place `weight` down; the fraction has `groups` places.
    let groups = (dscale as i32 + 3) / 4;
    let lowest = weight - n as i32 + 1;
    if lowest < -groups {
        // Digits below the display scale: not something the server sends.
        return None;
    }
    // The last fraction place holds only `4 - pad` shown digits (the rest are zero padding),
    // so it counts for 10^(4 - pad), not 10000: no intermediate value exceeds the result.
    let pad = (groups * 4 - dscale as i32) as u32;
    let place = |p: i32| {
        if p == -groups {
            10i128.pow(4 - pad)
        } else {
            10000
        }
    };
    let mut acc: i128 = 0;
    for i in 0..n {
        let d = i16::from_be_bytes([b[8 + 2 * i], b[9 + 2 * i]]);
        if !(0..10000).contains(&d) {
            return None;
        }
        let p = weight - i as i32;
        let d = if p == -groups {
            d as i128 / 10i128.pow(pad)
        } else {
            d as i128
        };
        acc = acc.checked_mul(place(p))?.checked_add(d)?;
    }
    for p in (-groups..lowest).rev() {
        acc = acc.checked_mul(place(p))?;
    }
    Some((if sign == SIGN_NEG { -acc } else { acc }, dscale))
}

/// Writes `v * 10^-dscale` as a binary numeric with that display scale, as the server would
/// (no leading or trailing zero digits); no allocation.
pub fn put_scaled(out: &mut bytes::BytesMut, v: i128, dscale: u16) {
    use bytes::BufMut;
    let groups = (dscale as u32).div_ceil(4);
    let pad = groups * 4 - dscale as u32;
    let mut abs = v.unsigned_abs();
    // Base-10000 digits, least significant first; place of digits[i] is i - groups. The
    // lowest fraction place shows `4 - pad` digits, padded with zeros on the right.
    let mut digits = [0i16; 12];
    let mut len = 0;
    if groups > 0 {
        let shown = 10u128.pow(4 - pad);
        digits[0] = ((abs % shown) * 10u128.pow(pad)) as i16;
        abs /= shown;
        len = 1;
    }
    while abs > 0 {
        digits[len] = (abs % 10000) as i16;
        abs /= 10000;
        len += 1;
    }
    while len > 0 && digits[len - 1] == 0 {
        len -= 1;
    }
    let mut low = 0;
    while low < len && digits[low] == 0 {
        low += 1;
    }
    let (weight, sign) = if low == len {
        (0i16, SIGN_POS)
    } else {
        (
            len as i16 - 1 - groups as i16,
            if v < 0 { SIGN_NEG } else { SIGN_POS },
        )
    };
    out.put_u16((len - low) as u16);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
    for d in digits[low..len].iter().rev() {
        out.put_i16(*d);
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
    }

    fn wire(n: &Numeric) -> bytes::BytesMut {
        let mut out = bytes::BytesMut::new();
        crate::types::Value::Numeric(n.clone()).encode(&mut out);
        out
    }

    #[test]
    fn scaled_integers_round_trip_the_wire_form() {
        for (s, want) in [
            ("0", 0i128),
            ("0.000", 0),
            ("1", 1),
            ("-1", -1),
            ("12345.678", 12345678),
            ("-0.0001", -1),
            ("10000", 10000),
            ("100000000.00000001", 10000000000000001),
            ("1.50", 150),
            ("0.00012", 12),
            (
                "99999999999999999999999999999999999.99",
                9999999999999999999999999999999999999,
            ),
        ] {
            let n = Numeric::from_decimal_str(s).unwrap();
            let bytes = wire(&n);
            let (v, scale) = wire_to_scaled(&bytes).unwrap();
            assert_eq!((v, scale), (want, n.dscale), "{s}");
            let mut back = bytes::BytesMut::new();
            put_scaled(&mut back, v, scale);
            assert_eq!(&back[..], &bytes[..], "{s}");
        }
        let huge = Numeric::from_decimal_str(&"9".repeat(60)).unwrap();
        assert!(wire_to_scaled(&wire(&huge)).is_none());
        let nan = Numeric {
            weight: 0,
            sign: SIGN_NAN,
            dscale: 0,
            digits: vec![],
        };
        assert!(wire_to_scaled(&wire(&nan)).is_none());
        assert!(Numeric::from_decimal_str("").is_none());
    }
}
