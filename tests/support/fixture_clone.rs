//! Clones of the MedicalHelpDesk fixture as a non-superuser over TLS + SCRAM, run as the
//! `privaci` binary, and the oracle they are checked against: every table's rows by checksum
//! plus `pg_dump --schema-only` of the whole database.

use std::process::{Child, Command, Stdio};

use super::Cluster;

pub const KEY: &str = "fault test masking key, 32 bytes";

/// A cluster (with extra `settings`) where each of `roles` logs in over TLS with SCRAM, as a
/// non-superuser whose password is `<role>-secret`.
pub fn cluster_with_roles(roles: &[&str], settings: &[&str]) -> Cluster {
    let mut b = Cluster::builder();
    for role in roles {
        b = b.hba(&format!("hostssl all {role} 127.0.0.1/32 scram-sha-256"));
    }
    for s in settings {
        b = b.setting(s);
    }
    let c = b.start();
    for role in roles {
        c.create_role(role, Some(&format!("{role}-secret")), false);
    }
    c
}

/// A cluster with the fixture in `mhd` (owned by `owner`) and empty databases owned by
/// `cloner` for each name in `targets`.
pub fn cluster(targets: &[&str]) -> Cluster {
    let c = cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE mhd OWNER owner");
    for db in targets {
        c.psql("postgres", &format!("CREATE DATABASE {db} OWNER cloner"));
    }
    super::load_fixture(&c, "mhd", "owner", 3);
    c
}

pub fn conninfo(c: &Cluster, port: u16, user: &str, db: &str) -> String {
    format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user={user} password={user}-secret dbname={db} sslmode=verify-full sslrootcert={}",
        c.certs().ca_file.display()
    )
}

/// `privaci clone` of `mhd` into `db` with the fixture's masking config, quiet, two workers
/// unless `extra` says otherwise.
pub fn clone_cmd(
    c: &Cluster,
    source_port: u16,
    target_port: u16,
    db: &str,
    extra: &[&str],
) -> Command {
    clone_cmd_to(
        c,
        source_port,
        &conninfo(c, target_port, "cloner", db),
        extra,
    )
}

/// `clone_cmd` into the target `target` (a conninfo string).
pub fn clone_cmd_to(c: &Cluster, source_port: u16, target: &str, extra: &[&str]) -> Command {
    let jobs = if extra.contains(&"--jobs") {
        None
    } else {
        Some("2")
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &conninfo(c, source_port, "owner", "mhd"),
        "--target",
        target,
        "--config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/masking/medicalhelpdesk.toml"
        ),
        "--quiet",
    ])
    .args(jobs.map(|j| vec!["--jobs", j]).unwrap_or_default())
    .args(extra)
    .env("PRIVACI_MASK_KEY", KEY)
    .env("HOME", "/nonexistent");
    cmd
}

/// `privaci <command> --source <source_db as owner> --target <target_db as cloner> --config
/// <config>` with the test key: a clone or a verify between two databases of `c`.
pub fn between(
    c: &Cluster,
    command: &str,
    source_db: &str,
    target_db: &str,
    config: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        command,
        "--source",
        &conninfo(c, c.port(), "owner", source_db),
        "--target",
        &conninfo(c, c.port(), "cloner", target_db),
        "--config",
    ])
    .arg(config)
    .env("PRIVACI_MASK_KEY", KEY)
    .env("HOME", "/nonexistent");
    cmd
}

/// A cluster with `source_db` (owned by `owner`, `source_sql` run as `owner`) and an empty
/// `target_db` owned by `cloner`.
pub fn source_and_target(source_db: &str, target_db: &str, source_sql: &str) -> Cluster {
    let c = cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql(
        "postgres",
        &format!("CREATE DATABASE {source_db} OWNER owner"),
    );
    c.psql(
        "postgres",
        &format!("CREATE DATABASE {target_db} OWNER cloner"),
    );
    c.psql(source_db, &format!("SET ROLE owner; {source_sql}"));
    c
}

/// `privaci clone --quiet` (and `extra`) from `source_db` into `target_db`, which must succeed.
pub fn clone_ok(
    c: &Cluster,
    source_db: &str,
    target_db: &str,
    config: &std::path::Path,
    extra: &[&str],
) {
    let mut cmd = between(c, "clone", source_db, target_db, config);
    cmd.arg("--quiet").args(extra);
    let (code, text) = output(cmd);
    assert_eq!(code, 0, "the clone into {target_db} failed:\n{text}");
}

/// A finished process's exit code and stdout + stderr.
pub fn code_and_text(out: std::process::Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs a command; its exit code and stdout + stderr.
pub fn output(mut cmd: Command) -> (i32, String) {
    code_and_text(cmd.output().unwrap())
}

/// Starts a command with its output captured, for `finish` (or a signal) later.
pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a spawned command; its exit code and stdout + stderr.
pub fn finish(child: Child) -> (i32, String) {
    code_and_text(child.wait_with_output().unwrap())
}

/// `output`, off the async runtime.
pub async fn run(cmd: Command) -> (i32, String) {
    tokio::task::spawn_blocking(move || output(cmd))
        .await
        .unwrap()
}

/// `finish`, off the async runtime.
pub async fn finish_async(child: Child) -> (i32, String) {
    tokio::task::spawn_blocking(move || finish(child))
        .await
        .unwrap()
}

/// Every table's rows, as an order-independent checksum of whole rows, plus the schema.
pub fn fingerprint(c: &Cluster, db: &str) -> Vec<String> {
    let tables = c.psql(db, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('public', 'clinical') ORDER BY 1");
    let mut out: Vec<String> = tables
        .lines()
        .map(|t| format!("{t} {}", c.psql(db, &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"))))
        .collect();
    out.push(c.pg_dump_schema(db));
    out
}

/// How many events of a kind the audit log at `path` holds so far.
pub fn audit_events(path: &std::path::Path, event: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(&format!("\"event\":\"{event}\""))
        .count()
}

/// An uninterrupted one-worker clone of `mhd` into `reference`, and its fingerprint: what
/// every interrupted-then-resumed clone must equal.
pub async fn reference(c: &Cluster) -> Vec<String> {
    let (code, out) = run(clone_cmd(
        c,
        c.port(),
        c.port(),
        "reference",
        &["--jobs", "1"],
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    fingerprint(c, "reference")
}

/// Starts a one-worker clone of `mhd` into `db` with an audit log named `name`, and waits
/// until `units` units have committed. The run is still going when this returns.
pub async fn clone_until(
    c: &Cluster,
    db: &str,
    name: &str,
    units: usize,
) -> (Child, std::path::PathBuf) {
    let audit = c.socket_dir().parent().unwrap().join(name);
    let child = spawn(clone_cmd(
        c,
        c.port(),
        c.port(),
        db,
        &["--jobs", "1", "--audit-log", audit.to_str().unwrap()],
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while audit_events(&audit, "table.end") < units {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {units} units"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (child, audit)
}
