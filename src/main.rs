//! The `privaci` binary: parse arguments, set up logging, run the command, exit with its code.

use clap::Parser;

fn main() {
    let cli = match privaci::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; a wrong command line is exit 64, never
            // 2 (a pre-flight refusal).
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    privaci::cli::exit::SUCCESS
                }
                _ => privaci::cli::exit::USAGE,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("privaci: could not start the async runtime: {e}");
            std::process::exit(privaci::cli::exit::FAILED);
        }
    };
    let code = runtime.block_on(privaci::cli::run(cli));
    std::process::exit(code);
}
