//! A clone against a server doing what production servers do neither loses nor duplicates a
//! row: DDL on the source mid-run waits for the run's locks, row security is refused instead
//! of filtering, two runs on one target are refused, split tables resume on their recorded
//! chunks, restarts and signals end in a report and a `--resume` that finishes exactly.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fixture_clone::{self, audit_events, finish, output, spawn};
use support::Cluster;

const KEY: &str = fixture_clone::KEY;

fn cluster_with(settings: &[&str]) -> Cluster {
    let c = fixture_clone::cluster_with_roles(&["owner", "cloner", "reader"], settings);
    c.psql("postgres", "CREATE DATABASE src OWNER owner");
    c
}

fn target_db(c: &Cluster, db: &str) {
    c.psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    c.psql("postgres", &format!("CREATE DATABASE {db} OWNER cloner"));
}

fn conninfo(c: &Cluster, user: &str, db: &str) -> String {
    fixture_clone::conninfo(c, c.port(), user, db)
}

fn clone_cmd(source: (&Cluster, &str), target: (&Cluster, &str), extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &conninfo(source.0, source.1, "src"),
        "--target",
        &conninfo(target.0, "cloner", target.1),
        "--quiet",
    ])
    .args(extra)
    .env("PRIVACI_MASK_KEY", KEY)
    .env("HOME", "/nonexistent");
    cmd
}

/// Waits until `f` holds (polling), or panics with `what`.
fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A table's rows as count and an order-independent checksum.
fn rows(c: &Cluster, db: &str, table: &str) -> String {
    c.psql(
        db,
        &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {table} x"),
    )
}

/// Sessions on `db` waiting for a lock, running a statement that starts with `prefix`.
fn waiting(c: &Cluster, db: &str, prefix: &str) -> bool {
    c.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND wait_event_type = 'Lock' AND query LIKE '{prefix}%'"),
    ) == "1"
}

/// The source's `big` table is copied first (largest first, one worker); the target's copy of
/// it is held up by a lock on the target, so the run is provably in flight meanwhile.
fn held_up_fixture(c: &Cluster) {
    c.psql(
        "src",
        "SET ROLE owner;
        CREATE TABLE big (id int PRIMARY KEY, v text);
        INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
        CREATE TABLE victim (id int PRIMARY KEY, v int);
        INSERT INTO victim SELECT g, g FROM generate_series(1, 100) g;
        CREATE TABLE rewritten (id int PRIMARY KEY, v int);
        INSERT INTO rewritten SELECT g, g FROM generate_series(1, 100) g;
        ANALYZE",
    );
}

fn existing_target(c: &Cluster, db: &str) {
    target_db(c, db);
    c.psql(
        db,
        "SET ROLE cloner;
        CREATE TABLE big (id int PRIMARY KEY, v text);
        CREATE TABLE victim (id int PRIMARY KEY, v int);
        CREATE TABLE rewritten (id int PRIMARY KEY, v int)",
    );
}

/// A one-worker clone of `src` into the existing schema of `dst`, started and waited for
/// until its first unit (`big`, held up by a lock on the target) has begun.
fn held_up_clone(c: &Cluster, audit: &std::path::Path, extra: &[&str]) -> Child {
    let args = [
        &[
            "--schema",
            "existing",
            "--jobs",
            "1",
            "--audit-log",
            audit.to_str().unwrap(),
        ][..],
        extra,
    ]
    .concat();
    let child = spawn(clone_cmd((c, "owner"), (c, "dst"), &args));
    wait_for("the first unit to start", 30, || {
        audit_events(audit, "table.start") >= 1
    });
    child
}

/// Holds a lock on `table` in `db` for `secs` seconds, in the background.
fn hold_lock(c: &Cluster, db: &str, table: &str, mode: &str, secs: u32) -> Child {
    let child = c
        .psql_command(
            db,
            &format!("BEGIN; LOCK TABLE {table} IN {mode} MODE; SELECT pg_sleep({secs}); COMMIT"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the lock to be taken", 20, || {
        c.psql(
            db,
            &format!("SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND pid <> pg_backend_pid() AND granted"),
        ) != "0"
    });
    child
}

#[test]
fn ddl_on_the_source_waits_for_the_run_and_a_lock_it_cannot_get_is_named() {
    let c = cluster_with(&[]);
    held_up_fixture(&c);
    let before = (rows(&c, "src", "victim"), rows(&c, "src", "rewritten"));
    existing_target(&c, "dst");
    let dir = c.socket_dir().parent().unwrap().to_path_buf();
    let audit = dir.join("ddl.jsonl");

    // The target holds up the copy of `big` (the first unit) for a few seconds (SHARE: reads
    // go on, loads wait).
    let hold = hold_lock(&c, "dst", "big", "SHARE", 4);
    let run = held_up_clone(&c, &audit, &[]);
    // TRUNCATE and a rewriting ALTER TABLE of tables not yet copied, committed mid-run.
    let truncate = c
        .psql_command("src", "TRUNCATE victim")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let alter = c
        .psql_command("src", "ALTER TABLE rewritten ALTER COLUMN v TYPE bigint")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("TRUNCATE to wait for the run's lock", 20, || {
        waiting(&c, "src", "TRUNCATE")
    });
    wait_for("ALTER TABLE to wait for the run's lock", 20, || {
        waiting(&c, "src", "ALTER TABLE")
    });
    let (code, out) = finish(run);
    assert_eq!(code, 0, "{out}");
    hold.wait_with_output().unwrap();
    // The target has every row the snapshot saw; the DDL went through after the run.
    assert_eq!(rows(&c, "dst", "victim"), before.0);
    assert_eq!(rows(&c, "dst", "rewritten"), before.1);
    assert!(truncate.wait_with_output().unwrap().status.success());
    assert!(alter.wait_with_output().unwrap().status.success());
    assert_eq!(c.psql("src", "SELECT count(*) FROM victim"), "0");
    // Workers could not read those tables without queueing behind the DDL: the coordinator,
    // which holds their locks, copied them.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains("\"event\":\"table.deferred\",\"table\":\"public.victim\""),
        "{log}"
    );

    // A lock the run cannot get within --lock-wait-timeout: a clear error naming the table,
    // and nothing written to the target.
    target_db(&c, "dst2");
    let hold = hold_lock(&c, "src", "victim", "ACCESS EXCLUSIVE", 6);
    let started = Instant::now();
    let (code, out) = output(clone_cmd(
        (&c, "owner"),
        (&c, "dst2"),
        &["--lock-wait-timeout", "1s"],
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("could not lock source table public.victim within 1 s")
            && out.contains("--lock-wait-timeout"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up after the timeout"
    );
    assert_eq!(
        c.psql(
            "dst2",
            "SELECT count(*) FROM pg_class WHERE relname = 'victim'"
        ),
        "0"
    );
    drop(hold);
}

#[test]
fn row_security_that_would_hide_rows_is_refused_and_owners_copy_everything() {
    let c = cluster_with(&[]);
    c.psql("src", "SET ROLE owner;
        CREATE TABLE notes (id int PRIMARY KEY, author text, body text);
        INSERT INTO notes SELECT g, CASE WHEN g % 2 = 0 THEN 'reader' ELSE 'someone' END, 'note ' || g FROM generate_series(1, 100) g;
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own_notes ON notes FOR SELECT USING (author = current_user);
        GRANT SELECT ON notes TO reader");
    let full = rows(&c, "src", "notes");

    // A role the policy applies to (it would see 50 of 100 rows): refused at pre-flight.
    target_db(&c, "dst");
    let (code, out) = output(clone_cmd((&c, "reader"), (&c, "dst"), &[]));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("row-level security")
            && out.contains("public.notes")
            && out.contains("BYPASSRLS"),
        "{out}"
    );
    assert_eq!(
        c.psql(
            "dst",
            "SELECT count(*) FROM pg_class WHERE relname = 'notes'"
        ),
        "0"
    );

    // The owner is not subject to its table's policies: every row.
    let (code, out) = output(clone_cmd((&c, "owner"), (&c, "dst"), &[]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(rows(&c, "dst", "notes"), full);

    // ... unless the table forces row security on its owner too.
    c.psql("src", "ALTER TABLE notes FORCE ROW LEVEL SECURITY");
    target_db(&c, "dst");
    let (code, out) = output(clone_cmd((&c, "owner"), (&c, "dst"), &[]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("public.notes"), "{out}");

    // A role with BYPASSRLS reads everything.
    c.psql("postgres", "ALTER ROLE reader BYPASSRLS");
    let (code, out) = output(clone_cmd((&c, "reader"), (&c, "dst"), &[]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(rows(&c, "dst", "notes"), full);
}

#[test]
fn a_second_run_on_one_target_is_refused_and_names_the_first() {
    let c = cluster_with(&[]);
    held_up_fixture(&c);
    existing_target(&c, "dst");
    let audit = c.socket_dir().parent().unwrap().join("first.jsonl");
    let hold = hold_lock(&c, "dst", "big", "SHARE", 10);
    let first = held_up_clone(&c, &audit, &["--keep-state"]);
    for extra in [
        &["--schema", "existing"][..],
        &["--schema", "existing", "--resume"][..],
    ] {
        let (code, out) = output(clone_cmd((&c, "owner"), (&c, "dst"), extra));
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("another privaci run is working on this target")
                && out.contains("started at")
                && out.contains(&format!("(process {})", first.id())),
            "{out}"
        );
    }
    let (code, out) = finish(first);
    assert_eq!(code, 0, "{out}");
    hold.wait_with_output().unwrap();
    for t in ["big", "victim", "rewritten"] {
        assert_eq!(rows(&c, "dst", t), rows(&c, "src", t), "{t}");
    }

    // Two fresh runs started together: one clones, the other is refused, nothing doubles.
    target_db(&c, "dst3");
    let a = spawn(clone_cmd((&c, "owner"), (&c, "dst3"), &[]));
    let b = spawn(clone_cmd((&c, "owner"), (&c, "dst3"), &[]));
    let (ra, rb) = (finish(a), finish(b));
    let mut codes = [ra.0, rb.0];
    codes.sort();
    assert_eq!(codes, [0, 2], "{}\n{}", ra.1, rb.1);
    for t in ["big", "victim", "rewritten"] {
        assert_eq!(rows(&c, "dst3", t), rows(&c, "src", t), "{t}");
    }
}

#[test]
fn a_split_table_resumes_on_its_recorded_chunks_after_the_source_changed() {
    let c = cluster_with(&[]);
    c.psql("src", "SET ROLE owner;
        CREATE TABLE big (id int PRIMARY KEY, v text);
        INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 100000) g;
        ANALYZE");
    target_db(&c, "dst");
    let audit = c.socket_dir().parent().unwrap().join("split.jsonl");
    let split = ["--split-tables-larger-than", "256kB", "--jobs", "1"];
    let mut child = clone_cmd(
        (&c, "owner"),
        (&c, "dst"),
        &[&split[..], &["--audit-log", audit.to_str().unwrap()]].concat(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for("some chunks to commit", 60, || {
        audit_events(&audit, "table.end") >= 3
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let done: u32 = c
        .psql("dst", "SELECT count(*) FROM _privaci.table_checkpoints")
        .parse()
        .unwrap();
    let chunks: u32 = c
        .psql("dst", "SELECT count(*) FROM _privaci.units")
        .parse()
        .unwrap();
    assert!(
        done >= 3 && done < chunks,
        "{done} of {chunks} chunks committed"
    );

    // The source grows and is vacuumed: relpages (which chunk bounds were planned from)
    // moves. (Rows too wide for the pages' leftover space: they go to new pages at the end.)
    c.psql(
        "src",
        "INSERT INTO big SELECT g, repeat(md5(g::text), 6) FROM generate_series(100001, 130000) g",
    );
    c.psql("src", "VACUUM ANALYZE big");

    // Another split size would cut the table differently: refused.
    let (code, out) = output(clone_cmd(
        (&c, "owner"),
        (&c, "dst"),
        &["--resume", "--split-tables-larger-than", "1MB"],
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--split-tables-larger-than 262144"), "{out}");

    let (code, out) = output(clone_cmd(
        (&c, "owner"),
        (&c, "dst"),
        &[&split[..], &["--resume"]].concat(),
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resumed"), "{out}");
    assert_eq!(rows(&c, "dst", "big"), rows(&c, "src", "big"));

    // Rows deleted from a copied chunk and new rows written into the freed space: the chunks
    // already copied no longer hold what they held, so the table is copied again whole.
    target_db(&c, "dst");
    let audit2 = c.socket_dir().parent().unwrap().join("split2.jsonl");
    let mut child = clone_cmd(
        (&c, "owner"),
        (&c, "dst"),
        &[&split[..], &["--audit-log", audit2.to_str().unwrap()]].concat(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for("some chunks to commit", 60, || {
        audit_events(&audit2, "table.end") >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    c.psql("src", "DELETE FROM big WHERE ctid < '(3,0)'::tid");
    c.psql("src", "VACUUM big");
    c.psql(
        "src",
        "INSERT INTO big SELECT g, 'refill' FROM generate_series(200001, 200150) g",
    );
    let (code, out) = output(clone_cmd(
        (&c, "owner"),
        (&c, "dst"),
        &[&split[..], &["--resume"]].concat(),
    ));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("public.big copied again: rows were added to, removed from or moved"),
        "{out}"
    );
    assert_eq!(rows(&c, "dst", "big"), rows(&c, "src", "big"));
}

#[test]
fn jobs_beyond_the_servers_connection_slots_are_capped() {
    let c = cluster_with(&["max_connections = 12"]);
    c.psql("src", "SET ROLE owner;
        DO $$ BEGIN FOR i IN 1..30 LOOP
          EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
          EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 500) g', i);
        END LOOP; END $$");
    target_db(&c, "dst");
    let (code, out) = output(clone_cmd((&c, "owner"), (&c, "dst"), &["--jobs", "150"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("connection slots") && out.contains("worker(s)"),
        "{out}"
    );
    assert!(!out.contains("too many clients"), "{out}");
    for i in [1, 15, 30] {
        assert_eq!(
            rows(&c, "dst", &format!("t{i}")),
            rows(&c, "src", &format!("t{i}"))
        );
    }
}
