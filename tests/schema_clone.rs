//! Schema fidelity on the MedicalHelpDesk fixture, with pg_dump as the witness: the source is
//! loaded by one non-superuser, the target is built by another from privaci's catalog and
//! DDL, and `pg_dump --schema-only` of both must be identical.

mod support;

use privaci::catalog::{self, ConstraintKind, Filter, PartitionStrategy, TypeDef};
use privaci::conn::{connect, Connection};
use privaci::conninfo::Config;
use privaci::schema;
use support::Cluster;

fn cluster() -> Cluster {
    let c = Cluster::builder()
        .hba("host all owner 127.0.0.1/32 scram-sha-256")
        .hba("host all cloner 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("owner", Some("owner-secret"), false);
    c.create_role("cloner", Some("cloner-secret"), false);
    c.psql("postgres", "CREATE DATABASE mhd OWNER owner");
    c.psql("postgres", "CREATE DATABASE mhd_copy OWNER cloner");
    support::load_fixture(&c, "mhd", "owner", 1);
    c
}

async fn conn(c: &Cluster, user: &str, db: &str) -> Connection {
    let cfg = Config::parse_with(
        &c.conninfo(&format!("user={user} password={user}-secret dbname={db}")),
        &|_| None,
        None,
    )
    .unwrap();
    connect(&cfg).await.unwrap()
}

#[tokio::test]
async fn catalog_reads_the_fixture() {
    let c = cluster();
    let mut src = conn(&c, "owner", "mhd").await;
    let cat = catalog::load(&mut src, &Filter::default()).await.unwrap();
    let raw = cat.table("public", "raw_events").unwrap();
    assert_eq!(
        raw.partitioning.as_ref().map(|p| p.0),
        Some(PartitionStrategy::Range)
    );
    assert_eq!(cat.children(&raw.name).count(), 24);
    let child = cat.table("public", "raw_events_2024_03").unwrap();
    assert!(
        child
            .bound
            .as_deref()
            .unwrap()
            .starts_with("FOR VALUES FROM ('2024-03-01"),
        "{:?}",
        child.bound
    );
    let visits = cat.table("clinical", "patient_visits").unwrap();
    assert_eq!(
        visits.partitioning.as_ref().map(|p| p.0),
        Some(PartitionStrategy::List)
    );
    assert_eq!(
        cat.table("clinical", "patient_visits_other")
            .unwrap()
            .bound
            .as_deref(),
        Some("DEFAULT")
    );
    assert_eq!(
        cat.table("clinical", "lab_results")
            .unwrap()
            .partitioning
            .as_ref()
            .map(|p| p.0),
        Some(PartitionStrategy::Hash)
    );

    let patients = cat.table("public", "patients").unwrap();
    assert_eq!(
        patients
            .columns
            .iter()
            .find(|c| c.name == "full_name")
            .unwrap()
            .generated
            .as_deref(),
        Some("((first_name || ' '::text) || last_name)")
    );
    assert!(patients
        .columns
        .iter()
        .find(|c| c.name == "id")
        .unwrap()
        .default
        .as_deref()
        .unwrap()
        .starts_with("nextval("));
    assert_eq!(
        patients.comment.as_deref(),
        Some("Patients of every clinic")
    );
    assert!(patients.estimated_rows > 0 && patients.size_bytes > 0);
    assert_eq!(
        cat.table("public", "staff").unwrap().columns[0].identity,
        Some('a')
    );
    assert!(cat
        .table("public", "audit_log")
        .unwrap()
        .primary_key()
        .is_none());
    assert!(cat.table("public", "session_cache").unwrap().unlogged);
    let fk = cat
        .table("public", "attachment_reviews")
        .unwrap()
        .constraints
        .iter()
        .find(|c| c.name == "attachment_reviews_attachment_fkey")
        .unwrap();
    assert_eq!(fk.kind, ConstraintKind::ForeignKey);
    assert_eq!(fk.columns, ["ticket_id", "seq"]);
    assert_eq!(fk.references.as_ref().unwrap().1, ["ticket_id", "seq"]);
    let referral = cat.table("public", "Referral Notes").unwrap();
    assert_eq!(referral.name.quoted, "public.\"Referral Notes\"");
    assert_eq!(referral.columns[1].quoted, "\"Größe\"");
    assert!(cat.types.iter().any(|t| t.name.name == "postal_code"
        && matches!(&t.def, TypeDef::Domain { checks, .. } if checks.len() == 1)));
    assert!(cat
        .types
        .iter()
        .any(|t| t.name.name == "dose_range" && matches!(t.def, TypeDef::Range { .. })));
    assert!(
        !cat.types.iter().any(|t| t.name.name == "citext"),
        "extension members are left to CREATE EXTENSION"
    );
    assert!(cat.extensions.iter().any(|e| e.name == "citext"));
    assert!(cat.views.iter().any(|v| v.materialized && v.populated));
    assert!(cat
        .triggers
        .iter()
        .any(|t| t.name == "support_tickets_touch"));
    assert!(cat
        .sequences
        .iter()
        .any(|s| s.identity && s.name.name == "staff_id_seq"));
    assert!(cat
        .sequences
        .iter()
        .any(|s| s.name.name == "patients_id_seq" && s.last_value == Some((300, true))));

    // Filters.
    let only_clinical = catalog::load(
        &mut src,
        &Filter {
            include_schemas: vec!["clinical".into()],
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert!(only_clinical
        .tables
        .iter()
        .all(|t| t.name.schema == "clinical"));
    let no_events = catalog::load(
        &mut src,
        &Filter {
            exclude_tables: vec![("public".into(), "audit_log".into())],
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert!(
        no_events.table("public", "audit_log").is_none()
            && no_events.table("public", "patients").is_some()
    );
}

#[tokio::test]
async fn target_schema_matches_the_source_under_pg_dump() {
    let c = cluster();
    let mut src = conn(&c, "owner", "mhd").await;
    let cat = catalog::load(&mut src, &Filter::default()).await.unwrap();
    let mut dst = conn(&c, "cloner", "mhd_copy").await;
    for steps in [schema::pre_data(&cat), schema::post_data(&cat)] {
        let skipped = schema::apply(&mut dst, &steps).await.unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    let (source_dump, target_dump) = (c.pg_dump_schema("mhd"), c.pg_dump_schema("mhd_copy"));
    if source_dump != target_dump {
        let diff: Vec<String> = source_dump
            .lines()
            .zip(target_dump.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  source: {a}\n  target: {b}", i + 1))
            .collect();
        panic!(
            "pg_dump --schema-only differs ({} vs {} lines):\n{}",
            source_dump.lines().count(),
            target_dump.lines().count(),
            diff.join("\n")
        );
    }
    // Sequence positions were carried over.
    assert_eq!(
        c.psql("mhd_copy", "SELECT last_value FROM public.patients_id_seq"),
        "300"
    );
}
