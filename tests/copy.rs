//! COPY OUT and COPY IN against a real server, in both formats, with psql as the independent
//! witness of what the server holds: streaming, passthrough, CopyFail, errors in the middle
//! of a copy, notices during a copy, and the connection staying usable after each.

mod support;

use privaci::conn::{connect, Connection, CopyFormat};
use privaci::conninfo::Config;
use support::Cluster;

/// A cluster with a non-superuser owning database `appdb`, reached over TLS.
fn cluster() -> Cluster {
    let c = Cluster::builder()
        .hba("host all app 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("app", Some("app-secret"), false);
    c.psql("postgres", "CREATE DATABASE appdb OWNER app");
    c
}

async fn app(c: &Cluster) -> Connection {
    let cfg = Config::parse_with(
        &c.conninfo("user=app password=app-secret dbname=appdb sslmode=require"),
        &|_| None,
        None,
    )
    .unwrap();
    connect(&cfg).await.unwrap()
}

const TYPES_TABLE: &str = "CREATE TABLE typed (
    id int PRIMARY KEY, b bool, i8 bigint, f8 float8, n numeric(20,6), t text, bin bytea,
    d date, ts timestamptz, u uuid, j jsonb, ip inet, arr int[], tags text[]);
  INSERT INTO typed SELECT g, g % 2 = 0, g::bigint * 1000000007, g / 3.0, g * 1.5, 'name ' || g || E'\\ttab\\nline',
    decode(md5(g::text), 'hex'), date '2000-01-01' + g, timestamptz '2020-01-01 00:00+00' + g * interval '1 hour',
    md5(g::text)::uuid, jsonb_build_object('k', g, 'nested', jsonb_build_object('a', g)), ('10.0.0.' || g % 255)::inet,
    ARRAY[g, NULL, g + 1], ARRAY['a', NULL, 'c']
  FROM generate_series(1, 2000) g;
  INSERT INTO typed (id) VALUES (0);
  ALTER TABLE typed OWNER TO app;";

#[tokio::test]
async fn copy_out_matches_psql_in_both_formats() {
    let c = cluster();
    c.psql("appdb", TYPES_TABLE);
    let mut conn = app(&c).await;
    for (format, sql, count) in [
        (CopyFormat::Binary, "COPY typed TO STDOUT (FORMAT binary)", 2001),
        (CopyFormat::Text, "COPY typed TO STDOUT", 2001),
        (CopyFormat::Text, "COPY (SELECT * FROM typed WHERE id % 7 = 0 ORDER BY id) TO STDOUT (FORMAT csv, HEADER)", 286),
    ] {
        let mut out = conn.copy_out(sql).await.unwrap();
        assert_eq!(out.format(), format);
        let got = out.collect_payloads().await.unwrap();
        let rows = out.rows().unwrap();
        let expected = c.psql_copy_out("appdb", sql);
        assert_eq!(got, expected, "{sql}");
        assert_eq!(rows, count, "{sql}");
    }
    // NULLs arrive as -1 lengths in binary: the all-NULL row is there.
    let mut out = conn
        .copy_out("COPY (SELECT * FROM typed WHERE id = 0) TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let bytes = out.collect_payloads().await.unwrap();
    assert_eq!(out.rows(), Some(1));
    assert!(
        bytes
            .windows(4)
            .filter(|w| w == &[0xff, 0xff, 0xff, 0xff])
            .count()
            >= 13
    );
    assert_eq!(
        conn.query_text("SELECT 1").await.unwrap()[0][0].as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn copy_in_binary_and_text_in_any_chunking() {
    let c = cluster();
    c.psql("appdb", TYPES_TABLE);
    c.psql(
        "appdb",
        "CREATE TABLE typed_copy (LIKE typed); ALTER TABLE typed_copy OWNER TO app",
    );
    let source = c.psql_copy_out("appdb", "COPY typed TO STDOUT (FORMAT binary)");
    let mut conn = app(&c).await;
    for chunk in [1usize, 7, 4096, 1 << 20] {
        conn.execute("TRUNCATE typed_copy").await.unwrap();
        let mut sink = conn
            .copy_in("COPY typed_copy FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        assert_eq!(sink.format(), CopyFormat::Binary);
        // Small frames make the chunking reach the wire too.
        sink.set_frame_size(1000);
        for piece in source.chunks(chunk) {
            sink.write(piece).await.unwrap();
        }
        assert_eq!(sink.finish().await.unwrap(), 2001, "chunk {chunk}");
        assert_eq!(
            c.psql_copy_out(
                "appdb",
                "COPY (SELECT * FROM typed_copy ORDER BY id) TO STDOUT"
            ),
            c.psql_copy_out("appdb", "COPY (SELECT * FROM typed ORDER BY id) TO STDOUT"),
            "chunk {chunk}"
        );
    }
    // Text format, with escapes, NULLs and a multi-byte character split across writes.
    conn.execute("CREATE TABLE words (id int, w text)")
        .await
        .unwrap();
    let mut sink = conn.copy_in("COPY words FROM STDIN").await.unwrap();
    assert_eq!(sink.format(), CopyFormat::Text);
    let text = "1\tnaïve\n2\t\\N\n3\ttab\\there\n".as_bytes();
    for b in text.chunks(3) {
        sink.write(b).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 3);
    assert_eq!(
        c.psql(
            "appdb",
            "SELECT string_agg(coalesce(w, 'NULL'), '|' ORDER BY id) FROM words"
        ),
        "naïve|NULL|tab\there"
    );
}

#[tokio::test]
async fn passthrough_from_one_connection_to_another() {
    let c = cluster();
    c.psql("appdb", TYPES_TABLE);
    c.psql(
        "appdb",
        "CREATE TABLE typed_copy (LIKE typed); ALTER TABLE typed_copy OWNER TO app",
    );
    let mut source = app(&c).await;
    let mut target = app(&c).await;
    let mut out = source
        .copy_out("COPY typed TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let mut sink = target
        .copy_in("COPY typed_copy FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let mut runs = 0;
    while let Some(frames) = out.next_frames().await.unwrap() {
        sink.write_frames(&frames).await.unwrap();
        runs += 1;
    }
    assert!(runs >= 1);
    let rows_out = out.rows().unwrap();
    assert_eq!(sink.finish().await.unwrap(), rows_out);
    assert_eq!(
        c.psql_copy_out(
            "appdb",
            "COPY (SELECT * FROM typed_copy ORDER BY id) TO STDOUT (FORMAT binary)"
        ),
        c.psql_copy_out(
            "appdb",
            "COPY (SELECT * FROM typed ORDER BY id) TO STDOUT (FORMAT binary)"
        )
    );
}

#[tokio::test]
async fn copy_fail_aborts_and_the_connection_goes_on() {
    let c = cluster();
    let mut conn = app(&c).await;
    conn.execute("CREATE TABLE t (id int)").await.unwrap();
    let mut sink = conn.copy_in("COPY t FROM STDIN").await.unwrap();
    sink.write(b"1\n2\n3\n").await.unwrap();
    let err = sink.fail("checksum mismatch in batch 7").await;
    assert_eq!(err.code(), Some("57014"), "{err}");
    assert!(
        err.to_string().contains("checksum mismatch in batch 7"),
        "{err}"
    );
    assert_eq!(
        conn.query_text("SELECT count(*) FROM t").await.unwrap()[0][0].as_deref(),
        Some("0")
    );

    // Dropping an unfinished sink sends CopyFail too; the connection settles before its next use.
    {
        let mut sink = conn.copy_in("COPY t FROM STDIN").await.unwrap();
        sink.write(b"4\n5\n").await.unwrap();
    }
    assert_eq!(
        conn.query_text("SELECT count(*) FROM t").await.unwrap()[0][0].as_deref(),
        Some("0")
    );
    assert_eq!(conn.transaction_status(), b'I');

    // Dropping a COPY TO STDOUT part way drains the rest.
    conn.execute("INSERT INTO t SELECT generate_series(1, 200000)")
        .await
        .unwrap();
    {
        let mut out = conn.copy_out("COPY t TO STDOUT").await.unwrap();
        out.next_frames().await.unwrap().unwrap();
    }
    assert_eq!(
        conn.query_text("SELECT count(*) FROM t").await.unwrap()[0][0].as_deref(),
        Some("200000")
    );
}

#[tokio::test]
async fn server_error_in_the_middle_of_copy_in_is_noticed_promptly() {
    let c = cluster();
    let mut conn = app(&c).await;
    conn.execute("CREATE TABLE nums (id int PRIMARY KEY, note text)")
        .await
        .unwrap();
    let mut sink = conn.copy_in("COPY nums FROM STDIN").await.unwrap();
    // A good first megabyte, then a bad value, then what would be 256 MiB more.
    let mut good = Vec::new();
    let mut n = 0;
    while good.len() < 1 << 20 {
        n += 1;
        good.extend_from_slice(format!("{n}\tfine\n").as_bytes());
    }
    sink.write(&good).await.unwrap();
    sink.write(b"not-a-number\tbad\n").await.unwrap();
    let block = "1000000000\tpadding padding padding padding padding padding\n".repeat(4096);
    let mut result = Ok(());
    for _ in 0..(256 << 20) / block.len() {
        result = sink.write(block.as_bytes()).await;
        if result.is_err() {
            break;
        }
    }
    let err = result.expect_err("the server's error was never noticed");
    // The sink stopped long before the 256 MiB it was given.
    assert!(
        sink.bytes_sent() < 64 << 20,
        "sent {} bytes into a dead copy",
        sink.bytes_sent()
    );
    assert_eq!(err.code(), Some("22P02"), "{err}");
    let db = err.db_error().unwrap();
    assert!(
        db.where_.as_deref().unwrap_or("").contains("COPY nums"),
        "{db:?}"
    );
    drop(sink);
    // Nothing was loaded, and the connection is usable.
    assert_eq!(
        conn.query_text("SELECT count(*) FROM nums").await.unwrap()[0][0].as_deref(),
        Some("0")
    );

    // An error found only at the end (a duplicate key) comes back from finish().
    let mut sink = conn.copy_in("COPY nums FROM STDIN").await.unwrap();
    sink.write(b"1\ta\n2\tb\n1\tagain\n").await.unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.code(), Some("23505"));
    assert_eq!(
        err.db_error().unwrap().constraint.as_deref(),
        Some("nums_pkey")
    );
    assert_eq!(
        conn.query_text("SELECT 42").await.unwrap()[0][0].as_deref(),
        Some("42")
    );
}

#[tokio::test]
async fn notices_during_copy_in_and_out() {
    let c = cluster();
    let mut conn = app(&c).await;
    conn.execute(
        "CREATE TABLE noisy (id int);
         CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.id % 100 = 0 THEN RAISE NOTICE 'row %', NEW.id; END IF; RETURN NEW; END $$;
         CREATE TRIGGER shout BEFORE INSERT ON noisy FOR EACH ROW EXECUTE FUNCTION shout();
         CREATE FUNCTION loud(i int) RETURNS int LANGUAGE plpgsql AS $$
           BEGIN IF i % 100 = 0 THEN RAISE NOTICE 'out %', i; END IF; RETURN i; END $$;",
    )
    .await
    .unwrap();
    let mut sink = conn.copy_in("COPY noisy FROM STDIN").await.unwrap();
    sink.set_frame_size(512);
    let data: String = (1..=5000).map(|i| format!("{i}\n")).collect();
    for piece in data.as_bytes().chunks(700) {
        sink.write(piece).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 5000);

    let mut out = conn
        .copy_out("COPY (SELECT loud(id) FROM noisy ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    let got = out.collect_payloads().await.unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), data);
    assert_eq!(out.rows(), Some(5000));
}

#[tokio::test]
async fn copy_statements_that_are_not_what_was_asked() {
    let c = cluster();
    let mut conn = app(&c).await;
    conn.execute("CREATE TABLE t (id int)").await.unwrap();
    assert!(conn
        .copy_out("SELECT 1")
        .await
        .err()
        .unwrap()
        .to_string()
        .contains("did not start COPY TO STDOUT"));
    assert!(conn
        .copy_out("COPY t FROM STDIN")
        .await
        .err()
        .unwrap()
        .to_string()
        .contains("not COPY TO STDOUT"));
    assert!(conn
        .copy_in("COPY t TO STDOUT")
        .await
        .err()
        .unwrap()
        .to_string()
        .contains("not COPY FROM STDIN"));
    let err = conn.copy_in("COPY missing FROM STDIN").await.err().unwrap();
    assert_eq!(err.code(), Some("42P01"));
    let err = conn.copy_out("COPY missing TO STDOUT").await.err().unwrap();
    assert_eq!(err.code(), Some("42P01"));
    assert_eq!(
        conn.query_text("SELECT count(*) FROM t").await.unwrap()[0][0].as_deref(),
        Some("0")
    );
}
