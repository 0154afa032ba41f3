//! COPY ... TO STDOUT: the rows come as CopyData messages, handed out in runs of whole frames
//! straight from the read buffer, so they can be forwarded or rewritten without a copy.

use bytes::{Buf, Bytes};

use super::{unexpected, Connection, CopyDirection, Pending};
use crate::error::{Error, ErrorKind};
use crate::wire::backend::{CopyResponse, MAX_MESSAGE_LEN};
use crate::wire::copy_frames::leading_copy_data;
use crate::wire::Message;

/// Text or binary COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Binary,
}

impl CopyFormat {
    pub(crate) fn from_response(r: &CopyResponse) -> CopyFormat {
        if r.format == 1 {
            CopyFormat::Binary
        } else {
            CopyFormat::Text
        }
    }
}

pub struct CopyOutStream<'a> {
    conn: &'a mut Connection,
    format: CopyFormat,
    column_formats: Vec<i16>,
    rows: Option<u64>,
}

impl Connection {
    /// Starts `COPY ... TO STDOUT` (the statement is sent as is). The stream yields the
    /// server's CopyData frames; `rows()` gives the count once it has ended.
    pub async fn copy_out(&mut self, sql: &str) -> Result<CopyOutStream<'_>, Error> {
        let response = self.start_copy(sql, CopyDirection::Out).await?;
        Ok(CopyOutStream {
            format: CopyFormat::from_response(&response),
            column_formats: response.column_formats,
            conn: self,
            rows: None,
        })
    }
}

impl CopyOutStream<'_> {
    pub fn format(&self) -> CopyFormat {
        self.format
    }

    pub fn column_formats(&self) -> &[i16] {
        &self.column_formats
    }

    /// The next run of whole CopyData frames (tag and length included), as the server sent
    /// them; `None` once the copy has ended. Notices between frames are logged here.
    pub async fn next_frames(&mut self) -> Result<Option<Bytes>, Error> {
        if self.rows.is_some() {
            return Ok(None);
        }
        loop {
            let run = leading_copy_data(&self.conn.read_buf, MAX_MESSAGE_LEN)?;
            if run > 0 {
                return Ok(Some(self.conn.read_buf.split_to(run).freeze()));
            }
            // Not a complete CopyData at the front: another message, or not enough bytes.
            // Only a message that is wholly in the buffer is parsed here, so CopyData behind a
            // notice stays in the buffer for the next run.
            let front_complete =
                crate::wire::backend::frame_len(&self.conn.read_buf, MAX_MESSAGE_LEN)?
                    .is_some_and(|len| self.conn.read_buf.len() >= len);
            if !front_complete || self.conn.read_buf[0] == b'd' {
                self.conn.fill_copy().await?;
                continue;
            }
            let Some(msg) = Message::parse(&mut self.conn.read_buf, MAX_MESSAGE_LEN)? else {
                continue;
            };
            let Some(msg) = self.conn.handle_async(msg) else {
                continue;
            };
            match msg {
                Message::CopyDone => {}
                Message::CommandComplete { tag } => {
                    self.rows = Some(copy_count(&tag)?);
                }
                Message::ReadyForQuery { status } => {
                    self.conn.status = status;
                    self.conn.pending = Pending::None;
                    if self.rows.is_none() {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            "COPY ended without CommandComplete",
                        ));
                    }
                    return Ok(None);
                }
                Message::ErrorResponse(db) => {
                    let err = Error::from(db);
                    self.conn.drain_to_ready().await?;
                    self.conn.pending = Pending::None;
                    self.rows = Some(0);
                    return Err(err);
                }
                other => return Err(unexpected(&other, "COPY TO STDOUT")),
            }
        }
    }

    /// The row count from CommandComplete, once `next_frames` has returned `None`.
    pub fn rows(&self) -> Option<u64> {
        self.rows
    }

    /// Reads the whole copy into one buffer of payloads: for small results and tests.
    pub async fn collect_payloads(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(mut frames) = self.next_frames().await? {
            while frames.remaining() >= 5 {
                let len = u32::from_be_bytes([frames[1], frames[2], frames[3], frames[4]]) as usize;
                out.extend_from_slice(&frames[5..1 + len]);
                frames.advance(1 + len);
            }
        }
        Ok(out)
    }
}

/// `COPY 1234` → 1234.
pub(crate) fn copy_count(tag: &str) -> Result<u64, Error> {
    tag.strip_prefix("COPY ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("unexpected command tag {tag:?} at the end of COPY"),
            )
        })
}
