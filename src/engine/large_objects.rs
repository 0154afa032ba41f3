//! Large objects: each one created on the target with its own OID and filled from the
//! source in chunks read in the run's snapshot, its comment set, and its run-state record
//! written, all in one target transaction: `--resume` skips those that committed and redoes
//! the others whole. Contents are never decoded or logged.

use super::post_data::step_recorded;
use super::shared::{lock, Shared};
use super::state;
use crate::catalog::{quote_literal, LargeObject};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind};

/// Bytes read from the source per round trip (sent as hex text: twice that on the wire).
const CHUNK: usize = 1 << 20;

fn key(lo: &LargeObject) -> String {
    format!("large object {}", lo.oid)
}

/// Copies every large object not copied yet; the first failure names the object.
pub async fn copy_all(
    shared: &Shared,
    source: &mut Connection,
    target: &mut Connection,
) -> Result<(u64, u64), Error> {
    let (mut count, mut bytes) = (0u64, 0u64);
    for lo in &shared.catalog.large_objects {
        if shared.is_cancelled() {
            break;
        }
        let key = key(lo);
        if step_recorded(shared, &key) {
            continue;
        }
        let res = copy_one(source, target, lo, &key).await;
        if res.is_err() && target.transaction_status() != b'I' {
            let _ = target.execute("ROLLBACK").await;
        }
        bytes += res.map_err(|e| e.context(format!("copying large object {}", lo.oid)))?;
        lock(&shared.steps_done).insert(key);
        count += 1;
    }
    Ok((count, bytes))
}

async fn copy_one(
    source: &mut Connection,
    target: &mut Connection,
    lo: &LargeObject,
    key: &str,
) -> Result<u64, Error> {
    target
        .execute(&format!("BEGIN; SELECT pg_catalog.lo_create({})", lo.oid))
        .await?;
    let mut offset = 0u64;
    loop {
        let rows = source
            .query_text(&format!(
                "SELECT pg_catalog.lo_get({}, {offset}, {CHUNK})",
                lo.oid
            ))
            .await
            .map_err(|e| {
                if e.code() == Some("42501") {
                    Error::new(ErrorKind::Db, "the source role may not read it: grant it SELECT on the large object (GRANT SELECT ON LARGE OBJECT ...), read as its owner, or give --no-large-objects")
                } else {
                    e
                }
            })?;
        let hex = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default();
        // `\x` then two hex digits a byte.
        let len = hex.len().saturating_sub(2) / 2;
        if len > 0 {
            target
                .execute(&format!(
                    "SELECT pg_catalog.lo_put({}, {offset}, {}::bytea)",
                    lo.oid,
                    quote_literal(&hex)
                ))
                .await?;
        }
        offset += len as u64;
        if len < CHUNK {
            break;
        }
    }
    let comment = lo
        .comment
        .as_ref()
        .map(|c| {
            format!(
                "COMMENT ON LARGE OBJECT {} IS {}; ",
                lo.oid,
                quote_literal(c)
            )
        })
        .unwrap_or_default();
    target
        .execute(&format!("{comment}{}; COMMIT", state::step_done_sql(key)))
        .await?;
    Ok(offset)
}
