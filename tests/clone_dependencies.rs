//! Schemas whose objects must be created in dependency order (tests/fixtures/dependencies.sql):
//! cloned by a non-superuser into an empty database, checked against pg_dump of both sides
//! and every table's and materialized view's rows.

mod support;

use std::process::Command;

use support::fixture_clone::{cluster_with_roles, conninfo, output};
use support::{load_sql, Cluster};

const FIXTURE: &str = include_str!("fixtures/dependencies.sql");
const KINDS: &str = include_str!("fixtures/catalog_kinds.sql");

/// Rows of every table and materialized view outside the system schemas, by checksum.
fn rows(c: &Cluster, db: &str) -> Vec<String> {
    let relations = c.psql(db, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1");
    relations
        .lines()
        .map(|r| {
            format!(
                "{r} {}",
                c.psql(db, &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {r} x"))
            )
        })
        .collect()
}

fn first_differences(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .take(8)
        .map(|(i, (x, y))| format!("line {}:\n  source: {x}\n  target: {y}\n", i + 1))
        .collect()
}

fn clone(c: &Cluster, source: &str, target: &str, extra: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &conninfo(c, c.port(), "owner", source),
        "--target",
        &conninfo(c, c.port(), "cloner", target),
        "--quiet",
        "--jobs",
        "2",
    ])
    .args(extra)
    .env("HOME", "/nonexistent");
    output(cmd)
}

#[test]
fn objects_are_created_in_dependency_order_and_match_pg_dump() {
    let c = cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE deps OWNER owner");
    c.psql("postgres", "CREATE DATABASE deps_copy OWNER cloner");
    load_sql(&c, "deps", "owner", 1, FIXTURE);
    // The source role's own search path finds `app` objects unqualified; the target role's
    // does not: definitions must not depend on either.
    c.psql("postgres", "ALTER ROLE owner SET search_path = app, public");
    // The source's forced row security would hide rows from the reading role otherwise.
    c.psql("postgres", "ALTER ROLE owner BYPASSRLS");
    c.psql("postgres", "ALTER ROLE cloner SET search_path = \"$user\"");

    let (code, out) = clone(&c, "deps", "deps_copy", &[]);
    assert_eq!(code, 0, "{out}");

    let (source, target) = (c.pg_dump_schema("deps"), c.pg_dump_schema("deps_copy"));
    assert!(
        source == target,
        "pg_dump --schema-only differs:\n{}\n(source {} lines, target {} lines)",
        first_differences(&source, &target),
        source.lines().count(),
        target.lines().count()
    );
    assert_eq!(rows(&c, "deps"), rows(&c, "deps_copy"));
    // Large objects: the same OIDs and contents, with their comments, owned by the cloner.
    let blobs = "SELECT m.oid, pg_get_userbyid(m.lomowner) = current_database()::text || '', obj_description(m.oid, 'pg_largeobject'), md5(lo_get(m.oid)) FROM pg_largeobject_metadata m ORDER BY 1";
    assert_eq!(
        c.psql("deps", blobs).replace("owner", ""),
        c.psql("deps_copy", blobs).replace("cloner", "")
    );
    assert_eq!(
        c.psql("deps_copy", "SELECT count(*), sum(length(lo_get(oid))) FROM pg_largeobject_metadata WHERE pg_get_userbyid(lomowner) = 'cloner'"),
        "2|720000"
    );
    // The collation, text search configuration, cast and operator work on the target.
    let works = "SELECT (SELECT count(*) FROM app.articles WHERE title = 'strasse'), (SELECT string_agg(code, '' ORDER BY code) FROM app.articles),
                        (SELECT words FROM app.articles WHERE id = 1), (ROW(250)::app.cents)::numeric, (SELECT count(*) FROM app.near_two)";
    assert_eq!(c.psql("deps_copy", works), c.psql("deps", works));
    let got = c.psql("deps_copy", works);
    assert!(got.starts_with("1|ab|'dog':3 'run':2 'the':1|2.5"), "{got}");
    // The rows that break the NOT VALID checks came across; the objects work on the target.
    assert_eq!(
        c.psql(
            "deps_copy",
            "SELECT count(*) FROM app.legacy WHERE score < 0"
        ),
        "1"
    );
    assert_eq!(c.psql("deps_copy", "SELECT count(*) FROM app.markers"), "3");
    assert_eq!(
        c.psql("deps_copy", "SELECT top FROM app.biggest"),
        c.psql("deps", "SELECT top FROM app.biggest")
    );
    c.psql(
        "deps_copy",
        "INSERT INTO app.v_second VALUES (100, 'via the view')",
    );
    assert_eq!(
        c.psql(
            "deps_copy",
            "INSERT INTO app.tickets (note) VALUES ('next') RETURNING id"
        ),
        "3"
    );

    // Masking of a multi-level partitioned table comes from its top table, at every level.
    c.psql("postgres", "CREATE DATABASE deps_masked OWNER cloner");
    let config = std::env::temp_dir().join(format!("privaci-deps-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        "[tables.\"app.visits\".columns]\nnote = \"redact\"\n[tables.\"app.people\".columns]\nname = \"redact\"\n",
    )
    .unwrap();
    let (code, out) = clone(
        &c,
        "deps",
        "deps_masked",
        &["--config", config.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        c.psql(
            "deps_masked",
            "SELECT count(*) FROM app.visits WHERE note LIKE 'note%'"
        ),
        "0"
    );
    assert_eq!(
        c.psql(
            "deps_masked",
            "SELECT count(*), count(DISTINCT tableoid) FROM app.visits"
        ),
        "40|3"
    );
    // A rule on an inheritance parent reaches its children (its queries read their rows).
    assert_eq!(
        c.psql(
            "deps_masked",
            "SELECT count(*), count(*) FILTER (WHERE name ~ '[a-z]') FROM app.people"
        ),
        "4|0"
    );
}

#[test]
fn objects_of_pg_dump_test_kinds_match_pg_dump() {
    let c = cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE kinds OWNER owner");
    c.psql("postgres", "CREATE DATABASE kinds_copy OWNER cloner");
    load_sql(&c, "kinds", "owner", 1, KINDS);
    let (code, out) = clone(&c, "kinds", "kinds_copy", &[]);
    assert_eq!(code, 0, "{out}");
    let (source, target) = (c.pg_dump_schema("kinds"), c.pg_dump_schema("kinds_copy"));
    assert!(
        source == target,
        "pg_dump --schema-only differs:\n{}",
        first_differences(&source, &target)
    );
    // Materialized views are refreshed on the target, as a restore of pg_dump's output does.
    let tables = |db: &str| {
        rows(&c, db)
            .into_iter()
            .filter(|r| !r.contains("matview"))
            .collect::<Vec<_>>()
    };
    assert_eq!(tables("kinds"), tables("kinds_copy"));
}

#[test]
fn objects_privaci_cannot_create_are_refused_or_skipped_and_listed() {
    let c = cluster_with_roles(&["owner", "cloner", "admin"], &[]);
    c.psql("postgres", "ALTER ROLE admin SUPERUSER");
    c.psql("postgres", "CREATE DATABASE odd OWNER owner");
    c.psql("postgres", "CREATE DATABASE odd_copy OWNER cloner");
    c.psql("postgres", "CREATE DATABASE odd_admin OWNER cloner");
    load_sql(
        &c,
        "odd",
        "owner",
        1,
        "CREATE TABLE t (id integer PRIMARY KEY, body text, v integer);
         INSERT INTO t VALUES (1, 'a', -3), (2, 'b', 2);
         CREATE FUNCTION abs_cmp(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE
             AS $$ SELECT CASE WHEN abs($1) < abs($2) THEN -1 WHEN abs($1) > abs($2) THEN 1 ELSE 0 END $$;
         CREATE FUNCTION abs_lt(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT abs($1) < abs($2) $$;
         CREATE FUNCTION abs_eq(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT abs($1) = abs($2) $$;
         CREATE OPERATOR <| (FUNCTION = abs_lt, LEFTARG = integer, RIGHTARG = integer);
         CREATE OPERATOR =| (FUNCTION = abs_eq, LEFTARG = integer, RIGHTARG = integer);",
    );
    // Operator classes and families, and event triggers, only a superuser can create.
    c.psql(
        "odd",
        "CREATE OPERATOR FAMILY abs_ops USING btree;
         CREATE OPERATOR CLASS abs_int_ops FOR TYPE integer USING btree FAMILY abs_ops AS
             OPERATOR 1 <|, OPERATOR 3 =|, FUNCTION 1 abs_cmp(integer, integer);
         COMMENT ON OPERATOR CLASS abs_int_ops USING btree IS 'by magnitude';
         CREATE INDEX t_abs ON t (v abs_int_ops);
         CREATE FUNCTION note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
         CREATE EVENT TRIGGER note_ddl ON ddl_command_end EXECUTE FUNCTION note_ddl();
         CREATE TYPE int43;
         CREATE FUNCTION int43_in(cstring) RETURNS int43 AS 'int4in' LANGUAGE internal STRICT IMMUTABLE;
         CREATE FUNCTION int43_out(int43) RETURNS cstring AS 'int4out' LANGUAGE internal STRICT IMMUTABLE;
         CREATE TYPE int43 (internallength = 4, input = int43_in, output = int43_out, alignment = int4, passedbyvalue);
         CREATE TEXT SEARCH PARSER alt_prs (start = prsd_start, gettoken = prsd_nexttoken, end = prsd_end, lextypes = prsd_lextype);
         CREATE ACCESS METHOD gist2 TYPE INDEX HANDLER gisthandler;
         CREATE FOREIGN DATA WRAPPER dummy;
         CREATE CAST (timestamptz AS interval) WITH FUNCTION age(timestamptz) AS ASSIGNMENT;
         CREATE EXTENSION pg_stat_statements;",
    );
    let (code, out) = clone(&c, "odd", "odd_copy", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("operator class public.abs_int_ops (operator classes and families need a superuser, and the target role is not one)"),
        "{out}"
    );
    assert!(out.contains("operator family public.abs_ops"), "{out}");
    for what in [
        "event trigger note_ddl (event triggers need a superuser)",
        "base type public.int43",
        "function public.int43_in(cstring) (written in internal",
        "text search parser public.alt_prs",
        "access method gist2",
        "foreign-data wrapper dummy",
        "cast (timestamp with time zone AS interval) (a cast between built-in types needs a superuser",
        "extension pg_stat_statements (only a superuser can create it (it is not a trusted extension)",
    ] {
        assert!(out.contains(what), "{what}: {out}");
    }
    assert!(out.contains("--skip-unsupported"), "{out}");
    assert_eq!(
        c.psql(
            "odd_copy",
            "SELECT count(*) FROM pg_class WHERE relname = 't'"
        ),
        "0"
    );

    let audit = std::env::temp_dir().join(format!("privaci-odd-{}.jsonl", std::process::id()));
    let report = std::env::temp_dir().join(format!("privaci-odd-{}.json", std::process::id()));
    let (code, out) = clone(
        &c,
        "odd",
        "odd_copy",
        &[
            "--skip-unsupported",
            "--audit-log",
            audit.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    // The index needs the class left out: it fails by name, the rest is cloned.
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("skipped operator class public.abs_int_ops"),
        "{out}"
    );
    assert!(out.contains("creating index public.t_abs"), "{out}");
    // The server's message keeps the object it names (values alone are removed).
    assert!(
        out.contains(
            "operator class \"public.abs_int_ops\" does not exist for access method \"btree\""
        ),
        "{out}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["exit_code"], 1);
    assert!(doc["failures"][0]["message"]
        .as_str()
        .unwrap()
        .contains("creating index public.t_abs"));
    assert!(doc["notes"].as_array().unwrap().iter().any(|n| n
        .as_str()
        .unwrap()
        .contains("skipped operator class public.abs_int_ops")));
    assert_eq!(
        support::fixture_clone::audit_events(&audit, "object.skipped"),
        11
    );
    let _ = std::fs::remove_file(&audit);
    assert_eq!(c.psql("odd_copy", "SELECT count(*) FROM t"), "2");

    // A superuser target role creates the family and the class (and the index on it); the
    // event trigger is still left out, and said.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &conninfo(&c, c.port(), "owner", "odd"),
        "--target",
        &conninfo(&c, c.port(), "admin", "odd_admin"),
        "--quiet",
        "--skip-unsupported",
    ])
    .env("HOME", "/nonexistent");
    let (code, out) = output(cmd);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skipped event trigger note_ddl"), "{out}");
    assert!(!out.contains("abs_int_ops"), "{out}");
    assert!(!out.contains("pg_stat_statements"), "{out}");
    assert_eq!(
        c.psql(
            "odd_admin",
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ),
        "1"
    );
    assert_eq!(
        c.psql("odd_admin", "SELECT obj_description(oid, 'pg_opclass') FROM pg_opclass WHERE opcname = 'abs_int_ops'"),
        "by magnitude"
    );
    assert_eq!(
        c.psql("odd_admin", "SET enable_seqscan = off; SELECT string_agg(v::text, ',' ORDER BY v USING <|) FROM t WHERE v <| 5"),
        "2,-3"
    );
    assert!(c
        .psql(
            "odd_admin",
            "SELECT pg_get_indexdef('public.t_abs'::regclass)"
        )
        .contains("abs_int_ops"));
}

/// `--privileges`: grants (tables, columns, sequences, views, schemas, functions, types,
/// large objects), revoked PUBLIC defaults and default privileges are made again for the
/// roles the target has; those to a role it lacks are listed. Without the flag: none.
#[test]
fn privileges_are_recreated_for_roles_that_exist_on_the_target() {
    let source = cluster_with_roles(&["owner"], &[]);
    let target = cluster_with_roles(&["cloner"], &[]);
    for c in [&source, &target] {
        c.psql("postgres", "CREATE ROLE reader; CREATE ROLE writer");
    }
    source.psql("postgres", "CREATE ROLE ghost; GRANT reader TO owner");
    target.psql("postgres", "GRANT reader TO cloner");
    source.psql("postgres", "CREATE DATABASE priv OWNER owner");
    target.psql("postgres", "CREATE DATABASE priv_copy OWNER cloner");
    target.psql("postgres", "CREATE DATABASE bare_copy OWNER cloner");
    load_sql(
        &source,
        "priv",
        "owner",
        1,
        "CREATE SCHEMA priv;
         GRANT USAGE ON SCHEMA priv TO reader;
         CREATE TABLE priv.t (id int PRIMARY KEY, secret text, pub text);
         GRANT SELECT ON priv.t TO reader;
         GRANT INSERT, UPDATE ON priv.t TO writer WITH GRANT OPTION;
         GRANT SELECT (pub) ON priv.t TO ghost;
         GRANT UPDATE (pub) ON priv.t TO writer;
         CREATE SEQUENCE priv.s; GRANT USAGE ON SEQUENCE priv.s TO writer;
         CREATE FUNCTION priv.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         REVOKE EXECUTE ON FUNCTION priv.f() FROM PUBLIC; GRANT EXECUTE ON FUNCTION priv.f() TO reader;
         CREATE TYPE priv.mood AS ENUM ('a'); REVOKE USAGE ON TYPE priv.mood FROM PUBLIC;
         CREATE VIEW priv.v AS SELECT pub FROM priv.t; GRANT SELECT ON priv.v TO PUBLIC;
         ALTER DEFAULT PRIVILEGES IN SCHEMA priv GRANT SELECT ON TABLES TO reader;
         ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
         ALTER DEFAULT PRIVILEGES FOR ROLE reader GRANT SELECT ON TABLES TO writer;
         INSERT INTO priv.t VALUES (1, 's', 'p');
         SELECT lo_from_bytea(990001, 'x'); GRANT SELECT ON LARGE OBJECT 990001 TO reader;",
    );
    let run = |db: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
        cmd.args([
            "clone",
            "--source",
            &conninfo(&source, source.port(), "owner", "priv"),
            "--target",
            &conninfo(&target, target.port(), "cloner", db),
            "--quiet",
        ])
        .args(extra)
        .env("HOME", "/nonexistent");
        output(cmd)
    };
    let (code, out) = run("priv_copy", &["--privileges"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 grant(s) to role ghost left out: no such role on the target"),
        "{out}"
    );
    // pg_dump with privileges: the same but for the owner's name and the missing role.
    let dump = |c: &Cluster, db: &str, me: &str| {
        c.pg_dump(
            db,
            &["--schema-only", "--no-owner", "--exclude-schema=_privaci"],
        )
        .lines()
        .filter(|l| !l.contains("ghost"))
        .map(|l| {
            l.replace(&format!(" {me} "), " ROLE ")
                .replace(&format!(" {me};"), " ROLE;")
        })
        .collect::<Vec<_>>()
        .join("\n")
    };
    let (a, b) = (
        dump(&source, "priv", "owner"),
        dump(&target, "priv_copy", "cloner"),
    );
    assert!(a == b, "{}", first_differences(&a, &b));
    assert!(
        a.contains("GRANT UPDATE(pub) ON TABLE priv.t TO writer;"),
        "{a}"
    );
    assert!(
        a.contains("ALTER DEFAULT PRIVILEGES FOR ROLE reader GRANT SELECT ON TABLES  TO writer;"),
        "{a}"
    );
    assert_eq!(
        target.psql(
            "priv_copy",
            "SELECT lomacl::text FROM pg_largeobject_metadata"
        ),
        "{cloner=rw/cloner,reader=r/cloner}"
    );

    // Without the flag: no grant at all, the target role owns everything.
    let (code, out) = run("bare_copy", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        target.psql("bare_copy", "SELECT count(*) FROM pg_class WHERE relacl IS NOT NULL AND relnamespace = 'priv'::regnamespace"),
        "0"
    );
    assert_eq!(
        target.psql("bare_copy", "SELECT count(*) FROM pg_default_acl"),
        "0"
    );
}

/// A large object the source role may not read is refused at pre-flight, before anything is
/// written; `--no-large-objects` clones without large objects.
#[test]
fn unreadable_large_objects_are_refused_at_pre_flight() {
    let c = cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE lo OWNER owner");
    c.psql("postgres", "CREATE DATABASE lo_copy OWNER cloner");
    load_sql(
        &c,
        "lo",
        "owner",
        1,
        "CREATE TABLE t (id int); SELECT lo_from_bytea(4001, 'mine');",
    );
    c.psql("lo", "SELECT lo_from_bytea(4002, 'not for owner')");
    // --report: the outcome as JSON however the run ends (here: refused, then a success).
    let report = std::env::temp_dir().join(format!("privaci-report-{}.json", std::process::id()));
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
    };
    let (code, out) = clone(&c, "lo", "lo_copy", &["--report", report.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("may not read 1 large object(s) (4002)"),
        "{out}"
    );
    assert!(!out.contains("not for owner"), "{out}");
    assert_eq!(
        c.psql(
            "lo_copy",
            "SELECT count(*) FROM pg_class WHERE relname = 't'"
        ),
        "0"
    );
    let doc = read();
    assert_eq!(doc["status"], "refused");
    assert_eq!(doc["exit_code"], 2);
    assert!(doc["refusals"][0].as_str().unwrap().contains("(4002)"));

    load_sql(
        &c,
        "lo",
        "owner",
        1,
        "INSERT INTO t SELECT generate_series(1, 25);",
    );
    let (code, out) = clone(
        &c,
        "lo",
        "lo_copy",
        &["--no-large-objects", "--report", report.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        c.psql("lo_copy", "SELECT count(*) FROM pg_largeobject_metadata"),
        "0"
    );
    let doc = read();
    let _ = std::fs::remove_file(&report);
    assert_eq!(doc["format"], 1);
    assert_eq!(doc["status"], "success");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["totals"]["units"], 1);
    assert_eq!(doc["totals"]["rows"], 25);
    assert_eq!(doc["totals"]["failures"], 0);
    assert_eq!(doc["units"][0]["unit"], "public.t");
    assert_eq!(doc["units"][0]["status"], "copied");
    assert_eq!(doc["units"][0]["rows"], 25);
    assert!(doc["units"][0]["bytes"].as_u64().unwrap() > 0);
    assert!(doc["phases"].as_array().unwrap().len() >= 3);
    // Round trips are counted per phase and server: the catalog is read from the source,
    // the table is created and loaded on the target.
    let trips = |server: &str| -> Vec<u64> {
        doc["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[format!("{server}_round_trips")].as_u64().unwrap())
            .collect()
    };
    assert!(trips("source")[0] > 5, "{:?}", trips("source"));
    assert!(
        trips("target")[1] > 0 && trips("target")[2] > 0,
        "{:?}",
        trips("target")
    );
    assert!(doc["privaci"].as_str().unwrap().contains("(commit "));
}
