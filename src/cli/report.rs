//! `privaci clone --report FILE`: the run's outcome as one JSON document, for CI dashboards.
//! Written however the run ends (success, failures, a signal, a refusal, a bad config), so a
//! pipeline always finds it. It names tables, columns and objects; of row values, at most the
//! primary key of a rejected row whose key is not masked (as the audit log).

use std::path::Path;

use serde_json::{json, Value};

use crate::engine::clone::CloneReport;
use crate::engine::shared::RejectedRow;

/// The document's version: bumped when a field changes meaning or goes away.
pub const REPORT_FORMAT: u32 = 1;

/// How the run ended, with its exit code.
pub enum Outcome<'a> {
    Ran(&'a CloneReport, i32),
    Refused(&'a [String]),
    InvalidConfig(&'a [String]),
    Failed(&'a str),
}

pub fn document(outcome: &Outcome<'_>) -> Value {
    let (status, code) = match outcome {
        Outcome::Ran(r, code) if *code == 0 => ("success", *code),
        Outcome::Ran(r, code) if r.interrupted && r.failed.is_empty() => ("interrupted", *code),
        Outcome::Ran(_, code) => ("failed", *code),
        Outcome::Refused(_) => ("refused", super::exit::PREFLIGHT),
        Outcome::InvalidConfig(_) => ("invalid_config", super::exit::INVALID_CONFIG),
        Outcome::Failed(_) => ("failed", super::exit::FAILED),
    };
    let mut doc = json!({
        "format": REPORT_FORMAT,
        "privaci": concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PRIVACI_GIT_COMMIT"), ")"),
        "status": status,
        "exit_code": code,
    });
    let obj = doc.as_object_mut().expect("an object");
    match outcome {
        Outcome::Ran(r, _) => {
            let units: Vec<Value> = r
                .units
                .iter()
                .map(|u| {
                    json!({
                        "unit": u.table,
                        "status": u.status,
                        "rows": u.rows,
                        "bytes": u.bytes,
                        "seconds": round(u.seconds),
                        "masked_columns": u.masked_columns,
                    })
                })
                .collect();
            let copied = r.units.iter().filter(|u| u.status != "failed");
            obj.insert(
                "totals".into(),
                json!({
                    "units": r.units.len(),
                    "rows": copied.clone().map(|u| u.rows).sum::<u64>(),
                    "bytes": copied.map(|u| u.bytes).sum::<u64>(),
                    "failures": r.failed.len(),
                    "seconds": round(r.seconds),
                }),
            );
            obj.insert("units".into(), Value::Array(units));
            obj.insert(
                "phases".into(),
                r.phases
                    .iter()
                    .enumerate()
                    .map(|(i, (name, s))| {
                        let (source, target) = r.round_trips.get(i).copied().unwrap_or((0, 0));
                        json!({
                            "phase": name,
                            "seconds": round(*s),
                            "source_round_trips": source,
                            "target_round_trips": target,
                        })
                    })
                    .collect(),
            );
            obj.insert(
                "failures".into(),
                r.failed
                    .iter()
                    .map(|f| {
                        json!({
                            "what": f.what,
                            "table": f.table.as_ref().map(|t| t.to_string()),
                            "message": f.message,
                            "row": f.row.as_ref().map(|row| match row {
                                RejectedRow::Key(k) => json!({ "primary_key": k }),
                                RejectedRow::Position { line, key_masked } => {
                                    json!({ "line": line, "key_masked": key_masked })
                                }
                            }),
                        })
                    })
                    .collect(),
            );
            obj.insert("notes".into(), json!(r.notes));
        }
        Outcome::Refused(list) => {
            obj.insert("refusals".into(), json!(list));
        }
        Outcome::InvalidConfig(list) => {
            obj.insert("config_errors".into(), json!(list));
        }
        Outcome::Failed(message) => {
            obj.insert("error".into(), json!(message));
        }
    }
    doc
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Writes the report next to its final name, then renames it: a reader never sees half.
pub fn write(path: &Path, outcome: &Outcome<'_>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&document(outcome))
        .map_err(|e| format!("could not encode the report: {e}"))?;
    let tmp = path.with_extension("privaci-tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("could not write the report to {}: {e}", path.display())
        })
}
