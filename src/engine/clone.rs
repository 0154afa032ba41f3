//! The clone run: one consistent snapshot of the source, taken after every table to copy is
//! locked, shared by every worker; one run per target (an advisory lock); pre-data on the
//! target, then work units (each table and each partition, big ones in recorded ctid chunks),
//! largest first, over workers the servers have slots for. A unit's rows and its checkpoint
//! commit in one target transaction; `--resume` checks what earlier runs committed and redoes
//! only what is not (or no longer) there. Once a run has started, it always ends with its
//! report and the audit `run.end`, whatever failed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::{sanitize, Audit};
use super::connections::{cap_jobs, headroom, TargetLink};
use super::copy_unit::{copy_unit, SourceSession};
use super::post_data::{
    final_post_data, finish_loaded_tables, foreign_keys_ready, step_key, table_post_data,
};
pub use super::preflight::SchemaMode;
use super::preflight::{self};
use super::resume_check::{self, Redo};
use super::shared::{lock, Connections, Shared};
pub use super::shared::{Failure, UnitReport};
use super::snapshot;
use super::state::{self, PriorRun, RunIdentity};
use super::units::{self, Unit};
use super::worker::{after_unit, unit_done};
use crate::catalog::{self, Catalog, Filter, QualifiedName};
use crate::config::resolve::resolve;
use crate::config::{ConfigError, MaskingConfig};
use crate::conn::{connect, CancelToken, Connection};
use crate::conninfo::Config;
use crate::error::Error;
use crate::mask::remap::{OidMap, FIRST_NORMAL_OID};
use crate::mask::MaskKey;
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
    /// How long to wait for each source table's lock before giving up.
    pub lock_timeout: Duration,
    /// Leave out (and list) objects privaci cannot create instead of refusing the run.
    pub skip_unsupported: bool,
    /// Leave large objects out (they are copied as they are: no masking rule reaches them).
    pub no_large_objects: bool,
    /// Recreate grants and default privileges for roles that exist on the target.
    pub privileges: bool,
}

/// How a run ended badly before it started, mapped to exit codes 3, 2 and 1. Once started,
/// a run returns its report, failures included.
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

#[derive(Debug, Default)]
pub struct CloneReport {
    pub units: Vec<UnitReport>,
    pub seconds: f64,
    /// Where the time went: (phase, seconds).
    pub phases: Vec<(String, f64)>,
    /// Round trips to (source, target) in each phase, in the order of `phases`.
    pub round_trips: Vec<(u64, u64)>,
    pub failed: Vec<Failure>,
    pub interrupted: bool,
    /// Things the user should know that are not failures (jobs capped, tables redone...).
    pub notes: Vec<String>,
}

impl CloneReport {
    /// Ends a phase: its time, and the round trips made to each server since the last one.
    fn phase(&mut self, name: &str, seconds: f64, counters: &super::shared::RoundTrips) {
        let (source, target) = counters.read();
        let (s0, t0) = self
            .round_trips
            .iter()
            .fold((0, 0), |(a, b), (s, t)| (a + s, b + t));
        self.phases.push((name.to_string(), seconds));
        self.round_trips
            .push((source.saturating_sub(s0), target.saturating_sub(t0)));
    }
}

/// Handle to stop a run from outside (a signal): copies are cancelled, units roll back.
#[derive(Clone, Default)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    tokens: Arc<Mutex<Vec<CancelToken>>>,
    shared: Arc<Mutex<Option<Arc<Shared>>>>,
}

impl StopHandle {
    pub async fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let mut tokens: Vec<CancelToken> = lock(&self.tokens).clone();
        if let Some(shared) = lock(&self.shared).clone() {
            tokens.extend(lock(&shared.cancel_tokens).iter().cloned());
        }
        for t in tokens {
            let _ = t.cancel().await;
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn watch(&self, token: CancelToken) {
        lock(&self.tokens).push(token);
    }
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

/// What pre-flight settled, for the run proper.
struct Prepared {
    round_trips: super::shared::RoundTrips,
    coordinator: Connection,
    target: TargetLink,
    snapshot_id: String,
    catalog: Catalog,
    resolved: Vec<crate::config::resolve::ResolvedTable>,
    resume: bool,
    prior: PriorRun,
    units: Vec<Unit>,
    redo: Vec<Redo>,
    jobs: usize,
    fingerprint: String,
    config_hash: String,
    notes: Vec<String>,
}

pub async fn run(
    opts: CloneOptions,
    audit: Arc<Audit>,
    stop: StopHandle,
) -> Result<CloneReport, CloneError> {
    let started = Instant::now();
    let prepared = prepare(&opts, &stop).await?;
    audit.event(
        "run.start",
        json!({ "resume": prepared.resume, "jobs": prepared.jobs, "tables": prepared.catalog.data_tables().count(), "snapshot": prepared.snapshot_id, "key_fingerprint": prepared.fingerprint }),
    );
    if opts.schema_mode == SchemaMode::Create {
        for (kind, name, why) in &prepared.catalog.unsupported {
            audit.event(
                "object.skipped",
                json!({ "kind": kind, "name": name, "why": why }),
            );
        }
    }
    for r in &prepared.redo {
        audit.event(
            "table.redo",
            json!({ "table": r.table.to_string(), "reason": r.reason }),
        );
    }
    let mut report = CloneReport {
        notes: prepared.notes.clone(),
        ..CloneReport::default()
    };
    report.phase(
        "checks, locks, snapshot and catalog",
        started.elapsed().as_secs_f64(),
        &prepared.round_trips,
    );
    let outcome = execute(&opts, prepared, &audit, &stop, &mut report).await;
    if let Err(e) = outcome {
        let f = Failure {
            table: None,
            what: "run".into(),
            message: sanitize(&e),
            row: None,
        };
        audit.event("run.failed", json!({ "error": f.message }));
        report.failed.push(f);
    }
    report.interrupted |= stop.is_stopped();
    report.seconds = started.elapsed().as_secs_f64();
    report.units.sort_by(|a, b| a.table.cmp(&b.table));
    let complete = report.failed.is_empty() && !report.interrupted;
    audit.event(
        "run.end",
        json!({ "status": if complete { "done" } else if report.interrupted { "interrupted" } else { "failed" }, "seconds": report.seconds, "failed": report.failed.len() }),
    );
    // The record of a run is part of the run: without it, the run did not succeed.
    if let Some(message) = audit.failure() {
        report.failed.push(Failure {
            table: None,
            what: "audit log".into(),
            message: format!("{message}; the run's record is incomplete"),
            row: None,
        });
    }
    Ok(report)
}

/// Everything before the first write: snapshot and locks, config, the run lock, pre-flight,
/// the earlier run's state and what of it must be redone.
async fn prepare(opts: &CloneOptions, stop: &StopHandle) -> Result<Prepared, CloneError> {
    let mut notes = Vec::new();
    let round_trips = super::shared::RoundTrips::default();
    let mut coordinator = connect(&opts.source)
        .await
        .map_err(|e| CloneError::Failed(e.context("source").to_string()))?;
    coordinator.count_round_trips(round_trips.source.clone());
    stop.watch(coordinator.cancel_token());
    let snap = snapshot::take(&mut coordinator, &opts.filter, opts.lock_timeout)
        .await
        .map_err(|e| CloneError::Failed(format!("source: {}", sanitize(&e))))?;
    let mut cat = snap.catalog;
    // A filter name that matches nothing is a mistake that would copy what it meant to leave
    // out: refused like a config error, before anything is written.
    let misses = catalog::filter_misses(&mut coordinator, &opts.filter).await?;
    if !misses.is_empty() {
        return Err(CloneError::Config(
            misses
                .into_iter()
                .map(|message| ConfigError {
                    file: "command line".into(),
                    line: None,
                    place: None,
                    message,
                })
                .collect(),
        ));
    }

    // Config against the catalog (exit 3), then pre-flight (exit 2).
    let mut resolved = resolve(&opts.config, &opts.config_file, &cat, opts.key.as_ref());
    if opts.key.is_none() && opts.config.needs_key() {
        let missing = ConfigError {
            file: opts.config_file.clone(),
            line: None,
            place: None,
            message: crate::config::resolve::missing_key_message(true),
        };
        match &mut resolved {
            Ok(_) => resolved = Err(vec![missing]),
            Err(errors) => errors.insert(0, missing),
        }
    }
    let resolved = resolved.map_err(CloneError::Config)?;
    if opts.no_large_objects {
        cat.large_objects.clear();
        cat.grants.retain(|g| !g.object.starts_with("LARGE OBJECT"));
    } else if !cat.large_objects.is_empty() {
        notes.push(format!(
            "{} large object(s) are copied as they are (no masking rule reaches them; --no-large-objects leaves them out)",
            cat.large_objects.len()
        ));
    }
    let mut refusals = preflight::check_source(&cat);
    let mut target = match TargetLink::open(&opts.target).await {
        Ok(Ok(t)) => t,
        Ok(Err(other_run)) => return Err(CloneError::Preflight(vec![other_run])),
        Err(e) => return Err(CloneError::Failed(format!("target: {}", sanitize(&e)))),
    };
    if let Some(t) = target.cancel_token() {
        stop.watch(t);
    }
    target.count_round_trips(round_trips.target.clone());
    let tc = target.conn().await?;
    preflight::fit_to_target(tc, &mut cat, opts.schema_mode).await?;
    if opts.privileges && opts.schema_mode == SchemaMode::Existing {
        notes.push("--privileges is for a schema privaci creates: with --schema existing, grants are your migrations' to make".into());
        cat.grants.clear();
    } else if opts.privileges {
        let roles = preflight::target_roles(tc).await?;
        for (role, n) in cat.grants_for_roles(&roles) {
            notes.push(format!(
                "{n} grant(s) to role {role} left out: no such role on the target (create it, then run again or grant by hand)"
            ));
        }
    } else {
        cat.grants.clear();
    }
    refusals.extend(preflight::check_unsupported(
        &cat,
        opts.schema_mode,
        opts.skip_unsupported,
    ));
    if opts.schema_mode == SchemaMode::Create {
        for (kind, name, why) in &cat.unsupported {
            notes.push(format!("skipped {kind} {name}: {why}"));
        }
    }
    let has_state = state::exists(tc).await?;
    let resume = opts.resume && has_state;
    if opts.resume && !has_state {
        notes.push("--resume, but the target holds no earlier run (nothing had committed): starting a new run".into());
    }
    refusals.extend(preflight::check_target(tc, &cat, opts.schema_mode, resume).await?);
    let fingerprint = opts
        .key
        .as_ref()
        .map(|k| k.fingerprint())
        .unwrap_or_else(|| "none".into());
    let hash = config_hash(&opts.config_text);
    let tables: Vec<QualifiedName> = cat.data_tables().map(|t| t.name.clone()).collect();
    let prior = if resume {
        match state::resume(
            tc,
            &fingerprint,
            &hash,
            opts.split_bytes,
            &tables,
            &RunIdentity::this_process(),
        )
        .await?
        {
            Ok(p) => p,
            Err(refusal) => {
                refusals.push(refusal);
                PriorRun::default()
            }
        }
    } else {
        PriorRun::default()
    };
    // Units: as recorded by the earlier run where it planned the table, new otherwise.
    let mut units: Vec<Unit> = Vec::new();
    for t in cat.data_tables() {
        match prior.planned.get(&t.name.to_string()) {
            Some(recorded) => units.extend(recorded.iter().map(|u| Unit {
                size: t.size_bytes / recorded.len().max(1) as i64,
                ..u.clone()
            })),
            None => units.extend(units::plan_table(
                &t.name,
                t.size_bytes,
                t.pages,
                opts.split_bytes,
            )),
        }
    }
    units::sort_largest_first(&mut units);
    // An earlier run stopped inside pre-data copied nothing yet: the rest of pre-data makes
    // the tables still missing, there is nothing to check or redo.
    let pre_data_done =
        opts.schema_mode == SchemaMode::Existing || prior.done_steps.contains("pre-data");
    let redo = if resume && refusals.is_empty() && pre_data_done {
        resume_check::check(&mut coordinator, tc, &cat, &prior, &units).await?
    } else {
        Vec::new()
    };
    if opts.schema_mode == SchemaMode::Existing {
        // Tables the user's migrations made cannot be emptied by privaci (live foreign keys):
        // a partly lost table must be emptied by the user.
        for r in redo.iter().filter(|r| !r.missing) {
            refusals.push(format!(
                "--resume: table {} must be copied again ({}), but with --schema existing privaci does not empty tables: TRUNCATE it on the target, then resume",
                r.table, r.reason
            ));
        }
    }
    // Workers the servers have connection slots for.
    let requested = opts.jobs.max(1);
    let (src_room, dst_room) = (headroom(&mut coordinator).await?, headroom(tc).await?);
    let jobs = cap_jobs(requested, &src_room, &dst_room).min(units.len().max(1));
    if jobs < requested.min(units.len().max(1)) {
        notes.push(format!(
            "--jobs {requested} is more than the servers have connection slots for (source: {} free, target: {} free{}): using {jobs} worker(s)",
            src_room.free,
            dst_room.free,
            if src_room.server == dst_room.server { ", one server shared by both" } else { "" }
        ));
    }
    if !refusals.is_empty() {
        if opts.resume && !has_state {
            refusals.push("--resume found no earlier run on the target (no schema _privaci): there is nothing to resume, and a new run needs a target without the tables".into());
        }
        return Err(CloneError::Preflight(refusals));
    }
    if stop.is_stopped() {
        return Err(CloneError::Failed(
            "interrupted before anything was written to the target".into(),
        ));
    }
    Ok(Prepared {
        round_trips,
        coordinator,
        target,
        snapshot_id: snap.id,
        catalog: cat,
        resolved,
        resume,
        prior,
        units,
        redo,
        jobs,
        fingerprint,
        config_hash: hash,
        notes,
    })
}

/// The run proper. An error here ends the run with its report (the caller records it).
async fn execute(
    opts: &CloneOptions,
    p: Prepared,
    audit: &Arc<Audit>,
    stop: &StopHandle,
    report: &mut CloneReport,
) -> Result<(), Error> {
    let quiet = opts.quiet;
    let Prepared {
        mut coordinator,
        mut target,
        catalog: cat,
        mut prior,
        mut units,
        redo,
        ..
    } = p;
    target.on_retry = Box::new(move |m| log(quiet, m));
    let mark = Instant::now();
    let table_names: Vec<String> = cat.data_tables().map(|t| t.name.to_string()).collect();
    if !p.resume {
        let who = RunIdentity::this_process();
        let new = state::NewRun {
            key_fingerprint: &p.fingerprint,
            config_hash: &p.config_hash,
            split_bytes: opts.split_bytes,
            tables: &table_names,
            units: &units,
            who: &who,
        };
        target
            .run("recording the run", async |c| {
                // A retry after a cut that came after the COMMIT finds the state there.
                if state::exists(c).await? {
                    return Ok(());
                }
                state::create(c, &new).await
            })
            .await?;
    } else {
        for t in table_names.iter().filter(|t| !prior.tables.contains(*t)) {
            audit.event("new_table", json!({ "table": t }));
        }
        // Units of tables the earlier run did not know are recorded now.
        let new_units: Vec<Unit> = units
            .iter()
            .filter(|u| !prior.planned.contains_key(&u.table.to_string()))
            .cloned()
            .collect();
        if !new_units.is_empty() {
            let sql = state::record_units_sql(&new_units);
            target
                .run("recording new tables", async |c| c.execute(&sql).await)
                .await?;
        }
    }

    // Pre-data, in batches that each commit with their records (see PRE_DATA_BATCH).
    let pre = schema::pre_data(&cat);
    // Objects that could not be created (a view on an excluded table, say): reported as
    // failures once the run's bookkeeping exists; everything else was created.
    let mut skipped: Vec<(String, Error)> = Vec::new();
    if opts.schema_mode == SchemaMode::Create && !prior.done_steps.contains("pre-data") {
        log(quiet, "creating the schema on the target (pre-data)");
        for name in schema::cycle_breaks(&cat) {
            log(
                quiet,
                format!("{name} is part of a dependency cycle: created before what it needs"),
            );
        }
        // In transactions of PRE_DATA_BATCH statements, each with the records of its
        // statements: thousands of tables would overflow the target's lock table in one
        // transaction (as pg_restore, which commits each object). A crash leaves whole
        // batches; --resume skips the statements recorded and goes on.
        let keys = pre_data_keys(&pre);
        target
            .run("creating the schema", async |c| {
                skipped.clear();
                if state::step_done(c, "pre-data").await? {
                    return Ok(());
                }
                let done = state::steps_done_with_prefix(c, PRE_DATA_KEY).await?;
                let todo: Vec<(Step, String)> = pre
                    .iter()
                    .zip(&keys)
                    .filter(|(_, k)| !done.contains(*k))
                    .map(|(s, k)| (s.clone(), k.clone()))
                    .collect();
                for batch in todo.chunks(PRE_DATA_BATCH) {
                    c.execute("BEGIN").await?;
                    let steps: Vec<Step> = batch.iter().map(|(s, _)| s.clone()).collect();
                    let res = async {
                        let failed = schema::apply(c, &steps).await?;
                        // A tolerant step that failed is not recorded: --resume tries again.
                        let failed_objects: HashSet<&str> =
                            failed.iter().map(|(o, _)| o.as_str()).collect();
                        let recorded: Vec<String> = batch
                            .iter()
                            .filter(|(s, _)| !failed_objects.contains(s.object.as_str()))
                            .map(|(_, k)| k.clone())
                            .collect();
                        c.execute(&format!("{}; COMMIT", state::steps_done_sql(&recorded)))
                            .await?;
                        Ok::<_, Error>(failed)
                    }
                    .await;
                    match res {
                        Ok(failed) => skipped.extend(failed),
                        Err(e) => {
                            if c.transaction_status() != b'I' {
                                let _ = c.execute("ROLLBACK").await;
                            }
                            return Err(e);
                        }
                    }
                }
                c.execute(&state::step_done_sql("pre-data")).await
            })
            .await?;
        prior.done_steps.insert("pre-data".into());
    }
    let post = if opts.schema_mode == SchemaMode::Create {
        schema::post_data(&cat)
    } else {
        schema::post_data(&cat)
            .into_iter()
            .filter(|s| s.phase == Phase::SequenceValues)
            .collect()
    };

    // What an earlier run committed but is not (or no longer) right is redone.
    if !redo.is_empty() {
        let plan = resume_check::plan(&cat, &post, &units, &redo, step_key);
        for r in &redo {
            log(
                quiet,
                format!("privaci: {} is copied again: {}", r.table, r.reason),
            );
            report
                .notes
                .push(format!("{} copied again: {}", r.table, r.reason));
        }
        target
            .run("preparing tables to copy again", async |c| {
                let mut sql = String::from("BEGIN;\n");
                for s in &plan.sql {
                    sql += s;
                    sql += ";\n";
                }
                sql += "COMMIT";
                let res = c.execute(&sql).await;
                if res.is_err() && c.transaction_status() != b'I' {
                    let _ = c.execute("ROLLBACK").await;
                }
                res?;
                state::forget(c, &plan.units, &plan.steps).await
            })
            .await?;
        for u in &plan.units {
            prior.done_units.remove(u);
        }
        for s in &plan.steps {
            prior.done_steps.remove(s);
        }
    }

    let oids = Arc::new(oid_map(&mut coordinator, &mut target).await?);
    units.retain(|u| {
        if prior.done_units.contains_key(&u.key()) {
            audit.event(
                "table.skipped",
                json!({ "table": u.key(), "reason": "done by an earlier run" }),
            );
            report.units.push(UnitReport {
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
    if opts.schema_mode == SchemaMode::Create {
        let mut split: Vec<&QualifiedName> = units
            .iter()
            .filter(|u| u.chunk.is_some())
            .map(|u| &u.table)
            .collect();
        split.sort();
        split.dedup();
        for t in split {
            let some_committed = prior
                .done_units
                .keys()
                .any(|k| k.starts_with(&format!("{t}#")));
            if !some_committed {
                let sql = format!("TRUNCATE ONLY {}", t.quoted);
                target
                    .run("emptying a split table", async |c| c.execute(&sql).await)
                    .await?;
            }
        }
    }
    let total_bytes: u64 = units.iter().map(|u| u.size.max(0) as u64).sum();
    let jobs = p.jobs.min(units.len().max(1));
    let progress = super::progress::Progress::new(jobs, total_bytes, units.len(), quiet);
    let shared = Arc::new(Shared {
        round_trips: p.round_trips.clone(),
        conns: Connections {
            source: opts.source.clone(),
            target: opts.target.clone(),
            snapshot: p.snapshot_id.clone(),
            lock_timeout: opts.lock_timeout,
        },
        key: opts.key.clone(),
        existing_schema: opts.schema_mode == SchemaMode::Existing,
        plans: p
            .resolved
            .iter()
            .filter(|r| !r.partitioned)
            .map(|r| (r.table.clone(), r.plan(opts.key.as_ref(), &oids)))
            .collect(),
        resolved: p
            .resolved
            .into_iter()
            .map(|r| (r.table.clone(), r))
            .collect(),
        catalog: cat,
        oids,
        total_units: units.len(),
        queue: Mutex::new(units.into()),
        loaded: Mutex::new(loaded),
        pending: Mutex::new(pending),
        steps_done: Mutex::new(prior.done_steps.clone()),
        post: super::post_data::PostSteps::new(post),
        reports: Mutex::new(std::mem::take(&mut report.units)),
        failed: Mutex::new(Vec::new()),
        cancelled: stop.flag.clone(),
        cancel_tokens: Mutex::new(Vec::new()),
        audit: audit.clone(),
        progress,
        done_count: Mutex::new(0),
        deferred: Mutex::new(Vec::new()),
        workers_alive: Mutex::new(jobs),
        source_transaction_units: Mutex::new(HashMap::new()),
    });
    *lock(&stop.shared) = Some(shared.clone());
    for (object, e) in &skipped {
        shared.fail(None, object, e, None);
    }

    let result = run_units(&shared, &mut coordinator, &mut target, jobs, report, mark).await;
    report.units = lock(&shared.reports).clone();
    report.failed = lock(&shared.failed).clone();
    report.interrupted = shared.is_cancelled();
    result?;
    let _ = coordinator.execute("COMMIT").await;
    let complete = report.failed.is_empty() && !report.interrupted;
    if complete && !opts.keep_state {
        target
            .run("removing the run state", async |c| state::drop(c).await)
            .await?;
    }
    target.close().await;
    let _ = coordinator.close().await;
    Ok(())
}

/// Pre-data statements per transaction: each CREATE TABLE holds about four locks (the table,
/// its row type, TOAST table and index) until commit; 250 stay well inside a default lock
/// table (64 per connection slot).
const PRE_DATA_BATCH: usize = 250;
const PRE_DATA_KEY: &str = "pre-data: ";

/// A run-state key per pre-data statement, unique within the list (the same object can have
/// several statements: a type's attribute comments).
fn pre_data_keys(pre: &[Step]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    pre.iter()
        .map(|s| {
            let n = seen.entry(s.object.as_str()).or_default();
            *n += 1;
            format!("{PRE_DATA_KEY}{}#{n}", s.object)
        })
        .collect()
}

/// Early post-data, the workers, the final post-data.
async fn run_units(
    shared: &Arc<Shared>,
    coordinator: &mut Connection,
    target: &mut TargetLink,
    jobs: usize,
    report: &mut CloneReport,
    mark: Instant,
) -> Result<(), Error> {
    // Keys and indexes of partitioned parents first: partitions attach to them. Tables an
    // earlier run loaded get any post-data it did not finish.
    let mut parents: Vec<&crate::catalog::Table> = shared
        .catalog
        .tables
        .iter()
        .filter(|t| t.is_partitioned())
        .collect();
    // Top level first: a sub-partitioned table's index attaches to its parent's.
    parents.sort_by_key(|t| shared.catalog.ancestors(t).len());
    let early: Vec<QualifiedName> = parents
        .iter()
        .map(|t| t.name.clone())
        .chain(lock(&shared.loaded).iter().cloned().collect::<Vec<_>>())
        .collect();
    for t in early {
        target
            .run("keys and indexes", async |c| {
                // A failed key or index is reported by name; the run goes on.
                table_post_data(shared, c, &t).await.map(|_| ())
            })
            .await?;
    }
    target
        .run("foreign keys", async |c| {
            foreign_keys_ready(shared, c, None).await
        })
        .await?;
    report.phase(
        "pre-data and early post-data",
        mark.elapsed().as_secs_f64(),
        &shared.round_trips,
    );

    let mark = Instant::now();
    shared.progress.line(&format!(
        "copying {} units with {jobs} workers",
        shared.total_units
    ));
    let handles: Vec<_> = (0..jobs)
        .map(|id| {
            let shared = shared.clone();
            tokio::spawn(async move { super::worker::worker(id, shared).await })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.await {
            let err = Error::new(
                crate::error::ErrorKind::Protocol,
                format!("a worker stopped unexpectedly: {e}"),
            );
            shared.fail(None, "worker", &err, None);
        }
    }
    shared.progress.finish();
    copy_deferred(shared, coordinator, target).await;
    report.phase(
        "rows, then each table's keys and indexes (workers)",
        mark.elapsed().as_secs_f64(),
        &shared.round_trips,
    );

    let mark = Instant::now();
    if !shared.is_cancelled() {
        target
            .run("keys and indexes", async |c| {
                finish_loaded_tables(shared, c).await
            })
            .await?;
        target
            .run("foreign keys", async |c| {
                foreign_keys_ready(shared, c, None).await
            })
            .await?;
        // Large objects before the grants on them (final post-data).
        if !shared.catalog.large_objects.is_empty() {
            let copied = target
                .run("large objects", async |c| {
                    super::large_objects::copy_all(shared, coordinator, c).await
                })
                .await;
            match copied {
                Ok((count, bytes)) => shared.audit.event(
                    "large_objects.end",
                    json!({ "copied": count, "bytes": bytes, "total": shared.catalog.large_objects.len() }),
                ),
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => shared.fail(None, "large objects", &e, None),
            }
        }
        target
            .run("triggers, views and sequences", async |c| {
                final_post_data(shared, c).await
            })
            .await?;
    }
    report.phase(
        "final post-data: foreign keys, triggers, views, sequences",
        mark.elapsed().as_secs_f64(),
        &shared.round_trips,
    );
    Ok(())
}

/// Units no worker could lock without queueing behind DDL on the source: the coordinator
/// holds their locks, so it reads them itself, in the run's snapshot.
async fn copy_deferred(
    shared: &Arc<Shared>,
    coordinator: &mut Connection,
    target: &mut TargetLink,
) {
    let deferred: Vec<Unit> = lock(&shared.deferred).drain(..).collect();
    for unit in deferred {
        if shared.is_cancelled() {
            return;
        }
        let started = Instant::now();
        let res = target
            .run("copying a deferred unit", async |t| {
                match copy_unit(
                    shared,
                    SourceSession::Coordinator,
                    coordinator,
                    t,
                    &unit,
                    &|_| {},
                )
                .await
                {
                    Ok(copied) => {
                        unit_done(shared, 0, &unit, copied, started.elapsed().as_secs_f64());
                        after_unit(shared, t, &unit).await;
                        Ok(None)
                    }
                    Err(f) if f.error.is_retryable() => Err(f.error),
                    Err(f) => Ok(Some(f)),
                }
            })
            .await;
        let failure = match res {
            Ok(None) => continue,
            Ok(Some(f)) => (f.error, f.row),
            Err(e) => (e, None),
        };
        shared.fail(Some(&unit.table), &unit.key(), &failure.0, failure.1);
        if let Some(left) = lock(&shared.pending).get_mut(&unit.table) {
            *left = left.saturating_sub(1);
        }
    }
}

/// Source OIDs of user-defined types mapped to the target's, by name.
async fn oid_map(source: &mut Connection, target: &mut TargetLink) -> Result<OidMap, Error> {
    let src = catalog::type_oids(source, FIRST_NORMAL_OID).await?;
    let dst = target
        .run("reading the target's types", async |c| {
            catalog::type_oids(c, FIRST_NORMAL_OID).await
        })
        .await?;
    Ok(catalog::oid_map(src, dst))
}
