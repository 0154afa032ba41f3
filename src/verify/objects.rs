//! The checks that read catalogs, not rows: every object of the source is on the target (by
//! kind and name), sequences are at or past the source's positions, and the SQL that counts
//! a foreign key's orphans on the target.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::catalog::{quote_ident, Catalog, Constraint, ConstraintKind, QualifiedName, Table};

/// An object a clone recreates: its kind, its name, and the table it belongs to (columns,
/// constraints, indexes and triggers), which stands for it when the table itself is missing.
type Object = (&'static str, String, Option<String>);

/// Every object a clone recreates.
pub fn objects(cat: &Catalog) -> BTreeSet<Object> {
    let mut out = BTreeSet::new();
    let mut add = |kind: &'static str, name: String, owner: Option<String>| {
        out.insert((kind, name, owner));
    };
    for s in &cat.schemas {
        add("schema", s.name.clone(), None);
    }
    for e in &cat.extensions {
        add("extension", e.name.clone(), None);
    }
    for t in &cat.types {
        add("type", t.name.to_string(), None);
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        add("sequence", s.name.to_string(), None);
    }
    for t in &cat.tables {
        let table = t.name.to_string();
        for c in &t.columns {
            add("column", format!("{table}.{}", c.name), Some(table.clone()));
        }
        for c in t.constraints.iter().filter(|c| c.is_local) {
            let kind = match c.kind {
                ConstraintKind::PrimaryKey => "primary key",
                ConstraintKind::Unique => "unique constraint",
                ConstraintKind::Check => "check constraint",
                ConstraintKind::ForeignKey => "foreign key",
                ConstraintKind::Exclusion => "exclusion constraint",
            };
            add(kind, format!("{table}.{}", c.name), Some(table.clone()));
        }
        add("table", table, None);
    }
    for i in cat.indexes.iter().filter(|i| i.constraint.is_none()) {
        add("index", i.name.to_string(), Some(i.table.to_string()));
    }
    for v in &cat.views {
        let kind = if v.materialized {
            "materialized view"
        } else {
            "view"
        };
        add(kind, v.name.to_string(), None);
    }
    for f in &cat.functions {
        let kind = if f.aggregate { "aggregate" } else { "function" };
        add(kind, format!("{}({})", f.name, f.arguments), None);
    }
    for t in &cat.triggers {
        add(
            "trigger",
            format!("{}.{}", t.table, t.name),
            Some(t.table.to_string()),
        );
    }
    for o in &cat.objects {
        add(o.kind.label(), o.name.clone(), None);
    }
    for p in &cat.publications {
        add("publication", p.name.clone(), None);
    }
    out
}

/// The objects of `source` (as `objects` lists them) that `target` lacks; a missing table
/// stands for what belongs to it.
pub fn missing(source: &BTreeSet<Object>, target: &Catalog) -> Vec<(&'static str, String)> {
    let theirs = objects(target);
    let gone: Vec<&Object> = source.iter().filter(|o| !theirs.contains(*o)).collect();
    let tables: HashSet<&str> = gone
        .iter()
        .filter(|o| o.0 == "table")
        .map(|o| o.1.as_str())
        .collect();
    gone.into_iter()
        .filter(|o| !o.2.as_deref().is_some_and(|t| tables.contains(t)))
        .map(|o| (o.0, o.1.clone()))
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
    let theirs: HashMap<&QualifiedName, &crate::catalog::Sequence> =
        target.sequences.iter().map(|t| (&t.name, t)).collect();
    let mut out = Vec::new();
    for s in &source.sequences {
        let Some(t) = theirs.get(&s.name) else {
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
