//! Strategy tests: each family against its guarantees, through `build` as the rewriter uses it.

use super::*;
use crate::mask::lists;
use crate::types::datetime::{DATE_MAX, DATE_MIN, TIMESTAMP_MAX, TIMESTAMP_MIN};
use crate::types::{decode, numeric::Numeric, Value};

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
        a.ends_with(".com") && a.contains('@') && !a.contains("alice") && !a.contains("example"),
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

#[test]
fn luhn_check_digits_are_right_and_separators_stay() {
    // The classic example: 7992739871 has check digit 3.
    let mut s = String::from("79927398710");
    set_luhn_check_digit(&mut s);
    assert_eq!(s, "79927398713");
    let mut s = String::from("4111-1111-1111-1110");
    set_luhn_check_digit(&mut s);
    assert_eq!(s, "4111-1111-1111-1111");
    for n in 0..2000u64 {
        let mut s = format!(
            "{:04}-{:04} {:05}",
            n % 10_000,
            (n * 7919) % 10_000,
            n * 31 % 100_000
        );
        set_luhn_check_digit(&mut s);
        assert!(luhn_valid(&s), "{s}");
        assert_eq!(s.len(), 15);
    }
    let mut one = String::from("a7b");
    set_luhn_check_digit(&mut one);
    assert_eq!(one, "a7b", "one digit has no payload to check");
}
