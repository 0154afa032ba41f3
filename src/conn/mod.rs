//! An async PostgreSQL connection on tokio: startup and authentication (`connect`), simple
//! queries, and cancellation. The COPY streams build on the buffers kept here.

mod cancel;
mod connect;
mod copy_in;
mod copy_out;
mod stream;

use std::collections::HashMap;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::AuthMethod;
use crate::conninfo::Target;
use crate::error::{Error, ErrorKind};
use crate::wire::backend::{CopyResponse, DataRow, FieldDescription, MAX_MESSAGE_LEN};
use crate::wire::db_error::without_values;
use crate::wire::{frontend, Message};

pub use cancel::CancelToken;
pub use connect::{connect, connect_with_nonce};
pub use copy_in::{CopyInSink, DEFAULT_FRAME_SIZE};
pub use copy_out::{CopyFormat, CopyOutStream};
pub use stream::Stream;

const READ_BUFFER: usize = 64 * 1024;
/// Free space kept in the read buffer while rows stream in: large reads, few syscalls.
const COPY_READ_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyDirection {
    /// COPY FROM STDIN.
    In,
    /// COPY TO STDOUT.
    Out,
}

/// Protocol state a dropped COPY left behind, settled before the connection's next use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    None,
    /// A COPY TO STDOUT is (or was) streaming: the rest must be read and dropped.
    CopyOut,
    /// A COPY FROM STDIN is open.
    CopyIn,
    /// A COPY FROM STDIN sink was dropped: its CopyFail is queued in the send buffer.
    CopyInAborted,
}

/// The negotiated TLS session, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// e.g. `TLSv1.3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    pub verification: crate::tls::Verification,
}

/// What was negotiated while connecting.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub target: Target,
    pub auth_method: AuthMethod,
    pub tls: Option<TlsInfo>,
    /// Set when the server answered with NegotiateProtocolVersion.
    pub protocol_minor: Option<i32>,
}

/// One statement's result from a simple query: the columns, the rows as text, the tag.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<FieldDescription>,
    pub rows: Vec<DataRow>,
    /// The CommandComplete tag (`SELECT 3`, `CREATE TABLE`); empty for an empty query.
    pub tag: String,
}

impl QueryResult {
    /// The text of column `col` in row `row`; `None` for NULL.
    pub fn get(&self, row: usize, col: usize) -> Result<Option<&str>, Error> {
        let field = self
            .rows
            .get(row)
            .and_then(|r| r.fields().nth(col))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("no column {col} in row {row} of the result"),
                )
            })?;
        field
            .map(|bytes| {
                std::str::from_utf8(bytes).map_err(|_| {
                    Error::new(
                        ErrorKind::Protocol,
                        format!("column {col} of row {row} is not UTF-8"),
                    )
                })
            })
            .transpose()
    }

    /// The number of rows a command affected, from its tag (`INSERT 0 5` → 5).
    pub fn rows_affected(&self) -> Option<u64> {
        self.tag.rsplit(' ').next().and_then(|n| n.parse().ok())
    }
}

pub struct Connection {
    pub(crate) stream: Stream,
    pub(crate) read_buf: BytesMut,
    pub(crate) write_buf: BytesMut,
    parameters: HashMap<String, String>,
    info: SessionInfo,
    cancel: CancelToken,
    /// Transaction status from the last ReadyForQuery: `I`, `T` or `E`.
    status: u8,
    pub(crate) pending: Pending,
    /// Where this session counts its round trips (waits for the server after sending).
    round_trips: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Bytes were sent since the server was last heard: the next wait is a round trip.
    awaiting: bool,
}

impl Connection {
    /// A server parameter reported with ParameterStatus (`server_version`, `TimeZone`...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// A token that cancels the query running on this connection, from any task.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// The server process serving this session (from BackendKeyData; 0 if none was sent).
    pub fn backend_pid(&self) -> i32 {
        self.cancel.process_id
    }

    /// `I` idle, `T` inside a transaction block, `E` inside a failed transaction block.
    pub fn transaction_status(&self) -> u8 {
        self.status
    }

    /// Counts, from now on, each wait for the server that follows a send into `counter`
    /// (shared by the sessions of one server): the round trips latency multiplies.
    pub fn count_round_trips(&mut self, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) {
        self.round_trips = Some(counter);
    }

    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        if !self.write_buf.is_empty() {
            self.awaiting = true;
            let res = self.stream.write_all(&self.write_buf).await;
            self.write_buf.clear();
            res.map_err(|e| self.io_error(e))?;
        }
        self.stream.flush().await.map_err(|e| self.io_error(e))
    }

    pub(crate) fn io_error(&self, e: std::io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("connection to {} lost: {e}", self.info.target),
        )
    }

    /// Like `fill`, keeping a larger free space so streamed rows arrive in large reads.
    pub(crate) async fn fill_copy(&mut self) -> Result<(), Error> {
        if self.read_buf.capacity() - self.read_buf.len() < COPY_READ_BUFFER / 4 {
            self.read_buf.reserve(COPY_READ_BUFFER);
        }
        self.fill().await
    }

    /// Reads whatever the socket already holds, without waiting: `Ok(true)` if bytes came.
    pub(crate) fn poll_fill_now(&mut self) -> Result<bool, Error> {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        if self.read_buf.capacity() - self.read_buf.len() < 8 * 1024 {
            self.read_buf.reserve(READ_BUFFER);
        }
        let mut cx = Context::from_waker(Waker::noop());
        // Reading into a BytesMut is cancel-safe: dropping the future while pending loses nothing.
        let polled = {
            let mut read = std::pin::pin!(self.stream.read_buf(&mut self.read_buf));
            read.as_mut().poll(&mut cx)
        };
        match polled {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(0)) => Err(Error::new(
                ErrorKind::Io,
                format!(
                    "server at {} closed the connection unexpectedly",
                    self.info.target
                ),
            )),
            Poll::Ready(Ok(_)) => Ok(true),
            Poll::Ready(Err(e)) => Err(self.io_error(e)),
        }
    }

    /// Reads up to ReadyForQuery, dropping what comes: after an error has been taken, or to
    /// finish an abandoned COPY TO STDOUT.
    pub(crate) async fn drain_to_ready(&mut self) -> Result<(), Error> {
        loop {
            if let Message::ReadyForQuery { status } = self.recv().await? {
                self.status = status;
                return Ok(());
            }
        }
    }

    /// Puts the connection back in step after a COPY that was dropped part way.
    pub(crate) async fn settle(&mut self) -> Result<(), Error> {
        match self.pending {
            Pending::None => return Ok(()),
            // The server goes on sending rows until the end: read and drop them. (A cancel
            // would stop it sooner but races with the copy's own end.)
            Pending::CopyOut => tracing::debug!("draining an abandoned COPY TO STDOUT"),
            Pending::CopyIn | Pending::CopyInAborted => {
                if self.pending == Pending::CopyIn {
                    frontend::copy_fail("privaci: COPY aborted by the client", &mut self.write_buf);
                }
                self.flush().await?;
            }
        }
        self.pending = Pending::None;
        self.drain_to_ready().await
    }

    /// Sends a COPY statement and waits for the server to start the copy in the expected
    /// direction. Anything else is put back in step and returned as an error.
    pub(crate) async fn start_copy(
        &mut self,
        sql: &str,
        direction: CopyDirection,
    ) -> Result<CopyResponse, Error> {
        self.settle().await?;
        frontend::query(sql, &mut self.write_buf)?;
        self.flush().await?;
        let (expected, other) = match direction {
            CopyDirection::In => ("COPY FROM STDIN", "COPY TO STDOUT"),
            CopyDirection::Out => ("COPY TO STDOUT", "COPY FROM STDIN"),
        };
        // Statements may come before the COPY in the same message (`BEGIN; TRUNCATE t; COPY
        // ...`): one round trip for all. Their completions are passed over; the first error
        // ends the message (the server skips the rest), and is returned.
        let mut message = self.recv().await?;
        while let Message::CommandComplete { .. } = message {
            message = self.recv().await?;
        }
        match message {
            Message::CopyInResponse(r) if direction == CopyDirection::In => {
                self.pending = Pending::CopyIn;
                Ok(r)
            }
            Message::CopyOutResponse(r) if direction == CopyDirection::Out => {
                self.pending = Pending::CopyOut;
                Ok(r)
            }
            Message::ReadyForQuery { status } => {
                self.status = status;
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!("statement did not start {expected}: {sql}"),
                ))
            }
            started @ (Message::CopyInResponse(_) | Message::CopyOutResponse(_)) => {
                // Settling sends CopyFail to an unwanted COPY IN and drains an unwanted COPY OUT.
                self.pending = if matches!(started, Message::CopyInResponse(_)) {
                    Pending::CopyIn
                } else {
                    Pending::CopyOut
                };
                self.settle().await?;
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!("statement started {other}, not {expected}: {sql}"),
                ))
            }
            Message::ErrorResponse(db) => {
                let err = Error::from(db);
                self.drain_to_ready().await?;
                Err(err)
            }
            Message::RowDescription(_) | Message::EmptyQueryResponse => {
                self.drain_to_ready().await?;
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!("statement did not start {expected}: {sql}"),
                ))
            }
            msg => Err(unexpected(&msg, "the start of a COPY")),
        }
    }

    /// Reads bytes from the socket into the read buffer; an orderly close is an error here
    /// because the protocol always ends with our Terminate.
    pub(crate) async fn fill(&mut self) -> Result<(), Error> {
        if self.read_buf.capacity() - self.read_buf.len() < 8 * 1024 {
            self.read_buf.reserve(READ_BUFFER);
        }
        if std::mem::take(&mut self.awaiting) {
            if let Some(c) = &self.round_trips {
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let n = self
            .stream
            .read_buf(&mut self.read_buf)
            .await
            .map_err(|e| self.io_error(e))?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "server at {} closed the connection unexpectedly",
                    self.info.target
                ),
            ));
        }
        Ok(())
    }

    /// The next message, with asynchronous ones handled here: notices go to the log,
    /// parameter changes are recorded.
    pub(crate) async fn recv(&mut self) -> Result<Message, Error> {
        self.recv_limited(MAX_MESSAGE_LEN).await
    }

    /// As `recv`, with a length cap chosen by the caller: small while connecting, until the
    /// server has proved it knows the password.
    pub(crate) async fn recv_limited(&mut self, max_len: usize) -> Result<Message, Error> {
        loop {
            if let Some(msg) = self.next_buffered(max_len)? {
                return Ok(msg);
            }
            self.fill().await?;
        }
    }

    /// The next message already in the read buffer, never touching the socket; asynchronous
    /// messages (notices, parameter changes, notifications) are handled on the way.
    pub(crate) fn next_buffered(&mut self, max_len: usize) -> Result<Option<Message>, Error> {
        while let Some(msg) = Message::parse(&mut self.read_buf, max_len)? {
            if let Some(msg) = self.handle_async(msg) {
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }

    /// Handles a message the server may send at any time; returns the others.
    pub(crate) fn handle_async(&mut self, msg: Message) -> Option<Message> {
        match msg {
            Message::NoticeResponse(notice) => log_notice(&notice),
            Message::ParameterStatus { name, value } => {
                self.parameters.insert(name, value);
            }
            Message::NotificationResponse { channel, .. } => {
                tracing::debug!(channel, "ignoring asynchronous notification");
            }
            other => return Some(other),
        }
        None
    }

    /// Runs a simple query (one or more statements separated by semicolons) and returns
    /// every statement's result, values as text. After a server error the connection reads
    /// on to ReadyForQuery and stays usable; the first error is returned.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>, Error> {
        self.batch(sql).await.map_err(|(e, _)| e)
    }

    /// Like `simple_query`, but a server error comes with how many statements completed before
    /// it, so the caller can tell which statement of a batch failed (the server stops at the
    /// first error). A broken connection reports the count received so far.
    pub async fn batch(&mut self, sql: &str) -> Result<Vec<QueryResult>, (Error, usize)> {
        let mut results = Vec::new();
        match self.batch_inner(sql, &mut results).await {
            Ok(()) => Ok(results),
            Err(e) => Err((e, results.len())),
        }
    }

    async fn batch_inner(
        &mut self,
        sql: &str,
        results: &mut Vec<QueryResult>,
    ) -> Result<(), Error> {
        self.settle().await?;
        frontend::query(sql, &mut self.write_buf)?;
        self.flush().await?;
        let mut current = QueryResult::default();
        let mut error: Option<Error> = None;
        loop {
            match self.recv().await? {
                Message::RowDescription(columns) => current.columns = columns,
                Message::DataRow(row) => current.rows.push(row),
                Message::CommandComplete { tag } => {
                    current.tag = tag;
                    results.push(std::mem::take(&mut current));
                }
                Message::EmptyQueryResponse => results.push(std::mem::take(&mut current)),
                Message::ErrorResponse(db) => {
                    if error.is_none() {
                        error = Some(Error::from(db));
                    }
                }
                Message::ReadyForQuery { status } => {
                    self.status = status;
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                }
                // COPY started through simple_query has no data to give or take: end it so the
                // connection stays in step. COPY belongs to the copy streams.
                Message::CopyInResponse(_) => {
                    frontend::copy_fail("COPY FROM STDIN is not supported through simple_query", &mut self.write_buf);
                    self.flush().await?;
                }
                Message::CopyOutResponse(_) | Message::CopyData(_) | Message::CopyDone => {}
                Message::CopyBothResponse(_) => {
                    return Err(Error::new(ErrorKind::Protocol, "the server started a replication stream (CopyBoth), which privaci does not use"))
                }
                other => return Err(unexpected(&other, "a simple query")),
            }
        }
    }

    /// Runs statements that return no rows of interest (SET, CREATE, BEGIN...).
    pub async fn execute(&mut self, sql: &str) -> Result<(), Error> {
        self.simple_query(sql).await.map(|_| ())
    }

    /// Runs a query and returns the rows of its last result as text (None for NULL).
    pub async fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
        let results = self.simple_query(sql).await?;
        let Some(last) = results.last() else {
            return Ok(Vec::new());
        };
        let text = |field: &[u8]| {
            String::from_utf8(field.to_vec()).map_err(|_| {
                Error::new(
                    ErrorKind::Protocol,
                    "the server sent a value that is not UTF-8",
                )
            })
        };
        last.rows
            .iter()
            .map(|row| row.fields().map(|f| f.map(text).transpose()).collect())
            .collect()
    }

    /// Sends Terminate and closes the socket.
    pub async fn close(mut self) -> Result<(), Error> {
        self.settle().await?;
        frontend::terminate(&mut self.write_buf);
        self.flush().await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }
}

pub(crate) fn log_notice(notice: &crate::wire::DbError) {
    match notice.severity_code() {
        // A notice can quote a row's value (a COPY's input parsing, a trigger): logged without.
        "WARNING" => {
            tracing::warn!(code = %notice.code, "server: {}", without_values(&notice.message))
        }
        "DEBUG" => {
            tracing::debug!(code = %notice.code, "server: {}", without_values(&notice.message))
        }
        _ => tracing::info!(code = %notice.code, "server: {}", without_values(&notice.message)),
    }
}

pub(crate) fn unexpected(msg: &Message, during: &str) -> Error {
    let name = match msg {
        Message::Authentication(_) => "Authentication",
        Message::BackendKeyData { .. } => "BackendKeyData",
        Message::ParameterStatus { .. } => "ParameterStatus",
        Message::ReadyForQuery { .. } => "ReadyForQuery",
        Message::RowDescription(_) => "RowDescription",
        Message::DataRow(_) => "DataRow",
        Message::CommandComplete { .. } => "CommandComplete",
        Message::EmptyQueryResponse => "EmptyQueryResponse",
        Message::ErrorResponse(_) => "ErrorResponse",
        Message::NoticeResponse(_) => "NoticeResponse",
        Message::NotificationResponse { .. } => "NotificationResponse",
        Message::NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
        Message::CopyInResponse(_) => "CopyInResponse",
        Message::CopyOutResponse(_) => "CopyOutResponse",
        Message::CopyBothResponse(_) => "CopyBothResponse",
        Message::CopyData(_) => "CopyData",
        Message::CopyDone => "CopyDone",
    };
    Error::new(
        ErrorKind::Protocol,
        format!("unexpected {name} message from the server during {during}"),
    )
}
