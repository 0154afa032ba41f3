//! Records the protocol captures in protocol-captures/ from a real PostgreSQL: starts a
//! throwaway cluster, puts a recording proxy in front of it, runs each scenario of
//! tests/support/capture.rs through the proxy, and writes one capture file per scenario.
//! Usage: cargo run --example record_captures [scenario-name...]

#[path = "../tests/support/capture.rs"]
mod capture;

use capture::{capture_path, run_client, Recorder, NONCE, SCENARIOS};
use privaci::devcluster as support;

#[tokio::main]
async fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let cluster = support::Cluster::builder()
        .hba("host all scram_user 127.0.0.1/32 scram-sha-256")
        .hba("host all md5_user 127.0.0.1/32 md5")
        .start();
    cluster.create_role("scram_user", Some("scram-secret"), false);
    cluster.create_role("md5_user", Some("md5-secret"), true);
    cluster.psql("postgres", capture::SETUP_SQL);
    let server = cluster.psql("postgres", "SELECT version()");
    for scenario in SCENARIOS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
    {
        let recorder = Recorder::start(cluster.port()).await;
        run_client(recorder.port, scenario).await;
        let headers = vec![
            ("title".to_string(), scenario.title.to_string()),
            ("server".to_string(), server.clone()),
            ("conninfo".to_string(), scenario.conninfo.to_string()),
            ("scram-nonce".to_string(), NONCE.to_string()),
            (
                "recorded-by".to_string(),
                "cargo run --example record_captures".to_string(),
            ),
        ];
        let capture = recorder.finish(headers).await;
        let path = capture_path(scenario.name);
        std::fs::write(&path, capture.render()).unwrap();
        println!(
            "wrote {} ({} messages)",
            path.display(),
            capture.messages.len()
        );
    }
}
