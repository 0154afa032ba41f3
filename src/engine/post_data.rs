//! Post-data on the target: each step once, in its own transaction with its run-state record.
//! A table's keys and indexes as soon as it is loaded; a foreign key once both its ends are;
//! triggers only on tables that loaded completely (a trigger live during a later `--resume`
//! would fire on the reloaded rows); views once every unit is in.

use super::shared::{lock, Shared};
use super::state;
use crate::catalog::QualifiedName;
use crate::conn::Connection;
use crate::error::Error;
use crate::schema::{Phase, Step};

pub fn step_key(s: &Step) -> String {
    format!("{:?}:{}", s.phase, s.object)
}

/// Runs `sql` and records `key` as done, in one transaction.
async fn apply(target: &mut Connection, s: &Step, key: &str) -> Result<(), Error> {
    let res = target
        .execute(&format!(
            "BEGIN; SET LOCAL check_function_bodies = false; {}; {}; COMMIT",
            s.sql,
            state::step_done_sql(key)
        ))
        .await
        .map_err(|e| e.context(format!("creating {} on the target", s.object)));
    if res.is_err() && target.transaction_status() != b'I' {
        let _ = target.execute("ROLLBACK").await;
    }
    res
}

/// Whether a step (or a large object) is recorded as done by this run or an earlier one.
pub fn step_recorded(shared: &Shared, key: &str) -> bool {
    lock(&shared.steps_done).contains(key)
}

/// A post-data step, once.
pub async fn run_step(shared: &Shared, target: &mut Connection, s: &Step) -> Result<(), Error> {
    let key = step_key(s);
    if lock(&shared.steps_done).contains(&key) {
        return Ok(());
    }
    apply(target, s, &key).await?;
    lock(&shared.steps_done).insert(key);
    Ok(())
}

/// A loaded table's keys and indexes.
pub async fn table_post_data(
    shared: &Shared,
    target: &mut Connection,
    table: &QualifiedName,
) -> Result<(), Error> {
    for s in shared.post.iter().filter(|s| {
        s.table.as_ref() == Some(table) && matches!(s.phase, Phase::Keys | Phase::Indexes)
    }) {
        run_step(shared, target, s).await?;
    }
    Ok(())
}

/// Foreign keys whose two ends are loaded, each run once by whoever claims it first. A key
/// that fails is released (not marked done) and its error returned.
pub async fn foreign_keys_ready(shared: &Shared, target: &mut Connection) -> Result<(), Error> {
    loop {
        let next = {
            let mut done = lock(&shared.steps_done);
            let ready = shared
                .post
                .iter()
                .find(|s| {
                    s.phase == Phase::ForeignKeys
                        && !done.contains(&step_key(s))
                        && s.table.as_ref().is_some_and(|t| shared.is_loaded(t))
                        && s.needs.iter().all(|n| shared.is_loaded(n))
                })
                .cloned();
            if let Some(s) = &ready {
                done.insert(step_key(s));
            }
            ready
        };
        let Some(s) = next else { return Ok(()) };
        let key = step_key(&s);
        if let Err(e) = apply(target, &s, &key).await {
            lock(&shared.steps_done).remove(&key);
            return Err(e);
        }
    }
}

/// Tables whose every unit is in but whose keys and indexes are not built (the worker's
/// target connection broke while building them): built now.
pub async fn finish_loaded_tables(shared: &Shared, target: &mut Connection) -> Result<(), Error> {
    let failed = shared.failed_tables();
    let todo: Vec<QualifiedName> = {
        let pending = lock(&shared.pending);
        shared
            .catalog
            .data_tables()
            .map(|t| &t.name)
            .filter(|t| pending.get(*t).is_some_and(|n| *n == 0) && !failed.contains(*t))
            .filter(|t| !lock(&shared.loaded).contains(*t))
            .cloned()
            .collect()
    };
    for t in todo {
        table_post_data(shared, target, &t).await?;
        lock(&shared.loaded).insert(t);
    }
    Ok(())
}

/// The last post-data: triggers of fully loaded tables, then (when no unit failed) views,
/// then sequence positions. A step that fails is reported and the others still run.
pub async fn final_post_data(shared: &Shared, target: &mut Connection) -> Result<(), Error> {
    let any_failed = !lock(&shared.failed).is_empty();
    for s in shared.post.iter() {
        let go = match s.phase {
            // A table's triggers once its rows are in; a view's (INSTEAD OF) at once.
            Phase::Triggers | Phase::Security => s.table.as_ref().is_some_and(|t| {
                shared.is_loaded(t) || shared.catalog.table(&t.schema, &t.name).is_none()
            }),
            Phase::Views => !any_failed,
            Phase::SequenceValues => true,
            _ => false,
        };
        if !go {
            continue;
        }
        if let Err(e) = run_step(shared, target, s).await {
            if e.is_retryable() {
                return Err(e);
            }
            shared.fail(s.table.as_ref(), &s.object, &e, None);
        }
    }
    Ok(())
}
