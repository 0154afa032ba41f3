//! One table's rows checked: the source is streamed through the table's masking plan (what
//! the clone should have written) while the target is streamed as it is, both in their
//! verify snapshots and at once. Order-independent sums of keyed hashes compare the two as
//! multisets, per column and per row; the masked columns' values are also hashed into sorted
//! vectors, to count target values that are source values of the same column. Nothing but
//! 64-bit hashes and counts is kept, and the hash vectors are split into passes when they
//! would outgrow the memory budget.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use super::rows::{Row, RowReader};
use crate::config::resolve::ResolvedTable;
use crate::conn::Connection;
use crate::error::{Error, ErrorKind};
use crate::mask::remap::OidMap;
use crate::mask::text_rewriter::TextRewriter;
use crate::mask::{CopyRewriter, MaskKey, Rewriter};
use crate::wire::copy_frames::CopyDataPayloads;

/// Distinct hit values confirmed on the values themselves in the exact pass.
const EXACT_CAP: usize = 10_000;

/// Bytes kept per masked value and row: the source's, the expected and the target's hash.
const BYTES_PER_MASKED_VALUE: u64 = 24;

/// The run's keyed hash: foldhash with a random seed per run (several times faster than
/// SipHash on the short values rows are made of), so a hash says nothing outside the run.
#[derive(Clone)]
pub struct Hashes {
    state: foldhash::quality::RandomState,
    /// Mixed into each row's hash.
    row_key: u64,
}

impl Hashes {
    pub fn new() -> Hashes {
        let state = foldhash::quality::RandomState::default();
        let row_key = state.hash_one(0x5eed_u64);
        Hashes { state, row_key }
    }

    /// A field at position `col` (NULL included): summed into the column's and row's sums.
    #[inline]
    fn field(&self, col: usize, v: Option<&[u8]>) -> u64 {
        let mut h = self.state.build_hasher();
        h.write_usize(col);
        match v {
            None => h.write_u8(0),
            Some(v) => {
                h.write_u8(1);
                h.write(v);
            }
        }
        h.finish()
    }

    /// A value on its own (any column): what leak checks compare.
    #[inline]
    pub fn value(&self, v: &[u8]) -> u64 {
        let mut h = self.state.build_hasher();
        h.write(v);
        h.finish()
    }

    /// A row from its fields' hashes (each already bound to its column): their sum through a
    /// keyed non-linear mix, so the same values spread over other rows sum differently.
    #[inline]
    fn row(&self, field_sum: u64) -> u64 {
        // The 64-bit finalizer of MurmurHash3.
        let mut x = field_sum ^ self.row_key;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

impl Default for Hashes {
    fn default() -> Self {
        Hashes::new()
    }
}

/// A multiset of rows as order-independent sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sums {
    rows: u64,
    row_sum: u64,
    columns: Vec<u64>,
}

impl Sums {
    fn new(columns: usize) -> Sums {
        Sums {
            rows: 0,
            row_sum: 0,
            columns: vec![0; columns],
        }
    }

    #[inline]
    fn add(&mut self, hashes: &Hashes, row: &Row<'_>) {
        let mut fields = 0u64;
        for (i, sum) in self.columns.iter_mut().enumerate() {
            let h = hashes.field(i, row.get(i));
            *sum = sum.wrapping_add(h);
            fields = fields.wrapping_add(h);
        }
        self.row_sum = self.row_sum.wrapping_add(hashes.row(fields));
        self.rows += 1;
    }
}

/// What is checked of one table.
pub struct TableSpec<'a> {
    pub resolved: &'a ResolvedTable,
    /// `"schema"."table"`.
    pub quoted: String,
    /// Copied source columns (quoted), in the plan's order.
    pub source_cols: Vec<String>,
    /// The target's columns (quoted): the copied ones not left to the target's DEFAULT.
    pub target_cols: Vec<String>,
    /// Their names, for the report.
    pub target_names: Vec<String>,
    /// Masked columns: (position among source_cols, position among target_cols).
    pub masked: Vec<(usize, usize)>,
    pub binary: bool,
    pub estimated_rows: i64,
}

/// A masked column's leak count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakCount {
    /// Position among the target columns.
    pub column: usize,
    /// Target rows whose value is a source value of this column.
    pub target_hits: u64,
    /// How many the config's own masking gives (a masked value that happens to be a source
    /// value too, such as a common name drawn from the list).
    pub expected_hits: u64,
    /// After the exact pass, the same two counts over the confirmed values (byte for byte).
    pub confirmed: Option<(u64, u64)>,
    /// Hit values too many to confirm them all: the confirmed counts cover this many.
    pub confirmed_values: usize,
}

impl LeakCount {
    /// Target values equal to source values beyond what the masking itself gives.
    pub fn leaked(&self) -> u64 {
        match self.confirmed {
            Some((t, e)) => t.saturating_sub(e),
            None => self.target_hits.saturating_sub(self.expected_hits),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TableOutcome {
    pub source_rows: u64,
    pub target_rows: u64,
    /// Target columns whose multiset of values differs from the expected one.
    pub columns_differ: Vec<usize>,
    /// Every column matches as a multiset, but rows are not the same rows.
    pub rows_differ: bool,
    pub leaks: Vec<LeakCount>,
    /// Passes made over the data (more than one when the hashes outgrew the budget).
    pub passes: u32,
    pub bytes_read: u64,
}

/// Hash vectors of one pass.
#[derive(Default)]
struct Collected {
    source: Vec<Vec<u64>>,
    expected: Vec<Vec<u64>>,
    target: Vec<Vec<u64>>,
    overflow: bool,
}

/// Which values a pass keeps.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Hashes in partition `p` of `n`, up to `budget` bytes in all.
    Partition { p: u64, n: u64, budget: u64 },
    /// Values whose hash is in the set (per masked column), for the exact pass.
    Exact(&'a [HashSet<u64>]),
}

/// Per masked column, value counts by bytes in the exact pass.
#[derive(Default)]
struct ExactValues {
    source: Vec<HashMap<Vec<u8>, u64>>,
    expected: Vec<HashMap<Vec<u8>, u64>>,
    target: Vec<HashMap<Vec<u8>, u64>>,
}

/// One side's masked values in a pass: hashes, or (exact pass) the values themselves.
struct Found {
    hashes: Vec<Vec<u64>>,
    values: Vec<HashMap<Vec<u8>, u64>>,
}

impl Found {
    fn new(columns: usize) -> Found {
        Found {
            hashes: vec![Vec::new(); columns],
            values: vec![HashMap::new(); columns],
        }
    }

    /// Takes field `at(k)` of `row` for each masked column k that `keeps`.
    #[inline]
    fn take(
        &mut self,
        hashes: &Hashes,
        row: &Row<'_>,
        at: impl Fn(usize) -> usize,
        keeps: &impl Fn(usize, u64) -> bool,
        exact: bool,
    ) {
        for k in 0..self.hashes.len() {
            if let Some(v) = row.get(at(k)) {
                let h = hashes.value(v);
                if keeps(k, h) {
                    if exact {
                        *self.values[k].entry(exact_key(v)).or_insert(0) += 1;
                    } else {
                        self.hashes[k].push(h);
                    }
                }
            }
        }
    }
}

/// What the exact pass keeps of a value: the value itself up to 64 bytes, a SHA-256 digest
/// of a longer one (marked and padded past 64 bytes, so it never equals a kept value). The
/// pass holds at most a few thousand of them whatever the values' size.
pub(super) fn exact_key(v: &[u8]) -> Vec<u8> {
    if v.len() <= 64 {
        return v.to_vec();
    }
    use sha2::Digest;
    let mut key = vec![0xff; 65 - 32];
    key.extend_from_slice(&sha2::Sha256::digest(v));
    key
}

/// A malformed COPY stream from one side, as an error naming the table.
fn malformed<'a>(
    side: &'static str,
    table: &'a str,
) -> impl Fn(crate::copy::CopyError) -> Error + 'a {
    move |e| {
        Error::new(
            ErrorKind::Protocol,
            format!("reading table {table} from the {side}: {e}"),
        )
    }
}

pub struct Env<'a> {
    pub key: Option<&'a MaskKey>,
    pub oids: &'a std::sync::Arc<OidMap>,
    pub hashes: &'a Hashes,
    /// Bytes of hashes this job may hold.
    pub budget: u64,
}

/// Checks one table; `source` and `target` are in their verify snapshots.
pub async fn check(
    env: &Env<'_>,
    spec: &TableSpec<'_>,
    source: &mut Connection,
    target: &mut Connection,
) -> Result<TableOutcome, Error> {
    let m = spec.masked.len() as u64;
    let per_pass = |rows: u64| (rows * m * BYTES_PER_MASKED_VALUE).div_ceil(env.budget.max(1));
    let mut passes = per_pass(spec.estimated_rows.max(0) as u64).max(1);
    let mut outcome = TableOutcome::default();
    let mut hits: Vec<(u64, u64, Vec<u64>)> = vec![(0, 0, Vec::new()); spec.masked.len()];
    let mut p = 0;
    let mut first = true;
    while p < passes {
        let keep = Keep::Partition {
            p,
            n: passes,
            budget: env.budget,
        };
        let (sums, mut got, _, bytes) = stream_pair(env, spec, source, target, keep, first).await?;
        outcome.bytes_read += bytes;
        outcome.passes += 1;
        if let Some((src, tgt)) = sums {
            outcome.source_rows = src.rows;
            outcome.target_rows = tgt.rows;
            outcome.columns_differ = (0..spec.target_cols.len())
                .filter(|&i| src.columns[i] != tgt.columns[i])
                .collect();
            outcome.rows_differ = outcome.columns_differ.is_empty() && src.row_sum != tgt.row_sum;
            first = false;
        }
        if got.overflow {
            // The estimate was low: start the hashes again in as many passes as the real row
            // count needs (the sums are kept).
            let rows = outcome.source_rows.max(outcome.target_rows);
            passes = per_pass(rows).max(passes + 1);
            p = 0;
            hits = vec![(0, 0, Vec::new()); spec.masked.len()];
            continue;
        }
        for (k, hit) in hits.iter_mut().enumerate() {
            let s = &mut got.source[k];
            s.sort_unstable();
            s.dedup();
            let in_source = |h: &u64| s.binary_search(h).is_ok();
            let t_hits: Vec<u64> = got.target[k].iter().copied().filter(in_source).collect();
            hit.0 += t_hits.len() as u64;
            hit.1 += got.expected[k].iter().filter(|h| in_source(h)).count() as u64;
            if hit.2.len() < EXACT_CAP {
                hit.2.extend(t_hits);
                hit.2.sort_unstable();
                hit.2.dedup();
                hit.2.truncate(EXACT_CAP);
            }
        }
        p += 1;
    }
    outcome.leaks = hits
        .iter()
        .enumerate()
        .map(|(k, (t, e, _))| LeakCount {
            column: spec.masked[k].1,
            target_hits: *t,
            expected_hits: *e,
            confirmed: None,
            confirmed_values: 0,
        })
        .collect();
    // Hits beyond what the masking gives: confirm them on the values themselves, so that a
    // 64-bit collision never fails a clone.
    if outcome.leaks.iter().any(|l| l.leaked() > 0) {
        let sets: Vec<HashSet<u64>> = outcome
            .leaks
            .iter()
            .zip(&hits)
            .map(|(l, h)| {
                if l.leaked() > 0 {
                    h.2.iter().copied().collect()
                } else {
                    HashSet::new()
                }
            })
            .collect();
        let (_, _, exact, bytes) =
            stream_pair(env, spec, source, target, Keep::Exact(&sets), false).await?;
        outcome.bytes_read += bytes;
        outcome.passes += 1;
        let exact = exact.unwrap_or_default();
        for (k, leak) in outcome.leaks.iter_mut().enumerate() {
            if sets[k].is_empty() {
                continue;
            }
            let src = &exact.source[k];
            let count = |m: &HashMap<Vec<u8>, u64>| {
                m.iter()
                    .filter(|(v, _)| src.contains_key(*v))
                    .map(|(_, n)| n)
                    .sum()
            };
            leak.confirmed = Some((count(&exact.target[k]), count(&exact.expected[k])));
            leak.confirmed_values = sets[k].len();
        }
    }
    Ok(outcome)
}

type PairResult = (Option<(Sums, Sums)>, Collected, Option<ExactValues>, u64);

/// One pass over both sides at once.
async fn stream_pair(
    env: &Env<'_>,
    spec: &TableSpec<'_>,
    source: &mut Connection,
    target: &mut Connection,
    keep: Keep<'_>,
    with_sums: bool,
) -> Result<PairResult, Error> {
    let fmt = if spec.binary { "binary" } else { "text" };
    let source_sql = format!(
        "COPY (SELECT {} FROM ONLY {}) TO STDOUT (FORMAT {fmt})",
        select_list(&spec.source_cols),
        spec.quoted
    );
    let target_sql = format!(
        "COPY (SELECT {} FROM ONLY {}) TO STDOUT (FORMAT {fmt})",
        select_list(&spec.target_cols),
        spec.quoted
    );
    let n_masked = spec.masked.len();
    let exact_mode = matches!(keep, Keep::Exact(_));
    let used = std::sync::atomic::AtomicU64::new(0);
    let keeps = |k: usize, h: u64| -> bool {
        match keep {
            Keep::Partition { p, n, budget } => {
                if n > 1 && (h >> 32) % n != p {
                    return false;
                }
                // Each kept hash has its share of the budget: past it, the pass is redone in
                // more partitions.
                used.fetch_add(8, std::sync::atomic::Ordering::Relaxed) < budget
            }
            Keep::Exact(sets) => sets[k].contains(&h),
        }
    };
    let overflowed = || {
        matches!(keep, Keep::Partition { budget, .. }
            if used.load(std::sync::atomic::Ordering::Relaxed) >= budget)
    };

    let source_side = async {
        let plan = spec
            .resolved
            .plan(env.key, env.oids)
            .map_err(|e| Error::new(ErrorKind::Mask, format!("table {}: {e}", spec.quoted)))?;
        let mut rewriter: Option<Box<dyn CopyRewriter + Send>> = if plan.is_passthrough() {
            None
        } else if spec.binary {
            Some(Box::new(Rewriter::new(plan)))
        } else {
            Some(Box::new(TextRewriter::new(plan)))
        };
        let mut raw = RowReader::new(spec.binary, spec.source_cols.len());
        let mut expected = RowReader::new(spec.binary, spec.target_cols.len());
        let mut sums = Sums::new(spec.target_cols.len());
        let mut src = Found::new(n_masked);
        let mut exp = Found::new(n_masked);
        let mut bytes = 0u64;
        let mut out = source.copy_out(&source_sql).await?;
        let bad = malformed("source", &spec.quoted);
        while let Some(frames) = out.next_frames().await? {
            bytes += frames.len() as u64;
            for payload in CopyDataPayloads::new(&frames) {
                if n_masked > 0 {
                    raw.feed(payload, &mut |row: &Row<'_>| {
                        src.take(env.hashes, row, |k| spec.masked[k].0, &keeps, exact_mode)
                    })
                    .map_err(&bad)?;
                }
                let mut on_row = |row: &Row<'_>| {
                    if with_sums {
                        sums.add(env.hashes, row);
                    }
                    exp.take(env.hashes, row, |k| spec.masked[k].1, &keeps, exact_mode);
                };
                match rewriter.as_mut() {
                    None => expected.feed(payload, &mut on_row).map_err(&bad)?,
                    Some(rw) => {
                        rw.feed(payload).map_err(|e| {
                            Error::new(
                                ErrorKind::Mask,
                                format!("masking table {} failed at {e}", spec.quoted),
                            )
                        })?;
                        let buf = rw.output();
                        expected.feed(buf, &mut on_row).map_err(&bad)?;
                        buf.clear();
                    }
                }
            }
        }
        if n_masked > 0 {
            raw.finish().map_err(&bad)?;
        }
        expected.finish().map_err(&bad)?;
        Ok::<_, Error>((sums, src, exp, bytes))
    };

    let target_side = async {
        let mut reader = RowReader::new(spec.binary, spec.target_cols.len());
        let mut sums = Sums::new(spec.target_cols.len());
        let mut tgt = Found::new(n_masked);
        let mut bytes = 0u64;
        let mut out = target.copy_out(&target_sql).await?;
        let bad = malformed("target", &spec.quoted);
        while let Some(frames) = out.next_frames().await? {
            bytes += frames.len() as u64;
            for payload in CopyDataPayloads::new(&frames) {
                reader
                    .feed(payload, &mut |row: &Row<'_>| {
                        if with_sums {
                            sums.add(env.hashes, row);
                        }
                        tgt.take(env.hashes, row, |k| spec.masked[k].1, &keeps, exact_mode);
                    })
                    .map_err(&bad)?;
            }
        }
        reader.finish().map_err(&bad)?;
        Ok::<_, Error>((sums, tgt, bytes))
    };

    let (s, t) = tokio::join!(source_side, target_side);
    let (s_sums, src, exp, s_bytes) =
        s.map_err(|e| e.context(format!("source, table {}", spec.quoted)))?;
    let (t_sums, tgt, t_bytes) =
        t.map_err(|e| e.context(format!("target, table {}", spec.quoted)))?;
    let collected = Collected {
        source: src.hashes,
        expected: exp.hashes,
        target: tgt.hashes,
        overflow: overflowed(),
    };
    let exact = exact_mode.then_some(ExactValues {
        source: src.values,
        expected: exp.values,
        target: tgt.values,
    });
    Ok((
        with_sums.then_some((s_sums, t_sums)),
        collected,
        exact,
        s_bytes + t_bytes,
    ))
}

/// `a, b`; a table without columns selects nothing (`SELECT FROM t` still counts its rows).
fn select_list(cols: &[String]) -> String {
    cols.join(", ")
}

#[cfg(test)]
mod tests {
    use super::exact_key;

    #[test]
    fn exact_keys_keep_short_values_and_never_confuse_a_digest_with_one() {
        assert_eq!(exact_key(b"abc"), b"abc".to_vec());
        let long = vec![b'x'; 1000];
        let k = exact_key(&long);
        assert!(
            k.len() > 64,
            "a digest key is longer than any value kept as it is"
        );
        assert_ne!(k, exact_key(&vec![b'y'; 1000]));
        assert_eq!(k, exact_key(&long));
    }
}
