//! Run state in the target's `_privaci` schema: the run's record (who runs it, with which key,
//! config and split setting), its planned units with their chunk bounds, which units committed
//! (in the same transaction as their rows) and which post-data steps ran. One run per target:
//! the run holds a session-level advisory lock on the target for its whole length.

use std::collections::{HashMap, HashSet};

use super::units::{Chunk, Unit};
use crate::catalog::{quote_literal as literal, QualifiedName};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind};

pub const SCHEMA: &str = "_privaci";

/// The advisory lock key a run holds on the target database ("privaci\0" as a big-endian
/// integer), so two runs never work on one target at once.
pub const RUN_LOCK_KEY: i64 = 0x7072_6976_6163_6900;

/// What an earlier run left, for `--resume`.
#[derive(Debug, Default)]
pub struct PriorRun {
    /// Committed units and the rows each wrote.
    pub done_units: HashMap<String, u64>,
    pub done_steps: HashSet<String>,
    /// The tables that earlier run knew (to spot new ones).
    pub tables: HashSet<String>,
    /// Units as that run planned them, by table.
    pub planned: HashMap<String, Vec<Unit>>,
}

/// Who runs: written when a run starts or resumes, read by a run that finds the lock taken.
#[derive(Debug, Clone)]
pub struct RunIdentity {
    pub host: String,
    pub pid: u32,
}

impl RunIdentity {
    pub fn this_process() -> RunIdentity {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "an unknown host".into());
        RunIdentity {
            host,
            pid: std::process::id(),
        }
    }
}

/// Takes the run lock on this session. `Ok(None)` when taken; otherwise a sentence naming
/// the run that holds it (from its record, or from the server's session list).
pub async fn take_run_lock(target: &mut Connection) -> Result<Option<String>, Error> {
    let got = target
        .query_text(&format!("SELECT pg_try_advisory_lock({RUN_LOCK_KEY})"))
        .await?;
    if first(&got, 0).as_deref() == Some("t") {
        return Ok(None);
    }
    let (high, low) = ((RUN_LOCK_KEY >> 32) as u32, RUN_LOCK_KEY as u32);
    let holder = target
        .query_text(&format!(
            "SELECT l.pid, to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), a.client_addr
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.classid = {high} AND l.objid = {low} AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.granted"
        ))
        .await?;
    let session = holder
        .first()
        .map(|r| {
            let get = |i: usize| r.get(i).cloned().flatten();
            format!(
                "server session pid {}{}{}",
                get(0).unwrap_or_else(|| "?".into()),
                get(1)
                    .map(|t| format!(", connected since {t}"))
                    .unwrap_or_default(),
                get(2).map(|a| format!(", from {a}")).unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "its server session is not visible to this role".into());
    let record = read_run_record(target).await.unwrap_or_default();
    let who = match (
        record.get("started_at"),
        record.get("host"),
        record.get("pid"),
    ) {
        (Some(at), Some(host), Some(pid)) => {
            format!("started at {at} on {host} (process {pid}); {session}")
        }
        _ => format!("still starting: {session}"),
    };
    Ok(Some(format!(
        "another privaci run is working on this target ({who}): wait for it to finish, or stop it (Ctrl-C) and run again with --resume"
    )))
}

async fn read_run_record(target: &mut Connection) -> Result<HashMap<String, String>, Error> {
    if !exists(target).await? {
        return Ok(HashMap::new());
    }
    Ok(target
        .query_text(&format!("SELECT key, value FROM {SCHEMA}.run"))
        .await?
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
        .collect())
}

fn first(rows: &[Vec<Option<String>>], col: usize) -> Option<String> {
    rows.first().and_then(|r| r.get(col).cloned().flatten())
}

/// Whether the target holds a run's state.
pub async fn exists(target: &mut Connection) -> Result<bool, Error> {
    let rows = target
        .query_text(&format!("SELECT to_regclass('{SCHEMA}.run') IS NOT NULL"))
        .await?;
    Ok(first(&rows, 0).as_deref() == Some("t"))
}

/// What a new run records about itself.
pub struct NewRun<'a> {
    pub key_fingerprint: &'a str,
    pub config_hash: &'a str,
    pub split_bytes: i64,
    pub tables: &'a [String],
    pub units: &'a [Unit],
    pub who: &'a RunIdentity,
}

/// Creates the state schema for a new run, its record and its planned units, in one
/// transaction.
pub async fn create(target: &mut Connection, run: &NewRun<'_>) -> Result<(), Error> {
    let mut sql = format!(
        "BEGIN;
         CREATE SCHEMA {SCHEMA};
         CREATE TABLE {SCHEMA}.run (key text PRIMARY KEY, value text NOT NULL);
         CREATE TABLE {SCHEMA}.units (unit text PRIMARY KEY, table_name text NOT NULL, chunk int, chunks int, from_page bigint, to_page bigint);
         CREATE TABLE {SCHEMA}.table_checkpoints (table_name text PRIMARY KEY, rows bigint NOT NULL, bytes bigint NOT NULL, finished_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE {SCHEMA}.steps_done (step text PRIMARY KEY, done_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO {SCHEMA}.run VALUES ('key_fingerprint', {}), ('config_hash', {}), ('tables', {}), ('split_bytes', '{}');
         {};",
        literal(run.key_fingerprint),
        literal(run.config_hash),
        literal(&run.tables.join("\n")),
        run.split_bytes,
        identity_sql(run.who),
    );
    sql += &record_units_sql(run.units);
    sql += "COMMIT";
    target
        .execute(&sql)
        .await
        .map_err(|e| e.context("creating the run state schema _privaci on the target"))
}

/// Records who runs now (a resumed run replaces the earlier run's identity).
fn identity_sql(who: &RunIdentity) -> String {
    format!(
        "INSERT INTO {SCHEMA}.run VALUES ('started_at', to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ')), ('host', {}), ('pid', '{}')
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        literal(&who.host),
        who.pid
    )
}

/// Records planned units (chunk bounds included) so a resumed run reads the same ranges.
pub fn record_units_sql(units: &[Unit]) -> String {
    let mut sql = String::new();
    for batch in units.chunks(500) {
        let values: Vec<String> = batch
            .iter()
            .map(|u| {
                let (chunk, chunks, from, to) = match u.chunk {
                    Some(c) => (
                        c.index.to_string(),
                        c.count.to_string(),
                        c.from.to_string(),
                        c.to.map_or("NULL".into(), |t| t.to_string()),
                    ),
                    None => ("NULL".into(), "NULL".into(), "NULL".into(), "NULL".into()),
                };
                format!(
                    "({}, {}, {chunk}, {chunks}, {from}, {to})",
                    literal(&u.key()),
                    literal(&u.table.to_string())
                )
            })
            .collect();
        sql += &format!(
            "INSERT INTO {SCHEMA}.units VALUES {} ON CONFLICT (unit) DO NOTHING;\n",
            values.join(", ")
        );
    }
    sql
}

/// Reads an earlier run's state; refuses (the `Err` string) when the key, the config or the
/// split setting differ. Records this process as the run's owner from now on.
pub async fn resume(
    target: &mut Connection,
    key_fingerprint: &str,
    config_hash: &str,
    split_bytes: i64,
    tables: &[QualifiedName],
    who: &RunIdentity,
) -> Result<Result<PriorRun, String>, Error> {
    let mut prior = PriorRun::default();
    let record = read_run_record(target).await?;
    if record.get("key_fingerprint").map(String::as_str) != Some(key_fingerprint) {
        return Ok(Err("--resume with a different masking key than the earlier run: the masked values would not match; use the same PRIVACI_MASK_KEY, or drop schema _privaci and the cloned tables to start over".into()));
    }
    if record.get("config_hash").map(String::as_str) != Some(config_hash) {
        return Ok(Err("--resume with a different masking config than the earlier run: tables already copied were masked differently; use the same config, or drop schema _privaci and the cloned tables to start over".into()));
    }
    let recorded_split = record
        .get("split_bytes")
        .and_then(|s| s.parse::<i64>().ok());
    if recorded_split.is_some_and(|s| s != split_bytes) {
        return Ok(Err(format!(
            "--resume with another --split-tables-larger-than than the earlier run ({} bytes then, {split_bytes} now): chunks already copied would not line up; resume with --split-tables-larger-than {}",
            recorded_split.unwrap_or_default(),
            recorded_split.unwrap_or_default()
        )));
    }
    prior.tables = record
        .get("tables")
        .map(|v| v.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let names: HashMap<String, &QualifiedName> =
        tables.iter().map(|t| (t.to_string(), t)).collect();
    let has_units = target
        .query_text(&format!("SELECT to_regclass('{SCHEMA}.units') IS NOT NULL"))
        .await?;
    if first(&has_units, 0).as_deref() == Some("t") {
        for r in target
            .query_text(&format!(
                "SELECT table_name, chunk, chunks, from_page, to_page FROM {SCHEMA}.units ORDER BY table_name, chunk"
            ))
            .await?
        {
            let get = |i: usize| r.get(i).cloned().flatten();
            let Some(table) = get(0).and_then(|t| names.get(&t).copied()) else {
                continue;
            };
            let num = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
            let chunk = match (num(1), num(2), num(3)) {
                (Some(index), Some(count), Some(from)) => Some(Chunk {
                    index: index as usize,
                    count: count as usize,
                    from,
                    to: num(4),
                }),
                _ => None,
            };
            prior
                .planned
                .entry(table.to_string())
                .or_default()
                .push(Unit {
                    table: table.clone(),
                    size: 0,
                    chunk,
                });
        }
    }
    for r in target
        .query_text(&format!(
            "SELECT table_name, rows FROM {SCHEMA}.table_checkpoints"
        ))
        .await?
    {
        if let (Some(Some(unit)), Some(Some(rows))) = (r.first(), r.get(1)) {
            prior
                .done_units
                .insert(unit.clone(), rows.parse().unwrap_or(0));
        }
    }
    prior.done_steps = target
        .query_text(&format!("SELECT step FROM {SCHEMA}.steps_done"))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    target.execute(&identity_sql(who)).await?;
    Ok(Ok(prior))
}

/// Forgets units and steps (they will be redone), in one transaction.
pub async fn forget(
    target: &mut Connection,
    units: &[String],
    steps: &[String],
) -> Result<(), Error> {
    if units.is_empty() && steps.is_empty() {
        return Ok(());
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "NULL".to_string()
        } else {
            items
                .iter()
                .map(|s| literal(s))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    target
        .execute(&format!(
            "BEGIN; DELETE FROM {SCHEMA}.table_checkpoints WHERE table_name IN ({}); DELETE FROM {SCHEMA}.steps_done WHERE step IN ({}); COMMIT",
            list(units),
            list(steps)
        ))
        .await
}

/// Which of `steps` the target records as done (after a lost connection: a batch may have
/// committed although its answer never arrived).
pub async fn steps_recorded(
    target: &mut Connection,
    steps: &[String],
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for chunk in steps.chunks(1000) {
        let list: Vec<String> = chunk.iter().map(|s| literal(s)).collect();
        out.extend(
            target
                .query_text(&format!(
                    "SELECT step FROM {SCHEMA}.steps_done WHERE step IN ({})",
                    list.join(", ")
                ))
                .await?
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten()),
        );
    }
    Ok(out)
}

/// The rows and bytes a unit's checkpoint records, if it committed.
pub async fn unit_checkpoint(
    target: &mut Connection,
    unit: &str,
) -> Result<Option<(u64, u64)>, Error> {
    let rows = target
        .query_text(&format!(
            "SELECT rows, bytes FROM {SCHEMA}.table_checkpoints WHERE table_name = {}",
            literal(unit)
        ))
        .await?;
    Ok(rows.first().map(|r| {
        let n = |i: usize| {
            r.get(i)
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (n(0), n(1))
    }))
}

/// The statement that records a unit as copied; run in the unit's own transaction.
pub fn checkpoint_sql(unit: &str, rows: u64, bytes: u64) -> String {
    format!("INSERT INTO {SCHEMA}.table_checkpoints (table_name, rows, bytes) VALUES ({}, {rows}, {bytes})", literal(unit))
}

/// The statement that records a post-data step as done.
pub fn step_done_sql(step: &str) -> String {
    format!(
        "INSERT INTO {SCHEMA}.steps_done (step) VALUES ({}) ON CONFLICT DO NOTHING",
        literal(step)
    )
}

/// Records several steps as done, in one statement.
pub fn steps_done_sql(steps: &[String]) -> String {
    if steps.is_empty() {
        return "SELECT 1".into();
    }
    format!(
        "INSERT INTO {SCHEMA}.steps_done (step) VALUES {} ON CONFLICT DO NOTHING",
        steps
            .iter()
            .map(|s| format!("({})", literal(s)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The steps recorded as done whose names start with `prefix` (read from the target).
pub async fn steps_done_with_prefix(
    target: &mut Connection,
    prefix: &str,
) -> Result<std::collections::HashSet<String>, Error> {
    let rows = target
        .query_text(&format!(
            "SELECT step FROM {SCHEMA}.steps_done WHERE starts_with(step, {})",
            literal(prefix)
        ))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// Whether a step is recorded as done (read from the target, not from memory).
pub async fn step_done(target: &mut Connection, step: &str) -> Result<bool, Error> {
    let rows = target
        .query_text(&format!(
            "SELECT count(*) FROM {SCHEMA}.steps_done WHERE step = {}",
            literal(step)
        ))
        .await?;
    Ok(first(&rows, 0).as_deref() == Some("1"))
}

/// Removes the state once a run has finished completely.
pub async fn drop(target: &mut Connection) -> Result<(), Error> {
    target
        .execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .await
}

/// A row count read back from a server, or a protocol error naming what was read.
pub fn parse_count(v: Option<&str>, what: &str) -> Result<u64, Error> {
    v.and_then(|s| s.parse().ok()).ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            format!("unexpected answer while counting {what}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_spells_privaci() {
        assert_eq!(&RUN_LOCK_KEY.to_be_bytes(), b"privaci\0");
    }

    #[test]
    fn units_are_recorded_with_their_bounds() {
        let t = QualifiedName {
            schema: "public".into(),
            name: "it's".into(),
            quoted: "public.\"it's\"".into(),
        };
        let units = super::super::units::plan_table(&t, 4000, 40, 1000);
        let sql = record_units_sql(&units);
        assert!(
            sql.contains("('public.it''s#1/4', 'public.it''s', 0, 4, 0, 10)"),
            "{sql}"
        );
        assert!(
            sql.contains("('public.it''s#4/4', 'public.it''s', 3, 4, 30, NULL)"),
            "{sql}"
        );
    }
}
