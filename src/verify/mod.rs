//! `privaci verify`: a clone checked against its source and masking config, read-only on
//! both sides. Each side is read in one exported snapshot (a coordinator's transaction,
//! imported by the jobs). Rows: counts, kept columns identical, masked columns as the config
//! makes them, and no source value of a masked column in that column of the target (beyond
//! what the masking itself gives), all from streams through privaci (`table`). Catalogs:
//! objects by kind and name, sequence positions; and the target's foreign keys hold.

pub mod deep;
pub mod objects;
pub mod report;
pub mod rows;
pub mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::{self, Catalog, Filter};
use crate::config::resolve::{ResolvedTable, RuleSource};
use crate::conn::{connect, Connection};
use crate::conninfo::Config;
use crate::error::{Error, ErrorKind};
use crate::mask::remap::{OidMap, FIRST_NORMAL_OID};
use crate::mask::{MaskKey, StrategySpec};

pub use report::{Finding, Report, TableLine};
use table::{Hashes, TableSpec};

/// Settings of every verify session: RLS is an error rather than hidden rows, and text
/// values (tables without binary I/O) print the same on both servers.
const SESSION_SETTINGS: &str = "SET row_security = off; SET jit = off; \
SET synchronize_seqscans = off; SET DateStyle = ISO, YMD; SET IntervalStyle = postgres; \
SET extra_float_digits = 3; SET bytea_output = hex; SET TimeZone = 'UTC'; \
SET statement_timeout = 0";

pub struct Options {
    pub source: Config,
    pub target: Config,
    pub filter: Filter,
    pub jobs: usize,
    /// Bytes of value hashes all jobs together may hold.
    pub max_memory: u64,
    pub deep: bool,
}

/// What the jobs share.
struct Ctx {
    opts: Options,
    source_snapshot: String,
    target_snapshot: String,
    source: Catalog,
    target: Catalog,
    resolved: HashMap<catalog::QualifiedName, ResolvedTable>,
    key: Option<MaskKey>,
    oids: Arc<OidMap>,
    hashes: Hashes,
    work: Mutex<Vec<Item>>,
    findings: Mutex<Vec<Finding>>,
    tables: Mutex<Vec<TableLine>>,
    bytes: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Item {
    /// A data table of the source (index into `source.tables`).
    Table(usize),
    /// A foreign key of the target: (table index, constraint index).
    ForeignKey(usize, usize),
}

/// A session in a snapshot: settings, then a read-only transaction that imports it.
async fn open(cfg: &Config, snapshot: Option<&str>) -> Result<Connection, Error> {
    let mut conn = connect(cfg).await?;
    conn.execute(SESSION_SETTINGS).await?;
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    if let Some(s) = snapshot {
        conn.execute(&format!(
            "SET TRANSACTION SNAPSHOT {}",
            catalog::quote_literal(s)
        ))
        .await?;
    }
    Ok(conn)
}

async fn export(conn: &mut Connection) -> Result<String, Error> {
    conn.query_text("SELECT pg_export_snapshot()")
        .await?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| Error::new(ErrorKind::Protocol, "the server did not export a snapshot"))
}

/// Why verify did not produce a report.
#[derive(Debug)]
pub enum Failure {
    /// The masking config does not fit the source (each problem on its own line).
    Config(String),
    Run(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Run(e)
    }
}

/// Runs every check. `resolve` checks the masking config against the source catalog read in
/// verify's snapshot.
pub async fn run(
    opts: Options,
    key: Option<MaskKey>,
    resolve: impl FnOnce(&Catalog) -> Result<Vec<ResolvedTable>, String>,
) -> Result<Report, Failure> {
    let started = Instant::now();
    let mut src = open(&opts.source, None)
        .await
        .map_err(|e| e.context("source"))?;
    let mut tgt = open(&opts.target, None)
        .await
        .map_err(|e| e.context("target"))?;
    let source_snapshot = export(&mut src).await.map_err(|e| e.context("source"))?;
    let target_snapshot = export(&mut tgt).await.map_err(|e| e.context("target"))?;
    let source = catalog::load(&mut src, &opts.filter)
        .await
        .map_err(|e| e.context("source catalog"))?;
    let target = catalog::load(&mut tgt, &opts.filter)
        .await
        .map_err(|e| e.context("target catalog"))?;
    let resolved = resolve(&source).map_err(Failure::Config)?;
    let oids = catalog::oid_map(
        catalog::type_oids(&mut src, FIRST_NORMAL_OID).await?,
        catalog::type_oids(&mut tgt, FIRST_NORMAL_OID).await?,
    );

    let mut findings = Vec::new();
    for (kind, name) in objects::missing(&source, &target) {
        findings.push(Finding::object(kind, &name));
    }
    for (name, a, b) in objects::sequences_behind(&source, &target) {
        findings.push(Finding::sequence(&name, a, b));
    }

    let mut work: Vec<(i64, Item)> = Vec::new();
    for (i, t) in source.tables.iter().enumerate() {
        if t.is_partitioned() {
            continue;
        }
        if t.readable {
            work.push((t.size_bytes, Item::Table(i)));
        } else {
            findings.push(Finding::error(
                &t.name.to_string(),
                "the source role may not read it: GRANT SELECT on it to the role verify connects as, or exclude it",
            ));
        }
    }
    for (ti, t) in target.tables.iter().enumerate() {
        for (ci, c) in t.constraints.iter().enumerate() {
            if c.kind == catalog::ConstraintKind::ForeignKey && !c.inherited_from_parent {
                work.push((t.size_bytes, Item::ForeignKey(ti, ci)));
            }
        }
    }
    // Largest first, so the last job to finish is a small one; pop() takes from the end.
    work.sort_by_key(|(size, _)| *size);
    let jobs = opts.jobs.clamp(1, work.len().max(1));
    let ctx = Arc::new(Ctx {
        source_snapshot,
        target_snapshot,
        resolved: resolved.into_iter().map(|r| (r.table.clone(), r)).collect(),
        key,
        oids: Arc::new(oids),
        hashes: Hashes::new(),
        work: Mutex::new(work.into_iter().map(|(_, i)| i).collect()),
        findings: Mutex::new(findings),
        tables: Mutex::new(Vec::new()),
        bytes: Default::default(),
        source,
        target,
        opts,
    });
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..jobs {
        let ctx = ctx.clone();
        set.spawn(async move { job(&ctx).await });
    }
    let mut failure = None;
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => {
                failure = failure.or(Some(Error::new(
                    ErrorKind::Protocol,
                    format!("a verify job stopped: {e}"),
                )))
            }
        }
    }
    if let Some(e) = failure {
        return Err(Failure::Run(e));
    }
    if ctx.opts.deep {
        let found = deep::run(&ctx, &mut src, &mut tgt).await?;
        lock(&ctx.findings).extend(found);
    }
    let _ = src.execute("COMMIT").await;
    let _ = tgt.execute("COMMIT").await;
    let _ = src.close().await;
    let _ = tgt.close().await;

    let mut findings = std::mem::take(&mut *lock(&ctx.findings));
    findings.sort_by(|a, b| (&a.table, &a.column, a.check).cmp(&(&b.table, &b.column, b.check)));
    let mut tables = std::mem::take(&mut *lock(&ctx.tables));
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(Report {
        passed: findings.is_empty(),
        findings,
        tables,
        foreign_keys: objects::foreign_keys(&ctx.target).len(),
        sequences: ctx.source.sequences.len(),
        objects: objects::objects(&ctx.source).len(),
        deep: ctx.opts.deep,
        bytes_read: ctx.bytes.load(std::sync::atomic::Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One job: a session on each side in the snapshots, items until none are left.
async fn job(ctx: &Ctx) -> Result<(), Error> {
    let mut source = open(&ctx.opts.source, Some(&ctx.source_snapshot))
        .await
        .map_err(|e| e.context("source"))?;
    let mut target = open(&ctx.opts.target, Some(&ctx.target_snapshot))
        .await
        .map_err(|e| e.context("target"))?;
    loop {
        let Some(item) = lock(&ctx.work).pop() else {
            break;
        };
        match item {
            Item::Table(i) => {
                check_table(ctx, &ctx.source.tables[i], &mut source, &mut target).await?
            }
            Item::ForeignKey(ti, ci) => {
                let t = &ctx.target.tables[ti];
                let fk = &t.constraints[ci];
                let Some(sql) = objects::orphans_sql(&ctx.target, t, fk) else {
                    continue;
                };
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
                lock(&ctx.findings).extend(found);
            }
        }
    }
    let _ = source.execute("COMMIT").await;
    let _ = target.execute("COMMIT").await;
    let _ = source.close().await;
    let _ = target.close().await;
    Ok(())
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
        if !theirs.columns.iter().any(|x| x.name == c.name) {
            missing.push(c.name.clone());
            continue;
        }
        let ti = spec.target_cols.len();
        spec.target_cols.push(quoted(&c.name));
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
        Err(e) if e.code().is_some() || e.kind() == ErrorKind::Mask => {
            // The session's transaction is aborted: start again in the same snapshots.
            source.execute("ROLLBACK").await.ok();
            target.execute("ROLLBACK").await.ok();
            *source = open(&ctx.opts.source, Some(&ctx.source_snapshot)).await?;
            *target = open(&ctx.opts.target, Some(&ctx.target_snapshot)).await?;
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

/// Whether a column's rule came from the config (for messages).
pub(crate) fn origin_text(source: &RuleSource) -> Option<String> {
    match source {
        RuleSource::Config => None,
        RuleSource::Parent(p) => Some(format!("its rule comes from its partitioned parent {p}")),
        RuleSource::Propagated(k) => {
            Some(format!("its rule is carried along a foreign key from {k}"))
        }
        RuleSource::Unlisted => Some("not in the config, so kept".into()),
    }
}
