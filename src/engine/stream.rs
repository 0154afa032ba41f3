//! One table's rows from source to target: forwarded as read when nothing is masked,
//! rewritten by the mask plan otherwise. Memory is bounded by the read buffer, one output
//! batch and the sink's frame, whatever the table size.

use crate::conn::{CopyFormat, CopyInSink, CopyOutStream};
use crate::error::{Error, ErrorKind};
use crate::mask::text_rewriter::TextRewriter;
use crate::mask::{CopyRewriter, MaskPlan, Rewriter};
use crate::wire::copy_frames::CopyDataPayloads;

/// Rewritten bytes are sent once this many have gathered.
const OUTPUT_BATCH: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub rows: u64,
    /// Binary COPY bytes read from the source.
    pub bytes_in: u64,
}

/// Streams one COPY from `out` into `sink` and finishes the sink, rewriting with the binary
/// or the text rewriter as the stream's format says. `table` names the table in errors; a
/// masking error names the row and column, never the value, and aborts the target COPY with
/// CopyFail so nothing partial is committed.
pub async fn stream_table(
    table: &str,
    out: &mut CopyOutStream<'_>,
    sink: CopyInSink<'_>,
    plan: MaskPlan,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<StreamStats, Error> {
    if plan.is_passthrough() {
        return forward(table, out, sink, progress).await;
    }
    match out.format() {
        CopyFormat::Binary => rewrite(table, out, sink, Rewriter::new(plan), progress).await,
        CopyFormat::Text => rewrite(table, out, sink, TextRewriter::new(plan), progress).await,
    }
}

/// Rows forwarded as the source sent them.
async fn forward(
    table: &str,
    out: &mut CopyOutStream<'_>,
    mut sink: CopyInSink<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<StreamStats, Error> {
    let mut bytes_in = 0u64;
    while let Some(frames) = out.next_frames().await? {
        bytes_in += frames.len() as u64;
        progress(frames.len() as u64);
        sink.write_frames(&frames).await?;
    }
    finish(table, out, sink, bytes_in).await
}

async fn rewrite(
    table: &str,
    out: &mut CopyOutStream<'_>,
    mut sink: CopyInSink<'_>,
    mut rewriter: impl CopyRewriter,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<StreamStats, Error> {
    let mut bytes_in = 0u64;
    while let Some(frames) = out.next_frames().await? {
        bytes_in += frames.len() as u64;
        progress(frames.len() as u64);
        for payload in CopyDataPayloads::new(&frames) {
            if let Err(e) = rewriter.feed(payload) {
                let err = Error::new(
                    ErrorKind::Mask,
                    format!("masking table {table} failed at {e}"),
                );
                let _ = sink.fail(&format!("privaci: masking failed at {e}")).await;
                return Err(err);
            }
        }
        if rewriter.output().len() >= OUTPUT_BATCH {
            sink.write(rewriter.output()).await?;
            rewriter.output().clear();
        }
    }
    if let Err(e) = rewriter.finish() {
        let _ = sink.fail(&format!("privaci: {e}")).await;
        return Err(Error::new(ErrorKind::Mask, format!("table {table}: {e}")));
    }
    sink.write(rewriter.output()).await?;
    rewriter.output().clear();
    finish(table, out, sink, bytes_in).await
}

async fn finish(
    table: &str,
    out: &CopyOutStream<'_>,
    sink: CopyInSink<'_>,
    bytes_in: u64,
) -> Result<StreamStats, Error> {
    let rows = sink.finish().await?;
    let rows_out = out.rows().unwrap_or(rows);
    if rows != rows_out {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!("table {table}: the source sent {rows_out} rows but the target loaded {rows}"),
        ));
    }
    Ok(StreamStats { rows, bytes_in })
}
