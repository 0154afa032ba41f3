//! What verify found: each failed check by table and column with counts (never a value),
//! per-table lines, and totals; as text or JSON.

use serde::Serialize;

use super::table::LeakCount;
use crate::config::resolve::RuleSource;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `row_count`, `kept_values`, `masked_values`, `rows`, `leak`, `deep_leak`,
    /// `foreign_key`, `sequence`, `schema_object` or `error`.
    pub check: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
    /// The numbers behind the message.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub counts: serde_json::Map<String, serde_json::Value>,
}

fn counts(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl Finding {
    fn new(
        check: &'static str,
        table: Option<&str>,
        column: Option<&str>,
        message: String,
    ) -> Finding {
        Finding {
            check,
            table: table.map(str::to_string),
            column: column.map(str::to_string),
            message,
            counts: Default::default(),
        }
    }

    pub fn object(kind: &str, name: &str) -> Finding {
        let mut f = Finding::new(
            "schema_object",
            None,
            None,
            format!("{kind} {name} is in the source but not in the target"),
        );
        f.counts = counts(&[("kind", kind.into()), ("name", name.into())]);
        f
    }

    pub fn sequence(name: &str, source_next: i64, target_next: i64) -> Finding {
        let mut f = Finding::new(
            "sequence",
            None,
            None,
            format!(
                "sequence {name} is behind the source: its next value is {target_next}, the source's {source_next} (new rows would reuse values)"
            ),
        );
        f.counts = counts(&[
            ("sequence", name.into()),
            ("source_next", source_next.into()),
            ("target_next", target_next.into()),
        ]);
        f
    }

    pub fn foreign_key(table: &str, constraint: &str, columns: &[String], rows: u64) -> Finding {
        let mut f = Finding::new(
            "foreign_key",
            Some(table),
            Some(&columns.join(", ")),
            format!(
                "foreign key {constraint}: {rows} row(s) reference no row of the referenced table"
            ),
        );
        f.counts = counts(&[("constraint", constraint.into()), ("rows", rows.into())]);
        f
    }

    pub fn error(table: &str, message: &str) -> Finding {
        Finding::new(
            "error",
            Some(table),
            None,
            format!("could not be checked: {message}"),
        )
    }

    pub fn row_count(table: &str, source: u64, target: u64) -> Finding {
        let mut f = Finding::new(
            "row_count",
            Some(table),
            None,
            format!("the source has {source} row(s), the target {target}"),
        );
        f.counts = counts(&[
            ("source_rows", source.into()),
            ("target_rows", target.into()),
        ]);
        f
    }

    pub fn column_differs(
        table: &str,
        column: &str,
        masked: bool,
        origin: Option<&RuleSource>,
    ) -> Finding {
        let how = origin.and_then(super::origin_text);
        let how = how.map(|h| format!(" ({h})")).unwrap_or_default();
        if masked {
            Finding::new(
                "masked_values",
                Some(table),
                Some(column),
                format!("the masked values are not what the config and key give{how}: the clone used another config or key, or the target was changed since"),
            )
        } else {
            Finding::new(
                "kept_values",
                Some(table),
                Some(column),
                format!(
                    "the config keeps this column{how}, but its values differ from the source's"
                ),
            )
        }
    }

    pub fn rows_differ(table: &str) -> Finding {
        Finding::new(
            "rows",
            Some(table),
            None,
            "every column holds the expected values, but not in the same rows".into(),
        )
    }

    /// `unsure`: the column's masked values are not what the config and key give either, so
    /// the count the masking accounts for is the one this key would give.
    pub fn leak(table: &str, column: &str, l: &LeakCount, unsure: bool) -> Finding {
        let (t, e) = l.confirmed.unwrap_or((l.target_hits, l.expected_hits));
        let mut f = Finding::new(
            "leak",
            Some(table),
            Some(column),
            format!(
                "{} target row(s) hold a source value of this masked column ({t} matching, {e} of them from the masking itself{}){}",
                l.leaked(),
                if l.confirmed.is_some() {
                    ", confirmed on the values themselves"
                } else {
                    ""
                },
                if unsure {
                    "; the masking's share is what this config and key give, and the column does not hold what they give"
                } else {
                    ""
                }
            ),
        );
        f.counts = counts(&[
            ("leaked_rows", l.leaked().into()),
            ("target_matches", t.into()),
            ("expected_matches", e.into()),
            ("confirmed_values", l.confirmed_values.into()),
        ]);
        f
    }

    pub fn deep_leak(
        table: &str,
        column: &str,
        rows: u64,
        confirmed: u64,
        masked_columns: &[&str],
    ) -> Finding {
        let shown: Vec<&str> = masked_columns.iter().take(3).copied().collect();
        let more = masked_columns.len().saturating_sub(shown.len());
        let mut f = Finding::new(
            "deep_leak",
            Some(table),
            Some(column),
            format!(
                "{confirmed} row(s) of this kept column hold source values of masked column(s) {}{} (confirmed on the values themselves); mask this column too",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() },
            ),
        );
        f.counts = counts(&[
            ("rows", rows.into()),
            ("confirmed", confirmed.into()),
            (
                "masked_columns",
                masked_columns
                    .iter()
                    .map(|c| serde_json::Value::from(*c))
                    .collect(),
            ),
        ]);
        f
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableLine {
    pub table: String,
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    pub masked_columns: usize,
    /// Passes over the rows (1; more when the hashes outgrew the memory budget, or to
    /// confirm hits).
    pub passes: u32,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub passed: bool,
    pub findings: Vec<Finding>,
    pub tables: Vec<TableLine>,
    pub foreign_keys: usize,
    pub sequences: usize,
    pub objects: usize,
    pub deep: bool,
    pub bytes_read: u64,
    pub seconds: f64,
}

impl Report {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let rows: u64 = self.tables.iter().filter_map(|t| t.source_rows).sum();
        s.push_str(&format!(
            "verify: {} tables ({rows} rows, {} with masked columns), {} foreign keys, {} sequences, {} objects{} checked in {:.1} s ({:.1} MB read); row counts compared in this run's snapshots\n",
            self.tables.len(),
            self.tables.iter().filter(|t| t.masked_columns > 0).count(),
            self.foreign_keys,
            self.sequences,
            self.objects,
            if self.deep { ", every kept text column (--deep)" } else { "" },
            self.seconds,
            self.bytes_read as f64 / 1e6,
        ));
        if self.passed {
            s.push_str("PASSED: every check holds\n");
            return s;
        }
        s.push_str(&format!("FAILED: {} problem(s)\n", self.findings.len()));
        for f in &self.findings {
            let place = match (&f.table, &f.column) {
                (Some(t), Some(c)) => format!("{t}, column {c}: "),
                (Some(t), None) => format!("{t}: "),
                _ => String::new(),
            };
            s.push_str(&format!("  [{}] {place}{}\n", f.check, f.message));
        }
        s
    }
}
