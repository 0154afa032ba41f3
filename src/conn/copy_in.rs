//! COPY ... FROM STDIN: bytes go out in large CopyData messages whose headers are written in
//! place in the send buffer; runs of frames read from another server go out as they are.
//! After each send the sink looks, without waiting, for an early ErrorResponse, so a copy the
//! server has already refused is not fed a whole table.

use bytes::BufMut;

use super::{unexpected, Connection, CopyDirection, Pending};
use crate::conn::copy_out::{copy_count, CopyFormat};
use crate::error::{Error, ErrorKind};
use crate::wire::{frontend, Message};

/// CopyData message size. `cargo bench --bench passthrough` (README) found 16 KiB to 1 MiB
/// equal within noise on loopback, the target server's COPY being the bound; 256 KiB keeps
/// writes few without holding much memory.
pub const DEFAULT_FRAME_SIZE: usize = 256 * 1024;

pub struct CopyInSink<'a> {
    conn: &'a mut Connection,
    format: CopyFormat,
    column_formats: Vec<i16>,
    /// Where the open CopyData message starts in the send buffer.
    open_frame: Option<usize>,
    frame_size: usize,
    bytes_sent: u64,
    done: bool,
}

impl Connection {
    /// Starts `COPY ... FROM STDIN` (the statement is sent as is).
    pub async fn copy_in(&mut self, sql: &str) -> Result<CopyInSink<'_>, Error> {
        let response = self.start_copy(sql, CopyDirection::In).await?;
        Ok(CopyInSink {
            format: CopyFormat::from_response(&response),
            column_formats: response.column_formats,
            conn: self,
            open_frame: None,
            frame_size: DEFAULT_FRAME_SIZE,
            bytes_sent: 0,
            done: false,
        })
    }
}

impl CopyInSink<'_> {
    pub fn format(&self) -> CopyFormat {
        self.format
    }

    pub fn column_formats(&self) -> &[i16] {
        &self.column_formats
    }

    /// Sets the CopyData message size (default `DEFAULT_FRAME_SIZE`).
    pub fn set_frame_size(&mut self, bytes: usize) {
        self.frame_size = bytes.clamp(64, 64 << 20);
    }

    /// Bytes handed to the socket so far (framing included).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Appends COPY data; it leaves in CopyData messages of `frame_size` bytes.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let start = match self.open_frame {
                Some(at) => at,
                None => {
                    let at = self.conn.write_buf.len();
                    self.conn.write_buf.reserve(self.frame_size + 5);
                    self.conn.write_buf.put_u8(b'd');
                    self.conn.write_buf.put_i32(0);
                    self.open_frame = Some(at);
                    at
                }
            };
            let used = self.conn.write_buf.len() - start - 5;
            let n = (self.frame_size - used).min(data.len());
            self.conn.write_buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if used + n == self.frame_size {
                self.send().await?;
            }
        }
        Ok(())
    }

    /// Writes whole CopyData frames as they are (for example a run from `CopyOutStream`).
    /// The caller guarantees they are well-formed frames.
    pub async fn write_frames(&mut self, frames: &[u8]) -> Result<(), Error> {
        self.close_frame();
        if !self.conn.write_buf.is_empty() {
            self.send().await?;
        }
        use tokio::io::AsyncWriteExt;
        if let Err(e) = self.conn.stream.write_all(frames).await {
            return Err(self.conn.io_error(e));
        }
        self.bytes_sent += frames.len() as u64;
        self.check_for_error().await
    }

    fn close_frame(&mut self) {
        if let Some(at) = self.open_frame.take() {
            let len = (self.conn.write_buf.len() - at - 1) as u32;
            if len == 4 {
                // Nothing was written into it: drop the empty frame.
                self.conn.write_buf.truncate(at);
            } else {
                self.conn.write_buf[at + 1..at + 5].copy_from_slice(&len.to_be_bytes());
            }
        }
    }

    /// Sends what is buffered, then checks for an early error from the server.
    async fn send(&mut self) -> Result<(), Error> {
        self.close_frame();
        self.bytes_sent += self.conn.write_buf.len() as u64;
        self.conn.flush().await?;
        self.check_for_error().await
    }

    /// Looks at what the server has sent, without waiting. During COPY IN the server sends
    /// nothing but notices and parameter changes unless it has given up on the copy.
    async fn check_for_error(&mut self) -> Result<(), Error> {
        while self.conn.poll_fill_now()? {
            // Notices are handled inside next_buffered; anything else ends the copy.
            match self
                .conn
                .next_buffered(crate::wire::backend::MAX_MESSAGE_LEN)?
            {
                None => {}
                Some(Message::ErrorResponse(db)) => {
                    self.done = true;
                    let err = Error::from(db);
                    self.conn.drain_to_ready().await?;
                    self.conn.pending = Pending::None;
                    return Err(err);
                }
                Some(other) => return Err(unexpected(&other, "COPY FROM STDIN")),
            }
        }
        Ok(())
    }

    /// Ends the copy with CopyDone and returns the number of rows the server loaded.
    pub async fn finish(mut self) -> Result<u64, Error> {
        self.close_frame();
        frontend::copy_done(&mut self.conn.write_buf);
        self.bytes_sent += self.conn.write_buf.len() as u64;
        self.done = true;
        self.conn.flush().await?;
        let mut result = Err(Error::new(
            ErrorKind::Protocol,
            "COPY ended without CommandComplete",
        ));
        loop {
            match self.conn.recv().await? {
                Message::CommandComplete { tag } => result = copy_count(&tag),
                Message::ErrorResponse(db) => result = Err(Error::from(db)),
                Message::ReadyForQuery { status } => {
                    self.conn.status = status;
                    self.conn.pending = Pending::None;
                    return result;
                }
                other => return Err(unexpected(&other, "the end of COPY FROM STDIN")),
            }
        }
    }

    /// Aborts the copy with CopyFail; returns the server's error (which carries `reason`).
    /// Data not yet sent is dropped; nothing of the copy is committed.
    pub async fn fail(mut self, reason: &str) -> Error {
        self.done = true;
        if let Some(at) = self.open_frame.take() {
            self.conn.write_buf.truncate(at);
        }
        frontend::copy_fail(reason, &mut self.conn.write_buf);
        if let Err(e) = self.conn.flush().await {
            return e;
        }
        let mut error = Error::new(
            ErrorKind::Protocol,
            "server did not answer CopyFail with an error",
        );
        loop {
            match self.conn.recv().await {
                Ok(Message::ErrorResponse(db)) => error = Error::from(db),
                Ok(Message::CommandComplete { .. }) => {}
                Ok(Message::ReadyForQuery { status }) => {
                    self.conn.status = status;
                    self.conn.pending = Pending::None;
                    return error;
                }
                Ok(other) => return unexpected(&other, "CopyFail"),
                Err(e) => return e,
            }
        }
    }
}

impl Drop for CopyInSink<'_> {
    /// An unfinished copy is aborted: CopyFail is queued, and the connection sends it and
    /// reads the server's answer before its next use.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(at) = self.open_frame.take() {
            self.conn.write_buf.truncate(at);
        }
        frontend::copy_fail(
            "privaci: COPY aborted by the client",
            &mut self.conn.write_buf,
        );
        self.conn.pending = Pending::CopyInAborted;
    }
}
