//! `privaci verify`: a clone checked against its source and masking config, read-only on
//! both sides. Each side is read in one exported snapshot (a coordinator's transaction,
//! imported by the jobs). Rows: counts, kept columns identical, masked columns as the config
//! makes them, and no source value of a masked column in that column of the target (beyond
//! what the masking itself gives), all from streams through privaci (`table`). Catalogs:
//! objects by kind and name, sequence positions; and the target's foreign keys hold.

pub mod deep;
mod jobs;
pub mod objects;
pub mod report;
pub mod rows;
pub mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::{self, Catalog, Filter};
use crate::config::resolve::{ResolvedTable, RuleSource};
use crate::conn::connect;
use crate::conninfo::Config;
use crate::engine::snapshot::take_on;
use crate::error::{Error, ErrorKind};
use crate::mask::remap::{OidMap, FIRST_NORMAL_OID};
use crate::mask::MaskKey;

pub use report::{Finding, Report, TableLine};
use table::Hashes;

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
    /// How long to wait for each table's lock.
    pub lock_timeout: std::time::Duration,
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
    /// Items whose tables a job could not lock without waiting.
    deferred: Mutex<Vec<Item>>,
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
    // Each side's tables are locked (ACCESS SHARE, as the clone does) before its snapshot
    // is taken: a TRUNCATE or table rewrite during verify waits instead of making a table
    // look empty to the snapshot.
    let mut src = connect(&opts.source)
        .await
        .map_err(|e| e.context("source"))?;
    let mut tgt = connect(&opts.target)
        .await
        .map_err(|e| e.context("target"))?;
    let s = take_on(&mut src, &opts.filter, opts.lock_timeout, "source").await?;
    let t = take_on(&mut tgt, &opts.filter, opts.lock_timeout, "target").await?;
    src.execute(SESSION_SETTINGS).await?;
    tgt.execute(SESSION_SETTINGS).await?;
    let (source_snapshot, source) = (s.id, s.catalog);
    let (target_snapshot, target) = (t.id, t.catalog);
    let resolved = resolve(&source).map_err(Failure::Config)?;
    let oids = catalog::oid_map(
        catalog::type_oids(&mut src, FIRST_NORMAL_OID).await?,
        catalog::type_oids(&mut tgt, FIRST_NORMAL_OID).await?,
    );

    let mut findings = Vec::new();
    let source_objects = objects::objects(&source);
    for (kind, name) in objects::missing(&source_objects, &target) {
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
    // Declared foreign keys (a partition's copy of its parent's key is checked through the
    // parent).
    let mut foreign_keys = 0;
    for (ti, t) in target.tables.iter().enumerate() {
        for (ci, c) in t.constraints.iter().enumerate() {
            if c.kind == catalog::ConstraintKind::ForeignKey && !c.inherited_from_parent {
                work.push((t.size_bytes, Item::ForeignKey(ti, ci)));
                foreign_keys += 1;
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
        deferred: Mutex::new(Vec::new()),
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
        set.spawn(async move { jobs::job(&ctx).await });
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
    // Items a job could not lock at once (DDL was queued on a table): the coordinators hold
    // every lock already.
    let deferred = std::mem::take(&mut *lock(&ctx.deferred));
    for item in deferred {
        jobs::run_item(&ctx, item, &mut src, &mut tgt, true).await?;
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
        foreign_keys,
        sequences: ctx.source.sequences.len(),
        objects: source_objects.len(),
        deep: ctx.opts.deep,
        bytes_read: ctx.bytes.load(std::sync::atomic::Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
