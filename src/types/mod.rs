//! Binary codecs for the types a masking strategy must read or write. Values decode from the
//! bytes binary COPY carries, encode back to the identical bytes, and print the way the
//! server's text output does (DateStyle ISO, IntervalStyle postgres, timestamptz in UTC).

pub mod datetime;
pub mod float;
pub mod net;
pub mod numeric;

use std::fmt::{self, Write as _};

use bytes::{BufMut, BytesMut};

pub use datetime::{Date, Interval, Timestamp};
pub use net::Inet;
pub use numeric::Numeric;

/// The binary layout of a column's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    /// text, varchar, bpchar, name, citext and enums: the characters themselves.
    Text,
    Bytea,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Json,
    Jsonb,
    /// inet and cidr share a layout; the value says which.
    Inet,
    MacAddr,
    Array(Box<TypeKind>),
}

/// Built-in type OIDs: (type, its array type, kind).
const BUILTINS: &[(u32, u32, TypeKind)] = &[
    (16, 1000, TypeKind::Bool),
    (21, 1005, TypeKind::Int2),
    (23, 1007, TypeKind::Int4),
    (20, 1016, TypeKind::Int8),
    (700, 1021, TypeKind::Float4),
    (701, 1022, TypeKind::Float8),
    (1700, 1231, TypeKind::Numeric),
    (25, 1009, TypeKind::Text),
    (1043, 1015, TypeKind::Text),
    (1042, 1014, TypeKind::Text),
    (19, 1003, TypeKind::Text),
    (17, 1001, TypeKind::Bytea),
    (2950, 2951, TypeKind::Uuid),
    (1082, 1182, TypeKind::Date),
    (1083, 1183, TypeKind::Time),
    (1266, 1270, TypeKind::TimeTz),
    (1114, 1115, TypeKind::Timestamp),
    (1184, 1185, TypeKind::TimestampTz),
    (1186, 1187, TypeKind::Interval),
    (114, 199, TypeKind::Json),
    (3802, 3807, TypeKind::Jsonb),
    (869, 1041, TypeKind::Inet),
    (650, 651, TypeKind::Inet),
    (829, 1040, TypeKind::MacAddr),
];

impl TypeKind {
    /// The kind of a built-in type or array of one.
    pub fn from_oid(oid: u32) -> Option<TypeKind> {
        BUILTINS.iter().find_map(|(t, a, k)| {
            if *t == oid {
                Some(k.clone())
            } else if *a == oid {
                Some(TypeKind::Array(Box::new(k.clone())))
            } else {
                None
            }
        })
    }

    /// The kind of a type as `format_type` names it (`character varying(20)`, `integer[]`,
    /// `timestamp with time zone`), for built-in types.
    /// The type as SQL names it, for messages (`integer`, not `Int4`; `text` for every
    /// character type).
    pub fn sql_name(&self) -> String {
        match self {
            TypeKind::Bool => "boolean".into(),
            TypeKind::Int2 => "smallint".into(),
            TypeKind::Int4 => "integer".into(),
            TypeKind::Int8 => "bigint".into(),
            TypeKind::Float4 => "real".into(),
            TypeKind::Float8 => "double precision".into(),
            TypeKind::Numeric => "numeric".into(),
            TypeKind::Text => "text".into(),
            TypeKind::Bytea => "bytea".into(),
            TypeKind::Uuid => "uuid".into(),
            TypeKind::Date => "date".into(),
            TypeKind::Time => "time without time zone".into(),
            TypeKind::TimeTz => "time with time zone".into(),
            TypeKind::Timestamp => "timestamp without time zone".into(),
            TypeKind::TimestampTz => "timestamp with time zone".into(),
            TypeKind::Interval => "interval".into(),
            TypeKind::Json => "json".into(),
            TypeKind::Jsonb => "jsonb".into(),
            TypeKind::Inet => "inet".into(),
            TypeKind::MacAddr => "macaddr".into(),
            TypeKind::Array(e) => format!("{}[]", e.sql_name()),
        }
    }

    pub fn from_type_name(name: &str) -> Option<TypeKind> {
        if let Some(elem) = name.strip_suffix("[]") {
            return TypeKind::from_type_name(elem).map(|k| TypeKind::Array(Box::new(k)));
        }
        let base = name.split('(').next().unwrap_or(name).trim();
        // `timestamp(3) with time zone` keeps its suffix after the modifier.
        let suffix = name.split(')').nth(1).map(str::trim).unwrap_or("");
        let base = if suffix.is_empty() {
            base.to_string()
        } else {
            format!("{base} {suffix}")
        };
        Some(match base.as_str() {
            "boolean" => TypeKind::Bool,
            "smallint" => TypeKind::Int2,
            "integer" => TypeKind::Int4,
            "bigint" => TypeKind::Int8,
            "real" => TypeKind::Float4,
            "double precision" => TypeKind::Float8,
            "numeric" => TypeKind::Numeric,
            "text" | "character varying" | "character" | "name" => TypeKind::Text,
            // An extension type, qualified by its schema (`public.citext`).
            b if b == "citext" || b.ends_with(".citext") => TypeKind::Text,
            "bytea" => TypeKind::Bytea,
            "uuid" => TypeKind::Uuid,
            "date" => TypeKind::Date,
            "time without time zone" => TypeKind::Time,
            "time with time zone" => TypeKind::TimeTz,
            "timestamp without time zone" => TypeKind::Timestamp,
            "timestamp with time zone" => TypeKind::TimestampTz,
            "interval" => TypeKind::Interval,
            "json" => TypeKind::Json,
            "jsonb" => TypeKind::Jsonb,
            "inet" | "cidr" => TypeKind::Inet,
            "macaddr" => TypeKind::MacAddr,
            _ => return None,
        })
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(Numeric),
    Text(String),
    Bytea(Vec<u8>),
    Uuid([u8; 16]),
    Date(Date),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since midnight and the zone in seconds west of UTC.
    TimeTz(i64, i32),
    Timestamp(Timestamp),
    TimestampTz(Timestamp),
    Interval(Interval),
    Json(String),
    Jsonb(String),
    Inet(Inet),
    MacAddr([u8; 6]),
    Array(Array),
}

/// An array: element type OID (kept so that encoding reproduces it), dimensions with their
/// lower bounds, and elements in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub elem_oid: u32,
    /// (length, lower bound) per dimension; empty for an empty array.
    pub dims: Vec<(i32, i32)>,
    pub elements: Vec<Option<Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid binary {kind} value: {message}")]
pub struct TypeError {
    pub kind: &'static str,
    pub message: String,
}

fn err(kind: &'static str, message: impl Into<String>) -> TypeError {
    TypeError {
        kind,
        message: message.into(),
    }
}

fn fixed<const N: usize>(kind: &'static str, b: &[u8]) -> Result<[u8; N], TypeError> {
    b.try_into()
        .map_err(|_| err(kind, format!("expected {N} bytes, got {}", b.len())))
}

fn utf8(kind: &'static str, b: &[u8]) -> Result<String, TypeError> {
    String::from_utf8(b.to_vec()).map_err(|_| err(kind, "not UTF-8"))
}

/// Decodes one non-NULL field.
pub fn decode(kind: &TypeKind, b: &[u8]) -> Result<Value, TypeError> {
    Ok(match kind {
        TypeKind::Bool => match b {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return Err(err("bool", "expected one byte 0 or 1")),
        },
        TypeKind::Int2 => Value::Int2(i16::from_be_bytes(fixed("int2", b)?)),
        TypeKind::Int4 => Value::Int4(i32::from_be_bytes(fixed("int4", b)?)),
        TypeKind::Int8 => Value::Int8(i64::from_be_bytes(fixed("int8", b)?)),
        TypeKind::Float4 => Value::Float4(f32::from_be_bytes(fixed("float4", b)?)),
        TypeKind::Float8 => Value::Float8(f64::from_be_bytes(fixed("float8", b)?)),
        TypeKind::Numeric => {
            if b.len() < 8 {
                return Err(err("numeric", "shorter than its 8-byte header"));
            }
            let n = u16::from_be_bytes([b[0], b[1]]) as usize;
            if b.len() != 8 + 2 * n {
                return Err(err(
                    "numeric",
                    format!("{n} digits need {} bytes, got {}", 8 + 2 * n, b.len()),
                ));
            }
            let digits: Vec<i16> = b[8..]
                .chunks(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect();
            if digits.iter().any(|d| !(0..10000).contains(d)) {
                return Err(err("numeric", "digit out of range"));
            }
            let sign = u16::from_be_bytes([b[4], b[5]]);
            if ![
                numeric::SIGN_POS,
                numeric::SIGN_NEG,
                numeric::SIGN_NAN,
                numeric::SIGN_PINF,
                numeric::SIGN_NINF,
            ]
            .contains(&sign)
            {
                return Err(err("numeric", format!("unknown sign 0x{sign:04x}")));
            }
            Value::Numeric(Numeric {
                weight: i16::from_be_bytes([b[2], b[3]]),
                sign,
                dscale: u16::from_be_bytes([b[6], b[7]]),
                digits,
            })
        }
        TypeKind::Text => Value::Text(utf8("text", b)?),
        TypeKind::Bytea => Value::Bytea(b.to_vec()),
        TypeKind::Uuid => Value::Uuid(fixed("uuid", b)?),
        TypeKind::Date => Value::Date(Date(i32::from_be_bytes(fixed("date", b)?))),
        TypeKind::Time => Value::Time(i64::from_be_bytes(fixed("time", b)?)),
        TypeKind::TimeTz => {
            let raw: [u8; 12] = fixed("timetz", b)?;
            Value::TimeTz(
                i64::from_be_bytes(raw[..8].try_into().unwrap_or_default()),
                i32::from_be_bytes(raw[8..].try_into().unwrap_or_default()),
            )
        }
        TypeKind::Timestamp => {
            Value::Timestamp(Timestamp(i64::from_be_bytes(fixed("timestamp", b)?)))
        }
        TypeKind::TimestampTz => {
            Value::TimestampTz(Timestamp(i64::from_be_bytes(fixed("timestamptz", b)?)))
        }
        TypeKind::Interval => {
            let raw: [u8; 16] = fixed("interval", b)?;
            Value::Interval(Interval {
                micros: i64::from_be_bytes(raw[..8].try_into().unwrap_or_default()),
                days: i32::from_be_bytes(raw[8..12].try_into().unwrap_or_default()),
                months: i32::from_be_bytes(raw[12..].try_into().unwrap_or_default()),
            })
        }
        TypeKind::Json => Value::Json(utf8("json", b)?),
        TypeKind::Jsonb => match b.split_first() {
            Some((1, text)) => Value::Jsonb(utf8("jsonb", text)?),
            Some((v, _)) => return Err(err("jsonb", format!("unsupported jsonb version {v}"))),
            None => return Err(err("jsonb", "empty")),
        },
        TypeKind::Inet => {
            if b.len() < 4 {
                return Err(err("inet", "shorter than its 4-byte header"));
            }
            let (family, bits, is_cidr, len) = (b[0], b[1], b[2], b[3] as usize);
            let max = match family {
                net::PGSQL_AF_INET => 4,
                net::PGSQL_AF_INET6 => 16,
                _ => return Err(err("inet", format!("unknown address family {family}"))),
            };
            if len != max || b.len() != 4 + len || bits as usize > max * 8 || is_cidr > 1 {
                return Err(err("inet", "inconsistent length, bits or cidr flag"));
            }
            Value::Inet(Inet {
                family,
                bits,
                is_cidr: is_cidr == 1,
                addr: b[4..].to_vec(),
            })
        }
        TypeKind::MacAddr => Value::MacAddr(fixed("macaddr", b)?),
        TypeKind::Array(elem) => Value::Array(decode_array(elem, b)?),
    })
}

/// Reads a big-endian i32 from the front of `r`, advancing it.
fn take_i32(r: &mut &[u8], what: &str) -> Result<i32, TypeError> {
    if r.len() < 4 {
        return Err(err("array", format!("truncated at {what}")));
    }
    let v = i32::from_be_bytes([r[0], r[1], r[2], r[3]]);
    *r = &r[4..];
    Ok(v)
}

fn decode_array(elem: &TypeKind, b: &[u8]) -> Result<Array, TypeError> {
    let mut r = b;
    let ndim = take_i32(&mut r, "the dimension count")?;
    if !(0..=6).contains(&ndim) {
        return Err(err("array", format!("{ndim} dimensions")));
    }
    let flags = take_i32(&mut r, "the flags")?;
    if flags & !1 != 0 {
        return Err(err("array", format!("unknown flags {flags}")));
    }
    let elem_oid = take_i32(&mut r, "the element type")? as u32;
    let mut dims = Vec::with_capacity(ndim as usize);
    let mut count: i64 = if ndim == 0 { 0 } else { 1 };
    for _ in 0..ndim {
        let len = take_i32(&mut r, "a dimension")?;
        let lb = take_i32(&mut r, "a lower bound")?;
        if len < 0 {
            return Err(err("array", "negative dimension"));
        }
        count *= len as i64;
        dims.push((len, lb));
    }
    if count > r.len() as i64 / 4 + 1 {
        return Err(err("array", "more elements than bytes"));
    }
    let mut elements = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = take_i32(&mut r, "an element length")?;
        if len == -1 {
            elements.push(None);
            continue;
        }
        if len < 0 || len as usize > r.len() {
            return Err(err("array", "element length out of range"));
        }
        elements.push(Some(decode(elem, &r[..len as usize])?));
        r = &r[len as usize..];
    }
    if !r.is_empty() {
        return Err(err("array", "trailing bytes"));
    }
    Ok(Array {
        elem_oid,
        dims,
        elements,
    })
}

impl Value {
    /// Appends the binary form (without the field's length word).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Value::Bool(v) => out.put_u8(*v as u8),
            Value::Int2(v) => out.put_i16(*v),
            Value::Int4(v) => out.put_i32(*v),
            Value::Int8(v) => out.put_i64(*v),
            Value::Float4(v) => out.put_f32(*v),
            Value::Float8(v) => out.put_f64(*v),
            Value::Numeric(n) => {
                out.put_u16(n.digits.len() as u16);
                out.put_i16(n.weight);
                out.put_u16(n.sign);
                out.put_u16(n.dscale);
                for d in &n.digits {
                    out.put_i16(*d);
                }
            }
            Value::Text(s) | Value::Json(s) => out.put_slice(s.as_bytes()),
            Value::Jsonb(s) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            Value::Bytea(b) => out.put_slice(b),
            Value::Uuid(u) => out.put_slice(u),
            Value::Date(d) => out.put_i32(d.0),
            Value::Time(t) => out.put_i64(*t),
            Value::TimeTz(t, z) => {
                out.put_i64(*t);
                out.put_i32(*z);
            }
            Value::Timestamp(t) | Value::TimestampTz(t) => out.put_i64(t.0),
            Value::Interval(iv) => {
                out.put_i64(iv.micros);
                out.put_i32(iv.days);
                out.put_i32(iv.months);
            }
            Value::Inet(i) => {
                out.put_u8(i.family);
                out.put_u8(i.bits);
                out.put_u8(i.is_cidr as u8);
                out.put_u8(i.addr.len() as u8);
                out.put_slice(&i.addr);
            }
            Value::MacAddr(m) => out.put_slice(m),
            Value::Array(a) => {
                out.put_i32(a.dims.len() as i32);
                out.put_i32(a.elements.iter().any(Option::is_none) as i32);
                out.put_u32(a.elem_oid);
                for (len, lb) in &a.dims {
                    out.put_i32(*len);
                    out.put_i32(*lb);
                }
                for e in &a.elements {
                    match e {
                        None => out.put_i32(-1),
                        Some(v) => {
                            let at = out.len();
                            out.put_i32(0);
                            v.encode(out);
                            let len = (out.len() - at - 4) as i32;
                            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => f.write_str(if *v { "t" } else { "f" }),
            Value::Int2(v) => write!(f, "{v}"),
            Value::Int4(v) => write!(f, "{v}"),
            Value::Int8(v) => write!(f, "{v}"),
            Value::Float4(v) => f.write_str(&float::float4_text(*v)),
            Value::Float8(v) => f.write_str(&float::float8_text(*v)),
            Value::Numeric(n) => write!(f, "{n}"),
            Value::Text(s) | Value::Json(s) | Value::Jsonb(s) => f.write_str(s),
            Value::Bytea(b) => {
                f.write_str("\\x")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Value::Uuid(u) => {
                for (i, byte) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_char('-')?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Value::Date(d) => write!(f, "{d}"),
            Value::Time(t) => datetime::fmt_time(*t, f),
            Value::TimeTz(t, z) => datetime::fmt_timetz(*t, *z, f),
            Value::Timestamp(t) => t.write(f, false),
            Value::TimestampTz(t) => t.write(f, true),
            Value::Interval(iv) => write!(f, "{iv}"),
            Value::Inet(i) => write!(f, "{i}"),
            Value::MacAddr(m) => net::fmt_macaddr(m, f),
            Value::Array(a) => fmt_array(a, f),
        }
    }
}

/// `array_out`: braces per dimension, `[lb:ub]=` when a lower bound is not 1, elements quoted
/// when they are empty, `NULL`-like, or hold braces, quotes, backslashes, commas or spaces.
fn fmt_array(a: &Array, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if a.dims.is_empty() {
        return f.write_str("{}");
    }
    if a.dims.iter().any(|&(_, lb)| lb != 1) {
        for &(len, lb) in &a.dims {
            write!(f, "[{lb}:{}]", lb as i64 + len as i64 - 1)?;
        }
        f.write_char('=')?;
    }
    fn level(a: &Array, dim: usize, at: &mut usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for i in 0..a.dims[dim].0 {
            if i > 0 {
                f.write_char(',')?;
            }
            if dim + 1 < a.dims.len() {
                level(a, dim + 1, at, f)?;
                continue;
            }
            match &a.elements[*at] {
                None => f.write_str("NULL")?,
                Some(v) => {
                    let text = v.to_string();
                    let quote = text.is_empty()
                        || text.eq_ignore_ascii_case("NULL")
                        || text.bytes().any(|b| {
                            matches!(
                                b,
                                b'"' | b'\\'
                                    | b'{'
                                    | b'}'
                                    | b','
                                    | b' '
                                    | b'\t'
                                    | b'\n'
                                    | b'\r'
                                    | 0x0b
                                    | 0x0c
                            )
                        });
                    if quote {
                        f.write_char('"')?;
                        for c in text.chars() {
                            if c == '"' || c == '\\' {
                                f.write_char('\\')?;
                            }
                            f.write_char(c)?;
                        }
                        f.write_char('"')?;
                    } else {
                        f.write_str(&text)?;
                    }
                }
            }
            *at += 1;
        }
        f.write_char('}')
    }
    let mut at = 0;
    level(a, 0, &mut at, f)
}
