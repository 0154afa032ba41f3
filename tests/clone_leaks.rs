//! Nothing a run prints or logs holds a source value of a masked column or a password: a
//! rejected row whose key is masked is named by its position, passwords in a URI's query are
//! hidden, a filter name that matches nothing stops the run before it copies what it was
//! meant to leave out, and the audit log is private and never silently incomplete.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::fixture_clone::{self, output};
use support::Cluster;

const SECRET_EMAIL: &str = "PKSECRET1@corp.example";

fn setup() -> (Cluster, std::path::PathBuf) {
    let c = fixture_clone::cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE src OWNER owner");
    c.psql("postgres", "CREATE DATABASE dst OWNER cloner");
    c.psql("postgres", "CREATE DATABASE empty OWNER cloner");
    c.psql("src", &format!("SET ROLE owner;
        CREATE TABLE people (email text PRIMARY KEY, age int);
        INSERT INTO people SELECT 'person' || g || '@corp.example', 20 + g % 50 FROM generate_series(1, 99) g;
        INSERT INTO people VALUES ('{SECRET_EMAIL}', 150);
        CREATE TABLE pets (id int PRIMARY KEY, name text);
        INSERT INTO pets VALUES (1, 'Rex')"));
    // The target's schema (made by "migrations") rejects ages of 100 and more.
    c.psql("dst", "SET ROLE cloner; CREATE TABLE people (email text PRIMARY KEY, age int CHECK (age < 100)); CREATE TABLE pets (id int PRIMARY KEY, name text)");
    let dir = c.socket_dir().parent().unwrap().to_path_buf();
    let config = dir.join("masking.toml");
    std::fs::write(&config, "[tables.people.columns]\nemail = \"email\"\n").unwrap();
    (c, config)
}

fn clone(c: &Cluster, db: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &fixture_clone::conninfo(c, c.port(), "owner", "src"),
        "--target",
        &fixture_clone::conninfo(c, c.port(), "cloner", db),
    ])
    .args(extra)
    .env("PRIVACI_MASK_KEY", fixture_clone::KEY)
    .env("RUST_LOG", "trace")
    .env("HOME", "/nonexistent");
    cmd
}

#[test]
fn a_rejected_row_with_a_masked_key_is_named_by_position_never_by_value() {
    let (c, config) = setup();
    let audit = c.socket_dir().parent().unwrap().join("rejected.jsonl");
    let (code, out) = output(clone(
        &c,
        "dst",
        &[
            "--schema",
            "existing",
            "--config",
            config.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("public.people: (row ")
            && out.contains("not named by its primary key because that key is masked"),
        "{out}"
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(log.contains("\"row\":"), "{log}");
    for text in [&out, &log] {
        assert!(
            !text.contains("PKSECRET1"),
            "a masked source value leaked: {text}"
        );
        assert!(
            !text.contains("owner-secret") && !text.contains("cloner-secret"),
            "a password leaked"
        );
    }
    // The audit log is readable by its owner only.
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "audit log mode {mode:o}");
}

#[test]
fn filter_names_that_match_nothing_stop_the_run_before_any_write() {
    let (c, _) = setup();
    for bad in [
        &["--exclude-table", "public.peple"][..],
        &["--exclude-table", "\"People\""][..],
        &["--include-schema", "Public2"][..],
    ] {
        let (code, out) = output(clone(&c, "empty", bad));
        assert_eq!(code, 3, "{bad:?}: {out}");
        assert!(out.contains(bad[0]) && out.contains("matches no"), "{out}");
        assert_eq!(
            c.psql("empty", "SELECT count(*) FROM pg_class WHERE relname IN ('people', 'pets', 'table_checkpoints')"),
            "0",
            "nothing written"
        );
    }
    // Folded as SQL folds it: PEOPLE is public.people, which is then left out.
    let (code, out) = output(clone(&c, "empty", &["--exclude-table", "PEOPLE"]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        c.psql(
            "empty",
            "SELECT count(*) FROM pg_class WHERE relname = 'people'"
        ),
        "0"
    );
    assert_eq!(c.psql("empty", "SELECT count(*) FROM pets"), "1");
}

#[test]
fn a_failing_audit_log_fails_the_run_and_uri_passwords_stay_hidden() {
    let (c, _) = setup();
    let (code, out) = output(clone(
        &c,
        "empty",
        &["--exclude-table", "people", "--audit-log", "/dev/full"],
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("writing the audit log failed"), "{out}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        "postgresql://owner@127.0.0.1/src?password=QPSECRET1&sslmode",
        "--target",
        "postgresql://u:QPSECRET2@127.0.0.1/db?password=QPSECRET3",
    ])
    .env("RUST_LOG", "trace")
    .env("HOME", "/nonexistent");
    let (code, out) = output(cmd);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("invalid URI"), "{out}");
    assert!(!out.contains("QPSECRET"), "a password leaked: {out}");
}

#[test]
fn plan_runs_without_the_key_and_clone_refuses_without_it() {
    let (c, config) = setup();
    let mut plan = Command::new(env!("CARGO_BIN_EXE_privaci"));
    plan.args([
        "plan",
        "--source",
        &fixture_clone::conninfo(&c, c.port(), "owner", "src"),
        "--config",
        config.to_str().unwrap(),
    ])
    .env_remove("PRIVACI_MASK_KEY")
    .env("HOME", "/nonexistent");
    let (code, out) = output(plan);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("will need PRIVACI_MASK_KEY") && out.contains("public.people"),
        "{out}"
    );

    let mut cmd = clone(&c, "empty", &["--config", config.to_str().unwrap()]);
    cmd.env_remove("PRIVACI_MASK_KEY");
    let (code, out) = output(cmd);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("PRIVACI_MASK_KEY is not set"), "{out}");
    assert_eq!(
        c.psql(
            "empty",
            "SELECT count(*) FROM pg_class WHERE relname = 'people'"
        ),
        "0"
    );
}
