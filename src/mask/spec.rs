//! What a masking config says about a column: the strategy and its options, and what the
//! strategy needs to know about the column to keep its output valid there.

use std::collections::BTreeMap;

use crate::types::TypeKind;

/// A column as a strategy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub kind: TypeKind,
    /// `varchar(n)` / `char(n)`: the most characters a value may have.
    pub max_chars: Option<usize>,
    /// `char(n)`: values are blank-padded to `max_chars`.
    pub blank_padded: bool,
    pub not_null: bool,
    /// `numeric(precision, scale)`.
    pub numeric: Option<(u32, u32)>,
    /// Values compare without case (`citext`): keyed text permutations work on the lower-cased
    /// value, so that values distinct under the column's equality stay distinct masked.
    pub fold_case: bool,
}

impl ColumnSpec {
    /// An unconstrained nullable column of `kind`.
    pub fn new(name: &str, kind: TypeKind) -> ColumnSpec {
        ColumnSpec {
            name: name.to_string(),
            kind,
            max_chars: None,
            blank_padded: false,
            not_null: false,
            numeric: None,
            fold_case: false,
        }
    }

    /// Reads limits from a `format_type` name: `character varying(20)`, `character(11)`,
    /// `numeric(12,2)`.
    pub fn from_type_name(name: &str, type_name: &str, not_null: bool) -> Option<ColumnSpec> {
        let kind = TypeKind::from_type_name(type_name)?;
        let mut spec = ColumnSpec::new(name, kind);
        spec.not_null = not_null;
        spec.fold_case = type_name.rsplit('.').next() == Some("citext");
        let args: Option<Vec<u32>> = type_name
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| {
                inside
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect()
            });
        if !type_name.ends_with("[]") {
            if type_name.starts_with("character varying") {
                spec.max_chars = args.as_ref().and_then(|a| a.first()).map(|&n| n as usize);
            } else if type_name.starts_with("character") {
                spec.max_chars =
                    Some(args.as_ref().and_then(|a| a.first()).copied().unwrap_or(1) as usize);
                spec.blank_padded = true;
            } else if type_name.starts_with("numeric") {
                spec.numeric = args
                    .as_ref()
                    .filter(|a| !a.is_empty())
                    .map(|a| (a[0], a.get(1).copied().unwrap_or(0)));
            }
        }
        Some(spec)
    }
}

/// A strategy with its options, as the config file names it.
#[derive(Debug, Clone, PartialEq)]
pub enum StrategySpec {
    Keep,
    Null,
    /// Leave the column out of the target COPY so the target's DEFAULT applies.
    Default,
    /// A constant, given in the column type's text form.
    Fixed {
        value: String,
    },
    Redact {
        keep_first: usize,
        keep_last: usize,
        with: char,
    },
    Hash {
        encoding: HashEncoding,
        length: Option<usize>,
    },
    Email {
        keep_domain: bool,
    },
    FirstName,
    LastName,
    FullName,
    City,
    StreetAddress,
    Company,
    Digits {
        luhn: bool,
    },
    DateShift {
        max_days: u32,
    },
    Noise {
        ratio: f64,
    },
    Tokenize,
    /// Strategies for paths inside json/jsonb values.
    Json {
        paths: BTreeMap<String, StrategySpec>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashEncoding {
    Hex,
    Base64,
}

impl StrategySpec {
    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::Keep => "keep",
            StrategySpec::Null => "null",
            StrategySpec::Default => "default",
            StrategySpec::Fixed { .. } => "fixed",
            StrategySpec::Redact { .. } => "redact",
            StrategySpec::Hash { .. } => "hash",
            StrategySpec::Email { .. } => "email",
            StrategySpec::FirstName => "first_name",
            StrategySpec::LastName => "last_name",
            StrategySpec::FullName => "full_name",
            StrategySpec::City => "city",
            StrategySpec::StreetAddress => "street_address",
            StrategySpec::Company => "company",
            StrategySpec::Digits { .. } => "digits",
            StrategySpec::DateShift { .. } => "date_shift",
            StrategySpec::Noise { .. } => "noise",
            StrategySpec::Tokenize => "tokenize",
            StrategySpec::Json { .. } => "json",
        }
    }

    /// Whether the output depends on the masking key.
    pub fn is_keyed(&self) -> bool {
        match self {
            StrategySpec::Keep
            | StrategySpec::Null
            | StrategySpec::Default
            | StrategySpec::Fixed { .. }
            | StrategySpec::Redact { .. } => false,
            StrategySpec::Json { paths } => paths.values().any(StrategySpec::is_keyed),
            _ => true,
        }
    }
}

/// Every strategy: its name, the types it reads, whether it is deterministic, what it keeps.
/// The README's strategy table is written from this.
pub const STRATEGY_DOCS: &[(&str, &str, &str, &str)] = &[
    ("keep", "any", "-", "the value as it is"),
    ("null", "any nullable column", "-", "nothing: NULL"),
    ("default", "any column with a DEFAULT (or nullable)", "-", "nothing: the column is left out of the target COPY, so the target's DEFAULT applies"),
    ("fixed", "text types, integers, numeric, real/double, boolean, uuid, date, json/jsonb", "yes", "nothing: a constant (`value = ...`)"),
    ("redact", "text types", "yes", "the first `keep_first` and last `keep_last` characters, every non-alphanumeric character, the length; letters and digits become `with` (default `*`)"),
    ("hash", "text types, bytea", "yes, keyed", "nothing but equality: a keyed HMAC-SHA256 as hex (default) or base64, cut to `length` or the column's limit"),
    ("email", "text types", "yes, keyed", "the shape: letters stay letters, digits digits, punctuation and the top-level domain stay; `keep_domain = true` keeps the whole domain. A keyed bijection: distinct inputs give distinct outputs"),
    ("first_name, last_name, full_name", "text types", "yes, keyed", "nothing: a name from the built-in lists"),
    ("city, street_address, company", "text types", "yes, keyed", "nothing: a value built from the built-in lists"),
    ("digits", "text types", "yes, keyed", "every non-digit character and the length; `luhn = true` makes the last digit a valid Luhn check digit"),
    ("date_shift", "date, timestamp, timestamptz", "yes, keyed", "the value moved by 1 to `max_days` days (default 30) either way; the time of day; ±infinity"),
    ("noise", "smallint, integer, bigint, real, double precision, numeric", "yes, keyed", "the value within ±`ratio` (default 0.1) of the original, inside the type's range, precision and scale; NaN and ±infinity"),
    ("tokenize", "smallint, integer, bigint, uuid, text types", "yes, keyed", "the sign (integers), the character class at each position (text); a keyed bijection, so keys stay unique and foreign keys still join"),
    ("json", "json, jsonb", "as its path strategies", "everything but the values at the given paths (`$.a.b`, `$.a[*]`, `$.a[0]`, `$..key`)"),
];
