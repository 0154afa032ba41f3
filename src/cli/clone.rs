//! `privaci clone`: the run users buy privaci for. Ctrl-C stops it cleanly (copies cancelled,
//! nothing half-committed) and `--resume` finishes it.

use std::sync::Arc;

use super::{exit, CloneArgs, SchemaArg};
use crate::config::MaskingConfig;
use crate::conninfo::Config;
use crate::engine::audit::Audit;
use crate::engine::clone::{run as clone_run, CloneError, CloneOptions, CloneReport, StopHandle};
use crate::engine::preflight::SchemaMode;
use crate::mask::key::MaskKey;

use super::report::Outcome;

pub async fn run(args: CloneArgs) -> i32 {
    let (config, config_file, config_text) = match &args.config {
        Some(path) => {
            let text = match crate::config::read_config_text(path) {
                Ok(t) => t,
                Err(e) => return invalid(&args, format!("invalid masking config: {e}")),
            };
            match MaskingConfig::parse(&text, &path.display().to_string()) {
                Ok(c) => (c, path.display().to_string(), text),
                Err(e) => return invalid(&args, format!("invalid masking config: {e}")),
            }
        }
        None => (
            MaskingConfig::keep_all(),
            "(no config)".to_string(),
            String::new(),
        ),
    };
    let key = match MaskKey::from_env() {
        Ok(k) => k,
        Err(e) => return invalid(&args, format!("invalid masking key: {e}")),
    };
    let (source, target) = match (Config::parse(&args.source), Config::parse(&args.target)) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) => return failed(&args, format!("source: {e}")),
        (_, Err(e)) => return failed(&args, format!("target: {e}")),
    };
    let audit = match &args.audit_log {
        Some(path) => match Audit::to_file(path) {
            Ok(a) => Arc::new(a),
            Err(e) => return failed(&args, e.to_string()),
        },
        None => Arc::new(Audit::disabled()),
    };
    let filter = match args.filter.filter_or_exit() {
        Ok(f) => f,
        Err(code) => {
            let why = "a --include-schema, --exclude-schema or --exclude-table name is not valid (see above)";
            report(&args, &Outcome::InvalidConfig(&[why.to_string()]));
            return code;
        }
    };
    let jobs = super::jobs_or_cores(args.jobs);
    let opts = CloneOptions {
        source,
        target,
        config,
        config_file,
        config_text,
        key,
        jobs,
        resume: args.resume,
        schema_mode: if args.schema == SchemaArg::Existing {
            SchemaMode::Existing
        } else {
            SchemaMode::Create
        },
        filter,
        quiet: args.quiet,
        keep_state: args.keep_state,
        split_bytes: args.split_tables_larger_than,
        lock_timeout: args.lock_wait_timeout,
        skip_unsupported: args.skip_unsupported,
        no_large_objects: args.no_large_objects,
        privileges: args.privileges,
    };
    let stop = StopHandle::default();
    watch_signals(stop.clone());
    let report_path = args.report.clone();
    let (code, outcome_code) = match clone_run(opts, audit, stop).await {
        Ok(report) => {
            print!("{}", render(&report));
            let code = if report.interrupted && report.failed.is_empty() {
                eprintln!("privaci: interrupted; what committed is kept: run the same command with --resume to finish");
                exit::FAILED
            } else if report.failed.is_empty() {
                exit::SUCCESS
            } else {
                eprintln!("privaci: {} failure(s):", report.failed.len());
                for f in &report.failed {
                    eprintln!("  {f}");
                }
                eprintln!("fix the cause, then run the same command with --resume: what committed is kept and only the rest is done");
                exit::FAILED
            };
            (
                code,
                write_report(report_path.as_deref(), &Outcome::Ran(&report, code)),
            )
        }
        Err(CloneError::Config(errors)) => {
            eprintln!(
                "privaci: the masking config has {} problem(s):",
                errors.len()
            );
            for e in &errors {
                eprintln!("  {e}");
            }
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            (
                exit::INVALID_CONFIG,
                write_report(report_path.as_deref(), &Outcome::InvalidConfig(&list)),
            )
        }
        Err(CloneError::Preflight(refusals)) => {
            eprintln!("privaci: refused at pre-flight; nothing was written to the target:");
            for r in &refusals {
                eprintln!("  - {r}");
            }
            (
                exit::PREFLIGHT,
                write_report(report_path.as_deref(), &Outcome::Refused(&refusals)),
            )
        }
        Err(CloneError::Failed(msg)) => {
            eprintln!("privaci: {msg}");
            (
                exit::FAILED,
                write_report(report_path.as_deref(), &Outcome::Failed(&msg)),
            )
        }
    };
    // A report that could not be written fails a run that would otherwise succeed: a CI
    // pipeline reading it would find nothing.
    if outcome_code != exit::SUCCESS && code == exit::SUCCESS {
        outcome_code
    } else {
        code
    }
}

/// Writes `--report` if asked; the exit code that its failure imposes (1), or 0.
fn write_report(path: Option<&std::path::Path>, outcome: &Outcome<'_>) -> i32 {
    match path.map(|p| super::report::write(p, outcome)) {
        Some(Err(e)) => {
            eprintln!("privaci: {e}");
            exit::FAILED
        }
        _ => exit::SUCCESS,
    }
}

fn report(args: &CloneArgs, outcome: &Outcome<'_>) {
    write_report(args.report.as_deref(), outcome);
}

fn invalid(args: &CloneArgs, message: String) -> i32 {
    eprintln!("privaci: {message}");
    report(args, &Outcome::InvalidConfig(&[message]));
    exit::INVALID_CONFIG
}

fn failed(args: &CloneArgs, message: String) -> i32 {
    eprintln!("privaci: {message}");
    report(args, &Outcome::Failed(&message));
    exit::FAILED
}

/// SIGINT (Ctrl-C) and SIGTERM stop the run cleanly: copies are cancelled, units in flight roll
/// back, the report and the audit `run.end` are written, and the exit code is 1. A second
/// signal exits at once.
fn watch_signals(stop: StopHandle) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let next = async |term: &mut Option<tokio::signal::unix::Signal>| match term {
            Some(t) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "interrupted",
                    _ = t.recv() => "terminated (SIGTERM)",
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted"
            }
        };
        let why = next(&mut term).await;
        // Said even with --quiet: a signal changes how the run ends.
        eprintln!(
            "privaci: {why}; cancelling the copies in progress (a second signal exits at once)..."
        );
        let stopping = stop.clone();
        tokio::spawn(async move { stopping.stop().await });
        let _ = next(&mut term).await;
        eprintln!("privaci: stopped at once by a second signal; what committed is kept: run the same command with --resume to finish");
        std::process::exit(exit::FAILED);
    });
}

pub(crate) fn render(report: &CloneReport) -> String {
    let mut out = String::from("\ntable                                            rows        MB      s     MB/s  masked\n");
    let (mut rows, mut bytes) = (0u64, 0u64);
    for u in &report.units {
        rows += u.rows;
        bytes += u.bytes;
        if u.status != "copied" {
            out += &format!("{:<44} {}\n", u.table, u.status);
            continue;
        }
        out += &format!(
            "{:<44} {:>9} {:>9.2} {:>6.2} {:>8.0}  {}\n",
            u.table,
            u.rows,
            u.bytes as f64 / 1e6,
            u.seconds,
            u.bytes as f64 / 1e6 / u.seconds.max(1e-6),
            u.masked_columns.join(", ")
        );
    }
    for n in &report.notes {
        out += &format!("note: {n}\n");
    }
    if !report.phases.is_empty() {
        out += &format!(
            "phases: {}\n",
            report
                .phases
                .iter()
                .map(|(p, s)| format!("{p} {s:.2} s"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if report.round_trips.len() == report.phases.len() && !report.phases.is_empty() {
        let (s, t) = report
            .round_trips
            .iter()
            .fold((0, 0), |(a, b), (s, t)| (a + s, b + t));
        out += &format!(
            "round trips (source/target): {}; total {s}/{t}\n",
            report
                .phases
                .iter()
                .zip(&report.round_trips)
                .map(|((p, _), (s, t))| format!("{p} {s}/{t}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    out += &format!(
        "total: {} units, {rows} rows, {:.1} MB in {:.1} s ({:.0} rows/s){}\n",
        report.units.len(),
        bytes as f64 / 1e6,
        report.seconds,
        rows as f64 / report.seconds.max(1e-6),
        if report.failed.is_empty() {
            String::new()
        } else {
            format!("; {} failed", report.failed.len())
        }
    );
    out
}
