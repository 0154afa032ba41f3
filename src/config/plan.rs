//! From a table's rules and its columns to the rewriter's plan: every rule must name a column
//! of the table, every strategy must fit its column, and under `unlisted_columns = "fail"`
//! every column must be listed.

use super::{ConfigError, MaskingConfig, Unlisted};
use crate::mask::{build, ColumnAction, ColumnSpec, MaskKey, MaskPlan, StrategySpec};

/// Builds the plan for `schema.table` whose COPY columns are `columns`, in order.
pub fn build_plan(
    config: &MaskingConfig,
    file: &str,
    schema: &str,
    table: &str,
    columns: &[ColumnSpec],
    key: Option<&MaskKey>,
) -> Result<MaskPlan, ConfigError> {
    let rules = config.table(schema, table);
    let err = |line: Option<usize>, place: String, message: String| ConfigError {
        file: file.to_string(),
        line,
        place: Some(place),
        message,
    };
    if let Some(rules) = rules {
        for rule in &rules.columns {
            if !columns.iter().any(|c| c.name == rule.column) {
                let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                return Err(err(
                    Some(rule.line),
                    format!("table \"{schema}.{table}\", column \"{}\"", rule.column),
                    format!(
                        "the table has no such column (its columns: {})",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    let mut plan = Vec::with_capacity(columns.len());
    let mut unlisted = Vec::new();
    for col in columns {
        let rule = rules.and_then(|r| r.columns.iter().find(|c| c.column == col.name));
        let place = format!("table \"{schema}.{table}\", column \"{}\"", col.name);
        let action = match rule.map(|r| &r.strategy) {
            None => {
                unlisted.push(col.name.clone());
                ColumnAction::Keep
            }
            Some(StrategySpec::Keep) => ColumnAction::Keep,
            Some(StrategySpec::Default) => ColumnAction::Omit,
            Some(spec) => ColumnAction::Mask(
                build(spec, col, key).map_err(|m| err(rule.map(|r| r.line), place, m))?,
            ),
        };
        plan.push((col.name.clone(), action));
    }
    if config.unlisted_columns == Unlisted::Fail && !unlisted.is_empty() {
        return Err(err(
            rules.map(|r| r.line),
            format!("table \"{schema}.{table}\""),
            format!(
                "unlisted_columns = \"fail\", and these columns are not listed: {}; classify each one (\"keep\" if it holds no personal data)",
                unlisted.join(", ")
            ),
        ));
    }
    Ok(MaskPlan { columns: plan })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeKind;

    fn cols() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("id", TypeKind::Int8),
            ColumnSpec::from_type_name("email", "character varying(50)", true).unwrap(),
            ColumnSpec::new("note", TypeKind::Text),
        ]
    }

    #[test]
    fn plans_and_refusals() {
        let key = MaskKey::new(b"plan test key 0123456789").unwrap();
        let cfg = MaskingConfig::parse(
            "[tables.t.columns]\nemail = \"email\"\nnote = \"default\"\n",
            "m.toml",
        )
        .unwrap();
        let plan = build_plan(&cfg, "m.toml", "public", "t", &cols(), Some(&key)).unwrap();
        assert_eq!(plan.target_columns().collect::<Vec<_>>(), ["id", "email"]);
        assert!(!plan.is_passthrough());

        let e = build_plan(
            &MaskingConfig::parse("[tables.t.columns]\nmail = \"email\"\n", "m.toml").unwrap(),
            "m.toml",
            "public",
            "t",
            &cols(),
            Some(&key),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains(
                "m.toml:2: table \"public.t\", column \"mail\": the table has no such column"
            ),
            "{e}"
        );

        let strict = MaskingConfig::parse(
            "[masking]\nunlisted_columns = \"fail\"\n[tables.t.columns]\nemail = \"email\"\n",
            "m.toml",
        )
        .unwrap();
        let e = build_plan(&strict, "m.toml", "public", "t", &cols(), Some(&key))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not listed: id, note"), "{e}");
        let e = build_plan(&strict, "m.toml", "public", "other", &cols(), Some(&key))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("table \"public.other\"") && e.contains("id, email, note"),
            "{e}"
        );

        let e = build_plan(
            &MaskingConfig::parse("[tables.t.columns]\nemail = \"null\"\n", "m.toml").unwrap(),
            "m.toml",
            "public",
            "t",
            &cols(),
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("m.toml:2") && e.contains("NOT NULL"), "{e}");
        let keep_all = build_plan(
            &MaskingConfig::keep_all(),
            "-",
            "public",
            "t",
            &cols(),
            None,
        )
        .unwrap();
        assert!(keep_all.is_passthrough());
    }
}
