//! DDL for the target, generated from the catalog model in phases. Pre-data makes what rows
//! need: schemas, extensions, types, functions, sequences, tables (partitioned parents before
//! their partitions) with NOT NULL, CHECK and defaults. Post-data is split into units per
//! table, so the engine can build a table's keys and indexes as soon as it is loaded: keys
//! (and, for partitions, attaching them to the parent's), indexes, foreign keys, triggers;
//! then views, materialized views and sequence positions.

use std::collections::{HashMap, HashSet};

mod ddl;
mod order;
mod post_data;

use ddl::{create_table, create_type, quote_ident_simple, sequence_options};
pub use post_data::post_data;

use crate::catalog::{Catalog, ObjRef, QualifiedName, SettingStage, Table};
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
    /// Row-level security, policies and rules: after the rows, which they would act on.
    Security,
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
    /// Rows do not need it (a function, a view, a default calling a function): if it fails,
    /// the failure is reported and the schema goes on without it.
    pub tolerant: bool,
}

impl Step {
    fn tolerant(mut self) -> Step {
        self.tolerant = true;
        self
    }
}

fn step(phase: Phase, table: Option<&QualifiedName>, object: String, sql: String) -> Step {
    Step {
        phase,
        table: table.cloned(),
        needs: Vec::new(),
        object,
        sql,
        tolerant: false,
    }
}

fn literal(s: &str) -> String {
    crate::catalog::quote_literal(s)
}

/// Ranks of pre-data kinds: among objects whose needs are met, lower ranks are created first
/// (as pg_dump's type priorities).
mod rank {
    use crate::catalog::ObjectKind;

    pub const SCHEMA: u8 = 0;
    pub const EXTENSION: u8 = 1;
    pub const TYPE: u8 = 3;
    pub const FUNCTION: u8 = 5;
    pub const SEQUENCE: u8 = 20;
    pub const TABLE: u8 = 21;
    pub const DEFAULT: u8 = 22;
    pub const VIEW: u8 = 23;
    pub const MATVIEW: u8 = 24;

    pub fn of(kind: ObjectKind) -> u8 {
        match kind {
            ObjectKind::Collation => 2,
            ObjectKind::Cast => 4,
            ObjectKind::Operator => 6,
            ObjectKind::OperatorFamily => 7,
            ObjectKind::OperatorClass => 8,
            ObjectKind::Conversion => 9,
            ObjectKind::TextSearchDictionary => 10,
            ObjectKind::TextSearchConfiguration => 11,
        }
    }
}

/// Pre-data objects with their statements, and the edges pg_depend does not hold.
struct Objects {
    items: Vec<order::Item>,
    steps: Vec<Vec<Step>>,
    extra: Vec<(usize, usize)>,
}

impl Objects {
    fn add(&mut self, key: Option<ObjRef>, rank: u8, name: String, steps: Vec<Step>) -> usize {
        self.items.push(order::Item { key, rank, name });
        self.steps.push(steps);
        self.items.len() - 1
    }
}

/// Column defaults set apart from their table, after it: those that call a function we
/// create (which may itself need the table, as a function returning the table's rows).
fn separate_defaults(cat: &Catalog) -> HashSet<(u32, i16)> {
    let functions: HashSet<u32> = cat.functions.iter().map(|f| f.oid).collect();
    cat.deps
        .iter()
        .filter_map(|d| match (d.from, d.to) {
            (ObjRef::Default(t, n), ObjRef::Function(f)) if functions.contains(&f) => Some((t, n)),
            _ => None,
        })
        .collect()
}

/// Pre-data: every object rows need and every view, each after what it needs.
pub fn pre_data(cat: &Catalog) -> Vec<Step> {
    ordered_pre_data(cat)
        .0
        .into_iter()
        .flat_map(|(_, steps)| steps)
        .collect()
}

/// What `--resume` creates again when tables went missing on the target: those tables, the
/// sequences their columns own, and every object that needs them, directly or through
/// another (a `DROP TABLE ... CASCADE` took those too), in pre-data order.
pub fn recreate(cat: &Catalog, missing: &HashSet<&QualifiedName>) -> Vec<Step> {
    let mut gone: HashSet<ObjRef> = cat
        .tables
        .iter()
        .filter(|t| missing.contains(&t.name))
        .map(|t| ObjRef::Relation(t.oid))
        .collect();
    let owned: Vec<&crate::catalog::Sequence> = cat
        .sequences
        .iter()
        .filter(|s| {
            !s.identity
                && s.owned_by
                    .as_ref()
                    .is_some_and(|(t, _)| missing.contains(t))
        })
        .collect();
    gone.extend(owned.iter().map(|s| ObjRef::Relation(s.oid)));
    // Partitions of a missing parent went with it.
    for t in &cat.tables {
        if t.parent.as_ref().is_some_and(|p| missing.contains(p)) {
            gone.insert(ObjRef::Relation(t.oid));
        }
    }
    let relation_of = |r: ObjRef| match r {
        ObjRef::Default(t, _) => ObjRef::Relation(t),
        other => other,
    };
    // A table using a dropped one (a column of its row type) loses the column, not itself.
    let tables: HashSet<ObjRef> = cat.tables.iter().map(|t| ObjRef::Relation(t.oid)).collect();
    loop {
        let before = gone.len();
        for d in &cat.deps {
            if (gone.contains(&relation_of(d.to)) || gone.contains(&d.to))
                && !tables.contains(&relation_of(d.from))
            {
                gone.insert(d.from);
            }
        }
        if gone.len() == before {
            break;
        }
    }
    let ownership: HashSet<String> = owned
        .iter()
        .map(|s| format!("sequence {} ownership", s.name))
        .collect();
    let mut out = Vec::new();
    for (key, steps) in ordered_pre_data(cat).0 {
        let take = key.is_some_and(|k| gone.contains(&k));
        out.extend(
            steps
                .into_iter()
                .filter(|s| take || ownership.contains(&s.object)),
        );
    }
    out
}

/// Pre-data steps in order, the materialized views in their creation order (their refresh
/// follows it), and the objects placed out of order to break a dependency cycle.
type Keyed = Vec<(Option<ObjRef>, Vec<Step>)>;

fn ordered_pre_data(cat: &Catalog) -> (Keyed, Vec<QualifiedName>, Vec<String>) {
    let mut o = Objects {
        items: Vec::new(),
        steps: Vec::new(),
        extra: Vec::new(),
    };
    for s in &cat.schemas {
        let mut steps = Vec::new();
        if s.name != "public" {
            steps.push(step(
                Phase::PreData,
                None,
                format!("schema {}", s.name),
                format!("CREATE SCHEMA {}", s.quoted),
            ));
        }
        if let Some(c) = &s.comment {
            if !(s.name == "public" && c == "standard public schema") {
                steps.push(step(
                    Phase::PreData,
                    None,
                    format!("comment on schema {}", s.name),
                    format!("COMMENT ON SCHEMA {} IS {}", s.quoted, literal(c)),
                ));
            }
        }
        o.add(None, rank::SCHEMA, s.name.clone(), steps);
    }
    for e in &cat.extensions {
        let sql = format!(
            "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
            quote_ident_simple(&e.name),
            quote_ident_simple(&e.schema)
        );
        let steps = vec![step(
            Phase::PreData,
            None,
            format!("extension {}", e.name),
            sql,
        )];
        o.add(None, rank::EXTENSION, e.name.clone(), steps);
    }
    let mut type_index: HashMap<u32, usize> = HashMap::new();
    for t in &cat.types {
        let mut steps = vec![step(
            Phase::PreData,
            None,
            format!("type {}", t.name),
            create_type(t),
        )];
        if let Some(c) = &t.comment {
            steps.push(step(
                Phase::PreData,
                None,
                format!("comment on type {}", t.name),
                format!("COMMENT ON TYPE {} IS {}", t.name.quoted, literal(c)),
            ));
        }
        for c in &t.attribute_comments {
            steps.push(step(
                Phase::PreData,
                None,
                format!("comment on an attribute of type {}", t.name),
                c.clone(),
            ));
        }
        let i = o.add(
            Some(ObjRef::Type(t.oid)),
            rank::TYPE,
            t.name.to_string(),
            steps,
        );
        type_index.insert(t.oid, i);
    }
    for t in &cat.types {
        for d in &t.depends_on {
            if let (Some(&from), Some(&to)) = (type_index.get(&t.oid), type_index.get(d)) {
                o.extra.push((from, to));
            }
        }
    }
    for f in &cat.functions {
        let mut steps = vec![step(
            Phase::PreData,
            None,
            format!(
                "{} {}({})",
                if f.aggregate { "aggregate" } else { "function" },
                f.name,
                f.arguments
            ),
            f.definition.clone(),
        )
        .tolerant()];
        if let Some(c) = &f.comment {
            steps.push(
                step(
                    Phase::PreData,
                    None,
                    format!("comment on function {}", f.name),
                    format!(
                        "COMMENT ON {} {}({}) IS {}",
                        if f.aggregate { "AGGREGATE" } else { "FUNCTION" },
                        f.name.quoted,
                        f.arguments,
                        literal(c)
                    ),
                )
                .tolerant(),
            );
        }
        o.add(
            Some(ObjRef::Function(f.oid)),
            rank::FUNCTION,
            format!("{}({})", f.name, f.arguments),
            steps,
        );
    }
    for obj in &cat.objects {
        let steps = vec![step(
            Phase::PreData,
            None,
            format!("{} {}", obj.kind.label(), obj.name),
            obj.sql.clone(),
        )];
        o.add(Some(obj.key()), rank::of(obj.kind), obj.name.clone(), steps);
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        let mut steps = vec![step(
            Phase::PreData,
            None,
            format!("sequence {}", s.name),
            format!(
                "CREATE {}SEQUENCE {} {}",
                if s.unlogged { "UNLOGGED " } else { "" },
                s.name.quoted,
                sequence_options(s)
            ),
        )];
        if let Some(c) = &s.comment {
            steps.push(step(
                Phase::PreData,
                None,
                format!("comment on sequence {}", s.name),
                format!("COMMENT ON SEQUENCE {} IS {}", s.name.quoted, literal(c)),
            ));
        }
        o.add(
            Some(ObjRef::Relation(s.oid)),
            rank::SEQUENCE,
            s.name.to_string(),
            steps,
        );
    }
    let apart = separate_defaults(cat);
    let identities = ddl::identity_sequences(cat);
    let mut table_index: HashMap<&QualifiedName, usize> = HashMap::new();
    for t in &cat.tables {
        let mut steps = vec![step(
            Phase::PreData,
            Some(&t.name),
            format!("table {}", t.name),
            create_table(cat, t, &apart, &identities),
        )];
        if let Some(c) = &t.comment {
            steps.push(step(
                Phase::PreData,
                Some(&t.name),
                format!("comment on table {}", t.name),
                format!("COMMENT ON TABLE {} IS {}", t.name.quoted, literal(c)),
            ));
        }
        let parent = t
            .parent
            .as_ref()
            .and_then(|p| cat.table(&p.schema, &p.name));
        for col in &t.columns {
            if let Some(c) = col
                .comment
                .as_ref()
                .filter(|_| col.is_local || t.parent.is_none())
            {
                steps.push(step(
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
            // A partition takes its parent's defaults when it is created, an inheriting table
            // those of its parents for the columns it does not declare: one of its own is set
            // on it, as is a NOT NULL its parents lack.
            let from: Vec<&Table> = parent
                .into_iter()
                .chain(
                    t.inherits
                        .iter()
                        .filter(|_| !col.is_local)
                        .filter_map(|p| cat.table(&p.schema, &p.name)),
                )
                .collect();
            let theirs = || {
                from.iter()
                    .filter_map(|p| p.columns.iter().find(|pc| pc.name == col.name))
            };
            if let (false, Some(d)) = (from.is_empty(), &col.default) {
                let inherited = theirs().find_map(|pc| pc.default.as_ref());
                if Some(d) != inherited && !apart.contains(&(t.oid, col.attnum)) {
                    steps.push(set_default(t, col, d));
                }
            }
            if !t.inherits.is_empty()
                && !col.is_local
                && col.not_null
                && !theirs().any(|pc| pc.not_null)
            {
                steps.push(step(
                    Phase::PreData,
                    Some(&t.name),
                    format!("not null of {}.{}", t.name, col.name),
                    format!(
                        "ALTER TABLE ONLY {} ALTER COLUMN {} SET NOT NULL",
                        t.name.quoted, col.quoted
                    ),
                ));
            }
        }
        for st in cat
            .settings
            .iter()
            .filter(|st| st.table == t.name && st.stage == SettingStage::WithTable)
        {
            steps.push(step(
                Phase::PreData,
                Some(&t.name),
                st.object.clone(),
                st.sql.clone(),
            ));
        }
        let i = o.add(
            Some(ObjRef::Relation(t.oid)),
            rank::TABLE,
            t.name.to_string(),
            steps,
        );
        table_index.insert(&t.name, i);
    }
    for t in &cat.tables {
        if let (Some(&child), Some(&parent)) = (
            table_index.get(&t.name),
            t.parent.as_ref().and_then(|p| table_index.get(p)),
        ) {
            o.extra.push((child, parent));
        }
        for col in &t.columns {
            if let (Some(d), true) = (&col.default, apart.contains(&(t.oid, col.attnum))) {
                let i = o.add(
                    Some(ObjRef::Default(t.oid, col.attnum)),
                    rank::DEFAULT,
                    format!("{}.{}", t.name, col.name),
                    vec![set_default(t, col, d).tolerant()],
                );
                if let Some(&table) = table_index.get(&t.name) {
                    o.extra.push((i, table));
                }
            }
        }
    }
    for v in &cat.views {
        let def = v.definition.trim_end().trim_end_matches(';');
        let with = v
            .options
            .as_ref()
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        let (kind, rank, sql) = if v.materialized {
            (
                "materialized view",
                rank::MATVIEW,
                format!(
                    "CREATE MATERIALIZED VIEW {}{with} AS\n{def}\nWITH NO DATA",
                    v.name.quoted
                ),
            )
        } else {
            let check = v
                .check_option
                .as_ref()
                .map(|c| format!("\nWITH {c} CHECK OPTION"))
                .unwrap_or_default();
            (
                "view",
                rank::VIEW,
                format!("CREATE VIEW {}{with} AS\n{def}{check}", v.name.quoted),
            )
        };
        let mut steps =
            vec![step(Phase::PreData, None, format!("{kind} {}", v.name), sql).tolerant()];
        for c in &v.column_settings {
            steps.push(
                step(
                    Phase::PreData,
                    None,
                    format!("column defaults and comments of {}", v.name),
                    c.clone(),
                )
                .tolerant(),
            );
        }
        if let Some(c) = &v.comment {
            steps.push(
                step(
                    Phase::PreData,
                    None,
                    format!("comment on {}", v.name),
                    format!(
                        "COMMENT ON {} {} IS {}",
                        kind.to_uppercase(),
                        v.name.quoted,
                        literal(c)
                    ),
                )
                .tolerant(),
            );
        }
        o.add(
            Some(ObjRef::Relation(v.oid)),
            rank,
            v.name.to_string(),
            steps,
        );
    }
    // A default that is not set apart is part of its table.
    let deps: Vec<crate::catalog::Dep> = cat
        .deps
        .iter()
        .map(|d| {
            let inline = |r: ObjRef| match r {
                ObjRef::Default(t, n) if !apart.contains(&(t, n)) => ObjRef::Relation(t),
                other => other,
            };
            crate::catalog::Dep {
                from: inline(d.from),
                to: inline(d.to),
            }
        })
        .collect();
    // What pg_depend does not link: an operator class's members, its family.
    let by_key: HashMap<ObjRef, usize> = o
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| it.key.map(|k| (k, i)))
        .collect();
    for obj in &cat.objects {
        if let Some(&from) = by_key.get(&obj.key()) {
            for need in &obj.needs {
                if let Some(&to) = by_key.get(need) {
                    o.extra.push((from, to));
                }
            }
        }
    }
    let (order, forced) = order::sort(&o.items, &deps, &o.extra);
    let matviews: HashMap<u32, &QualifiedName> = cat
        .views
        .iter()
        .filter(|v| v.materialized)
        .map(|v| (v.oid, &v.name))
        .collect();
    let mut out: Keyed = Vec::new();
    let mut matview_order = Vec::new();
    for &i in &order {
        if let Some(ObjRef::Relation(oid)) = o.items[i].key {
            if let Some(name) = matviews.get(&oid) {
                matview_order.push((*name).clone());
            }
        }
        out.push((o.items[i].key, std::mem::take(&mut o.steps[i])));
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        if let Some((table, column)) = &s.owned_by {
            out.push((
                None,
                vec![step(
                    Phase::PreData,
                    None,
                    format!("sequence {} ownership", s.name),
                    format!(
                        "ALTER SEQUENCE {} OWNED BY {}.{column}",
                        s.name.quoted, table.quoted
                    ),
                )],
            ));
        }
    }
    let forced = forced.iter().map(|&i| o.items[i].name.clone()).collect();
    (out, matview_order, forced)
}

fn set_default(t: &Table, col: &crate::catalog::Column, default: &str) -> Step {
    step(
        Phase::PreData,
        Some(&t.name),
        format!("default of {}.{}", t.name, col.name),
        format!(
            "ALTER TABLE ONLY {} ALTER COLUMN {} SET DEFAULT {default}",
            t.name.quoted, col.quoted
        ),
    )
}

/// Runs steps in order; an error names the object. Function bodies are not checked while
/// creating, as pg_dump does, because they may refer to tables created later. A tolerant step
/// runs under a savepoint (sent in the same message, so it costs no round trip): if it fails,
/// it is undone, the rest goes on, and it is returned with its error. Any other failure ends
/// the run of steps.
///
/// In a transaction, all the steps first go to the server in one message under a savepoint:
/// one round trip for the lot. Should any of them fail, the savepoint undoes the lot and they
/// run again one message each, so that the error names its object exactly and tolerant steps
/// are left out one by one.
pub async fn apply(conn: &mut Connection, steps: &[Step]) -> Result<Vec<(String, Error)>, Error> {
    // Definitions are fully qualified (read with an empty search path); creating them with
    // one too keeps a role's own search path from changing what they mean.
    let local = conn.transaction_status() != b'I';
    let setup = format!(
        "SET check_function_bodies = false; SET client_min_messages = warning; \
         SELECT pg_catalog.set_config('search_path', '', {local})"
    );
    if local && steps.len() > 1 {
        let mut sql = format!("{setup};\nSAVEPOINT privaci_batch;\n");
        for s in steps {
            sql += &s.sql;
            sql += "\n;\n";
        }
        sql += "RELEASE SAVEPOINT privaci_batch";
        match conn.execute(&sql).await {
            Ok(()) => return Ok(Vec::new()),
            Err(e) if e.is_retryable() || conn.transaction_status() != b'E' => {
                return Err(e.context("creating the schema on the target"))
            }
            Err(_) => {
                conn.execute("ROLLBACK TO SAVEPOINT privaci_batch; RELEASE SAVEPOINT privaci_batch")
                    .await?
            }
        }
    } else {
        conn.execute(&setup).await?;
    }
    let mut skipped = Vec::new();
    for s in steps {
        if !s.tolerant {
            conn.execute(&s.sql)
                .await
                .map_err(|e| e.context(format!("creating {} on the target", s.object)))?;
            continue;
        }
        // Outside a transaction each statement commits on its own: nothing to undo.
        let in_transaction = conn.transaction_status() != b'I';
        let sql = if in_transaction {
            format!(
                "SAVEPOINT privaci_object;\n{}\n;\nRELEASE SAVEPOINT privaci_object",
                s.sql
            )
        } else {
            s.sql.clone()
        };
        if let Err(e) = conn.execute(&sql).await {
            if e.is_retryable() || (in_transaction && conn.transaction_status() != b'E') {
                return Err(e.context(format!("creating {} on the target", s.object)));
            }
            if in_transaction {
                conn.execute(
                    "ROLLBACK TO SAVEPOINT privaci_object; RELEASE SAVEPOINT privaci_object",
                )
                .await?;
            }
            skipped.push((
                s.object.clone(),
                e.context(format!("creating {} on the target", s.object)),
            ));
        }
    }
    Ok(skipped)
}

/// Objects placed before something they need, to break a dependency cycle.
pub fn cycle_breaks(cat: &Catalog) -> Vec<String> {
    ordered_pre_data(cat).2
}
