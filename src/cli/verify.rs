//! `privaci verify`: the target checked against the source and the masking config, read-only
//! on both sides. Exit 0 when every check holds, 4 when one fails (each listed), 3 for an
//! invalid config, 1 when verify itself cannot run.

use super::{exit, OutputFormat, VerifyArgs};
use crate::config::resolve::resolve;
use crate::conninfo::Config;
use crate::verify::{self, Failure};

pub async fn run(args: VerifyArgs) -> i32 {
    let (config, file, key) = match super::config_and_key(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if key.is_none() && config.needs_key() {
        eprintln!(
            "privaci: the config uses keyed strategies, but PRIVACI_MASK_KEY is not set: verify computes what each masked column should hold with the clone's key; set it to the same secret"
        );
        return exit::INVALID_CONFIG;
    }
    let filter = match args.filter.filter_or_exit() {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (source, target) = match (Config::parse(&args.source), Config::parse(&args.target)) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) => {
            eprintln!("privaci: source: {e}");
            return exit::FAILED;
        }
        (_, Err(e)) => {
            eprintln!("privaci: target: {e}");
            return exit::FAILED;
        }
    };
    let jobs = super::jobs_or_cores(args.jobs);
    let opts = verify::Options {
        source,
        target,
        filter,
        jobs,
        max_memory: args.max_memory.max(0) as u64,
        deep: args.deep,
        lock_timeout: args.lock_wait_timeout,
    };
    let check_key = key.clone();
    let result = verify::run(opts, key, move |cat| {
        resolve(&config, &file, cat, check_key.as_ref()).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            format!(
                "the masking config has {} problem(s):\n{}",
                errors.len(),
                lines.join("\n")
            )
        })
    })
    .await;
    match result {
        Ok(report) => {
            match args.format {
                OutputFormat::Text => print!("{}", report.text()),
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
            }
            if report.passed {
                exit::SUCCESS
            } else {
                exit::VERIFY_FAILED
            }
        }
        Err(Failure::Config(e)) => {
            eprintln!("privaci: {e}");
            exit::INVALID_CONFIG
        }
        Err(Failure::Run(e)) => {
            eprintln!("privaci: verify could not run: {e}");
            exit::FAILED
        }
    }
}
