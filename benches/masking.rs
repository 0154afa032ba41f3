//! Masking engine benchmarks, on one core, no server involved:
//! - the tuple walker over binary COPY data (bytes/s),
//! - the customers table of benches/dataset.sql (generated here with the same formulas, in
//!   the server's binary COPY format) with email, full_name, phone (`digits`), ssn (`redact`)
//!   and birth_date (`date_shift`) masked (rows/s),
//! - each strategy's cost per value,
//! - validating a config of 25,000 table entries against a catalog of 75,000 tables,
//!   partitioned tables and partitions (`privaci validate --source` without the catalog
//!   read).
//!
//! cargo bench --bench masking

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use privaci::copy::{
    write_header, write_trailer, CopyError, Tuple, TupleSink, TupleWalker, TupleWriter,
};
use privaci::mask::{
    build, ColumnAction, ColumnSpec, CopyRewriter, HashEncoding, MaskKey, MaskPlan, Rewriter,
    StrategySpec,
};
use privaci::types::{numeric::Numeric, Array, Date, Timestamp, TypeKind, Value};

const ROWS: u64 = 200_000;

/// bench.customers at scale 1, as `COPY bench.customers TO STDOUT (FORMAT binary)` sends it.
fn customers() -> Vec<u8> {
    let first = [
        "Ana", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana",
    ];
    let last = [
        "Silva", "Novak", "Okafor", "Tanaka", "Müller", "Garcia", "Kowalski",
    ];
    let tiers = ["free", "pro", "enterprise"];
    let mut out = BytesMut::with_capacity(40 << 20);
    write_header(&mut out);
    let mut scratch = BytesMut::new();
    let mut field = |t: &mut TupleWriter<'_>, v: Value| {
        scratch.clear();
        v.encode(&mut scratch);
        t.field(&scratch);
    };
    for g in 1..=ROWS as i64 {
        let mut t = TupleWriter::begin(&mut out, 12);
        field(&mut t, Value::Int8(g));
        field(
            &mut t,
            Value::Text(format!("user{g}@example{}.com", g % 97)),
        );
        field(
            &mut t,
            Value::Text(format!(
                "{} {}",
                first[(g % 8) as usize],
                last[(g % 7) as usize]
            )),
        );
        field(&mut t, Value::Text(format!("+1-555-{:07}", g % 10_000_000)));
        field(
            &mut t,
            Value::Text(format!("{:03}-{:02}-{:04}", g % 900, g % 90, g % 9000)),
        );
        field(
            &mut t,
            Value::Date(Date(Date::from_ymd(1950, 1, 1).0 + (g % 20000) as i32)),
        );
        field(&mut t, Value::Text(format!("{g} Main Street, Springfield")));
        field(&mut t, Value::Text(tiers[(g % 3) as usize].to_string()));
        field(
            &mut t,
            Value::TimestampTz(Timestamp(
                631_152_000_000_000 - 946_684_800_000_000 + 946_684_800_000_000 + g * 37_000_000,
            )),
        );
        let cents = g % 100_000;
        field(
            &mut t,
            Value::Numeric(
                Numeric::from_decimal_str(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap(),
            ),
        );
        field(
            &mut t,
            Value::Array(Array {
                elem_oid: 25,
                dims: vec![(2, 1)],
                elements: vec![
                    Some(Value::Text(format!("t{}", g % 5))),
                    Some(Value::Text(format!("t{}", g % 11))),
                ],
            }),
        );
        field(
            &mut t,
            Value::Jsonb(format!(
                "{{\"notes\": \"{}\", \"score\": {}, \"newsletter\": {}}}",
                "x".repeat((g % 40) as usize),
                g % 1000,
                g % 2 == 0
            )),
        );
    }
    write_trailer(&mut out);
    out.to_vec()
}

struct Discard(u64);

impl TupleSink for Discard {
    type Error = CopyError;
    fn header(&mut self, _: &[u8]) -> Result<(), CopyError> {
        Ok(())
    }
    fn tuple(&mut self, t: Tuple<'_>) -> Result<(), CopyError> {
        self.0 += t.fields.len() as u64;
        Ok(())
    }
    fn trailer(&mut self, _: &[u8]) -> Result<(), CopyError> {
        Ok(())
    }
}

fn key() -> MaskKey {
    MaskKey::new(b"benchmark masking key 0123456789").unwrap()
}

fn customer_columns() -> Vec<ColumnSpec> {
    [
        ("id", "bigint", true),
        ("email", "text", true),
        ("full_name", "text", true),
        ("phone", "text", false),
        ("ssn", "character(11)", false),
        ("birth_date", "date", false),
        ("address", "text", false),
        ("tier", "text", true),
        ("created_at", "timestamp with time zone", true),
        ("balance", "numeric(12,2)", true),
        ("tags", "text[]", false),
        ("profile", "jsonb", false),
    ]
    .iter()
    .map(|(n, t, nn)| ColumnSpec::from_type_name(n, t, *nn).unwrap())
    .collect()
}

fn customers_plan() -> MaskPlan {
    let k = key();
    let cols = customer_columns();
    let masked = |name: &str| -> Option<StrategySpec> {
        Some(match name {
            "email" => StrategySpec::Email { keep_domain: false },
            "full_name" => StrategySpec::FullName,
            "phone" => StrategySpec::Digits { luhn: false },
            "ssn" => StrategySpec::Redact {
                keep_first: 0,
                keep_last: 4,
                with: '*',
            },
            "birth_date" => StrategySpec::DateShift { max_days: 30 },
            _ => return None,
        })
    };
    MaskPlan {
        columns: cols
            .iter()
            .map(|c| {
                let action = match masked(&c.name) {
                    Some(spec) => ColumnAction::Mask(build(&spec, c, Some(&k)).unwrap()),
                    None => ColumnAction::Keep,
                };
                (c.name.clone(), action)
            })
            .collect(),
    }
}

/// Feeds the data in 64 KiB pieces, as runs of CopyData arrive.
const PIECE: usize = 64 * 1024;

fn bench_walker(c: &mut Criterion, data: &[u8]) {
    let mut g = c.benchmark_group("walker");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("customers, 64 KiB pieces", |b| {
        b.iter(|| {
            let mut w = TupleWalker::new(Some(12));
            let mut sink = Discard(0);
            for piece in data.chunks(PIECE) {
                w.feed(piece, &mut sink).unwrap();
            }
            w.finish().unwrap();
            sink.0
        })
    });
    g.finish();
}

fn bench_customers(c: &mut Criterion, data: &[u8]) {
    let mut g = c.benchmark_group("customers masked (email, full_name, phone, ssn, birth_date)");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10);
    g.bench_function("rewriter, one core", |b| {
        b.iter_batched(
            || Rewriter::new(customers_plan()),
            |mut rw| {
                for piece in data.chunks(PIECE) {
                    rw.feed(piece).unwrap();
                    // The stream sends and clears its output batch as it goes.
                    if rw.output().len() >= 256 * 1024 {
                        rw.output().clear();
                    }
                }
                rw.finish().unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_strategies(c: &mut Criterion) {
    let k = key();
    let text = ColumnSpec::new("c", TypeKind::Text);
    let mut json_paths = std::collections::BTreeMap::new();
    json_paths.insert(
        "$.email".to_string(),
        StrategySpec::Email { keep_domain: false },
    );
    let mut numeric = BytesMut::new();
    Value::Numeric(Numeric::from_decimal_str("12345.67").unwrap()).encode(&mut numeric);
    let cases: Vec<(&str, StrategySpec, ColumnSpec, Vec<u8>)> = vec![
        (
            "redact",
            StrategySpec::Redact {
                keep_first: 0,
                keep_last: 4,
                with: '*',
            },
            text.clone(),
            b"123-45-6789".to_vec(),
        ),
        (
            "hash",
            StrategySpec::Hash {
                encoding: HashEncoding::Hex,
                length: None,
            },
            text.clone(),
            b"user12345@example7.com".to_vec(),
        ),
        (
            "email",
            StrategySpec::Email { keep_domain: false },
            text.clone(),
            b"user12345@example7.com".to_vec(),
        ),
        (
            "full_name",
            StrategySpec::FullName,
            text.clone(),
            b"Emil Tanaka".to_vec(),
        ),
        (
            "city",
            StrategySpec::City,
            text.clone(),
            b"Springfield".to_vec(),
        ),
        (
            "street_address",
            StrategySpec::StreetAddress,
            text.clone(),
            b"12345 Main Street".to_vec(),
        ),
        (
            "company",
            StrategySpec::Company,
            text.clone(),
            b"Initech".to_vec(),
        ),
        (
            "digits",
            StrategySpec::Digits { luhn: false },
            text.clone(),
            b"+1-555-0012345".to_vec(),
        ),
        (
            "digits (luhn)",
            StrategySpec::Digits { luhn: true },
            text.clone(),
            b"4111 1111 1111 1111".to_vec(),
        ),
        (
            "date_shift",
            StrategySpec::DateShift { max_days: 30 },
            ColumnSpec::new("d", TypeKind::Date),
            1234i32.to_be_bytes().to_vec(),
        ),
        (
            "noise (bigint)",
            StrategySpec::Noise { ratio: 0.1 },
            ColumnSpec::new("n", TypeKind::Int8),
            123456789i64.to_be_bytes().to_vec(),
        ),
        (
            "noise (numeric)",
            StrategySpec::Noise { ratio: 0.1 },
            ColumnSpec::from_type_name("n", "numeric(12,2)", false).unwrap(),
            numeric.to_vec(),
        ),
        (
            "tokenize (bigint)",
            StrategySpec::Tokenize,
            ColumnSpec::new("i", TypeKind::Int8),
            123456789i64.to_be_bytes().to_vec(),
        ),
        (
            "tokenize (uuid)",
            StrategySpec::Tokenize,
            ColumnSpec::new("u", TypeKind::Uuid),
            [7u8; 16].to_vec(),
        ),
        (
            "tokenize (text)",
            StrategySpec::Tokenize,
            text.clone(),
            b"ACCT-0012345".to_vec(),
        ),
        (
            "fixed",
            StrategySpec::Fixed {
                value: "n/a".into(),
            },
            text.clone(),
            b"anything".to_vec(),
        ),
        (
            "null",
            StrategySpec::Null,
            text.clone(),
            b"anything".to_vec(),
        ),
        (
            "json ($.email)",
            StrategySpec::Json { paths: json_paths },
            ColumnSpec::new("j", TypeKind::Jsonb),
            b"\x01{\"email\": \"a@b.com\", \"score\": 7}".to_vec(),
        ),
    ];
    let mut g = c.benchmark_group("strategy, per value");
    g.throughput(Throughput::Elements(1));
    for (name, spec, col, input) in cases {
        let mut s = build(&spec, &col, Some(&k)).unwrap();
        let mut out = BytesMut::with_capacity(256);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                s.mask(std::hint::black_box(&input), &mut out).unwrap()
            })
        });
    }
    g.finish();
}

/// A catalog of 25,000 tables, each with a partitioned twin holding one partition (75,000
/// in all), and a config naming every plain table with two masked columns.
fn big_schema() -> (privaci::catalog::Catalog, privaci::config::MaskingConfig) {
    use privaci::catalog::{Catalog, Column, PartitionStrategy, QualifiedName, Table};
    let column = |name: &str, num: i16| Column {
        name: name.into(),
        quoted: format!("\"{name}\""),
        attnum: num,
        type_name: "text".into(),
        type_oid: 25,
        base_type_name: "text".into(),
        is_enum: false,
        binary_io: true,
        collation: None,
        deterministic: true,
        not_null: false,
        default: None,
        identity: None,
        generated: None,
        is_local: true,
        comment: None,
    };
    let name = |s: &str, n: &str| QualifiedName {
        schema: s.into(),
        name: n.into(),
        quoted: format!("\"{s}\".\"{n}\""),
    };
    let table = |oid: u32, q: QualifiedName| Table {
        oid,
        name: q,
        unlogged: false,
        columns: vec![column("id", 1), column("email", 2), column("note", 3)],
        constraints: Vec::new(),
        partitioning: None,
        parent: None,
        bound: None,
        inherits: Vec::new(),
        of_type: None,
        estimated_rows: 1000,
        size_bytes: 65536,
        pages: 8,
        comment: None,
        readable: true,
        row_security: false,
    };
    let mut cat = Catalog::default();
    let mut config = String::new();
    for i in 0..25_000u32 {
        let schema = format!("s{}", i % 50);
        cat.tables
            .push(table(2 * i, name(&schema, &format!("t{i}"))));
        let mut parent = table(2 * i + 100_000, name(&schema, &format!("p{i}")));
        parent.partitioning = Some((PartitionStrategy::List, "LIST (id)".into()));
        cat.tables.push(parent);
        let mut leaf = table(2 * i + 1, name(&schema, &format!("p{i}_1")));
        leaf.parent = Some(name(&schema, &format!("p{i}")));
        leaf.bound = Some("DEFAULT".into());
        cat.tables.push(leaf);
        config +=
            &format!("[tables.\"{schema}.t{i}\".columns]\nemail = \"email\"\nnote = \"redact\"\n");
    }
    let config = privaci::config::MaskingConfig::parse(&config, "bench.toml").unwrap();
    (cat, config)
}

fn bench_validate(c: &mut Criterion) {
    let (cat, config) = big_schema();
    let key = MaskKey::new(b"bench key 0123456789").unwrap();
    let mut g = c.benchmark_group("validate");
    g.sample_size(10);
    g.bench_function("25,000 config entries, 75,000 tables and partitions", |b| {
        b.iter(|| {
            privaci::config::resolve::resolve(&config, "bench.toml", &cat, Some(&key)).unwrap()
        })
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    bench_validate(c);
    let data = customers();
    bench_walker(c, &data);
    bench_customers(c, &data);
    bench_strategies(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
