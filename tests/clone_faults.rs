//! A clone that loses connections, or is killed, still ends with exactly the target an
//! uninterrupted run makes: retries and `--resume` neither lose nor duplicate a row.

mod support;

use std::process::Command;
use std::time::Duration;

use support::fault::{Cut, FaultProxy};
use support::fixture_clone::{self, clone_cmd, fingerprint, run};
use support::Cluster;

fn cluster() -> Cluster {
    fixture_clone::cluster(&["reference", "faulted"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_and_resume_finishes_the_rest() {
    let c = cluster();
    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "reference", &[])).await;
    assert_eq!(code, 0, "{out}");
    let reference = fingerprint(&c, "reference");

    // Source connections cut mid-COPY three times: retried, and the result is the same.
    let proxy = FaultProxy::start(c.port(), Cut::ServerToClient, 120_000, Some(3), 1).await;
    let audit = c.socket_dir().parent().unwrap().join("faulted.jsonl");
    let (code, out) = run(clone_cmd(
        &c,
        proxy.port,
        c.port(),
        "faulted",
        &["--audit-log", audit.to_str().unwrap()],
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(proxy.cuts(), 3, "the proxy cut three copies");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.matches("\"table.retry\"").count(), 3, "{log}");
    assert_eq!(fingerprint(&c, "faulted"), reference);
    drop(proxy);

    // Target connections cut mid-COPY IN, likewise.
    c.psql("postgres", "DROP DATABASE faulted");
    c.psql("postgres", "CREATE DATABASE faulted OWNER cloner");
    let proxy = FaultProxy::start(c.port(), Cut::ClientToServer, 100_000, Some(3), 1).await;
    let (code, out) = run(clone_cmd(&c, c.port(), proxy.port, "faulted", &[])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(proxy.cuts(), 3);
    assert_eq!(fingerprint(&c, "faulted"), reference);
    drop(proxy);

    // A source that keeps dropping big copies: those units fail after three retries, the
    // run goes on with the others and exits 1; --resume (with the network fixed) finishes it.
    c.psql("postgres", "DROP DATABASE faulted");
    c.psql("postgres", "CREATE DATABASE faulted OWNER cloner");
    let proxy = FaultProxy::start(c.port(), Cut::ServerToClient, 300_000, None, 1).await;
    let (code, out) = run(clone_cmd(&c, proxy.port, c.port(), "faulted", &[])).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("failure(s)") && out.contains("--resume"),
        "{out}"
    );
    assert!(out.contains("public.patients"), "{out}");
    drop(proxy);
    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "faulted", &["--resume"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("resumed"),
        "units done by the first run are skipped: {out}"
    );
    assert_eq!(fingerprint(&c, "faulted"), reference);

    // Resuming with another key is refused.
    c.psql("postgres", "DROP DATABASE faulted");
    c.psql("postgres", "CREATE DATABASE faulted OWNER cloner");
    let proxy = FaultProxy::start(c.port(), Cut::ServerToClient, 300_000, None, 1).await;
    let (code, _) = run(clone_cmd(&c, proxy.port, c.port(), "faulted", &[])).await;
    assert_eq!(code, 1);
    drop(proxy);
    let mut other_key = clone_cmd(&c, c.port(), c.port(), "faulted", &["--resume"]);
    other_key.env("PRIVACI_MASK_KEY", "a different key of enough length");
    let (code, out) = run(other_key).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("different masking key"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_gives_the_same_target() {
    let c = cluster();
    let reference = fixture_clone::reference(&c).await;

    // Kill it once a few units have committed.
    let (mut child, _) = fixture_clone::clone_until(&c, "faulted", "killed.jsonl", 5).await;
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let committed = c
        .psql("faulted", "SELECT count(*) FROM _privaci.table_checkpoints")
        .parse::<u32>()
        .unwrap();
    assert!(
        (5..40).contains(&committed),
        "killed mid-run: {committed} units had committed"
    );

    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "faulted", &["--resume"])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(fingerprint(&c, "faulted"), reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_and_resume_finishes() {
    let c = cluster();
    let reference = fixture_clone::reference(&c).await;

    let (child, audit) = fixture_clone::clone_until(&c, "faulted", "interrupted.jsonl", 3).await;
    // SIGINT, as Ctrl-C sends.
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(std::fs::read_to_string(&audit)
        .unwrap()
        .contains("\"status\":\"interrupted\""));
    // No connection of the run is left behind on the servers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE usename IN ('owner', 'cloner')"
        ),
        "0"
    );

    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "faulted", &["--resume"])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(fingerprint(&c, "faulted"), reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_target_rejects_is_named_by_key_and_column_never_by_value() {
    let c = Cluster::builder()
        .hba("host all owner 127.0.0.1/32 scram-sha-256")
        .hba("host all cloner 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("owner", Some("owner-secret"), false);
    c.create_role("cloner", Some("cloner-secret"), false);
    c.psql("postgres", "CREATE DATABASE src OWNER owner");
    c.psql("postgres", "CREATE DATABASE dst OWNER cloner");
    c.psql("src", "SET ROLE owner; CREATE TABLE people (id int PRIMARY KEY, secret text, age int); INSERT INTO people SELECT g, 'secret-' || g, 20 + g % 50 FROM generate_series(1, 100) g; UPDATE people SET age = 150 WHERE id = 42; CREATE TABLE pets (id int PRIMARY KEY, name text); INSERT INTO pets VALUES (1, 'Rex');");
    // The target's schema (made by "migrations") rejects ages of 100 and more.
    c.psql("dst", "SET ROLE cloner; CREATE TABLE people (id int PRIMARY KEY, secret text, age int CHECK (age < 100)); CREATE TABLE pets (id int PRIMARY KEY, name text);");
    let plain = |db: &str, user: &str| {
        format!(
            "host=127.0.0.1 port={} user={user} password={user}-secret dbname={db}",
            c.port()
        )
    };
    let audit = c.socket_dir().parent().unwrap().join("rejected.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &plain("src", "owner"),
        "--target",
        &plain("dst", "cloner"),
        "--schema",
        "existing",
        "--audit-log",
        audit.to_str().unwrap(),
    ])
    .env("HOME", "/nonexistent");
    let (code, out) = run(cmd).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("public.people: (row with primary key id=42)"),
        "{out}"
    );
    assert!(
        out.contains("violates check constraint") && out.contains("constraint people_age_check"),
        "{out}"
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(log.contains("\"primary_key\":\"id=42\""), "{log}");
    // The age 150 as a value of its own (timings in the log hold digits like "781502").
    let has_value = |text: &str, v: &str| {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|token| token == v)
    };
    for text in [&out, &log] {
        assert!(
            !text.contains("secret-42") && !has_value(text, "150"),
            "a value leaked: {text}"
        );
    }
    // The other table was copied; the failed one holds nothing.
    assert_eq!(c.psql("dst", "SELECT count(*) FROM pets"), "1");
    assert_eq!(c.psql("dst", "SELECT count(*) FROM people"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_tables_split_into_ctid_chunks_give_the_same_target() {
    let c = cluster();
    let (code, out) = run(clone_cmd(&c, c.port(), c.port(), "reference", &[])).await;
    assert_eq!(code, 0, "{out}");
    let reference = fingerprint(&c, "reference");

    // Every table over 64 kB is split, and source connections are cut mid-chunk twice.
    let proxy = FaultProxy::start(c.port(), Cut::ServerToClient, 40_000, Some(2), 1).await;
    let audit = c.socket_dir().parent().unwrap().join("split.jsonl");
    let (code, out) = run(clone_cmd(
        &c,
        proxy.port,
        c.port(),
        "faulted",
        &[
            "--split-tables-larger-than",
            "64kB",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    let log = std::fs::read_to_string(&audit).unwrap();
    let chunks = log
        .lines()
        .filter(|l| l.contains("\"table.end\"") && l.contains("\"table\":\"public.patients#"))
        .count();
    assert!(chunks >= 3, "patients was split: {chunks} chunks");
    assert_eq!(fingerprint(&c, "faulted"), reference);
}

/// The target commits a unit (its rows, checkpoint, keys and indexes) but the answer never
/// arrives: the worker retries on a new connection. The retry finds the unit committed and
/// neither copies it twice nor fails on its own checkpoint or keys; the run exits 0 with the
/// reference target. (The target is reached without TLS here, so that the proxy can see
/// which answer it drops.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_not_copied_twice() {
    let c = Cluster::builder()
        .hba("hostssl all owner 127.0.0.1/32 scram-sha-256")
        .hba("host all cloner 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("owner", Some("owner-secret"), false);
    c.create_role("cloner", Some("cloner-secret"), false);
    c.psql("postgres", "CREATE DATABASE mhd OWNER owner");
    for db in ["reference", "faulted"] {
        c.psql("postgres", &format!("CREATE DATABASE {db} OWNER cloner"));
    }
    support::load_fixture(&c, "mhd", "owner", 3);
    let clone = |port: u16, db: &str| {
        let target = format!(
            "host=127.0.0.1 port={port} user=cloner password=cloner-secret dbname={db} sslmode=disable"
        );
        fixture_clone::clone_cmd_to(&c, c.port(), &target, &[])
    };
    let (code, out) = run(clone(c.port(), "reference")).await;
    assert_eq!(code, 0, "{out}");
    let reference = fingerprint(&c, "reference");
    // The first two target connections (the coordinator's) are spared; each later one loses
    // the answer to its first COMMIT (a unit's), up to three times in all (fewer when the
    // other worker finishes the units while one waits to reconnect).
    let proxy = FaultProxy::start(c.port(), Cut::CommitAnswer, 0, Some(3), 2).await;
    let (code, out) = run(clone(proxy.port, "faulted")).await;
    assert_eq!(code, 0, "{out}");
    assert!(proxy.cuts() >= 1, "the proxy dropped no COMMIT answer");
    assert_eq!(fingerprint(&c, "faulted"), reference);
}
