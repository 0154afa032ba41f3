//! `privaci plan` and `privaci validate --source` against the MedicalHelpDesk fixture: what the
//! plan shows, every config error against the catalog, and every pre-flight refusal, each with
//! its exit code and message.

mod support;

use std::process::Command;

use support::Cluster;

const KEY: &str = "plan and validate test key";

fn cluster() -> Cluster {
    let c = Cluster::builder()
        .hba("host all owner 127.0.0.1/32 scram-sha-256")
        .hba("host all cloner 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("owner", Some("owner-secret"), false);
    c.create_role("cloner", Some("cloner-secret"), false);
    c.psql("postgres", "CREATE DATABASE mhd OWNER owner");
    c.psql("postgres", "CREATE DATABASE empty_target OWNER cloner");
    support::load_fixture(&c, "mhd", "owner", 1);
    c
}

fn source(c: &Cluster, db: &str) -> String {
    c.conninfo(&format!("user=owner password=owner-secret dbname={db}"))
}

fn target(c: &Cluster, db: &str) -> String {
    c.conninfo(&format!("user=cloner password=cloner-secret dbname={db}"))
}

fn privaci(args: &[&str], config: Option<&str>) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "privaci-plan-{}-{:x}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args(args)
        .env("PRIVACI_MASK_KEY", KEY)
        .env("HOME", "/nonexistent");
    if let Some(text) = config {
        let file = dir.join("masking.toml");
        std::fs::write(&file, text).unwrap();
        cmd.arg("--config").arg(&file);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

const GOOD: &str = r#"
[tables.patients.columns]
id            = "tokenize"
email         = "email"
first_name    = "first_name"
national_id   = { strategy = "redact", keep_last = 4 }
date_of_birth = { strategy = "date_shift", max_days = 30 }

[tables.raw_events.columns]
payload = { strategy = "json", paths = { "$.email" = "email" } }
"#;

#[test]
fn plan_shows_units_strategies_propagation_and_objects() {
    let c = cluster();
    let src = source(&c, "mhd");
    let (code, out, err) = privaci(
        &[
            "plan",
            "--source",
            &src,
            "--target",
            &target(&c, "empty_target"),
        ],
        Some(GOOD),
    );
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("partition of public.raw_events"), "{out}");
    assert!(
        out.contains("clinical.patient_visits_other") && out.contains("[masked]"),
        "{out}"
    );
    assert!(
        out.contains("public.raw_events (partitioned: applies to every partition)"),
        "{out}"
    );
    // Propagated along foreign keys, to partitioned and plain tables alike.
    // The line under each table's header in the masking section.
    let rule = |header: &str| {
        out.split(&format!("  {header}\n"))
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        rule("public.support_tickets"),
        "patient_id tokenize (propagated from public.patients.id)",
        "{out}"
    );
    assert_eq!(
        rule("clinical.patient_visits (partitioned: applies to every partition)"),
        "patient_id tokenize (propagated from public.patients.id)",
        "{out}"
    );
    assert!(out.contains("redact (keep_first 0, keep_last 4)"), "{out}");
    assert!(out.contains("tables (32 of them partitions)"), "{out}");
    assert!(out.contains("Pre-flight: no refusals."), "{out}");

    let (code, json, _) = privaci(&["plan", "--source", &src, "--format", "json"], Some(GOOD));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let units = v["units"].as_array().unwrap();
    assert_eq!(
        units.len(),
        40,
        "ordinary tables and partitions, not partitioned parents"
    );
    let child = units
        .iter()
        .find(|u| u["table"] == "public.raw_events_2024_05")
        .unwrap();
    assert_eq!(child["partition_of"], "public.raw_events");
    let payload = child["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "payload")
        .unwrap();
    assert_eq!(payload["source"], "from parent public.raw_events");
    let sizes: Vec<i64> = units
        .iter()
        .map(|u| u["size_bytes"].as_i64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first");
    let full_name = units
        .iter()
        .find(|u| u["table"] == "public.patients")
        .unwrap()["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "full_name")
        .unwrap()
        .clone();
    assert_eq!(
        full_name["copied"], false,
        "generated columns are computed by the target"
    );
}

#[test]
fn validate_against_the_catalog_lists_every_problem() {
    let c = cluster();
    let bad = r#"
[masking]
unlisted_columns = "fail"

[tables.nosuch.columns]
a = "keep"

[tables.patients.columns]
id            = "tokenize"
nosuchcol     = "keep"
date_of_birth = "email"
first_name    = "null"
full_name     = "full_name"

[tables.raw_events_2024_01.columns]
kind = "keep"

[tables.staff.columns]
email = { strategy = "redact", keep_last = 3 }

[tables.support_tickets.columns]
patient_id = "keep"
"#;
    let (code, _, err) = privaci(&["validate", "--source", &source(&c, "mhd")], Some(bad));
    assert_eq!(code, 3, "{err}");
    for expected in [
        ":5: table \"public.nosuch\": no such table in the source database",
        ":10: table \"public.patients\", column \"nosuchcol\": no such column",
        ":11: table \"public.patients\", column \"date_of_birth\": strategy \"email\" does not apply to type date;",
        ":12: table \"public.patients\", column \"first_name\": strategy \"null\" on a NOT NULL column",
        ":13: table \"public.patients\", column \"full_name\": is a generated column",
        ":15: table \"public.raw_events_2024_01\": is a partition of public.raw_events",
        ":19: table \"public.staff\", column \"email\": strategy \"redact\" can make distinct values equal, but the column is used by the key or unique index \"staff_email_key\"",
        ":22: table \"public.support_tickets\", column \"patient_id\": foreign key support_tickets_patient_id_fkey references public.patients.id, which is masked with \"tokenize\", but this column is masked with \"keep\"",
        "table \"public.audit_log\": unlisted_columns = \"fail\", and these columns are not listed: at, actor, action, detail",
    ] {
        assert!(err.contains(expected), "missing: {expected}\n{err}");
    }

    // A config entry for a table the command line leaves out says so; a long unknown
    // strategy name is cut.
    let (code, _, err) = privaci(
        &[
            "plan",
            "--source",
            &source(&c, "mhd"),
            "--exclude-table",
            "staff",
        ],
        Some("[tables.staff.columns]\nemail = \"email\"\n"),
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("table \"public.staff\": not cloned: it is excluded by --exclude-table"),
        "{err}"
    );
    let long = "x".repeat(5000);
    let (code, _, err) = privaci(
        &["validate"],
        Some(&format!("[tables.staff.columns]\nemail = \"{long}\"\n")),
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("unknown strategy \"{}…\"", "x".repeat(40))),
        "{err}"
    );
    assert!(err.len() < 600, "{err}");

    let (code, out, err) = privaci(&["validate", "--source", &source(&c, "mhd")], Some(GOOD));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("valid against the source (40 tables to copy"),
        "{out}"
    );
}

#[test]
fn preflight_refusals_exit_2_with_what_to_do() {
    let c = cluster();
    let src = source(&c, "mhd");
    // The target already holds the tables.
    c.psql("postgres", "GRANT owner TO cloner");
    let (code, out, _) = privaci(
        &["plan", "--source", &src, "--target", &target(&c, "mhd")],
        None,
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("the target already has 40") || out.contains("the target already has"),
        "{out}"
    );
    assert!(out.contains("--schema existing"), "{out}");
    // An empty target lacks them altogether.
    let (code, out, _) = privaci(
        &[
            "plan",
            "--source",
            &src,
            "--target",
            &target(&c, "mhd"),
            "--schema",
            "existing",
        ],
        None,
    );
    // --schema existing wants the tables, but empty: rows there would be doubled.
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("--schema existing, but 40 target table(s) already hold rows"),
        "{out}"
    );
    let (code, out, _) = privaci(
        &[
            "plan",
            "--source",
            &src,
            "--target",
            &target(&c, "empty_target"),
            "--schema",
            "existing",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        out.contains("--schema existing, but the target lacks"),
        "{out}"
    );

    // No CREATE on the target database.
    c.psql("postgres", "CREATE DATABASE not_mine");
    let (code, out, _) = privaci(
        &[
            "plan",
            "--source",
            &src,
            "--target",
            &target(&c, "not_mine"),
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        out.contains("the target role \"cloner\" may not create schemas in database \"not_mine\""),
        "{out}"
    );

    // State of an earlier run without --resume.
    c.psql(
        "empty_target",
        "CREATE SCHEMA _privaci AUTHORIZATION cloner",
    );
    let (code, out, _) = privaci(
        &[
            "plan",
            "--source",
            &src,
            "--target",
            &target(&c, "empty_target"),
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.contains("use --resume"), "{out}");

    // A table the source role cannot read.
    c.psql("mhd", "CREATE TABLE public.payroll (salary int)");
    let (code, out, _) = privaci(&["plan", "--source", &src], None);
    assert_eq!(code, 2);
    assert!(
        out.contains("may not read 1 table(s): public.payroll; GRANT SELECT"),
        "{out}"
    );
    let (code, _, _) = privaci(
        &[
            "plan",
            "--source",
            &src,
            "--exclude-table",
            "public.payroll",
        ],
        None,
    );
    assert_eq!(code, 0, "excluded tables are not checked");
    // Names fold as SQL reads them: a bare name is lower-cased and means public.
    let (code, out, _) = privaci(
        &["plan", "--source", &src, "--exclude-table", "PAYROLL"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    // A name that matches nothing is an error (exit 3): the table meant to be left out
    // would otherwise be copied.
    for bad in [
        &["--exclude-table", "public.payrol"][..],
        &["--exclude-table", "\"PAYROLL\""][..],
        &["--exclude-table", "a.b.c"][..],
        &["--include-schema", "nosuch"][..],
        &["--exclude-schema", "Nosuch"][..],
    ] {
        let (code, _, err) = privaci(&[&["plan", "--source", &src][..], bad].concat(), None);
        assert_eq!(code, 3, "{bad:?}: {err}");
        assert!(err.contains(bad[0]), "{err}");
    }

    // Multi-level partitioning.
    c.psql("postgres", "CREATE DATABASE nested OWNER owner");
    c.psql(
        "nested",
        "SET ROLE owner; CREATE TABLE m (id int, region text, at date) PARTITION BY LIST (region);
         CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu') PARTITION BY RANGE (at);
         CREATE TABLE m_eu_2024 PARTITION OF m_eu FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
    );
    // Supported: the leaf is the unit, its masking comes from the topmost table, and a rule
    // on a partition at any level points there.
    let (code, out, err) = privaci(
        &["plan", "--source", &source(&c, "nested")],
        Some("[tables.m.columns]\nregion = \"redact\"\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("m_eu_2024"), "{out}");
    assert!(!out.contains("not supported"), "{out}");
    let (code, _, err) = privaci(
        &["validate", "--source", &source(&c, "nested")],
        Some("[tables.m_eu.columns]\nregion = \"redact\"\n"),
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("configure public.m instead"), "{err}");
}
