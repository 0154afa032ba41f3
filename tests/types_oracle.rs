//! The server is the oracle: for edge values of every supported type, PostgreSQL 15 sends the
//! binary form (COPY ... FORMAT binary) and the text form (a simple query). Decoding the
//! binary must print exactly the server's text, and encoding it back must give the
//! identical bytes.

mod support;

use bytes::BytesMut;
use privaci::conn::connect;
use privaci::conninfo::Config;
use privaci::copy::{CopyError, Tuple, TupleSink, TupleWalker};
use privaci::types::{decode, TypeKind};

/// (SQL type, values as SQL literals, kind if not a built-in known by OID)
const CASES: &[(&str, &[&str])] = &[
    ("boolean", &["true", "false"]),
    ("smallint", &["0", "-32768", "32767"]),
    ("integer", &["42", "-2147483648", "2147483647"]),
    ("bigint", &["-9223372036854775808", "9223372036854775807", "0"]),
    ("real", &["0", "'-0'", "1.5", "0.1", "123456", "1234567", "3.4028235e38", "1e-45", "'NaN'", "'Infinity'", "'-Infinity'", "-2.5e-5"]),
    (
        "double precision",
        &["0", "'-0'", "0.1", "1e20", "1.5e-5", "1e308", "5e-324", "'NaN'", "'Infinity'", "'-Infinity'", "123456789012345", "1234567890123456", "pi()", "0.0001", "0.00001"],
    ),
    (
        "numeric",
        &["0", "0.00", "-1.5", "12345678901234567890.123456789", "'NaN'", "'Infinity'", "'-Infinity'", "0.0001", "'1e-20'", "10000", "99999999", "1.000", "-0.000001", "'1e100'", "123.45::numeric(10,4)"],
    ),
    ("text", &["''", "'héllo wörld'", "E'tab\\there\\nnewline'", "'quote\"and\\\\back'", "repeat('x', 10000)", "'NULL'"]),
    ("character varying(5)", &["'abc'", "''"]),
    ("character(5)", &["'ab'", "'abcde'"]),
    ("name", &["'pg_class'"]),
    ("bytea", &["'\\x'", "'\\x00ff'", "decode(repeat('ab', 100), 'hex')"]),
    ("uuid", &["'00000000-0000-0000-0000-000000000000'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]),
    ("date", &["'2000-01-01'", "'1970-01-01'", "'2024-02-29'", "'0044-03-15 BC'", "'4713-11-24 BC'", "'5874897-12-31'", "'infinity'", "'-infinity'", "'0001-01-01'", "'0001-12-31 BC'"]),
    ("time", &["'00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"]),
    ("time with time zone", &["'12:34:56+05:30'", "'00:00:00-08'", "'12:00:00.123-03:30'", "'23:59:59+00'"]),
    (
        "timestamp",
        &["'2000-01-01 00:00:00'", "'1999-12-31 23:59:59.999999'", "'0044-03-15 12:00 BC'", "'294276-12-31 23:59:59.999999'", "'infinity'", "'-infinity'", "'4713-11-24 00:00:00 BC'", "'1970-01-01 00:00:00.5'"],
    ),
    ("timestamp with time zone", &["'2024-01-02 03:04:05.678+00'", "'1999-12-31 23:59:59.999999-05'", "'0044-03-15 12:00+00 BC'", "'infinity'", "'-infinity'"]),
    (
        "interval",
        &["'0'", "'1 year 2 months 3 days 04:05:06.789'", "'-1 days +02:00:00'", "'-1 mons -00:00:00.000001'", "'1 day'", "'100 years'", "'-178000000 years'", "'1 mon -1 day'", "'-2 hours -3 minutes'", "'36 hours'"],
    ),
    ("json", &["'{\"a\": [1, 2, {\"b\": null}]}'", "'\"x\"'", "'  {\"a\":1}  '"]),
    ("jsonb", &["'{\"b\": 1, \"a\": [true, null, \"xé\"]}'", "'[]'", "'1.50'", "'{\"nested\": {\"email\": \"a@b.c\"}}'"]),
    ("inet", &["'192.168.0.1'", "'192.168.0.0/24'", "'::1'", "'2001:db8::1/64'", "'::ffff:1.2.3.4'", "'::'", "'1::'", "'fe80::1:0:0:1'", "'::2'", "'0:0:1::'", "'1:0:0:2:0:0:0:3'", "'10.1.2.3/8'"]),
    ("cidr", &["'10.0.0.0/8'", "'2001:db8::/32'", "'192.168.1.1/32'", "'::/0'"]),
    ("macaddr", &["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"]),
    ("mood", &["'happy'", "'très content'"]),
    ("integer[]", &["'{1,NULL,3}'", "'{}'", "'{{1,2},{3,4}}'", "'[0:2]={1,2,3}'", "'{{NULL}}'", "'[-5:-4][2:3]={{1,2},{3,4}}'"]),
    ("text[]", &["ARRAY['a b', '', NULL, 'NULL', 'null', 'x\"y', 'back\\slash', '{brace}', 'comma,here', 'plain', E'tab\there']"]),
    ("timestamp with time zone[]", &["ARRAY['2020-01-01 00:00+00'::timestamptz, NULL, 'infinity']"]),
    ("bytea[]", &["ARRAY['\\x01'::bytea, '\\x']"]),
    ("numeric[]", &["ARRAY[1.5, NULL, 'NaN']::numeric[]"]),
    ("uuid[]", &["ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]"]),
    ("mood[]", &["ARRAY['happy', 'très content']::mood[]"]),
    ("date[]", &["ARRAY['2000-01-01'::date, '0044-03-15 BC']"]),
    ("inet[]", &["ARRAY['::1'::inet, '10.0.0.1/8']"]),
    ("boolean[]", &["'{t,f,NULL}'"]),
    ("interval[]", &["ARRAY['1 day'::interval, '-1 mons']"]),
];

/// Collects each row's single field.
struct Fields(Vec<Option<Vec<u8>>>);

impl TupleSink for Fields {
    type Error = CopyError;
    fn header(&mut self, _: &[u8]) -> Result<(), CopyError> {
        Ok(())
    }
    fn tuple(&mut self, t: Tuple<'_>) -> Result<(), CopyError> {
        self.0.push(t.value(0).map(<[u8]>::to_vec));
        Ok(())
    }
    fn trailer(&mut self, _: &[u8]) -> Result<(), CopyError> {
        Ok(())
    }
}

/// A cluster with role `app` owning database `appdb`.
fn app_cluster() -> support::Cluster {
    let c = support::Cluster::builder()
        .hba("host all app 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("app", Some("app-secret"), false);
    c.psql("postgres", "CREATE DATABASE appdb OWNER app");
    c
}

async fn app_connection(c: &support::Cluster) -> privaci::conn::Connection {
    let cfg = Config::parse_with(
        &c.conninfo("user=app password=app-secret dbname=appdb"),
        &|_| None,
        None,
    )
    .unwrap();
    connect(&cfg).await.unwrap()
}

#[tokio::test]
async fn binary_decode_encode_and_text_match_the_server() {
    let c = app_cluster();
    c.psql(
        "appdb",
        "CREATE TYPE mood AS ENUM ('sad', 'happy', 'très content')",
    );
    let mut conn = app_connection(&c).await;
    conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1")
        .await
        .unwrap();
    let mut checked = 0;
    for (ty, values) in CASES {
        let rows: Vec<String> = values.iter().map(|v| format!("(({v})::{ty})")).collect();
        let select = format!("SELECT v FROM (VALUES {}) t(v)", rows.join(", "));
        let with_name = format!(
            "SELECT v, format_type(pg_typeof(v)::oid, NULL) FROM (VALUES {}) t(v)",
            rows.join(", ")
        );
        let text = conn
            .simple_query(&with_name)
            .await
            .unwrap_or_else(|e| panic!("{ty}: {e}"));
        let text = &text[0];
        let catalog_name = text.get(0, 1).unwrap().unwrap().to_string();
        let oid = text.columns[0].type_oid;
        let kind = match *ty {
            "mood" => TypeKind::Text,
            "mood[]" => TypeKind::Array(Box::new(TypeKind::Text)),
            _ => TypeKind::from_oid(oid).unwrap_or_else(|| panic!("{ty}: OID {oid} unknown")),
        };
        if !ty.starts_with("mood") {
            assert_eq!(
                TypeKind::from_type_name(&catalog_name),
                Some(kind.clone()),
                "{ty}: kind by catalog name {catalog_name}"
            );
        }

        let mut out = conn
            .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
            .await
            .unwrap();
        let payload = out.collect_payloads().await.unwrap();
        let mut fields = Fields(Vec::new());
        let mut walker = TupleWalker::new(Some(1));
        walker.feed(&payload, &mut fields).unwrap();
        walker.finish().unwrap();
        assert_eq!(fields.0.len(), values.len(), "{ty}");

        for (i, bytes) in fields.0.iter().enumerate() {
            let bytes = bytes
                .as_ref()
                .unwrap_or_else(|| panic!("{ty} {}: NULL", values[i]));
            let server_text = text.get(i, 0).unwrap().unwrap();
            let value = decode(&kind, bytes).unwrap_or_else(|e| panic!("{ty} {}: {e}", values[i]));
            assert_eq!(value.to_string(), server_text, "{ty} {}: text", values[i]);
            let mut encoded = BytesMut::new();
            value.encode(&mut encoded);
            assert_eq!(&encoded[..], &bytes[..], "{ty} {}: bytes", values[i]);
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked} values checked");
}

/// PostgreSQL's binary input is not always the inverse of its output. For types a table's
/// rows carry as they are, the server is asked to read back what it wrote: every value it
/// refuses must belong to a type the catalog marks for text COPY (`binary_io` false), so no
/// clone meets the refusal. The known case: an empty `tsquery` (`tsqueryrecv` refuses what
/// `tsquerysend` writes).
#[tokio::test]
async fn values_the_server_cannot_read_back_in_binary_go_to_text() {
    let c = app_cluster();
    const VALUES: &[(&str, &str)] = &[
        ("tsquery", "''"),
        ("tsquery", "'fat & (rat | !cat)'"),
        ("tsquery[]", "ARRAY[''::tsquery]"),
        ("tsvector", "''"),
        ("tsvector", "'a:1A fat:2 rat'"),
        ("int4range", "'empty'"),
        ("int4multirange", "'{}'"),
        ("point", "'(1,2)'"),
        ("polygon", "'((0,0),(1,1),(1,0))'"),
        ("money", "12.34"),
        ("pg_lsn", "'16/B374D848'"),
        ("macaddr8", "'08:00:2b:01:02:03:04:05'"),
        ("bit varying", "B'101'"),
        ("xml", "'<a>b</a>'"),
        ("jsonpath", "'$.a[*] ? (@ > 1)'"),
        ("numeric", "'NaN'"),
    ];
    let columns: Vec<String> = VALUES
        .iter()
        .enumerate()
        .map(|(i, (ty, _))| format!("c{i} {ty}"))
        .collect();
    c.psql(
        "appdb",
        &format!(
            "SET ROLE app; CREATE TABLE samples ({cols}); CREATE TABLE back ({cols});",
            cols = columns.join(", ")
        ),
    );
    let mut conn = app_connection(&c).await;
    let cat = privaci::catalog::load(&mut conn, &Default::default())
        .await
        .unwrap();
    let samples = cat.table("public", "samples").unwrap();
    let mut refused = Vec::new();
    for (i, (ty, value)) in VALUES.iter().enumerate() {
        let mut out = conn
            .copy_out(&format!(
                "COPY (SELECT ({value})::{ty}) TO STDOUT (FORMAT binary)"
            ))
            .await
            .unwrap();
        let payload = out.collect_payloads().await.unwrap();
        let mut sink = conn
            .copy_in(&format!(
                "COPY public.back (c{i}) FROM STDIN (FORMAT binary)"
            ))
            .await
            .unwrap();
        sink.write(&payload).await.unwrap();
        if sink.finish().await.is_err() {
            refused.push(*ty);
            assert!(
                !samples.columns[i].binary_io,
                "the server refuses its own binary form of {ty} {value}, but the catalog would copy the column in binary"
            );
        }
    }
    assert!(refused.contains(&"tsquery"), "{refused:?}");
}
