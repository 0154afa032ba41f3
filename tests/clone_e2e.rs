//! `privaci clone` end to end on the MedicalHelpDesk fixture, as non-superuser roles over
//! TLS with SCRAM: row counts, unmasked data identical, masked data gone, keys joining on the
//! target, sequences, views and functions working, the schema identical under pg_dump, and an
//! audit log free of values.

mod support;

use std::collections::HashSet;
use std::process::Command;

use support::Cluster;

pub const KEY: &str = "end-to-end masking key, 32 bytes";

pub fn cluster() -> Cluster {
    let c = Cluster::builder()
        .hba("hostssl all owner 127.0.0.1/32 scram-sha-256")
        .hba("hostssl all cloner 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("owner", Some("owner-secret"), false);
    c.create_role("cloner", Some("cloner-secret"), false);
    c.psql("postgres", "CREATE DATABASE mhd OWNER owner");
    c.psql("postgres", "CREATE DATABASE mhd_copy OWNER cloner");
    support::load_fixture(&c, "mhd", "owner", 1);
    c
}

pub fn tls(c: &Cluster, user: &str, db: &str) -> String {
    format!(
        "host=localhost port={} user={user} password={user}-secret dbname={db} sslmode=verify-full sslrootcert={}",
        c.port(),
        c.certs().ca_file.display()
    )
}

pub fn clone(
    c: &Cluster,
    extra: &[&str],
    audit: Option<&std::path::Path>,
) -> (i32, String, String) {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/masking/medicalhelpdesk.toml"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &tls(c, "owner", "mhd"),
        "--target",
        &tls(c, "cloner", "mhd_copy"),
        "--config",
        config,
        "--jobs",
        "2",
    ])
    .args(extra)
    .env("PRIVACI_MASK_KEY", KEY)
    .env("HOME", "/nonexistent");
    if let Some(a) = audit {
        cmd.arg("--audit-log").arg(a);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn column(c: &Cluster, db: &str, sql: &str) -> Vec<String> {
    c.psql(db, sql).lines().map(str::to_string).collect()
}

/// A checksum of a table's rows over `cols`, independent of row order.
fn checksum(c: &Cluster, db: &str, table: &str, cols: &str) -> String {
    c.psql(db, &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(x, '|' ORDER BY x)), '') FROM (SELECT ({cols})::text AS x FROM {table}) s"))
}

#[test]
fn masked_clone_of_the_fixture() {
    let c = cluster();
    let audit = c.socket_dir().parent().unwrap().join("audit.jsonl");
    let (code, out, err) = clone(&c, &[], Some(&audit));
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("total: 40 units"), "{out}");

    // Every table and partition has the source's row count.
    let tables = column(&c, "mhd", "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('public', 'clinical') ORDER BY 1");
    assert_eq!(tables.len(), 40);
    for t in &tables {
        assert_eq!(
            c.psql("mhd", &format!("SELECT count(*) FROM {t}")),
            c.psql("mhd_copy", &format!("SELECT count(*) FROM {t}")),
            "{t}"
        );
    }

    // Unmasked columns are identical.
    for (table, cols) in [
        ("public.patients", "mrn, full_name IS NOT NULL, home_address, postal_code, allergies, moods, coverage_start, coverage_end, created_at"),
        ("public.staff", "id, manager_id, hired_on"),
        ("public.support_tickets", "id, assignee_id, status, subject, opened_at"),
        ("public.ticket_attachments", "ticket_id, seq, filename, content"),
        ("public.audit_log", "at, actor, action, detail"),
        ("public.raw_events", "id, occurred_at, patient_id, kind"),
        ("clinical.patient_visits", "id, region, visited_at, diagnosis"),
        ("clinical.lab_results", "id, patient_id, test_name, value, dose, taken_at"),
        ("public.\"Referral Notes\"", "\"Note Id\", \"Größe\", body"),
        ("clinical.visits_per_region", "region, visits"),
    ] {
        assert_eq!(checksum(&c, "mhd", table, cols), checksum(&c, "mhd_copy", table, cols), "{table}");
    }

    // No identifying value of a masked column survives, anywhere in its column.
    for (table, col) in [
        ("public.patients", "email"),
        ("public.patients", "phone"),
        ("public.patients", "national_id"),
        ("public.patients", "profile->'emergency_contact'->>'phone'"),
        ("public.staff", "email"),
        ("public.staff", "phone"),
        ("public.raw_events", "payload->>'email'"),
        ("public.support_tickets", "notes"),
    ] {
        let sql = format!("SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL");
        let source: HashSet<String> = column(&c, "mhd", &sql).into_iter().collect();
        let target: HashSet<String> = column(&c, "mhd_copy", &sql).into_iter().collect();
        assert!(!source.is_empty() && !target.is_empty(), "{table}.{col}");
        let leaked: Vec<_> = source.intersection(&target).collect();
        assert!(
            leaked.is_empty(),
            "{table}.{col} leaked {} values, e.g. {:?}",
            leaked.len(),
            leaked.first()
        );
    }
    // Row by row (patients paired by their kept mrn): names and dates changed, NULLed columns empty.
    let pair = "SELECT mrn, first_name, last_name, date_of_birth, coalesce(photo::text, 'NULL'), coalesce(last_login_ip::text, 'NULL'), balance, id FROM public.patients ORDER BY mrn";
    let (src, dst) = (column(&c, "mhd", pair), column(&c, "mhd_copy", pair));
    let mut same_names = 0;
    for (s, d) in src.iter().zip(&dst) {
        let (s, d): (Vec<&str>, Vec<&str>) = (s.split('|').collect(), d.split('|').collect());
        assert_eq!(s[0], d[0]);
        same_names += (s[1] == d[1] && s[2] == d[2]) as usize;
        assert_ne!(s[3], d[3], "date_of_birth shifted");
        assert_eq!((d[4], d[5]), ("NULL", "NULL"));
        let (sb, db): (f64, f64) = (s[6].parse().unwrap(), d[6].parse().unwrap());
        assert!((db - sb).abs() <= sb * 0.1 + 0.01);
        assert_ne!(s[7], d[7], "patients.id tokenized");
    }
    assert!(
        same_names < src.len() / 20,
        "{same_names} of {} full names unchanged",
        src.len()
    );

    // Masked keys still join: every foreign key exists on the target and is validated.
    let fks = "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND c.convalidated AND n.nspname IN ('public', 'clinical')";
    assert_eq!(c.psql("mhd", fks), c.psql("mhd_copy", fks));
    let join = "SELECT count(*) FROM public.support_tickets t JOIN public.patients p ON p.id = t.patient_id";
    assert_eq!(c.psql("mhd_copy", join), "500");
    // The same ticket reaches the same patient (paired by mrn) as in the source.
    let by_mrn = "SELECT string_agg(t.id || ':' || p.mrn, ',' ORDER BY t.id) FROM public.support_tickets t JOIN public.patients p ON p.id = t.patient_id";
    assert_eq!(c.psql("mhd", by_mrn), c.psql("mhd_copy", by_mrn));

    // Sequences continue where the source stood; views and functions work.
    assert_eq!(
        c.psql(
            "mhd_copy",
            "SELECT last_value FROM public.support_tickets_id_seq"
        ),
        "500"
    );
    assert_eq!(
        c.psql(
            "mhd_copy",
            "SELECT nextval('public.support_tickets_id_seq')"
        ),
        "501"
    );
    assert_eq!(
        c.psql("mhd", "SELECT count(*) FROM public.open_tickets"),
        c.psql("mhd_copy", "SELECT count(*) FROM public.open_tickets")
    );
    assert_eq!(
        c.psql("mhd_copy", "SELECT public.patient_age('2000-01-01')"),
        "26"
    );
    c.psql(
        "mhd_copy",
        "UPDATE public.support_tickets SET subject = subject WHERE id = 1",
    );
    assert_eq!(
        c.psql(
            "mhd_copy",
            "SELECT updated_at IS NOT NULL FROM public.support_tickets WHERE id = 1"
        ),
        "t",
        "the trigger fires on the target"
    );

    // The schema is the source's (the run state is gone after a complete run).
    assert_eq!(c.pg_dump_schema("mhd"), c.pg_dump_schema("mhd_copy"));

    // The audit log names tables, never values.
    let log = std::fs::read_to_string(&audit).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["event"], "run.start");
    assert_eq!(events.last().unwrap()["event"], "run.end");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "table.end").count(),
        40
    );
    for value in column(&c, "mhd", "SELECT email FROM public.patients UNION ALL SELECT national_id FROM public.patients UNION ALL SELECT first_name FROM public.patients") {
        assert!(!log.contains(&value), "the audit log holds a value");
    }
}

#[test]
fn existing_schema_with_live_foreign_keys() {
    let c = cluster();
    // "Migrations": the schema, with its foreign keys, indexes and triggers, made beforehand.
    c.psql("postgres", "CREATE DATABASE migrated OWNER cloner");
    let schema_file = c.socket_dir().parent().unwrap().join("schema.sql");
    std::fs::write(&schema_file, c.pg_dump_schema("mhd")).unwrap();
    let out = Command::new(privaci::devcluster::bindir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
        .arg(c.socket_dir())
        .args([
            "-p",
            &c.port().to_string(),
            "-d",
            "migrated",
            "-c",
            "SET ROLE cloner",
            "-f",
        ])
        .arg(&schema_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_privaci"))
            .args([
                "clone",
                "--source",
                &tls(&c, "owner", "mhd"),
                "--target",
                &tls(&c, "cloner", "migrated"),
                "--schema",
                "existing",
                "--jobs",
                "2",
                "--quiet",
                "--config",
            ])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/masking/medicalhelpdesk.toml"
            ))
            .env("PRIVACI_MASK_KEY", KEY)
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // Foreign keys are live during the load: referenced tables go first.
    let (code, out) = run();
    assert_eq!(code, Some(0), "{out}");
    for t in [
        "public.patients",
        "public.support_tickets",
        "public.attachment_reviews",
        "clinical.patient_visits",
        "public.raw_events",
    ] {
        assert_eq!(
            c.psql("mhd", &format!("SELECT count(*) FROM {t}")),
            c.psql("migrated", &format!("SELECT count(*) FROM {t}")),
            "{t}"
        );
    }
    assert_eq!(c.psql("migrated", "SELECT count(*) FROM public.support_tickets t JOIN public.patients p ON p.id = t.patient_id"), "500");
    assert_eq!(
        c.psql("migrated", "SELECT last_value FROM public.patients_id_seq"),
        "300"
    );
    // Run again into the now full target: refused, nothing doubled.
    let (code, out) = run();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("already hold rows"), "{out}");
    assert_eq!(
        c.psql("migrated", "SELECT count(*) FROM public.patients"),
        "300"
    );
}
