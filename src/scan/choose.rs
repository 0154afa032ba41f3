//! From kinds to a config: each personal column's strategies in order of preference (what
//! fits its type, its length and its keys is settled by checking the written config against
//! the catalog, falling to the next choice where it does not fit), and the TOML text, with
//! the evidence for each choice in a comment.

use std::collections::BTreeMap;

use super::classify::{Category, JsonPath};
use super::Kind;
use crate::mask::StrategySpec;

/// Strategies for a column of `kind`, best first. `key` says the column is part of a
/// primary key, unique constraint or foreign key: only strategies that keep distinct values
/// distinct are offered (the same on both sides of a foreign key).
pub fn candidates(
    kind: Kind,
    category: Category,
    key: bool,
    json: &[JsonPath],
) -> Vec<StrategySpec> {
    use StrategySpec::*;
    let integer = matches!(category, Category::Integer);
    let mut out = match kind {
        _ if integer => vec![Tokenize],
        Kind::Email => vec![Email { keep_domain: false }, Tokenize],
        Kind::Phone | Kind::NationalId | Kind::Iban | Kind::PostalCode => {
            vec![Digits { luhn: false }, Tokenize]
        }
        Kind::PaymentCard => vec![Digits { luhn: true }, Tokenize],
        Kind::IpAddress => vec![Digits { luhn: false }, Tokenize],
        Kind::BirthDate if category == Category::Date => vec![DateShift { max_days: 365 }],
        Kind::BirthDate => vec![Digits { luhn: false }, Tokenize],
        Kind::FirstName => vec![FirstName, Tokenize],
        Kind::LastName => vec![LastName, Tokenize],
        Kind::FullName => vec![FullName, Tokenize],
        Kind::City => vec![City, Tokenize],
        Kind::StreetAddress => vec![StreetAddress, Tokenize],
        Kind::Secret => vec![
            Hash {
                encoding: crate::mask::HashEncoding::Hex,
                length: None,
            },
            Tokenize,
        ],
        Kind::FreeText => vec![Redact {
            keep_first: 0,
            keep_last: 0,
            with: '*',
        }],
        Kind::Image => vec![Hash {
            encoding: crate::mask::HashEncoding::Hex,
            length: None,
        }],
        // No path to mask (or a personal key no path can reach): the whole document.
        Kind::Json if json.is_empty() => Vec::new(),
        Kind::Json => vec![Json {
            paths: json
                .iter()
                .map(|p| (format!("$..{}", p.key), json_strategy(p.kind)))
                .collect::<BTreeMap<_, _>>(),
        }],
    };
    if key {
        out.retain(|s| matches!(s, Email { .. } | Tokenize | Hash { .. }));
        if out.is_empty() {
            out.push(Tokenize);
        }
    }
    // Last resorts: nothing (a nullable column), the target's default.
    if kind == Kind::Image {
        out.insert(0, Null);
    } else {
        out.push(Null);
    }
    out.push(Default);
    out
}

/// The strategy for a string (or number) at a personal JSON path.
fn json_strategy(kind: Kind) -> StrategySpec {
    use StrategySpec::*;
    match kind {
        Kind::Email => Email { keep_domain: false },
        Kind::FirstName => FirstName,
        Kind::LastName => LastName,
        Kind::FullName => FullName,
        Kind::City => City,
        Kind::StreetAddress => StreetAddress,
        Kind::Secret => Hash {
            encoding: crate::mask::HashEncoding::Hex,
            length: None,
        },
        Kind::FreeText => Redact {
            keep_first: 0,
            keep_last: 0,
            with: '*',
        },
        Kind::PaymentCard => Digits { luhn: true },
        _ => Digits { luhn: false },
    }
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name as the config reads it: bare when it is lower case, `"Quoted"` otherwise.
pub fn sql_name(part: &str) -> String {
    let bare = part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        part.to_string()
    } else {
        format!("\"{}\"", part.replace('"', "\"\""))
    }
}

/// A TOML key: bare when it can be.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

/// A strategy as the config writes it.
pub fn strategy_toml(s: &StrategySpec) -> String {
    use StrategySpec::*;
    match s {
        Email { keep_domain: false } | Digits { luhn: false } => toml_string(s.name()),
        Digits { luhn: true } => "{ strategy = \"digits\", luhn = true }".into(),
        DateShift { max_days } => format!("{{ strategy = \"date_shift\", max_days = {max_days} }}"),
        Hash {
            length: None,
            encoding: crate::mask::HashEncoding::Hex,
        } => "\"hash\"".into(),
        Redact {
            keep_first: 0,
            keep_last: 0,
            with: '*',
        } => "\"redact\"".into(),
        Json { paths } => format!(
            "{{ strategy = \"json\", paths = {{ {} }} }}",
            paths
                .iter()
                .map(|(p, s)| format!("{} = {}", toml_string(p), strategy_toml(s)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => toml_string(other.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_strategies_are_written_as_the_config_reads_them() {
        assert_eq!(sql_name("email"), "email");
        assert_eq!(sql_name("Größe"), "\"Größe\"");
        assert_eq!(sql_name("a\"b"), "\"a\"\"b\"");
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let text = format!(
            "[tables.{}.columns]\n{} = {}\n{} = {}\n",
            toml_string(&format!("{}.{}", sql_name("public"), sql_name("Big \"T\""))),
            toml_key(&sql_name("Col 1")),
            strategy_toml(&StrategySpec::Digits { luhn: true }),
            toml_key(&sql_name("doc")),
            strategy_toml(
                &candidates(
                    Kind::Json,
                    Category::Json,
                    false,
                    &[JsonPath {
                        key: "email".into(),
                        kind: Kind::Email,
                        evidence: String::new(),
                    }]
                )[0]
            ),
        );
        let cfg = crate::config::MaskingConfig::parse(&text, "t").unwrap();
        assert_eq!(cfg.tables[0].table, "Big \"T\"");
        assert_eq!(cfg.tables[0].columns[0].column, "Col 1");
        assert_eq!(
            cfg.tables[0].columns[0].strategy,
            StrategySpec::Digits { luhn: true }
        );
        assert!(matches!(
            cfg.tables[0].columns[1].strategy,
            StrategySpec::Json { .. }
        ));
    }
}
