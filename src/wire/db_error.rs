//! `ErrorResponse` and `NoticeResponse` bodies as a typed error that keeps every field the
//! server sent, so callers can branch on SQLSTATE and users see detail, hint and context.

use std::fmt;

use super::ProtocolError;

/// An error or notice reported by the server, with every field of the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbError {
    /// Localized severity (`S`), e.g. `ERROR`, `FATAL`, `NOTICE`.
    pub severity: String,
    /// Severity never localized (`V`, PostgreSQL 9.6 and later).
    pub severity_nonlocalized: Option<String>,
    /// SQLSTATE (`C`), five characters.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the query (`P`).
    pub position: Option<u32>,
    pub internal_position: Option<u32>,
    pub internal_query: Option<String>,
    /// Context, the call stack of the error (`W`).
    pub where_: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub datatype: Option<String>,
    pub constraint: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub routine: Option<String>,
}

impl DbError {
    /// Parses the field list of an ErrorResponse or NoticeResponse body.
    pub fn parse(body: &[u8]) -> Result<DbError, ProtocolError> {
        let mut err = DbError::default();
        let mut rest = body;
        let (mut have_severity, mut have_code, mut have_message) = (false, false, false);
        loop {
            let (&field, tail) = rest
                .split_first()
                .ok_or_else(|| ProtocolError::new("error response ends without its terminator"))?;
            if field == 0 {
                if !tail.is_empty() {
                    return Err(ProtocolError::new(
                        "error response has bytes after its terminator",
                    ));
                }
                break;
            }
            let end = tail
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| ProtocolError::new("error response field is not NUL-terminated"))?;
            // The server sends client_encoding text; a lossy conversion keeps a garbled byte
            // from hiding the whole error.
            let value = String::from_utf8_lossy(&tail[..end]).into_owned();
            rest = &tail[end + 1..];
            let number = |v: &str| v.parse::<u32>().ok();
            match field {
                b'S' => {
                    err.severity = value;
                    have_severity = true;
                }
                b'V' => err.severity_nonlocalized = Some(value),
                b'C' => {
                    err.code = value;
                    have_code = true;
                }
                b'M' => {
                    err.message = value;
                    have_message = true;
                }
                b'D' => err.detail = Some(value),
                b'H' => err.hint = Some(value),
                b'P' => err.position = number(&value),
                b'p' => err.internal_position = number(&value),
                b'q' => err.internal_query = Some(value),
                b'W' => err.where_ = Some(value),
                b's' => err.schema = Some(value),
                b't' => err.table = Some(value),
                b'c' => err.column = Some(value),
                b'd' => err.datatype = Some(value),
                b'n' => err.constraint = Some(value),
                b'F' => err.file = Some(value),
                b'L' => err.line = number(&value),
                b'R' => err.routine = Some(value),
                // The protocol says unknown field types must be ignored.
                _ => {}
            }
        }
        if !(have_severity && have_code && have_message) {
            return Err(ProtocolError::new(
                "error response lacks severity, SQLSTATE or message",
            ));
        }
        Ok(err)
    }

    /// The severity to branch on: the non-localized one when the server sent it.
    pub fn severity_code(&self) -> &str {
        self.severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {hint}")?;
        }
        if let Some(context) = &self.where_ {
            write!(f, "\nCONTEXT: {context}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// Words after which PostgreSQL quotes an object's name, not a value: `relation "t"`,
/// `column "c" of relation "t"`, `constraint "k"`, `operator class "x" ... access method
/// "btree"`. A value is quoted after a colon (`for type integer: "abc"`) or after words not
/// listed here (`value "x" is out of range`).
const IDENTIFIER_WORDS: &[&str] = &[
    "relation",
    "table",
    "column",
    "constraint",
    "index",
    "schema",
    "type",
    "function",
    "procedure",
    "aggregate",
    "operator",
    "class",
    "family",
    "sequence",
    "view",
    "role",
    "database",
    "trigger",
    "policy",
    "collation",
    "extension",
    "method",
    "domain",
    "rule",
    "publication",
    "statistics",
    "configuration",
    "dictionary",
    "parser",
    "template",
    "conversion",
    "parameter",
    "server",
    "wrapper",
    "tablespace",
    "partition",
    "language",
    "object",
];

/// A server message (or hint) as privaci may show and log it: every quoted part replaced by
/// `"…"`, except object names: those
/// follow one of `IDENTIFIER_WORDS` (with no colon between), are kept as the server wrote
/// them, and say which object failed.
pub fn without_values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('"') {
        let before = &rest[..open];
        out.push_str(before);
        let after = &rest[open + 1..];
        // A quoted part ends at the next lone quote ("" inside is an escaped quote).
        let mut end = None;
        let mut i = 0;
        let bytes = after.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                end = Some(i);
                break;
            }
            i += 1;
        }
        let Some(end) = end else {
            out.push_str("\"…\"");
            return out;
        };
        let word = out.trim_end_matches(' ').rsplit(' ').next().unwrap_or("");
        let names = out.ends_with(' ')
            && IDENTIFIER_WORDS
                .contains(&word.trim_start_matches('(').to_ascii_lowercase().as_str());
        if names {
            out.push('"');
            out.push_str(&after[..end]);
            out.push('"');
        } else {
            out.push_str("\"…\"");
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field() {
        let body = b"SERROR\0VERROR\0C23505\0Mduplicate key\0Dkey (id)=(1) exists\0Hfix it\0P12\0Wline 3\0spublic\0tusers\0cid\0nusers_pkey\0Fnbtinsert.c\0L666\0R_bt_check_unique\0Zfuture\0\0";
        let e = DbError::parse(body).unwrap();
        assert_eq!(e.code, "23505");
        assert_eq!(e.severity_code(), "ERROR");
        assert_eq!(e.detail.as_deref(), Some("key (id)=(1) exists"));
        assert_eq!(e.position, Some(12));
        assert_eq!(e.table.as_deref(), Some("users"));
        assert_eq!(e.constraint.as_deref(), Some("users_pkey"));
        assert_eq!(e.line, Some(666));
        assert_eq!(e.to_string(), "ERROR: duplicate key (SQLSTATE 23505)\nDETAIL: key (id)=(1) exists\nHINT: fix it\nCONTEXT: line 3");
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert!(
            DbError::parse(b"SERROR\0C1\0Mm\0").is_err(),
            "missing terminator"
        );
        assert!(
            DbError::parse(b"SERROR\0C1\0Mm").is_err(),
            "unterminated field"
        );
        assert!(
            DbError::parse(b"SERROR\0\0").is_err(),
            "missing code and message"
        );
        assert!(
            DbError::parse(b"SERROR\0C1\0Mm\0\0x").is_err(),
            "trailing bytes"
        );
        assert!(DbError::parse(b"").is_err());
    }

    #[test]
    fn object_names_are_kept_and_values_dropped() {
        for (message, kept) in [
            ("relation \"app.orders\" does not exist", "relation \"app.orders\" does not exist"),
            (
                "null value in column \"email\" of relation \"patients\" violates not-null constraint",
                "null value in column \"email\" of relation \"patients\" violates not-null constraint",
            ),
            (
                "duplicate key value violates unique constraint \"patients_email_key\"",
                "duplicate key value violates unique constraint \"patients_email_key\"",
            ),
            (
                "operator class \"abs_ops\" does not exist for access method \"btree\"",
                "operator class \"abs_ops\" does not exist for access method \"btree\"",
            ),
            ("column \"Odd \"\"Name\"\"\" does not exist", "column \"Odd \"\"Name\"\"\" does not exist"),
            ("invalid input syntax for type integer: \"secret\"", "invalid input syntax for type integer: \"…\""),
            ("value \"secret\" is out of range for type integer", "value \"…\" is out of range for type integer"),
            ("invalid input value for enum mood: \"secret\"", "invalid input value for enum mood: \"…\""),
            ("malformed array literal: \"{secret\"", "malformed array literal: \"…\""),
            ("unterminated \"secret", "unterminated \"…\""),
        ] {
            assert_eq!(without_values(message), kept, "{message}");
        }
    }
}
