//! Run state in the target's `_privaci` schema: which units committed (in the same
//! transaction as their rows), which post-data steps ran, and fingerprints of the key and
//! config so that a resumed run cannot mix two maskings.

use std::collections::HashSet;

use crate::conn::Connection;
use crate::error::Error;

pub const SCHEMA: &str = "_privaci";

/// What an earlier run left, for `--resume`.
#[derive(Debug, Default)]
pub struct PriorRun {
    pub done_units: HashSet<String>,
    pub done_steps: HashSet<String>,
    /// The tables that earlier run knew (to spot new ones).
    pub tables: HashSet<String>,
}

fn literal(s: &str) -> String {
    crate::catalog::quote_literal(s)
}

/// Creates the state schema for a new run.
pub async fn create(
    target: &mut Connection,
    key_fingerprint: &str,
    config_hash: &str,
    tables: &[String],
) -> Result<(), Error> {
    target
        .execute(&format!(
            "BEGIN;
             CREATE SCHEMA {SCHEMA};
             CREATE TABLE {SCHEMA}.run (key text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE {SCHEMA}.table_checkpoints (table_name text PRIMARY KEY, rows bigint NOT NULL, bytes bigint NOT NULL, finished_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE {SCHEMA}.steps_done (step text PRIMARY KEY, done_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO {SCHEMA}.run VALUES ('key_fingerprint', {}), ('config_hash', {}), ('tables', {}), ('started_at', now()::text);
             COMMIT",
            literal(key_fingerprint),
            literal(config_hash),
            literal(&tables.join("\n"))
        ))
        .await
        .map_err(|e| e.context("creating the run state schema _privaci on the target"))
}

/// Reads an earlier run's state; refuses when the key or config differ.
pub async fn resume(
    target: &mut Connection,
    key_fingerprint: &str,
    config_hash: &str,
) -> Result<Result<PriorRun, String>, Error> {
    let exists = target
        .query_text(&format!("SELECT to_regclass('{SCHEMA}.run') IS NOT NULL"))
        .await?;
    if exists.first().and_then(|r| r[0].as_deref()) != Some("t") {
        return Ok(Err("--resume, but the target holds no earlier run (no schema _privaci): run without --resume".into()));
    }
    let mut prior = PriorRun::default();
    for row in target
        .query_text(&format!("SELECT key, value FROM {SCHEMA}.run"))
        .await?
    {
        let (k, v) = (
            row[0].clone().unwrap_or_default(),
            row[1].clone().unwrap_or_default(),
        );
        match k.as_str() {
            "key_fingerprint" if v != key_fingerprint => {
                return Ok(Err("--resume with a different masking key than the earlier run: the masked values would not match; use the same PRIVACI_MASK_KEY, or drop schema _privaci and the cloned tables to start over".into()))
            }
            "config_hash" if v != config_hash => {
                return Ok(Err("--resume with a different masking config than the earlier run: tables already copied were masked differently; use the same config, or drop schema _privaci and the cloned tables to start over".into()))
            }
            "tables" => prior.tables = v.lines().map(str::to_string).collect(),
            _ => {}
        }
    }
    prior.done_units = target
        .query_text(&format!(
            "SELECT table_name FROM {SCHEMA}.table_checkpoints"
        ))
        .await?
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    prior.done_steps = target
        .query_text(&format!("SELECT step FROM {SCHEMA}.steps_done"))
        .await?
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    Ok(Ok(prior))
}

/// The statement that records a unit as copied; run in the unit's own transaction.
pub fn checkpoint_sql(table: &str, rows: u64, bytes: u64) -> String {
    format!("INSERT INTO {SCHEMA}.table_checkpoints (table_name, rows, bytes) VALUES ({}, {rows}, {bytes})", literal(table))
}

/// The statement that records a post-data step as done.
pub fn step_done_sql(step: &str) -> String {
    format!(
        "INSERT INTO {SCHEMA}.steps_done (step) VALUES ({}) ON CONFLICT DO NOTHING",
        literal(step)
    )
}

/// Removes the state once a run has finished completely.
pub async fn drop(target: &mut Connection) -> Result<(), Error> {
    target
        .execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .await
}
