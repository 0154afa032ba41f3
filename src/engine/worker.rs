//! A worker: a source and a target connection, taking units until none are left. A dropped
//! connection is retried (MAX_RETRIES times, with growing pauses) on new connections; a unit
//! that still fails is recorded and the worker goes on. A worker gets its connections before
//! it takes a unit, and retires when the servers have no slot for it, so no unit fails for
//! want of a connection while other workers can do it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::audit::sanitize;
use super::copy_unit::{copy_unit, masked_columns, Copied, CopyFailure, SourceSession};
use super::post_data::{foreign_keys_ready, refresh_steps, table_post_data, table_steps};
use super::shared::{lock, Shared, UnitReport};
use super::snapshot::SOURCE_SESSION_SETTINGS;
use super::state;
use super::units::{Next, Unit};
use crate::conn::{connect, Connection};
use crate::error::Error;

/// Tries after the first, for a unit or a connection.
pub const MAX_RETRIES: u32 = 3;

/// The pause before retry `attempt` (1-based): 1 s, 2 s, 4 s: long enough for a server
/// restart.
pub fn retry_wait(attempt: u32) -> Duration {
    Duration::from_millis(1000 << attempt.saturating_sub(1).min(6))
}

/// A worker's source and target sessions, set up for copying.
pub async fn session(shared: &Shared) -> Result<(Connection, Connection), Error> {
    let mut source = connect(&shared.conns.source)
        .await
        .map_err(|e| e.context("source"))?;
    source.count_round_trips(shared.round_trips.source.clone());
    // Row security off: a policy would otherwise hide rows silently. Synchronized scans off:
    // a row number must mean the same row when an error names one.
    source
        .execute(&format!(
            "{SOURCE_SESSION_SETTINGS}; SET lock_timeout = {}",
            shared.conns.lock_timeout.as_millis().max(1)
        ))
        .await?;
    let mut target = connect(&shared.conns.target)
        .await
        .map_err(|e| e.context("target"))?;
    target.count_round_trips(shared.round_trips.target.clone());
    target
        .execute("SET synchronous_commit = off; SET check_function_bodies = false; SET jit = off")
        .await?;
    let mut tokens = lock(&shared.cancel_tokens);
    tokens.push(source.cancel_token());
    tokens.push(target.cancel_token());
    Ok((source, target))
}

async fn retry_pause(shared: &Shared, what: &str, attempt: u32, e: &Error) {
    let wait = retry_wait(attempt);
    shared.audit.event("table.retry", json!({ "table": what, "attempt": attempt, "error": sanitize(e), "wait_ms": wait.as_millis() as u64 }));
    shared.progress.line(&format!(
        "{what}: connection lost ({}); retry {attempt} of {MAX_RETRIES} in {} ms",
        sanitize(e),
        wait.as_millis()
    ));
    tokio::time::sleep(wait).await;
}

/// Connections for a worker, retried when the servers are restarting. `Ok(None)`: the servers
/// have no slot for this worker while others still work, so it retires.
async fn connect_worker(
    shared: &Shared,
    id: usize,
) -> Result<Option<(Connection, Connection)>, Error> {
    let mut attempt = 0;
    loop {
        match session(shared).await {
            Ok(c) => return Ok(Some(c)),
            Err(e) if e.is_too_many_connections() => {
                let retired = {
                    let mut alive = lock(&shared.workers_alive);
                    let others = *alive > 1;
                    if others {
                        *alive -= 1;
                    }
                    others
                };
                if retired {
                    shared.progress.line(&format!(
                        "worker {id}: the server has no connection slot left ({}); going on with fewer workers",
                        sanitize(&e)
                    ));
                    return Ok(None);
                }
                if attempt >= MAX_RETRIES {
                    return Err(e);
                }
                attempt += 1;
                retry_pause(shared, &format!("worker {id}"), attempt, &e).await;
            }
            Err(e) if e.is_retryable() && attempt < MAX_RETRIES && !shared.is_cancelled() => {
                attempt += 1;
                retry_pause(shared, &format!("worker {id}"), attempt, &e).await;
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn worker(id: usize, shared: Arc<Shared>) {
    let mut conns: Option<(Connection, Connection)> = None;
    loop {
        if shared.is_cancelled() {
            return;
        }
        if conns.is_none() {
            match connect_worker(&shared, id).await {
                Ok(Some(c)) => conns = Some(c),
                Ok(None) => return,
                Err(e) => {
                    // No connection at all: the units left are failed by whoever is last.
                    let last = {
                        let mut alive = lock(&shared.workers_alive);
                        *alive = alive.saturating_sub(1);
                        *alive == 0
                    };
                    if last {
                        fail_remaining(&shared, &e);
                    }
                    return;
                }
            }
        }
        let unit = match shared.next_unit() {
            Next::Unit(u) => u,
            Next::Wait => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Next::Done => return,
        };
        conns = copy_with_retries(&shared, id, &unit, conns).await;
    }
}

/// Every unit still queued fails with `e` (no worker can reach the servers).
fn fail_remaining(shared: &Shared, e: &Error) {
    let left: Vec<Unit> = lock(&shared.queue).drain(..).collect();
    for u in left {
        shared.fail(Some(&u.table), &u.key(), e, None);
    }
}

/// Copies one unit, retrying on new connections; returns the connections to keep using.
async fn copy_with_retries(
    shared: &Shared,
    id: usize,
    unit: &Unit,
    mut conns: Option<(Connection, Connection)>,
) -> Option<(Connection, Connection)> {
    let name = unit.key();
    shared.audit.event("table.start", json!({ "table": name }));
    shared.progress.unit_start(id, &name);
    let mut attempt = 0u32;
    loop {
        if conns.is_none() {
            match session(shared).await {
                Ok(c) => conns = Some(c),
                Err(e) if e.is_retryable() && attempt < MAX_RETRIES && !shared.is_cancelled() => {
                    attempt += 1;
                    retry_pause(shared, &name, attempt, &e).await;
                    continue;
                }
                Err(e) => {
                    shared.fail(Some(&unit.table), &name, &e, None);
                    if let Some(left) = lock(&shared.pending).get_mut(&unit.table) {
                        *left = left.saturating_sub(1);
                    }
                    return None;
                }
            }
        }
        let (source, target) = conns.as_mut()?;
        let started = Instant::now();
        // A retry after a lost connection: the unit may have committed although its answer
        // never arrived. Then it is done (copying it again would fail on its checkpoint, and
        // its keys on themselves), and what it built is known.
        if attempt > 0 {
            match committed_before(shared, target, unit).await {
                Ok(Some(copied)) => {
                    unit_done(shared, id, unit, copied, started.elapsed().as_secs_f64());
                    if !after_unit(shared, target, unit).await {
                        return None;
                    }
                    return conns;
                }
                Ok(None) => {}
                Err(e) if e.is_retryable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    retry_pause(shared, &name, attempt, &e).await;
                    conns = None;
                    continue;
                }
                Err(e) => {
                    shared.fail(Some(&unit.table), &name, &e, None);
                    if let Some(left) = lock(&shared.pending).get_mut(&unit.table) {
                        *left = left.saturating_sub(1);
                    }
                    return None;
                }
            }
        }
        let on_bytes = |n: u64| shared.progress.bytes(id, n);
        match copy_unit(
            shared,
            SourceSession::Worker,
            source,
            target,
            unit,
            &on_bytes,
        )
        .await
        {
            Ok(copied) => {
                unit_done(shared, id, unit, copied, started.elapsed().as_secs_f64());
                if !after_unit(shared, target, unit).await {
                    return None;
                }
                return conns;
            }
            Err(CopyFailure {
                error,
                row,
                deferred,
            }) => {
                if shared.is_cancelled() {
                    return None;
                }
                if deferred {
                    shared.progress.line(&format!(
                        "{name}: a session waits to change this table (TRUNCATE, ALTER TABLE...) behind the run's lock; it is copied last, under that lock"
                    ));
                    shared.audit.event("table.deferred", json!({ "table": name, "reason": "conflicting lock requested on the source" }));
                    lock(&shared.deferred).push(unit.clone());
                    return conns;
                }
                if error.is_retryable() && attempt < MAX_RETRIES {
                    attempt += 1;
                    retry_pause(shared, &name, attempt, &error).await;
                    conns = None;
                    continue;
                }
                shared.fail(Some(&unit.table), &name, &error, row);
                // Not loaded, but no longer in flight either (units waiting on it may go).
                if let Some(left) = lock(&shared.pending).get_mut(&unit.table) {
                    *left = left.saturating_sub(1);
                }
                if error.message().contains("snapshot was lost") {
                    // No unit can be read consistently any more: stop the run.
                    shared.cancelled.store(true, Ordering::SeqCst);
                }
                // A connection that failed mid-COPY is not reused.
                return None;
            }
        }
    }
}

/// The unit's checkpoint on the target, if it committed; the table's recorded steps are
/// learnt with it.
async fn committed_before(
    shared: &Shared,
    target: &mut Connection,
    unit: &Unit,
) -> Result<Option<Copied>, Error> {
    let Some((rows, bytes)) = state::unit_checkpoint(target, &unit.key()).await? else {
        return Ok(None);
    };
    refresh_steps(shared, target, &table_steps(shared, &unit.table)).await?;
    shared.progress.line(&format!(
        "{}: committed before the connection was lost; not copied again",
        unit.key()
    ));
    shared.audit.event(
        "table.already_committed",
        json!({ "table": unit.key(), "rows": rows }),
    );
    Ok(Some(Copied {
        rows,
        bytes,
        masked: masked_columns(shared, unit),
    }))
}

pub fn unit_done(shared: &Shared, id: usize, unit: &Unit, copied: Copied, seconds: f64) {
    let name = unit.key();
    shared.audit.event("table.end", json!({ "table": name, "rows": copied.rows, "bytes": copied.bytes, "seconds": seconds, "masked_columns": copied.masked }));
    let n = {
        let mut c = lock(&shared.done_count);
        *c += 1;
        *c
    };
    shared.progress.unit_done(id, n, shared.total_units);
    shared.progress.line(&format!(
        "[{n}/{}] {name}: {} rows, {:.1} MB in {seconds:.2} s ({:.0} MB/s){}",
        shared.total_units,
        copied.rows,
        copied.bytes as f64 / 1e6,
        copied.bytes as f64 / 1e6 / seconds.max(1e-6),
        if copied.masked.is_empty() {
            String::new()
        } else {
            format!(", masked: {}", copied.masked.join(", "))
        }
    ));
    lock(&shared.reports).push(UnitReport {
        table: name,
        rows: copied.rows,
        bytes: copied.bytes,
        seconds,
        masked_columns: copied.masked,
        status: "copied".into(),
    });
}

/// The table's last unit builds its keys and indexes; loaded means keys built too, so
/// foreign keys to it may then be added. Returns false when the target connection broke (the
/// coordinator finishes what was left, see `finish_loaded_tables`).
pub async fn after_unit(shared: &Shared, target: &mut Connection, unit: &Unit) -> bool {
    let last = {
        let mut p = lock(&shared.pending);
        let left = p.entry(unit.table.clone()).or_insert(1);
        *left = left.saturating_sub(1);
        *left == 0
    };
    let failed_before = shared.failed_tables().contains(&unit.table);
    if last && !failed_before {
        match table_post_data(shared, target, &unit.table).await {
            Ok(true) => {
                lock(&shared.loaded).insert(unit.table.clone());
            }
            // Each failed key or index is reported; without them the table is not loaded.
            Ok(false) => {}
            Err(e) if e.is_retryable() => return false,
            Err(e) => shared.fail(
                Some(&unit.table),
                &format!("{} (keys and indexes)", unit.table),
                &e,
                None,
            ),
        }
    }
    match foreign_keys_ready(shared, target, Some(&unit.table)).await {
        Ok(()) => true,
        Err(e) if e.is_retryable() => false,
        Err(e) => {
            shared.fail(None, &format!("{} (foreign keys)", unit.table), &e, None);
            true
        }
    }
}
