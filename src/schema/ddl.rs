//! CREATE statements for single objects (types, sequences, tables), written from the catalog
//! model as pg_dump would write them.

use std::collections::{HashMap, HashSet};

use super::literal;
use crate::catalog::{Catalog, ConstraintKind, QualifiedName, Sequence, Table, TypeDef};

pub(super) fn create_type(t: &crate::catalog::UserType) -> String {
    match &t.def {
        TypeDef::Enum { labels } => format!(
            "CREATE TYPE {} AS ENUM ({})",
            t.name.quoted,
            labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDef::Domain {
            base,
            not_null,
            default,
            collation,
            checks,
        } => {
            let mut s = format!("CREATE DOMAIN {} AS {base}", t.name.quoted);
            if let Some(c) = collation {
                s += &format!(" COLLATE {c}");
            }
            if let Some(d) = default {
                s += &format!(" DEFAULT {d}");
            }
            if *not_null {
                s += " NOT NULL";
            }
            for (name, def) in checks.iter().filter(|(_, d)| !d.ends_with(" NOT VALID")) {
                s += &format!(" CONSTRAINT {name} {def}");
            }
            s
        }
        TypeDef::Composite { attributes } => format!(
            "CREATE TYPE {} AS ({})",
            t.name.quoted,
            attributes
                .iter()
                .map(|(n, ty)| format!("{n} {ty}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDef::Range { subtype, options } => {
            let mut opts = vec![format!("subtype = {subtype}")];
            opts.extend(options.iter().cloned());
            format!(
                "CREATE TYPE {} AS RANGE ({})",
                t.name.quoted,
                opts.join(", ")
            )
        }
    }
}

/// `quote_ident` for names the catalog gives raw (extensions and their schemas).
pub(super) fn quote_ident_simple(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// Sequence options; an identity sequence's type follows its column, so it takes no `AS`.
pub(super) fn sequence_options(s: &crate::catalog::Sequence) -> String {
    format!(
        "{}START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        if s.identity {
            String::new()
        } else {
            format!("AS {} ", s.data_type)
        },
        s.start,
        s.increment,
        s.min,
        s.max,
        s.cache,
        if s.cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// Identity columns' sequences, by table and quoted column name.
pub(super) type Identities<'a> = HashMap<(&'a QualifiedName, &'a str), &'a Sequence>;

pub(super) fn identity_sequences(cat: &Catalog) -> Identities<'_> {
    cat.sequences
        .iter()
        .filter(|s| s.identity)
        .filter_map(|s| {
            let (table, column) = s.owned_by.as_ref()?;
            Some(((table, column.as_str()), s))
        })
        .collect()
}

pub(super) fn create_table(
    cat: &Catalog,
    t: &Table,
    apart: &HashSet<(u32, i16)>,
    identities: &Identities<'_>,
) -> String {
    let unlogged = if t.unlogged { "UNLOGGED " } else { "" };
    // A partitioned table (a partition too, with multi-level partitioning) says how.
    let partition = t
        .partitioning
        .as_ref()
        .map(|(_, key)| format!(" PARTITION BY {key}"))
        .unwrap_or_default();
    // A partition created apart and attached must already hold its parent's checks.
    let standalone = t.parent.is_some();
    let checks: Vec<String> = t
        .constraints
        .iter()
        .filter(|c| {
            c.kind == ConstraintKind::Check
                && (c.is_local || standalone)
                && !c.inherited_from_parent
                && c.validated
        })
        .map(|c| format!("CONSTRAINT {} {}", c.quoted, c.definition))
        .collect();
    let attach = t.parent.as_ref().zip(t.bound.as_ref()).filter(|(p, _)| {
        cat.table(&p.schema, &p.name)
            .is_some_and(|p| attached_apart(p, t))
    });
    if let (Some(parent), Some(bound), None) = (&t.parent, &t.bound, attach) {
        // Partitions take their columns from the parent; only their own checks are added.
        let extra = if checks.is_empty() {
            String::new()
        } else {
            format!(" ({})", checks.join(", "))
        };
        return format!(
            "CREATE {unlogged}TABLE {} PARTITION OF {}{extra} {bound}{partition}",
            t.name.quoted, parent.quoted
        );
    }
    // A typed table takes its columns from its type; only their options are said.
    if let Some(of) = &t.of_type {
        let mut items: Vec<String> = t
            .columns
            .iter()
            .filter(|c| c.not_null || c.default.is_some())
            .map(|c| {
                let mut s = format!("{} WITH OPTIONS", c.quoted);
                if let Some(d) = c
                    .default
                    .as_ref()
                    .filter(|_| !apart.contains(&(t.oid, c.attnum)))
                {
                    s += &format!(" DEFAULT {d}");
                }
                if c.not_null {
                    s += " NOT NULL";
                }
                s
            })
            .collect();
        items.extend(checks);
        let body = if items.is_empty() {
            String::new()
        } else {
            format!(" (\n    {}\n)", items.join(",\n    "))
        };
        return format!(
            "CREATE {unlogged}TABLE {} OF {of}{body}{partition}",
            t.name.quoted
        );
    }
    // A table inheriting others lists only the columns it declares itself.
    let mut items: Vec<String> = t
        .columns
        .iter()
        .filter(|c| c.is_local || t.inherits.is_empty())
        .map(|c| {
            let mut s = format!("{} {}", c.quoted, c.type_name);
            if let Some(coll) = &c.collation {
                s += &format!(" COLLATE {coll}");
            }
            // A column a parent generates is generated in the child by inheritance; saying
            // it again is an error.
            let parent_generates = t.inherits.iter().any(|p| {
                cat.table(&p.schema, &p.name).is_some_and(|p| {
                    p.columns
                        .iter()
                        .any(|pc| pc.name == c.name && pc.generated.is_some())
                })
            });
            if let (Some(expr), false) = (&c.generated, parent_generates) {
                s += &format!(" GENERATED ALWAYS AS ({expr}) STORED");
            } else if let Some(d) = c
                .default
                .as_ref()
                .filter(|_| !apart.contains(&(t.oid, c.attnum)))
            {
                s += &format!(" DEFAULT {d}");
            }
            if c.not_null {
                s += " NOT NULL";
            }
            if let Some(kind) = c.identity {
                let seq = identities.get(&(&t.name, c.quoted.as_str()));
                let options = seq
                    .map(|s| format!(" (SEQUENCE NAME {} {})", s.name.quoted, sequence_options(s)))
                    .unwrap_or_default();
                s += &format!(
                    " GENERATED {} AS IDENTITY{options}",
                    if kind == 'a' { "ALWAYS" } else { "BY DEFAULT" }
                );
            }
            s
        })
        .collect();
    items.extend(checks);
    let inherits = if t.inherits.is_empty() {
        String::new()
    } else {
        format!(
            "\nINHERITS ({})",
            t.inherits
                .iter()
                .map(|p| p.quoted.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let attach = attach
        .map(|(parent, bound)| {
            format!(
                ";\nALTER TABLE ONLY {} ATTACH PARTITION {} {bound}",
                parent.quoted, t.name.quoted
            )
        })
        .unwrap_or_default();
    format!(
        "CREATE {unlogged}TABLE {} (\n    {}\n){inherits}{partition}{attach}",
        t.name.quoted,
        items.join(",\n    ")
    )
}

/// A partition whose columns are not its parent's in the parent's order (it was attached
/// rather than created as a partition), or that has a NOT NULL of its own: `PARTITION OF`
/// would change it, so it is created as a table and attached, as pg_dump does.
fn attached_apart(parent: &Table, t: &Table) -> bool {
    let order = |x: &Table| x.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    order(parent) != order(t)
        || t.columns.iter().any(|c| {
            c.not_null
                && parent
                    .columns
                    .iter()
                    .any(|pc| pc.name == c.name && !pc.not_null)
        })
}
