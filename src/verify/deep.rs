//! `verify --deep`: no source value of a masked text column appears in any kept text column
//! of the target (a name copied into an order's notes, an e-mail in a log table). The masked
//! columns' source values are hashed into one sorted vector (in partitions when it would
//! outgrow the memory budget), every kept text column of the target is streamed against it,
//! and columns with hits are read again to confirm them byte for byte.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::rows::{Row, RowReader};
use super::{Ctx, Finding};
use crate::catalog::{quote_ident, Table};
use crate::config::resolve::column_spec;
use crate::conn::Connection;
use crate::error::Error;
use crate::mask::StrategySpec;
use crate::types::TypeKind;
use crate::wire::copy_frames::CopyDataPayloads;

/// Distinct hit values confirmed per column.
const CONFIRM_CAP: usize = 10_000;

fn is_text(t: &Table, name: &str) -> bool {
    t.columns
        .iter()
        .find(|c| c.name == name)
        .filter(|c| c.binary_io && !c.is_enum)
        .and_then(column_spec)
        .is_some_and(|s| s.kind == TypeKind::Text)
}

/// (table, columns) of the source whose masked text values are looked for, and of the
/// target whose kept text columns are searched.
fn columns(ctx: &Ctx, masked: bool) -> Vec<(&Table, Vec<String>)> {
    let mut out = Vec::new();
    for t in ctx.source.data_tables().filter(|t| t.readable) {
        let Some(r) = ctx.resolved.get(&t.name) else {
            continue;
        };
        let Some(theirs) = ctx.target.table(&t.name.schema, &t.name.name) else {
            continue;
        };
        let cols: Vec<String> = r
            .columns
            .iter()
            .filter(|c| c.copied)
            .filter(|c| match masked {
                true => !matches!(c.strategy, StrategySpec::Keep | StrategySpec::Default),
                false => c.strategy == StrategySpec::Keep,
            })
            .map(|c| c.name.clone())
            .filter(|n| is_text(t, n) && theirs.columns.iter().any(|c| &c.name == n))
            .collect();
        if !cols.is_empty() {
            out.push((if masked { t } else { theirs }, cols));
        }
    }
    out
}

async fn stream(
    conn: &mut Connection,
    t: &Table,
    cols: &[String],
    f: &mut impl FnMut(usize, &[u8]),
) -> Result<(), Error> {
    let list: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "COPY (SELECT {} FROM ONLY {}) TO STDOUT (FORMAT binary)",
        list.join(", "),
        t.name.quoted
    );
    let mut reader = RowReader::new(true, cols.len());
    let mut out = conn.copy_out(&sql).await?;
    let bad = |e: crate::copy::CopyError| {
        Error::new(
            crate::error::ErrorKind::Protocol,
            format!("reading table {}: {e}", t.name),
        )
    };
    while let Some(frames) = out.next_frames().await? {
        for payload in CopyDataPayloads::new(&frames) {
            reader
                .feed(payload, &mut |row: &Row<'_>| {
                    for i in 0..row.len() {
                        if let Some(v) = row.get(i).filter(|v| !v.is_empty()) {
                            f(i, v);
                        }
                    }
                })
                .map_err(bad)?;
        }
    }
    reader.finish().map_err(bad)
}

pub(super) async fn run(
    ctx: &Ctx,
    source: &mut Connection,
    target: &mut Connection,
) -> Result<Vec<Finding>, Error> {
    let masked = columns(ctx, true);
    let kept = columns(ctx, false);
    if masked.is_empty() || kept.is_empty() {
        return Ok(Vec::new());
    }
    let values: u64 = masked
        .iter()
        .map(|(t, c)| t.estimated_rows.max(0) as u64 * c.len() as u64)
        .sum();
    let budget = ctx.opts.max_memory.max(4096);
    let mut parts = (values * 8).div_ceil(budget).max(1);
    // hits[table][column]: (rows, distinct hashes seen, to confirm).
    let mut hits: Vec<Vec<(u64, HashSet<u64>)>> = kept
        .iter()
        .map(|(_, c)| vec![(0, HashSet::new()); c.len()])
        .collect();
    let mut p = 0;
    while p < parts {
        let mut set: Vec<u64> = Vec::new();
        let mut over = false;
        for (t, cols) in &masked {
            stream(source, t, cols, &mut |_, v| {
                let h = ctx.hashes.value(v);
                if parts == 1 || (h >> 32) % parts == p {
                    if (set.len() as u64 + 1) * 8 > budget {
                        over = true;
                    } else {
                        set.push(h);
                    }
                }
            })
            .await
            .map_err(|e| e.context("source"))?;
        }
        if over {
            parts = (parts * 2).max(2);
            p = 0;
            for h in hits.iter_mut().flatten() {
                *h = (0, HashSet::new());
            }
            continue;
        }
        set.sort_unstable();
        set.dedup();
        for (k, (t, cols)) in kept.iter().enumerate() {
            let found = &mut hits[k];
            stream(target, t, cols, &mut |i, v| {
                let h = ctx.hashes.value(v);
                if set.binary_search(&h).is_ok() {
                    found[i].0 += 1;
                    if found[i].1.len() < CONFIRM_CAP {
                        found[i].1.insert(h);
                    }
                }
            })
            .await
            .map_err(|e| e.context("target"))?;
        }
        p += 1;
    }
    // Confirm: the hit values themselves, from the source's masked columns, then counted in
    // each kept column with hits.
    let wanted: HashSet<u64> = hits
        .iter()
        .flatten()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // Each hit value with the masked columns (numbered across `masked`) it comes from.
    let mut originals: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    let mut names = Vec::new();
    for (t, cols) in &masked {
        let base = names.len();
        names.extend(cols.iter().map(|c| format!("{}.{c}", t.name)));
        stream(source, t, cols, &mut |i, v| {
            if wanted.contains(&ctx.hashes.value(v)) {
                let from = originals.entry(super::table::exact_key(v)).or_default();
                if !from.contains(&(base + i)) {
                    from.push(base + i);
                }
            }
        })
        .await
        .map_err(|e| e.context("source"))?;
    }
    let mut findings = Vec::new();
    for (k, (t, cols)) in kept.iter().enumerate() {
        if hits[k].iter().all(|(n, _)| *n == 0) {
            continue;
        }
        let mut confirmed = vec![0u64; cols.len()];
        let mut from: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); cols.len()];
        stream(target, t, cols, &mut |i, v| {
            if hits[k][i].0 > 0 && wanted.contains(&ctx.hashes.value(v)) {
                if let Some(origin) = originals.get(&super::table::exact_key(v)) {
                    confirmed[i] += 1;
                    from[i].extend(origin.iter().copied());
                }
            }
        })
        .await
        .map_err(|e| e.context("target"))?;
        for (i, c) in cols.iter().enumerate() {
            if confirmed[i] > 0 {
                let origins: Vec<&str> = from[i].iter().map(|&n| names[n].as_str()).collect();
                findings.push(Finding::deep_leak(
                    &t.name.to_string(),
                    c,
                    hits[k][i].0,
                    confirmed[i],
                    &origins,
                ));
            }
        }
    }
    Ok(findings)
}
