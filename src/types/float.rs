//! Float text output as the server writes it with extra_float_digits = 1 (the default since
//! PostgreSQL 12): the shortest digits that read back exactly, in fixed notation for decimal
//! exponents from -4 up to 14 (float8) or 5 (float4), scientific (`1e+20`) otherwise.

use std::fmt::Write as _;

/// `limit` is 15 for float8 and 6 for float4 (DBL_DIG and FLT_DIG).
fn shortest(sci: String, negative: bool, limit: i32) -> String {
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7", "5e3".
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (-4..limit).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// NaN, ±Infinity and signed zero, as the server writes them (`v` widened from either width).
fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v.is_infinite() {
        Some(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else if v == 0.0 {
        Some(if v.is_sign_negative() { "-0" } else { "0" })
    } else {
        None
    }
}

pub fn float8_text(v: f64) -> String {
    special(v).map_or_else(
        || shortest(format!("{:e}", v.abs()), v < 0.0, 15),
        str::to_string,
    )
}

pub fn float4_text(v: f32) -> String {
    // Widening keeps NaN, infinities and the sign of zero; the digits come from the f32 itself.
    special(v as f64).map_or_else(
        || shortest(format!("{:e}", v.abs()), v < 0.0, 6),
        str::to_string,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_the_server() {
        assert_eq!(float8_text(1e20), "1e+20");
        assert_eq!(float8_text(1.5e-5), "1.5e-05");
        assert_eq!(float8_text(0.0001), "0.0001");
        assert_eq!(float8_text(123456789012345.0), "123456789012345");
        assert_eq!(float8_text(1234567890123456.0), "1.234567890123456e+15");
        assert_eq!(float8_text(-2.5), "-2.5");
        assert_eq!(float8_text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float4_text(123456.0), "123456");
        assert_eq!(float4_text(1234567.0), "1.234567e+06");
        assert_eq!(float4_text(0.1), "0.1");
    }
}
