//! The jobs: each holds a session on each side in that side's snapshot and takes items
//! (a table's rows, a foreign key) until none are left. Before reading, a job locks the
//! item's tables with NOWAIT: a lock that would wait (DDL queued behind the coordinator's
//! lock) hands the item back to the coordinator, which holds every lock already, so verify
//! never waits on DDL that waits on verify. Each item runs under a savepoint: a server error
//! fails that item alone.

use super::table::{self, TableSpec};
use super::{lock, objects, Ctx, Finding, Item, TableLine, SESSION_SETTINGS};
use crate::catalog::{self, QualifiedName};
use crate::conn::{connect, Connection};
use crate::conninfo::Config;
use crate::error::{Error, ErrorKind};
use crate::mask::StrategySpec;

/// Items per job transaction: its locks are let go, and the snapshot imported again, after
/// this many (thousands of tables would otherwise fill the lock table).
const ITEMS_PER_TRANSACTION: usize = 64;

const SAVEPOINT: &str = "SAVEPOINT privaci_verify";

/// A job's session: settings, then a read-only transaction in the side's snapshot.
async fn open(cfg: &Config, snapshot: &str) -> Result<Connection, Error> {
    let mut conn = connect(cfg).await?;
    conn.execute(SESSION_SETTINGS).await?;
    begin(&mut conn, snapshot).await?;
    Ok(conn)
}

async fn begin(conn: &mut Connection, snapshot: &str) -> Result<(), Error> {
    conn.execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
        catalog::quote_literal(snapshot)
    ))
    .await
}

/// One job: a session on each side in the snapshots, items until none are left.
pub(super) async fn job(ctx: &Ctx) -> Result<(), Error> {
    let mut source = open(&ctx.opts.source, &ctx.source_snapshot)
        .await
        .map_err(|e| e.context("source"))?;
    let mut target = open(&ctx.opts.target, &ctx.target_snapshot)
        .await
        .map_err(|e| e.context("target"))?;
    let mut done = 0;
    loop {
        let Some(item) = lock(&ctx.work).pop() else {
            break;
        };
        if done == ITEMS_PER_TRANSACTION {
            source.execute("COMMIT").await?;
            target.execute("COMMIT").await?;
            begin(&mut source, &ctx.source_snapshot).await?;
            begin(&mut target, &ctx.target_snapshot).await?;
            done = 0;
        }
        done += 1;
        run_item(ctx, item, &mut source, &mut target, false).await?;
    }
    let _ = source.execute("COMMIT").await;
    let _ = target.execute("COMMIT").await;
    let _ = source.close().await;
    let _ = target.close().await;
    Ok(())
}

/// Starts an item on one session: a savepoint, and (for a job) its tables locked without
/// waiting. `Ok(false)`: a lock would wait.
async fn start(
    conn: &mut Connection,
    tables: &[&QualifiedName],
    coordinator: bool,
) -> Result<bool, Error> {
    if coordinator || tables.is_empty() {
        conn.execute(SAVEPOINT).await?;
        return Ok(true);
    }
    let names: Vec<&str> = tables.iter().map(|t| t.quoted.as_str()).collect();
    let sql = format!(
        "{SAVEPOINT}; LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
        names.join(", ")
    );
    match conn.execute(&sql).await {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("55P03") => {
            conn.execute("ROLLBACK TO SAVEPOINT privaci_verify").await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Ends an item on one session: its savepoint released, or rolled back after an error.
async fn end(conn: &mut Connection) -> Result<(), Error> {
    if conn.transaction_status() == b'E' {
        conn.execute("ROLLBACK TO SAVEPOINT privaci_verify").await
    } else {
        conn.execute("RELEASE SAVEPOINT privaci_verify").await
    }
}

/// Runs one item; `coordinator` says the sessions are the coordinators' (which hold every
/// table's lock). An item a job cannot lock at once is deferred to them.
pub(super) async fn run_item(
    ctx: &Ctx,
    item: Item,
    source: &mut Connection,
    target: &mut Connection,
    coordinator: bool,
) -> Result<(), Error> {
    match item {
        Item::Table(i) => {
            let t = &ctx.source.tables[i];
            let on_target: Vec<&QualifiedName> = ctx
                .target
                .table(&t.name.schema, &t.name.name)
                .map(|x| vec![&x.name])
                .unwrap_or_default();
            // Both servers at once: a round trip each way costs one, not two.
            let on_source = [&t.name];
            let (a, b) = tokio::join!(
                start(source, &on_source, coordinator),
                start(target, &on_target, coordinator)
            );
            let (a, b) = (a?, b?);
            if !(a && b) {
                let (x, y) = tokio::join!(end(source), end(target));
                x?;
                y?;
                lock(&ctx.deferred).push(item);
                return Ok(());
            }
            let result = check_table(ctx, t, source, target).await;
            let (x, y) = tokio::join!(end(source), end(target));
            x?;
            y?;
            result
        }
        Item::ForeignKey(ti, ci) => {
            let t = &ctx.target.tables[ti];
            let fk = &t.constraints[ci];
            let Some(sql) = objects::orphans_sql(&ctx.target, t, fk) else {
                return Ok(());
            };
            let mut tables = vec![&t.name];
            if let Some((referenced, _)) = &fk.references {
                tables.push(referenced);
            }
            if !start(target, &tables, coordinator).await? {
                lock(&ctx.deferred).push(item);
                return Ok(());
            }
            let found = match target.query_text(&sql).await {
                Ok(rows) => {
                    let n = rows
                        .first()
                        .and_then(|r| r.first().cloned().flatten())
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                    (n > 0).then(|| {
                        Finding::foreign_key(&t.name.to_string(), &fk.name, &fk.columns, n)
                    })
                }
                Err(e) if e.code().is_some() => Some(Finding::error(
                    &t.name.to_string(),
                    &format!("checking foreign key {}: {}", fk.name, e.message()),
                )),
                Err(e) => return Err(e.context("target")),
            };
            end(target).await?;
            lock(&ctx.findings).extend(found);
            Ok(())
        }
    }
}

async fn check_table(
    ctx: &Ctx,
    t: &catalog::Table,
    source: &mut Connection,
    target: &mut Connection,
) -> Result<(), Error> {
    let name = t.name.to_string();
    let Some(resolved) = ctx.resolved.get(&t.name) else {
        return Ok(());
    };
    let Some(theirs) = ctx.target.table(&t.name.schema, &t.name.name) else {
        // Listed with the missing objects; nothing to read.
        return Ok(());
    };
    let quoted = |n: &str| catalog::quote_ident(n);
    let mut spec = TableSpec {
        resolved,
        quoted: t.name.quoted.clone(),
        source_cols: Vec::new(),
        target_cols: Vec::new(),
        target_names: Vec::new(),
        masked: Vec::new(),
        binary: resolved.text_fallback.is_empty(),
        estimated_rows: t.estimated_rows,
    };
    let mut missing = Vec::new();
    for c in resolved.columns.iter().filter(|c| c.copied) {
        let si = spec.source_cols.len();
        spec.source_cols.push(quoted(&c.name));
        if c.strategy == StrategySpec::Default {
            continue;
        }
        let Some(their_col) = theirs.columns.iter().find(|x| x.name == c.name) else {
            missing.push(c.name.clone());
            continue;
        };
        let ti = spec.target_cols.len();
        // A target made by its own migrations (`--schema existing`) may declare a column
        // with another type (`bigint` for `integer`, `text` for `varchar(50)`): its values
        // are read as the source's type (without the modifier, which could cut them), so
        // equal values compare equal.
        if their_col.type_name == c.type_name {
            spec.target_cols.push(quoted(&c.name));
        } else {
            let base = c
                .type_name
                .split('(')
                .next()
                .unwrap_or(&c.type_name)
                .trim_end();
            let array = if c.type_name.ends_with("[]") && !base.ends_with("[]") {
                "[]"
            } else {
                ""
            };
            spec.target_cols
                .push(format!("{}::{base}{array}", quoted(&c.name)));
        }
        spec.target_names.push(c.name.clone());
        if c.strategy != StrategySpec::Keep {
            spec.masked.push((si, ti));
        }
    }
    if !missing.is_empty() {
        // Listed with the missing objects; the rows cannot be compared column by column.
        return Ok(());
    }
    let env = table::Env {
        key: ctx.key.as_ref(),
        oids: &ctx.oids,
        hashes: &ctx.hashes,
        budget: (ctx.opts.max_memory / ctx.opts.jobs.max(1) as u64).max(4096),
    };
    let outcome = match table::check(&env, &spec, source, target).await {
        Ok(o) => o,
        // A server error (the target's table differs, a type cannot be read) fails this
        // table's check; a lost connection fails the run.
        // (The caller rolls back to the item's savepoint.)
        Err(e) if e.code().is_some() || e.kind() == ErrorKind::Mask => {
            lock(&ctx.findings).push(Finding::error(&name, e.message()));
            lock(&ctx.tables).push(TableLine {
                table: name,
                source_rows: None,
                target_rows: None,
                masked_columns: spec.masked.len(),
                passes: 0,
                ok: false,
            });
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    ctx.bytes
        .fetch_add(outcome.bytes_read, std::sync::atomic::Ordering::Relaxed);
    let mut found = Vec::new();
    if outcome.source_rows != outcome.target_rows {
        found.push(Finding::row_count(
            &name,
            outcome.source_rows,
            outcome.target_rows,
        ));
    } else {
        for &i in &outcome.columns_differ {
            let col = &spec.target_names[i];
            let masked = spec.masked.iter().any(|&(_, ti)| ti == i);
            let origin = resolved
                .columns
                .iter()
                .find(|c| &c.name == col)
                .map(|c| c.source.clone());
            found.push(Finding::column_differs(&name, col, masked, origin.as_ref()));
        }
        if outcome.rows_differ {
            found.push(Finding::rows_differ(&name));
        }
    }
    for leak in &outcome.leaks {
        if leak.leaked() > 0 {
            let unsure = outcome.columns_differ.contains(&leak.column);
            found.push(Finding::leak(
                &name,
                &spec.target_names[leak.column],
                leak,
                unsure,
            ));
        }
    }
    lock(&ctx.tables).push(TableLine {
        table: name,
        source_rows: Some(outcome.source_rows),
        target_rows: Some(outcome.target_rows),
        masked_columns: spec.masked.len(),
        passes: outcome.passes,
        ok: found.is_empty(),
    });
    lock(&ctx.findings).extend(found);
    Ok(())
}
