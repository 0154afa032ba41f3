//! Masking rules that would break a unique key are refused before anything is written, and
//! keyed text strategies on a case-insensitive (`citext`) unique column keep it unique: the
//! target's own unique indexes are the oracle.

mod support;

use std::process::Command;

use support::fixture_clone::{self, output};
use support::Cluster;

fn setup() -> Cluster {
    let c = fixture_clone::cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE src OWNER owner");
    c.psql("postgres", "CREATE DATABASE dst OWNER cloner");
    c.psql("postgres", "CREATE DATABASE dst2 OWNER cloner");
    c
}

fn privaci(c: &Cluster, args: &[&str], toml: &str) -> (i32, String) {
    let config = c.socket_dir().parent().unwrap().join("masking.toml");
    std::fs::write(&config, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args(args)
        .args(["--config", config.to_str().unwrap()])
        .env("PRIVACI_MASK_KEY", fixture_clone::KEY)
        .env("HOME", "/nonexistent");
    output(cmd)
}

fn clone_args(c: &Cluster, db: &str) -> Vec<String> {
    vec![
        "clone".into(),
        "--source".into(),
        fixture_clone::conninfo(c, c.port(), "owner", "src"),
        "--target".into(),
        fixture_clone::conninfo(c, c.port(), "cloner", db),
        "--quiet".into(),
    ]
}

#[test]
fn rules_that_would_break_a_unique_key_are_refused_at_validation() {
    let c = setup();
    c.psql("src", "SET ROLE owner;
        CREATE TABLE people (id int PRIMARY KEY, name text, code varchar(6) UNIQUE, tag text);
        CREATE UNIQUE INDEX people_lower_name ON people (lower(name));
        CREATE UNIQUE INDEX people_tag_active ON people (id) WHERE tag <> 'x';
        INSERT INTO people SELECT g, 'name ' || g, lpad(g::text, 6, '0'), 'x' FROM generate_series(1, 50000) g;
        ANALYZE people");
    let args = clone_args(&c, "dst");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for (toml, expected) in [
        // A merging strategy on a column a unique expression index reads.
        (
            "[tables.people.columns]\nname = \"full_name\"\n",
            "unique index \"people_lower_name\"",
        ),
        // A hash cut to 24 bits by varchar(6), on 50,000 rows.
        (
            "[tables.people.columns]\ncode = \"hash\"\n",
            "hash keeps 24 bits here",
        ),
        // A predicate column of a unique partial index.
        (
            "[tables.people.columns]\ntag = \"redact\"\n",
            "people_tag_active",
        ),
    ] {
        let (code, out) = privaci(&c, &args, toml);
        assert_eq!(code, 3, "{toml}: {out}");
        assert!(out.contains(expected), "{toml}: {out}");
        assert_eq!(
            c.psql(
                "dst",
                "SELECT count(*) FROM pg_class WHERE relname = 'people'"
            ),
            "0",
            "nothing written"
        );
    }
    let (code, out) = privaci(&c, &args, "[tables.people.columns]\ncode = \"hash\"\n");
    assert!(
        out.contains("keep at least 11 characters") && out.contains("widen it"),
        "{code} {out}"
    );
}

#[test]
fn keyed_strategies_keep_a_citext_unique_column_unique() {
    let c = setup();
    // Every two-letter local part once, in a random case: unique under citext's equality.
    c.psql("src", "CREATE EXTENSION citext");
    c.psql("src", "SET ROLE owner;
        CREATE TABLE accounts (id int PRIMARY KEY, email citext UNIQUE, handle citext UNIQUE);
        INSERT INTO accounts
        SELECT row_number() OVER (), s || '@example.com', s
        FROM (SELECT CASE WHEN random() < 0.5 THEN upper(a) ELSE a END || CASE WHEN random() < 0.5 THEN upper(b) ELSE b END AS s
              FROM (SELECT chr(97 + i) a FROM generate_series(0, 25) i) x, (SELECT chr(97 + j) b FROM generate_series(0, 25) j) y) z");
    c.psql("dst", "CREATE EXTENSION citext");
    let args = clone_args(&c, "dst");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = privaci(
        &c,
        &args,
        "[tables.accounts.columns]\nemail = \"email\"\nhandle = \"tokenize\"\n",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        c.psql(
            "dst",
            "SELECT count(DISTINCT lower(email::text)) FROM accounts"
        ),
        "676"
    );
    assert_eq!(
        c.psql(
            "dst",
            "SELECT count(*) FROM accounts WHERE handle::text <> lower(handle::text)"
        ),
        "0"
    );
    assert_eq!(
        c.psql("dst", "SELECT count(*) FROM accounts d WHERE handle IN (SELECT lower(handle::text) FROM accounts)"),
        "676"
    );
}

#[test]
fn plan_names_check_constraints_that_read_masked_columns() {
    let c = setup();
    c.psql("src", "SET ROLE owner;
        CREATE DOMAIN us_zip AS text CHECK (VALUE ~ '^[0-9]{5}$');
        CREATE TABLE orders (id int PRIMARY KEY, code text CHECK (code LIKE 'P%'), zip us_zip, note text CHECK (length(note) < 100))");
    let (code, out) = privaci(
        &c,
        &[
            "plan",
            "--source",
            &fixture_clone::conninfo(&c, c.port(), "owner", "src"),
        ],
        "[tables.orders.columns]\ncode = \"redact\"\nzip = \"digits\"\n",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "public.orders: CHECK constraint orders_code_check reads masked column(s) code"
        ),
        "{out}"
    );
    assert!(
        out.contains("column zip is masked, and its domain public.us_zip checks"),
        "{out}"
    );
    assert!(
        !out.contains("orders_note_check"),
        "a kept column's check is not listed: {out}"
    );
}
