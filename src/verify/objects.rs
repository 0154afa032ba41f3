//! The checks that read catalogs, not rows: every object of the source is on the target (by
//! kind and name), sequences are at or past the source's positions, and the SQL that counts
//! a foreign key's orphans on the target.

use std::collections::BTreeSet;

use crate::catalog::{quote_ident, Catalog, Constraint, ConstraintKind, Table};

/// (kind, name) of every object a clone recreates.
pub fn objects(cat: &Catalog) -> BTreeSet<(&'static str, String)> {
    let mut out = BTreeSet::new();
    for s in &cat.schemas {
        out.insert(("schema", s.name.clone()));
    }
    for e in &cat.extensions {
        out.insert(("extension", e.name.clone()));
    }
    for t in &cat.types {
        out.insert(("type", t.name.to_string()));
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        out.insert(("sequence", s.name.to_string()));
    }
    for t in &cat.tables {
        out.insert(("table", t.name.to_string()));
        for c in &t.columns {
            out.insert(("column", format!("{}.{}", t.name, c.name)));
        }
        for c in t.constraints.iter().filter(|c| c.is_local) {
            let kind = match c.kind {
                ConstraintKind::PrimaryKey => "primary key",
                ConstraintKind::Unique => "unique constraint",
                ConstraintKind::Check => "check constraint",
                ConstraintKind::ForeignKey => "foreign key",
                ConstraintKind::Exclusion => "exclusion constraint",
            };
            out.insert((kind, format!("{}.{}", t.name, c.name)));
        }
    }
    for i in cat.indexes.iter().filter(|i| i.constraint.is_none()) {
        out.insert(("index", i.name.to_string()));
    }
    for v in &cat.views {
        let kind = if v.materialized {
            "materialized view"
        } else {
            "view"
        };
        out.insert((kind, v.name.to_string()));
    }
    for f in &cat.functions {
        let kind = if f.aggregate { "aggregate" } else { "function" };
        out.insert((kind, format!("{}({})", f.name, f.arguments)));
    }
    for t in &cat.triggers {
        out.insert(("trigger", format!("{}.{}", t.table, t.name)));
    }
    for o in &cat.objects {
        out.insert((o.kind.label(), o.name.clone()));
    }
    for p in &cat.publications {
        out.insert(("publication", p.name.clone()));
    }
    out
}

/// The objects of `source` that `target` lacks; a missing table stands for its columns,
/// constraints, indexes and triggers.
pub fn missing(source: &Catalog, target: &Catalog) -> Vec<(&'static str, String)> {
    let theirs = objects(target);
    let gone: Vec<(&'static str, String)> = objects(source)
        .into_iter()
        .filter(|o| !theirs.contains(o))
        .collect();
    let tables: BTreeSet<String> = gone
        .iter()
        .filter(|(k, _)| *k == "table")
        .map(|(_, n)| n.clone())
        .collect();
    let of_missing_table = |kind: &str, name: &str| -> bool {
        match kind {
            "column"
            | "primary key"
            | "unique constraint"
            | "check constraint"
            | "foreign key"
            | "exclusion constraint"
            | "trigger" => tables.iter().any(|t| {
                name.len() > t.len()
                    && name.starts_with(t.as_str())
                    && name.as_bytes()[t.len()] == b'.'
            }),
            "index" => source
                .indexes
                .iter()
                .any(|i| i.name.to_string() == name && tables.contains(&i.table.to_string())),
            _ => false,
        }
    };
    gone.into_iter()
        .filter(|(k, n)| !of_missing_table(k, n))
        .collect()
}

/// A sequence whose next value on the target would come before the source's:
/// (name, source's next value, target's next value).
pub fn sequences_behind(source: &Catalog, target: &Catalog) -> Vec<(String, i64, i64)> {
    let next = |s: &crate::catalog::Sequence| {
        s.last_value.map(|(v, called)| {
            if called {
                v.saturating_add(s.increment)
            } else {
                v
            }
        })
    };
    let mut out = Vec::new();
    for s in &source.sequences {
        let Some(t) = target.sequences.iter().find(|t| t.name == s.name) else {
            continue;
        };
        let (Some(a), Some(b)) = (next(s), next(t)) else {
            continue;
        };
        let behind = if s.increment >= 0 { b < a } else { b > a };
        if behind {
            out.push((s.name.to_string(), a, b));
        }
    }
    out
}

/// The foreign keys to check on the target: declared ones (a partition's copy of its parent's
/// key is checked through the parent).
pub fn foreign_keys(cat: &Catalog) -> Vec<(&Table, &Constraint)> {
    cat.tables
        .iter()
        .flat_map(|t| {
            t.constraints
                .iter()
                .filter(|c| c.kind == ConstraintKind::ForeignKey && !c.inherited_from_parent)
                .map(move |c| (t, c))
        })
        .collect()
}

/// Counts the rows of `table` whose key `fk` finds no referenced row (MATCH SIMPLE: a key
/// with a NULL is not checked; MATCH FULL: a key partly NULL is an orphan too).
pub fn orphans_sql(cat: &Catalog, table: &Table, fk: &Constraint) -> Option<String> {
    let (referenced, ref_cols) = fk.references.as_ref()?;
    if fk.columns.is_empty() || fk.columns.len() != ref_cols.len() {
        return None;
    }
    let only = |t: Option<&Table>| {
        if t.is_some_and(|t| t.is_partitioned()) {
            ""
        } else {
            "ONLY "
        }
    };
    let parent = cat.table(&referenced.schema, &referenced.name);
    let cols: Vec<String> = fk.columns.iter().map(|c| quote_ident(c)).collect();
    let not_null = cols
        .iter()
        .map(|c| format!("c.{c} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let join = cols
        .iter()
        .zip(ref_cols)
        .map(|(c, r)| format!("p.{} = c.{c}", quote_ident(r)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut condition = format!(
        "({not_null} AND NOT EXISTS (SELECT 1 FROM {}{} p WHERE {join}))",
        only(parent),
        referenced.quoted
    );
    if fk.definition.contains("MATCH FULL") && cols.len() > 1 {
        condition.push_str(&format!(
            " OR num_nulls({}) BETWEEN 1 AND {}",
            cols.iter()
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            cols.len() - 1
        ));
    }
    Some(format!(
        "SELECT count(*) FROM {}{} c WHERE {condition}",
        only(Some(table)),
        table.name.quoted
    ))
}
