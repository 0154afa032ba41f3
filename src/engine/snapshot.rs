//! The run's snapshot on the source. TRUNCATE and table rewrites are not MVCC-safe: a snapshot
//! alone would see a table truncated after it was taken as empty. So, as pg_dump does, the
//! snapshot transaction first takes ACCESS SHARE locks on every table it will copy (LOCK takes
//! no snapshot, so the snapshot is taken after the locks), and holds them to the end of the
//! run: TRUNCATE, ALTER TABLE rewrites and DROP TABLE wait for the clone. Every source session
//! runs with `row_security = off`, so a policy that would hide rows is an error, not a filter.

use std::collections::HashSet;
use std::time::Duration;

use crate::catalog::{self, Catalog, Filter, QualifiedName};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind};

/// Set on every source session.
/// JIT off: a COPY's column list is no work to compile, and a big table's cost estimate would
/// otherwise pay for compiling it.
pub const SOURCE_SESSION_SETTINGS: &str =
    "SET row_security = off; SET synchronize_seqscans = off; SET jit = off";

/// Statements per LOCK message (each is small; this bounds one message's size).
const LOCKS_PER_MESSAGE: usize = 2000;

/// Tries before giving up when tables keep appearing or vanishing between the listing and
/// the locks.
const ATTEMPTS: usize = 5;

/// The coordinator's snapshot: its transaction stays open (holding the locks) for the run.
pub struct Snapshot {
    pub id: String,
    pub catalog: Catalog,
    /// How many tables were locked.
    pub locked: usize,
}

/// Locks the tables `filter` takes, exports a snapshot and reads the catalog in it.
pub async fn take(
    conn: &mut Connection,
    filter: &Filter,
    lock_timeout: Duration,
) -> Result<Snapshot, Error> {
    take_on(conn, filter, lock_timeout, "source").await
}

/// `take` on either server (`side` names it in messages): `privaci verify` holds both sides
/// this way, so a TRUNCATE during its reads waits instead of showing an empty table.
pub async fn take_on(
    conn: &mut Connection,
    filter: &Filter,
    lock_timeout: Duration,
    side: &str,
) -> Result<Snapshot, Error> {
    conn.execute(SOURCE_SESSION_SETTINGS).await?;
    for _ in 0..ATTEMPTS {
        let tables = catalog::lockable_tables(conn, filter).await?;
        conn.execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL lock_timeout = {}",
            lock_timeout.as_millis().max(1)
        ))
        .await?;
        match lock_all(conn, &tables, lock_timeout, side).await {
            Ok(()) => {}
            Err(LockFailure::Vanished) => {
                conn.execute("ROLLBACK").await?;
                continue;
            }
            Err(LockFailure::Fatal(e)) => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(e);
            }
        }
        conn.execute("SET LOCAL lock_timeout = 0").await?;
        let rows = conn.query_text("SELECT pg_export_snapshot()").await?;
        let id = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("the {side} did not export a snapshot"),
                )
            })?;
        let cat = catalog::load(conn, filter).await?;
        // A table created between the listing and the snapshot is in the catalog but was not
        // locked: start again, so every table copied is one the run holds.
        let locked: HashSet<&QualifiedName> = tables.iter().collect();
        if cat
            .tables
            .iter()
            .any(|t| t.readable && !locked.contains(&t.name))
        {
            conn.execute("ROLLBACK").await?;
            continue;
        }
        return Ok(Snapshot {
            id,
            catalog: cat,
            locked: tables.len(),
        });
    }
    Err(Error::new(
        ErrorKind::Db,
        format!("tables on the {side} were created or dropped continuously while privaci tried to lock them ({ATTEMPTS} tries): run again when the schema is not changing"),
    ))
}

enum LockFailure {
    /// A table was dropped between the listing and its lock.
    Vanished,
    Fatal(Error),
}

async fn lock_all(
    conn: &mut Connection,
    tables: &[QualifiedName],
    timeout: Duration,
    side: &str,
) -> Result<(), LockFailure> {
    for batch in tables.chunks(LOCKS_PER_MESSAGE) {
        let sql: String = batch
            .iter()
            .map(|t| format!("LOCK TABLE ONLY {} IN ACCESS SHARE MODE;", t.quoted))
            .collect();
        if let Err((e, done)) = conn.batch(&sql).await {
            let Some(table) = batch.get(done) else {
                return Err(LockFailure::Fatal(e));
            };
            return Err(match e.code() {
                Some("42P01") => LockFailure::Vanished,
                Some("55P03") => LockFailure::Fatal(Error::new(
                    ErrorKind::Db,
                    format!(
                        "could not lock {side} table {table} within {} s: another session holds a conflicting lock (ALTER TABLE, TRUNCATE, VACUUM FULL, CLUSTER, REINDEX, DROP...), or waits for one; run again when it is done, or wait longer with --lock-wait-timeout",
                        timeout.as_secs_f64()
                    ),
                )),
                Some("42501") => LockFailure::Fatal(Error::new(
                    ErrorKind::Db,
                    format!("the {side} role may not lock table {table} (it needs SELECT on it): GRANT SELECT, or exclude it with --exclude-table"),
                )),
                Some("53200") => LockFailure::Fatal(Error::new(
                    ErrorKind::Db,
                    format!(
                        "the {side} ran out of lock slots while locking {} tables (at {table}): raise max_locks_per_transaction on the {side}, or take fewer tables per run (--include-schema, --exclude-table)",
                        tables.len()
                    ),
                )),
                _ => LockFailure::Fatal(e.context(format!("locking {side} table {table}"))),
            });
        }
    }
    Ok(())
}
