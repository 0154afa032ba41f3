//! `--resume` does not trust checkpoints blindly. Before a resumed run skips a unit an earlier
//! run committed, it checks that the unit's table still exists on the target and holds at least
//! the rows recorded for it, and, for a table split into chunks that is only partly done, that
//! the chunks already copied still hold the rows they held (a row inserted, deleted or moved
//! there since would otherwise be lost or copied twice). What does not match is redone whole.

use std::collections::{HashMap, HashSet};

use super::state::{parse_count, PriorRun};
use super::units::Unit;
use crate::catalog::{quote_ident, quote_literal, Catalog, ConstraintKind, QualifiedName};
use crate::conn::Connection;
use crate::error::Error;
use crate::schema::{Phase, Step};

/// A table the resumed run copies again, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Redo {
    pub table: QualifiedName,
    pub reason: String,
    /// The table is gone from the target and must be created again.
    pub missing: bool,
}

/// Counts of `SELECT count(*)` per name, a few hundred tables per query.
async fn counts(
    conn: &mut Connection,
    queries: &[(String, String)],
) -> Result<HashMap<String, u64>, Error> {
    let mut out = HashMap::new();
    for batch in queries.chunks(200) {
        let sql = batch
            .iter()
            .map(|(key, from)| format!("SELECT {}, count(*) FROM {from}", quote_literal(key)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for r in conn.query_text(&sql).await? {
            let key = r.first().cloned().flatten().unwrap_or_default();
            let n = parse_count(r.get(1).and_then(|v| v.as_deref()), "rows on resume")?;
            out.insert(key, n);
        }
    }
    Ok(out)
}

/// Finds the tables to redo. `units` are this run's planned units; `source` reads in the run's
/// snapshot.
pub async fn check(
    source: &mut Connection,
    target: &mut Connection,
    cat: &Catalog,
    prior: &PriorRun,
    units: &[Unit],
) -> Result<Vec<Redo>, Error> {
    let mut redo = Vec::new();
    let present: HashSet<String> = target
        .query_text(&format!(
            "SELECT q FROM unnest(ARRAY[{}]::text[]) q WHERE to_regclass(q) IS NOT NULL",
            if cat.tables.is_empty() {
                "NULL".to_string()
            } else {
                cat.tables
                    .iter()
                    .map(|t| quote_literal(&t.name.quoted))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    let mut done_rows: HashMap<&QualifiedName, u64> = HashMap::new();
    for u in units {
        if let Some(rows) = prior.done_units.get(&u.key()) {
            *done_rows.entry(&u.table).or_default() += rows;
        }
    }
    for t in &cat.tables {
        if !present.contains(&t.name.quoted) {
            redo.push(Redo {
                table: t.name.clone(),
                reason: "it is missing on the target".into(),
                missing: true,
            });
        }
    }
    let to_count: Vec<(String, String)> = done_rows
        .keys()
        .filter(|t| present.contains(&t.quoted))
        .map(|t| (t.quoted.clone(), format!("ONLY {}", t.quoted)))
        .collect();
    let on_target = counts(target, &to_count).await?;
    for (t, rows) in &done_rows {
        let Some(&n) = on_target.get(&t.quoted) else {
            continue;
        };
        if n < *rows {
            redo.push(Redo {
                table: (*t).clone(),
                reason: format!(
                    "the target holds {n} rows, fewer than the {rows} the earlier run committed"
                ),
                missing: false,
            });
        }
    }
    // Split tables partly done: the chunks copied must still hold what they held.
    let partly: Vec<&Unit> = units
        .iter()
        .filter(|u| u.chunk.is_some() && prior.done_units.contains_key(&u.key()))
        .filter(|u| {
            units
                .iter()
                .any(|o| o.table == u.table && !prior.done_units.contains_key(&o.key()))
        })
        .filter(|u| !redo.iter().any(|r| r.table == u.table))
        .collect();
    let queries: Vec<(String, String)> = partly
        .iter()
        .map(|u| (u.key(), format!("ONLY {}{}", u.table.quoted, u.predicate())))
        .collect();
    let on_source = counts(source, &queries).await?;
    let mut moved: Vec<(&QualifiedName, String)> = Vec::new();
    for u in partly {
        let (now, then) = (on_source.get(&u.key()), prior.done_units.get(&u.key()));
        if now != then && !moved.iter().any(|(t, _)| *t == &u.table) {
            moved.push((
                &u.table,
                format!(
                    "rows were added to, removed from or moved between its chunks already copied since the earlier run (chunk {}: {} rows copied, {} there now)",
                    u.key(),
                    then.copied().unwrap_or(0),
                    now.copied().unwrap_or(0)
                ),
            ));
        }
    }
    for (t, reason) in moved {
        redo.push(Redo {
            table: t.clone(),
            reason,
            missing: false,
        });
    }
    Ok(redo)
}

/// What redoing tables takes on the target: statements to run (recreate missing tables, drop
/// the foreign keys that point at redone tables and the triggers on them), and the run-state
/// records to forget (units, and the steps that must run again).
#[derive(Debug, Default, PartialEq)]
pub struct RedoPlan {
    pub sql: Vec<String>,
    pub units: Vec<String>,
    pub steps: Vec<String>,
}

pub fn plan(
    cat: &Catalog,
    post: &[Step],
    units: &[Unit],
    redo: &[Redo],
    step_key: impl Fn(&Step) -> String,
) -> RedoPlan {
    let mut out = RedoPlan::default();
    let tables: HashSet<&QualifiedName> = redo.iter().map(|r| &r.table).collect();
    // A foreign key to a partitioned parent also forbids emptying its partitions.
    let referenced: HashSet<&QualifiedName> = cat
        .tables
        .iter()
        .filter(|t| tables.contains(&t.name))
        .flat_map(|t| std::iter::once(&t.name).chain(cat.ancestors(t).into_iter().map(|a| &a.name)))
        .collect();
    let missing: HashSet<&QualifiedName> = redo
        .iter()
        .filter(|r| r.missing)
        .map(|r| &r.table)
        .collect();
    // Missing tables are created again with what went with them (pre-data order).
    out.sql.extend(
        crate::schema::recreate(cat, &missing)
            .into_iter()
            .map(|s| s.sql),
    );
    // Foreign keys that reference a redone table: its rows are replaced, so they go and come
    // back once it is loaded again.
    for t in &cat.tables {
        for c in t.constraints.iter().filter(|c| {
            c.kind == ConstraintKind::ForeignKey
                && c.is_local
                && !c.inherited_from_parent
                && c.references
                    .as_ref()
                    .is_some_and(|(r, _)| referenced.contains(r))
                && !missing.contains(&t.name)
        }) {
            out.sql.push(format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                t.name.quoted, c.quoted
            ));
        }
    }
    // Triggers would fire on the reloaded rows.
    for tr in cat
        .triggers
        .iter()
        .filter(|tr| tables.contains(&tr.table) && !missing.contains(&tr.table))
    {
        out.sql.push(format!(
            "DROP TRIGGER IF EXISTS {} ON {}",
            quote_ident(&tr.name),
            tr.table.quoted
        ));
    }
    // Row-level security (FORCE would apply policies to the load), policies and rules come
    // off and back once the rows are in.
    for st in cat
        .settings
        .iter()
        .filter(|st| tables.contains(&st.table) && !missing.contains(&st.table))
    {
        if let Some(undo) = &st.undo {
            out.sql.push(undo.clone());
        }
    }
    for s in post {
        let own = s.table.as_ref().is_some_and(|t| tables.contains(t));
        let again = match s.phase {
            // A missing table's keys and indexes went with it.
            Phase::Keys | Phase::Indexes => s.table.as_ref().is_some_and(|t| missing.contains(t)),
            Phase::ForeignKeys => own || s.needs.iter().any(|n| referenced.contains(n)),
            Phase::Triggers | Phase::Security => own,
            Phase::SequenceValues => s.table.as_ref().is_some_and(|t| missing.contains(t)),
            _ => false,
        };
        if again {
            out.steps.push(step_key(s));
        }
    }
    out.units = units
        .iter()
        .filter(|u| tables.contains(&u.table))
        .map(Unit::key)
        .collect();
    out
}
