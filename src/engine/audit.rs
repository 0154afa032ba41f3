//! The audit log: JSON Lines, one event per line. It names tables, columns and, for a row the
//! target rejected, the primary key; it never holds a column's value.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::error::Error;
use crate::wire::db_error::without_values;

pub struct Audit {
    out: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    /// The first write that failed: the run must not end as a success without its record.
    failure: Mutex<Option<String>>,
}

impl Audit {
    pub fn disabled() -> Audit {
        Audit {
            out: None,
            failure: Mutex::new(None),
        }
    }

    /// Opens (appends to) the log, created readable by its owner only: it names the tables
    /// and columns of a production database. An existing regular file is made so too.
    pub fn to_file(path: &std::path::Path) -> Result<Audit, Error> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let cannot = |e: std::io::Error| {
            Error::new(
                crate::ErrorKind::Config,
                format!("cannot open the audit log {}: {e}", path.display()),
            )
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(cannot)?;
        }
        Ok(Audit {
            out: Some(Mutex::new(std::io::BufWriter::new(file))),
            failure: Mutex::new(None),
        })
    }

    /// Appends one event; `fields` must hold no column value. A failed write is kept for
    /// `failure()`.
    pub fn event(&self, event: &str, fields: Value) {
        let Some(out) = &self.out else { return };
        let mut line = json!({ "ts": timestamp(), "event": event });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(w, "{line}").and_then(|_| w.flush()) {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert_with(|| format!("writing the audit log failed: {e}"));
        }
    }

    /// The first write that failed, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// UTC time as RFC 3339 with milliseconds.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = crate::types::datetime::j2date(days + 2440588);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// An error as it may be shown and logged: for a server error, the message with every quoted
/// part replaced (servers quote the offending value there), without DETAIL (which repeats
/// key values), and with the column and line from the COPY context but not its value.
pub fn sanitize(e: &Error) -> String {
    let Some(db) = e.db_error() else {
        return e.to_string();
    };
    // What privaci put in front of the server's message ("creating table public.t on the
    // target: ") is its own text, naming objects: kept.
    let server = Error::from(Box::new(db.clone())).to_string();
    let context = e.message().strip_suffix(server.as_str()).unwrap_or("");
    let mut out = format!(
        "{context}{}: {} (SQLSTATE {})",
        db.severity,
        without_values(&db.message),
        db.code
    );
    if let Some(ctx) = &db.where_ {
        // "COPY t, line 3, column email: \"value\"" → line 3, column email
        for part in ctx.split(", ") {
            if let Some(line) = part.strip_prefix("line ") {
                out += &format!(", line {}", line.split(':').next().unwrap_or(line));
            }
            if let Some(col) = part.strip_prefix("column ") {
                out += &format!(", column {}", col.split(':').next().unwrap_or(col));
            }
        }
    }
    if let Some(c) = &db.constraint {
        out += &format!(", constraint {c}");
    }
    if let Some(h) = &db.hint {
        out += &format!("; hint: {}", without_values(h));
    }
    out
}

/// The row number a COPY error names (`COPY t, line N...`).
pub fn copy_error_line(e: &Error) -> Option<u64> {
    let ctx = e.db_error()?.where_.as_deref()?;
    ctx.split(", ")
        .find_map(|p| p.strip_prefix("line "))
        .and_then(|l| l.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DbError;

    #[test]
    fn server_errors_lose_their_values() {
        let db = DbError {
            severity: "ERROR".into(),
            code: "22P02".into(),
            message: "invalid input syntax for type integer: \"secret-42\"".into(),
            detail: Some("Key (email)=(alice@x.com) already exists.".into()),
            where_: Some("COPY patients, line 3, column age: \"secret-42\"".into()),
            ..DbError::default()
        };
        let e = Error::from(Box::new(db));
        let s = sanitize(&e);
        assert_eq!(s, "ERROR: invalid input syntax for type integer: \"…\" (SQLSTATE 22P02), line 3, column age");
        assert!(!s.contains("secret") && !s.contains("alice"));
        assert_eq!(copy_error_line(&e), Some(3));
        assert!(timestamp().ends_with('Z') && timestamp().len() == 24);
    }
}
