//! The error type every layer above the wire returns: a kind to branch on, a message that
//! says what failed and where, and the server's full error when there is one.

use std::fmt;

use crate::conninfo::ConfigError;
use crate::tls::TlsError;
use crate::wire::{DbError, ProtocolError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection string or settings are wrong.
    Config,
    /// TLS could not be set up or the handshake failed (certificate, host name...).
    Tls,
    /// The server could not be reached (refused, unreachable, DNS, timeout).
    Connect,
    /// Authentication could not proceed or failed on our side (no password, channel binding).
    Auth,
    /// The server returned an ErrorResponse.
    Db,
    /// The server sent something that breaks the protocol.
    Protocol,
    /// The connection broke or was closed.
    Io,
    /// Masking a row failed, or the COPY data to mask was malformed (the message names the
    /// table, row and column, never the value).
    Mask,
}

pub struct Error {
    kind: ErrorKind,
    message: String,
    db: Option<Box<DbError>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            db: None,
        }
    }

    /// A server error, with a message that puts it in context.
    pub fn db(db: Box<DbError>, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Db,
            message: message.into(),
            db: Some(db),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's error, if the server reported one.
    pub fn db_error(&self) -> Option<&DbError> {
        self.db.as_deref()
    }

    /// The SQLSTATE of the server's error.
    pub fn code(&self) -> Option<&str> {
        self.db.as_ref().map(|d| d.code.as_str())
    }

    /// Worth a retry on a new connection: the socket broke, the server could not be reached,
    /// or it is shutting down or restarting (SQLSTATE class 08, 57P01-57P03).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Io | ErrorKind::Connect)
            || self
                .code()
                // 08P01 from the server is a refused message (binary COPY data it could not
                // read), not a lost connection: sending the same again fails the same way.
                .is_some_and(|c| {
                    (c.starts_with("08") && c != "08P01")
                        || matches!(c, "57P01" | "57P02" | "57P03")
                })
    }

    /// The server refused a new session because its connection slots are full (53300).
    pub fn is_too_many_connections(&self) -> bool {
        self.code() == Some("53300")
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn set_message(&mut self, message: String) {
        self.message = message;
    }

    /// The same error with context in front: "while doing X: <error>".
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error {{ kind: {:?}, message: {:?}",
            self.kind, self.message
        )?;
        if let Some(db) = &self.db {
            write!(f, ", code: {:?}", db.code)?;
        }
        f.write_str(" }")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.db.as_deref().map(|d| d as _)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::new(ErrorKind::Config, e.0)
    }
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Error {
        Error::new(ErrorKind::Tls, e.to_string())
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::new(ErrorKind::Protocol, e.to_string())
    }
}

impl From<Box<DbError>> for Error {
    fn from(e: Box<DbError>) -> Error {
        let message = e.to_string();
        Error::db(e, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_broken_connections_and_restarts() {
        assert!(Error::new(ErrorKind::Io, "reset").is_retryable());
        assert!(Error::new(ErrorKind::Connect, "refused").is_retryable());
        assert!(!Error::new(ErrorKind::Mask, "bad value").is_retryable());
        assert!(!Error::new(ErrorKind::Db, "syntax").is_retryable());
    }
}
