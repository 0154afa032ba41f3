//! One unit's copy: the source reads it in the run's snapshot, the target loads it and records
//! its checkpoint in the same transaction, so a unit is either wholly in with its checkpoint
//! or not at all.

use serde_json::json;

use super::audit::copy_error_line;
use super::post_data::{keys_and_indexes, step_key, steps_sql};
use super::shared::{lock, RejectedRow, Shared};
use super::state;
use super::units::Unit;
use crate::catalog::{self, Table};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind};

/// What a copied unit did.
pub struct Copied {
    pub rows: u64,
    pub bytes: u64,
    pub masked: Vec<String>,
}

/// A failed copy: the error and, for a row the target rejected, which row.
pub struct CopyFailure {
    pub error: Error,
    pub row: Option<RejectedRow>,
    /// A worker could not lock the table without waiting: a session queued for a conflicting
    /// lock (TRUNCATE, ALTER TABLE...) behind the run's own. The coordinator, which holds the
    /// table's lock, copies the unit instead.
    pub deferred: bool,
}

impl From<Error> for CopyFailure {
    fn from(error: Error) -> Self {
        CopyFailure {
            error,
            row: None,
            deferred: false,
        }
    }
}

/// Where a unit's rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceSession {
    /// A worker's session: it imports the run's snapshot and locks the table (without waiting)
    /// in a transaction of its own.
    Worker,
    /// The coordinator's session, already in the snapshot transaction that holds every
    /// table's lock: its reads never queue behind DDL. A savepoint keeps that transaction (and
    /// so the snapshot and the locks) alive when the unit fails.
    Coordinator,
}

/// Units a worker reads in one source transaction before it starts another: each leaves a
/// lock until the transaction ends (the coordinator holds them all anyway; this bounds the
/// lock table slots a worker adds).
const UNITS_PER_SOURCE_TRANSACTION: u32 = 64;

pub fn table_of<'a>(shared: &'a Shared, unit: &Unit) -> Result<&'a Table, Error> {
    shared
        .catalog
        .table(&unit.table.schema, &unit.table.name)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("unit {} is not in the catalog", unit.key()),
            )
        })
}

pub async fn copy_unit(
    shared: &Shared,
    session: SourceSession,
    source: &mut Connection,
    target: &mut Connection,
    unit: &Unit,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Copied, CopyFailure> {
    let (table, resolved) = table_and_rules(shared, unit)?;
    // Columns whose binary values embed type OIDs get them rewritten, decided in the plan.
    let plan = shared
        .plans
        .get(&unit.table)
        .cloned()
        .unwrap_or_else(|| Err(format!("unit {} has no masking plan", unit.key())))
        .map_err(|m| Error::new(ErrorKind::Mask, m))?;
    // A column type without binary I/O makes the whole table travel in text format.
    let text = !resolved.text_fallback.is_empty();
    if text {
        shared.audit.event(
            "table.fallback_text",
            json!({ "table": table.name.to_string(), "columns": resolved.text_fallback }),
        );
    }
    let first = copy_unit_as(shared, session, source, target, unit, on_bytes, plan, text).await;
    // PostgreSQL's binary input is not always the inverse of its output (an empty tsquery is
    // sent but refused back): a value the target refuses in binary is tried once as text,
    // the form pg_dump uses, when every masked column can be masked there.
    match first {
        Err(f) if !text && binary_refused(&f.error) && resolved.text_safe() => {
            let reason = format!(
                "the target refused a binary value ({})",
                f.error.code().unwrap_or("no SQLSTATE")
            );
            shared.progress.line(&format!(
                "{}: {reason}; copying it again in text format",
                unit.key()
            ));
            shared.audit.event(
                "table.fallback_text",
                json!({ "table": table.name.to_string(), "unit": unit.key(), "reason": reason }),
            );
            let plan = resolved
                .plan_in(shared.key.as_ref(), &shared.oids, false)
                .map_err(|m| Error::new(ErrorKind::Mask, m))?;
            copy_unit_as(shared, session, source, target, unit, on_bytes, plan, true).await
        }
        other => other,
    }
}

/// The target refused a value's binary form (a data exception, or an internal error raised
/// by a type's receive function), not the connection or a constraint.
fn binary_refused(e: &Error) -> bool {
    !e.is_retryable()
        && e.code()
            .is_some_and(|c| c.starts_with("22") || c == "XX000" || c == "08P01")
}

/// The columns a unit masks, for its report line.
pub fn masked_columns(shared: &Shared, unit: &Unit) -> Vec<String> {
    shared
        .resolved
        .get(&unit.table)
        .map(|r| {
            r.columns
                .iter()
                .filter(|c| c.copied && c.strategy != crate::mask::StrategySpec::Keep)
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The unit's table and its resolved masking rules.
fn table_and_rules<'a>(
    shared: &'a Shared,
    unit: &Unit,
) -> Result<(&'a Table, &'a crate::config::resolve::ResolvedTable), Error> {
    let table = table_of(shared, unit)?;
    let resolved = shared.resolved.get(&unit.table).ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            format!("unit {} has no masking plan", unit.key()),
        )
    })?;
    Ok((table, resolved))
}

#[allow(clippy::too_many_arguments)]
async fn copy_unit_as(
    shared: &Shared,
    session: SourceSession,
    source: &mut Connection,
    target: &mut Connection,
    unit: &Unit,
    on_bytes: &(dyn Fn(u64) + Sync),
    plan: crate::mask::MaskPlan,
    text: bool,
) -> Result<Copied, CopyFailure> {
    let (table, resolved) = table_and_rules(shared, unit)?;
    let masked = masked_columns(shared, unit);
    let quoted = |n: &str| {
        table
            .columns
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.quoted.clone())
            .unwrap_or_else(|| n.to_string())
    };
    let source_cols: Vec<String> = plan.columns.iter().map(|(n, _)| quoted(n)).collect();
    let target_cols: Vec<String> = plan.target_columns().map(quoted).collect();
    let format = if text { "text" } else { "binary" };

    let mut deferred = false;
    let result = async {
        // One message to each server starts the unit: the target's transaction, emptying
        // and COPY FROM; then the source's snapshot, lock and COPY TO (a round trip each).
        // A whole table is emptied and loaded frozen in one transaction; a chunk is only
        // loaded (the table was emptied once, before its chunks).
        let whole = unit.chunk.is_none() && !shared.existing_schema;
        // A table with no columns to copy (none at all, or only generated ones) still has
        // rows: COPY takes no column list for it (an empty one is a syntax error).
        let column_list = if target_cols.is_empty() {
            String::new()
        } else {
            format!(" ({})", target_cols.join(", "))
        };
        let target_sql = format!(
            "BEGIN; {}COPY {}{column_list} FROM STDIN (FORMAT {format}{})",
            if whole {
                format!("TRUNCATE ONLY {}; ", table.name.quoted)
            } else {
                String::new()
            },
            table.name.quoted,
            if whole { ", FREEZE" } else { "" }
        );
        let setup = match session {
            // The worker's previous unit left its read-only transaction open, in the run's
            // snapshot: the next units read in it too (no new transaction, no snapshot
            // import), up to UNITS_PER_SOURCE_TRANSACTION, which bounds the locks it holds.
            // Then it ends in the same message as the next one begins.
            SourceSession::Worker => {
                let pid = source.backend_pid();
                let mut units = lock(&shared.source_transaction_units);
                let n = units.entry(pid).or_insert(0);
                let reuse =
                    source.transaction_status() == b'T' && *n < UNITS_PER_SOURCE_TRANSACTION;
                *n = if reuse { *n + 1 } else { 1 };
                let lock_table = format!(
                    "LOCK TABLE ONLY {} IN ACCESS SHARE MODE NOWAIT",
                    table.name.quoted
                );
                if reuse {
                    lock_table
                } else {
                    format!(
                        "{}BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}; {lock_table}",
                        match source.transaction_status() {
                            b'T' => "COMMIT; ",
                            b'E' => "ROLLBACK; ",
                            _ => "",
                        },
                        catalog::quote_literal(&shared.conns.snapshot),
                    )
                }
            }
            SourceSession::Coordinator => "SAVEPOINT privaci_unit".to_string(),
        };
        let source_sql = format!(
            "{setup}; COPY (SELECT {} FROM ONLY {}{}) TO STDOUT (FORMAT {format})",
            source_cols.join(", "),
            table.name.quoted,
            unit.predicate(),
        );
        // A worker sends both messages at once: the two servers start in one round trip's
        // time. Should the target refuse while the source has begun, the worker's source
        // connection reads the abandoned copy to its end before its next statement. The
        // coordinator's source session holds the run's snapshot and locks: it starts only
        // once the target is ready.
        let (sink, out) = match session {
            SourceSession::Worker => {
                tokio::join!(target.copy_in(&target_sql), source.copy_out(&source_sql))
            }
            SourceSession::Coordinator => {
                let sink = target.copy_in(&target_sql).await?;
                (Ok(sink), source.copy_out(&source_sql).await)
            }
        };
        let mut out = match out {
            Ok(out) => out,
            Err(e) => {
                // Only LOCK ... NOWAIT fails with lock_not_available: DDL waits behind the
                // run's lock, and the coordinator copies this unit at the end.
                deferred = session == SourceSession::Worker && e.code() == Some("55P03");
                return Err(row_security(snapshot_lost(e), &table.name.to_string()));
            }
        };
        let sink = sink?;
        // The stream's format (text for a fallback table) picks the rewriter.
        let stats =
            super::stream_table(&table.name.to_string(), &mut out, sink, plan, on_bytes).await?;
        drop(out);
        commit_unit(shared, target, unit, whole, stats).await?;
        // A worker's read-only transaction is ended by its next unit (or its disconnection).
        if session == SourceSession::Coordinator {
            source.execute("RELEASE SAVEPOINT privaci_unit").await?;
        }
        Ok::<_, Error>(stats)
    }
    .await;
    match result {
        Ok(stats) => Ok(Copied {
            rows: stats.rows,
            bytes: stats.bytes_in,
            masked,
        }),
        Err(e) => {
            if session == SourceSession::Coordinator {
                let _ = source.execute("ROLLBACK TO SAVEPOINT privaci_unit").await;
            }
            // Name the rejected row by its primary key, read in the same snapshot, unless a
            // key column is masked: then (as for a table without a key) by its position, so
            // that no source value of a masked column is ever shown.
            let key_masked = table.primary_key().is_some_and(|pk| {
                pk.columns.iter().any(|c| {
                    resolved
                        .columns
                        .iter()
                        .any(|r| &r.name == c && r.strategy != crate::mask::StrategySpec::Keep)
                })
            });
            let line = copy_error_line(&e).filter(|_| !e.is_retryable());
            let row = match (line, table.primary_key()) {
                (Some(line), None) => Some(RejectedRow::Position {
                    line,
                    key_masked: false,
                }),
                (Some(line), Some(_)) if key_masked => Some(RejectedRow::Position {
                    line,
                    key_masked: true,
                }),
                (Some(line), Some(pk)) => {
                    let cols: Vec<String> = pk.columns.iter().map(|c| quoted(c)).collect();
                    let sql = format!(
                        "SELECT {} FROM ONLY {}{} OFFSET {} LIMIT 1",
                        cols.iter()
                            .map(|c| format!("{c}::text"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        table.name.quoted,
                        unit.predicate(),
                        line.saturating_sub(1)
                    );
                    source
                        .query_text(&sql)
                        .await
                        .ok()
                        .and_then(|rows| rows.first().cloned())
                        .map(|row| {
                            pk.columns
                                .iter()
                                .zip(row)
                                .map(|(c, v)| format!("{c}={}", v.unwrap_or_else(|| "NULL".into())))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .map(RejectedRow::Key)
                        .or(Some(RejectedRow::Position {
                            line,
                            key_masked: false,
                        }))
                }
                _ => None,
            };
            let _ = target.execute("ROLLBACK").await;
            if session == SourceSession::Worker {
                let _ = source.execute("ROLLBACK").await;
            }
            Err(CopyFailure {
                error: e,
                row,
                deferred,
            })
        }
    }
}

/// Commits a loaded unit with its checkpoint. A whole table's keys and indexes go in the same
/// message, under a savepoint (a round trip for the lot, not one per step): should one of them
/// fail, the savepoint undoes them alone, the rows commit, and the table's post-data builds
/// them one by one to say which failed and why.
async fn commit_unit(
    shared: &Shared,
    target: &mut Connection,
    unit: &Unit,
    whole: bool,
    stats: super::StreamStats,
) -> Result<(), Error> {
    let checkpoint = state::checkpoint_sql(&unit.key(), stats.rows, stats.bytes_in);
    let keys = if whole && !shared.failed_tables().contains(&unit.table) {
        keys_and_indexes(shared, &unit.table)
    } else {
        Vec::new()
    };
    if keys.is_empty() {
        return target.execute(&format!("{checkpoint}; COMMIT")).await;
    }
    let sql = format!(
        "{checkpoint};\nSAVEPOINT privaci_keys;\nSET LOCAL check_function_bodies = false;\n{};\nRELEASE SAVEPOINT privaci_keys;\nCOMMIT",
        steps_sql(&keys)
    );
    match target.execute(&sql).await {
        Ok(()) => {
            lock(&shared.steps_done).extend(keys.iter().map(|s| step_key(s)));
            Ok(())
        }
        Err(e) if e.is_retryable() || target.transaction_status() != b'E' => Err(e),
        // The rows and their checkpoint stand without the keys, unless the checkpoint
        // itself failed (then there is no savepoint to go back to, and the unit fails).
        Err(e) => target
            .execute("ROLLBACK TO SAVEPOINT privaci_keys; COMMIT")
            .await
            .map_err(|_| e),
    }
}

/// The run's snapshot is held by the coordinator's source session; when that session is gone
/// (the source restarted), no worker can import it again.
fn snapshot_lost(e: Error) -> Error {
    if e.code() == Some("22023") && e.message().contains("snapshot") {
        return Error::new(
            ErrorKind::Db,
            "the source restarted or the run's snapshot was lost: rows can no longer be read consistently; run the same command with --resume",
        );
    }
    e
}

/// Row security the role falls under, met at run time (pre-flight refuses what the catalog
/// shows): say what to do rather than the server's bare message.
fn row_security(e: Error, table: &str) -> Error {
    if e.code() == Some("42501") && e.message().contains("row-level security") {
        return Error::new(
            ErrorKind::Db,
            format!("row-level security on {table} would hide rows from the source role: grant it BYPASSRLS (ALTER ROLE ... BYPASSRLS), read as the table's owner, or exclude the table"),
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DbError;

    fn db(code: &str, message: &str) -> Error {
        Error::from(Box::new(DbError {
            severity: "ERROR".into(),
            code: code.into(),
            message: message.into(),
            ..DbError::default()
        }))
    }

    #[test]
    fn a_lost_snapshot_says_what_happened_and_what_to_do() {
        let e = snapshot_lost(db(
            "22023",
            "invalid snapshot identifier: \"00000003-0000001B-1\"",
        ));
        assert!(e
            .to_string()
            .contains("the source restarted or the run's snapshot was lost"));
        assert!(e.to_string().contains("--resume"));
        assert!(!e.to_string().contains("0000001B"));
        // Other errors pass through.
        let other = snapshot_lost(db("22023", "invalid parameter"));
        assert!(other.to_string().contains("invalid parameter"));
    }

    #[test]
    fn binary_refusals_are_told_from_lost_connections() {
        assert!(binary_refused(&db("22P03", "incorrect binary data format")));
        assert!(binary_refused(&db(
            "XX000",
            "malformed tsquery: operand not found"
        )));
        assert!(binary_refused(&db(
            "08P01",
            "insufficient data left in message"
        )));
        assert!(!binary_refused(&db("23505", "duplicate key value")));
        assert!(!binary_refused(&db("57P01", "terminating connection")));
        assert!(!binary_refused(&db("08006", "connection failure")));
    }
}
