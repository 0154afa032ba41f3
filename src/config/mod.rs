//! The masking config file (TOML): which strategy masks which column. Structural validation
//! happens here, with messages that name the file, line, table and column; validation
//! against a database's catalog comes with the catalog layer.
//!
//! ```toml
//! [masking]
//! unlisted_columns = "keep"        # or "fail"
//!
//! [tables."public.customer".columns]
//! email      = "email"
//! ssn        = { strategy = "redact", keep_last = 4 }
//! birth_date = { strategy = "date_shift", max_days = 30 }
//! ```

pub mod plan;
pub mod resolve;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::mask::{HashEncoding, StrategySpec};

/// What to do with columns of copied tables that the config does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// Copy them as they are.
    Keep,
    /// Refuse to run: every column must be classified, so a new column can never leak.
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaskingConfig {
    pub unlisted_columns: Unlisted,
    pub tables: Vec<TableRules>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableRules {
    pub schema: String,
    pub table: String,
    pub line: usize,
    pub columns: Vec<ColumnRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRule {
    pub column: String,
    pub line: usize,
    pub strategy: StrategySpec,
}

impl MaskingConfig {
    /// An empty config: every column kept.
    pub fn keep_all() -> MaskingConfig {
        MaskingConfig {
            unlisted_columns: Unlisted::Keep,
            tables: Vec::new(),
        }
    }

    /// The rules for a table, if any.
    pub fn table(&self, schema: &str, table: &str) -> Option<&TableRules> {
        self.tables
            .iter()
            .find(|t| t.schema == schema && t.table == table)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<MaskingConfig, ConfigError> {
        let text = read_config_text(path)?;
        MaskingConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<MaskingConfig, ConfigError> {
        let err = |span: Option<std::ops::Range<usize>>, place: Option<String>, message: String| {
            ConfigError {
                file: file.to_string(),
                line: span.map(|s| line_of(text, s.start)),
                place,
                message,
            }
        };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| err(e.span(), None, e.message().to_string()))?;
        let unlisted_columns = match raw.masking.and_then(|m| m.unlisted_columns) {
            None => Unlisted::Keep,
            Some(v) => match v.get_ref().as_str() {
                "keep" => Unlisted::Keep,
                "fail" => Unlisted::Fail,
                other => {
                    return Err(err(
                        Some(v.span()),
                        None,
                        format!(
                        "masking.unlisted_columns must be \"keep\" or \"fail\", not \"{other}\""
                    ),
                    ))
                }
            },
        };
        // Lines by offset and names seen, looked up per entry: parsing stays linear in the
        // file's size (a config of 40,000 tables parses in a fraction of a second).
        let newlines: Vec<usize> = text
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i)
            .collect();
        let line_of = |offset: usize| newlines.partition_point(|&n| n < offset) + 1;
        let mut seen: std::collections::HashSet<(String, String)> = Default::default();
        let mut tables: Vec<TableRules> = Vec::new();
        for (name, table) in raw.tables.unwrap_or_default() {
            let (schema, tname) = parse_qualified(name.get_ref()).map_err(|m| {
                err(
                    Some(name.span()),
                    Some(format!("table \"{}\"", name.get_ref())),
                    m,
                )
            })?;
            let place_t = format!("table \"{schema}.{tname}\"");
            if !seen.insert((schema.clone(), tname.clone())) {
                return Err(err(
                    Some(name.span()),
                    Some(place_t),
                    "listed twice (names are compared after case folding of unquoted parts)".into(),
                ));
            }
            let mut columns: Vec<ColumnRule> = Vec::new();
            for (col, value) in table.into_inner().columns {
                let column = parse_identifier(col.get_ref()).map_err(|m| {
                    err(
                        Some(col.span()),
                        Some(format!("{place_t}, column \"{}\"", col.get_ref())),
                        m,
                    )
                })?;
                let place = format!("{place_t}, column \"{column}\"");
                if columns.iter().any(|c| c.column == column) {
                    return Err(err(Some(col.span()), Some(place), "listed twice".into()));
                }
                let strategy = parse_strategy(value.get_ref(), true)
                    .map_err(|m| err(Some(value.span()), Some(place.clone()), m))?;
                columns.push(ColumnRule {
                    column,
                    line: line_of(col.span().start),
                    strategy,
                });
            }
            tables.push(TableRules {
                schema,
                table: tname,
                line: line_of(name.span().start),
                columns,
            });
        }
        Ok(MaskingConfig {
            unlisted_columns,
            tables,
        })
    }

    /// Whether any rule needs the masking key.
    pub fn needs_key(&self) -> bool {
        self.tables
            .iter()
            .flat_map(|t| &t.columns)
            .any(|c| c.strategy.is_keyed())
    }
}

/// A config error: file, line, the table and column concerned, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub place: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(place) = &self.place {
            write!(f, "{place}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    masking: Option<RawMasking>,
    tables: Option<BTreeMap<Spanned<String>, Spanned<RawTable>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMasking {
    unlisted_columns: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    columns: BTreeMap<Spanned<String>, Spanned<Value>>,
}

/// An identifier as SQL reads it: `"Quoted"` exactly (with `""` for a quote), bare names
/// folded to lower case.
/// A name from the config file as messages quote it: cut to 40 characters, control
/// characters escaped, so a pasted paragraph or binary junk does not flood the terminal.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(40)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("\"{out}\"")
}

/// The largest config file read: a config for 100,000 tables with a dozen masked columns
/// each is a few tens of MiB. Anything larger (or a device like /dev/zero) is refused before
/// it is held in memory.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// A config file's text, refused past `MAX_CONFIG_BYTES` or when it is not UTF-8.
pub fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let fail = |message: String| ConfigError {
        file: path.display().to_string(),
        line: None,
        place: None,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(format!(
            "the file is larger than {} MiB, more than any masking config needs: is it the right file?",
            MAX_CONFIG_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

pub fn parse_identifier(s: &str) -> Result<String, String> {
    let parts = split_qualified(s)?;
    match parts.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "\"{s}\" is not a single column name; quote a name that holds a dot: '\"a.b\"'"
        )),
    }
}

/// `schema.table`, `table` (schema `public`), with SQL quoting rules per part.
pub fn parse_qualified(s: &str) -> Result<(String, String), String> {
    let parts = split_qualified(s)?;
    match parts.as_slice() {
        [table] => Ok(("public".to_string(), table.clone())),
        [schema, table] => Ok((schema.clone(), table.clone())),
        _ => Err(format!(
            "\"{s}\" is not a table name; write schema.table or table"
        )),
    }
}

fn split_qualified(s: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted name in \"{s}\"")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if c == '"' {
                    return Err(format!("misplaced quote in \"{s}\""));
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(format!("empty name in \"{s}\""));
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => continue,
            Some(c) => return Err(format!("unexpected '{c}' after a quoted name in \"{s}\"")),
        }
    }
}

const STRATEGY_NAMES: &str = "keep, null, default, fixed, redact, hash, email, first_name, last_name, full_name, city, street_address, company, digits, date_shift, noise, tokenize, json";

/// A strategy from a bare name (`"email"`) or a table (`{ strategy = "redact", keep_last = 4 }`).
fn parse_strategy(value: &Value, top_level: bool) -> Result<StrategySpec, String> {
    let (name, options) = match value {
        Value::String(s) => (s.as_str(), None),
        Value::Table(t) => {
            let name = match t.get("strategy") {
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err("\"strategy\" must be a string".into()),
                None => {
                    return Err(format!(
                        "a table entry needs `strategy = \"...\"` (one of: {STRATEGY_NAMES})"
                    ))
                }
            };
            (name, Some(t))
        }
        other => {
            return Err(format!(
                "expected a strategy name or a table, found {}",
                other.type_str()
            ))
        }
    };
    let allowed: &[&str] = match name {
        "fixed" => &["value"],
        "redact" => &["keep_first", "keep_last", "with"],
        "hash" => &["encoding", "length"],
        "email" => &["keep_domain"],
        "digits" => &["luhn"],
        "date_shift" => &["max_days"],
        "noise" => &["ratio"],
        "json" => &["paths"],
        "keep" | "null" | "default" | "first_name" | "last_name" | "full_name" | "city"
        | "street_address" | "company" | "tokenize" => &[],
        other => {
            return Err(format!(
                "unknown strategy {} (strategies: {STRATEGY_NAMES})",
                shown(other)
            ))
        }
    };
    let empty = toml::Table::new();
    let opts = options.unwrap_or(&empty);
    for key in opts.keys() {
        if key != "strategy" && !allowed.contains(&key.as_str()) {
            return Err(if allowed.is_empty() {
                format!("strategy \"{name}\" takes no options, but \"{key}\" was given")
            } else {
                format!(
                    "unknown option {} for strategy \"{name}\" (options: {})",
                    shown(key),
                    allowed.join(", ")
                )
            });
        }
    }
    let uint = |key: &str, default: u64, min: u64| -> Result<u64, String> {
        match opts.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) if *i >= min as i64 => Ok(*i as u64),
            Some(Value::Integer(i)) => Err(format!(
                "option \"{key}\" of \"{name}\" must be at least {min}, not {i}"
            )),
            Some(v) => Err(format!(
                "option \"{key}\" of \"{name}\" must be an integer, not a {}",
                v.type_str()
            )),
        }
    };
    let boolean = |key: &str| -> Result<bool, String> {
        match opts.get(key) {
            None => Ok(false),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(format!(
                "option \"{key}\" of \"{name}\" must be true or false, not a {}",
                v.type_str()
            )),
        }
    };
    Ok(match name {
        "keep" => StrategySpec::Keep,
        "null" => StrategySpec::Null,
        "default" if top_level => StrategySpec::Default,
        "default" => {
            return Err("strategy \"default\" applies to whole columns, not JSON paths".into())
        }
        "first_name" => StrategySpec::FirstName,
        "last_name" => StrategySpec::LastName,
        "full_name" => StrategySpec::FullName,
        "city" => StrategySpec::City,
        "street_address" => StrategySpec::StreetAddress,
        "company" => StrategySpec::Company,
        "tokenize" => StrategySpec::Tokenize,
        "fixed" => StrategySpec::Fixed {
            value: match opts.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Integer(i)) => i.to_string(),
                Some(Value::Float(f)) => f.to_string(),
                Some(Value::Boolean(b)) => b.to_string(),
                Some(v) => {
                    return Err(format!(
                    "option \"value\" of \"fixed\" must be a string, number or boolean, not a {}",
                    v.type_str()
                ))
                }
                None => return Err("strategy \"fixed\" needs `value = ...`".into()),
            },
        },
        "redact" => StrategySpec::Redact {
            keep_first: uint("keep_first", 0, 0)? as usize,
            keep_last: uint("keep_last", 0, 0)? as usize,
            with: match opts.get("with") {
                None => '*',
                Some(Value::String(s)) if s.chars().count() == 1 => s.chars().next().unwrap_or('*'),
                Some(_) => {
                    return Err(
                        "option \"with\" of \"redact\" must be a string of one character".into(),
                    )
                }
            },
        },
        "hash" => StrategySpec::Hash {
            encoding: match opts.get("encoding") {
                None => HashEncoding::Hex,
                Some(Value::String(s)) if s == "hex" => HashEncoding::Hex,
                Some(Value::String(s)) if s == "base64" => HashEncoding::Base64,
                Some(_) => {
                    return Err(
                        "option \"encoding\" of \"hash\" must be \"hex\" or \"base64\"".into(),
                    )
                }
            },
            length: opts
                .get("length")
                .map(|_| uint("length", 0, 1))
                .transpose()?
                .map(|n| n as usize),
        },
        "email" => StrategySpec::Email {
            keep_domain: boolean("keep_domain")?,
        },
        "digits" => StrategySpec::Digits {
            luhn: boolean("luhn")?,
        },
        "date_shift" => StrategySpec::DateShift {
            max_days: uint("max_days", 30, 1)?.min(u32::MAX as u64) as u32,
        },
        "noise" => StrategySpec::Noise {
            ratio: match opts.get("ratio") {
                None => 0.1,
                Some(Value::Float(f)) if *f > 0.0 && *f <= 10.0 => *f,
                Some(Value::Integer(i)) if *i > 0 && *i <= 10 => *i as f64,
                Some(_) => {
                    return Err(
                        "option \"ratio\" of \"noise\" must be a number above 0 and at most 10"
                            .into(),
                    )
                }
            },
        },
        "json" => {
            if !top_level {
                return Err(
                    "strategy \"json\" cannot be nested inside another json strategy".into(),
                );
            }
            let Some(Value::Table(paths)) = opts.get("paths") else {
                return Err(
                    "strategy \"json\" needs `paths = { \"$.a.b\" = \"strategy\", ... }`".into(),
                );
            };
            let mut out = BTreeMap::new();
            for (path, spec) in paths {
                crate::mask::json::parse_path(path)?;
                let spec =
                    parse_strategy(spec, false).map_err(|e| format!("path \"{path}\": {e}"))?;
                out.insert(path.clone(), spec);
            }
            StrategySpec::Json { paths: out }
        }
        _ => unreachable!("names were checked above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[masking]
unlisted_columns = "fail"

[tables."public.customer".columns]
email      = "email"
first_name = "first_name"
ssn        = { strategy = "redact", keep_last = 4 }
birth_date = { strategy = "date_shift", max_days = 30 }
profile    = { strategy = "json", paths = { "$.email" = "email", "$..phone" = { strategy = "digits", luhn = false } } }

[tables.orders.columns]
total = { strategy = "noise", ratio = 0.05 }
note  = { strategy = "fixed", value = "n/a" }

[tables.'"Sales"."Big Table"'.columns]
'"Name"' = "full_name"
"#;

    #[test]
    fn parses_the_example() {
        let c = MaskingConfig::parse(GOOD, "m.toml").unwrap();
        assert_eq!(c.unlisted_columns, Unlisted::Fail);
        let customer = c.table("public", "customer").unwrap();
        assert_eq!(customer.columns.len(), 5);
        let ssn = customer.columns.iter().find(|r| r.column == "ssn").unwrap();
        assert_eq!(
            ssn.strategy,
            StrategySpec::Redact {
                keep_first: 0,
                keep_last: 4,
                with: '*'
            }
        );
        assert_eq!(ssn.line, 8);
        assert!(
            c.table("public", "orders").is_some(),
            "bare names are in public"
        );
        let big = c.table("Sales", "Big Table").unwrap();
        assert_eq!(big.columns[0].column, "Name");
        assert!(c.needs_key());
        assert!(!MaskingConfig::parse(
            "[tables.t.columns]\na = \"keep\"\nb = { strategy = \"redact\" }\n",
            "x"
        )
        .unwrap()
        .needs_key());
    }

    fn error(text: &str) -> String {
        MaskingConfig::parse(text, "m.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_table_column_and_problem() {
        let e = error("[tables.customer.columns]\nemail = \"emial\"\n");
        assert!(
            e.starts_with(
                "m.toml:2: table \"public.customer\", column \"email\": unknown strategy \"emial\""
            ),
            "{e}"
        );
        let e = error("[tables.customer.columns]\nssn = { strategy = \"redact\", keep_lst = 4 }\n");
        assert!(e.contains("m.toml:2:") && e.contains("unknown option \"keep_lst\" for strategy \"redact\" (options: keep_first, keep_last, with)"), "{e}");
        let e = error(
            "[tables.customer.columns]\nssn = { strategy = \"redact\", keep_last = \"4\" }\n",
        );
        assert!(e.contains("must be an integer, not a string"), "{e}");
        let e = error("[tables.customer.columns]\nemail = \"email\"\nemail = \"keep\"\n");
        assert!(
            e.contains("m.toml:3") && e.to_lowercase().contains("duplicate"),
            "{e}"
        );
        let e = error("[tables.customer.columns]\na = \"keep\"\n[tables.\"public.customer\".columns]\nb = \"keep\"\n");
        assert!(e.contains("listed twice"), "{e}");
        let e = error("[masking]\nunlisted_columns = \"maybe\"\n");
        assert!(
            e.contains("m.toml:2") && e.contains("\"keep\" or \"fail\""),
            "{e}"
        );
        let e = error("[tables.t.columns]\nc = { keep_last = 4 }\n");
        assert!(e.contains("needs `strategy"), "{e}");
        let e = error("[tables.t.columns]\nc = \"tokenize\"\n[tables.t.other]\n");
        assert!(e.contains("m.toml:3") || e.contains("unknown field"), "{e}");
        let e = error(
            "[tables.t.columns]\nc = { strategy = \"json\", paths = { \"a.b\" = \"email\" } }\n",
        );
        assert!(e.contains("must start with $"), "{e}");
        let e = error("[tables.t.columns]\nc = { strategy = \"noise\", ratio = -1 }\n");
        assert!(e.contains("above 0"), "{e}");
        let e = error("[tables.\"a.b.c\".columns]\nc = \"keep\"\n");
        assert!(e.contains("not a table name"), "{e}");
        let e = error("not toml at all = = =");
        assert!(e.starts_with("m.toml:1:"), "{e}");
    }
}
