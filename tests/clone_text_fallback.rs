//! A table with a column type that has no binary I/O (here `isbn` from the isn extension, and
//! `seg`) is copied in text format, and its masked text columns are still masked.

mod support;

use std::process::Command;

use support::Cluster;

/// A cluster with `owner` (of database `src`) and `cloner` (of `dst`).
fn cluster() -> Cluster {
    let c = Cluster::builder()
        .hba("host all owner 127.0.0.1/32 scram-sha-256")
        .hba("host all cloner 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("owner", Some("owner-secret"), false);
    c.create_role("cloner", Some("cloner-secret"), false);
    c.psql("postgres", "CREATE DATABASE src OWNER owner");
    c.psql("postgres", "CREATE DATABASE dst OWNER cloner");
    c
}

fn conninfo(c: &Cluster, db: &str, user: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={user}-secret dbname={db}",
        c.port()
    )
}

#[test]
fn tables_without_binary_io_fall_back_to_text_and_stay_masked() {
    let c = cluster();
    c.psql(
        "src",
        "SET ROLE owner; CREATE EXTENSION isn; CREATE EXTENSION seg;
         CREATE TABLE books (id int PRIMARY KEY, isbn isbn NOT NULL, range seg, title text, author_email text UNIQUE, note text, price numeric(8,2));
         INSERT INTO books SELECT g, isbn('978-0-306-40615-7'), (g || ' .. ' || (g + 1))::seg, 'Title ' || g || E' with\\ttab',
                                  'author' || g || '@press.example', CASE WHEN g % 3 = 0 THEN NULL ELSE 'private note ' || g END, g * 1.5
         FROM generate_series(1, 500) g;
         CREATE TABLE plain (id int PRIMARY KEY, name text); INSERT INTO plain VALUES (1, 'x');",
    );
    let dir = c.socket_dir().parent().unwrap().to_path_buf();
    let config = dir.join("masking.toml");
    std::fs::write(&config, "[tables.books.columns]\nauthor_email = \"email\"\ntitle = { strategy = \"redact\", keep_first = 1 }\nnote = \"null\"\n").unwrap();
    let audit = dir.join("audit.jsonl");
    let conn = |db: &str, user: &str| conninfo(&c, db, user);

    let plan = Command::new(env!("CARGO_BIN_EXE_privaci"))
        .args(["plan", "--source", &conn("src", "owner"), "--config"])
        .arg(&config)
        .env("PRIVACI_MASK_KEY", "text fallback test key 0123")
        .output()
        .unwrap();
    let plan_out = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_out.contains("[text COPY: no two-way binary I/O for isbn, range]"),
        "{plan_out}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_privaci"))
        .args([
            "clone",
            "--source",
            &conn("src", "owner"),
            "--target",
            &conn("dst", "cloner"),
            "--config",
        ])
        .arg(&config)
        .arg("--audit-log")
        .arg(&audit)
        .env("PRIVACI_MASK_KEY", "text fallback test key 0123")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&audit)
        .unwrap()
        .contains("\"event\":\"table.fallback_text\",\"table\":\"public.books\""));

    let q = "SELECT id, isbn, range, left(title, 1), length(title), author_email, note IS NULL, price FROM books ORDER BY id";
    let (src, dst) = (c.psql("src", q), c.psql("dst", q));
    assert_eq!(src.lines().count(), 500);
    for (s, d) in src.lines().zip(dst.lines()) {
        let (s, d): (Vec<&str>, Vec<&str>) = (s.split('|').collect(), d.split('|').collect());
        assert_eq!(
            (s[0], s[1], s[2], s[3], s[4], s[7]),
            (d[0], d[1], d[2], d[3], d[4], d[7]),
            "kept columns and shapes"
        );
        assert_ne!(s[5], d[5], "author_email masked");
        assert_eq!(d[6], "t", "note nulled");
    }
    assert_eq!(
        c.psql(
            "dst",
            "SELECT count(*) FROM books WHERE title LIKE '%Title%' OR author_email LIKE 'author%'"
        ),
        "0"
    );
    assert_eq!(c.psql("dst", "SELECT count(*) FROM plain"), "1");

    // Masking a non-text column of such a table is refused before anything is written.
    std::fs::write(
        &config,
        "[tables.books.columns]\nprice = { strategy = \"noise\", ratio = 0.1 }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_privaci"))
        .args(["validate", "--source", &conn("src", "owner"), "--config"])
        .arg(&config)
        .env("PRIVACI_MASK_KEY", "text fallback test key 0123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("copied in text format (column isbn, range has a type without binary I/O)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A value the target refuses in binary (here: an existing target column of another type,
/// which reads the source's text form but not its binary form) makes that unit go again in
/// text, masked by the text rewriter, with a `table.fallback_text` event saying why. Tables
/// with a masked non-text column cannot go to text: they fail, naming the table.
#[test]
fn a_unit_the_target_refuses_in_binary_is_copied_again_in_text() {
    let c = cluster();
    c.psql(
        "src",
        "SET ROLE owner;
         CREATE TABLE codes (id int PRIMARY KEY, code text, email text);
         INSERT INTO codes SELECT g, (g * 7)::text, 'user' || g || '@mail.example' FROM generate_series(1, 300) g;
         CREATE TABLE amounts (id int PRIMARY KEY, amount text, born date);
         INSERT INTO amounts VALUES (1, '5', '1980-01-01');",
    );
    c.psql(
        "dst",
        "SET ROLE cloner;
         CREATE TABLE codes (id int PRIMARY KEY, code integer, email text);
         CREATE TABLE amounts (id int PRIMARY KEY, amount integer, born date);",
    );
    let dir = c.socket_dir().parent().unwrap().to_path_buf();
    let config = dir.join("masking.toml");
    std::fs::write(
        &config,
        "[tables.codes.columns]\nemail = \"email\"\n[tables.amounts.columns]\nborn = { strategy = \"date_shift\", max_days = 30 }\n",
    )
    .unwrap();
    let audit = dir.join("audit.jsonl");
    let conn = |db: &str, user: &str| conninfo(&c, db, user);
    let out = Command::new(env!("CARGO_BIN_EXE_privaci"))
        .args([
            "clone",
            "--source",
            &conn("src", "owner"),
            "--target",
            &conn("dst", "cloner"),
            "--schema",
            "existing",
            "--config",
        ])
        .arg(&config)
        .arg("--audit-log")
        .arg(&audit)
        .env("PRIVACI_MASK_KEY", "text fallback test key 0123")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // codes: redone in text, every row there, emails masked.
    assert_eq!(
        c.psql(
            "dst",
            "SELECT count(*), sum(code), count(*) FILTER (WHERE email LIKE 'user%@mail.example') FROM codes"
        ),
        "300|316050|0"
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains("\"event\":\"table.fallback_text\",\"table\":\"public.codes\",\"unit\":\"public.codes\",\"reason\":\"the target refused a binary value"),
        "{log}"
    );
    assert!(!log.contains("mail.example"), "{log}");
    // amounts: date_shift cannot run on text, so no redo; the failure names the table.
    assert!(stderr.contains("public.amounts"), "{stderr}");
    assert!(
        !log.contains("\"table\":\"public.amounts\",\"unit\""),
        "{log}"
    );
    assert_eq!(c.psql("dst", "SELECT count(*) FROM amounts"), "0");
}
