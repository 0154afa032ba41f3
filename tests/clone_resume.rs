//! Signals, lost target tables, failed chunks and restarts: each ends with the report and the
//! audit `run.end`, and `--resume` then gives exactly the target an uninterrupted run makes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::fault::{Cut, FaultProxy};
use support::fixture_clone::{
    self, audit_events, clone_cmd, fingerprint, finish_async, run, spawn,
};
use support::Cluster;

async fn wait_for_events(path: &std::path::Path, event: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while audit_events(path, event) < n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} {event}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_a_second_signal_at_once_and_resume_finishes() {
    let c = fixture_clone::cluster(&["reference", "faulted"]);
    let reference = fixture_clone::reference(&c).await;

    // One signal: a clean stop with the report; then two (the second exits at once). Either
    // way, what committed is kept and --resume finishes exactly.
    for (round, signals) in [&["-TERM"][..], &["-TERM", "-INT"][..]]
        .into_iter()
        .enumerate()
    {
        c.psql("postgres", "DROP DATABASE faulted");
        c.psql("postgres", "CREATE DATABASE faulted OWNER cloner");
        let (child, audit) =
            fixture_clone::clone_until(&c, "faulted", &format!("term{round}.jsonl"), 3).await;
        for s in signals {
            signal(child.id(), s);
        }
        let (code, text) = finish_async(child).await;
        assert_eq!(code, 1, "{text}");
        if signals.len() == 1 {
            assert!(
                text.contains("terminated (SIGTERM)")
                    && text.contains("--resume")
                    && text.contains("total:"),
                "the report is printed: {text}"
            );
            assert!(std::fs::read_to_string(&audit)
                .unwrap()
                .contains("\"event\":\"run.end\",\"status\":\"interrupted\""));
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(
                c.psql(
                    "postgres",
                    "SELECT count(*) FROM pg_stat_activity WHERE usename IN ('owner', 'cloner')"
                ),
                "0",
                "no session of the run is left"
            );
        }
        let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "faulted", &["--resume"])).await;
        assert_eq!(code, 0, "{out}");
        assert_eq!(fingerprint(&c, "faulted"), reference);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_redoes_tables_lost_on_the_target_and_starts_when_nothing_committed() {
    let c = fixture_clone::cluster(&["reference", "faulted", "fresh"]);
    let reference = fixture_clone::reference(&c).await;

    let (mut child, _) = fixture_clone::clone_until(&c, "faulted", "killed.jsonl", 8).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let done = c.psql(
        "faulted",
        "SELECT table_name FROM _privaci.table_checkpoints WHERE table_name NOT LIKE '%#%' ORDER BY finished_at",
    );
    let done: Vec<&str> = done.lines().collect();
    assert!(done.len() >= 2, "{done:?}");
    // One completed table is dropped (with what depends on it), another loses rows.
    c.psql("faulted", &format!("DROP TABLE {} CASCADE", done[0]));
    c.psql(
        "faulted",
        &format!("SET session_replication_role = replica; DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} LIMIT 3)", t = done[1]),
    );
    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "faulted", &["--resume"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "{} copied again: it is missing on the target",
            done[0]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} copied again: the target holds", done[1])),
        "{out}"
    );
    assert_eq!(fingerprint(&c, "faulted"), reference);

    // --resume where no earlier run committed anything: a new run, said so.
    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "fresh", &["--resume"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("starting a new run"), "{out}");
    assert_eq!(fingerprint(&c, "fresh"), reference);
}

fn plain_cluster() -> Cluster {
    fixture_clone::cluster_with_roles(&["owner", "cloner"], &[])
}

fn docs_clone(c: &Cluster, source_port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &fixture_clone::conninfo(c, source_port, "owner", "docs"),
        "--target",
        &fixture_clone::conninfo(c, c.port(), "cloner", "dst"),
        "--quiet",
        "--split-tables-larger-than",
        "256kB",
    ])
    .args(extra)
    .env("HOME", "/nonexistent");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chunk_leaves_its_tables_triggers_off_until_resume_loads_it() {
    let c = plain_cluster();
    c.psql("postgres", "CREATE DATABASE docs OWNER owner");
    c.psql("postgres", "CREATE DATABASE dst OWNER cloner");
    // Small rows, then a few big ones at the end of the table: the last chunk carries
    // megabytes, the others kilobytes.
    c.psql("docs", "SET ROLE owner;
        CREATE TABLE docs (id int PRIMARY KEY, body text);
        ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
        INSERT INTO docs SELECT g, md5(g::text) FROM generate_series(1, 6000) g;
        INSERT INTO docs SELECT 100000 + g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 6000) i) FROM generate_series(1, 12) g;
        CREATE FUNCTION docs_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := 'TRIGGERED'; RETURN NEW; END $$;
        CREATE TRIGGER docs_touch BEFORE INSERT ON docs FOR EACH ROW EXECUTE FUNCTION docs_touch();
        ANALYZE");
    let source_rows = c.psql(
        "docs",
        "SELECT count(*) || ':' || md5(string_agg(x::text, '|' ORDER BY x::text)) FROM docs x",
    );
    // Every source connection but the coordinator's is cut past 1 MB: the big chunk fails
    // on each try, the small ones go through.
    let proxy = FaultProxy::start(c.port(), Cut::ServerToClient, 1_000_000, None, 1).await;
    let (code, out) = run(docs_clone(&c, proxy.port, &["--jobs", "2"])).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("public.docs#"),
        "the failed chunk is named: {out}"
    );
    let triggers =
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'docs'::regclass AND NOT tgisinternal";
    assert_eq!(
        c.psql("dst", triggers),
        "0",
        "no trigger on a table that did not load completely"
    );
    drop(proxy);

    let (code, out) = run(docs_clone(&c, c.port(), &["--resume"])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        c.psql(
            "dst",
            "SELECT count(*) || ':' || md5(string_agg(x::text, '|' ORDER BY x::text)) FROM docs x"
        ),
        source_rows,
        "no row went through a trigger"
    );
    assert_eq!(c.psql("dst", triggers), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_restart_mid_run_is_survived() {
    let src = fixture_clone::cluster(&[]);
    let dst = plain_cluster();
    for db in ["reference", "restarted"] {
        dst.psql("postgres", &format!("CREATE DATABASE {db} OWNER cloner"));
    }
    let cmd = |db: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
        cmd.args([
            "clone",
            "--source",
            &fixture_clone::conninfo(&src, src.port(), "owner", "mhd"),
            "--target",
            &fixture_clone::conninfo(&dst, dst.port(), "cloner", db),
            "--quiet",
            "--jobs",
            "1",
        ])
        .args(extra)
        .env("HOME", "/nonexistent");
        cmd
    };
    let (code, out) = run(cmd("reference", &[])).await;
    assert_eq!(code, 0, "{out}");
    let reference = fingerprint(&dst, "reference");

    let audit = dst.socket_dir().parent().unwrap().join("restart.jsonl");
    let child = spawn(cmd("restarted", &["--audit-log", audit.to_str().unwrap()]));
    wait_for_events(&audit, "table.end", 3).await;
    dst.restart();
    let (code, text) = finish_async(child).await;
    assert_eq!(code, 0, "{text}");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains("\"event\":\"run.end\",\"status\":\"done\""),
        "{log}"
    );
    assert_eq!(fingerprint(&dst, "restarted"), reference);
}

/// Large objects: a run killed (SIGKILL) while copying them leaves each either committed
/// whole with its run-state record or not at all; `--resume` copies only the others, and
/// every object ends with the source's OID, contents and comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_among_large_objects_resumes_with_each_exactly_once() {
    let c = fixture_clone::cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE blobs OWNER owner");
    c.psql("postgres", "CREATE DATABASE blobs_copy OWNER cloner");
    c.psql(
        "blobs",
        "SET ROLE owner; CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);
         SELECT count(lo_from_bytea(500000 + g, convert_to(repeat(md5(g::text), 40000), 'UTF8'))) FROM generate_series(1, 80) g;
         COMMENT ON LARGE OBJECT 500007 IS 'seventh';",
    );
    let source = fixture_clone::conninfo(&c, c.port(), "owner", "blobs");
    let target = fixture_clone::conninfo(&c, c.port(), "cloner", "blobs_copy");
    let cmd = |resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
        cmd.args(["clone", "--source", &source, "--target", &target, "--quiet"])
            .env("HOME", "/nonexistent");
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let child = spawn(cmd(false));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = c.psql("blobs_copy", "SELECT count(*) FROM pg_tables WHERE schemaname = '_privaci' AND tablename = 'steps_done'");
        if done == "1"
            && c.psql(
                "blobs_copy",
                "SELECT count(*) >= 3 FROM _privaci.steps_done WHERE step LIKE 'large object %'",
            ) == "t"
        {
            break;
        }
        assert!(Instant::now() < deadline, "no large object was copied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(child.id(), "-KILL");
    let (code, _) = finish_async(child).await;
    assert_ne!(code, 0);
    let (code, out) = run(cmd(true)).await;
    assert_eq!(code, 0, "{out}");
    let blobs = "SELECT count(*), md5(string_agg(oid::text || ':' || md5(lo_get(oid)) || ':' || coalesce(obj_description(oid, 'pg_largeobject'), ''), ',' ORDER BY oid)) FROM pg_largeobject_metadata";
    assert_eq!(c.psql("blobs_copy", blobs), c.psql("blobs", blobs));
    assert!(c.psql("blobs_copy", blobs).starts_with("80|"));
}

/// Thousands of tables: pre-data goes in batches of transactions (one transaction would
/// overflow a default lock table: about four locks a table). A run killed (SIGKILL) between
/// batches resumes where it stopped: pg_dump of both sides identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_tables_are_created_in_batches_and_a_run_killed_among_them_resumes() {
    let source =
        fixture_clone::cluster_with_roles(&["owner"], &["max_locks_per_transaction = 1000"]);
    let target = fixture_clone::cluster_with_roles(&["cloner"], &[]);
    source.psql("postgres", "CREATE DATABASE many OWNER owner");
    target.psql("postgres", "CREATE DATABASE many_copy OWNER cloner");
    let mut sql = String::from("SET ROLE owner;\n");
    for i in 0..1500 {
        sql += &format!("CREATE TABLE t{i} (id int, note text);\n");
    }
    sql += "INSERT INTO t7 VALUES (1, 'seven');";
    source.psql("many", &sql);
    let src = fixture_clone::conninfo(&source, source.port(), "owner", "many");
    let dst = fixture_clone::conninfo(&target, target.port(), "cloner", "many_copy");
    let cmd = |resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
        cmd.args(["clone", "--source", &src, "--target", &dst, "--quiet"])
            .env("HOME", "/nonexistent");
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let child = spawn(cmd(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = target.psql("many_copy", "SELECT count(*) FROM pg_tables WHERE schemaname = '_privaci' AND tablename = 'steps_done'");
        if state == "1"
            && target.psql(
                "many_copy",
                "SELECT count(*) FILTER (WHERE step LIKE 'pre-data: %') >= 250 FROM _privaci.steps_done",
            ) == "t"
        {
            break;
        }
        assert!(Instant::now() < deadline, "no pre-data batch committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(child.id(), "-KILL");
    let (code, _) = finish_async(child).await;
    assert_ne!(code, 0);
    let made = target.psql(
        "many_copy",
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert!(
        made.parse::<u32>().unwrap() < 1500,
        "pre-data had finished: {made}"
    );
    let (code, out) = run(cmd(true)).await;
    assert_eq!(code, 0, "{out}");
    let copy = target.pg_dump(
        "many_copy",
        &[
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-schema=_privaci",
        ],
    );
    assert_eq!(source.pg_dump_schema("many"), copy);
    assert_eq!(target.psql("many_copy", "SELECT note FROM t7"), "seven");
}
