//! DDL for the target, generated from the catalog model in phases. Pre-data makes what rows
//! need: schemas, extensions, types, functions, sequences, tables (partitioned parents before
//! their partitions) with NOT NULL, CHECK and defaults. Post-data is split into units per
//! table, so the engine can build a table's keys and indexes as soon as it is loaded: keys
//! (and, for partitions, attaching them to the parent's), indexes, foreign keys, triggers;
//! then views, materialized views and sequence positions.

use std::collections::{HashMap, HashSet};

use crate::catalog::{Catalog, ConstraintKind, QualifiedName, Table, TypeDef};
use crate::conn::Connection;
use crate::error::Error;

/// What a post-data unit does, in the order units of one table run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    PreData,
    Keys,
    Indexes,
    ForeignKeys,
    Triggers,
    Views,
    SequenceValues,
}

/// One statement with the object it concerns (for messages and for scheduling).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub phase: Phase,
    /// The table the step belongs to (post-data), if any.
    pub table: Option<QualifiedName>,
    /// Tables that must be loaded first (a foreign key's referenced table).
    pub needs: Vec<QualifiedName>,
    /// What it creates, for messages: `table public.patients`.
    pub object: String,
    pub sql: String,
}

fn step(phase: Phase, table: Option<&QualifiedName>, object: String, sql: String) -> Step {
    Step {
        phase,
        table: table.cloned(),
        needs: Vec::new(),
        object,
        sql,
    }
}

fn literal(s: &str) -> String {
    crate::catalog::quote_literal(s)
}

/// Pre-data, in an order that satisfies dependencies.
pub fn pre_data(cat: &Catalog) -> Vec<Step> {
    let mut out = Vec::new();
    for s in &cat.schemas {
        if s.name != "public" {
            out.push(step(
                Phase::PreData,
                None,
                format!("schema {}", s.name),
                format!("CREATE SCHEMA {}", s.quoted),
            ));
        }
        if let Some(c) = &s.comment {
            if !(s.name == "public" && c == "standard public schema") {
                out.push(step(
                    Phase::PreData,
                    None,
                    format!("comment on schema {}", s.name),
                    format!("COMMENT ON SCHEMA {} IS {}", s.quoted, literal(c)),
                ));
            }
        }
    }
    for e in &cat.extensions {
        out.push(step(
            Phase::PreData,
            None,
            format!("extension {}", e.name),
            format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
                quote_ident_simple(&e.name),
                quote_ident_simple(&e.schema)
            ),
        ));
    }
    for t in types_in_dependency_order(cat) {
        let sql = match &t.def {
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
                for (name, def) in checks {
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
        };
        out.push(step(Phase::PreData, None, format!("type {}", t.name), sql));
        if let Some(c) = &t.comment {
            out.push(step(
                Phase::PreData,
                None,
                format!("comment on type {}", t.name),
                format!("COMMENT ON TYPE {} IS {}", t.name.quoted, literal(c)),
            ));
        }
    }
    for f in &cat.functions {
        out.push(step(
            Phase::PreData,
            None,
            format!("function {}({})", f.name, f.arguments),
            f.definition.clone(),
        ));
        if let Some(c) = &f.comment {
            out.push(step(
                Phase::PreData,
                None,
                format!("comment on function {}", f.name),
                format!(
                    "COMMENT ON FUNCTION {}({}) IS {}",
                    f.name.quoted,
                    f.arguments,
                    literal(c)
                ),
            ));
        }
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        out.push(step(
            Phase::PreData,
            None,
            format!("sequence {}", s.name),
            format!("CREATE SEQUENCE {} {}", s.name.quoted, sequence_options(s)),
        ));
    }
    // Partitioned parents before their partitions.
    let mut tables: Vec<&Table> = cat.tables.iter().collect();
    tables.sort_by_key(|t| (t.parent.is_some(), t.name.clone()));
    for t in &tables {
        out.push(step(
            Phase::PreData,
            Some(&t.name),
            format!("table {}", t.name),
            create_table(cat, t),
        ));
        if let Some(c) = &t.comment {
            out.push(step(
                Phase::PreData,
                Some(&t.name),
                format!("comment on table {}", t.name),
                format!("COMMENT ON TABLE {} IS {}", t.name.quoted, literal(c)),
            ));
        }
        for col in t
            .columns
            .iter()
            .filter(|c| c.is_local || t.parent.is_none())
        {
            if let Some(c) = &col.comment {
                out.push(step(
                    Phase::PreData,
                    Some(&t.name),
                    format!("comment on column {}.{}", t.name, col.name),
                    format!(
                        "COMMENT ON COLUMN {}.{} IS {}",
                        t.name.quoted,
                        col.quoted,
                        literal(c)
                    ),
                ));
            }
        }
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        if let Some((table, column)) = &s.owned_by {
            out.push(step(
                Phase::PreData,
                None,
                format!("sequence {} ownership", s.name),
                format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{column}",
                    s.name.quoted, table.quoted
                ),
            ));
        }
    }
    out
}

/// `quote_ident` for names the catalog gives raw (extensions and their schemas).
fn quote_ident_simple(s: &str) -> String {
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
fn sequence_options(s: &crate::catalog::Sequence) -> String {
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

fn types_in_dependency_order(cat: &Catalog) -> Vec<&crate::catalog::UserType> {
    let known: HashSet<u32> = cat.types.iter().map(|t| t.oid).collect();
    let mut done: HashSet<u32> = HashSet::new();
    let mut order = Vec::new();
    let mut pending: Vec<&crate::catalog::UserType> = cat.types.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|t| {
            if t.depends_on
                .iter()
                .all(|d| !known.contains(d) || done.contains(d))
            {
                done.insert(t.oid);
                order.push(*t);
                false
            } else {
                true
            }
        });
        if pending.len() == before {
            // A cycle cannot happen between these kinds; emit the rest as they are.
            order.append(&mut pending);
        }
    }
    order
}

fn create_table(cat: &Catalog, t: &Table) -> String {
    let unlogged = if t.unlogged { "UNLOGGED " } else { "" };
    let checks: Vec<String> = t
        .constraints
        .iter()
        .filter(|c| c.kind == ConstraintKind::Check && c.is_local && !c.inherited_from_parent)
        .map(|c| format!("CONSTRAINT {} {}", c.quoted, c.definition))
        .collect();
    if let (Some(parent), Some(bound)) = (&t.parent, &t.bound) {
        // Partitions take their columns from the parent; only their own checks are added.
        let extra = if checks.is_empty() {
            String::new()
        } else {
            format!(" ({})", checks.join(", "))
        };
        return format!(
            "CREATE {unlogged}TABLE {} PARTITION OF {}{extra} {bound}",
            t.name.quoted, parent.quoted
        );
    }
    let mut items: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("{} {}", c.quoted, c.type_name);
            if let Some(coll) = &c.collation {
                s += &format!(" COLLATE {coll}");
            }
            if let Some(expr) = &c.generated {
                s += &format!(" GENERATED ALWAYS AS ({expr}) STORED");
            } else if let Some(d) = &c.default {
                s += &format!(" DEFAULT {d}");
            }
            if c.not_null {
                s += " NOT NULL";
            }
            if let Some(kind) = c.identity {
                let seq = cat.sequences.iter().find(|s| {
                    s.identity
                        && s.owned_by
                            .as_ref()
                            .is_some_and(|(tbl, col)| tbl == &t.name && col == &c.quoted)
                });
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
    let partition = t
        .partitioning
        .as_ref()
        .map(|(_, key)| format!(" PARTITION BY {key}"))
        .unwrap_or_default();
    format!(
        "CREATE {unlogged}TABLE {} (\n    {}\n){partition}",
        t.name.quoted,
        items.join(",\n    ")
    )
}

/// Post-data units, in an order that works when run one after another; each names its table
/// and the tables it needs, so they can also be scheduled per table.
pub fn post_data(cat: &Catalog) -> Vec<Step> {
    let mut out = Vec::new();
    let tables: HashMap<&QualifiedName, &Table> = cat.tables.iter().map(|t| (&t.name, t)).collect();
    let mut ordered: Vec<&Table> = cat.tables.iter().collect();
    ordered.sort_by_key(|t| (t.parent.is_some(), t.name.clone()));
    let index_parent: HashMap<&QualifiedName, &QualifiedName> = cat
        .indexes
        .iter()
        .filter_map(|i| i.parent.as_ref().map(|p| (&i.name, p)))
        .collect();

    // Keys: primary key, unique and exclusion constraints, each on its own table (ONLY), a
    // partition's then attached to its parent's index.
    for t in &ordered {
        for c in t.constraints.iter().filter(|c| {
            matches!(
                c.kind,
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion
            )
        }) {
            let mut sql = format!(
                "ALTER TABLE ONLY {} ADD CONSTRAINT {} {}",
                t.name.quoted, c.quoted, c.definition
            );
            if let Some(parent_index) = c.index.as_ref().and_then(|i| index_parent.get(i)) {
                sql += &format!(
                    ";\nALTER INDEX {} ATTACH PARTITION {}",
                    parent_index.quoted,
                    c.index
                        .as_ref()
                        .map(|i| i.quoted.as_str())
                        .unwrap_or_default()
                );
            }
            out.push(step(
                Phase::Keys,
                Some(&t.name),
                format!("constraint {} on {}", c.name, t.name),
                sql,
            ));
        }
    }
    // Indexes not behind a constraint (parents' first: children attach to them).
    let view_names: HashSet<&QualifiedName> = cat.views.iter().map(|v| &v.name).collect();
    let mut indexes: Vec<&crate::catalog::Index> = cat
        .indexes
        .iter()
        .filter(|i| i.constraint.is_none() && !view_names.contains(&i.table))
        .collect();
    indexes.sort_by_key(|i| (i.parent.is_some(), i.name.clone()));
    for i in indexes {
        let mut sql = i.definition.clone();
        if let Some(p) = &i.parent {
            sql += &format!(
                ";\nALTER INDEX {} ATTACH PARTITION {}",
                p.quoted, i.name.quoted
            );
        }
        out.push(step(
            Phase::Indexes,
            Some(&i.table),
            format!("index {}", i.name),
            sql,
        ));
        if let Some(c) = &i.comment {
            out.push(step(
                Phase::Indexes,
                Some(&i.table),
                format!("comment on index {}", i.name),
                format!("COMMENT ON INDEX {} IS {}", i.name.quoted, literal(c)),
            ));
        }
    }
    // Foreign keys declared on each table (a partitioned parent's reach its partitions).
    for t in &ordered {
        for c in t
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::ForeignKey && !c.inherited_from_parent)
        {
            let only = if t.is_partitioned() { "" } else { "ONLY " };
            let mut s = step(
                Phase::ForeignKeys,
                Some(&t.name),
                format!("foreign key {} on {}", c.name, t.name),
                format!(
                    "ALTER TABLE {only}{} ADD CONSTRAINT {} {}",
                    t.name.quoted, c.quoted, c.definition
                ),
            );
            if let Some((referenced, _)) = &c.references {
                if tables.contains_key(referenced) {
                    s.needs.push(referenced.clone());
                }
            }
            out.push(s);
        }
    }
    for tr in &cat.triggers {
        out.push(step(
            Phase::Triggers,
            Some(&tr.table),
            format!("trigger {} on {}", tr.name, tr.table),
            tr.definition.clone(),
        ));
    }
    for v in &cat.views {
        let def = v.definition.trim_end().trim_end_matches(';');
        let sql = if v.materialized {
            format!(
                "CREATE MATERIALIZED VIEW {} AS\n{def}\nWITH {}",
                v.name.quoted,
                if v.populated { "DATA" } else { "NO DATA" }
            )
        } else {
            format!("CREATE VIEW {} AS\n{def}", v.name.quoted)
        };
        out.push(step(
            Phase::Views,
            None,
            format!(
                "{} {}",
                if v.materialized {
                    "materialized view"
                } else {
                    "view"
                },
                v.name
            ),
            sql,
        ));
        if let Some(c) = &v.comment {
            let kind = if v.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            out.push(step(
                Phase::Views,
                None,
                format!("comment on {}", v.name),
                format!("COMMENT ON {kind} {} IS {}", v.name.quoted, literal(c)),
            ));
        }
        for i in cat.indexes.iter().filter(|i| i.table == v.name) {
            out.push(step(
                Phase::Views,
                None,
                format!("index {}", i.name),
                i.definition.clone(),
            ));
        }
    }
    for s in &cat.sequences {
        if let Some((value, called)) = s.last_value {
            out.push(step(
                Phase::SequenceValues,
                s.owned_by.as_ref().map(|(t, _)| t),
                format!("sequence {} value", s.name),
                format!(
                    "SELECT pg_catalog.setval({}, {value}, {called})",
                    literal(&s.name.quoted)
                ),
            ));
        }
    }
    out
}

/// Runs steps in order; an error names the object. Function bodies are not checked while
/// creating, as pg_dump does, because they may refer to tables created later.
pub async fn apply(conn: &mut Connection, steps: &[Step]) -> Result<(), Error> {
    conn.execute("SET check_function_bodies = false; SET client_min_messages = warning")
        .await?;
    for s in steps {
        conn.execute(&s.sql)
            .await
            .map_err(|e| e.context(format!("creating {} on the target", s.object)))?;
    }
    Ok(())
}
