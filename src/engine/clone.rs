//! The clone run: one consistent snapshot of the source shared by every worker, pre-data on
//! the target, then work units (each table and each partition), largest first, over `jobs`
//! workers. A unit's rows and its checkpoint commit in one target transaction; a table's keys
//! and indexes are built as soon as it is loaded, its foreign keys once both ends are; views,
//! triggers and sequence positions come last. Dropped connections are retried; a unit that
//! fails is reported and the run goes on; `--resume` redoes only what did not commit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::{copy_error_line, sanitize, Audit};
use super::preflight::{self, SchemaMode};
use super::state;
use crate::catalog::{self, Catalog, Filter, QualifiedName};
use crate::config::resolve::{resolve, ResolvedTable};
use crate::config::{ConfigError, MaskingConfig};
use crate::conn::{connect, CancelToken, Connection};
use crate::conninfo::Config;
use crate::error::{Error, ErrorKind};
use crate::mask::remap::{OidKind, OidMap, Remap, FIRST_NORMAL_OID};
use crate::mask::{ColumnAction, MaskKey};
use crate::schema::{self, Phase, Step};

/// Everything a run needs.
pub struct CloneOptions {
    pub source: Config,
    pub target: Config,
    pub config: MaskingConfig,
    /// The config file's name (for messages) and text (its hash guards `--resume`).
    pub config_file: String,
    pub config_text: String,
    pub key: Option<MaskKey>,
    pub jobs: usize,
    pub resume: bool,
    pub schema_mode: SchemaMode,
    pub filter: Filter,
    pub quiet: bool,
    /// Keep `_privaci` after a complete run (it is dropped by default).
    pub keep_state: bool,
    /// Tables larger than this (bytes, TOAST included) are split into ctid-range chunks
    /// copied in parallel; 0 never splits.
    pub split_bytes: i64,
}

/// How a run ended badly, mapped to exit codes 3, 2 and 1.
#[derive(Debug)]
pub enum CloneError {
    Config(Vec<ConfigError>),
    Preflight(Vec<String>),
    Failed(String),
}

impl From<Error> for CloneError {
    fn from(e: Error) -> Self {
        CloneError::Failed(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct UnitReport {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub masked_columns: Vec<String>,
    /// `copied`, `resumed` (done by an earlier run) or `failed: ...`.
    pub status: String,
}

#[derive(Debug, Default)]
pub struct CloneReport {
    pub units: Vec<UnitReport>,
    pub seconds: f64,
    /// Where the time went: (phase, seconds).
    pub phases: Vec<(String, f64)>,
    pub failed: Vec<String>,
    pub interrupted: bool,
}

/// A unit of work: one table or partition, or a ctid range of a big one.
#[derive(Debug, Clone)]
struct Unit {
    table: QualifiedName,
    size: i64,
    chunk: Option<Chunk>,
}

/// Blocks `from..to` of a table (the last chunk has no upper end, so rows past the estimate
/// are not missed).
#[derive(Debug, Clone, Copy)]
struct Chunk {
    index: usize,
    count: usize,
    from: i64,
    to: Option<i64>,
}

impl Unit {
    /// The name its checkpoint is recorded under.
    fn key(&self) -> String {
        match self.chunk {
            None => self.table.to_string(),
            Some(c) => format!("{}#{}/{}", self.table, c.index + 1, c.count),
        }
    }

    /// The row filter of a chunk.
    fn predicate(&self) -> String {
        match self.chunk {
            None => String::new(),
            Some(c) => format!(
                " WHERE ctid >= '({},0)'::tid{}",
                c.from,
                c.to.map(|t| format!(" AND ctid < '({t},0)'::tid"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Splits big tables into chunks of about `split_bytes`.
fn make_units(cat: &Catalog, split_bytes: i64) -> Vec<Unit> {
    let mut units = Vec::new();
    for t in cat.data_tables() {
        if split_bytes > 0 && t.size_bytes > split_bytes && t.pages > 1 {
            let count = ((t.size_bytes + split_bytes - 1) / split_bytes).min(t.pages) as usize;
            let step = (t.pages + count as i64 - 1) / count as i64;
            for index in 0..count {
                let to = (index + 1 < count).then(|| (index as i64 + 1) * step);
                units.push(Unit {
                    table: t.name.clone(),
                    size: t.size_bytes / count as i64,
                    chunk: Some(Chunk {
                        index,
                        count,
                        from: index as i64 * step,
                        to,
                    }),
                });
            }
        } else {
            units.push(Unit {
                table: t.name.clone(),
                size: t.size_bytes,
                chunk: None,
            });
        }
    }
    units
}

struct Shared {
    opts: CloneOptionsShared,
    catalog: Catalog,
    resolved: HashMap<QualifiedName, ResolvedTable>,
    oids: Arc<OidMap>,
    queue: Mutex<VecDeque<Unit>>,
    loaded: Mutex<HashSet<QualifiedName>>,
    /// Units of each table still to copy; a table is loaded when its count reaches zero.
    pending: Mutex<HashMap<QualifiedName, usize>>,
    steps_done: Mutex<HashSet<String>>,
    post: Vec<Step>,
    reports: Mutex<Vec<UnitReport>>,
    failed: Mutex<Vec<String>>,
    cancelled: Arc<AtomicBool>,
    cancel_tokens: Mutex<Vec<CancelToken>>,
    audit: Arc<Audit>,
    progress: super::progress::Progress,
    total_units: usize,
    done_count: Mutex<usize>,
}

struct CloneOptionsShared {
    /// With an existing schema the target's constraints are live during the load: no
    /// TRUNCATE (a referenced table cannot be truncated), and referenced tables load first.
    existing_schema: bool,
    source: Config,
    target: Config,
    key: Option<MaskKey>,
    snapshot: String,
}

/// Handle to stop a run from outside (Ctrl-C): copies are cancelled, units roll back.
#[derive(Clone, Default)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    tokens: Arc<Mutex<Option<Arc<Shared>>>>,
}

impl StopHandle {
    pub async fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let shared = self.tokens.lock().ok().and_then(|g| g.clone());
        if let Some(shared) = shared {
            let tokens: Vec<CancelToken> = shared
                .cancel_tokens
                .lock()
                .map(|t| t.clone())
                .unwrap_or_default();
            for t in tokens {
                let _ = t.cancel().await;
            }
        }
    }
}

fn step_key(s: &Step) -> String {
    format!("{:?}:{}", s.phase, s.object)
}

fn config_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn log(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// Connection errors worth a retry: the socket broke, or the server is restarting.
fn retryable(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Io | ErrorKind::Connect)
        || e.code()
            .is_some_and(|c| c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03"))
}

pub async fn run(
    opts: CloneOptions,
    audit: Arc<Audit>,
    stop: StopHandle,
) -> Result<CloneReport, CloneError> {
    let started = Instant::now();
    let quiet = opts.quiet;
    // 1. One snapshot for the whole run, held by the coordinator's transaction.
    let mut coordinator = connect(&opts.source)
        .await
        .map_err(|e| CloneError::Failed(e.context("source").to_string()))?;
    coordinator
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let snapshot = coordinator
        .query_text("SELECT pg_export_snapshot()")
        .await?
        .first()
        .and_then(|r| r[0].clone())
        .ok_or_else(|| CloneError::Failed("the source did not export a snapshot".into()))?;
    let cat = catalog::load(&mut coordinator, &opts.filter).await?;

    // 2. Config against the catalog (exit 3), then pre-flight (exit 2).
    let resolved = resolve(&opts.config, &opts.config_file, &cat, opts.key.as_ref())
        .map_err(CloneError::Config)?;
    let mut refusals = preflight::check_source(&cat);
    let mut target = connect(&opts.target)
        .await
        .map_err(|e| CloneError::Failed(e.context("target").to_string()))?;
    refusals
        .extend(preflight::check_target(&mut target, &cat, opts.schema_mode, opts.resume).await?);
    let fingerprint = opts
        .key
        .as_ref()
        .map(|k| k.fingerprint())
        .unwrap_or_else(|| "none".into());
    let hash = config_hash(&opts.config_text);
    let table_names: Vec<String> = cat.data_tables().map(|t| t.name.to_string()).collect();
    let prior = if opts.resume {
        match state::resume(&mut target, &fingerprint, &hash).await? {
            Ok(p) => p,
            Err(refusal) => {
                refusals.push(refusal);
                state::PriorRun::default()
            }
        }
    } else {
        state::PriorRun::default()
    };
    if !refusals.is_empty() {
        return Err(CloneError::Preflight(refusals));
    }
    audit.event(
        "run.start",
        json!({ "resume": opts.resume, "jobs": opts.jobs, "tables": table_names.len(), "snapshot": snapshot, "key_fingerprint": fingerprint }),
    );
    if !opts.resume {
        state::create(&mut target, &fingerprint, &hash, &table_names).await?;
    } else {
        for t in table_names.iter().filter(|t| !prior.tables.contains(*t)) {
            audit.event("new_table", json!({ "table": t }));
        }
    }
    let mut steps_done = prior.done_steps.clone();

    // 3. Pre-data, all at once: a crash leaves all of it or none.
    let mut phases: Vec<(String, f64)> = vec![(
        "checks, snapshot and catalog".into(),
        started.elapsed().as_secs_f64(),
    )];
    let mark = Instant::now();
    if opts.schema_mode == SchemaMode::Create && !steps_done.contains("pre-data") {
        log(quiet, "creating the schema on the target (pre-data)");
        target.execute("BEGIN").await?;
        schema::apply(&mut target, &schema::pre_data(&cat)).await?;
        target.execute(&state::step_done_sql("pre-data")).await?;
        target.execute("COMMIT").await?;
        steps_done.insert("pre-data".into());
    }
    target.execute("SET synchronous_commit = off").await?;
    let oids = Arc::new(oid_map(&mut coordinator, &mut target).await?);

    let post = if opts.schema_mode == SchemaMode::Create {
        schema::post_data(&cat)
    } else {
        schema::post_data(&cat)
            .into_iter()
            .filter(|s| s.phase == Phase::SequenceValues)
            .collect()
    };
    let mut units = make_units(&cat, opts.split_bytes);
    units.sort_by(|a, b| b.size.cmp(&a.size).then(a.key().cmp(&b.key())));
    let mut reports = Vec::new();
    units.retain(|u| {
        if prior.done_units.contains(&u.key()) {
            audit.event(
                "table.skipped",
                json!({ "table": u.key(), "reason": "done by an earlier run" }),
            );
            reports.push(UnitReport {
                table: u.key(),
                rows: 0,
                bytes: 0,
                seconds: 0.0,
                masked_columns: vec![],
                status: "resumed".into(),
            });
            false
        } else {
            true
        }
    });
    let mut pending: HashMap<QualifiedName, usize> = HashMap::new();
    for u in &units {
        *pending.entry(u.table.clone()).or_default() += 1;
    }
    // Tables with nothing left to copy (an earlier run did it) are loaded.
    let loaded: HashSet<QualifiedName> = cat
        .data_tables()
        .filter(|t| !pending.contains_key(&t.name))
        .map(|t| t.name.clone())
        .collect();
    // A split table is emptied once, before its chunks, unless some chunk already committed.
    for t in cat.data_tables() {
        let split = opts.schema_mode == SchemaMode::Create
            && units.iter().any(|u| u.table == t.name && u.chunk.is_some());
        let some_committed = prior
            .done_units
            .iter()
            .any(|k| k.starts_with(&format!("{}#", t.name)));
        if split && !some_committed {
            target
                .execute(&format!("TRUNCATE ONLY {}", t.name.quoted))
                .await?;
        }
    }
    let jobs = opts.jobs.max(1).min(units.len().max(1));
    let total_bytes: u64 = units.iter().map(|u| u.size.max(0) as u64).sum();
    let progress = super::progress::Progress::new(jobs, total_bytes, units.len(), quiet);
    let shared = Arc::new(Shared {
        opts: CloneOptionsShared {
            existing_schema: opts.schema_mode == SchemaMode::Existing,
            source: opts.source.clone(),
            target: opts.target.clone(),
            key: opts.key.clone(),
            snapshot,
        },
        resolved: resolved.into_iter().map(|r| (r.table.clone(), r)).collect(),
        catalog: cat,
        oids,
        total_units: units.len(),
        queue: Mutex::new(units.into()),
        loaded: Mutex::new(loaded),
        pending: Mutex::new(pending),
        steps_done: Mutex::new(steps_done),
        post,
        reports: Mutex::new(reports),
        failed: Mutex::new(Vec::new()),
        cancelled: stop.flag.clone(),
        cancel_tokens: Mutex::new(vec![coordinator.cancel_token(), target.cancel_token()]),
        audit: audit.clone(),
        progress,
        done_count: Mutex::new(0),
    });
    if let Ok(mut g) = stop.tokens.lock() {
        *g = Some(shared.clone());
    }

    // Keys and indexes of partitioned parents first: partitions attach to them. Tables an
    // earlier run loaded get any post-data it did not finish.
    let early: Vec<QualifiedName> = shared
        .catalog
        .tables
        .iter()
        .filter(|t| t.is_partitioned())
        .map(|t| t.name.clone())
        .chain(
            shared
                .loaded
                .lock()
                .map(|l| l.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        )
        .collect();
    for t in early {
        table_post_data(&shared, &mut target, &t).await?;
    }
    foreign_keys_ready(&shared, &mut target).await?;

    phases.push((
        "pre-data and early post-data".into(),
        mark.elapsed().as_secs_f64(),
    ));
    let mark = Instant::now();
    // 4. Workers.
    shared.progress.line(&format!(
        "copying {} units with {jobs} workers",
        shared.total_units
    ));
    let mut handles = Vec::new();
    for id in 0..jobs {
        let shared = shared.clone();
        handles.push(tokio::spawn(async move { worker(id, shared).await }));
    }
    for h in handles {
        let joined = h.await;
        if let Ok(Err(e)) = joined {
            shared
                .failed
                .lock()
                .map(|mut f| f.push(format!("worker: {e}")))
                .ok();
        }
    }
    shared.progress.finish();
    let interrupted = shared.cancelled.load(Ordering::SeqCst);

    phases.push((
        "rows, then each table's keys and indexes (workers)".into(),
        mark.elapsed().as_secs_f64(),
    ));
    let mark = Instant::now();
    // 5. The rest of post-data, if nothing was interrupted.
    if !interrupted {
        foreign_keys_ready(&shared, &mut target).await?;
        let failed_tables: HashSet<String> = shared
            .failed
            .lock()
            .map(|f| {
                f.iter()
                    .filter_map(|m| m.split(':').next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for s in shared.post.iter().filter(|s| {
            matches!(
                s.phase,
                Phase::Triggers | Phase::Views | Phase::SequenceValues
            )
        }) {
            if s.table
                .as_ref()
                .is_some_and(|t| failed_tables.contains(&t.to_string()))
            {
                continue;
            }
            run_step(&shared, &mut target, s).await?;
        }
    }
    let _ = coordinator.execute("COMMIT").await;
    let failed = shared.failed.lock().map(|f| f.clone()).unwrap_or_default();
    let complete = failed.is_empty() && !interrupted;
    if complete && !opts.keep_state {
        state::drop(&mut target).await?;
    }
    let _ = target.close().await;
    let _ = coordinator.close().await;
    let mut units = shared.reports.lock().map(|r| r.clone()).unwrap_or_default();
    units.sort_by(|a, b| a.table.cmp(&b.table));
    phases.push((
        "final post-data: foreign keys, triggers, views, sequences".into(),
        mark.elapsed().as_secs_f64(),
    ));
    let report = CloneReport {
        units,
        seconds: started.elapsed().as_secs_f64(),
        phases,
        failed,
        interrupted,
    };
    audit.event(
        "run.end",
        json!({ "status": if complete { "done" } else if interrupted { "interrupted" } else { "failed" }, "seconds": report.seconds, "failed": report.failed.len() }),
    );
    Ok(report)
}

/// Source OIDs of user-defined types mapped to the target's, by name.
async fn oid_map(source: &mut Connection, target: &mut Connection) -> Result<OidMap, Error> {
    let sql = format!(
        "SELECT t.oid, quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typtype, t.typelem, t.typcategory
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid >= {FIRST_NORMAL_OID}"
    );
    let read = |rows: Vec<Vec<Option<String>>>| -> Vec<(u32, String, OidKind)> {
        rows.into_iter()
            .filter_map(|r| {
                let oid: u32 = r[0].as_deref()?.parse().ok()?;
                let elem: u32 = r[3].as_deref()?.parse().ok()?;
                let kind = if r[2].as_deref() == Some("c") {
                    OidKind::Composite
                } else if r[4].as_deref() == Some("A") && elem != 0 {
                    OidKind::Array { elem }
                } else {
                    OidKind::Plain
                };
                Some((oid, r[1].clone()?, kind))
            })
            .collect()
    };
    let src = read(source.query_text(&sql).await?);
    let dst: HashMap<String, u32> = read(target.query_text(&sql).await?)
        .into_iter()
        .map(|(o, n, _)| (n, o))
        .collect();
    let mut map = OidMap::default();
    for (oid, name, kind) in src {
        if let Some(&t) = dst.get(&name) {
            map.map.insert(oid, (t, kind));
        }
    }
    Ok(map)
}

async fn session(shared: &Shared) -> Result<(Connection, Connection), Error> {
    let mut source = connect(&shared.opts.source)
        .await
        .map_err(|e| e.context("source"))?;
    // Synchronized scans could start a copy mid-table; a row number must mean the same row
    // when an error names one.
    source.execute("SET synchronize_seqscans = off").await?;
    let mut target = connect(&shared.opts.target)
        .await
        .map_err(|e| e.context("target"))?;
    target
        .execute("SET synchronous_commit = off; SET check_function_bodies = false")
        .await?;
    if let Ok(mut t) = shared.cancel_tokens.lock() {
        t.push(source.cancel_token());
        t.push(target.cancel_token());
    }
    Ok((source, target))
}

async fn worker(id: usize, shared: Arc<Shared>) -> Result<(), Error> {
    let mut conns: Option<(Connection, Connection)> = None;
    loop {
        if shared.cancelled.load(Ordering::SeqCst) {
            return Ok(());
        }
        let unit = match next_unit(&shared) {
            Next::Unit(u) => u,
            Next::Wait => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Next::Done => return Ok(()),
        };
        let name = unit.key();
        shared.audit.event("table.start", json!({ "table": name }));
        shared.progress.unit_start(id, &name);
        let mut attempt = 0u32;
        loop {
            if conns.is_none() {
                match session(&shared).await {
                    Ok(c) => conns = Some(c),
                    Err(e)
                        if retryable(&e)
                            && attempt < 3
                            && !shared.cancelled.load(Ordering::SeqCst) =>
                    {
                        attempt += 1;
                        retry_pause(&shared, &name, attempt, &e).await;
                        continue;
                    }
                    Err(e) => {
                        fail(&shared, &name, &e, None);
                        break;
                    }
                }
            }
            let Some((source, target)) = conns.as_mut() else {
                break;
            };
            let started = Instant::now();
            let on_bytes = |n: u64| shared.progress.bytes(id, n);
            match copy_unit(&shared, source, target, &unit, &on_bytes).await {
                Ok((rows, bytes, masked)) => {
                    let seconds = started.elapsed().as_secs_f64();
                    shared.audit.event("table.end", json!({ "table": name, "rows": rows, "bytes": bytes, "seconds": seconds, "masked_columns": masked }));
                    let n = shared.done_count.lock().map(|mut c| {
                        *c += 1;
                        *c
                    });
                    let n = n.unwrap_or(0);
                    shared.progress.unit_done(id, n, shared.total_units);
                    shared.progress.line(&format!(
                        "[{n}/{}] {name}: {rows} rows, {:.1} MB in {seconds:.2} s ({:.0} MB/s){}",
                        shared.total_units,
                        bytes as f64 / 1e6,
                        bytes as f64 / 1e6 / seconds.max(1e-6),
                        if masked.is_empty() {
                            String::new()
                        } else {
                            format!(", masked: {}", masked.join(", "))
                        }
                    ));
                    if let Ok(mut r) = shared.reports.lock() {
                        r.push(UnitReport {
                            table: name.clone(),
                            rows,
                            bytes,
                            seconds,
                            masked_columns: masked,
                            status: "copied".into(),
                        });
                    }
                    // The table's last unit builds its keys and indexes; loaded means keys built
                    // too, so foreign keys to it may then be added.
                    let last = shared.pending.lock().map(|mut p| {
                        let left = p.entry(unit.table.clone()).or_insert(1);
                        *left = left.saturating_sub(1);
                        *left == 0
                    });
                    if last.unwrap_or(false) {
                        match table_post_data(&shared, target, &unit.table).await {
                            Ok(()) => {
                                if let Ok(mut l) = shared.loaded.lock() {
                                    l.insert(unit.table.clone());
                                }
                            }
                            Err(e) => fail(&shared, &name, &e, None),
                        }
                    }
                    if let Err(e) = foreign_keys_ready(&shared, target).await {
                        fail(&shared, &format!("{name} (foreign keys)"), &e, None);
                    }
                    break;
                }
                Err((e, pk)) => {
                    if shared.cancelled.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    if retryable(&e) && attempt < 3 {
                        attempt += 1;
                        conns = None;
                        retry_pause(&shared, &name, attempt, &e).await;
                        continue;
                    }
                    fail(&shared, &name, &e, pk);
                    // A connection that failed mid-COPY is not reused.
                    conns = None;
                    break;
                }
            }
        }
    }
}

enum Next {
    Unit(Unit),
    /// Every remaining unit waits for a table another worker is loading.
    Wait,
    Done,
}

/// The next unit, largest first. With an existing schema the target's foreign keys are
/// checked during the load, so a unit waits until the tables it references are loaded; when
/// nothing is in flight (a cycle of references) it goes anyway.
fn next_unit(shared: &Shared) -> Next {
    let Ok(mut queue) = shared.queue.lock() else {
        return Next::Done;
    };
    if queue.is_empty() {
        return Next::Done;
    }
    if !shared.opts.existing_schema {
        return queue.pop_front().map_or(Next::Done, Next::Unit);
    }
    let loaded = shared.loaded.lock().map(|l| l.clone()).unwrap_or_default();
    let ready = |u: &Unit| {
        let owner = shared.catalog.tables.iter().find(|t| t.name == u.table);
        let rules = owner
            .and_then(|t| t.parent.clone())
            .unwrap_or_else(|| u.table.clone());
        shared
            .catalog
            .tables
            .iter()
            .filter(|t| t.name == rules || t.name == u.table)
            .flat_map(|t| &t.constraints)
            .all(|c| {
                c.kind != crate::catalog::ConstraintKind::ForeignKey
                    || c.references.as_ref().is_none_or(|(r, _)| {
                        *r == rules || *r == u.table || is_loaded(shared, &loaded, r)
                    })
            })
    };
    if let Some(i) = queue.iter().position(ready) {
        return queue.remove(i).map_or(Next::Done, Next::Unit);
    }
    let in_flight = shared
        .pending
        .lock()
        .map(|p| p.values().sum::<usize>())
        .unwrap_or(0)
        > queue.len();
    if in_flight {
        Next::Wait
    } else {
        queue.pop_front().map_or(Next::Done, Next::Unit)
    }
}

async fn retry_pause(shared: &Shared, table: &str, attempt: u32, e: &Error) {
    let wait = Duration::from_millis(500 * (1 << (attempt - 1)));
    shared.audit.event("table.retry", json!({ "table": table, "attempt": attempt, "error": sanitize(e), "wait_ms": wait.as_millis() as u64 }));
    shared.progress.line(&format!(
        "{table}: connection lost ({}); retry {attempt} of 3 in {} ms",
        sanitize(e),
        wait.as_millis()
    ));
    tokio::time::sleep(wait).await;
}

fn fail(shared: &Shared, table: &str, e: &Error, primary_key: Option<String>) {
    let msg = sanitize(e);
    shared.audit.event(
        "table.failed",
        json!({ "table": table, "error": msg, "primary_key": primary_key }),
    );
    let pk = primary_key
        .map(|k| format!(" (row with primary key {k})"))
        .unwrap_or_default();
    shared.progress.line(&format!("{table}: FAILED{pk}: {msg}"));
    if let Ok(mut f) = shared.failed.lock() {
        f.push(format!("{table}:{pk} {msg}"));
    }
}

/// Copies one unit in one target transaction with its checkpoint. On failure, returns the
/// error and, for a row the target rejected, that row's primary key read from the source.
async fn copy_unit(
    shared: &Shared,
    source: &mut Connection,
    target: &mut Connection,
    unit: &Unit,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(u64, u64, Vec<String>), (Error, Option<String>)> {
    let table = shared
        .catalog
        .tables
        .iter()
        .find(|t| t.name == unit.table)
        .ok_or_else(|| {
            (
                Error::new(ErrorKind::Protocol, "unit not in the catalog"),
                None,
            )
        })?;
    let resolved = shared
        .resolved
        .get(&unit.table)
        .ok_or_else(|| (Error::new(ErrorKind::Protocol, "unit not resolved"), None))?;
    let mut plan = resolved
        .plan(shared.opts.key.as_ref())
        .map_err(|m| (Error::new(ErrorKind::Mask, m), None))?;
    // A column type without binary I/O makes the whole table travel in text format.
    let text = !resolved.text_fallback.is_empty();
    if text {
        shared.audit.event(
            "table.fallback_text",
            json!({ "table": table.name.to_string(), "columns": resolved.text_fallback }),
        );
    }
    // Columns whose binary values embed type OIDs have them rewritten (text has no OIDs).
    for (name, action) in plan.columns.iter_mut().filter(|_| !text) {
        if let (ColumnAction::Keep, Some(col)) =
            (&*action, table.columns.iter().find(|c| &c.name == name))
        {
            if needs_remap(&shared.oids, col.type_oid) {
                *action =
                    ColumnAction::Mask(Box::new(Remap::new(shared.oids.clone(), col.type_oid)));
            }
        }
    }
    let masked: Vec<String> = resolved
        .columns
        .iter()
        .filter(|c| c.copied && c.strategy != crate::mask::StrategySpec::Keep)
        .map(|c| c.name.clone())
        .collect();
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

    let result = async {
        source
            .execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
                catalog::quote_literal(&shared.opts.snapshot)
            ))
            .await?;
        // A whole table is emptied and loaded frozen in one transaction; a chunk is only loaded
        // (the table was emptied once, before its chunks).
        let whole = unit.chunk.is_none() && !shared.opts.existing_schema;
        if whole {
            target
                .execute(&format!("BEGIN; TRUNCATE ONLY {}", table.name.quoted))
                .await?;
        } else {
            target.execute("BEGIN").await?;
        }
        let mut out = source
            .copy_out(&format!(
                "COPY (SELECT {} FROM ONLY {}{}) TO STDOUT (FORMAT {})",
                source_cols.join(", "),
                table.name.quoted,
                unit.predicate(),
                if text { "text" } else { "binary" }
            ))
            .await?;
        let sink = target
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN (FORMAT {}{})",
                table.name.quoted,
                target_cols.join(", "),
                if text { "text" } else { "binary" },
                if whole { ", FREEZE" } else { "" }
            ))
            .await?;
        // The stream's format (text for a fallback table) picks the rewriter.
        let stats =
            super::stream_table(&table.name.to_string(), &mut out, sink, plan, on_bytes).await?;
        drop(out);
        target
            .execute(&state::checkpoint_sql(
                &unit.key(),
                stats.rows,
                stats.bytes_in,
            ))
            .await?;
        target.execute("COMMIT").await?;
        source.execute("COMMIT").await?;
        Ok::<_, Error>(stats)
    }
    .await;
    match result {
        Ok(stats) => Ok((stats.rows, stats.bytes_in, masked)),
        Err(e) => {
            // Name the rejected row by its primary key, read in the same snapshot.
            let pk = match (copy_error_line(&e), table.primary_key()) {
                (Some(line), Some(pk)) if !retryable(&e) => {
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
                }
                _ => None,
            };
            let _ = target.execute("ROLLBACK").await;
            let _ = source.execute("ROLLBACK").await;
            Err((e, pk))
        }
    }
}

fn needs_remap(oids: &OidMap, type_oid: u32) -> bool {
    match oids.map.get(&type_oid) {
        Some((_, OidKind::Composite)) => true,
        Some((_, OidKind::Array { elem })) => *elem >= FIRST_NORMAL_OID,
        _ => false,
    }
}

/// A post-data step, once, recorded as done in the same transaction.
async fn run_step(shared: &Shared, target: &mut Connection, s: &Step) -> Result<(), Error> {
    let key = step_key(s);
    if shared
        .steps_done
        .lock()
        .map(|d| d.contains(&key))
        .unwrap_or(false)
    {
        return Ok(());
    }
    target.execute("BEGIN").await?;
    let res = async {
        target
            .execute("SET LOCAL check_function_bodies = false")
            .await?;
        target
            .execute(&s.sql)
            .await
            .map_err(|e| e.context(format!("creating {} on the target", s.object)))?;
        target.execute(&state::step_done_sql(&key)).await?;
        target.execute("COMMIT").await
    }
    .await;
    if res.is_err() {
        let _ = target.execute("ROLLBACK").await;
    } else if let Ok(mut d) = shared.steps_done.lock() {
        d.insert(key);
    }
    res
}

/// A loaded table's keys and indexes.
async fn table_post_data(
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

/// Loaded: copied, or a partitioned table whose partitions are all copied.
fn is_loaded(shared: &Shared, loaded: &HashSet<QualifiedName>, t: &QualifiedName) -> bool {
    loaded.contains(t)
        || (shared
            .catalog
            .tables
            .iter()
            .any(|x| &x.name == t && x.is_partitioned())
            && shared
                .catalog
                .children(t)
                .all(|c| is_loaded(shared, loaded, &c.name)))
}

/// Foreign keys whose two ends are loaded, each run once by whoever gets there first.
async fn foreign_keys_ready(shared: &Shared, target: &mut Connection) -> Result<(), Error> {
    loop {
        // Under the lock: pick a ready key and claim it by marking it done.
        let next = {
            let loaded = shared.loaded.lock().map(|l| l.clone()).unwrap_or_default();
            let Ok(mut done) = shared.steps_done.lock() else {
                return Ok(());
            };
            let ready = shared
                .post
                .iter()
                .find(|s| {
                    s.phase == Phase::ForeignKeys
                        && !done.contains(&step_key(s))
                        && s.table
                            .as_ref()
                            .is_some_and(|t| is_loaded(shared, &loaded, t))
                        && s.needs.iter().all(|n| is_loaded(shared, &loaded, n))
                })
                .cloned();
            if let Some(s) = &ready {
                done.insert(step_key(s));
            }
            ready
        };
        let Some(s) = next else { return Ok(()) };
        target.execute("BEGIN").await?;
        let res = async {
            target
                .execute(&s.sql)
                .await
                .map_err(|e| e.context(format!("creating {} on the target", s.object)))?;
            target.execute(&state::step_done_sql(&step_key(&s))).await?;
            target.execute("COMMIT").await
        }
        .await;
        if let Err(e) = res {
            let _ = target.execute("ROLLBACK").await;
            return Err(e);
        }
    }
}
