//! `privaci demo`: the whole product on one machine in one command. Two throwaway clusters
//! (source and target), the MedicalHelpDesk fixture loaded as a non-superuser, a masked clone
//! over TLS + SCRAM with the example config, rows shown before and after.

use std::sync::Arc;

use super::exit;
use crate::config::MaskingConfig;
use crate::conninfo::Config;
use crate::devcluster::{load_fixture, Cluster};
use crate::engine::audit::Audit;
use crate::engine::clone::{run as clone_run, CloneError, CloneOptions, StopHandle};
use crate::engine::preflight::SchemaMode;
use crate::mask::MaskKey;

/// The example masking config, built in.
const CONFIG: &str = include_str!("../../examples/masking/medicalhelpdesk.toml");
/// A key for the demo only; real runs take theirs from PRIVACI_MASK_KEY.
const DEMO_KEY: &[u8] = b"privaci demo key: not for real data";

const SHOW: &str = "SELECT left(mrn::text, 8) AS mrn, first_name, last_name, email, phone, national_id, date_of_birth, balance
                    FROM public.patients ORDER BY mrn LIMIT 5";

pub async fn run() -> i32 {
    match tokio::task::spawn_blocking(setup).await {
        Ok(Ok((source, target))) => demo(source, target).await,
        Ok(Err(e)) => {
            eprintln!("privaci demo: {e}");
            exit::FAILED
        }
        Err(e) => {
            // The cluster harness panics with a message saying what to install.
            let msg = e.into_panic();
            let text = msg
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| msg.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("privaci demo: could not start PostgreSQL: {text}");
            exit::FAILED
        }
    }
}

fn setup() -> Result<(Cluster, Cluster), String> {
    println!("Starting two throwaway PostgreSQL clusters (TLS on, SCRAM passwords)...");
    let source = Cluster::builder()
        .hba("hostssl all clinic_owner 127.0.0.1/32 scram-sha-256")
        .start();
    let target = Cluster::builder()
        .hba("hostssl all staging_owner 127.0.0.1/32 scram-sha-256")
        .start();
    source.create_role("clinic_owner", Some("demo-source-password"), false);
    target.create_role("staging_owner", Some("demo-target-password"), false);
    source.psql(
        "postgres",
        "CREATE DATABASE medicalhelpdesk OWNER clinic_owner",
    );
    target.psql("postgres", "CREATE DATABASE staging OWNER staging_owner");
    println!(
        "Loading the MedicalHelpDesk fixture into the source as the non-superuser clinic_owner..."
    );
    load_fixture(&source, "medicalhelpdesk", "clinic_owner", 1);
    Ok((source, target))
}

fn conninfo(c: &Cluster, user: &str, password: &str, db: &str) -> Result<Config, String> {
    Config::parse_with(
        &format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={user} password={password} dbname={db} sslmode=verify-full sslrootcert={}",
            c.port(),
            c.certs().ca_file.display()
        ),
        &|_| None,
        None,
    )
    .map_err(|e| e.to_string())
}

async fn demo(source: Cluster, target: Cluster) -> i32 {
    println!(
        "\nPatients in the source (production):\n{}",
        source.psql_table("medicalhelpdesk", SHOW)
    );
    let config = match MaskingConfig::parse(CONFIG, "examples/masking/medicalhelpdesk.toml") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("privaci demo: {e}");
            return exit::INVALID_CONFIG;
        }
    };
    let (Ok(src), Ok(dst)) = (
        conninfo(
            &source,
            "clinic_owner",
            "demo-source-password",
            "medicalhelpdesk",
        ),
        conninfo(&target, "staging_owner", "demo-target-password", "staging"),
    ) else {
        eprintln!("privaci demo: could not build the connection strings");
        return exit::FAILED;
    };
    let key = MaskKey::new(DEMO_KEY).ok();
    println!("Cloning with masking (examples/masking/medicalhelpdesk.toml), 2 workers, sslmode=verify-full...\n");
    let opts = CloneOptions {
        source: src,
        target: dst,
        config,
        config_file: "examples/masking/medicalhelpdesk.toml".into(),
        config_text: CONFIG.into(),
        key,
        jobs: 2,
        resume: false,
        schema_mode: SchemaMode::Create,
        filter: Default::default(),
        quiet: true,
        keep_state: false,
        split_bytes: 0,
        lock_timeout: std::time::Duration::from_secs(60),
        skip_unsupported: false,
        no_large_objects: false,
        privileges: false,
    };
    match clone_run(opts, Arc::new(Audit::disabled()), StopHandle::default()).await {
        Ok(report) => {
            println!(
                "Patients in the target (staging), same rows (paired by their kept mrn):\n{}",
                target.psql_table("staging", SHOW)
            );
            print!("{}", super::render_report(&report));
            println!("\nThe clusters are removed now. Run the same on your own databases with:\n  PRIVACI_MASK_KEY=... privaci clone --source ... --target ... --config masking.toml");
            if report.failed.is_empty() {
                exit::SUCCESS
            } else {
                exit::FAILED
            }
        }
        Err(CloneError::Config(errors)) => {
            for e in errors {
                eprintln!("privaci demo: {e}");
            }
            exit::INVALID_CONFIG
        }
        Err(CloneError::Preflight(r)) => {
            eprintln!("privaci demo: refused: {}", r.join("; "));
            exit::PREFLIGHT
        }
        Err(CloneError::Failed(m)) => {
            eprintln!("privaci demo: {m}");
            exit::FAILED
        }
    }
}
