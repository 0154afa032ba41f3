//! `privaci verify` on real clusters: it passes a correct masked clone of the MedicalHelpDesk
//! fixture (partitions, composite and enum-array columns, JSON paths, tokenized keys carried
//! along foreign keys) without printing a source value, and fails, naming the table and
//! column, a clone whose config forgot a column, a target missing rows, a changed kept value,
//! a broken foreign key, a sequence set back and a dropped view; `--deep` finds a masked
//! value copied into a kept column.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::fixture_clone::{self, output};
use support::Cluster;

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/masking/medicalhelpdesk.toml"
);

fn verify(c: &Cluster, source_db: &str, db: &str, config: &Path, extra: &[&str]) -> Command {
    let mut cmd = fixture_clone::between(c, "verify", source_db, db, config);
    cmd.args(["--jobs", "2"]).args(extra);
    cmd
}

/// Runs verify with `--format json`: exit code, the report, and stdout + stderr.
fn verify_json(cmd: &mut Command) -> (i32, Value, String) {
    let out = cmd.args(["--format", "json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON report ({e}):\n{all}"));
    (out.status.code().unwrap_or(-1), report, all)
}

/// (check, table, column) of each finding.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("check"), s("table"), s("column"))
        })
        .collect()
}

fn has(found: &[(String, String, String)], check: &str, table: &str, column: &str) -> bool {
    found
        .iter()
        .any(|(c, t, col)| c == check && t == table && col == column)
}

fn clone_with(c: &Cluster, db: &str, config: &Path) {
    let mut cmd = fixture_clone::between(c, "clone", "mhd", db, config);
    cmd.args(["--quiet", "--jobs", "2"]);
    let (code, text) = output(cmd);
    assert_eq!(code, 0, "clone into {db} failed:\n{text}");
}

fn work_dir(c: &Cluster) -> PathBuf {
    c.socket_dir().parent().unwrap().to_path_buf()
}

/// Source values of masked columns, to look for in verify's output.
fn secrets(c: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT email FROM patients WHERE email IS NOT NULL ORDER BY id LIMIT 20",
        "SELECT phone FROM patients WHERE phone IS NOT NULL ORDER BY id LIMIT 20",
        "SELECT last_name FROM patients WHERE length(last_name) > 5 ORDER BY id LIMIT 10",
        "SELECT email::text FROM staff ORDER BY id LIMIT 10",
    ] {
        out.extend(
            c.psql("mhd", sql)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    assert!(out.len() > 40, "too few secrets: {out:?}");
    out
}

#[test]
fn verify_passes_a_correct_masked_clone_and_prints_no_source_value() {
    let c = fixture_clone::cluster(&["good"]);
    clone_with(&c, "good", Path::new(CONFIG));
    let config = Path::new(CONFIG);

    let mut cmd = verify(&c, "mhd", "good", config, &[]);
    cmd.env("RUST_LOG", "trace");
    let (code, report, text) = verify_json(&mut cmd);
    assert_eq!(code, 0, "verify failed a correct clone:\n{text}");
    assert_eq!(report["passed"], true);
    let tables = report["tables"].as_array().unwrap();
    assert!(
        tables.len() >= 30,
        "tables and partitions checked: {}",
        tables.len()
    );
    let patients = tables
        .iter()
        .find(|t| t["table"] == "public.patients")
        .expect("patients checked");
    assert!(patients["masked_columns"].as_u64().unwrap() >= 9);
    assert_eq!(patients["source_rows"], patients["target_rows"]);
    assert!(patients["source_rows"].as_u64().unwrap() > 0);
    for s in secrets(&c) {
        assert!(!text.contains(&s), "verify's output holds a source value");
    }

    // A memory budget too small for one pass: the masked tables are checked in several, with
    // the same verdict.
    let (code, report, text) = verify_json(&mut verify(
        &c,
        "mhd",
        "good",
        config,
        &["--max-memory", "16kB"],
    ));
    assert_eq!(code, 0, "verify in several passes failed:\n{text}");
    let passes = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.patients")
        .unwrap()["passes"]
        .as_u64()
        .unwrap();
    assert!(passes > 1, "patients was checked in {passes} pass(es)");

    // The text report says it passed.
    let (code, text) = output(verify(&c, "mhd", "good", config, &[]));
    assert_eq!(code, 0);
    assert!(text.contains("PASSED"), "{text}");

    // Without the key, verify cannot compute the masked values: a config error.
    let mut no_key = verify(&c, "mhd", "good", config, &[]);
    no_key.env_remove("PRIVACI_MASK_KEY");
    let (code, text) = output(no_key);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("PRIVACI_MASK_KEY"), "{text}");
}

#[test]
fn verify_names_each_problem_by_table_and_column() {
    let c = fixture_clone::cluster(&["forgot", "tampered"]);
    let dir = work_dir(&c);

    // A config that forgot the patients' phone numbers.
    let full = std::fs::read_to_string(CONFIG).unwrap();
    let forgot = dir.join("forgot.toml");
    let without: String = full
        .lines()
        .filter(|l| !l.starts_with("phone         = \"digits\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, full);
    std::fs::write(&forgot, without).unwrap();
    clone_with(&c, "forgot", &forgot);
    // Also in several passes: the leak is still found.
    for extra in [&[][..], &["--max-memory", "16kB"][..]] {
        let (code, report, text) =
            verify_json(&mut verify(&c, "mhd", "forgot", Path::new(CONFIG), extra));
        assert_eq!(code, 4, "{text}");
        let found = findings(&report);
        assert!(has(&found, "leak", "public.patients", "phone"), "{found:?}");
        assert!(
            has(&found, "masked_values", "public.patients", "phone"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .all(|(_, t, col)| t == "public.patients" && col == "phone"),
            "only the forgotten column is named: {found:?}"
        );
        let leak = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "leak")
            .unwrap();
        let phones: u64 = c
            .psql("mhd", "SELECT count(phone) FROM patients")
            .trim()
            .parse()
            .unwrap();
        assert!(leak["counts"]["leaked_rows"].as_u64().unwrap() >= phones * 9 / 10);
    }
    // The config the clone did use passes.
    let (code, _, text) = verify_json(&mut verify(&c, "mhd", "forgot", &forgot, &[]));
    assert_eq!(code, 0, "{text}");

    clone_with(&c, "tampered", Path::new(CONFIG));
    c.psql(
        "tampered",
        "DELETE FROM public.audit_log WHERE ctid IN (SELECT ctid FROM public.audit_log LIMIT 2);
         UPDATE public.support_tickets SET subject = subject || '!' WHERE id = (SELECT min(id) FROM public.support_tickets);
         SET session_replication_role = replica;
         DELETE FROM public.ticket_attachments WHERE (ticket_id, seq) IN (SELECT ticket_id, seq FROM public.attachment_reviews LIMIT 1);
         RESET session_replication_role;
         SELECT setval('public.support_tickets_id_seq', 1);
         DROP VIEW public.open_tickets;",
    );
    let (code, report, text) =
        verify_json(&mut verify(&c, "mhd", "tampered", Path::new(CONFIG), &[]));
    assert_eq!(code, 4, "{text}");
    let found = findings(&report);
    assert!(
        has(&found, "row_count", "public.audit_log", ""),
        "{found:?}"
    );
    assert!(
        has(&found, "row_count", "public.ticket_attachments", ""),
        "{found:?}"
    );
    assert!(
        has(&found, "kept_values", "public.support_tickets", "subject"),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            "foreign_key",
            "public.attachment_reviews",
            "ticket_id, seq"
        ),
        "{found:?}"
    );
    assert!(found.iter().any(|(c, _, _)| c == "sequence"), "{found:?}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "schema_object" && f["counts"]["name"] == "public.open_tickets"),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|(c, _, _)| c == "leak" || c == "masked_values"),
        "nothing masked was touched: {found:?}"
    );
}

#[test]
fn deep_finds_a_masked_value_copied_into_a_kept_column() {
    let c = fixture_clone::source_and_target(
        "shop",
        "copy",
        "CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text);
         INSERT INTO customers SELECT g, 'buyer' || g || '@shop.example', 'Name ' || g FROM generate_series(1, 500) g;
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, note text);
         INSERT INTO orders SELECT g, 1 + g % 500, CASE WHEN g % 50 = 0 THEN 'buyer' || (1 + g % 500) || '@shop.example' ELSE 'gift wrap' END FROM generate_series(1, 1000) g;",
    );
    let config = work_dir(&c).join("shop.toml");
    std::fs::write(&config, "[tables.customers.columns]\nemail = \"email\"\n").unwrap();
    fixture_clone::clone_ok(&c, "shop", "copy", &config, &[]);

    let (code, _, text) = verify_json(&mut verify(&c, "shop", "copy", &config, &[]));
    assert_eq!(
        code, 0,
        "without --deep the clone is as configured:\n{text}"
    );
    let (code, report, text) = verify_json(&mut verify(&c, "shop", "copy", &config, &["--deep"]));
    assert_eq!(code, 4, "{text}");
    let found = findings(&report);
    assert_eq!(
        found,
        vec![(
            "deep_leak".to_string(),
            "public.orders".to_string(),
            "note".to_string()
        )]
    );
    let f = &report["findings"][0];
    assert_eq!(f["counts"]["confirmed"], 20);
    assert_eq!(f["counts"]["masked_columns"][0], "public.customers.email");
    assert!(
        !text.contains("@shop.example"),
        "a value in the report:\n{text}"
    );
}

#[test]
fn ddl_queued_during_verify_waits_for_it_and_does_not_stall_it() {
    let c = fixture_clone::source_and_target(
        "src",
        "copy",
        "CREATE TABLE big (id int PRIMARY KEY, email text NOT NULL, note text);
         INSERT INTO big SELECT g, 'user' || g || '@example.com', repeat('x', 50) FROM generate_series(1, 400000) g;
         CREATE TABLE small (id int PRIMARY KEY);
         INSERT INTO small SELECT generate_series(1, 10);
         ANALYZE;",
    );
    let config = work_dir(&c).join("big.toml");
    std::fs::write(&config, "[tables.big.columns]\nemail = \"email\"\n").unwrap();
    fixture_clone::clone_ok(&c, "src", "copy", &config, &[]);

    // Verify reads the big table while a TRUNCATE of it (and of the small one, which the
    // jobs have not read yet) is queued on the source: the TRUNCATE waits for verify, and
    // verify does not wait for it (the small table goes to the session holding its lock).
    // One job: it reads the big table first, then comes to the small one with the TRUNCATE
    // queued on it.
    let mut cmd = fixture_clone::between(&c, "verify", "src", "copy", &config);
    cmd.args(["--format", "json", "--jobs", "1"]);
    let child = fixture_clone::spawn(cmd);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let started = std::time::Instant::now();
    let ddl = c
        .psql_command(
            "src",
            "SET lock_timeout = '60s'; BEGIN; TRUNCATE small, big; ROLLBACK;",
        )
        .output()
        .unwrap();
    let waited = started.elapsed();
    let (code, text) = fixture_clone::finish(child);
    assert!(
        ddl.status.success(),
        "{}",
        String::from_utf8_lossy(&ddl.stderr)
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"passed\": true"), "{text}");
    assert!(
        waited > std::time::Duration::from_millis(100),
        "the TRUNCATE did not wait for verify ({waited:?}): verify finished first, the test saw nothing"
    );
}

#[test]
fn a_target_with_wider_types_from_its_own_migrations_verifies() {
    let c = fixture_clone::source_and_target(
        "src",
        "copy",
        "CREATE TABLE p (id int PRIMARY KEY, name varchar(50), email text, tags varchar(10)[]);
         INSERT INTO p SELECT g, 'n' || g, 'e' || g || '@x.io', ARRAY['a', 'b'] FROM generate_series(1, 100) g;",
    );
    c.psql(
        "copy",
        "SET ROLE cloner;
         CREATE TABLE p (id bigint PRIMARY KEY, extra int, name text, email varchar(200), tags text[]);",
    );
    let config = work_dir(&c).join("p.toml");
    std::fs::write(&config, "[tables.p.columns]\nemail = \"email\"\n").unwrap();
    fixture_clone::clone_ok(&c, "src", "copy", &config, &["--schema", "existing"]);
    let (code, _, text) = verify_json(&mut verify(&c, "src", "copy", &config, &[]));
    assert_eq!(code, 0, "{text}");
    // A changed value is still found through the cast.
    c.psql("copy", "UPDATE p SET id = id + 1000 WHERE id = 7");
    let (code, report, text) = verify_json(&mut verify(&c, "src", "copy", &config, &[]));
    assert_eq!(code, 4, "{text}");
    assert!(
        has(&findings(&report), "kept_values", "public.p", "id"),
        "{text}"
    );
}
