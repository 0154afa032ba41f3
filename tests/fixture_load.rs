//! The MedicalHelpDesk fixture loads as a non-superuser and has what seed 001 asks for.

mod support;

#[test]
fn fixture_loads_as_a_non_superuser() {
    let c = support::Cluster::builder().start();
    c.create_role("owner", Some("owner-secret"), false);
    c.psql("postgres", "CREATE DATABASE mhd OWNER owner");
    support::load_fixture(&c, "mhd", "owner", 1);
    let count = |sql: &str| c.psql("mhd", sql);
    assert_eq!(count("SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'raw_events'"), "24");
    assert_eq!(count("SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'patient_visits'"), "4");
    assert_eq!(count("SELECT count(*) FROM public.patients"), "300");
    assert_eq!(
        count("SELECT count(*) FROM clinical.patient_visits_other"),
        "120"
    );
    assert_eq!(count("SELECT rolsuper FROM pg_roles r JOIN pg_class c ON c.relowner = r.oid WHERE c.relname = 'patients'"), "f");
}
