//! Starts a throwaway TLS + SCRAM PostgreSQL cluster (the same harness the tests use), runs
//! the given `privaci` binary's `ping` against it as a non-superuser with
//! `sslmode=verify-full`, prints what it printed, and removes the cluster.
//! Usage: cargo run --example demo_server -- target/release/privaci

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let privaci = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/privaci".into());
    let cluster = support::Cluster::builder()
        .hba("hostssl all app 127.0.0.1/32 scram-sha-256")
        .hba("hostssl all app ::1/128 scram-sha-256")
        .start();
    cluster.create_role("app", Some("demo-password"), false);
    cluster.psql("postgres", "CREATE DATABASE app OWNER app");
    let conninfo = format!(
        "postgresql://app@localhost:{}/app?sslmode=verify-full&sslrootcert={}",
        cluster.port(),
        cluster.certs().ca_file.display()
    );
    println!("$ PGPASSWORD=... {privaci} ping '{conninfo}'");
    let status = std::process::Command::new(&privaci)
        .args(["ping", &conninfo])
        .env("PGPASSWORD", "demo-password")
        .status()
        .unwrap_or_else(|e| panic!("could not run {privaci}: {e}"));
    drop(cluster);
    std::process::exit(status.code().unwrap_or(1));
}
