//! What the coordinator and the workers of one run share: the catalog and plans, the queue of
//! units, which tables are loaded, which post-data steps ran, reports and failures.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;

use super::audit::{sanitize, Audit};
use super::units::{self, Unit};
use crate::catalog::{Catalog, QualifiedName};
use crate::config::resolve::ResolvedTable;
use crate::conn::CancelToken;
use crate::conninfo::Config;
use crate::error::Error;
use crate::mask::remap::OidMap;
use crate::mask::{MaskKey, MaskPlan};

/// A unit's outcome in the final report.
#[derive(Debug, Clone)]
pub struct UnitReport {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub masked_columns: Vec<String>,
    /// `copied`, `resumed` (done by an earlier run) or `failed`.
    pub status: String,
}

/// Something that did not get done: a unit, a table's post-data, or a run-level step.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The table it concerns, when it concerns one (its triggers are then not created).
    pub table: Option<QualifiedName>,
    /// What failed, as users see it: a unit key (`public.t#2/4`), or `public.t (foreign keys)`.
    pub what: String,
    /// The server's message with values removed.
    pub message: String,
    /// The row the target rejected, if the failure is one.
    pub row: Option<RejectedRow>,
}

/// How a rejected row is named: by its primary key read from the source when no key column
/// is masked; otherwise by its position in the unit's COPY stream, so that no source value of
/// a masked column is ever shown.
#[derive(Debug, Clone, PartialEq)]
pub enum RejectedRow {
    Key(String),
    /// Its line in the unit's COPY stream, and whether a key column is masked (otherwise the
    /// table has no primary key).
    Position {
        line: u64,
        key_masked: bool,
    },
}

impl std::fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectedRow::Key(k) => write!(f, "row with primary key {k}"),
            RejectedRow::Position { line, key_masked } => write!(
                f,
                "row {line} of the unit's COPY stream{}",
                if *key_masked {
                    ", not named by its primary key because that key is masked"
                } else {
                    ""
                }
            ),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.what)?;
        if let Some(r) = &self.row {
            write!(f, " ({r})")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Locks a mutex even if a thread panicked while holding it: the data is plain bookkeeping.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Connections {
    pub source: Config,
    pub target: Config,
    pub snapshot: String,
    /// How long a worker's read waits for a table lock before the unit fails.
    pub lock_timeout: std::time::Duration,
}

/// Round trips (waits for the server after sending) of a run's sessions, per server.
#[derive(Debug, Clone, Default)]
pub struct RoundTrips {
    pub source: Arc<std::sync::atomic::AtomicU64>,
    pub target: Arc<std::sync::atomic::AtomicU64>,
}

impl RoundTrips {
    /// (source, target) so far.
    pub fn read(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.source.load(Relaxed), self.target.load(Relaxed))
    }
}

pub struct Shared {
    pub round_trips: RoundTrips,
    pub conns: Connections,
    pub key: Option<MaskKey>,
    /// With an existing schema the target's constraints are live during the load: no
    /// TRUNCATE (a referenced table cannot be truncated), and referenced tables load first.
    pub existing_schema: bool,
    pub catalog: Catalog,
    pub resolved: HashMap<QualifiedName, ResolvedTable>,
    /// Each table's masking plan, built once (strategies checked before any row moves) and
    /// cloned for each of its units.
    pub plans: HashMap<QualifiedName, Result<MaskPlan, String>>,
    pub oids: Arc<OidMap>,
    pub queue: Mutex<VecDeque<Unit>>,
    pub loaded: Mutex<HashSet<QualifiedName>>,
    /// Units of each table still to copy; a table is loaded when its count reaches zero.
    pub pending: Mutex<HashMap<QualifiedName, usize>>,
    pub steps_done: Mutex<HashSet<String>>,
    pub post: super::post_data::PostSteps,
    pub reports: Mutex<Vec<UnitReport>>,
    pub failed: Mutex<Vec<Failure>>,
    pub cancelled: Arc<AtomicBool>,
    pub cancel_tokens: Mutex<Vec<CancelToken>>,
    pub audit: Arc<Audit>,
    pub progress: super::progress::Progress,
    pub total_units: usize,
    pub done_count: Mutex<usize>,
    /// Units no worker could lock without queueing behind DDL: the coordinator copies them.
    pub deferred: Mutex<Vec<Unit>>,
    /// Workers still able to take units (a worker that cannot get connections retires).
    pub workers_alive: Mutex<usize>,
    /// Units read so far in each worker's open source transaction, by backend pid.
    pub source_transaction_units: Mutex<HashMap<i32, u32>>,
}

impl Shared {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    pub fn is_loaded(&self, t: &QualifiedName) -> bool {
        units::is_loaded(&self.catalog, &lock(&self.loaded), t)
    }

    /// The next unit for a worker.
    pub fn next_unit(&self) -> units::Next {
        let mut queue = lock(&self.queue);
        // Only a target whose foreign keys are live orders units (see units::next).
        if !self.existing_schema {
            return queue
                .pop_front()
                .map_or(units::Next::Done, units::Next::Unit);
        }
        let in_flight = lock(&self.pending)
            .values()
            .sum::<usize>()
            .saturating_sub(queue.len() + lock(&self.deferred).len());
        let loaded = lock(&self.loaded).clone();
        units::next(
            &self.catalog,
            &mut queue,
            &loaded,
            in_flight,
            self.existing_schema,
        )
    }

    /// Records a failure: audit event, a progress line, the list the report shows.
    pub fn fail(
        &self,
        table: Option<&QualifiedName>,
        what: &str,
        e: &Error,
        row: Option<RejectedRow>,
    ) {
        let failure = Failure {
            table: table.cloned(),
            what: what.to_string(),
            message: sanitize(e),
            row,
        };
        self.audit.event(
            "table.failed",
            match &failure.row {
                Some(RejectedRow::Key(k)) => {
                    json!({ "table": what, "error": failure.message, "primary_key": k })
                }
                Some(RejectedRow::Position { line, .. }) => {
                    json!({ "table": what, "error": failure.message, "row": line })
                }
                None => json!({ "table": what, "error": failure.message }),
            },
        );
        self.progress.line(&format!("FAILED {failure}"));
        lock(&self.failed).push(failure);
    }

    pub fn failed_tables(&self) -> HashSet<QualifiedName> {
        lock(&self.failed)
            .iter()
            .filter_map(|f| f.table.clone())
            .collect()
    }
}
