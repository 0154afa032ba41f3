//! Post-data on the target: each step once, in its own transaction with its run-state record.
//! A table's keys and indexes as soon as it is loaded; a foreign key once both its ends are;
//! triggers only on tables that loaded completely (a trigger live during a later `--resume`
//! would fire on the reloaded rows); views once every unit is in.

use std::collections::HashMap;

use super::shared::{lock, Shared};
use super::state;
use crate::catalog::QualifiedName;
use crate::conn::Connection;
use crate::error::Error;
use crate::schema::{Phase, Step};

pub fn step_key(s: &Step) -> String {
    format!("{:?}:{}", s.phase, s.object)
}

/// The run's post-data steps with their run-state keys, indexed for the lookups a worker makes
/// after each unit: a table's keys and indexes, the foreign keys. (At tens of thousands of
/// tables, a scan of every step per unit costs minutes.)
pub struct PostSteps {
    pub steps: Vec<Step>,
    keys: Vec<String>,
    keys_and_indexes: HashMap<QualifiedName, Vec<usize>>,
    foreign_keys: Vec<usize>,
    /// Foreign keys by the tables at either end.
    foreign_keys_of: HashMap<QualifiedName, Vec<usize>>,
}

impl PostSteps {
    pub fn new(steps: Vec<Step>) -> PostSteps {
        let keys = steps.iter().map(step_key).collect();
        let mut keys_and_indexes: HashMap<QualifiedName, Vec<usize>> = HashMap::new();
        let mut foreign_keys = Vec::new();
        let mut foreign_keys_of: HashMap<QualifiedName, Vec<usize>> = HashMap::new();
        for (i, s) in steps.iter().enumerate() {
            match (s.phase, &s.table) {
                (Phase::Keys | Phase::Indexes, Some(t)) => {
                    keys_and_indexes.entry(t.clone()).or_default().push(i)
                }
                (Phase::ForeignKeys, _) => {
                    foreign_keys.push(i);
                    for t in s.table.iter().chain(&s.needs) {
                        foreign_keys_of.entry(t.clone()).or_default().push(i);
                    }
                }
                _ => {}
            }
        }
        PostSteps {
            steps,
            keys,
            keys_and_indexes,
            foreign_keys,
            foreign_keys_of,
        }
    }

    /// Steps with their keys.
    pub fn iter(&self) -> impl Iterator<Item = (&Step, &String)> {
        self.steps.iter().zip(&self.keys)
    }
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

/// Post-data steps per transaction when they go in one message: a few hundred statements
/// hold a few hundred locks at most until their commit.
const STEP_BATCH: usize = 200;

/// The statements that run `steps` and record them as done, for a message of their own or
/// inside a larger transaction.
pub fn steps_sql(steps: &[&Step]) -> String {
    let mut sql = String::new();
    for s in steps {
        sql += &s.sql;
        sql += "\n;\n";
    }
    let keys: Vec<String> = steps.iter().map(|s| step_key(s)).collect();
    sql += &state::steps_done_sql(&keys);
    sql
}

/// Runs `steps` in order, each recorded as done in the transaction that ran it. They go in
/// transactions of STEP_BATCH steps, a message each (a round trip per batch, not per step);
/// a batch that fails is rolled back and run again a step per transaction, so each failure
/// is exact: its step, its error, nothing of it half applied, and the steps after it still
/// run. A lost connection is returned as the error; otherwise the steps that failed, with
/// their errors.
pub async fn run_steps(
    shared: &Shared,
    target: &mut Connection,
    steps: &[&Step],
) -> Result<Vec<(Step, Error)>, Error> {
    let mut failed = Vec::new();
    for batch in steps.chunks(STEP_BATCH) {
        if batch.len() > 1 {
            let res = target
                .execute(&format!(
                    "BEGIN; SET LOCAL check_function_bodies = false;\n{};\nCOMMIT",
                    steps_sql(batch)
                ))
                .await;
            match res {
                Ok(()) => {
                    let mut done = lock(&shared.steps_done);
                    done.extend(batch.iter().map(|s| step_key(s)));
                    continue;
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(_) => {
                    if target.transaction_status() != b'I' {
                        target.execute("ROLLBACK").await?;
                    }
                }
            }
        }
        for s in batch {
            let key = step_key(s);
            match apply(target, s, &key).await {
                Ok(()) => {
                    lock(&shared.steps_done).insert(key);
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => failed.push(((*s).clone(), e)),
            }
        }
    }
    Ok(failed)
}

/// Learns from the target which of `steps` committed: after a lost connection, a batch may
/// have committed although its answer never arrived, and must not run twice.
pub async fn refresh_steps(
    shared: &Shared,
    target: &mut Connection,
    steps: &[&Step],
) -> Result<(), Error> {
    if steps.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = steps.iter().map(|s| step_key(s)).collect();
    let done = state::steps_recorded(target, &keys).await?;
    lock(&shared.steps_done).extend(done);
    Ok(())
}

/// A table's keys, indexes and foreign keys (at either end), for `refresh_steps`.
pub fn table_steps<'a>(shared: &'a Shared, table: &QualifiedName) -> Vec<&'a Step> {
    let post = &shared.post;
    post.keys_and_indexes
        .get(table)
        .into_iter()
        .chain(post.foreign_keys_of.get(table))
        .flatten()
        .map(|&i| &post.steps[i])
        .collect()
}

/// A table's keys and indexes not built yet.
pub fn keys_and_indexes<'a>(shared: &'a Shared, table: &QualifiedName) -> Vec<&'a Step> {
    let done = lock(&shared.steps_done);
    let post = &shared.post;
    post.keys_and_indexes
        .get(table)
        .into_iter()
        .flatten()
        .filter(|&&i| !done.contains(&post.keys[i]))
        .map(|&i| &post.steps[i])
        .collect()
}

/// A loaded table's keys and indexes, in one message when none fails. `Ok(true)` when all
/// are built; `Ok(false)` when some failed: each is reported by name, and the others are
/// built all the same. An error: the connection broke.
pub async fn table_post_data(
    shared: &Shared,
    target: &mut Connection,
    table: &QualifiedName,
) -> Result<bool, Error> {
    let steps = keys_and_indexes(shared, table);
    let failed = run_steps(shared, target, &steps).await?;
    for (s, e) in &failed {
        shared.fail(Some(table), &s.object, e, None);
    }
    Ok(failed.is_empty())
}

/// Foreign keys whose two ends are loaded, each run once by whoever claims it first; those
/// ready together go in one message. `after`: only those at either end of that table (just
/// loaded) or of a partitioned table above it; `None`: all. A key that fails is released (not
/// marked done) and the first error returned.
pub async fn foreign_keys_ready(
    shared: &Shared,
    target: &mut Connection,
    after: Option<&QualifiedName>,
) -> Result<(), Error> {
    let post = &shared.post;
    let candidates: Vec<usize> = match after {
        // The coordinator's call, after the workers: a worker's batch whose answer was lost
        // may have committed.
        None => {
            let all: Vec<&Step> = post.foreign_keys.iter().map(|&i| &post.steps[i]).collect();
            refresh_steps(shared, target, &all).await?;
            post.foreign_keys.clone()
        }
        Some(t) => {
            let mut ends = vec![t];
            if let Some(table) = shared.catalog.table(&t.schema, &t.name) {
                ends.extend(shared.catalog.ancestors(table).iter().map(|a| &a.name));
            }
            let mut c: Vec<usize> = ends
                .iter()
                .filter_map(|e| post.foreign_keys_of.get(*e))
                .flatten()
                .copied()
                .collect();
            c.sort_unstable();
            c.dedup();
            c
        }
    };
    if candidates.is_empty() {
        return Ok(());
    }
    loop {
        let claimed: Vec<&Step> = {
            let mut done = lock(&shared.steps_done);
            let ready: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| {
                    let s = &post.steps[i];
                    !done.contains(&post.keys[i])
                        && s.table.as_ref().is_some_and(|t| shared.is_loaded(t))
                        && s.needs.iter().all(|n| shared.is_loaded(n))
                })
                .collect();
            for &i in &ready {
                done.insert(post.keys[i].clone());
            }
            ready.into_iter().map(|i| &post.steps[i]).collect()
        };
        if claimed.is_empty() {
            return Ok(());
        }
        let failed = match run_steps(shared, target, &claimed).await {
            Ok(f) => f,
            Err(e) => {
                // The connection broke: what it did not record is released.
                let mut done = lock(&shared.steps_done);
                for s in &claimed {
                    done.remove(&step_key(s));
                }
                drop(done);
                return Err(e);
            }
        };
        if let Some((_, first)) = failed.into_iter().fold(None, |first, (s, e)| {
            lock(&shared.steps_done).remove(&step_key(&s));
            first.or(Some((s, e)))
        }) {
            return Err(first);
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
    // A worker lost its connection while building them: some may have committed.
    let steps: Vec<&Step> = todo.iter().flat_map(|t| table_steps(shared, t)).collect();
    refresh_steps(shared, target, &steps).await?;
    for t in todo {
        if table_post_data(shared, target, &t).await? {
            lock(&shared.loaded).insert(t);
        }
    }
    Ok(())
}

/// The last post-data: triggers of fully loaded tables, then (when no unit failed) views,
/// then sequence positions, in batches. A step that fails is reported and the others still
/// run.
pub async fn final_post_data(shared: &Shared, target: &mut Connection) -> Result<(), Error> {
    let any_failed = !lock(&shared.failed).is_empty();
    let todo: Vec<&Step> = {
        let done = lock(&shared.steps_done);
        shared
            .post
            .iter()
            .filter(|(s, _)| match s.phase {
                // A table's triggers once its rows are in; a view's (INSTEAD OF) at once.
                Phase::Triggers | Phase::Security => s.table.as_ref().is_some_and(|t| {
                    shared.is_loaded(t) || shared.catalog.table(&t.schema, &t.name).is_none()
                }),
                Phase::Views => !any_failed,
                Phase::SequenceValues => true,
                _ => false,
            })
            .filter(|(_, key)| !done.contains(*key))
            .map(|(s, _)| s)
            .collect()
    };
    // Once per run: what a batch whose answer was lost did commit is not run again.
    refresh_steps(shared, target, &todo).await?;
    let todo: Vec<&Step> = {
        let done = lock(&shared.steps_done);
        todo.into_iter()
            .filter(|s| !done.contains(&step_key(s)))
            .collect()
    };
    for (s, e) in run_steps(shared, target, &todo).await? {
        shared.fail(s.table.as_ref(), &s.object, &e, None);
    }
    Ok(())
}
